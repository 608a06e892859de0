"""Find the faces in new photos and predict their labels with a run or an exported model.

Faces are cropped and preprocessed exactly as the run's dataset manifest says
(size, gray or colour, margin), and binary labels use the run's tuned
thresholds: a run that has them never falls back to 0.5.

:func:`predict_photos` streams: face detection runs in a process pool (as
``prepare`` does), the faces of many photos go through the model in one call
per batch, and each batch's rows are appended to ``predictions.csv`` and
flushed as soon as they are known. A rerun with the same ``out`` skips the
photos already in predictions.csv, so a killed run loses at most the batch in
flight (a partly written last line, or a photo with fewer rows than faces, is
dropped and predicted again). One process writes a folder at a time
(:func:`faces_keras.locking.folder_lock`).

predictions.csv has one row per face, and one row with ``face`` 0 and the reason
in ``error`` for a photo that was unreadable or had no face::

    photo,face,faces,x,y,w,h,<label>,<label>_score,...,annotated,error

``predictions.json`` holds the same, grouped by photo, rewritten from the CSV at
the end of each call.

Nothing here imports Keras at module level: with an exported ``.onnx`` or
``.tflite`` model (:class:`faces_keras.inference.runtime.ExportedModel`) the
whole call runs without TensorFlow.
"""

from __future__ import annotations

import csv
import glob
import io
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from faces_keras.data.images import read_image, to_face
from faces_keras.errors import FacesKerasError, ImageError
from faces_keras.inference.runtime import (RUNNABLE, ExportedModel, FaceSettings, decode_faces,
                                           load_thresholds)
from faces_keras.io import atomic_path, atomic_write_text, write_json
from faces_keras.labels.heads import Head, plan_heads
from faces_keras.labels.schema import Schema
from faces_keras.locking import folder_lock
from faces_keras.rundir import MODEL, THRESHOLDS, RunDir
from faces_keras.settings import setting, validate

log = logging.getLogger(__name__)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DETECTORS = ("haar", "mtcnn")
CSV_NAME, JSON_NAME = "predictions.csv", "predictions.json"
NO_FACE = "no face found"


class PredictionsFileError(FacesKerasError):
    """An output folder's predictions.csv belongs to another model's labels or is damaged."""


@dataclass(frozen=True)
class PredictConfig:
    """Settings of :func:`predict_photos` (the ``predict`` command's flags).

    Args:
        out: folder for predictions.csv/.json and the annotated copies; a rerun
            with the same folder resumes.
        cropped: the photos are already face crops: skip detection.
        detector: the face detector, ``haar`` or ``mtcnn``.
        detect_max_side: Haar: shrink photos to this longest side before detecting
            (boxes are mapped back; faces are cut from the full photo). None: 640.
        no_annotate: skip the annotated JPEG copies (the fast path).
        batch_size: faces per model call.
        workers: face-detection processes; 0 means one per core.
    """

    out: str = setting("predictions", help="output folder for predictions.csv/.json and annotated copies; "
                                           "a rerun with the same folder resumes", metavar="DIR")
    cropped: bool = setting(False, help="the photos are already cropped faces: skip detection")
    detector: str = setting("haar", choices=DETECTORS, help="face detector")
    detect_max_side: int | None = setting(None, at_least=24, metavar="PIXELS",
                                          help="haar: shrink photos to this longest side before detecting "
                                               "(faster; default: the detector's 640)")
    no_annotate: bool = setting(False, help="do not write the annotated JPEG copies (faster)")
    batch_size: int = setting(256, at_least=1, help="faces per model call")
    workers: int = setting(0, at_least=0, help="face-detection processes (0: one per core)")

    def __post_init__(self):
        validate(self)


# -- inputs ---------------------------------------------------------------------------

def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in PHOTO_SUFFIXES)


