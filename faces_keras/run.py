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
        path: the run directory (a path or a :class:`RunDir`).

    Raises:
        RunError: the folder lacks config.yaml or schema.yaml (not a run).

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
        """metrics.json: per head and split, the scores at the tuned thresholds.

        Returns:
            The parsed metrics.json: ``heads`` (per head: kind, thresholds,
            ``val`` and ``test`` scores) and training facts (``train_seconds``,
            ``parameters``...).

        Raises:
            RunError: the run has no metrics.json (it did not finish).
        """
        self.dir.require(METRICS_JSON)
        return read_json(self.dir / METRICS_JSON)

    def thresholds(self) -> dict[str, float]:
        """Each binary label's decision threshold (thresholds.json).

        Returns:
            Label name to threshold in [0, 1].

        Raises:
            RunError: the run has no thresholds.json.
        """
        self.dir.require(THRESHOLDS)
        return dict(read_json(self.dir / THRESHOLDS)["thresholds"])

    def predictions(self, verify: bool = True) -> dict[str, Any]:
        """predictions.npz: the model's outputs and the truth on val and test.

        Args:
            verify: refuse predictions made by another model.keras than the run holds now.

        Returns:
            The arrays by key: ``"<split>/<head>"``, ``"<split>/<head>/true"``, ``"<split>/index"``.
        """
        return self.dir.load_predictions(verify=verify)

    def history(self):
        """history.csv as a table: one row per epoch, every loss and metric, the learning rate and speed.

        Returns:
            A pandas DataFrame.
        """
        import pandas as pd

        self.dir.require("history.csv")
        return pd.read_csv(self.dir / "history.csv")

    def scores(self):
        """metrics.csv as a table: per split and label, the scores at 0.5 and at the tuned threshold.

        Returns:
            A pandas DataFrame.
        """
        import pandas as pd

        self.dir.require("metrics.csv")
        return pd.read_csv(self.dir / "metrics.csv")

    def load_model(self, compile: bool = False):
        """The Keras model (model.keras).

        Args:
            compile: also restore the loss, metrics and optimizer state (only
                needed to train or evaluate it further); ``False`` by default.

        Returns:
            The Keras model.

        Raises:
            RunError: model.keras is missing or damaged.
        """
        from faces_keras.models.saving import load_run_model

        return load_run_model(self.dir, compile=compile)

    def tune_thresholds(self, config: ThresholdConfig | None = None) -> dict[str, Any]:
        """Tune thresholds on validation again; rewrites thresholds.json, metrics and the report.

        Args:
            config: how thresholds are searched; ``None`` (the default) uses
                :class:`ThresholdConfig`'s defaults.

        Returns:
            The metrics, as written to metrics.json.

        Raises:
            RunError: the run has no predictions.npz.
        """
        from faces_keras.training.evaluate import tune_run_thresholds

        return tune_run_thresholds(self.dir, config)

    def report(self, config=None):
        """The green/red report of one split (HTML, gallery, CSV, per-group metrics, calibration).

        Args:
            config: a :class:`faces_keras.reports.ReportConfig` (split, faces per class, output folder).

        Returns:
            A :class:`faces_keras.reports.ReportResult` with the paths written and the terminal text.
        """
        from faces_keras.reports import write_report

        return write_report(self.dir, config) if config is not None else write_report(self.dir)

    def predict(self, photos, config=None):
        """Detect the faces in photos and predict their labels at the run's thresholds.

        Args:
            photos: image files, folders or globs.
            config: a :class:`faces_keras.inference.predict.PredictConfig` (output folder, batch size, ...).

        Returns:
            A :class:`faces_keras.inference.predict.PredictResult`.
        """
        from faces_keras.inference.predict import predict_photos

        return predict_photos(self.path, list(photos) if not isinstance(photos, (str, Path)) else [photos], config)

    def evaluate(self, data, config=None):
        """Score the run on another labelled set, with its own preprocessing and thresholds.

        Args:
            data: a prepared dataset folder, or photos or a labels file (see ``EvaluateConfig``).
            config: a :class:`faces_keras.inference.evaluate.EvaluateConfig`.

        Returns:
            A :class:`faces_keras.inference.evaluate.EvaluationResult` (metrics and the report's paths).
        """
        from faces_keras.inference.evaluate import evaluate_run_on

        return evaluate_run_on(self.dir, data, config)

    def embed(self, data=None, config=None):
        """Penultimate-layer embeddings, 2-D projections, nearest neighbours and hard pairs.

        Args:
            data: a prepared dataset folder (default: the run's own test split).
            config: a :class:`faces_keras.inference.embed.EmbedConfig`.

        Returns:
            A :class:`faces_keras.inference.embed.EmbeddingResult`.
        """
        from faces_keras.inference.embed import embed_run

        return embed_run(self.dir, data, config)

    def export(self, format: str = "onnx", out=None, config=None):
        """Export the model (preprocessing inside) with its schema and thresholds beside it.

        Args:
            format: ``onnx``, ``tflite`` or ``saved_model``.
            out: where to write it (default: inside the run directory).
            config: a :class:`faces_keras.inference.export.ExportConfig`.

        Returns:
            A :class:`faces_keras.inference.export.ExportResult` (paths, parity against Keras).
        """
        from faces_keras.inference.export import export_model

        return export_model(self.dir, format, out, config)
