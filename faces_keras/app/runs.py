"""Runs the app serves: finding them by name only, their summaries, and try-a-model predictions.

A run is named by its folder's name under one of the folders the app was given
(``--runs``); a request names a run, never a path, so nothing outside those
folders can be reached. Files inside a run are served only when their resolved
path stays inside it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from faces_keras.errors import FacesKerasError, ImageError, RunError
from faces_keras.io import read_json
from faces_keras.rundir import CONFIG, METRICS_JSON, MODEL, SCHEMA, THRESHOLDS, RunDir

log = logging.getLogger(__name__)


class UnknownRunError(FacesKerasError, KeyError):
    """A run name that none of the served folders holds."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class OutsideFolderError(FacesKerasError):
    """A path that leaves the folder it must stay in."""


def _is_run(folder: Path) -> bool:
    return (folder / MODEL).is_file() and (folder / SCHEMA).is_file()


def find_runs(roots: Sequence[str | Path]) -> dict[str, Path]:
    """Every run in ``roots`` by name (a root that is itself a run counts as one).

    Args:
        roots: the folders the app serves runs from.

    Returns:
        Run name -> resolved folder; a name met twice gets its root's name in
        front (``<root>/<run>``).
    """
    found: dict[str, Path] = {}
    for root in map(Path, roots):
        candidates = [root] if _is_run(root) else (sorted(p for p in root.iterdir() if p.is_dir())
                                                   if root.is_dir() else [])
        for folder in candidates:
            if not _is_run(folder):
                continue
            name = folder.name if folder.name not in found else f"{root.name}/{folder.name}"
            found[name] = folder.resolve()
    return found


