"""Per-label decision thresholds that maximise F1, tuned on validation predictions.

A sigmoid output of 0.5 is not the best cut-off for a rare attribute: with 5 %
positives the model rarely reaches 0.5 and recall collapses. Here each binary
label gets the threshold that maximises its F1 on the *validation* split; the
test split is then scored with those thresholds (see
:func:`faces_keras.reports.metrics.before_after_table`), so the test numbers
stay honest.

Only binary labels are tuned. A multiclass head predicts the arg-max of its
softmax and has no threshold; :func:`describe_multiclass` gives the note that
reports print for it, and :func:`tune_thresholds` refuses columns holding any
value other than ``-1`` (missing), ``0`` and ``1``.

Two methods:

* ``grid``: F1 at every threshold of :meth:`ThresholdConfig.grid` (counted
  in one vectorised pass; equal to ``sklearn.metrics.f1_score`` with
  ``zero_division=0``);
* ``exact``: the best point of ``sklearn.metrics.precision_recall_curve``, whose
  thresholds are the predicted probabilities themselves, so no grid value can
  beat it on the tuning data.

Two modes:

* ``per-label``: each label its own threshold (the default);
* ``shared``: one threshold for every label, maximising the mean F1 over labels
  (what the original project did; offered for comparison).

Three objectives, chosen per label:

* ``f1``: F1 of the positive class (the default): right for rare labels;
* ``macro_f1``: the mean of the positive and the negative class's F1;
* ``balanced_accuracy``: the mean of the two classes' recalls. For a balanced,
  symmetric label such as sex, F1 of the positive class pulls the threshold
  toward predicting the positive value (on UTKFace it chose 0.30: recall 0.93,
  precision 0.71); these two treat both values alike.

Ties (several thresholds with the best score) go to the threshold nearest 0.5,
then to the lower one: the smallest move away from the usual default.
"""

from __future__ import annotations

import math
import numbers
import os
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import precision_recall_curve

from faces_keras.errors import ConfigError, LabelsError, RunError
from faces_keras.io import atomic_path, read_json, write_json
from faces_keras.settings import setting, validate

METHODS = ("grid", "exact")
MODES = ("per-label", "shared")
OBJECTIVES = ("f1", "macro_f1", "balanced_accuracy")
DEFAULT_THRESHOLD = 0.5
MISSING = -1
MAX_GRID_POINTS = 10_000
# The exact method's curve has one point per distinct probability; plots and
# thresholds.json need far fewer.
MAX_CURVE_POINTS = 1000
# F1 values this close count as a tie (they differ only by rounding).
TIE_TOLERANCE = 1e-12
MULTICLASS_NOTE = "multiclass: arg-max, no threshold"


# -- configuration --------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdConfig:
    """How thresholds are searched.

    Each field is declared once with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means and its range. ``start``, ``stop`` and
    ``step`` define the grid (``stop`` included); they are ignored by the
    ``exact`` method, which searches every distinct probability.

    Raises:
        ConfigError: a field is out of range, ``stop`` is below ``start``, or
            the grid would have more than 10,000 thresholds.
    """

    start: float = setting(0.05, help="grid method: the first threshold tried", above=0, below=1)
    stop: float = setting(0.95, help="grid method: the last threshold tried (included)", above=0, below=1)
    step: float = setting(0.05, help="grid method: the spacing of the thresholds tried", above=0)
    method: str = setting("grid", choices=METHODS,
                          help="grid: the thresholds start..stop by step; exact: every distinct probability")
    mode: str = setting("per-label", choices=MODES, help="a threshold per label, or one shared by all labels")
    objective: str = setting("f1", choices=OBJECTIVES,
                             help="what each binary label's threshold maximises on validation (f1: F1 of "
                                  "the positive class)")
    label_objectives: dict[str, str] = setting(
        default_factory=dict, each_choices=OBJECTIVES, flag="--label-objective", metavar="LABEL=OBJECTIVE",
        help="another objective for one label, e.g. sex=balanced_accuracy (repeatable)")

    def __post_init__(self) -> None:
        validate(self)
        if not self.start <= self.stop:
            raise ConfigError(f"stop={self.stop!r} (--stop): expected a value >= start={self.start!r}")
        points = (self.stop - self.start) / self.step + 1
        if points > MAX_GRID_POINTS:
            raise ConfigError(
                f"step={self.step!r} (--step) gives {int(points)} thresholds "
                f"between {self.start!r} and {self.stop!r}; at most {MAX_GRID_POINTS}"
            )

    def grid(self) -> np.ndarray:
        """The thresholds start, start + step, ..., stop (stop always included).

        Returns:
            A float array, ascending, rounded to 10 decimals.
        """
        count = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        # Rounding turns 0.15000000000000002 into 0.15, so thresholds print and
        # compare as written.
        values = np.round(self.start + self.step * np.arange(count), 10)
        if values[-1] < self.stop - 1e-9:
            values = np.append(values, round(self.stop, 10))
        return np.minimum(values, round(self.stop, 10))

    def objective_for(self, label: str) -> str:
        """The objective that ``label``'s threshold maximises.

        Args:
            label: a binary label's name.

        Returns:
            Its entry in ``label_objectives``, else ``objective``.
        """
        return dict(self.label_objectives).get(label, self.objective)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label_objectives"] = dict(self.label_objectives)
        return out


