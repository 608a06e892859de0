"""The run directory: everything one training leaves behind, and reading it back.

::

    runs/<name>/
      config.yaml        every setting of the run (repeat it with `train --config`)
      schema.yaml        the labels the model predicts
      manifest.json      the prepared dataset's manifest it trained on
      model.keras        the best epoch by the monitored validation metric
      checkpoints/       last.keras + state.json (for --resume), best.keras
      history.csv        one row per epoch (Keras CSVLogger)
      history.png        loss, precision, recall: train against validation
      predictions.npz    probabilities on val and test, for thresholds and reports
      thresholds.json    per-label thresholds tuned on validation
      metrics.json/.csv  per split, per label
      report.html        the green/red report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from faces_keras.errors import RunError
from faces_keras.io import atomic_path, atomic_write_text, read_json
from faces_keras.labels.schema import Schema, load_schema

CONFIG, SCHEMA, MANIFEST, MODEL = "config.yaml", "schema.yaml", "manifest.json", "model.keras"
CHECKPOINTS, LAST, BEST, STATE = "checkpoints", "last.keras", "best.keras", "state.json"
HISTORY, PREDICTIONS, THRESHOLDS = "history.csv", "predictions.npz", "thresholds.json"
METRICS_JSON, METRICS_CSV, REPORT = "metrics.json", "metrics.csv", "report.html"


@dataclass
class RunDir:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def require(self, *names: str) -> None:
        missing = [n for n in names if not (self.path / n).exists()]
        if missing:
            raise RunError(f"{self.path}: not a complete run directory ({', '.join(missing)} missing)")

    # -- config and schema ----------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.path / CONFIG, yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        self.require(CONFIG)
        return yaml.safe_load((self.path / CONFIG).read_text())

    def schema(self) -> Schema:
        self.require(SCHEMA)
        return load_schema(self.path / SCHEMA)

    def manifest(self) -> dict[str, Any]:
        self.require(MANIFEST)
        return read_json(self.path / MANIFEST)

    # -- predictions ---------------------------------------------------------------
    def save_predictions(self, arrays: dict[str, np.ndarray]) -> None:
        with atomic_path(self.path / PREDICTIONS) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)

    def load_predictions(self) -> dict[str, np.ndarray]:
        self.require(PREDICTIONS)
        with np.load(self.path / PREDICTIONS, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def load_model(self):
        import keras

        import faces_keras.models.heads  # noqa: F401  (registers the custom losses and metrics)

        self.require(MODEL)
        return keras.saving.load_model(self.path / MODEL)