def run_folder(roots: Sequence[str | Path], name: str) -> Path:
    """The folder of the run called ``name``.

    Args:
        roots: the folders the app serves runs from.
        name: the run's name as :func:`find_runs` gives it.

    Returns:
        The run's folder.

    Raises:
        UnknownRunError: no served folder holds a run of that name.
    """
    runs = find_runs(roots)
    if name not in runs:
        known = ", ".join(sorted(runs)) or "none"
        raise UnknownRunError(f"no run {name!r} in the served folders ({', '.join(map(str, roots)) or 'none'}); "
                              f"runs: {known}")
    return runs[name]


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative`` when it resolves inside ``folder`` and exists as a file.

    Args:
        folder: the folder the path must stay in.
        relative: the requested path.

    Returns:
        The resolved file.

    Raises:
        OutsideFolderError: the path leaves the folder (``..``, an absolute path, a link out).
        FileNotFoundError: no such file inside.
    """
    folder = folder.resolve()
    target = (folder / relative).resolve()
    if target != folder and folder not in target.parents:
        raise OutsideFolderError(f"{relative!r} is outside the run folder")
    if not target.is_file():
        raise FileNotFoundError(f"no file {relative!r} in run {folder.name}")
    return target


# -- summaries ---------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    """JSON has no NaN: an undefined metric (no positives) is None."""
    return None if isinstance(value, float) and value != value else value


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v == v]
    return float(np.mean(values)) if values else None


def run_summary(name: str, folder: Path) -> dict[str, Any]:
    """What the run list shows of one run.

    Args:
        name: the run's name.
        folder: its folder.

    Returns:
        ``name``, ``preset``, ``dataset``, ``date``, ``labels``, ``metrics`` (mean
        test F1, AUC, accuracy, train faces) and ``per_label`` (test F1, accuracy,
        AUC, n); an undefined metric is None.
    """
    import yaml

    out: dict[str, Any] = {"name": name, "preset": "", "dataset": "", "date": "", "labels": [],
                           "metrics": {}, "per_label": {}}
    try:
        config = yaml.safe_load((folder / CONFIG).read_text()) or {}
        out["preset"] = str((config.get("model") or {}).get("preset", ""))
        out["dataset"] = Path(str(config.get("dataset", ""))).name
    except (OSError, yaml.YAMLError):
        pass
    out["date"] = time.strftime("%Y-%m-%d %H:%M", time.localtime((folder / MODEL).stat().st_mtime))
    try:
        out["labels"] = RunDir(folder).schema().label_names
    except FacesKerasError:
        pass
    metrics = _read_metrics(folder)
    f1, auc, accuracy = [], [], []
    for head in metrics.get("heads", {}).values():
        for row in head.get("test", []) if isinstance(head.get("test"), list) else []:
            out["per_label"][row.get("label")] = {k: _finite(row.get(k)) for k in ("f1", "accuracy", "roc_auc", "n")}
            f1.append(row.get("f1"))
            auc.append(row.get("roc_auc"))
            accuracy.append(row.get("accuracy"))
        test = head.get("test")
        if isinstance(test, dict) and "accuracy" in test:  # a multi-class head
            accuracy.append(test.get("accuracy"))
    out["metrics"] = {"mean test F1": _mean(f1), "mean test AUC": _mean(auc),
                      "mean test accuracy": _mean(accuracy), "train faces": metrics.get("train_faces")}
    return out


def _read_metrics(folder: Path) -> dict[str, Any]:
    try:
        return read_json(folder / METRICS_JSON)
    except (OSError, ValueError):
        return {}


def confusion_matrices(folder: Path, split: str = "test") -> list[dict[str, Any]]:
    """Each binary label's confusion matrix from the run's metrics.json.

    Args:
        folder: the run directory.
        split: ``test`` or ``val``.

    Returns:
        ``[{"label", "threshold", "matrix": [[tn, fp], [fn, tp]]}]`` (rows: truth, columns: prediction).
    """
    out = []
    for head in _read_metrics(folder).get("heads", {}).values():
        rows = head.get(split)
        if not isinstance(rows, list):
            continue
        for row in rows:
            if all(k in row for k in ("tp", "fp", "fn", "tn")):
                out.append({"label": row["label"], "threshold": row.get("threshold"),
                            "matrix": [[row["tn"], row["fp"]], [row["fn"], row["tp"]]]})
    return out


# -- thresholds ----------------------------------------------------------------------------

def save_thresholds(folder: Path, thresholds: dict[str, float]) -> dict[str, Any]:
    """Replace the run's binary thresholds; the old thresholds.json is kept beside it.

    The old file is copied to ``thresholds.<UTC time>.json`` first, then the new
    one is written atomically, under the run's one-writer lock (a training that
    is writing the run refuses this).

    Args:
        folder: the run directory.
        thresholds: label -> threshold in [0, 1], for labels the run already has.

    Returns:
        ``{"thresholds": ..., "kept": <name of the copy of the old file>}``.

    Raises:
        RunError: the run has no thresholds.json, a label it does not have, or a
            threshold outside [0, 1].
    """
    from faces_keras.locking import folder_lock
    from faces_keras.thresholds import ThresholdResult

    path = folder / THRESHOLDS
    current = ThresholdResult.load(path)
    unknown = sorted(set(thresholds) - set(current.thresholds))
    if unknown:
        raise RunError(f"{path}: no label(s) {unknown}; it has {sorted(current.thresholds)}")
    bad = {k: v for k, v in thresholds.items() if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0}
    if bad:
        raise RunError(f"thresholds must be numbers in [0, 1], got {bad}")
    with folder_lock(folder, "run directory"):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = folder / f"thresholds.{stamp}.json"
        n = 1
        while kept.exists():
            n += 1
            kept = folder / f"thresholds.{stamp}-{n}.json"
        shutil.copy2(path, kept)
        current = replace(current,
                          thresholds={**current.thresholds, **{k: float(v) for k, v in thresholds.items()}},
                          notes={**current.notes, **{k: "set by hand in the app" for k in thresholds}})
        current.save(path)
    log.info("%s: thresholds %s saved; the old file is %s", folder, thresholds, kept.name)
    return {"thresholds": current.thresholds, "kept": kept.name}


# -- predictions -----------------------------------------------------------------------------

@dataclass
class _Loaded:
    predictor: Any
    stamp: tuple[float, float]


class ModelCache:
    """Loaded runs (the Keras model and the detector), reloaded when model.keras or thresholds.json change.

    Args:
        detector: the face detector's name (``haar`` or ``mtcnn``).
    """

    def __init__(self, detector: str = "haar"):
        self.detector_name = detector
        self._detector = None
        self._runs: dict[Path, _Loaded] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(folder: Path) -> tuple[float, float]:
        thresholds = folder / THRESHOLDS
        return ((folder / MODEL).stat().st_mtime, thresholds.stat().st_mtime if thresholds.exists() else 0.0)

    def predictor(self, folder: Path):
        from faces_keras.inference.predict import Predictor

        stamp = self._stamp(folder)
        loaded = self._runs.get(folder)
        if loaded is None or loaded.stamp != stamp:
            loaded = self._runs[folder] = _Loaded(Predictor(folder), stamp)
        return loaded.predictor

    def detector(self):
        if self._detector is None:
            from faces_keras.data.detect import make_detector

            self._detector = make_detector(self.detector_name)
        return self._detector

    def predict(self, folder: Path, rgb: np.ndarray) -> dict[str, Any]:
        """Faces, boxes, labels and probabilities of one RGB photo with the run in ``folder``.

        Args:
            folder: the run directory.
            rgb: the photo, uint8 ``(H, W, 3)``.

        Returns:
            ``{"faces": [{"box": [x, y, w, h], "labels": ..., "scores": ...,
            "probabilities": ...}], "width": W, "height": H}``: faces left to right;
            ``probabilities`` holds, per binary label, the probability of its
            positive value (what a threshold is compared with), and per
            multi-class label the probability of each class.
        """
        from faces_keras.data.detect import crop_face
        from faces_keras.data.images import to_face
        from faces_keras.inference.runtime import decode_faces

        with self._lock:  # one model call at a time (the Keras model is not re-entrant)
            predictor = self.predictor(folder)
            faces = predictor.faces
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            boxes = sorted(self.detector().detect(bgr), key=lambda b: (b.x, b.y))
            result: dict[str, Any] = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": []}
            if not boxes:
                return result
            crops = np.stack([to_face(crop_face(bgr, b, margin=faces.margin, size=faces.size, gray=faces.gray),
                                      faces.size, gray=faces.gray) for b in boxes])
            outputs = predictor.scores(crops)
            decoded = decode_faces(outputs, predictor.heads, predictor.schema, predictor.thresholds)
        for i, (box, (labels, scores)) in enumerate(zip(boxes, decoded)):
            probabilities: dict[str, Any] = {}
            for head in predictor.heads:
                values = outputs[head.name][i]
                if head.kind == "binary":
                    probabilities.update({name: float(values[j]) for j, name in enumerate(head.labels)})
                elif head.kind == "multiclass":
                    classes = predictor.schema[head.name].classes
                    probabilities[head.name] = {c: float(v) for c, v in zip(classes, values)}
                else:
                    probabilities[head.name] = float(values[0])
            result["faces"].append({"box": [int(box.x), int(box.y), int(box.w), int(box.h)],
                                    "labels": labels, "scores": scores, "probabilities": probabilities})
        return result

    def describe(self, folder: Path) -> dict[str, Any]:
        """The run's labels as the try page needs them: kinds, value names, thresholds."""
        predictor = self.predictor(folder)
        labels = []
        for label in predictor.schema.labels:
            entry: dict[str, Any] = {"name": label.name, "kind": label.kind}
            if label.kind == "binary":
                entry["names"] = label.value_names()
                entry["threshold"] = predictor.thresholds.get(label.name, 0.5)
            elif label.kind == "multiclass":
                entry["names"] = list(label.classes)
            labels.append(entry)
        return {"labels": labels}


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    """An uploaded file's bytes as an image.

    Args:
        data: the file's bytes.
        name: the file's name, for the message.

    Returns:
        uint8 RGB ``(H, W, 3)``.

    Raises:
        ImageError: the bytes are not an image OpenCV can decode.
    """
    import cv2

    array = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR) if array.size else None
    if image is None:
        raise ImageError(f"{name}: not an image (expected a JPEG, PNG or BMP file)")
    return np.ascontiguousarray(image[..., ::-1])


__all__ = ["ModelCache", "OutsideFolderError", "UnknownRunError", "confusion_matrices", "decode_image",
           "find_runs", "inside", "run_folder", "run_summary", "save_thresholds"]
