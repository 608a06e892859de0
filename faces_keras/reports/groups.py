"""Per-group metrics: each label's scores split by every other label of the set, with the gaps beyond the noise.

Face-attribute models are known to fail unevenly (children, older people,
dark-skinned women in the published audits). This module disaggregates every
label's metrics by every other label the set has: on CelebA sex by glasses,
glasses by sex, ...; on UTKFace sex, race and age band by each other. The
grouping values are the *true* values of the other label; faces whose truth is
missing for either label are left out. Regression labels group by bands of
their true value, the edges declared once in :data:`BAND_EDGES` (in the label's
own units: years for age, the only regression label of the bundled schemas).
Two labels read from the same source (UTKFace's ``age`` and ``age_band``) do
not group each other.

The metrics per kind of label: binary ``accuracy``, ``recall`` and ``f1`` at the
report's thresholds; multiclass ``accuracy`` and ``macro_f1`` of the arg-max;
regression ``mae``; NaN where a score is undefined (recall without a positive
face), and the macro F1 averages the classes present in the group's truth or
predictions, as scikit-learn's ``f1_score(average="macro")`` does.

fairlearn's :class:`~fairlearn.metrics.MetricFrame` does the disaggregation:
one MetricFrame per grouping label splits the faces' positions into its groups,
and each metric of each other label scores the positions it is handed (leaving
out the faces whose truth for that label is missing). The scores are counted
with numpy rather than scikit-learn's metric functions, whose argument checks
cost more than the report's whole HTML page; the tests recompute them with
scikit-learn.

Noise: a seeded numpy bootstrap, :data:`N_BOOTSTRAP` resamples of each group's
faces (with replacement, within the group), gives each group's percentile
confidence interval at :data:`CI_LEVEL`. fairlearn's own bootstrap
(``MetricFrame(n_boot=...)``) builds a whole MetricFrame per resample and
resamples the set, not each group; the vectorised counts here take
milliseconds.

A gap is flagged when **the confidence interval of the difference excludes 0**:
for each label, grouping and metric, the best and the worst group (by point
estimate, among the groups where the metric counts at least
:data:`MIN_GROUP_FACES` faces, its ``support``: every labelled face for
accuracy, macro F1 and MAE, the positive faces for recall, and the faces
positive in truth or prediction for F1) are
compared; the difference ``best - worst`` (``worst - best`` for the error
``mae``) is bootstrapped from the two groups' independent resamples, and the
gap is flagged when the lower end of its interval is above 0. (Non-overlapping
group intervals would be a stricter test that misses real gaps.) The best and
worst are picked from the same data and every pair of labels is tested, so at
95% expect about one false flag in twenty comparisons of equal groups: read a
flag as "look here", not as proof.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from faces_keras.io import atomic_write_text
from faces_keras.reports.results import LabelResult
from faces_keras.tables import to_markdown

log = logging.getLogger(__name__)

N_BOOTSTRAP = 200  # bootstrap resamples of each group
CI_LEVEL = 0.95  # confidence level of the groups' and the gaps' intervals
BOOTSTRAP_SEED = 0
MIN_GROUP_FACES = 20  # groups whose metric counts fewer faces (its support) are shown but not compared
BAND_EDGES = (20.0, 40.0, 60.0)  # regression labels group by these bands of their true value

# kind of label -> metric name -> whether higher is better
METRICS: dict[str, dict[str, bool]] = {
    "binary": {"accuracy": True, "recall": True, "f1": True},
    "multiclass": {"accuracy": True, "macro_f1": True},
    "regression": {"mae": False},
}

BY_GROUP_COLUMNS = ["label", "metric", "by", "group", "n", "support", "value", "low", "high"]
GAP_COLUMNS = ["label", "metric", "by", "best", "best_value", "worst", "worst_value", "gap", "low", "high",
               "groups", "flagged"]

__all__ = ["N_BOOTSTRAP", "CI_LEVEL", "BOOTSTRAP_SEED", "MIN_GROUP_FACES", "BAND_EDGES", "METRICS",
           "GroupReport", "Grouping", "group_metrics", "groupings", "band_names", "write_group_tables"]


@dataclass(frozen=True)
class Grouping:
    """The groups one label splits the faces into: a code per face (-1: unknown) and the groups' names."""

    name: str
    source: str
    codes: np.ndarray
    names: list[str]


