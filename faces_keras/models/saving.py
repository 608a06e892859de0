"""Reading the suite's ``.keras`` files back: one loader, with the custom objects registered."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

import faces_keras.models.heads  # noqa: F401  (registers the custom losses and metrics)
import faces_keras.models.losses  # noqa: F401  (registers the class-balanced losses)
import faces_keras.models.layers  # noqa: F401  (registers the suite's layers: fused augmentation, fast batch norm)
import faces_keras.models.hub  # noqa: F401  (registers the keras-hub backbone wrapper; keras-hub itself when needed)
from faces_keras.errors import RunError
from faces_keras.rundir import MODEL, RunDir


def load_run_model(run: RunDir | str | Path, compile: bool = True):
    """A run directory's model.keras (see :func:`load_keras_model`).

    Args:
        run: the run directory, as a :class:`RunDir` or a path.
        compile: also restore the loss, metrics and optimizer state.

    Returns:
        The Keras model.

    Raises:
        RunError: the run has no model.keras, or the file is damaged or
            refused; the message names it.
    """
    run = RunDir(run) if not isinstance(run, RunDir) else run
    run.require(MODEL)
    return load_keras_model(run / MODEL, compile=compile)


def load_keras_model(path: str | Path, compile: bool = True):
    """Load a ``.keras`` file saved by the suite (its custom losses and metrics registered).

    Args:
        path: the model file (model.keras, a checkpoint, another run's model).
        compile: also restore the loss, metrics and optimizer state.

    Returns:
        The Keras model.

    Raises:
        RunError: the file is damaged, or Keras refuses it (a Lambda layer in
            safe mode); the message names the file and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: model file not found; expected a Keras model saved by `faces-keras train`")
    expected = "expected a Keras model saved by `faces-keras train`"
    if not zipfile.is_zipfile(path):
        raise RunError(f"{path} is truncated or damaged (not a .keras zip archive): {expected}; "
                       "train the run again or restore the file")
    if _needs_keras_hub(path):
        from faces_keras.models.hub import require_keras_hub

        try:
            require_keras_hub()  # registers the keras-hub classes the file names
        except RunError as exc:
            raise RunError(f"{path} holds a keras-hub backbone: {exc}") from None
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises ValueError, TypeError, KeyError, OSError, ... for bad files
        text = " ".join(str(exc).split())
        if "Lambda" in text or "safe_mode" in text:
            raise RunError(f"{path}: the model holds a Lambda layer (arbitrary Python code), which Keras "
                           f"refuses to load in safe mode; {expected}, whose layers are all "
                           "serialisable (rebuild it without Lambda layers)") from None
        reason = text if len(text) <= 160 else text[:157] + "..."
        raise RunError(f"{path}: Keras could not load the model ({type(exc).__name__}: {reason}); "
                       f"{expected}") from None


def _needs_keras_hub(path: Path) -> bool:
    """Whether the ``.keras`` archive's config names keras-hub classes (a hub backbone inside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return b"keras_hub" in archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False  # Keras says what is wrong with the file
