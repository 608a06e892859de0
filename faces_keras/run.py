"""``Run``: one trained run directory, and what can be done with it from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faces_keras.io import read_json
from faces_keras.labels.schema import Schema
from faces_keras.rundir import METRICS_JSON, THRESHOLDS, RunDir
from faces_keras.thresholds.tune import ThresholdConfig
from faces_keras.training.config import TrainConfig


class Run:
    """A run directory written by :func:`faces_keras.train`: its settings, model and results.

    Args:
        path: the run directory.

    Example:

    >>> run = faces_keras.Run("runs/grids-default")          # doctest: +SKIP
    >>> run.metrics()["heads"]["labels"]["test"][0]["f1"]    # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        self.dir = path if isinstance(path, RunDir) else RunDir(path)
        self.dir.require("config.yaml", "schema.yaml")

    @property
    def path(self) -> Path:
        return self.dir.path

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> TrainConfig:
        """The settings it was trained with (config.yaml)."""
        return TrainConfig.from_dict(self.dir.read_config(), where=str(self.dir / "config.yaml"))

    @property
    def schema(self) -> Schema:
        """The labels the model predicts."""
        return self.dir.schema()

    def metrics(self) -> dict[str, Any]:
        """metrics.json: per head and split, the scores at the tuned thresholds."""
        self.dir.require(METRICS_JSON)
        return read_json(self.dir / METRICS_JSON)

    def thresholds(self) -> dict[str, float]:
        """Each binary label's decision threshold (thresholds.json)."""
        self.dir.require(THRESHOLDS)
        return dict(read_json(self.dir / THRESHOLDS)["thresholds"])

    def load_model(self, compile: bool = False):
        """The Keras model (model.keras)."""
        from faces_keras.models.saving import load_run_model

        return load_run_model(self.dir, compile=compile)

    def tune_thresholds(self, config: ThresholdConfig | None = None) -> dict[str, Any]:
        """Tune thresholds on validation again; rewrites thresholds.json, metrics and the report.

        Returns:
            The metrics, as written to metrics.json.
        """
        from faces_keras.training.evaluate import tune_run_thresholds

        return tune_run_thresholds(self.dir, config)
