"""What a run got right and wrong, face by face: the data behind every prediction report.

One :class:`ReportData` per labelled split (``val`` or ``test``) of a run
directory, read from ``predictions.npz``, ``thresholds.json`` and the
prepared dataset's images. The terminal table (:mod:`.terminal`), the HTML
page (:mod:`.html`), the PNG gallery (:mod:`.gallery`) and the CSV
(:func:`write_predictions_csv`) only render it, so they always agree.

Right and wrong:

* binary labels: the prediction is ``P(positive) >= threshold``, with the
  per-label threshold tuned on validation (``thresholds.json``). Without that
  file every renderer says so loudly and 0.5 is used;
* multiclass labels: the arg-max of the softmax;
* regression labels: no right or wrong; the true and predicted values are
  shown side by side, uncoloured (status ``"value"``);
* a face whose truth is missing for a label is neither (status ``"missing"``).

Sampling, as the original project did: ``per_class`` faces of each class of
each label (seeded); regression labels contribute ``per_class`` faces from each
fifth of their true values; ``per_class=0`` takes every face.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faces_keras.errors import FacesKerasError, RunError
from faces_keras.io import atomic_write_text
from faces_keras.labels.schema import Label
from faces_keras.thresholds.tune import DEFAULT_THRESHOLD, ThresholdResult, apply_thresholds
from faces_keras.rundir import PREDICTIONS, THRESHOLDS, RunDir

log = logging.getLogger(__name__)

SPLITS = ("val", "test")
RIGHT, WRONG, MISSING, VALUE = "right", "wrong", "missing", "value"
DEFAULT_PER_CLASS = 5
# Regression labels are sampled from this many equal-count bins of their true values.
REGRESSION_BINS = 5


# -- one label ----------------------------------------------------------------------

@dataclass(frozen=True)
class LabelResult:
    """One label's truth and prediction for every face of the split (prediction order).

    ``truth`` is encoded (binary 1/0/-1, multiclass index/-1, regression
    value/NaN); ``prob`` is P(positive) for binary labels, the (n, K) softmax
    for multiclass ones and the predicted value for regression; ``predicted``
    is 0/1, the class index, or the value.
    """

    label: Label
    head: str
    truth: np.ndarray
    prob: np.ndarray
    predicted: np.ndarray
    threshold: float | None = None

    @property
    def name(self) -> str:
        return self.label.name

    @property
    def kind(self) -> str:
        return self.label.kind

    @property
    def value_names(self) -> list[str]:
        return self.label.value_names()

    @cached_property
    def labelled(self) -> np.ndarray:
        """Faces whose truth is known for this label."""
        if self.kind == "regression":
            return ~np.isnan(self.truth)
        return self.truth >= 0

    @cached_property
    def right(self) -> np.ndarray:
        """True where the prediction matches a known truth (always False for regression)."""
        if self.kind == "regression":
            return np.zeros(self.truth.shape, dtype=bool)
        return self.labelled & (self.predicted == self.truth)

    @cached_property
    def wrong(self) -> np.ndarray:
        if self.kind == "regression":
            return np.zeros(self.truth.shape, dtype=bool)
        return self.labelled & (self.predicted != self.truth)

    def status(self, position: int) -> str:
        """``right``, ``wrong``, ``missing`` (no truth) or ``value`` (regression)."""
        if not self.labelled[position]:
            return MISSING
        if self.kind == "regression":
            return VALUE
        return RIGHT if self.right[position] else WRONG

    def truth_text(self, position: int) -> str:
        return self._text(self.truth[position])

    def prediction_text(self, position: int) -> str:
        return self._text(self.predicted[position])

    def probability(self, position: int) -> float | None:
        """P(positive) for binary labels, P(predicted class) for multiclass, None for regression."""
        if self.kind == "binary":
            return float(self.prob[position])
        if self.kind == "multiclass":
            return float(self.prob[position, int(self.predicted[position])])
        return None

    def _text(self, value) -> str:
        if self.kind == "regression":
            return "n/a" if math.isnan(value) else format_number(float(value))
        value = int(value)
        return "n/a" if value < 0 else self.value_names[value]


def format_number(value: float) -> str:
    """A regression value: whole numbers as such, others with one decimal."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


