"""Export a run's model for deployment: ONNX, TFLite (LiteRT) or a TensorFlow SavedModel.

Keras 3's own ``model.export(path, format=...)`` writes the file (``onnx`` through
tf2onnx, ``litert`` for TFLite, ``tf_saved_model``). What is exported is the
inference graph of the run's model:

* the preprocessing stays inside: it takes the same uint8-range faces
  ``(n, size, size, C)`` as float32 that the Keras model takes, and rescales
  them itself;
* the online augmentation layers are left out (they act only in training, but
  their random ops would otherwise be traced, and ONNX has none of them);
* the heads' outputs are concatenated in the schema's head order into one
  ``(n, units)`` score matrix, so every format has one named output whose
  columns ``model.export.json`` maps to heads and labels.

Beside the model go its schema, its thresholds and the layout (see
:func:`faces_keras.inference.runtime.sidecar_paths`), so that ``predict --model
model.onnx`` runs with onnxruntime alone, without TensorFlow. Before anything
is moved into place the export is checked against Keras on up to
``parity_faces`` real faces of the run's dataset (test split first): the largest
absolute difference must stay within :data:`PARITY_TOLERANCE`, and is recorded in
model.export.json.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from faces_keras.errors import DatasetError, FacesKerasError, RunError
from faces_keras.inference.runtime import EXPORT_FORMATS, SUFFIXES, ExportedModel, head_layout, sidecar_paths
from faces_keras.io import write_json
from faces_keras.labels.heads import Head, plan_heads
from faces_keras.locking import folder_lock
from faces_keras.rundir import MODEL, SCHEMA, THRESHOLDS, RunDir
from faces_keras.settings import setting, validate

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4
KERAS_FORMATS = {"onnx": "onnx", "tflite": "litert", "saved_model": "tf_saved_model"}


class ExportError(FacesKerasError):
    """The model could not be exported, or the export does not match Keras."""


@dataclass(frozen=True)
class ExportConfig:
    """Settings of :func:`export_model` (the ``export`` command's flags).

    Args:
        format: ``onnx``, ``tflite`` or ``saved_model``.
        out: the file (a folder for ``saved_model``) to write; empty: ``<run>/export/model.<format>``.
        parity_faces: real faces of the run's dataset to check the export against Keras on (0: skip).
    """

    format: str = setting("onnx", choices=EXPORT_FORMATS, help="export format")
    out: str = setting("", help="file to write (a folder for saved_model); default <run>/export/model.<format>",
                       metavar="PATH")
    parity_faces: int = setting(64, at_least=0, help="real faces of the run's dataset to check the export "
                                                     "against Keras on (0: no check)")

    def __post_init__(self):
        validate(self)


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        path: the exported model (file, or folder for saved_model).
        sidecars: the schema, thresholds and layout files beside it.
        format: the format.
        max_abs_diff: the largest difference from Keras on the checked faces (None: not checked).
        faces_checked: how many faces were checked.
    """

    path: Path
    sidecars: dict[str, Path]
    format: str
    max_abs_diff: float | None
    faces_checked: int

    def lines(self) -> list[str]:
        out = [f"exported {self.format}: {self.path}"]
        out += [f"  beside it: {p.name}" for p in self.sidecars.values() if p.exists()]
        if self.max_abs_diff is not None:
            out.append(f"  parity with Keras on {self.faces_checked} real faces: max abs difference "
                       f"{self.max_abs_diff:.2e} (limit {PARITY_TOLERANCE:.0e})")
        return out


def default_out(run: RunDir, format: str) -> Path:
    return run.path / "export" / f"model{SUFFIXES[format]}"


def inference_model(model, heads: list[Head]):
    """The model as it predicts: augmentation left out, heads concatenated into one score matrix.

    Args:
        model: the run's Keras model.
        heads: its heads, in plan order.

    Returns:
        A Keras model ``(n, size, size, C) -> (n, sum of units)`` sharing the run model's weights.
    """
    import keras

    class Passthrough(keras.layers.Layer):
        """Stands in for an augmentation layer: returns its input."""

        def call(self, inputs, mask=None, training=None):
            return inputs

        def compute_output_shape(self, input_shape):
            return input_shape

    def strip(layer):
        if layer.name == "augmentation" or type(layer).__name__.startswith("Random"):
            return Passthrough(name=layer.name)
        return layer  # the same layer object: its weights are shared, not copied

    clone = keras.models.clone_model(model, clone_function=strip)
    image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image", dtype="float32")
    out = clone(image)
    if isinstance(out, dict):
        parts = [out[h.name] for h in heads]
    elif isinstance(out, (list, tuple)):
        parts = list(out)
    else:
        parts = [out]
    scores = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="scores")(parts)
    return keras.Model(image, scores, name="exported")


def keras_scores(model, heads: list[Head], faces: np.ndarray) -> np.ndarray:
    """The run model's outputs concatenated in head order, as the exported model gives them."""
    out = model.predict(np.asarray(faces, np.float32), verbose=0, batch_size=256)
    if isinstance(out, dict):
        out = [out[h.name] for h in heads]
    elif not isinstance(out, (list, tuple)):
        out = [out]
    return np.concatenate([np.asarray(o, np.float32) for o in out], axis=1)