def expand_photos(photos: Iterable[str | Path]) -> list[Path]:
    """The photos to predict: files as given, every image in a folder, and every image a glob matches.

    Folders give their jpg/jpeg/png/bmp files, sorted; a glob (``photos/*.jpg``,
    ``album/**/*.png``) gives its matches sorted, folders among them expanded.
    A file that does not exist is kept, and reported as unreadable when its turn comes.

    Args:
        photos: paths, folders and glob patterns.

    Returns:
        The photo files in order (duplicates kept once, at their first place).

    Raises:
        ImageError: a folder without images, or a glob that matches none; names it.
    """
    out: list[Path] = []
    for given in photos:
        text = str(given)
        photo = Path(text)
        if photo.is_dir():
            found = _images_in(photo)
            if not found:
                raise ImageError(f"{photo} is a folder with no images in it: expected image files "
                                 f"({', '.join(s[1:] for s in PHOTO_SUFFIXES)}) or a folder of them")
            out.extend(found)
        elif not photo.exists() and _is_pattern(text):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                path = Path(match)
                if path.is_dir():
                    found.extend(_images_in(path))
                elif path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith("."):
                    found.append(path)
            if not found:
                raise ImageError(f"{text}: the pattern matches no image files "
                                 f"({', '.join(s[1:] for s in PHOTO_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(photo)
    seen: set[str] = set()
    unique = []
    for photo in out:
        if str(photo) not in seen:
            seen.add(str(photo))
            unique.append(photo)
    return unique


# -- results --------------------------------------------------------------------------

@dataclass
class FacePrediction:
    """One face: where it is, its labels and their scores."""

    box: tuple[int, int, int, int] | None  # x, y, w, h in the photo; None for a cropped face
    labels: dict[str, Any]  # label -> decoded value
    scores: dict[str, float]  # label -> probability of that value (or the value, regression)

    def caption(self, schema: Schema) -> str:
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
    """One photo: its faces, or why it has none; and the annotated copy's path, if one was written."""

    photo: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    annotated: str | None = None


@dataclass
class PredictResult:
    """What :func:`predict_photos` did.

    Attributes:
        out: the output folder.
        csv: predictions.csv (every photo the folder holds, this call's and earlier ones').
        json: predictions.json (the same, grouped by photo).
        schema: the labels predicted.
        photos: the photos asked for.
        resumed: of those, the ones already in predictions.csv, skipped.
        predictions: one per photo predicted in this call, in order.
        seconds: wall time of the call.
    """

    out: Path
    csv: Path
    json: Path
    schema: Schema
    photos: int = 0
    resumed: int = 0
    predictions: list[PhotoPrediction] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def faces(self) -> int:
        return sum(len(p.faces) for p in self.predictions)

    @property
    def no_face(self) -> int:
        return sum(1 for p in self.predictions if p.error == NO_FACE)

    @property
    def unreadable(self) -> int:
        return sum(1 for p in self.predictions if p.error and p.error != NO_FACE)

    @property
    def annotated(self) -> int:
        return sum(1 for p in self.predictions if p.annotated)

    @property
    def photos_per_second(self) -> float:
        return len(self.predictions) / self.seconds if self.seconds else 0.0

    @property
    def exit_code(self) -> int:
        """1 when a photo could not be read, else 0."""
        return 1 if self.unreadable else 0

    def lines(self, per_photo: bool = True) -> list[str]:
        """The summary the command line prints: a line per photo (and face), then the totals."""
        out = []
        if per_photo:
            for r in self.predictions:
                if r.error == NO_FACE:
                    out.append(f"{r.photo}: no face found")
                elif r.error:
                    out.append(f"{r.photo}: skipped: {r.error}")
                else:
                    out.append(f"{r.photo}: {len(r.faces)} face(s)" + (f" -> {r.annotated}" if r.annotated else ""))
                    out.extend(f"  {i}: {face.caption(self.schema)}" for i, face in enumerate(r.faces, 1))
        if self.resumed:
            out.append(f"resumed: {self.resumed} photo(s) already in {self.csv} were skipped")
        out.append(f"{len(self.predictions)} photo(s), {self.faces} face(s), {self.no_face} without a face, "
                   f"{self.unreadable} unreadable in {self.seconds:.1f} s ({self.photos_per_second:.1f} photos/s)")
        out.append(f"predictions: {self.json} and {self.csv.name}")
        return out


# -- predictors -----------------------------------------------------------------------

class FaceModel(Protocol):
    """What :func:`predict_photos` needs of a model: its labels, face settings and a scoring call."""

    schema: Schema
    heads: list[Head]
    faces: FaceSettings
    thresholds: dict[str, float]

    def scores(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities (or values) per head for uint8-range faces ``(n, size, size, C)``."""
        ...


def _bucket(n: int, batch_size: int) -> int:
    """The batch shape ``n`` faces are padded to: the next power of two, at most ``batch_size``.

    A handful of fixed shapes keeps the compiled predict function from being
    traced again for every photo's number of faces.
    """
    size = 1
    while size < n:
        size *= 2
    return min(size, batch_size)


class Predictor:
    """A trained run, ready to label face crops with its Keras model.

    Args:
        run_dir: the run directory (model.keras, schema.yaml, manifest.json, thresholds.json).
        batch_size: faces per model call.

    Raises:
        RunError: the run lacks its model or thresholds.json; the message says what to run.
    """

    def __init__(self, run_dir: str | Path, batch_size: int = 256):
        self.run = RunDir(run_dir)
        self.run.require(MODEL)
        self.schema = self.run.schema()
        self.heads = plan_heads(self.schema)
        settings = self.run.manifest().get("settings", {})
        self.faces = FaceSettings(int(settings.get("size", 64)), bool(settings.get("gray", True)),
                                  float(settings.get("margin", 0.2)))
        self.thresholds = load_thresholds(self.run / THRESHOLDS, self.schema,
                                          f"run `faces-keras thresholds {self.run.path}` first")
        self.batch_size = int(batch_size)
        self._model = None  # loaded at the first call, after the detection processes have started

    @property
    def size(self) -> int:
        return self.faces.size

    @property
    def gray(self) -> bool:
        return self.faces.gray

    @property
    def margin(self) -> float:
        return self.faces.margin

    @property
    def model(self):
        if self._model is None:
            from faces_keras.models.saving import load_run_model

            self._model = load_run_model(self.run, compile=False)
        return self._model

    def _outputs(self, out: Any) -> dict[str, np.ndarray]:
        if isinstance(out, dict):
            return {h.name: np.asarray(out[h.name]) for h in self.heads}
        if isinstance(out, (list, tuple)):
            return {h.name: np.asarray(o) for h, o in zip(self.heads, out)}
        return {self.heads[0].name: np.asarray(out)}

    def scores(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities (or values) per head: one ``predict_on_batch`` per ``batch_size`` faces.

        The last, partial batch is padded to a power of two (see :func:`_bucket`).
        """
        faces = np.asarray(faces, dtype=np.float32)
        parts: dict[str, list[np.ndarray]] = {h.name: [] for h in self.heads}
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start:start + self.batch_size]
            shape = _bucket(len(chunk), self.batch_size)
            if shape > len(chunk):
                chunk = np.concatenate([chunk, np.zeros((shape - len(chunk), *chunk.shape[1:]), np.float32)])
            out = self._outputs(self.model.predict_on_batch(chunk))
            n = min(self.batch_size, len(faces) - start)
            for name, values in out.items():
                parts[name].append(values[:n])
        if not len(faces):
            return {h.name: np.zeros((0, h.units), np.float32) for h in self.heads}
        return {name: np.concatenate(values) for name, values in parts.items()}

    def predict_faces(self, faces: np.ndarray) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """Decoded labels and scores for uint8 faces ``(n, size, size, C)``."""
        return decode_faces(self.scores(faces), self.heads, self.schema, self.thresholds)


def load_face_model(run_or_model: str | Path | FaceModel, batch_size: int = 256) -> FaceModel:
    """A run directory's Keras model, an exported ``.onnx``/``.tflite`` file, or a model object as given.

    Args:
        run_or_model: a run directory, an exported model file, or an object with
            ``schema``, ``heads``, ``faces``, ``thresholds`` and ``scores()``.
        batch_size: faces per model call (run directories).

    Returns:
        The model to predict with.
    """
    if not isinstance(run_or_model, (str, os.PathLike)):
        return run_or_model
    path = Path(run_or_model)
    if path.suffix in RUNNABLE and not path.is_dir():
        return ExportedModel(path)
    return Predictor(path, batch_size=batch_size)


# -- detection workers ----------------------------------------------------------------

@dataclass
class _Found:
    """A worker's answer for one photo: its face crops and boxes, or why there are none."""

    photo: str
    crops: np.ndarray | None = None
    boxes: list[tuple[int, int, int, int] | None] = field(default_factory=list)
    error: str | None = None


_WORKER: dict[str, Any] = {}


def _init_worker(detector: str | None, faces: FaceSettings, max_side: int | None = None) -> None:
    import cv2

    cv2.setNumThreads(1)
    _WORKER["faces"] = faces
    _WORKER["detector"] = None
    if detector:
        from faces_keras.data.detect import make_detector

        params = {"max_side": max_side} if (max_side and detector == "haar") else {}
        _WORKER["detector"] = make_detector(detector, **params)


def _find_faces(photo: str) -> _Found:
    """Worker: read one photo, find its faces (left to right) and crop each as the model wants it."""
    faces: FaceSettings = _WORKER["faces"]
    detector = _WORKER["detector"]
    try:
        rgb = read_image(photo, gray=False)
    except ImageError as exc:
        return _Found(photo, error=str(exc))
    if detector is None:
        return _Found(photo, to_face(rgb, faces.size, gray=faces.gray)[None], [None])
    from faces_keras.data.detect import crop_face

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    boxes = sorted(detector.detect(bgr), key=lambda b: (b.x, b.y))
    if not boxes:
        return _Found(photo, error=NO_FACE)
    crops = np.stack([to_face(crop_face(bgr, b, margin=faces.margin, size=faces.size, gray=faces.gray),
                              faces.size, gray=faces.gray) for b in boxes])
    return _Found(photo, crops, [(b.x, b.y, b.w, b.h) for b in boxes])


def _found_stream(photos: list[str], config: PredictConfig, faces: FaceSettings,
                  workers: int) -> Iterator[_Found]:
    detector = None if config.cropped else config.detector
    if workers <= 1 or len(photos) < 2 * workers:
        _init_worker(detector, faces, config.detect_max_side)
        for photo in photos:
            yield _find_faces(photo)
        return
    # Fresh interpreters, not forks: a fork of a process whose OpenCV or TensorFlow thread pools are
    # running inherits their locks and can hang on its first OpenCV call (seen with Haar after
    # detection in the parent). The workers import OpenCV and this module only, never Keras.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    chunk = max(1, min(16, len(photos) // (4 * workers)))
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(detector, faces, config.detect_max_side))
    try:
        yield from pool.map(_find_faces, photos, chunksize=chunk)
    except BrokenProcessPool:
        raise FacesKerasError(
            f"the {workers} face-detection processes stopped before their work was done. A script that "
            "calls predict_photos with workers > 1 must do so under `if __name__ == \"__main__\":` (each "
            "process imports the script anew), or pass workers=1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- predictions.csv ------------------------------------------------------------------

def csv_header(schema: Schema) -> list[str]:
    """The columns of predictions.csv for a schema."""
    return (["photo", "face", "faces", "x", "y", "w", "h"]
            + [c for n in schema.label_names for c in (n, f"{n}_score")] + ["annotated", "error"])


def _photo_rows(result: PhotoPrediction, schema: Schema) -> list[list[Any]]:
    if not result.faces:
        empty = [""] * (4 + 2 * len(schema.label_names))
        return [[result.photo, 0, 0, *empty, result.annotated or "", result.error or ""]]
    rows = []
    for i, face in enumerate(result.faces, 1):
        box = list(face.box) if face.box else ["", "", "", ""]
        rows.append([result.photo, i, len(result.faces), *box]
                    + [v for n in schema.label_names for v in (face.labels[n], round(face.scores[n], 6))]
                    + [result.annotated or "", ""])
    return rows


def _complete_photos(rows: list[list[str]], width: int) -> tuple[list[list[str]], int]:
    """The rows of photos whose every face row is there; and how many rows were dropped."""
    kept: list[list[str]] = []
    dropped = 0
    i = 0
    while i < len(rows):
        photo = rows[i][0]
        j = i
        while j < len(rows) and rows[j][0] == photo:
            j += 1
        group = rows[i:j]
        try:
            ok = all(len(r) == width for r in group)
            if ok:
                count = int(group[0][2])
                ok = ((count == 0 and len(group) == 1 and group[0][-1] != "")
                      or [int(r[1]) for r in group] == list(range(1, count + 1)))
        except ValueError:
            ok = False
        if ok:
            kept.extend(group)
        else:
            dropped += len(group)
        i = j
    return kept, dropped


def read_predictions_csv(path: Path, schema: Schema) -> list[list[str]]:
    """The complete rows of an existing predictions.csv (without its header), repairing the file.

    A last line cut short by a kill, and the rows of a photo that lack some of
    its faces, are dropped; the file is then rewritten (atomically) without them.

    Raises:
        PredictionsFileError: the file's columns are not this schema's.
    """
    header = csv_header(schema)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PredictionsFileError(f"{path}: not a UTF-8 predictions file (byte {exc.start}); "
                                   "predict into another --out") from None
    if not text:
        return []
    repaired = False
    if not text.endswith("\n"):
        log.warning("%s: dropping a partly written last line (an interrupted run)", path)
        text = text[:text.rfind("\n") + 1]
        repaired = True
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    if rows[0] != header:
        raise PredictionsFileError(f"{path}: its columns ({','.join(rows[0][:12])}...) are not those of this "
                                   f"model's labels ({','.join(header[:12])}...); predict into another --out")
    kept, dropped = _complete_photos(rows[1:], len(header))
    if dropped:
        log.warning("%s: dropping %d row(s) of photos cut short by an interrupted run", path, dropped)
        repaired = True
    if repaired:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
        atomic_write_text(path, buffer.getvalue())
    return kept


def _json_records(rows: list[list[str]], schema: Schema) -> list[dict[str, Any]]:
    names = schema.label_names
    records: list[dict[str, Any]] = []
    for row in rows:
        photo, face = row[0], int(row[1])
        if not records or records[-1]["photo"] != photo:
            records.append({"photo": photo, "error": row[-1] or None, "annotated": row[-2] or None, "faces": []})
        if face == 0:
            continue
        box = None if row[3] == "" else [int(v) for v in row[3:7]]
        labels, scores = {}, {}
        for k, name in enumerate(names):
            value, score = row[7 + 2 * k], float(row[8 + 2 * k])
            labels[name] = float(value) if schema[name].kind == "regression" else value
            scores[name] = score
        records[-1]["faces"].append({"box": box, "labels": labels, "scores": scores})
    return records


# -- annotation -----------------------------------------------------------------------

def _annotate(photo: str, boxes: list, captions: list[str], target: Path) -> str:
    import cv2

    from faces_keras.data.detect import Box, draw_boxes, read_image_bgr

    drawn = draw_boxes(read_image_bgr(photo), [Box(*b) for b in boxes], captions)
    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), drawn):
            raise FacesKerasError(f"{target}: could not write the annotated photo")
    return str(target)


