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

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from faces_keras.errors import RunError
from faces_keras.io import atomic_path, atomic_write_text, read_json
from faces_keras.labels.schema import Schema, load_schema


class StalePredictionsError(RunError):
    """predictions.npz was made by another model.keras than the run holds now."""


CONFIG, SCHEMA, MANIFEST, MODEL = "config.yaml", "schema.yaml", "manifest.json", "model.keras"
CHECKPOINTS, LAST, BEST, STATE = "checkpoints", "last.keras", "best.keras", "state.json"
BEST_RECORD = "best.json"  # the epoch and monitored value of best.keras
HISTORY, PREDICTIONS, THRESHOLDS = "history.csv", "predictions.npz", "thresholds.json"
METRICS_JSON, METRICS_CSV, REPORT = "metrics.json", "metrics.csv", "report.html"
MODEL_CHECKSUM = "model_sha256"  # the key in predictions.npz


@dataclass
class RunDir:
    """The files of one run directory (the layout above), by name; nothing is read until asked.

    Args:
        path: the run directory, a string or a path; it need not exist yet.
    """

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
    def model_checksum(self) -> str | None:
        """sha256 of model.keras (None when there is none), read in 1 MiB chunks."""
        path = self.path / MODEL
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(2 ** 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def save_predictions(self, arrays: dict[str, np.ndarray]) -> None:
        """Write predictions.npz atomically, with the checksum of the model.keras that made them."""
        checksum = self.model_checksum()
        if checksum is not None:
            arrays = {**arrays, MODEL_CHECKSUM: np.asarray(checksum)}
        with atomic_path(self.path / PREDICTIONS) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)

    def load_predictions(self, verify: bool = True) -> dict[str, np.ndarray]:
        """Read predictions.npz.

        Args:
            verify: refuse predictions made by another model.keras than the one in
                the folder now (thresholds and reports would describe the old model).

        Returns:
            The arrays by key (``"<split>/<head>"``, ``"<split>/<head>/true"``, ...).

        Raises:
            StalePredictionsError: ``verify`` and model.keras changed since.
        """
        self.require(PREDICTIONS)
        with np.load(self.path / PREDICTIONS, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        recorded = arrays.pop(MODEL_CHECKSUM, None)
        if verify and recorded is not None:
            current = self.model_checksum()
            if current is not None and current != str(recorded):
                raise StalePredictionsError(
                    f"{self.path / PREDICTIONS} was made by another model.keras (sha256 {str(recorded)[:12]}, "
                    f"now {current[:12]}); predict again with: faces-keras thresholds {self.path} --repredict")
        return arrays
