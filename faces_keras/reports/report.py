"""Reports as a library: every file of the green/red prediction report of a labelled set, and what was written.

Two entry points, both returning a :class:`ReportResult` and printing nothing:

* :func:`write_report` -- one labelled split (``val`` or ``test``) of a run
  directory, read from ``predictions.npz``, ``thresholds.json`` and the prepared
  dataset's images (:func:`faces_keras.reports.load.load_report_data`);
* :func:`write_set_report` -- any labelled set a model has scored: its rows,
  images, head outputs and the thresholds to judge them at (what
  ``faces-keras evaluate`` hands over for a second labelled set).

Each writes, in one folder (under its one-writer lock, every file atomically):

* ``report.html`` (``report_<split>.html`` for any split but test): the page
  (:mod:`.html`), with metrics, confusion matrices, per-group metrics,
  calibration and the face gallery;
* ``report_<split>.png``: the gallery as a figure (:mod:`.gallery`);
* ``predictions_<split>.csv``: every face's prediction (:func:`predictions_frame`);
* ``groups.csv`` and ``groups.md`` (``groups_<split>.*`` but for test): the
  per-group metrics and flagged gaps (:mod:`.groups`);
* ``reliability.png`` (``reliability_<split>.png`` but for test): the
  reliability diagrams (:mod:`.calibration`).

The terminal rendering comes back as text (:attr:`ReportResult.terminal`), for
the command line to print.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from faces_keras.io import atomic_write_text
from faces_keras.labels.heads import make_targets, plan_heads
from faces_keras.labels.schema import Schema
from faces_keras.locking import folder_lock
from faces_keras.reports.calibration import ReliabilityCurve, calibration_curves, save_reliability
from faces_keras.reports.gallery import save_gallery
from faces_keras.reports.groups import GroupReport, group_metrics, write_group_tables
from faces_keras.reports.html import report_filename, write_html_report
from faces_keras.reports.load import SPLITS, load_report_data
from faces_keras.reports.results import (DEFAULT_PER_CLASS, MISSING, RIGHT, VALUE, WRONG, Cell, LabelResult,
                                         ReportData, ReportError, binary_confusion, label_results,
                                         metrics_tables, predictions_frame, sample_positions)
from faces_keras.reports.terminal import render_report
from faces_keras.rundir import RunDir
from faces_keras.settings import setting, validate

log = logging.getLogger(__name__)

__all__ = [
    "ReportConfig", "ReportResult", "write_report", "write_set_report", "report_files",
    "Cell", "LabelResult", "ReportData", "ReportError", "load_report_data", "sample_positions",
    "metrics_tables", "binary_confusion", "predictions_frame", "write_predictions_csv", "report_filename",
    "RIGHT", "WRONG", "MISSING", "VALUE", "SPLITS",
]


@dataclass
class ReportConfig:
    """Settings of a report.

    Attributes:
        split: the run's labelled split to report (``write_report``), and the
            name in the file names (``write_set_report``, unless it is given a name).
        per_class: faces of each class of each label the terminal table, the
            gallery and the page show (0: every face).
        color: colour the terminal text (green right, red wrong); the command
            line still leaves colour out where its output is not a terminal.
        out: the folder for the report's files (default: the run directory).
    """

    split: str = setting("test", choices=SPLITS, help="the labelled split to report")
    per_class: int = setting(DEFAULT_PER_CLASS, at_least=0, metavar="N",
                             help="faces of each class of each label (0: all)")
    color: bool = setting(True, flag="--no-color",
                          help="no colour in the terminal table (right/wrong per face are in the CSV)")
    out: str | None = setting(None, metavar="DIR", help="folder for report files (default: the run directory)")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class ReportResult:
    """What a report wrote, and its terminal text.

    Attributes:
        folder: where the files are.
        html: the HTML page.
        gallery: the PNG gallery.
        predictions: the predictions CSV.
        groups_csv: the per-group metrics CSV.
        groups_md: the per-group metrics as Markdown.
        reliability: the reliability diagrams PNG.
        terminal: the terminal report, with ANSI colours when ``config.color``.
        terminal_plain: the same text without any escape code.
        data: the report's data (labels, faces, images).
        groups: the per-group metrics.
        calibration: label -> reliability curve (binary labels and multiclass heads).
    """

    folder: Path
    html: Path
    gallery: Path
    predictions: Path
    groups_csv: Path
    groups_md: Path
    reliability: Path
    terminal: str
    terminal_plain: str
    data: ReportData = field(repr=False)
    groups: GroupReport = field(repr=False)
    calibration: dict[str, ReliabilityCurve] = field(repr=False)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file written: HTML, PNG gallery, predictions CSV, groups CSV and Markdown, reliability PNG."""
        return (self.html, self.gallery, self.predictions, self.groups_csv, self.groups_md, self.reliability)

    def summary(self) -> str:
        """``wrote <path>`` per file, one a line."""
        return "\n".join(f"wrote {path}" for path in self.paths)