# -- the call -------------------------------------------------------------------------

def predict_photos(run_or_model: str | Path | FaceModel, photos: Sequence[str | Path],
                   config: PredictConfig | None = None, **overrides: Any) -> PredictResult:
    """Predict every face of every photo, streaming rows into ``config.out``/predictions.csv.

    Photos already in that file are skipped (a rerun resumes); the others are
    read and their faces detected in ``config.workers`` processes, their faces
    stacked into batches of ``config.batch_size`` for the model, and each batch's
    rows appended and flushed. Unless ``config.no_annotate``, a copy of each photo
    with its boxes and labels drawn is written as ``<stem>_predicted.jpg``.

    Example:

    ```python
    result = predict_photos("runs/celeba", ["album/", "more/*.jpg"],
                            PredictConfig(out="predictions", no_annotate=True))
    result.faces, result.csv
    ```

    Args:
        run_or_model: a run directory, an exported ``.onnx``/``.tflite`` model, or a
            model object (see :func:`load_face_model`).
        photos: files, folders and glob patterns (see :func:`expand_photos`).
        config: the settings; ``overrides`` replace single fields (``out=...``).

    Returns:
        A :class:`PredictResult`: counts, paths, and this call's photos.

    Raises:
        ImageError: a folder or pattern without images.
        RunError: the run lacks its model or thresholds.
        FolderLockedError: another process is writing the same ``out``.
        PredictionsFileError: ``out`` holds another model's predictions.csv.
    """
    from dataclasses import replace

    config = replace(config or PredictConfig(), **overrides) if overrides else (config or PredictConfig())
    started = time.perf_counter()
    paths = [str(p) for p in expand_photos(photos)]  # a bad folder is named before the model loads
    model = load_face_model(run_or_model, batch_size=config.batch_size)
    schema = model.schema
    out = Path(config.out)
    result = PredictResult(out, out / CSV_NAME, out / JSON_NAME, schema, photos=len(paths))
    with folder_lock(out, "predictions folder"):
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        try:
            _predict_into(model, paths, config, result)
        except BaseException:
            # A call that fails before its first row (a model that does not load) leaves no folder behind.
            if created and not result.predictions:
                shutil.rmtree(out, ignore_errors=True)
            raise
    result.seconds = time.perf_counter() - started
    log.info("predicted %d photo(s), %d face(s) in %.1f s", len(result.predictions), result.faces,
             result.seconds)
    return result


