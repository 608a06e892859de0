"""A resumable Hyperband search, its summary, and the best configuration retrained: :func:`tune`.

``faces-keras tune`` builds a :class:`~faces_keras.tuning.settings.TuneConfig` from its
flags, calls :func:`tune` and prints the :class:`SearchResult`; nothing here parses flags or
prints. What a search leaves behind is listed in :mod:`faces_keras.tuning.searchdir`.

A search is resumable: keras-tuner reloads ``oracle.json`` and every
``trial.json``, sends the trial that was running when the process died back
for a retry (so a kill loses at most that trial), and continues. ``overwrite``
starts afresh. Settings that define the search (dataset, labels, space,
objective, Hyperband sizes, seed) must match the saved ones on resume.

Distributed search uses keras-tuner's chief/worker mode: the chief serves the
oracle over gRPC and runs no trials; each worker asks it for trials and
writes checkpoints into the shared search directory. See docs/tuning.md.

A dead worker does not hang the search: while a worker runs a trial it sends
the chief a heartbeat several times per ``worker_timeout`` (``--worker-timeout``;
give every process the same value). The chief gives up a worker silent for
longer, logs which worker and which trial, and sends the trial back to the
queue, where the next worker that asks takes it; the chief ends when the
trials are done. A worker restarted with the same id gets its old trial again
if the chief has not given it up yet, a new one (or "the search is over")
otherwise; the chief logs either case.

One writer: a single process or the chief holds the search directory's lock
(:func:`faces_keras.locking.folder_lock`) for the whole search; a second one is
refused at once (``FolderLockedError``). Workers share the directory by design.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import keras
import keras_tuner as kt

from faces_keras.io import write_json
from faces_keras.labels.heads import Head
from faces_keras.locking import folder_lock
from faces_keras.models.presets import ModelConfig
from faces_keras.tuning.oracle import watch_workers
from faces_keras.tuning.retrain import retrain_best
from faces_keras.tuning.searchdir import BEST_JSON, CHECKPOINT, prepare_search_dir
from faces_keras.tuning.settings import TuneConfig, hyperband_plan
from faces_keras.tuning.summary import TrialRow, load_trials, write_summary
from faces_keras.tuning.tuner import FacesHyperband, ObjectiveMetrics, distributed_env, keras_metric_name

__all__ = ["SearchResult", "TuneConfig", "run_search", "tune"]

log = logging.getLogger(__name__)

BIG_CHECKPOINT_BYTES = 200 * 2 ** 20


@dataclass
class SearchResult:
    """What a search left behind, and where: all a caller (the ``tune`` command) needs to report it.

    Attributes:
        project_dir: the search directory.
        role: ``single``, ``chief`` or ``worker``.
        status: ``new`` or ``resumed`` (a single process or the chief); ``worker``.
        trials: every trial of the search, best first (empty for a worker).
        best: the best completed trial, if any.
        best_model: its architecture, as ``faces-keras train`` would build it.
        summary_csv, summary_md: the summary files.
        run_dir: ``best-run/``, when the best configuration was retrained.
        trials_run: the trials this process ran.
        device: what the backend ran on (``faces_keras.backend.describe_device``).
        seconds: how long this process took.
        objective: what the trials' scores measure.
        worker_id: the worker's id (None for a single process or the chief).
    """

    project_dir: Path
    role: str
    status: str  # new | resumed (chief/single); worker
    trials: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    best_model: ModelConfig | None = None
    summary_csv: Path | None = None
    summary_md: Path | None = None
    run_dir: Path | None = None
    trials_run: list[str] = field(default_factory=list)  # by this process
    device: dict = field(default_factory=dict)
    seconds: float = 0.0
    objective: str = ""
    worker_id: str | None = None

    @property
    def completed(self) -> list[TrialRow]:
        """The trials that completed."""
        return [r for r in self.trials if r.status == "COMPLETED"]

    @property
    def best_json(self) -> Path | None:
        """``best.json`` (the best trial's hyperparameters and ModelConfig), once there is a best trial."""
        return None if self.best is None else self.project_dir / BEST_JSON


def tune(config: TuneConfig) -> SearchResult:
    """Run (or resume) the search, summarise it, and retrain the best configuration.

    A worker only runs trials; the chief serves the oracle, then summarises
    and retrains like a single process does.

    Args:
        config: the search's settings (its role included).

    Returns:
        What the search left behind, and where (:class:`SearchResult`).

    Raises:
        FolderLockedError: another single process or chief is writing the search directory.
        RunError: the search directory holds a different search (and ``overwrite`` is off).
    """
    with distributed_env(config):
        if config.role == "worker":  # workers share the search directory by design
            return _run_search(config)
        # One writer: a second search into the same directory is refused before anything is loaded.
        with folder_lock(config.project_dir, "search directory"):
            return _run_search(config)


def _run_search(config: TuneConfig) -> SearchResult:
    from faces_keras.backend import describe_device, set_precision, set_seed

    started = time.perf_counter()
    set_seed(config.seed)
    precision = set_precision(config.mixed_precision)
    device = {**describe_device(), "precision": precision}
    log.info("tuning on %s (%s backend, %s; accelerators: %s) as %s", device["device"], device["backend"],
             precision, ", ".join(device["accelerators"]) or "none", config.tuner_id)
    data, heads, input_shape = _load_data(config)
    metric_name = keras_metric_name(config.objective, heads)
    status = prepare_search_dir(config) if config.role != "worker" else "worker"
    _warn_about_checkpoints(config, heads, input_shape)
    tuner = _make_tuner(config, heads, input_shape)
    plan = hyperband_plan(config.max_epochs, config.factor, config.hyperband_iterations)
    log.info("%s search %s: %d trials, at most %d epochs", status, config.project_dir, plan["trials"], plan["epochs"])
    with _quiet_known_warnings():
        if data is None:  # the chief: serve the oracle until its trials are done
            with watch_workers(tuner.oracle, config.heartbeat_seconds):
                tuner.search(verbose=config.verbose)
        else:
            tuner.search(**_fit_arguments(config, data), verbose=config.verbose)
    result = SearchResult(config.project_dir, config.role, status, trials_run=list(tuner.trials_run),
                          device=device, objective=config.objective, worker_id=config.worker)
    if config.role == "worker":
        result.seconds = time.perf_counter() - started
        return result
    return _finish(config, result, input_shape, metric_name, started)


def _load_data(config: TuneConfig):
    from faces_keras.data.store import Dataset
    from faces_keras.models.heads import plan_heads
    from faces_keras.training.train import TrainingData

    dataset = Dataset.load(config.dataset)
    if config.role == "chief":  # the chief runs no trials: it needs the space, not the images
        return None, plan_heads(dataset.schema.select(list(config.labels))), tuple(dataset.images.shape[1:])
    data = TrainingData.load(dataset, config.labels, config.max_train, config.seed)
    return data, data.heads, tuple(data.x["train"].shape[1:])


def _make_tuner(config: TuneConfig, heads: list[Head], input_shape: tuple[int, ...]) -> FacesHyperband:
    from faces_keras.tuning.hypermodels import hypermodel_for

    hypermodel = hypermodel_for(config.space, heads, input_shape, augmentation=config.augmentation)
    return FacesHyperband(
        hypermodel, objective=kt.Objective(config.objective, direction=config.direction),
        max_epochs=config.max_epochs, factor=config.factor, hyperband_iterations=config.hyperband_iterations,
        seed=config.seed, directory=str(config.directory), project_name=config.project,
        overwrite=False,  # prepare_search_dir has already removed the directory when asked to
        executions_per_trial=config.executions_per_trial, keep_checkpoints=config.keep_checkpoints,
        worker_timeout=config.worker_timeout if config.role == "chief" else None,
        heartbeat_seconds=config.heartbeat_seconds)


def _fit_arguments(config: TuneConfig, data) -> dict[str, Any]:
    """What every trial's ``model.fit`` receives (Hyperband adds epochs and initial_epoch)."""
    callbacks = [
        # First: it adds the objective to the logs that the callbacks after it read.
        ObjectiveMetrics(config.objective, data.heads, data.x["val"], data.targets["val"]),
        keras.callbacks.EarlyStopping(monitor=config.objective, mode=config.direction, patience=config.patience),
    ]
    # Faces stream from the memory-mapped dataset a batch at a time (the batches shuffle themselves).
    return {"x": data.batches("train", config.batch_size, shuffle=True, seed=config.seed),
            "validation_data": data.batches("val", config.batch_size), "shuffle": False, "callbacks": callbacks}


def _finish(config: TuneConfig, result: SearchResult, input_shape: tuple[int, ...], metric_name: str,
            started: float) -> SearchResult:
    from faces_keras.tuning.hypermodels import describe_space, model_config_from_values

    rows = load_trials(config.project_dir, config.direction)
    result.trials = rows
    best = next((r for r in rows if r.status == "COMPLETED"), None)
    result.best = best
    if best is not None:
        result.best_model = model_config_from_values(config.space, best.hyperparameters, input_shape[0])
        if not config.augmentation and result.best_model.augmentation is not None:
            from dataclasses import replace

            result.best_model = replace(result.best_model, augmentation=None)
        write_json(config.project_dir / BEST_JSON, {
            "trial_id": best.trial_id, "objective": config.objective, "score": best.score,
            "hyperparameters": best.hyperparameters, "model": result.best_model.to_dict()})
    if not config.keep_checkpoints:
        # The search is over and the best configuration is retrained from scratch.
        for checkpoint in config.project_dir.glob(f"trial_*/{CHECKPOINT}"):
            checkpoint.unlink()
    space_lines = describe_space(config.space, input_size=input_shape[0])
    result.summary_csv, result.summary_md = write_summary(config, rows, space_lines=space_lines,
                                                          device=result.device)
    epochs = config.max_epochs if config.retrain_epochs is None else config.retrain_epochs
    if best is not None and epochs > 0:
        monitor = metric_name if config.objective == "val_auc" else "val_loss"
        result.run_dir = retrain_best(config, result.best_model, epochs, monitor)
    result.seconds = time.perf_counter() - started
    write_summary(config, rows, space_lines=space_lines, device=result.device, run_dir=result.run_dir,
                  seconds=result.seconds)
    return result


run_search = tune  # the name earlier code calls it by


def _warn_about_checkpoints(config: TuneConfig, heads: list[Head], input_shape: tuple[int, ...]) -> None:
    if config.space != "original":
        return
    from faces_keras.tuning.hypermodels import ORIGINAL_DEFAULTS, original_parameter_count

    params = original_parameter_count(ORIGINAL_DEFAULTS[0], ORIGINAL_DEFAULTS[1], input_shape,
                                      sum(h.units for h in heads))
    checkpoint = params * 4 * 3  # float32 weights and Adam's two moments
    if checkpoint >= BIG_CHECKPOINT_BYTES:
        plan = hyperband_plan(config.max_epochs, config.factor, config.hyperband_iterations)
        log.warning("the original space's models have ~%.0f M parameters (at its default sizes): each trial "
                    "checkpoint is ~%.1f GB (weights and Adam state)%s; up to %d trials",
                    params / 1e6, checkpoint / 1e9,
                    "" if config.keep_checkpoints else ", deleted once no trial can continue from it",
                    plan["trials"])


class _DropRetracingNotes(logging.Filter):
    """TensorFlow's "triggered tf.function retracing" note: expected when every trial is a new model."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_known_warnings() -> Iterator[None]:
    # keras-tuner's Hyperband loads a parent's checkpoint into a fresh model. Our
    # HyperModel builds the optimiser first, so Adam's state *is* restored; the
    # warning can then only come from a checkpoint written without optimiser
    # variables (a search started by another tool), where starting Adam afresh
    # is the only option. Silence that one message, nothing else.
    retracing = _DropRetracingNotes()
    tf_logger = logging.getLogger("tensorflow")  # the standard logger; TensorFlow itself is not imported
    tf_logger.addFilter(retracing)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            yield
    finally:
        tf_logger.removeFilter(retracing)
