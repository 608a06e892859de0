"""The Keras backend: which one runs, on what device, with what precision and seed.

Nothing here imports a framework at module import; each backend's own
library is imported only when asked which devices it sees.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def backend_name() -> str:
    import keras

    return keras.backend.backend()


def accelerators() -> list[str]:
    """Accelerators the current Keras backend sees (empty on CPU)."""
    name = backend_name()
    try:
        if name == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices("GPU")]
        if name == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        if name == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken CUDA install should not stop CPU work
        log.warning("could not list %s devices: %s", name, exc)
    return []


def describe_device() -> dict:
    import keras

    gpus = accelerators()
    return {"backend": backend_name(), "keras": keras.__version__,
            "device": "gpu" if gpus else "cpu", "accelerators": gpus}


def set_seed(seed: int) -> None:
    """Seed Python, numpy and the backend through Keras (one call for all three)."""
    import keras

    keras.utils.set_random_seed(int(seed))


def set_precision(mixed: bool) -> str:
    """Mixed precision on a GPU when asked (bfloat16 where supported, else float16)."""
    import keras

    if not mixed:
        keras.mixed_precision.set_global_policy("float32")
        return "float32"
    if not accelerators():
        log.warning("mixed precision asked for but no GPU is visible: staying in float32")
        keras.mixed_precision.set_global_policy("float32")
        return "float32"
    policy = "mixed_bfloat16" if backend_name() == "jax" else "mixed_float16"
    keras.mixed_precision.set_global_policy(policy)
    return policy
