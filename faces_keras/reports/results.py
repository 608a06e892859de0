"""What a report shows, face by face: the data model every renderer reads.

One :class:`ReportData` per labelled set: a run's ``val`` or ``test`` split
(read by :func:`faces_keras.reports.load.load_report_data`) or any labelled set
scored elsewhere (:func:`faces_keras.reports.report.write_set_report`). The
terminal table (:mod:`.terminal`), the HTML page (:mod:`.html`), the PNG
gallery (:mod:`.gallery`), the CSV (:func:`predictions_frame`), the per-group
tables (:mod:`.groups`) and the calibration (:mod:`.calibration`) only render
it, so they always agree. This module imports none of them.

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

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from faces_keras.errors import FacesKerasError
from faces_keras.labels.heads import plan_heads
from faces_keras.labels.schema import Label, Schema
from faces_keras.reports.metrics import binary_metrics, multiclass_metrics, regression_metrics
from faces_keras.rundir import THRESHOLDS, RunDir
from faces_keras.thresholds.tune import apply_thresholds

RIGHT, WRONG, MISSING, VALUE = "right", "wrong", "missing", "value"
DEFAULT_PER_CLASS = 5  # faces of each class of each label a report shows
# Regression labels are sampled from this many equal-count bins of their true values.
REGRESSION_BINS = 5


class ReportError(FacesKerasError):
    """Predictions, truth or thresholds handed to a report do not fit its schema."""


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
    """Everything a report shows about one labelled set (a run's split, or any scored set).

    Attributes:
        name: what the set is called in titles (the run folder's name, or the set's title).
        split: the split or set name used in headings and file names (``val``, ``test``, ...).
        labels: one :class:`LabelResult` per label, in head order
            (:func:`faces_keras.labels.heads.plan_heads`).
        faces: one row per face, in prediction order (``index``, ``id``,
            ``source_id`` and whatever else the set has).
        images: (n, S, S, C) uint8 faces, or None when they are unavailable.
        thresholds_from: where the binary thresholds came from (None: the default 0.5).
        warnings: what the reader should know first (shown loudly by every renderer).
        facts: name -> value lines shown at the top of the HTML page.
        source: where the set came from (a run directory's path), for the terminal header.
        plots: caption -> PNG file embedded in the HTML (training history, threshold curves).
        run: the run directory, when the set is one of its splits.
    """

    name: str
    split: str
    labels: list[LabelResult]
    faces: pd.DataFrame
    images: np.ndarray | None
    thresholds_from: str | None
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    source: str = ""
    plots: dict[str, Path] = field(default_factory=dict)
    run: RunDir | None = None

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

    def face_index(self, position: int) -> int:
        """The face's row in its dataset (its position when the set has no ``index`` column)."""
        return int(self.faces["index"].iat[position]) if "index" in self.faces else int(position)

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



# -- building the label results ----------------------------------------------------------

def label_results(schema: Schema, probabilities: Mapping[str, np.ndarray], truths: Mapping[str, np.ndarray],
                  thresholds: Mapping[str, float], where: str = "predictions") -> list[LabelResult]:
    """One :class:`LabelResult` per label of ``schema``, in head order.

    The heads are planned from the schema (:func:`faces_keras.labels.heads.plan_heads`):
    the binary labels share one head, each multiclass and regression label has
    its own.

    Args:
        schema: the labels.
        probabilities: head name -> model output: (n, L) P(positive) for the binary
            head, (n, K) softmax for a multiclass head, (n,) or (n, 1) values for a
            regression head.
        truths: head name -> encoded truth of the same faces: (n, L) 1/0/-1 for the
            binary head, (n,) class index or -1, (n,) or (n, 1) values or NaN.
        thresholds: binary label name -> threshold (every binary label needs one).
        where: what the arrays were read from, for messages.

    Returns:
        The label results.

    Raises:
        ReportError: a head's arrays are missing or of the wrong shape, or a binary
            label has no threshold.
    """
    results: list[LabelResult] = []
    n = None
    for head in plan_heads(schema):
        if head.name not in probabilities or head.name not in truths:
            lacking = "outputs" if head.name not in probabilities else "truth"
            raise ReportError(f"{where}: no {lacking} for head {head.name!r} (labels {list(head.labels)}); "
                              f"the schema's heads are {[h.name for h in plan_heads(schema)]}")
        prob, truth = np.asarray(probabilities[head.name]), np.asarray(truths[head.name])
        if n is None:
            n = len(prob)
        if len(prob) != n or len(truth) != n:
            raise ReportError(f"{where}: head {head.name!r} has {len(prob)} outputs and {len(truth)} truths "
                              f"for {n} faces")
        if head.kind == "binary":
            prob = prob.astype(float).reshape(n, -1)
            truth = truth.reshape(n, -1).astype(int)
            names = list(head.labels)
            if prob.shape[1] != len(names) or truth.shape[1] != len(names):
                raise ReportError(f"{where}: head {head.name!r} has {prob.shape[1]} output and "
                                  f"{truth.shape[1]} truth columns for the {len(names)} binary labels {names}")
            untuned = [name for name in names if name not in thresholds]
            if untuned:
                raise ReportError(f"{where}: no threshold for binary label(s) {untuned}; "
                                  f"expected one per label of {names}")
            cuts = {name: float(thresholds[name]) for name in names}
            predicted = apply_thresholds(prob, cuts, names)
            results.extend(LabelResult(schema[name], head.name, truth[:, j], prob[:, j], predicted[:, j],
                                       cuts[name]) for j, name in enumerate(names))
        elif head.kind == "multiclass":
            prob = prob.astype(float)
            if prob.ndim != 2 or prob.shape[1] != head.units:
                raise ReportError(f"{where}: head {head.name!r} outputs have shape {prob.shape}; expected "
                                  f"({n}, {head.units}) for the classes {schema[head.labels[0]].value_names()}")
            truth = truth.reshape(-1).astype(int)
            results.append(LabelResult(schema[head.labels[0]], head.name, truth, prob, np.argmax(prob, axis=1)))
        else:
            values = prob.astype(float).reshape(-1)
            if values.size != n:
                raise ReportError(f"{where}: head {head.name!r} outputs have shape {prob.shape}; expected ({n}, 1)")
            results.append(LabelResult(schema[head.labels[0]], head.name, truth.astype(float).reshape(-1),
                                       values, values))
    return results


# -- metrics (whole split) ------------------------------------------------------------

def metrics_tables(data: ReportData) -> dict[str, Any]:
    """Per-label metrics over every face of the split, from the same predictions the gallery shows.

    Returns ``binary`` (a DataFrame, one row per label, at the report's
    thresholds), ``multiclass`` (label -> :func:`multiclass_metrics` result plus
    ``right``/``wrong`` counts) and ``regression`` (label -> MAE, RMSE, n).
    Binary rows and multiclass results carry ``ece``, the expected calibration
    error (:mod:`faces_keras.reports.calibration`), as metrics.json does.
    """
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
    faces = data.faces
    out = pd.DataFrame({
        "index": faces["index"].to_numpy() if "index" in faces else np.arange(data.n),
        "id": faces["id"].astype(str).to_numpy(),
        "source_id": faces["source_id"].to_numpy() if "source_id" in faces else "",
    })
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




__all__ = [
    "Cell", "LabelResult", "ReportData", "ReportError", "label_results", "sample_positions", "metrics_tables",
    "binary_confusion", "predictions_frame", "format_number", "DEFAULT_PER_CLASS", "RIGHT", "WRONG",
    "MISSING", "VALUE",
]
