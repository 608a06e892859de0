"""Ensembles of runs: average the members' predictions, tune thresholds on the average, score test once.

Runs trained on the same prepared dataset (other seeds, other presets, the
per-label and all-label models of ``compare``) predict the same validation and
test faces. Their mean probability per face (mean prediction for regression
heads) is scored exactly as one run is: thresholds tuned on validation, test
touched once (:func:`faces_keras.training.evaluate.tune_run_thresholds`). The
ensemble folder holds the averaged predictions.npz, thresholds.json and
metrics.json/.csv/.md beside a config.yaml that names its members; it has no
model of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from faces_keras.errors import RunError
from faces_keras.rundir import MANIFEST, METRICS_JSON, SCHEMA, RunDir
from faces_keras.thresholds.tune import ThresholdConfig

INDEX_KEYS = ("val/index", "test/index")


def average_predictions(runs: Sequence[str | Path | RunDir]) -> dict[str, np.ndarray]:
    """The members' predictions.npz averaged key by key.

    Args:
        runs: two or more run directories with predictions.npz for the same
            prepared dataset and the same schema.

    Returns:
        The arrays as in one run's predictions.npz: ``<split>/<head>`` averaged
        over the members, truths and indices as the members have them.

    Raises:
        RunError: fewer than two runs, or members that disagree on the schema,
            the faces (``<split>/index``) or the truth; the message names the run.
    """
    members = [r if isinstance(r, RunDir) else RunDir(r) for r in runs]
    if len(members) < 2:
        raise RunError(f"an ensemble needs at least two runs; got {len(members)}")
    first = members[0]
    schema = (first / SCHEMA).read_text() if (first / SCHEMA).is_file() else None
    reference = first.load_predictions()
    totals = {k: v.astype(np.float64) for k, v in reference.items() if _is_prediction(k)}
    for member in members[1:]:
        if (member / SCHEMA).is_file() and schema is not None and (member / SCHEMA).read_text() != schema:
            raise RunError(f"{member.path}: its schema.yaml differs from {first.path}'s; "
                           "an ensemble's members must predict the same labels")
        arrays = member.load_predictions()
        for key, value in reference.items():
            if key not in arrays:
                raise RunError(f"{member.path}: predictions.npz lacks {key!r}, which {first.path} has")
            if not _is_prediction(key) and not np.array_equal(arrays[key], value, equal_nan=value.dtype.kind == "f"):
                raise RunError(f"{member.path}: predictions.npz {key!r} differs from {first.path}'s; "
                               "an ensemble's members must be trained on the same prepared dataset")
            if _is_prediction(key):
                if arrays[key].shape != value.shape:
                    raise RunError(f"{member.path}: predictions.npz {key!r} has shape {arrays[key].shape}, "
                                   f"expected {value.shape} as in {first.path}")
                totals[key] += arrays[key]
    averaged = dict(reference)
    averaged.update({k: (v / len(members)).astype(np.float32) for k, v in totals.items()})
    return averaged


def _is_prediction(key: str) -> bool:
    return key not in INDEX_KEYS and not key.endswith("/true")


def ensemble_runs(runs: Sequence[str | Path | RunDir], out: str | Path, *,
                  thresholds: ThresholdConfig | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Average runs' predictions into ``out`` and score them as one run.

    Args:
        runs: two or more run directories on the same prepared dataset
            (see :func:`average_predictions`).
        out: the ensemble folder to write; refused if it exists, unless ``overwrite``.
        thresholds: how the ensemble's thresholds are tuned on validation
            (default: :class:`ThresholdConfig`'s defaults).
        overwrite: replace an existing ``out``.

    Returns:
        The ensemble's metrics, as written to ``out/metrics.json`` (``members``
        lists the runs; ``parameters`` and ``train_seconds`` are the members' sums).
    """
    from faces_keras.io import atomic_dir, read_json
    from faces_keras.training.evaluate import tune_run_thresholds

    members = [r if isinstance(r, RunDir) else RunDir(r) for r in runs]
    averaged = average_predictions(members)
    facts: dict[str, Any] = {"members": [str(m.path) for m in members]}
    member_metrics = [read_json(m / METRICS_JSON) for m in members if (m / METRICS_JSON).is_file()]
    for key in ("parameters", "train_seconds"):
        values = [m[key] for m in member_metrics if key in m]
        if len(values) == len(members):
            facts[key] = sum(values)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        folder = RunDir(tmp)
        for name in (SCHEMA, MANIFEST):
            if (members[0] / name).is_file():
                shutil.copyfile(members[0] / name, folder / name)
        folder.write_config({"ensemble": facts["members"],
                             "note": "mean of the members' predictions; no model of its own"})
        folder.save_predictions(averaged)
        metrics = tune_run_thresholds(folder, thresholds, extra=facts, report=False)
    return metrics


__all__ = ["average_predictions", "ensemble_runs"]