def band_names(edges: Sequence[float] = BAND_EDGES) -> list[str]:
    """Names of the bands ``edges`` cut a number line into: ``<20``, ``20-<40``, ..., ``>=60``."""
    edges = [f"{e:g}" for e in edges]
    return [f"<{edges[0]}", *[f"{a}-<{b}" for a, b in zip(edges, edges[1:])], f">={edges[-1]}"]


def groupings(labels: Sequence[LabelResult], edges: Sequence[float] = BAND_EDGES) -> list[Grouping]:
    """How each label groups the faces: its true class, or its true value's band (regression)."""
    out = []
    for r in labels:
        source = r.label.source or r.name
        if r.kind == "regression":
            codes = np.where(np.isnan(r.truth), -1, np.digitize(np.nan_to_num(r.truth), edges)).astype(int)
            out.append(Grouping(r.name, source, codes, band_names(edges)))
        else:
            out.append(Grouping(r.name, source, np.asarray(r.truth, dtype=int), list(r.value_names)))
    return out


@dataclass
class GroupReport:
    """Every label's metrics per group of every other label, and the gaps between the best and worst group.

    Attributes:
        by_group: one row per label, metric, grouping label and group:
            ``label``, ``metric``, ``by``, ``group``, ``n`` (labelled faces),
            ``support`` (the faces the metric counts: ``n``, the positives for
            recall, positives in truth or prediction for F1), ``value`` (the
            metric on the group), ``low``/``high`` (its bootstrap interval).
        gaps: one row per label, metric and grouping label: ``best``/``worst``
            group and their values, ``gap`` (how much worse the worst is),
            ``low``/``high`` (the gap's bootstrap interval), ``groups``
            (groups compared) and ``flagged`` (the interval excludes 0).
        n_boot, level, seed, min_group: how the intervals were made.
    """

    by_group: pd.DataFrame
    gaps: pd.DataFrame
    n_boot: int = N_BOOTSTRAP
    level: float = CI_LEVEL
    seed: int = BOOTSTRAP_SEED
    min_group: int = MIN_GROUP_FACES
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        """The gaps larger than the noise."""
        return self.gaps[self.gaps["flagged"].astype(bool)].reset_index(drop=True)

    def method(self) -> str:
        """One sentence on how gaps are judged."""
        return (f"{self.level:.0%} percentile intervals from {self.n_boot} seeded bootstrap resamples of each "
                f"group (seed {self.seed}); a gap is flagged when the interval of the best-minus-worst "
                f"difference excludes 0; groups where the metric counts fewer than {self.min_group} faces "
                f"are not compared")

    def summary_lines(self) -> list[str]:
        """The flagged gaps, one line each (for the terminal)."""
        flagged = self.flagged
        if not len(self.gaps):
            return ["per-group metrics: no label to split by (the set has one label)"]
        if not len(flagged):
            return [f"per-group metrics: no gap beyond the noise in {len(self.gaps)} comparisons"]
        lines = [f"per-group gaps beyond the noise ({len(flagged)} of {len(self.gaps)} comparisons):"]
        for row in flagged.itertuples(index=False):
            lines.append(f"  {row.label} {row.metric} by {row.by}: {row.worst} {row.worst_value:.3f} vs "
                         f"{row.best} {row.best_value:.3f} (gap {row.gap:.3f}, {self.level:.0%} CI "
                         f"{row.low:.3f} to {row.high:.3f})")
        return lines

    def table(self) -> pd.DataFrame:
        """``by_group`` with each comparison's gap, interval and flag, and the group's role in it."""
        gaps = self.gaps.rename(columns={"low": "gap_low", "high": "gap_high"})
        merged = self.by_group.merge(gaps[["label", "metric", "by", "best", "worst", "gap", "gap_low",
                                           "gap_high", "flagged"]], on=["label", "metric", "by"], how="left")
        role = np.where(merged["group"] == merged["worst"], "worst",
                        np.where(merged["group"] == merged["best"], "best", ""))
        merged.insert(merged.columns.get_loc("high") + 1, "role", role)
        return merged.drop(columns=["best", "worst"])

    def to_markdown(self, title: str = "Per-group metrics") -> str:
        """The flagged gaps, every comparison and every group, as Markdown."""
        parts = [f"# {title}", "", self.method() + ".", ""]
        parts += [f"_{note}_" for note in self.notes] + ([""] if self.notes else [])
        parts += ["## Gaps beyond the noise", ""]
        flagged = self.flagged
        parts.append(to_markdown(flagged) if len(flagged) else "None.\n")
        parts += ["## Every comparison (best against worst group)", ""]
        parts.append(to_markdown(self.gaps) if len(self.gaps) else "None.\n")
        parts += ["## Every group", ""]
        parts.append(to_markdown(self.by_group) if len(self.by_group) else "None.\n")
        return "\n".join(parts)


