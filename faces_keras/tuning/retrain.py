"""The best configuration of a search, retrained into ``<search>/best-run``: a normal run directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from faces_keras.tuning.settings import TuneConfig
from faces_keras.tuning.searchdir import BEST_RUN

if TYPE_CHECKING:
    from faces_keras.models.presets import ModelConfig

log = logging.getLogger(__name__)


def retrain_best(config: TuneConfig, model: ModelConfig, epochs: int, monitor: str) -> Path:
    """Train ``model`` into ``<search>/best-run`` like ``faces-keras train`` would.

    A finished run with the same model and epochs is kept (running the command
    again does not retrain); an interrupted one is resumed.

    Args:
        config: the search's settings (dataset, labels, faces, seed, batch size, patience).
        model: the best trial's architecture.
        epochs: epochs to train.
        monitor: the validation quantity early stopping and the best checkpoint follow.

    Returns:
        The run directory.
    """
    from faces_keras.rundir import RunDir
    from faces_keras.training.train import TrainConfig, resume, train

    run_dir = config.project_dir / BEST_RUN
    train_config = TrainConfig(dataset=config.dataset, labels=config.labels, model=model, epochs=epochs,
                               batch_size=config.batch_size, seed=config.seed, monitor=monitor,
                               # a trial's patience is kept short to save budget; the final
                               # model gets the training default's room to recover from plateaus
                               patience=max(config.patience, TrainConfig.patience), max_train=config.max_train,
                               mixed_precision=config.mixed_precision, verbose=config.verbose)
    run = RunDir(run_dir)
    if (run / "config.yaml").is_file():
        existing = run.read_config()
        same = existing.get("model") == model.to_dict() and existing.get("epochs") == epochs
        if same and (run / "metrics.json").is_file() and (run / "model.keras").is_file():
            log.info("%s already holds the retrained best configuration", run_dir)
            return run_dir
        if same:
            log.info("resuming the interrupted retraining in %s", run_dir)
            return resume(run_dir).path
    log.info("retraining the best configuration for %d epochs into %s", epochs, run_dir)
    return train(train_config, run_dir, overwrite=True).path