# -- results --------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdCurve:
    """Precision, recall and F1 of one label against the threshold (ascending).

    Args:
        threshold: the thresholds, ascending, shape ``(T,)``.
        precision: precision at each threshold, ``(T,)``.
        recall: recall at each threshold, ``(T,)``.
        f1: F1 of the positive class at each threshold, ``(T,)``.
        score: the objective at each threshold when it is not F1; ``None``
            (the default) where the objective is F1.
    """

    threshold: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    score: np.ndarray | None = None  # the objective, when it is not F1

    def to_dict(self) -> dict[str, list[float]]:
        out = {key: np.asarray(getattr(self, key), dtype=float).tolist()
               for key in ("threshold", "precision", "recall", "f1")}
        if self.score is not None:
            out["score"] = np.asarray(self.score, dtype=float).tolist()
        return out

    @property
    def objective_score(self) -> np.ndarray:
        return self.f1 if self.score is None else self.score

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThresholdCurve":
        arrays = {key: np.asarray(data[key], dtype=float)
                  for key in ("threshold", "precision", "recall", "f1")}
        if "score" in data:
            arrays["score"] = np.asarray(data["score"], dtype=float)
        sizes = {key: arr.shape for key, arr in arrays.items()}
        if len(set(sizes.values())) != 1 or arrays["threshold"].ndim != 1:
            raise RunError(f"threshold curve arrays differ in shape: {sizes}")
        return cls(**arrays)