def report_files(folder: str | Path, split: str) -> dict[str, Path]:
    """The file of each part of a report of ``split`` in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    suffix = "" if split == "test" else f"_{split}"
    return {"html": folder / report_filename(split), "gallery": folder / f"report_{split}.png",
            "predictions": folder / f"predictions_{split}.csv", "groups_csv": folder / f"groups{suffix}.csv",
            "groups_md": folder / f"groups{suffix}.md", "reliability": folder / f"reliability{suffix}.png"}


def write_predictions_csv(data: ReportData, path: str | Path | None = None) -> Path:
    """Write :func:`predictions_frame` atomically.

    Args:
        data: the report's data.
        path: the CSV (default ``<run>/predictions_<split>.csv``).

    Returns:
        The path written.
    """
    if path is None:
        if data.run is None:
            raise ReportError(f"{data.name}: not a run's split; give the CSV's path")
        path = data.run / f"predictions_{data.split}.csv"
    path = Path(path)
    atomic_write_text(path, predictions_frame(data).to_csv(index=False))
    return path


def _write_all(data: ReportData, folder: Path, config: ReportConfig, seed: int = 0) -> ReportResult:
    files = report_files(folder, data.split)
    groups = group_metrics(data.labels)
    calibration = calibration_curves(data.labels)
    with folder_lock(folder, "report folder"):
        folder.mkdir(parents=True, exist_ok=True)
        write_html_report(data, files["html"], per_class=config.per_class, seed=seed, groups=groups,
                          calibration=calibration)
        save_gallery(data, files["gallery"], per_class=config.per_class, seed=seed)
        write_predictions_csv(data, files["predictions"])
        write_group_tables(groups, files["groups_csv"], files["groups_md"],
                           title=f"Per-group metrics: {data.name}, {data.split}")
        save_reliability(calibration, files["reliability"])
    plain = render_report(data, config.per_class, seed, color=False, groups=groups, calibration=calibration)
    coloured = (render_report(data, config.per_class, seed, color=True, groups=groups, calibration=calibration)
                if config.color else plain)
    log.debug("report of %s (%s) in %s", data.name, data.split, folder)
    return ReportResult(folder, files["html"], files["gallery"], files["predictions"], files["groups_csv"],
                        files["groups_md"], files["reliability"], coloured, plain, data, groups, calibration)


def write_report(run: RunDir | str | Path, config: ReportConfig = ReportConfig()) -> ReportResult:
    """Write the report of one labelled split of a run: HTML, PNG gallery, CSVs, per-group tables, calibration.

    Args:
        run: the run directory, or a :class:`faces_keras.Run` (it needs predictions.npz;
            thresholds.json and the dataset's images are used when present, and their
            absence is warned about).
        config: split, faces per class, colour and output folder.

    Returns:
        A :class:`ReportResult` with the paths written and the terminal text.

    Raises:
        RunError: the run has no predictions for the split, or they do not fit its schema.
    """
    run = run if isinstance(run, RunDir) else RunDir(getattr(run, "path", run))  # also a faces_keras.Run
    data = load_report_data(run, config.split)
    folder = Path(config.out) if config.out else run.path
    return _write_all(data, folder, config)


def write_set_report(out_dir: str | Path, *, schema: Schema, faces: pd.DataFrame, images: np.ndarray | None,
                     probabilities: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                     config: ReportConfig = ReportConfig(), title: str, name: str | None = None,
                     thresholds_from: str | None = "the given thresholds", warnings: Sequence[str] = (),
                     facts: Mapping[str, str] | None = None) -> ReportResult:
    """Write the report of any labelled set a model has scored.

    Args:
        out_dir: the folder for the files (created; held under its one-writer lock).
        schema: the labels the model predicts; its heads are planned with
            :func:`faces_keras.labels.heads.plan_heads`.
        faces: one row per face, in the order of ``images`` and ``probabilities``:
            an ``id`` column and one column per label of ``schema`` holding the
            encoded truth (binary 1/0/-1, class index or -1, value or NaN);
            ``index`` and ``source_id`` are used when present.
        images: (n, S, S, C) uint8 faces for the gallery, or None.
        probabilities: head name -> model output (the binary head's (n, L)
            P(positive), a multiclass head's (n, K) softmax, a regression head's values).
        thresholds: binary label -> threshold (every binary label needs one).
        config: faces per class and colour (``split`` and ``out`` are not used).
        title: what the set is called in the report's titles.
        name: the set's name in headings and file names (default ``config.split``;
            ``test`` gives ``report.html``).
        thresholds_from: where the thresholds came from, for the reader (None:
            they are the default 0.5).
        warnings: what the reader should know first.
        facts: name -> value lines at the top of the page.

    Returns:
        A :class:`ReportResult` with the paths written and the terminal text.

    Raises:
        ReportError: a label column, a head's outputs or a threshold is missing,
            or the arrays' lengths disagree.
    """
    split = name or config.split
    lacking = [column for column in ("id", *schema.label_names) if column not in faces.columns]
    if lacking:
        raise ReportError(f"{title}: the faces table has no column(s) {lacking}; expected id and the labels "
                          f"{schema.label_names}")
    n = len(faces)
    if images is not None and len(images) != n:
        raise ReportError(f"{title}: {len(images)} images for {n} faces")
    faces = faces.reset_index(drop=True)
    encoded = [name for name in schema.label_names if not pd.api.types.is_numeric_dtype(faces[name])]
    if encoded:
        raise ReportError(f"{title}: label column(s) {encoded} are not encoded numbers; expected binary 1/0/-1, "
                          "a class index or -1, or a value (faces_keras.labels reads them so)")
    truths = make_targets(faces, plan_heads(schema))
    labels = label_results(schema, probabilities, truths, thresholds, title)
    if labels and len(labels[0].truth) != n:
        raise ReportError(f"{title}: {len(labels[0].truth)} predictions for {n} faces")
    facts = dict(facts or {})
    facts.setdefault("set", f"{split} ({n} faces)")
    data = ReportData(title, split, labels, faces, images, thresholds_from, list(warnings), facts)
    for message in data.warnings:
        log.warning("%s", message)
    return _write_all(data, Path(out_dir), config)