def parity_faces(run: RunDir, count: int) -> np.ndarray:
    """Up to ``count`` real faces of the run's dataset (test split first), as stored (uint8)."""
    from faces_keras.data.store import Dataset

    manifest = run.manifest()
    folder = manifest.get("path")
    if not folder or not Path(folder).is_dir():
        raise DatasetError(f"{run.path}: the dataset it trained on ({folder}) is gone; export with "
                           "--parity-faces 0 to skip the check against Keras")
    data = Dataset.load(folder)
    order = [s for s in ("test", "val", "train") if s in set(data.faces["split"])]
    index = np.concatenate([np.flatnonzero(data.faces["split"].to_numpy() == s) for s in order])[:count]
    return data.images[index]


@contextmanager
def _quiet_converters() -> Iterator[None]:
    names = ("tf2onnx", "tensorflow", "absl")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _export(model, heads: list[Head], format: str, path: Path) -> None:
    import keras

    exported = inference_model(model, heads)
    spec = [keras.InputSpec(shape=(None, *exported.inputs[0].shape[1:]), dtype="float32", name="image")]
    kwargs: dict[str, Any] = {"verbose": False, "input_signature": spec}
    try:
        with _quiet_converters():
            exported.export(str(path), format=KERAS_FORMATS[format], **kwargs)
    except ImportError as exc:
        raise ExportError(f"exporting to {format} needs packages not installed: pip install "
                          f"'faces-keras[export]' ({exc})") from None


def _exported_scores(path: Path, format: str, faces: np.ndarray) -> np.ndarray:
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept referenced while it runs: it owns the variables
        return np.asarray(loaded.serve(np.asarray(faces, np.float32)))
    return ExportedModel(path).score_matrix(faces)


def export_model(run: str | Path | RunDir, format: str = "onnx", out: str | Path | None = None,
                 config: ExportConfig | None = None) -> ExportResult:
    """Export a run's model with its schema and thresholds beside it, checked against Keras.

    Example:

    ```python
    result = export_model("runs/celeba", "onnx")
    predict_photos(result.path, ["album/"], PredictConfig(no_annotate=True))  # no TensorFlow
    ```

    Args:
        run: the run directory.
        format: ``onnx``, ``tflite`` or ``saved_model`` (``config.format`` when a config is given).
        out: the file (folder for saved_model) to write; default ``<run>/export/model.<format>``.
        config: all settings at once (overrides ``format`` and ``out``).

    Returns:
        An :class:`ExportResult` with the model's path (``result.path``), its sidecar files and the parity.

    Raises:
        RunError: the run lacks its model, schema or thresholds.
        ExportError: a converter is missing, or the export differs from Keras by more than 1e-4.
    """
    config = config or ExportConfig(format=format, out=str(out or ""))
    run = run if isinstance(run, RunDir) else RunDir(run)
    run.require(MODEL, SCHEMA)
    schema = run.schema()
    heads = plan_heads(schema)
    if schema.binary_labels and not (run / THRESHOLDS).is_file():
        raise RunError(f"{run.path}: {THRESHOLDS} is missing; run `faces-keras thresholds {run.path}` first "
                       "(an exported model carries the run's thresholds)")
    target = Path(config.out) if config.out else default_out(run, config.format)
    if config.format != "saved_model" and target.suffix != SUFFIXES[config.format]:
        raise ExportError(f"{target}: a {config.format} export is a {SUFFIXES[config.format]} file")
    faces = parity_faces(run, config.parity_faces) if config.parity_faces else None

    from faces_keras.models.saving import load_run_model

    model = load_run_model(run, compile=False)
    settings = run.manifest().get("settings", {})
    import keras

    with folder_lock(target, "exported model"):
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
        try:
            staged = work / target.name
            _export(model, heads, config.format, staged)
            sidecars = sidecar_paths(staged)
            shutil.copyfile(run / SCHEMA, sidecars["schema"])
            if (run / THRESHOLDS).is_file():
                shutil.copyfile(run / THRESHOLDS, sidecars["thresholds"])
            record = {"format": config.format, "file": target.name, "run": str(run.path.resolve()),
                      "size": int(model.inputs[0].shape[1]), "gray": int(model.inputs[0].shape[-1]) == 1,
                      "margin": float(settings.get("margin", 0.2)), "input": "image",
                      "input_range": "0-255 float32, (n, size, size, channels)",
                      "heads": head_layout(heads), "keras": keras.__version__,
                      "backend": keras.backend.backend(), "max_abs_diff": None, "faces_checked": 0}
            write_json(sidecars["export"], record)
            diff = None
            if faces is not None and len(faces):
                with _quiet_converters():
                    expected = keras_scores(model, heads, faces)
                    got = _exported_scores(staged, config.format, faces)
                diff = float(np.max(np.abs(got - expected)))
                if got.shape != expected.shape or not diff <= PARITY_TOLERANCE:
                    raise ExportError(f"{target}: the {config.format} export differs from Keras by {diff:.2e} "
                                      f"on {len(faces)} real faces (limit {PARITY_TOLERANCE:.0e}); not written")
                record.update(max_abs_diff=diff, faces_checked=int(len(faces)))
                write_json(sidecars["export"], record)
            final = sidecar_paths(target)
            for key, path in sidecars.items():  # the sidecars first: a model file never appears without them
                if path.exists():
                    os.replace(path, final[key])
                elif final[key].exists():
                    final[key].unlink()
            if staged.is_dir():
                if target.exists():
                    old = work / ".old"
                    os.replace(target, old)
                os.replace(staged, target)
            else:
                os.replace(staged, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log.info("exported %s to %s (max abs difference %s)", config.format, target, diff)
    return ExportResult(target, sidecar_paths(target), config.format, diff, 0 if faces is None else len(faces))


__all__ = ["ExportConfig", "ExportError", "ExportResult", "PARITY_TOLERANCE", "export_model",
           "inference_model", "keras_scores"]