def _predict_into(model: FaceModel, paths: list[str], config: PredictConfig, result: PredictResult) -> None:
    """Resume or start predictions.csv in ``result.out`` (locked by the caller), then predictions.json."""
    schema = model.schema
    existing = read_predictions_csv(result.csv, schema) if result.csv.is_file() else []
    done = {row[0] for row in existing}
    todo = [p for p in paths if p not in done]
    result.resumed = len(paths) - len(todo)
    if result.resumed:
        log.info("%s: %d of %d photo(s) already predicted; resuming with %d", result.csv,
                 result.resumed, len(paths), len(todo))
    workers = config.workers or os.cpu_count() or 1
    fresh = not existing and not (result.csv.is_file() and result.csv.stat().st_size)
    with open(result.csv, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if fresh:
            writer.writerow(csv_header(schema))
            handle.flush()
        _stream(model, todo, config, workers, writer, handle, result)
    rows = read_predictions_csv(result.csv, schema)
    write_json(result.json, {"schema": schema.name, "photos": _json_records(rows, schema)})


def _stream(model: FaceModel, todo: list[str], config: PredictConfig, workers: int, writer, handle,
            result: PredictResult) -> None:
    annotate = not config.no_annotate and not config.cropped
    pending: list[_Found] = []
    waiting = 0
    draw = ThreadPoolExecutor(max_workers=max(1, min(workers, 4))) if annotate else None

    def flush() -> None:
        nonlocal waiting
        with_faces = [f for f in pending if f.crops is not None]
        decoded = iter(())
        if with_faces:
            crops = np.concatenate([f.crops for f in with_faces])
            decoded = iter(decode_faces(model.scores(crops), model.heads, model.schema, model.thresholds))
        batch: list[PhotoPrediction] = []
        jobs = []
        for found in pending:
            prediction = PhotoPrediction(found.photo, error=found.error)
            for box in found.boxes:
                labels, scores = next(decoded)
                prediction.faces.append(FacePrediction(box, labels, scores))
            if draw is not None and prediction.faces:
                target = result.out / f"{Path(found.photo).stem}_predicted.jpg"
                captions = [face.caption(model.schema) for face in prediction.faces]
                jobs.append((prediction, draw.submit(_annotate, found.photo, found.boxes, captions, target)))
            batch.append(prediction)
        for prediction, job in jobs:
            prediction.annotated = job.result()  # the rows name the copy only once it is written
        for prediction in batch:
            writer.writerows(_photo_rows(prediction, model.schema))
        handle.flush()
        result.predictions.extend(batch)
        pending.clear()
        waiting = 0

    try:
        with tqdm(total=len(todo), desc="predict", unit="photo", leave=False, disable=None) as bar:
            for found in _found_stream(todo, config, model.faces, workers):
                pending.append(found)
                if found.crops is not None:
                    waiting += len(found.crops)
                if waiting >= config.batch_size:
                    count = len(pending)
                    flush()
                    bar.update(count)
                    bar.set_postfix(faces=result.faces, refresh=False)
            count = len(pending)
            flush()
            bar.update(count)
    finally:
        if draw is not None:
            draw.shutdown(wait=True)


__all__ = ["FaceModel", "FacePrediction", "PhotoPrediction", "PredictConfig", "PredictResult",
           "PredictionsFileError", "Predictor", "csv_header", "expand_photos", "load_face_model",
           "predict_photos", "read_predictions_csv"]