@dataclass(frozen=True)
class Cell:
    """What every renderer shows for one face and one label."""

    label: str
    kind: str
    truth: str
    prediction: str
    probability: float | None
    status: str
    threshold: float | None = None


# -- the report data ----------------------------------------------------------------

@dataclass
class ReportData:
    """Everything a report shows about one split of one run."""

    run: RunDir
    split: str
    labels: list[LabelResult]
    faces: pd.DataFrame  # one row per face of the split, in prediction order
    images: np.ndarray | None  # (n, S, S, C) uint8, None when the dataset is unavailable
    thresholds_from: str | None  # the thresholds file read, None when 0.5 was used
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(len(self.faces))

    def __getitem__(self, name: str) -> LabelResult:
        for result in self.labels:
            if result.name == name:
                return result
        raise KeyError(f"no label {name!r} in this report; it has {[r.name for r in self.labels]}")

    def cells(self, position: int) -> list[Cell]:
        """One :class:`Cell` per label for the face at ``position``."""
        return [Cell(r.name, r.kind, r.truth_text(position), r.prediction_text(position),
                     r.probability(position), r.status(position), r.threshold)
                for r in self.labels]

    def face_id(self, position: int) -> str:
        return str(self.faces["id"].iat[position])

    def image(self, position: int) -> np.ndarray | None:
        return None if self.images is None else self.images[position]

    def sample(self, per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> np.ndarray:
        """Positions of the faces to show, in prediction order; see the module docstring."""
        return sample_positions(self.labels, self.n, per_class, seed)

    def sampling_note(self, per_class: int, shown: int) -> str:
        if per_class <= 0:
            return f"all {self.n} faces of the {self.split} split"
        return (f"{shown} of {self.n} faces of the {self.split} split: up to {per_class} of each "
                f"class of each label (seeded)")

    def threshold_note(self) -> str:
        binary = [r for r in self.labels if r.kind == "binary"]
        if not binary:
            return "no binary labels: multiclass labels take the arg-max"
        cuts = ", ".join(f"{r.name} {r.threshold:.2f}" for r in binary)
        if self.thresholds_from:
            return f"binary labels at the thresholds tuned on validation ({self.thresholds_from}): {cuts}"
        return f"binary labels at the DEFAULT threshold 0.5 (no {THRESHOLDS}): {cuts}"


def sample_positions(labels: list[LabelResult], n: int, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` faces of each class of each label (all faces when ``per_class`` <= 0)."""
    if per_class <= 0:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for result in labels:
        for group in _groups(result):
            if group.size:
                take = min(per_class, group.size)
                chosen.update(int(p) for p in rng.choice(group, take, replace=False))
    return np.array(sorted(chosen), dtype=int)


def _groups(result: LabelResult) -> list[np.ndarray]:
    """Positions of each class (classification) or of each value bin (regression)."""
    labelled = np.flatnonzero(result.labelled)
    if result.kind != "regression":
        return [np.flatnonzero(result.truth == k) for k in range(len(result.value_names))]
    if labelled.size == 0:
        return []
    order = labelled[np.argsort(result.truth[labelled], kind="stable")]
    return list(np.array_split(order, REGRESSION_BINS))


# -- loading ------------------------------------------------------------------------

def load_report_data(run: RunDir | str | Path, split: str = "test") -> ReportData:
    """Read a run's predictions, thresholds and dataset images for one labelled split."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    if split not in SPLITS:
        raise RunError(f"split {split!r}: reports cover a labelled split, one of {SPLITS}")
    run.require(PREDICTIONS)
    schema = run.schema()
    predictions = run.load_predictions()
    if f"{split}/index" not in predictions:
        raise RunError(f"{run / PREDICTIONS}: no predictions for the {split!r} split "
                       f"(keys: {sorted(predictions)[:8]})")
    warnings: list[str] = []
    thresholds, thresholds_from = _read_thresholds(run, schema, warnings)
    labels = []
    for head in _stored_heads(schema, predictions, split, run):
        labels.extend(_head_results(head, schema, predictions, split, thresholds, run))
    index = predictions[f"{split}/index"].astype(int)
    faces, images = _faces_and_images(run, index, warnings)
    for message in warnings:
        log.warning("%s", message)
    return ReportData(run, split, labels, faces, images, thresholds_from, warnings,
                      _facts(run, split, len(index)))


def _read_thresholds(run: RunDir, schema, warnings: list[str]) -> tuple[dict[str, float], str | None]:
    binary = [label.name for label in schema.binary_labels]
    if not binary:
        return {}, None
    path = run / THRESHOLDS
    if not path.is_file():
        warnings.append(f"{path} is missing: binary labels are judged at the default threshold 0.5, "
                        f"not at thresholds tuned on validation (run `faces-keras thresholds {run.path}`)")
        return {name: DEFAULT_THRESHOLD for name in binary}, None
    tuned = ThresholdResult.load(path).thresholds
    untuned = [name for name in binary if name not in tuned]
    if untuned:
        warnings.append(f"{path} has no threshold for {untuned}: those labels use 0.5")
    return {name: float(tuned.get(name, DEFAULT_THRESHOLD)) for name in binary}, THRESHOLDS


@dataclass(frozen=True)
class _Head:
    name: str
    kind: str
    labels: tuple[str, ...]


def _stored_heads(schema, predictions: dict[str, np.ndarray], split: str, run: RunDir) -> list[_Head]:
    """The heads whose outputs predictions.npz holds, read from its keys.

    Multiclass and regression heads are named after their label; the binary
    labels share the one remaining head (``faces_keras.models.heads.plan_heads``),
    found here without importing Keras, which would cost seconds per report.
    """
    heads = [_Head(label.name, label.kind, (label.name,)) for label in schema.labels
             if label.kind != "binary"]
    binary = tuple(label.name for label in schema.binary_labels)
    if binary:
        taken = {"index", *(head.name for head in heads)}
        found = sorted({key.split("/")[1] for key in predictions
                        if key.startswith(f"{split}/") and key.count("/") == 1} - taken)
        if len(found) != 1:
            raise RunError(f"{run / PREDICTIONS}: expected one binary head for {list(binary)} among the "
                           f"{split!r} predictions, found {found or 'none'}")
        heads.insert(0, _Head(found[0], "binary", binary))
    return heads


def _head_results(head: _Head, schema, predictions: dict[str, np.ndarray], split: str,
                  thresholds: dict[str, float], run: RunDir) -> list[LabelResult]:
    key = f"{split}/{head.name}"
    if key not in predictions or f"{key}/true" not in predictions:
        raise RunError(f"{run / PREDICTIONS}: no {key!r} predictions and truth for head {head.name!r}")
    prob, truth = predictions[key], predictions[f"{key}/true"]
    if head.kind == "binary":
        prob = np.asarray(prob, dtype=float).reshape(len(prob), -1)
        truth = np.asarray(truth).reshape(len(truth), -1).astype(int)
        names = list(head.labels)
        if prob.shape[1] != len(names):
            raise RunError(f"{run / PREDICTIONS}: {key!r} has {prob.shape[1]} columns for the "
                           f"{len(names)} binary labels {names}")
        predicted = apply_thresholds(prob, thresholds, names)
        return [LabelResult(schema[name], head.name, truth[:, j], prob[:, j], predicted[:, j],
                            thresholds[name]) for j, name in enumerate(names)]
    label = schema[head.labels[0]]
    if head.kind == "multiclass":
        prob = np.asarray(prob, dtype=float)
        truth = np.asarray(truth).reshape(-1).astype(int)
        return [LabelResult(label, head.name, truth, prob, np.argmax(prob, axis=1))]
    values = np.asarray(prob, dtype=float).reshape(-1)
    truth = np.asarray(truth, dtype=float).reshape(-1)
    return [LabelResult(label, head.name, truth, values, values)]


def _faces_and_images(run: RunDir, index: np.ndarray,
                      warnings: list[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The split's rows and images from the dataset the run trained on.

    A run outlives its dataset folder (copied, moved, re-prepared); the report
    then still shows every prediction, with dataset indices for ids and no
    images, and says why.
    """
    from faces_keras.data.store import Dataset

    manifest = run.manifest()
    fallback = pd.DataFrame({"index": index, "id": [str(i) for i in index], "source_id": ""})
    path = manifest.get("path")
    if not path:
        warnings.append(f"{run / 'manifest.json'} names no dataset path: no face images")
        return fallback, None
    try:
        dataset = Dataset.load(path)
    except (FacesKerasError, OSError, ValueError) as exc:
        warnings.append(f"dataset images unavailable ({exc}): the report shows no faces")
        return fallback, None
    if dataset.manifest.get("images_sha256") != manifest.get("images_sha256"):
        warnings.append(f"{path} changed since this run trained on it (images checksum "
                        f"{dataset.manifest.get('images_sha256')} != {manifest.get('images_sha256')}): "
                        "the report shows no faces")
        return fallback, None
    if index.size and (index.min() < 0 or index.max() >= len(dataset.faces)):
        raise RunError(f"{run / PREDICTIONS}: face index out of range for {path} "
                       f"({len(dataset.faces)} faces)")
    faces = dataset.faces.iloc[index].reset_index(drop=True)
    return faces, dataset.images[index]


def _facts(run: RunDir, split: str, n: int) -> dict[str, str]:
    config = run.read_config() if (run / "config.yaml").is_file() else {}
    manifest = run.manifest()
    predicted = (run / PREDICTIONS).stat().st_mtime
    device = config.get("environment") or config.get("device") or {}
    return {
        "run": str(run.path.resolve()),
        "preset": str((config.get("model") or {}).get("preset", "unknown")),
        "dataset": f"{manifest.get('schema', {}).get('name', '?')} at {manifest.get('path', '?')}",
        "split": f"{split} ({n} faces)",
        "predicted": time.strftime("%Y-%m-%d %H:%M", time.localtime(predicted)),
        "report written": time.strftime("%Y-%m-%d %H:%M"),
        "backend": f"{device.get('backend', '?')} on {device.get('device', '?')}",
    }


# -- metrics (whole split) ------------------------------------------------------------

def metrics_tables(data: ReportData) -> dict[str, Any]:
    """Per-label metrics over every face of the split, from the same predictions the gallery shows.

    Returns ``binary`` (a DataFrame, one row per label, at the report's
    thresholds), ``multiclass`` (label -> :func:`multiclass_metrics` result plus
    ``right``/``wrong`` counts) and ``regression`` (label -> MAE, RMSE, n).
    """
    from faces_keras.reports.metrics import binary_metrics, multiclass_metrics, regression_metrics

    binary_rows, multiclass, regression = [], {}, {}
    for r in data.labels:
        if r.kind == "binary":
            binary_rows.append(binary_metrics(r.truth[:, None], r.prob[:, None], [r.name],
                                              {r.name: r.threshold}))
        elif r.kind == "multiclass":
            result = multiclass_metrics(r.truth, r.prob, r.value_names)
            result["right"], result["wrong"] = int(r.right.sum()), int(r.wrong.sum())
            multiclass[r.name] = result
        else:
            regression[r.name] = regression_metrics(r.truth, r.predicted)
    binary = pd.concat(binary_rows, ignore_index=True) if binary_rows else pd.DataFrame()
    return {"binary": binary, "multiclass": multiclass, "regression": regression}


def binary_confusion(result: LabelResult) -> np.ndarray:
    """2 x 2 counts, rows the true value (negative, positive), columns the prediction."""
    keep = result.labelled
    matrix = np.zeros((2, 2), dtype=int)
    np.add.at(matrix, (result.truth[keep], result.predicted[keep]), 1)
    return matrix


# -- CSV -------------------------------------------------------------------------------

def predictions_frame(data: ReportData) -> pd.DataFrame:
    """Every prediction of the split, one row per face.

    Columns: ``index`` (dataset row), ``id``, ``source_id``, then per label
    ``<label>_true``, ``<label>_prob`` (binary: P(positive); multiclass:
    P(predicted class)), ``<label>_pred`` (value names), ``<label>_right``
    (empty where the truth is missing). Binary labels add
    ``<label>_threshold``; regression labels have no prob and no right, and
    add ``<label>_error`` (prediction minus truth).
    """
    out = pd.DataFrame({"index": data.faces["index"].to_numpy(), "id": data.faces["id"].to_numpy(),
                        "source_id": data.faces["source_id"].to_numpy()})
    for r in data.labels:
        positions = range(data.n)
        if r.kind == "regression":
            out[f"{r.name}_true"] = r.truth
            out[f"{r.name}_pred"] = np.round(r.predicted, 3)
            out[f"{r.name}_error"] = np.round(r.predicted - r.truth, 3)
            continue
        names = np.array(r.value_names + ["n/a"], dtype=object)  # -1 (missing) indexes "n/a"
        out[f"{r.name}_true"] = names[r.truth]
        out[f"{r.name}_prob"] = np.round([r.probability(p) for p in positions], 4)
        out[f"{r.name}_pred"] = names[r.predicted.astype(int)]
        if r.kind == "binary":
            out[f"{r.name}_threshold"] = r.threshold
        right = pd.array(r.right, dtype="boolean")
        right[~r.labelled] = pd.NA
        out[f"{r.name}_right"] = right
    return out


def write_predictions_csv(data: ReportData, path: str | Path | None = None) -> Path:
    """Write :func:`predictions_frame` atomically (default ``<run>/predictions_<split>.csv``)."""
    path = Path(path) if path else data.run / f"predictions_{data.split}.csv"
    atomic_write_text(path, predictions_frame(data).to_csv(index=False))
    return path


# -- the CLI ---------------------------------------------------------------------------

def report_filename(split: str) -> str:
    """``report.html`` for test (what training writes), ``report_val.html`` for val."""
    return "report.html" if split == "test" else f"report_{split}.html"


def report_command(args) -> int:
    """``faces-keras report RUN``: terminal table, then the HTML, PNG and CSV files.

    ``args`` has ``run``, ``split``, ``per_class``, ``no_color`` and ``out``
    (a folder; default the run directory).
    """
    from faces_keras.reports.gallery import save_gallery
    from faces_keras.reports.html import write_html_report
    from faces_keras.reports.terminal import print_report

    data = load_report_data(RunDir(args.run), args.split)
    folder = Path(args.out) if getattr(args, "out", None) else data.run.path
    per_class = int(args.per_class)
    print_report(data, per_class=per_class, stream=sys.stdout,
                 color=False if getattr(args, "no_color", False) else None)
    written = [
        write_html_report(data, folder / report_filename(data.split), per_class=per_class),
        save_gallery(data, folder / f"report_{data.split}.png", per_class=per_class),
        write_predictions_csv(data, folder / f"predictions_{data.split}.csv"),
    ]
    print()
    for path in written:
        print(f"wrote {path}")
    return 0


__all__ = [
    "Cell", "LabelResult", "ReportData", "load_report_data", "sample_positions", "metrics_tables",
    "binary_confusion", "predictions_frame", "write_predictions_csv", "report_command",
    "report_filename", "RIGHT", "WRONG", "MISSING", "VALUE",
]