@dataclass(frozen=True)
class ThresholdResult:
    """The chosen threshold of every binary label, and how it was chosen.

    Built by :func:`tune_thresholds`, or read back with :meth:`load`.

    Args:
        thresholds: label name to its threshold in [0, 1], in label order.
        method: ``grid`` or ``exact``.
        mode: ``per-label`` or ``shared``.
        notes: label name to why it kept 0.5 (or why its F1 is 0).
        curves: each tuned label's sweep (:class:`ThresholdCurve`), for plots.
        best_f1: the F1 on the tuning (validation) data at the chosen
            threshold, for the labels that could be tuned.
        config: the search settings used.
        best_score: the objective's value at the chosen threshold, per tuned
            label.
    """

    thresholds: dict[str, float]
    method: str
    mode: str
    notes: dict[str, str] = field(default_factory=dict)
    curves: dict[str, ThresholdCurve] = field(default_factory=dict)
    best_f1: dict[str, float] = field(default_factory=dict)
    config: ThresholdConfig = field(default_factory=ThresholdConfig)
    best_score: dict[str, float] = field(default_factory=dict)  # the objective's value at the threshold

    @property
    def objectives(self) -> dict[str, str]:
        """The objective each label's threshold maximised."""
        return {name: self.config.objective_for(name) for name in self.thresholds}

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds)

    def as_array(self, label_names: Sequence[str]) -> np.ndarray:
        """The thresholds in the order of ``label_names`` (shape (L,)).

        Args:
            label_names: the labels, in the order wanted.

        Returns:
            A float array of the thresholds.

        Raises:
            ValueError: a label has no threshold.
        """
        missing = [name for name in label_names if name not in self.thresholds]
        if missing:
            raise ValueError(f"no threshold for label(s) {missing}; have {self.label_names}")
        return np.array([self.thresholds[name] for name in label_names], dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "mode": self.mode,
            "config": self.config.to_dict(),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "best_f1": {k: float(v) for k, v in self.best_f1.items()},
            "objectives": self.objectives,
            "best_score": {k: float(v) for k, v in self.best_score.items()},
            "notes": dict(self.notes),
            "curves": {k: curve.to_dict() for k, curve in self.curves.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThresholdResult":
        """Inverse of :meth:`to_dict`.

        Args:
            data: the mapping ``thresholds.json`` holds.

        Returns:
            The :class:`ThresholdResult`.

        Raises:
            RunError: the mapping lacks a key, is malformed, or holds a threshold
                outside [0, 1]; the message names what is wrong.
        """
        if not isinstance(data, Mapping):
            raise RunError(f"thresholds data must be a mapping, got {type(data).__name__}")
        missing = [key for key in ("method", "mode", "thresholds") if key not in data]
        if missing:
            raise RunError(f"thresholds data lacks key(s) {missing}")
        try:
            config = ThresholdConfig(**data.get("config", {"method": data["method"],
                                                           "mode": data["mode"]}))
            thresholds = {str(k): float(v) for k, v in data["thresholds"].items()}
            curves = {str(k): ThresholdCurve.from_dict(v)
                      for k, v in data.get("curves", {}).items()}
            best_f1 = {str(k): float(v) for k, v in data.get("best_f1", {}).items()}
            best_score = {str(k): float(v) for k, v in data.get("best_score", best_f1).items()}
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RunError(f"thresholds data is malformed: {exc}") from exc
        bad = {k: v for k, v in thresholds.items() if not 0 <= v <= 1}
        if bad:
            raise RunError(f"thresholds must lie in [0, 1], got {bad}")
        return cls(thresholds=thresholds, method=str(data["method"]), mode=str(data["mode"]),
                   notes={str(k): str(v) for k, v in data.get("notes", {}).items()},
                   curves=curves, best_f1=best_f1, config=config, best_score=best_score)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``thresholds.json`` (atomically).

        Args:
            path: the JSON file to write.
        """
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ThresholdResult":
        """Read a ``thresholds.json`` written by :meth:`save`.

        Args:
            path: the JSON file.

        Returns:
            The :class:`ThresholdResult`.

        Raises:
            RunError: the file is missing, not valid JSON, or not thresholds data;
                the message names the file.
        """
        path = Path(path)
        if not path.is_file():
            raise RunError(f"{path}: no thresholds file (run threshold tuning first)")
        try:
            data = read_json(path)
        except ValueError as exc:
            raise RunError(f"{path}: not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except RunError as exc:
            raise RunError(f"{path}: {exc}") from exc


# -- tuning ---------------------------------------------------------------------

def describe_multiclass(label_name: str) -> str:
    """The report note for a multiclass label: it takes the arg-max, untuned.

    Args:
        label_name: the multiclass label's name.

    Returns:
        ``"<label>: multiclass: arg-max, no threshold"``.
    """
    return f"{label_name}: {MULTICLASS_NOTE}"


def tune_thresholds(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    label_names: Sequence[str],
    config: ThresholdConfig = ThresholdConfig(),
) -> ThresholdResult:
    """Choose the threshold of each binary label that maximises its objective on validation data.

    The objective is F1 of the positive class unless ``config`` chooses
    another (per label or for all). A label with no positives or no negatives
    left keeps 0.5 (per-label mode) or is left out of the mean F1 (shared
    mode), with a note saying why. Only binary columns are accepted:
    multiclass heads use the arg-max.

    Args:
        y_true: ``(N, L)`` truth: 1 positive, 0 negative, -1 missing (ignored).
        y_prob: ``(N, L)`` predicted probability of the positive class, in
            [0, 1] (ignored where ``y_true`` is -1, so it may be anything there).
        label_names: the ``L`` labels' names, distinct, in column order.
        config: the method, mode, grid and objectives (the default: a grid of
            0.05 to 0.95 by 0.05, per label, F1).

    Returns:
        A :class:`ThresholdResult` with a threshold for every label, in
        ``label_names`` order.

    Raises:
        LabelsError: a column holds a value other than -1, 0 and 1.
        ValueError: the shapes do not match ``label_names``, names repeat, or a
            labelled probability is not finite or outside [0, 1].
    """
    y_true, y_prob = check_binary_inputs(y_true, y_prob, label_names)
    columns, untunable = {}, {}
    for j, name in enumerate(label_names):
        keep = y_true[:, j] != MISSING
        truth, prob = y_true[keep, j], y_prob[keep, j]
        reason = _untunable_reason(truth)
        if reason:
            untunable[name] = reason
        else:
            columns[name] = (truth, prob)
    notes = {}
    if config.mode == "per-label":
        thresholds, curves, best, score = _tune_per_label(columns, config)
        for name, reason in untunable.items():
            notes[name] = f"{reason}: kept 0.5"
        for name in columns:
            if best[name] == 0:
                notes[name] = "F1 is 0 at every threshold: kept the one nearest 0.5"
    else:
        thresholds, curves, best, score = _tune_shared(columns, label_names, config)
        # With no tunable label at all there is nothing to share: all keep 0.5.
        outcome = "left out of the mean F1, given the shared threshold" if columns else "kept 0.5"
        for name, reason in untunable.items():
            notes[name] = f"{reason}: {outcome}"
    ordered = {name: float(thresholds.get(name, DEFAULT_THRESHOLD)) for name in label_names}
    return ThresholdResult(thresholds=ordered, method=config.method, mode=config.mode,
                           notes=notes, curves=curves, best_f1=best, config=config, best_score=score)


def apply_thresholds(
    y_prob: np.ndarray, thresholds: Mapping[str, float], label_names: Sequence[str]
) -> np.ndarray:
    """0/1 predictions: ``y_prob[:, j] >= thresholds[label_names[j]]`` (shape (N, L)).

    Args:
        y_prob: ``(N, L)`` predicted probabilities of the positive class.
        thresholds: label name to threshold, e.g. ``ThresholdResult.thresholds``
            or a run's thresholds.json.
        label_names: the ``L`` labels, in column order.

    Returns:
        An int array ``(N, L)`` of 0 and 1.

    Raises:
        ValueError: ``y_prob`` is not ``(N, len(label_names))``, or a label has
            no threshold.
    """
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim != 2 or y_prob.shape[1] != len(label_names):
        raise ValueError(
            f"y_prob must have shape (N, {len(label_names)}) for labels {list(label_names)}, "
            f"got {y_prob.shape}"
        )
    missing = [name for name in label_names if name not in thresholds]
    if missing:
        raise ValueError(f"no threshold for label(s) {missing}; have {list(thresholds)}")
    cut = np.array([float(thresholds[name]) for name in label_names])
    return (y_prob >= cut[None, :]).astype(int)


def check_binary_inputs(
    y_true: np.ndarray, y_prob: np.ndarray, label_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, L) truth in {-1, 0, 1} and probabilities in [0, 1]; shared with the metrics.

    Args:
        y_true: ``(N, L)`` truth: 1, 0, or -1 for missing.
        y_prob: ``(N, L)`` probabilities of the positive class.
        label_names: the ``L`` labels' names.

    Returns:
        ``(y_true as int, y_prob as float)``.

    Raises:
        LabelsError: a column holds a value other than -1, 0 and 1.
        ValueError: the shapes do not match, names repeat, or a labelled
            probability is not finite or outside [0, 1].
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_prob.shape or y_true.shape[1] != len(label_names):
        raise ValueError(
            f"y_true {y_true.shape} and y_prob {y_prob.shape} must both be "
            f"(N, {len(label_names)}) for labels {list(label_names)}"
        )
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label names repeat: {list(label_names)}")
    for j, name in enumerate(label_names):
        values = set(np.unique(y_true[:, j]).tolist())
        if not values <= {MISSING, 0, 1}:
            raise LabelsError(
                f"label {name!r}: thresholds are tuned for binary labels (values -1, 0, 1) "
                f"only, got values {sorted(values)}; multiclass heads use the arg-max"
            )
        prob = y_prob[y_true[:, j] != MISSING, j]
        if prob.size and not (np.all(np.isfinite(prob)) and prob.min() >= 0 and prob.max() <= 1):
            raise ValueError(
                f"label {name!r}: probabilities must be finite and in [0, 1], "
                f"got range [{np.nanmin(prob)}, {np.nanmax(prob)}]"
            )
    return y_true.astype(int), y_prob


def _untunable_reason(truth: np.ndarray) -> str | None:
    """Why a label cannot be tuned, or None when it can."""
    if truth.size == 0:
        return "no labelled rows in validation"
    if not np.any(truth == 1):
        return "no positives in validation"
    if not np.any(truth == 0):
        return "no negatives in validation"
    return None


def _pick(thresholds: np.ndarray, f1: np.ndarray) -> int:
    """Index of the best F1; ties go to the threshold nearest 0.5, then the lower."""
    candidates = np.flatnonzero(f1 >= f1.max() - TIE_TOLERANCE)
    # Rounded, so 0.35 and 0.65 count as equally far from 0.5 despite binary floats.
    distance = np.round(np.abs(thresholds[candidates] - DEFAULT_THRESHOLD), 9)
    order = np.lexsort((thresholds[candidates], distance))
    return int(candidates[order[0]])


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def _exact_curve(truth: np.ndarray, prob: np.ndarray) -> ThresholdCurve:
    precision, recall, thresholds = precision_recall_curve(truth, prob)
    # The last point (precision 1, recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    return ThresholdCurve(thresholds.astype(float), precision, recall, _f1(precision, recall))


def _counting_curve(truth: np.ndarray, prob: np.ndarray, cuts: np.ndarray) -> ThresholdCurve:
    """Precision, recall and F1 of ``prob >= t`` for every t in ``cuts``.

    The confusion counts come from a sorted search, not from one
    ``sklearn.metrics.f1_score`` call per threshold (milliseconds each, so
    seconds for 40 labels); the scores use scikit-learn's formulas and its
    ``zero_division=0`` convention, and the tests check them against it.
    """
    positives = np.sort(prob[truth == 1])
    negatives = np.sort(prob[truth == 0])
    tp = positives.size - np.searchsorted(positives, cuts, side="left")
    fp = negatives.size - np.searchsorted(negatives, cuts, side="left")
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = tp / positives.size
    # F1 = 2 tp / (positives + predicted): scikit-learn's own expression.
    f1 = 2 * tp / (positives.size + predicted)
    return ThresholdCurve(np.asarray(cuts, dtype=float).copy(), precision, recall, f1)


def _thin(curve: ThresholdCurve, keep: int) -> ThresholdCurve:
    """At most MAX_CURVE_POINTS points of ``curve``, always including index ``keep``."""
    size = curve.threshold.size
    if size <= MAX_CURVE_POINTS:
        return curve
    index = np.unique(np.append(np.linspace(0, size - 1, MAX_CURVE_POINTS - 1).round(), keep))
    index = index.astype(int)
    return ThresholdCurve(*(getattr(curve, key)[index]
                            for key in ("threshold", "precision", "recall", "f1")),
                          score=None if curve.score is None else curve.score[index])


def _objective_curve(truth: np.ndarray, prob: np.ndarray, cuts: np.ndarray, objective: str) -> ThresholdCurve:
    """The counting curve at ``cuts`` with ``score`` set to ``objective`` (macro F1 or balanced accuracy)."""
    curve = _counting_curve(truth, prob, cuts)
    negatives = np.sort(prob[truth == 0])
    positives = np.sort(prob[truth == 1])
    tn = np.searchsorted(negatives, cuts, side="left")  # negatives below the cut
    fn = np.searchsorted(positives, cuts, side="left")
    if objective == "balanced_accuracy":
        score = (curve.recall + tn / negatives.size) / 2
    else:  # macro_f1: the negative class's F1 is 2 tn / (negatives + predicted negatives)
        score = (curve.f1 + 2 * tn / (negatives.size + tn + fn)) / 2
    return ThresholdCurve(curve.threshold, curve.precision, curve.recall, curve.f1, score)


def _label_curve(truth: np.ndarray, prob: np.ndarray, config: ThresholdConfig, objective: str,
                 cuts: np.ndarray | None = None) -> ThresholdCurve:
    if objective == "f1":
        if cuts is None and config.method == "exact":
            return _exact_curve(truth, prob)
        return _counting_curve(truth, prob, config.grid() if cuts is None else cuts)
    if cuts is None:
        # Every distinct probability is a candidate for the exact method, as for F1.
        cuts = config.grid() if config.method == "grid" else np.unique(prob)
    return _objective_curve(truth, prob, cuts, objective)


def _tune_per_label(
    columns: dict[str, tuple[np.ndarray, np.ndarray]], config: ThresholdConfig
) -> tuple[dict[str, float], dict[str, ThresholdCurve], dict[str, float], dict[str, float]]:
    thresholds, curves, best, score = {}, {}, {}, {}
    for name, (truth, prob) in columns.items():
        curve = _label_curve(truth, prob, config, config.objective_for(name))
        index = _pick(curve.threshold, curve.objective_score)
        thresholds[name] = float(curve.threshold[index])
        best[name] = float(curve.f1[index])
        score[name] = float(curve.objective_score[index])
        curves[name] = _thin(curve, index)
    return thresholds, curves, best, score


def _tune_shared(
    columns: dict[str, tuple[np.ndarray, np.ndarray]],
    label_names: Sequence[str],
    config: ThresholdConfig,
) -> tuple[dict[str, float], dict[str, ThresholdCurve], dict[str, float], dict[str, float]]:
    """One threshold for every label, maximising the mean objective of the tunable labels."""
    if not columns:
        return {}, {}, {}, {}
    if config.method == "grid":
        cuts = config.grid()
    else:
        # Every distinct probability of every label: the exact optimum is one of them.
        cuts = np.unique(np.concatenate([prob for _, prob in columns.values()]))
    curves = {name: _label_curve(truth, prob, config, config.objective_for(name), cuts)
              for name, (truth, prob) in columns.items()}
    mean_score = np.mean([curve.objective_score for curve in curves.values()], axis=0)
    index = _pick(cuts, mean_score)
    shared = float(cuts[index])
    best = {name: float(curve.f1[index]) for name, curve in curves.items()}
    score = {name: float(curve.objective_score[index]) for name, curve in curves.items()}
    curves = {name: _thin(curve, index) for name, curve in curves.items()}
    return {name: shared for name in label_names}, curves, best, score


# -- plots ----------------------------------------------------------------------

def plot_threshold_curves(result: ThresholdResult, path: str | os.PathLike) -> Path:
    """One panel per label: precision, recall and F1 against the threshold.

    The chosen threshold is marked; labels that kept 0.5 show their note.
    Written atomically as PNG. Uses the Agg canvas directly, so the global
    matplotlib backend of the caller is left alone.

    Args:
        result: the tuning result, with its curves.
        path: the PNG file to write; its folder must exist.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = result.label_names or ["(no labels)"]
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4 * columns, 3 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        _plot_label(ax, result, name)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    figure.suptitle(f"thresholds: {result.method}, {result.mode}")
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def _plot_label(ax: Any, result: ThresholdResult, name: str) -> None:
    ax.set_title(name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("threshold")
    curve = result.curves.get(name)
    if curve is None:
        note = textwrap.fill(result.notes.get(name, "not tuned"), width=32)
        ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=8, transform=ax.transAxes)
        return
    ax.plot(curve.threshold, curve.precision, label="precision")
    ax.plot(curve.threshold, curve.recall, label="recall")
    ax.plot(curve.threshold, curve.f1, label="F1")
    objective = result.config.objective_for(name)
    if curve.score is not None:
        ax.plot(curve.threshold, curve.score, label=objective.replace("_", " "))
    chosen = result.thresholds[name]
    value = result.best_score.get(name, result.best_f1[name])
    ax.axvline(chosen, color="grey", linestyle="--", linewidth=1)
    ax.plot([chosen], [value], "ko")
    ax.annotate(f"t={chosen:.3g}, {'F1' if objective == 'f1' else objective.replace('_', ' ')}={value:.3f}",
                (chosen, value), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
