"""Running a model without Keras: decoding head outputs, and exported ONNX / TFLite files.

Nothing here imports Keras or TensorFlow. :func:`decode_faces` turns a model's
head outputs into labels and scores with the run's thresholds (the Keras
predictor in :mod:`faces_keras.inference.predict` uses it too, so both paths
decode alike). :class:`ExportedModel` runs a file written by
:func:`faces_keras.inference.export.export_model`:

* ``model.onnx`` with onnxruntime (``pip install faces-keras[export]``);
* ``model.tflite`` with the LiteRT interpreter (``ai-edge-litert``), or
  TensorFlow's ``tf.lite.Interpreter`` when only TensorFlow is installed.

An exported file needs three files beside it, written by the export (see
docs/export.md)::

    model.onnx               the network: 0-255 faces in, one score matrix out
    model.schema.yaml        the labels (the run's schema.yaml)
    model.thresholds.json    the run's tuned thresholds (binary labels)
    model.export.json        face size, gray, margin, and which columns are which head
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from faces_keras.errors import FacesKerasError, RunError
from faces_keras.io import read_json
from faces_keras.labels.heads import Head
from faces_keras.labels.schema import Schema, load_schema

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "tflite", "saved_model")
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "saved_model": ""}
RUNNABLE = (".onnx", ".tflite")  # what ExportedModel runs without TensorFlow


def sidecar_paths(model_file: str | Path) -> dict[str, Path]:
    """The files an exported model needs beside it: ``schema``, ``thresholds`` and ``export`` (layout).

    Args:
        model_file: the exported model (``model.onnx``, ``model.tflite`` or a SavedModel folder).

    Returns:
        ``{"schema": model.schema.yaml, "thresholds": model.thresholds.json, "export": model.export.json}``.
    """
    model_file = Path(model_file)
    stem = model_file.stem if model_file.suffix in RUNNABLE else model_file.name
    return {"schema": model_file.with_name(f"{stem}.schema.yaml"),
            "thresholds": model_file.with_name(f"{stem}.thresholds.json"),
            "export": model_file.with_name(f"{stem}.export.json")}


def head_layout(heads: Sequence[Head]) -> list[dict[str, Any]]:
    """Which columns of the exported score matrix belong to which head, in plan order."""
    layout, start = [], 0
    for head in heads:
        layout.append({"name": head.name, "kind": head.kind, "labels": list(head.labels),
                       "start": start, "stop": start + head.units})
        start += head.units
    return layout


def split_scores(matrix: np.ndarray, layout: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The exported model's one score matrix ``(n, units)`` as one array per head."""
    return {part["name"]: matrix[:, part["start"]:part["stop"]] for part in layout}


def load_thresholds(path: Path, schema: Schema, hint: str) -> dict[str, float]:
    """Per binary label thresholds from a thresholds.json; a missing file or label raises RunError.

    Args:
        path: the thresholds file.
        schema: the labels the model predicts.
        hint: what to do when the file is missing (named in the message).

    Returns:
        ``{label: threshold}`` for every binary label (empty when there is none).
    """
    binary = [label.name for label in schema.binary_labels]
    if not binary:
        return {}
    if not path.is_file():
        raise RunError(f"{path.parent}: {path.name} is missing; {hint} (predict does not fall back to 0.5)")
    from faces_keras.thresholds import ThresholdResult

    thresholds = ThresholdResult.load(path).thresholds
    missing = [name for name in binary if name not in thresholds]
    if missing:
        raise RunError(f"{path}: no threshold for label(s) {missing}")
    return {name: float(value) for name, value in thresholds.items()}


