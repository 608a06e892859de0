"""Calibration: does a probability of 0.8 come true four times out of five?

For each binary label and each multiclass head the predictions are put in
:data:`ECE_BINS` equal-width bins of confidence over [0, 1] (bin ``b`` holds
``b / B <= confidence < (b + 1) / B``; the last bin also holds 1.0). In each
bin the mean confidence is set against the observed rate:

* binary labels: the confidence is P(positive), the observed rate the share of
  faces whose truth is positive (the classic reliability diagram of a
  probabilistic classifier; it does not depend on the threshold);
* multiclass heads: the confidence is the top-label probability (the largest
  softmax output), the observed rate the share of faces whose arg-max is right.

The expected calibration error is the bins' gap weighted by their share of
the faces::

    ECE = sum_b (n_b / N) * |mean confidence_b - observed rate_b|

Faces whose truth is missing are left out. Nothing here imports Keras;
matplotlib (Agg, a bare Figure) is imported only to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from faces_keras.io import atomic_path

ECE_BINS = 10  # equal-width confidence bins of the ECE and the reliability diagram

__all__ = ["ECE_BINS", "ReliabilityCurve", "reliability_curve", "expected_calibration_error",
           "binary_calibration", "multiclass_calibration", "calibration_curves", "calibration_frame",
           "plot_reliability", "save_reliability"]


@dataclass(frozen=True)
class ReliabilityCurve:
    """One label's binned confidence against its observed rate.

    Attributes:
        label: the label's name.
        kind: ``binary`` (P(positive) against the positive rate) or ``multiclass``
            (top-label confidence against accuracy).
        edges: the ``bins + 1`` bin edges, 0 to 1.
        counts: faces per bin.
        confidence: mean confidence per bin (NaN where the bin is empty).
        observed: observed rate per bin (NaN where the bin is empty).
        ece: the expected calibration error (NaN without faces).
        n: faces with a known truth.
    """

    label: str
    kind: str
    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    observed: np.ndarray
    ece: float
    n: int


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each confidence: floor(c * bins), with 1.0 in the last bin."""
    return np.clip(np.floor(confidence * bins).astype(int), 0, bins - 1)


def reliability_curve(confidence: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS, *,
                      label: str = "", kind: str = "binary") -> ReliabilityCurve:
    """Bin ``confidence`` (in [0, 1]) and compare each bin's mean with the rate of ``outcome``.

    Args:
        confidence: (N,) predicted probabilities of the event.
        outcome: (N,) 1 where the event happened (positive truth, right arg-max), else 0.
        bins: equal-width bins over [0, 1].
        label: the label's name, for the curve.
        kind: ``binary`` or ``multiclass``, for the curve.

    Returns:
        A :class:`ReliabilityCurve`.
    """
    confidence = np.asarray(confidence, dtype=float).ravel()
    outcome = np.asarray(outcome, dtype=float).ravel()
    if confidence.shape != outcome.shape:
        raise ValueError(f"confidence {confidence.shape} and outcome {outcome.shape} differ in shape")
    if bins < 1:
        raise ValueError(f"bins={bins}: expected at least 1")
    index = _bin_of(confidence, bins)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / counts
        observed = np.bincount(index, weights=outcome, minlength=bins) / counts
    n = int(confidence.size)
    if n:
        filled = counts > 0
        ece = float(np.sum(counts[filled] / n * np.abs(mean_conf[filled] - observed[filled])))
    else:
        ece = float("nan")
    return ReliabilityCurve(label, kind, np.linspace(0.0, 1.0, bins + 1), counts, mean_conf, observed, ece, n)


def expected_calibration_error(confidence: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS) -> float:
    """The expected calibration error of ``confidence`` against ``outcome`` (see the module docstring).

    Args:
        confidence: (N,) predicted probabilities in [0, 1].
        outcome: (N,) 1 where the predicted event happened, else 0.
        bins: equal-width bins over [0, 1].

    Returns:
        ECE in [0, 1]; NaN when there is no face.
    """
    return reliability_curve(confidence, outcome, bins).ece


