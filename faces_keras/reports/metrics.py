"""Per-label metrics with scikit-learn, masking missing values.

Encoded values follow :mod:`faces_keras.labels.schema`: binary and multiclass
labels use ``-1`` for missing, regression labels ``NaN``; missing rows are left
out of every metric. Binary labels are scored at a threshold (0.5, or the
per-label ones tuned on validation by :mod:`faces_keras.thresholds`);
multiclass labels at the arg-max.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    roc_auc_score,
    root_mean_squared_error,
)

from faces_keras.reports.calibration import expected_calibration_error
from faces_keras.thresholds.tune import DEFAULT_THRESHOLD, MISSING, ThresholdResult, check_binary_inputs

BINARY_COLUMNS = ("label", "n", "prevalence", "threshold", "precision", "recall", "f1",
                  "accuracy", "tp", "fp", "fn", "tn", "roc_auc", "ece")
COMPARED = ("precision", "recall", "f1", "accuracy")


# -- binary ---------------------------------------------------------------------

def binary_metrics(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float] | float | ThresholdResult = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """One row per binary label: counts and scores of ``prob >= threshold``.

    ``y_true`` (N, L) holds 1, 0 or -1 (missing, ignored); ``y_prob`` (N, L)
    the positive-class probability. ``thresholds`` is one number for every
    label, a mapping label -> threshold, or a :class:`ThresholdResult`.
    ``roc_auc`` is NaN where only one class is present; the scores are NaN
    where a label has no unmasked row. ``ece`` is the expected calibration
    error of P(positive) (:mod:`faces_keras.reports.calibration`).
    """
    y_true, y_prob = check_binary_inputs(y_true, y_prob, label_names)
    cuts = _thresholds_for(thresholds, label_names)
    rows = []
    for j, name in enumerate(label_names):
        keep = y_true[:, j] != MISSING
        rows.append(_binary_row(name, y_true[keep, j], y_prob[keep, j], cuts[name]))
    return pd.DataFrame(rows, columns=list(BINARY_COLUMNS))


def _thresholds_for(
    thresholds: Mapping[str, float] | float | ThresholdResult, label_names: Sequence[str]
) -> dict[str, float]:
    if isinstance(thresholds, ThresholdResult):
        thresholds = thresholds.thresholds
    if isinstance(thresholds, numbers.Real) and not isinstance(thresholds, bool):
        return {name: float(thresholds) for name in label_names}
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"thresholds must be a number or a mapping label -> threshold, "
                         f"got {thresholds!r}")
    missing = [name for name in label_names if name not in thresholds]
    if missing:
        raise ValueError(f"no threshold for label(s) {missing}; have {list(thresholds)}")
    return {name: float(thresholds[name]) for name in label_names}


def _binary_row(name: str, truth: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    n = int(truth.size)
    row: dict[str, Any] = {"label": name, "n": n, "threshold": threshold}
    if n == 0:
        row.update({key: math.nan for key in ("prevalence", "precision", "recall", "f1",
                                              "accuracy", "roc_auc", "ece")})
        row.update({key: 0 for key in ("tp", "fp", "fn", "tn")})
        return row
    predicted = (prob >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, pos_label=1, average="binary", zero_division=0)
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    two_classes = np.unique(truth).size == 2
    row.update({
        "prevalence": float(truth.mean()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "accuracy": float(accuracy_score(truth, predicted)),
        "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
        "roc_auc": float(roc_auc_score(truth, prob)) if two_classes else math.nan,
        "ece": expected_calibration_error(prob, truth),
    })
    return row


def before_after_table(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    label_names: Sequence[str],
    tuned: ThresholdResult,
    split_name: str,
) -> pd.DataFrame:
    """Precision, recall, F1 and accuracy per label at 0.5 and at the tuned threshold.

    ``tuned`` comes from the validation split; scored on the test split, the
    ``@tuned`` columns are the honest estimate of what tuning buys, since the
    test data played no part in choosing the thresholds.
    """
    default = binary_metrics(y_true, y_prob, label_names, DEFAULT_THRESHOLD)
    after = binary_metrics(y_true, y_prob, label_names, tuned)
    table = pd.DataFrame({
        "split": split_name,
        "label": default["label"],
        "n": default["n"],
        "prevalence": default["prevalence"],
        "tuned_threshold": after["threshold"],
        "objective": [tuned.config.objective_for(name) for name in default["label"]],
    })
    for metric in COMPARED:
        table[f"{metric}@0.5"] = default[metric]
        table[f"{metric}@tuned"] = after[metric]
    return table


# -- multiclass -----------------------------------------------------------------

def multiclass_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class scores and the confusion matrix of the arg-max.

    ``y_true`` (N,) holds class indices or -1 (missing, ignored); ``y_prob``
    (N, K) the class probabilities. ``confusion`` is K x K (rows: true class,
    columns: predicted class) over every class, seen or not. ``macro_f1``
    follows scikit-learn's default: the mean over classes that occur in the
    truth or the predictions. ``ece`` is the expected calibration error of the
    top-label confidence (:mod:`faces_keras.reports.calibration`).
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=float)
    k = len(class_names)
    if y_true.ndim != 1 or y_prob.ndim != 2 or y_prob.shape != (y_true.size, k):
        raise ValueError(f"y_true must be (N,) and y_prob (N, {k}) for classes "
                         f"{list(class_names)}; got {y_true.shape} and {y_prob.shape}")
    bad = sorted(set(np.unique(y_true).tolist()) - {MISSING, *range(k)})
    if bad:
        raise ValueError(f"class indices must be in 0..{k - 1} or -1 (missing); got {bad}")
    keep = y_true != MISSING
    truth = y_true[keep].astype(int)
    if truth.size == 0:
        zeros = np.zeros(k)
        return {"n": 0, "accuracy": math.nan, "macro_f1": math.nan, "ece": math.nan,
                "per_class": pd.DataFrame({"class": list(class_names), "precision": zeros,
                                           "recall": zeros, "f1": zeros,
                                           "support": np.zeros(k, dtype=int)}),
                "confusion": np.zeros((k, k), dtype=int)}
    predicted = np.argmax(y_prob[keep], axis=1)
    classes = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0)
    return {
        "n": int(truth.size),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "ece": expected_calibration_error(y_prob[keep].max(axis=1), predicted == truth),
        "per_class": pd.DataFrame({"class": list(class_names), "precision": precision,
                                   "recall": recall, "f1": f1,
                                   "support": support.astype(int)}),
        "confusion": confusion_matrix(truth, predicted, labels=classes),
    }


# -- regression -----------------------------------------------------------------

def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    """Mean absolute and root-mean-square error over the rows whose truth is not NaN."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    keep = ~np.isnan(y_true)
    if not keep.any():
        return {"mae": math.nan, "rmse": math.nan, "n": 0}
    truth, predicted = y_true[keep], y_pred[keep]
    return {
        "mae": float(mean_absolute_error(truth, predicted)),
        "rmse": float(root_mean_squared_error(truth, predicted)),
        "n": int(keep.sum()),
    }