def decode_faces(outputs: dict[str, np.ndarray], heads: Sequence[Head], schema: Schema,
                 thresholds: dict[str, float]) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Labels and scores per face from head outputs.

    Args:
        outputs: one array per head name, ``(n, units)``.
        heads: the model's heads (:func:`faces_keras.labels.heads.plan_heads`).
        schema: the labels.
        thresholds: per binary label; a probability at or above it means the second value name.

    Returns:
        For each face, ``(labels, scores)``: the decoded value of each label, and the
        probability of that value (binary: of the chosen side; multiclass: of the
        class) or the value itself (regression).
    """
    n = len(next(iter(outputs.values()))) if outputs else 0
    results = []
    for i in range(n):
        labels: dict[str, Any] = {}
        scores: dict[str, float] = {}
        for head in heads:
            probs = outputs[head.name][i]
            if head.kind == "binary":
                for j, name in enumerate(head.labels):
                    p = float(probs[j])
                    positive = p >= thresholds[name]
                    labels[name] = schema[name].value_names()[int(positive)]
                    scores[name] = p if positive else 1.0 - p
            elif head.kind == "multiclass":
                k = int(np.argmax(probs))
                labels[head.name] = schema[head.name].classes[k]
                scores[head.name] = float(probs[k])
            else:
                labels[head.name] = float(probs[0])
                scores[head.name] = float(probs[0])
        results.append((labels, scores))
    return results


@dataclass
class FaceSettings:
    """How faces are cut for a model: side in pixels, gray or colour, margin around the box."""

    size: int = 64
    gray: bool = True
    margin: float = 0.2

    @property
    def channels(self) -> int:
        return 1 if self.gray else 3


class ExportedModel:
    """An exported ``.onnx`` or ``.tflite`` model with its schema and thresholds, run without TensorFlow.

    Args:
        path: the model file; its sidecar files (:func:`sidecar_paths`) must lie beside it.

    Raises:
        RunError: a sidecar file is missing, or the format is not one this runs.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise RunError(f"{self.path}: exported model not found; expected a .onnx or .tflite file "
                           "written by `faces-keras export`")
        if self.path.suffix not in RUNNABLE:
            raise RunError(f"{self.path}: predict runs exported .onnx and .tflite files; for a SavedModel "
                           "or .keras file pass the run directory")
        sidecars = sidecar_paths(self.path)
        for key in ("schema", "export"):
            if not sidecars[key].is_file():
                raise RunError(f"{sidecars[key]} is missing: an exported model needs its "
                               f"{sidecars[key].name} beside it (export it again with `faces-keras export`)")
        self.schema = load_schema(sidecars["schema"])
        info = read_json(sidecars["export"])
        try:
            self.faces = FaceSettings(int(info["size"]), bool(info["gray"]), float(info["margin"]))
            self.layout = list(info["heads"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{sidecars['export']}: damaged export record (missing or bad key {exc}); "
                           "export the model again") from None
        from faces_keras.labels.heads import plan_heads

        self.heads = plan_heads(self.schema)
        if [h.name for h in self.heads] != [part["name"] for part in self.layout]:
            raise RunError(f"{sidecars['export']}: its heads {[p['name'] for p in self.layout]} do not match "
                           f"{sidecars['schema'].name} ({[h.name for h in self.heads]})")
        self.thresholds = load_thresholds(sidecars["thresholds"], self.schema,
                                          "export the model again from a run with thresholds")
        self._run = self._onnx() if self.path.suffix == ".onnx" else self._tflite()

    def _onnx(self):
        try:
            import onnxruntime
        except ImportError as exc:
            raise FacesKerasError(f"{self.path}: running an ONNX model needs onnxruntime: "
                                  f"pip install 'faces-keras[export]' ({exc})") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {name: x})[0]

        return run

    def _tflite(self):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter  # type: ignore[no-redef]
            except ImportError as exc:
                raise FacesKerasError(f"{self.path}: running a TFLite model needs ai-edge-litert: "
                                      f"pip install 'faces-keras[export]' ({exc})") from None
        interpreter = Interpreter(model_path=str(self.path))
        state = {"shape": None}
        index_in = interpreter.get_input_details()[0]["index"]
        index_out = interpreter.get_output_details()[0]["index"]

        def run(x: np.ndarray) -> np.ndarray:
            if state["shape"] != x.shape:
                interpreter.resize_tensor_input(index_in, x.shape)
                interpreter.allocate_tensors()
                state["shape"] = x.shape
            interpreter.set_tensor(index_in, x)
            interpreter.invoke()
            return np.array(interpreter.get_tensor(index_out))

        return run

    def score_matrix(self, faces: np.ndarray) -> np.ndarray:
        """The exported network's output ``(n, units)`` for uint8-range faces ``(n, size, size, C)``."""
        return np.asarray(self._run(np.ascontiguousarray(faces, dtype=np.float32)))

    def scores(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities (or values) per head for faces ``(n, size, size, C)`` in 0-255."""
        return split_scores(self.score_matrix(faces), self.layout)


__all__ = ["EXPORT_FORMATS", "ExportedModel", "FaceSettings", "decode_faces", "head_layout",
           "load_thresholds", "sidecar_paths", "split_scores"]
