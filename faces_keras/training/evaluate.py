"""Evaluate a run from its stored predictions: thresholds on val, metrics on val and test.

Works from ``predictions.npz`` alone, so re-tuning thresholds
(``faces-keras thresholds``) never re-runs the model and never looks at test
while choosing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from faces_keras.io import atomic_write_text, to_jsonable, write_json
from faces_keras.labels.heads import plan_heads
from faces_keras.thresholds.tune import ThresholdConfig
from faces_keras.rundir import METRICS_CSV, METRICS_JSON, THRESHOLDS, RunDir

log = logging.getLogger(__name__)


def tune_run_thresholds(run: RunDir, config: ThresholdConfig | None = None, *,
                        extra: dict[str, Any] | None = None, report: bool = True) -> dict[str, Any]:
    """Tune a run's thresholds on its validation predictions; write thresholds, metrics and the report.

    Args:
        run: a run directory with predictions.npz.
        config: how thresholds are searched (default: :class:`ThresholdConfig`'s defaults).
        extra: more entries for metrics.json (training time, parameters).
        report: also write report.html.

    Returns:
        The metrics, as written to metrics.json.
    """
    config = config or ThresholdConfig()
    from faces_keras.reports.metrics import (before_after_table, binary_metrics, multiclass_metrics,
                                             regression_metrics)
    from faces_keras.tables import to_markdown
    from faces_keras.thresholds import plot_threshold_curves, tune_thresholds

    schema = run.schema()
    heads = plan_heads(schema)
    preds = run.load_predictions()
    previous = _read_previous(run)
    metrics: dict[str, Any] = {"heads": {}, **previous, **(extra or {})}
    tables = []
    for head in heads:
        if head.kind == "binary":
            names = list(head.labels)
            tuned = tune_thresholds(preds[f"val/{head.name}/true"].astype(int), preds[f"val/{head.name}"],
                                    names, config)
            tuned.save(run / THRESHOLDS)
            plot_threshold_curves(tuned, run / "thresholds.png")
            for note_label, note in tuned.notes.items():
                log.warning("%s: %s", note_label, note)
            head_out: dict[str, Any] = {"kind": "binary", "thresholds": tuned.thresholds,
                                        "objectives": tuned.objectives, "notes": tuned.notes}
            for split in ("val", "test"):
                y_true = preds[f"{split}/{head.name}/true"].astype(int)
                table = binary_metrics(y_true, preds[f"{split}/{head.name}"], names, tuned.thresholds)
                head_out[split] = table.to_dict(orient="records")
                tables.append(before_after_table(y_true, preds[f"{split}/{head.name}"], names, tuned, split))
            metrics["heads"][head.name] = head_out
        elif head.kind == "multiclass":
            label = schema[head.labels[0]]
            head_out = {"kind": "multiclass", "note": "arg-max over classes, no threshold"}
            for split in ("val", "test"):
                result = multiclass_metrics(preds[f"{split}/{head.name}/true"].astype(int),
                                            preds[f"{split}/{head.name}"], list(label.classes))
                head_out[split] = to_jsonable(result)
            metrics["heads"][head.name] = head_out
        else:
            head_out = {"kind": "regression"}
            for split in ("val", "test"):
                head_out[split] = to_jsonable(regression_metrics(preds[f"{split}/{head.name}/true"][:, 0],
                                                               preds[f"{split}/{head.name}"][:, 0]))
            metrics["heads"][head.name] = head_out
    write_json(run / METRICS_JSON, metrics)
    if tables:
        table = pd.concat(tables, ignore_index=True)
        atomic_write_text(run / METRICS_CSV, table.to_csv(index=False))
        atomic_write_text(run / "metrics.md", to_markdown(table))
    _plot_history(run)
    if report:
        _write_report(run)
    return metrics


def _read_previous(run: RunDir) -> dict[str, Any]:
    """Keep training facts (time, parameters) when thresholds are re-tuned later."""
    from faces_keras.io import read_json

    path = run / METRICS_JSON
    if not path.is_file():
        return {}
    old = read_json(path)
    return {k: v for k, v in old.items() if k != "heads"}


def _plot_history(run: RunDir) -> None:
    history = run / "history.csv"
    if not history.is_file():
        return
    from faces_keras.reports.plots import plot_history

    plot_history(pd.read_csv(history), run / "history.png")


def _write_report(run: RunDir) -> None:
    try:
        from faces_keras.reports.html import write_run_report
    except ImportError:  # the HTML report is optional for a bare evaluation
        return
    write_run_report(run)
