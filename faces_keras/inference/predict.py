"""``faces-keras predict``: find the faces in new photos and predict their labels with a run.

Faces are cropped and preprocessed exactly as the run's dataset manifest says
(size, gray or colour, margin), and binary labels use the run's tuned
thresholds: a run that has them never falls back to 0.5.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faces_keras.data.images import read_image, to_face
from faces_keras.errors import FacesKerasError, ImageError, RunError
from faces_keras.io import atomic_path, atomic_write_text, write_json
from faces_keras.labels.heads import plan_heads
from faces_keras.models.saving import load_run_model
from faces_keras.rundir import THRESHOLDS, RunDir

log = logging.getLogger(__name__)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def expand_photos(photos: list[str | Path]) -> list[Path]:
    """The photos to predict: files as given, and every image in a folder (jpg/jpeg/png/bmp, sorted).

    A folder without images raises :class:`ImageError` naming it.
    """
    out: list[Path] = []
    for photo in map(Path, photos):
        if photo.is_dir():
            found = sorted(f for f in photo.iterdir()
                           if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in PHOTO_SUFFIXES)
            if not found:
                raise ImageError(f"{photo} is a folder with no images in it: expected image files "
                                 f"({', '.join(s[1:] for s in PHOTO_SUFFIXES)}) or a folder of them")
            out.extend(found)
        else:
            out.append(photo)
    return out


@dataclass
class FacePrediction:
    box: tuple[int, int, int, int] | None  # x, y, w, h in the photo; None for a cropped face
    labels: dict[str, Any]  # label -> decoded value
    scores: dict[str, float]  # label -> probability of that value (or the value, regression)

    def caption(self, schema) -> str:
        """Short text for the photo: positive binary labels, classes with their probability."""
        parts = []
        for label in schema.labels:
            value = self.labels[label.name]
            if label.kind == "binary":
                names = label.value_names()
                if names != ["no", "yes"]:
                    parts.append(str(value))
                elif value == "yes":
                    parts.append(label.name)
            elif label.kind == "multiclass":
                parts.append(f"{value} {self.scores[label.name]:.2f}")
            else:
                parts.append(f"{label.name} {value:.0f}")
        return " ".join(parts) or "-"


@dataclass
class PhotoPrediction:
    photo: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    annotated: str | None = None


class Predictor:
    """A trained run, ready to label face crops."""

    def __init__(self, run_dir: str | Path):
        self.run = RunDir(run_dir)
        self.model = load_run_model(self.run)
        self.schema = self.run.schema()
        self.heads = plan_heads(self.schema)
        settings = self.run.manifest().get("settings", {})
        self.size = int(settings.get("size", 64))
        self.gray = bool(settings.get("gray", True))
        self.margin = float(settings.get("margin", 0.2))
        self.thresholds = self._load_thresholds()

    def _load_thresholds(self) -> dict[str, float]:
        binary = [label.name for label in self.schema.binary_labels]
        if not binary:
            return {}
        path = self.run / THRESHOLDS
        if not path.is_file():
            raise RunError(f"{self.run.path}: {THRESHOLDS} is missing; run `faces-keras thresholds "
                           f"{self.run.path}` first (predict does not fall back to 0.5)")
        from faces_keras.thresholds import ThresholdResult

        thresholds = ThresholdResult.load(path).thresholds
        missing = [name for name in binary if name not in thresholds]
        if missing:
            raise RunError(f"{path}: no threshold for label(s) {missing}")
        return thresholds

    def predict_faces(self, faces: np.ndarray) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """Decoded labels and scores for uint8 faces ``(n, size, size, C)``."""
        from faces_keras.training.train import predict_heads

        outputs = predict_heads(self.model, faces.astype("float32"), self.heads)
        results = []
        for i in range(len(faces)):
            labels, scores = {}, {}
            for head in self.heads:
                probs = outputs[head.name][i]
                if head.kind == "binary":
                    for j, name in enumerate(head.labels):
                        p = float(probs[j])
                        positive = p >= self.thresholds[name]
                        labels[name] = self.schema[name].value_names()[int(positive)]
                        scores[name] = p if positive else 1.0 - p
                elif head.kind == "multiclass":
                    k = int(np.argmax(probs))
                    labels[head.name] = self.schema[head.name].classes[k]
                    scores[head.name] = float(probs[k])
                else:
                    labels[head.name] = float(probs[0])
                    scores[head.name] = float(probs[0])
            results.append((labels, scores))
        return results


def predict_photos(run_dir: str | Path, photos: list[str | Path], out: str | Path, *,
                   cropped: bool = False, detector: str = "haar") -> list[PhotoPrediction]:
    """Predict every face of every photo; write annotated copies and predictions.json/.csv to ``out``."""
    from faces_keras.data.detect import crop_face, draw_boxes, make_detector

    photos = expand_photos(photos)  # a bad folder is named before the model loads
    predictor = Predictor(run_dir)
    finder = None if cropped else make_detector(detector)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for photo in photos:
        result = PhotoPrediction(str(photo))
        results.append(result)
        try:
            rgb = read_image(photo, gray=False)
        except ImageError as exc:
            result.error = str(exc)
            continue
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        if cropped:
            boxes = [None]
            crops = [to_face(rgb, predictor.size, gray=predictor.gray)]
        else:
            boxes = sorted(finder.detect(bgr), key=lambda b: (b.x, b.y))
            crops = [to_face(crop_face(bgr, b, margin=predictor.margin, size=predictor.size, gray=predictor.gray),
                             predictor.size, gray=predictor.gray) for b in boxes]
        if not crops:
            result.error = "no face found"
            continue
        for box, (labels, scores) in zip(boxes, predictor.predict_faces(np.stack(crops))):
            result.faces.append(FacePrediction(None if box is None else (box.x, box.y, box.w, box.h), labels, scores))
        if not cropped:
            captions = [face.caption(predictor.schema) for face in result.faces]
            annotated = draw_boxes(bgr, boxes, captions)
            target = out / f"{Path(photo).stem}_predicted.jpg"
            _write_image(target, annotated)
            result.annotated = str(target)
    _write_predictions(out, results, predictor.schema)
    return results


def _write_image(path: Path, bgr: np.ndarray) -> None:
    import cv2

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), bgr):
            raise FacesKerasError(f"{path}: could not write the annotated photo")


def _write_predictions(out: Path, results: list[PhotoPrediction], schema) -> None:
    records = [{"photo": r.photo, "error": r.error, "annotated": r.annotated,
                "faces": [{"box": f.box, "labels": f.labels, "scores": f.scores} for f in r.faces]}
               for r in results]
    write_json(out / "predictions.json", {"schema": schema.name, "photos": records})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["photo", "face", "x", "y", "w", "h"] + [c for n in schema.label_names for c in (n, f"{n}_score")])
    for r in results:
        for i, f in enumerate(r.faces):
            box = list(f.box) if f.box else ["", "", "", ""]
            writer.writerow([r.photo, i + 1, *box] + [v for n in schema.label_names
                                                      for v in (f.labels[n], round(f.scores[n], 4))])
    atomic_write_text(out / "predictions.csv", buffer.getvalue())


def predict_command(args) -> int:
    photos = expand_photos(args.photos)
    results = predict_photos(args.run, photos, args.out, cropped=args.cropped, detector=args.detector)
    schema = RunDir(args.run).schema()
    unreadable = 0
    for r in results:
        if r.error and "no face" not in r.error:
            unreadable += 1
            print(f"{r.photo}: skipped: {r.error}")
        elif r.error:
            print(f"{r.photo}: no face found")
        else:
            print(f"{r.photo}: {len(r.faces)} face(s)" + (f" -> {r.annotated}" if r.annotated else ""))
            for i, face in enumerate(r.faces, 1):
                print(f"  {i}: {face.caption(schema)}")
    print(f"predictions: {Path(args.out) / 'predictions.json'} and predictions.csv")
    return 1 if unreadable else 0


__all__ = ["Predictor", "expand_photos", "predict_photos", "predict_command"]
