"""The Keras backend: which one runs, on what device, with what precision, seed and distribution.

Nothing here imports a framework at module import; each backend's own
library is imported only when asked which devices it sees.
"""

from __future__ import annotations

import logging
import os

from faces_keras.errors import ConfigError

log = logging.getLogger(__name__)

# What keras.distribution.initialize() reads when this process is one of several hosts.
MULTI_HOST_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                  "KERAS_DISTRIBUTION_PROCESS_ID")


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
    """What this process computes on: backend, Keras version, device kind, accelerators, distribution.

    Returns:
        A dict with ``backend``, ``keras``, ``device`` (``gpu`` or ``cpu``),
        ``accelerators`` (their names), ``distribution`` (``data-parallel``
        while :func:`use_distribution` has set one, else ``none``),
        ``devices`` (how many devices each step runs on), ``processes`` and
        ``allocator`` (:func:`faces_keras.allocator.current_allocator`).
    """
    import keras

    from faces_keras.allocator import current_allocator

    gpus = accelerators()
    active = keras.distribution.distribution()
    return {"backend": backend_name(), "keras": keras.__version__, "allocator": current_allocator(),
            "device": "gpu" if gpus else "cpu", "accelerators": gpus,
            "distribution": "data-parallel" if active is not None else "none",
            "devices": int(active.device_mesh.devices.size) if active is not None else 1,
            "processes": int(active.num_processes) if active is not None else 1}


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


def _local_replicas(distribution) -> int:
    return max(1, int(distribution.device_mesh.devices.size) // max(1, int(distribution.num_processes)))


def _data_parallel_class():
    import keras

    class FacesDataParallel(keras.distribution.DataParallel):
        """Keras's ``DataParallel`` that replicates, not splits, a batch the devices do not divide.

        Keras takes the data layout of a whole pass (an epoch, an evaluation,
        a prediction) from its first batch. ``FaceBatches`` puts the one short
        batch of a validation or prediction pass first when the devices do
        not divide it, so such a pass runs whole on every device (correct,
        not faster); training batches always divide (the batch size is a
        multiple of the device count, and an epoch's last few faces that do
        not fill a multiple are left for the next epoch's shuffle).
        """

        def get_data_layout(self, data_shape):
            if data_shape and data_shape[0] is not None and int(data_shape[0]) % _local_replicas(self):
                return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)
            return super().get_data_layout(data_shape)

    return FacesDataParallel


def use_distribution(distribute: bool, batch_size: int) -> str:
    """Split every training batch over all the devices (Keras's ``DataParallel``), or over none.

    Data parallelism through ``keras.distribution`` is implemented by Keras
    for the jax backend only: each device holds a copy of the weights and
    computes on ``batch_size / devices`` faces of each batch; gradients,
    losses and BatchNorm statistics are reduced over the whole batch, so one
    step equals the single-device step on the same batch. With the
    environment variables of :data:`MULTI_HOST_ENV` set, this process is one
    of several hosts and ``keras.distribution.initialize()`` joins them first.
    Call it before the model is built or loaded (its variables are laid out
    on the devices when created).

    Args:
        distribute: ``True`` to train data-parallel on every device
            ``keras.distribution.list_devices()`` names; ``False`` clears any
            distribution (one device).
        batch_size: faces per step (all devices together); checked to be a
            multiple of the device count.

    Returns:
        A one-line description, e.g. ``"data-parallel over 2 devices (cpu:0, cpu:1)"``
        or ``"one device"``.

    Raises:
        ConfigError: ``distribute`` on a backend other than jax; a batch size
            the device count does not divide; several hosts asked for after
            jax had started.
    """
    import keras

    if not distribute:
        if keras.distribution.distribution() is not None:
            keras.distribution.set_distribution(None)
        return "one device"
    name = backend_name()
    if name != "jax":
        raise ConfigError(f"distribute (--distribute): data-parallel training needs KERAS_BACKEND=jax "
                          f"(this process runs the {name} backend)")
    hosts = [var for var in MULTI_HOST_ENV if os.environ.get(var)]
    if hosts:
        try:
            keras.distribution.initialize()
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"distribute (--distribute) with {', '.join(hosts)} set: "
                              f"keras.distribution.initialize() failed: {exc}") from exc
    devices = keras.distribution.list_devices()
    distribution = _data_parallel_class()(devices=devices, auto_shard_dataset=False)
    local = _local_replicas(distribution)
    if batch_size % local:
        raise ConfigError(f"batch_size={batch_size} (--batch-size): data-parallel training splits each batch "
                          f"over {local} devices; expected a multiple of {local}")
    keras.distribution.set_distribution(distribution)
    processes = int(distribution.num_processes)
    text = f"data-parallel over {len(devices)} devices ({', '.join(map(str, devices))})"
    if processes > 1:
        text += f" in {processes} processes"
    log.info("training %s: %d faces per device per step", text, batch_size // local)
    return text