def binary_calibration(truth: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS,
                       label: str = "") -> ReliabilityCurve:
    """P(positive) against the positive rate, faces with missing truth (-1) left out."""
    truth = np.asarray(truth).ravel()
    keep = truth >= 0
    return reliability_curve(np.asarray(prob, dtype=float).ravel()[keep], truth[keep] == 1, bins,
                             label=label, kind="binary")


def multiclass_calibration(truth: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS,
                           label: str = "") -> ReliabilityCurve:
    """Top-label confidence against the arg-max's accuracy, faces with missing truth (-1) left out."""
    truth = np.asarray(truth).ravel()
    prob = np.asarray(prob, dtype=float)
    keep = truth >= 0
    prob, truth = prob[keep], truth[keep]
    return reliability_curve(prob.max(axis=1) if len(prob) else np.zeros(0),
                             np.argmax(prob, axis=1) == truth if len(prob) else np.zeros(0),
                             bins, label=label, kind="multiclass")


def calibration_curves(labels: Iterable[Any], bins: int = ECE_BINS) -> dict[str, ReliabilityCurve]:
    """One curve per binary and multiclass label of a report (regression labels have none).

    Args:
        labels: the report's :class:`~faces_keras.reports.results.LabelResult` objects
            (anything with ``name``, ``kind``, ``truth`` and ``prob``).
        bins: equal-width bins over [0, 1].

    Returns:
        Label name -> :class:`ReliabilityCurve`, in the labels' order.
    """
    curves = {}
    for result in labels:
        if result.kind == "binary":
            curves[result.name] = binary_calibration(result.truth, result.prob, bins, result.name)
        elif result.kind == "multiclass":
            curves[result.name] = multiclass_calibration(result.truth, result.prob, bins, result.name)
    return curves


def calibration_frame(curves: Mapping[str, ReliabilityCurve]) -> pd.DataFrame:
    """One row per label: ``label``, ``kind``, ``confidence`` (what was binned), ``n``, ``ece``, ``bins``."""
    return pd.DataFrame(
        [{"label": c.label, "kind": c.kind,
          "confidence": "P(positive)" if c.kind == "binary" else "top-label",
          "n": c.n, "ece": c.ece, "bins": len(c.counts)} for c in curves.values()],
        columns=["label", "kind", "confidence", "n", "ece", "bins"])


def plot_reliability(curves: Mapping[str, ReliabilityCurve], columns: int = 4):
    """A Figure with one reliability diagram per label: observed rate per bin against the diagonal.

    Bars are each bin's observed rate at its mean confidence; the grey line is
    perfect calibration; the title carries the ECE and the face count.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    items = list(curves.values())
    cols = max(1, min(columns, len(items)))
    rows = max(1, -(-len(items) // cols))
    figure = Figure(figsize=(3.2 * cols, 3.2 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax, curve in zip(axes.flat, items):
        width = curve.edges[1] - curve.edges[0]
        filled = curve.counts > 0
        centres = (curve.edges[:-1] + width / 2)[filled]
        ax.bar(centres, curve.observed[filled], width=width * 0.9, color="#0969da", alpha=0.75,
               label="observed")
        ax.plot(curve.confidence[filled], curve.observed[filled], "o", color="#cf222e", markersize=3,
                label="bin mean confidence")
        ax.plot([0, 1], [0, 1], color="#57606a", linewidth=1, label="calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("P(positive)" if curve.kind == "binary" else "top-label confidence", fontsize=8)
        ax.set_ylabel("positive rate" if curve.kind == "binary" else "accuracy", fontsize=8)
        ax.set_title(f"{curve.label}: ECE {curve.ece:.3f} (n={curve.n})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    if not items:
        axes.flat[0].text(0.5, 0.5, "no classification labels", ha="center", va="center")
    figure.tight_layout()
    return figure


def save_reliability(curves: Mapping[str, ReliabilityCurve], path: str | Path, dpi: int = 100) -> Path:
    """Write :func:`plot_reliability` as a PNG (atomically).

    Args:
        curves: label name -> :class:`ReliabilityCurve`.
        path: the PNG to write.
        dpi: resolution.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        plot_reliability(curves).savefig(tmp, dpi=dpi, format="png")
    return path