def _interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if not finite.size:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _replicates(kind: str, metric: str, truth: np.ndarray, predicted: np.ndarray,
                draws: np.ndarray, classes: int) -> np.ndarray:
    """The metric on each bootstrap resample (rows of ``draws``), from counts; NaN where undefined."""
    t, p = truth[draws], predicted[draws]
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return (t == p).mean(axis=1)
        if metric == "mae":
            return np.abs(t - p).mean(axis=1)
        if kind == "binary":
            tp = ((t == 1) & (p == 1)).sum(axis=1)
            fp = ((t == 0) & (p == 1)).sum(axis=1)
            fn = ((t == 1) & (p == 0)).sum(axis=1)
            if metric == "recall":
                return np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            return np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        # multiclass macro F1 over the classes present in the resample's truth or predictions
        scores = np.full((len(draws), classes), np.nan)
        for k in range(classes):
            tp = ((t == k) & (p == k)).sum(axis=1)
            wrong = ((t == k) != (p == k)).sum(axis=1)  # fp + fn
            present = tp + wrong > 0
            scores[:, k] = np.where(present, 2 * tp / (2 * tp + wrong), np.nan)
        return np.nanmean(scores, axis=1) if classes else np.full(len(draws), np.nan)


def _support(kind: str, metric: str, truth: np.ndarray, predicted: np.ndarray) -> int:
    """The faces ``metric`` counts: the positives for recall, positives in truth or prediction for F1, else all."""
    if kind == "binary" and metric == "recall":
        return int((truth == 1).sum())
    if kind == "binary" and metric == "f1":
        return int(((truth == 1) | (predicted == 1)).sum())
    return int(truth.size)


def _score(target: LabelResult, metric: str, rows_true, rows_pred) -> float:
    """``metric`` of ``target`` on the faces at positions ``rows_true`` (MetricFrame hands positions)."""
    rows = np.asarray(rows_true, dtype=int)
    rows = rows[target.labelled[rows]]
    if not rows.size:
        return float("nan")
    truth, predicted = _encoded(target)
    return float(_replicates(target.kind, metric, truth, predicted, rows[None, :], len(target.value_names))[0])


def _encoded(target: LabelResult) -> tuple[np.ndarray, np.ndarray]:
    if target.kind == "regression":
        return target.truth, target.predicted
    return target.truth.astype(int), target.predicted.astype(int)


def _compare(rows: list[dict[str, Any]], replicates: dict, target: LabelResult, by: str, metric: str,
             higher_better: bool, level: float, min_group: int) -> dict[str, Any]:
    """The best and worst group of one label, metric and grouping, and whether their gap is beyond the noise."""
    eligible = [r for r in rows
                if r["metric"] == metric and r["support"] >= min_group and np.isfinite(r["value"])]
    gap = {"label": target.name, "metric": metric, "by": by, "best": "", "best_value": np.nan,
           "worst": "", "worst_value": np.nan, "gap": np.nan, "low": np.nan, "high": np.nan,
           "groups": len(eligible), "flagged": False}
    if len(eligible) < 2:
        return gap
    ordered = sorted(eligible, key=lambda r: r["value"], reverse=higher_better)
    best, worst = ordered[0], ordered[-1]
    sign = 1.0 if higher_better else -1.0
    diff = sign * (replicates[(metric, best["group"])] - replicates[(metric, worst["group"])])
    low, high = _interval(diff, level)
    gap.update(best=best["group"], best_value=best["value"], worst=worst["group"], worst_value=worst["value"],
               gap=sign * (best["value"] - worst["value"]), low=low, high=high,
               flagged=bool(np.isfinite(low) and low > 0))
    return gap


