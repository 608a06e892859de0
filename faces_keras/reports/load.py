"""Reading one labelled split of a run directory into a :class:`~faces_keras.reports.results.ReportData`.

A run's report reads ``predictions.npz`` (one ``<split>/<head>`` output and
``<split>/<head>/true`` truth per head of the schema, planned by
:func:`faces_keras.labels.heads.plan_heads`), ``thresholds.json`` and the
prepared dataset's images. Nothing here imports Keras.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from faces_keras.errors import FacesKerasError, RunError
from faces_keras.labels.heads import plan_heads
from faces_keras.labels.schema import Schema
from faces_keras.reports.results import ReportData, label_results
from faces_keras.rundir import PREDICTIONS, THRESHOLDS, RunDir
from faces_keras.thresholds.tune import DEFAULT_THRESHOLD, ThresholdResult

log = logging.getLogger(__name__)

SPLITS = ("val", "test")
# The run's own plots the HTML report embeds, with their captions.
RUN_PLOTS = (("history.png", "Training history: train against validation"),
             ("thresholds.png", "Threshold curves (validation): precision, recall, F1"))

__all__ = ["SPLITS", "load_report_data", "read_thresholds"]


def load_report_data(run: RunDir | str | Path, split: str = "test") -> ReportData:
    """Read a run's predictions, thresholds and dataset images for one labelled split.

    Args:
        run: the run directory.
        split: ``val`` or ``test``.

    Returns:
        The :class:`ReportData`; what could not be read (thresholds.json, the
        dataset's images) is in its ``warnings`` and logged.

    Raises:
        RunError: the split is not a labelled one, predictions.npz is missing,
            or it lacks a head of the run's schema.
    """
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
    thresholds, thresholds_from = read_thresholds(run, schema, warnings)
    outputs, truths = {}, {}
    for head in plan_heads(schema):
        key = f"{split}/{head.name}"
        if key not in predictions or f"{key}/true" not in predictions:
            raise RunError(f"{run / PREDICTIONS}: no {key!r} predictions and truth for head {head.name!r} "
                           f"(labels {list(head.labels)}); predict again with "
                           f"`faces-keras thresholds {run.path} --repredict`")
        outputs[head.name], truths[head.name] = predictions[key], predictions[f"{key}/true"]
    labels = label_results(schema, outputs, truths, thresholds, str(run / PREDICTIONS))
    index = predictions[f"{split}/index"].astype(int)
    faces, images = _faces_and_images(run, index, warnings)
    for message in warnings:
        log.warning("%s", message)
    plots = {caption: run / name for name, caption in RUN_PLOTS if (run / name).is_file()}
    return ReportData(run.path.name, split, labels, faces, images, thresholds_from, warnings,
                      _facts(run, split, len(index)), str(run.path), plots, run)


def read_thresholds(run: RunDir, schema: Schema, warnings: list[str]) -> tuple[dict[str, float], str | None]:
    """The binary labels' thresholds from ``thresholds.json``, or 0.5 with a warning.

    Args:
        run: the run directory.
        schema: its labels.
        warnings: where to append what is missing.

    Returns:
        (label -> threshold, the file name read or None when 0.5 was used).
    """
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