def _split_by(by: Grouping, targets: list[tuple[int, LabelResult]], seed: int, j: int, n_boot: int,
              level: float, min_group: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every target label's metrics on the groups of ``by``, with intervals and gaps."""
    from fairlearn.metrics import MetricFrame

    positions = np.flatnonzero(by.codes >= 0)
    if not positions.size or not targets:
        return [], []
    names = np.array(by.names, dtype=object)
    functions = {f"{i}/{metric}": partial(_score, target, metric)
                 for i, target in targets for metric in METRICS[target.kind]}
    frame = MetricFrame(metrics=functions, y_true=positions, y_pred=positions,
                        sensitive_features=pd.Series(names[by.codes[positions]], name=by.name))
    estimates = frame.by_group
    rows_out, gaps = [], []
    for i, target in targets:
        rng = np.random.default_rng((seed, i, j))
        truth, predicted = _encoded(target)
        rows, replicates = [], {}
        for code in np.unique(by.codes[positions]):
            group = str(names[code])
            members = np.flatnonzero((by.codes == code) & target.labelled)
            draws = members[rng.integers(0, members.size, size=(n_boot, members.size))] if members.size else None
            for metric in METRICS[target.kind]:
                if draws is None:
                    reps = np.full(n_boot, np.nan)
                else:
                    reps = _replicates(target.kind, metric, truth, predicted, draws, len(target.value_names))
                replicates[(metric, group)] = reps
                low, high = _interval(reps, level)
                rows.append({"label": target.name, "metric": metric, "by": by.name, "group": group,
                             "n": int(members.size),
                             "support": _support(target.kind, metric, truth[members], predicted[members]),
                             "value": float(estimates.loc[group, f"{i}/{metric}"]),
                             "low": low, "high": high})
        rows_out += rows
        gaps += [_compare(rows, replicates, target, by.name, metric, higher_better, level, min_group)
                 for metric, higher_better in METRICS[target.kind].items()]
    return rows_out, gaps


def group_metrics(labels: Sequence[LabelResult], *, n_boot: int = N_BOOTSTRAP, level: float = CI_LEVEL,
                  seed: int = BOOTSTRAP_SEED, min_group: int = MIN_GROUP_FACES,
                  edges: Sequence[float] = BAND_EDGES) -> GroupReport:
    """Each label's metrics split by every other label, with bootstrap intervals and flagged gaps.

    Args:
        labels: the report's label results (truth and prediction per face).
        n_boot: bootstrap resamples of each group.
        level: confidence level of the intervals.
        seed: seed of the bootstrap (the same inputs give the same intervals).
        min_group: groups whose metric counts fewer faces (its support) are listed but not compared.
        edges: band edges for grouping by a regression label.

    Returns:
        A :class:`GroupReport`, rows ordered by label, then grouping label, then group.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot}: expected at least 1 bootstrap resample")
    labels = list(labels)
    splits = groupings(labels, edges)
    rows: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    for j, by in enumerate(splits):
        targets = [(i, target) for i, target in enumerate(labels) if splits[i].source != by.source]
        by_rows, by_gaps = _split_by(by, targets, seed, j, n_boot, level, min_group)
        rows += by_rows
        gaps += by_gaps
    order = {label.name: k for k, label in enumerate(labels)}
    by_group = pd.DataFrame(rows, columns=BY_GROUP_COLUMNS)
    gap_frame = pd.DataFrame(gaps, columns=GAP_COLUMNS)
    for frame in (by_group, gap_frame):
        frame.sort_values(["label", "by"], key=lambda column: column.map(order), kind="stable", inplace=True)
        frame.reset_index(drop=True, inplace=True)
    gap_frame["flagged"] = gap_frame["flagged"].astype(bool)
    report = GroupReport(by_group, gap_frame, n_boot, level, seed, min_group)
    if len(report.flagged):
        log.debug("%d per-group gap(s) beyond the noise", len(report.flagged))
    return report


def write_group_tables(report: GroupReport, csv_path: str | Path, md_path: str | Path,
                       title: str = "Per-group metrics") -> tuple[Path, Path]:
    """Write :meth:`GroupReport.table` as CSV and :meth:`GroupReport.to_markdown` (both atomically).

    Args:
        report: the per-group metrics.
        csv_path: the CSV to write.
        md_path: the Markdown file to write.
        title: the Markdown's heading.

    Returns:
        The two paths.
    """
    csv_path, md_path = Path(csv_path), Path(md_path)
    atomic_write_text(csv_path, report.table().to_csv(index=False))
    atomic_write_text(md_path, report.to_markdown(title))
    return csv_path, md_path
