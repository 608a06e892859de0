"""``faces-keras tune``: a resumable Hyperband search, its summary, and the best model retrained.

::

    searches/<project>/              the search directory (outside the repository; git-ignored)
      tune_config.json               the settings that define the search (checked on resume)
      oracle.json, tuner0.json       keras-tuner's state: running the command again resumes from it
      trial_<id>/trial.json          keras-tuner's record of a trial: hyperparameters, metrics, score
      trial_<id>/faces_trial.json    ours: which worker ran it, how long, epochs actually run
      trial_<id>/checkpoint.weights.h5  its best epoch (weights + Adam state), while still needed
      summary.csv, summary.md        every trial, best first
      best.json                      the best trial's hyperparameters and ModelConfig
      best-run/                      the best configuration retrained: a normal run directory

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

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from faces_keras.errors import FacesKerasError, RunError
from faces_keras.tables import to_markdown
from faces_keras.io import atomic_write_text, read_json, write_json
from faces_keras.locking import folder_lock
from faces_keras.models.heads import BINARY_HEAD, Head
from faces_keras.models.presets import ModelConfig

log = logging.getLogger(__name__)

OBJECTIVES = {"val_loss": "min", "val_auc": "max", "val_mean_f1": "max"}
ROLES = ("single", "chief", "worker")
CONFIG_FILE, SUMMARY_CSV, SUMMARY_MD, BEST_JSON, BEST_RUN = (
    "tune_config.json", "summary.csv", "summary.md", "best.json", "best-run")
TRIAL_RECORD = "faces_trial.json"
CHECKPOINT = "checkpoint.weights.h5"
# Settings that define what a search is; resuming with different ones would mix two searches.
SEARCH_KEYS = ("dataset", "labels", "space", "objective", "max_epochs", "factor", "hyperband_iterations",
               "executions_per_trial", "seed", "max_train", "augmentation")
ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
IDLE_WAIT_SECONDS = 1.0  # a worker waiting for other workers' trials asks the chief again after this
HEARTBEAT_SECONDS = 10.0  # a worker running a trial tells the chief it is alive this often (or faster, see below)
BIG_CHECKPOINT_BYTES = 200 * 2 ** 20
_WORKER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# -- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TuneConfig:
    """Every setting of a search, validated here and nowhere else."""

    dataset: str = ""
    labels: tuple[str, ...] = ()  # a subset of the schema's labels; empty: all
    space: str = "default"  # default | residual | original
    objective: str = "val_loss"  # val_loss | val_auc | val_mean_f1
    max_epochs: int = 20  # Hyperband's largest budget for one trial
    factor: int = 3  # Hyperband's reduction factor
    hyperband_iterations: int = 1
    executions_per_trial: int = 1
    batch_size: int = 64
    seed: int = 0
    directory: str = "searches"
    project_name: str | None = None  # default: <dataset>[-<labels>]-<space>[-<objective>]
    overwrite: bool = False  # True: delete the search directory and start again
    patience: int = 3  # early stopping inside a trial, in epochs without improvement
    max_train: int | None = None  # use at most this many training faces
    mixed_precision: bool = False
    augmentation: bool = True  # the default/residual presets' online augmentation
    role: str = "single"  # single | chief | worker (keras-tuner's distributed mode)
    worker_id: str | None = None  # a worker's KERASTUNER_TUNER_ID, e.g. tuner0
    oracle_ip: str = "127.0.0.1"
    oracle_port: int | None = None
    retrain_epochs: int | None = None  # None: max_epochs; 0: do not retrain the best trial
    keep_checkpoints: bool = False  # False: drop checkpoints no trial will continue from
    worker_timeout: float = 300.0  # distributed: seconds a worker may stay silent before the chief gives it up
    verbose: int = 2  # Keras fit verbosity; keras-tuner prints trial tables when > 0

    def __post_init__(self):
        if not self.dataset:
            raise ValueError("dataset: a prepared dataset folder is needed")
        if isinstance(self.labels, str) or not all(isinstance(v, str) and v for v in self.labels):
            raise ValueError(f"labels={self.labels!r}: expected a tuple of label names")
        from faces_keras.tuning.hypermodels import SPACES

        if self.space not in SPACES:
            raise ValueError(f"space={self.space!r}: expected one of {tuple(SPACES)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r}: expected one of {tuple(OBJECTIVES)}")
        for name, low in (("max_epochs", 1), ("factor", 2), ("hyperband_iterations", 1),
                          ("executions_per_trial", 1), ("batch_size", 1), ("patience", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: expected an integer of at least {low}")
        if self.max_train is not None and self.max_train < 1:
            raise ValueError(f"max_train={self.max_train}: expected at least 1 (or None for all)")
        if self.retrain_epochs is not None and self.retrain_epochs < 0:
            raise ValueError(f"retrain_epochs={self.retrain_epochs}: expected 0 (no retraining) or more")
        if (isinstance(self.worker_timeout, bool) or not isinstance(self.worker_timeout, (int, float))
                or not math.isfinite(self.worker_timeout) or self.worker_timeout <= 0):
            raise ValueError(f"worker_timeout={self.worker_timeout!r}: expected a number of seconds above 0")
        if self.project_name is not None and (not self.project_name or "/" in self.project_name):
            raise ValueError(f"project_name={self.project_name!r}: expected a folder name")
        self._check_role()

    def _check_role(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role={self.role!r}: expected one of {ROLES}")
        if self.role == "single":
            return
        if not isinstance(self.oracle_port, int) or not 0 < self.oracle_port < 65536:
            raise ValueError(f"oracle_port={self.oracle_port!r}: a distributed search needs a port (1-65535)")
        if not self.oracle_ip:
            raise ValueError("oracle_ip: a distributed search needs the chief's address")
        if self.role == "worker":
            if not self.worker_id or not _WORKER_ID.match(self.worker_id) or "chief" in self.worker_id:
                raise ValueError(f"worker_id={self.worker_id!r}: expected a name like tuner0 "
                                 "(letters, digits, _ . -; not containing 'chief')")
            if self.overwrite:
                raise ValueError("overwrite: only the chief (or a single process) may start a search afresh")

    @property
    def project(self) -> str:
        if self.project_name:
            return self.project_name
        parts = [Path(self.dataset).name or "dataset", *self.labels, self.space]
        if self.objective != "val_loss":
            parts.append(self.objective)
        return "-".join(parts)

    @property
    def project_dir(self) -> Path:
        return Path(self.directory) / self.project

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker running a trial reports to the chief: several times per worker timeout."""
        return max(0.5, min(HEARTBEAT_SECONDS, self.worker_timeout / 4))

    @property
    def tuner_id(self) -> str:
        return {"single": "tuner0", "chief": "chief"}.get(self.role) or str(self.worker_id)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = list(self.labels)
        return out

    def search_settings(self) -> dict[str, Any]:
        """The settings that define the search, with the dataset as an absolute path."""
        out = {key: self.to_dict()[key] for key in SEARCH_KEYS}
        out["dataset"] = str(Path(self.dataset).resolve())
        return out


# -- Hyperband's plan -----------------------------------------------------------------------

def hyperband_plan(max_epochs: int, factor: int = 3, iterations: int = 1) -> dict[str, int]:
    """Trials and epochs one search runs (keras-tuner's HyperbandOracle arithmetic).

    ``epochs`` counts epochs actually trained: a continued trial trains only
    from its parent's budget up to its own. Early stopping makes it an upper bound.
    """
    brackets, budget = 0, float(max_epochs)
    while budget >= 1:
        budget /= factor
        brackets += 1
    final_size = math.ceil(1 + math.log(max_epochs, factor))
    trials = epochs = 0
    for bracket in range(brackets):
        for round_num in range(bracket + 1):
            size = math.ceil(final_size / (bracket + 1) * factor ** (bracket - round_num))
            top = math.ceil(max_epochs / factor ** (bracket - round_num))
            start = math.ceil(max_epochs / factor ** (bracket - round_num + 1)) if round_num else 0
            trials += size
            epochs += size * (top - start)
    return {"brackets": brackets, "trials": trials * iterations, "epochs": epochs * iterations}


# -- objectives --------------------------------------------------------------------------------

def mean_tuned_f1(probs: dict[str, np.ndarray], targets: dict[str, np.ndarray], heads: list[Head]) -> float:
    """Mean F1 over labels: binary labels at their F1-best threshold, multiclass heads macro F1.

    Regression heads do not count. A binary label whose validation faces are
    all of one class has no F1 to tune and is left out; NaN when nothing is left.
    """
    from sklearn.metrics import f1_score

    from faces_keras.thresholds import ThresholdConfig, tune_thresholds

    scores: list[float] = []
    for head in heads:
        if head.kind == "binary":
            tuned = tune_thresholds(targets[head.name].astype(int), probs[head.name], list(head.labels),
                                    ThresholdConfig())
            scores += [float(v) for v in tuned.best_f1.values()]
        elif head.kind == "multiclass":
            truth = targets[head.name].reshape(-1).astype(int)
            keep = truth >= 0
            if keep.any():
                predicted = probs[head.name][keep].argmax(axis=-1)
                scores.append(float(f1_score(truth[keep], predicted, average="macro", zero_division=0)))
    return float(np.mean(scores)) if scores else float("nan")


def keras_metric_name(objective: str, heads: list[Head]) -> str:
    """The name Keras logs an objective under (``val_auc`` is per-head when there are several heads)."""
    if objective == "val_auc":
        if not any(h.kind == "binary" for h in heads):
            raise FacesKerasError("objective val_auc needs at least one binary label; use val_loss")
        return "val_auc" if len(heads) == 1 else f"val_{BINARY_HEAD}_auc"
    if objective == "val_mean_f1" and not any(h.kind in ("binary", "multiclass") for h in heads):
        raise FacesKerasError("objective val_mean_f1 needs a binary or multiclass label; use val_loss")
    return objective


class ObjectiveMetrics(keras.callbacks.Callback):
    """Adds the search objective to each epoch's logs where Keras does not log it by that name.

    Runs before keras-tuner's own callbacks (and early stopping), which read
    the same logs dict: ``val_auc`` is copied from the binary head's AUC of a
    multi-head model; ``val_mean_f1`` predicts the validation faces and tunes
    per-label thresholds on them (:func:`mean_tuned_f1`).
    """

    def __init__(self, objective: str, heads: list[Head], x_val: np.ndarray, targets_val: dict[str, np.ndarray],
                 batch_size: int = 256):
        super().__init__()
        self.objective, self.heads = objective, heads
        self.x_val, self.targets_val, self.batch_size = x_val, targets_val, batch_size
        self.source = keras_metric_name(objective, heads)

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies callbacks for every trial; share the validation arrays.
        return type(self)(self.objective, self.heads, self.x_val, self.targets_val, self.batch_size)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.objective == "val_mean_f1":
            from faces_keras.training.train import predict_heads

            probs = predict_heads(self.model, self.x_val, self.heads, batch_size=self.batch_size)
            logs["val_mean_f1"] = mean_tuned_f1(probs, self.targets_val, self.heads)
        elif self.source != self.objective and self.source in logs:
            logs[self.objective] = logs[self.source]


# -- keras-tuner subclasses ------------------------------------------------------------------

class AtomicHyperbandOracle(kt.oracles.HyperbandOracle):
    """keras-tuner's Hyperband oracle, writing its state files atomically.

    keras-tuner writes ``oracle.json`` and ``trial.json`` in place; a process
    killed mid-write would leave a truncated file that no resume can read.
    """

    def save(self):
        atomic_write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        # keras-tuner saves before it drops the trial from the ongoing ones, so a
        # distributed chief (which saves nowhere else) would leave the last trial
        # "ongoing" in oracle.json, and a resume would run it again.
        self.save()

    def reload(self):
        super().reload()
        # keras-tuner retries every trial oracle.json lists as ongoing; one whose
        # trial.json says it completed (saved by the end_trial above or by an older
        # search) needs no second run.
        self._retry_queue = [t for t in self._retry_queue if self.trials[t].status != "COMPLETED"]

    def _save_trial(self, trial):
        atomic_write_text(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                          json.dumps(trial.get_state()))


# -- dead workers -------------------------------------------------------------------------------
#
# keras-tuner 1.4.8 override: trial checkpoints written atomically. Tuner.run_trial builds
# tuner_utils.SaveBestEpoch, which saves the best epoch's weights in place, so a kill
# during the save leaves a broken checkpoint.weights.h5 that a continuing Hyperband
# trial would load. There is no public hook for the callback, so for the duration of
# one run_trial the name points at a subclass that saves beside the file and renames.
@contextlib.contextmanager
def _atomic_trial_checkpoints() -> Iterator[None]:
    from keras_tuner.src.engine import tuner_utils

    class AtomicSaveBestEpoch(tuner_utils.SaveBestEpoch):
        def _save_model(self):
            final = Path(self.filepath)
            tmp = final.with_name(f".{final.name.split('.')[0]}.{os.getpid()}.tmp.weights.h5")
            try:
                self.model.save_weights(str(tmp))
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)

    original = tuner_utils.SaveBestEpoch
    tuner_utils.SaveBestEpoch = AtomicSaveBestEpoch
    try:
        yield
    finally:
        tuner_utils.SaveBestEpoch = original


# keras-tuner 1.4.8 override: WatchedHyperbandOracle (the chief) and Heartbeat (the workers).
#
# Why: keras-tuner's chief notices nothing. A worker killed mid-trial keeps its trial in
# ``Oracle.ongoing_trials`` and its id in ``Oracle.tuner_ids`` for good; Hyperband answers every
# other worker IDLE while a trial is ongoing, and ``oracle_chief.exit_chief`` waits for both to be
# empty, so the whole search waits forever. Workers only report when a trial starts
# (``create_trial``, the one call that names the worker) and ends (``update_trial``/``end_trial``;
# ``Tuner.on_epoch_end`` reports nothing), so a long trial would look like a dead worker: hence
# the heartbeat, an ``update_trial`` with no metrics, which only this chief understands.
#
# What is touched: ``ongoing_trials``, ``tuner_ids`` and ``_retry_queue``, the way keras-tuner's
# own ``Oracle.reload`` sends a crashed search's ongoing trials back for a retry (without counting
# a failure against ``max_retries_per_trial``: the worker died, not the trial). ``end_trial`` and
# ``update_trial`` drop a second result for a trial that already ended (from a worker given up
# for dead that was only slow).


class WatchedHyperbandOracle(AtomicHyperbandOracle):
    """The chief's oracle: gives up a worker silent for ``worker_timeout`` seconds and re-queues its trial.

    A worker is heard from when it asks for a trial (idle workers ask every
    ``IDLE_WAIT_SECONDS``) and by its heartbeat while it runs one.
    :meth:`give_up_silent_workers` runs on each of those calls and, from
    :func:`watch_workers`, periodically.
    """

    def __init__(self, *args, worker_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_timeout = float(worker_timeout)
        self._last_seen: dict[str, float] = {}  # tuner id -> time.monotonic() of its last call
        self._given_up: dict[str, float] = {}  # tuner id -> when it was given up for dead

    def _owner(self, trial_id: str) -> str | None:
        return next((tuner for tuner, trial in self.ongoing_trials.items() if trial.trial_id == trial_id), None)

    @kt.synchronized
    def create_trial(self, tuner_id):
        now = time.monotonic()
        self._last_seen[tuner_id] = now
        self.give_up_silent_workers(now)
        running = self.ongoing_trials.get(tuner_id)
        if running is not None:  # keras-tuner re-sends a worker its ongoing trial
            log.warning("worker %s asks for a trial while trial %s is still its own: it restarted, "
                        "and runs trial %s again from the start", tuner_id, running.trial_id, running.trial_id)
        trial = super().create_trial(tuner_id)
        given_up = self._given_up.pop(tuner_id, None)
        if given_up is not None:
            what = {"RUNNING": f"it gets trial {trial.trial_id}", "STOPPED": "the search is over: it stops",
                    "IDLE": "it waits for other workers' trials"}.get(trial.status, trial.status)
            log.warning("worker %s, given up for dead %.0f s ago, is back: %s", tuner_id, now - given_up, what)
        return trial

    @kt.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        owner = self._owner(trial_id)
        if owner is not None:
            self._last_seen[owner] = time.monotonic()
        if not metrics or trial_id in self.end_order:
            return self.trials[trial_id]  # a heartbeat, or a late report for a trial already ended
        return super().update_trial(trial_id, metrics, step=step)

    @kt.synchronized
    def end_trial(self, trial):
        if trial.trial_id in self.end_order:
            log.warning("trial %s ended a second time (a worker given up for dead was only slow): "
                        "keeping the first result", trial.trial_id)
            return
        if trial.trial_id in self._retry_queue and self._owner(trial.trial_id) is None:
            self._retry_queue.remove(trial.trial_id)  # its worker was only slow: it finished after all
        super().end_trial(trial)

    @kt.synchronized
    def give_up_silent_workers(self, now: float | None = None) -> list[str]:
        """Give up every worker silent for longer than the timeout; return the trials sent back."""
        now = time.monotonic() if now is None else now
        moved = []
        for tuner_id in sorted(set(self.tuner_ids) | set(self.ongoing_trials)):
            silent = now - self._last_seen.setdefault(tuner_id, now)
            if silent <= self.worker_timeout:
                continue
            self.tuner_ids.discard(tuner_id)
            self._given_up[tuner_id] = now
            trial = self.ongoing_trials.pop(tuner_id, None)
            if trial is None:
                log.warning("worker %s silent for %.1f s (worker timeout %g s): given up for dead; "
                            "it was running no trial", tuner_id, silent, self.worker_timeout)
                continue
            self._retry_queue.append(trial.trial_id)
            moved.append(trial.trial_id)
            self.save()
            try:  # (kt.synchronized does not release its lock when the call raises)
                append_trial_record(Path(self._get_trial_dir(trial.trial_id)), {
                    "worker": tuner_id, "status": "lost", "given_up": time.time(),
                    "silent_seconds": round(silent, 1)})
            except (OSError, ValueError) as exc:
                log.warning("could not record the lost attempt of trial %s: %s", trial.trial_id, exc)
            log.warning("worker %s silent for %.1f s (worker timeout %g s): given up for dead; "
                        "trial %s goes back to the queue for another worker", tuner_id, silent,
                        self.worker_timeout, trial.trial_id)
        return moved


@contextlib.contextmanager
def watch_workers(oracle: WatchedHyperbandOracle, every: float) -> Iterator[None]:
    """Check for silent workers every ``every`` seconds while the chief serves (even when no worker calls)."""
    stop = threading.Event()

    def watch():
        while not stop.wait(every):
            try:
                oracle.give_up_silent_workers()
            except Exception:  # noqa: BLE001  (a watcher that dies would bring the hang back)
                log.exception("checking for silent workers failed")

    thread = threading.Thread(target=watch, name="watch-workers", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)


class Heartbeat:
    """A worker's "still running trial X" to the chief every ``every`` seconds, from a thread."""

    def __init__(self, oracle, trial_id: str, every: float):
        self.oracle, self.trial_id, self.every = oracle, trial_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial_id}", daemon=True)

    def _beat(self):
        failed = False
        while not self._stop.wait(self.every):
            try:
                self.oracle.update_trial(self.trial_id, {}, step=0)
                failed = False
            except Exception as exc:  # noqa: BLE001  (the trial goes on; the chief may give us up)
                if not failed:
                    log.warning("heartbeat for trial %s failed (%s); the chief may give this worker up",
                                self.trial_id, type(exc).__name__)
                failed = True

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.every + 5)


class FacesHyperband(kt.Hyperband):
    """Hyperband that times its trials, seeds them, keeps memory flat and disk small.

    * every trial starts from a seed derived from the search seed and its id,
      so a trial retried after a crash trains like the lost attempt;
    * ``run_trial`` writes ``faces_trial.json`` into the trial directory: the
      worker that ran it, seconds, epochs actually run (early stopping), RSS;
    * ``on_trial_end`` clears the Keras session and collects garbage;
    * a worker sends the chief a :class:`Heartbeat` while it runs a trial;
    * unless ``keep_checkpoints``, a parent's checkpoint is deleted once the
      trial continuing it has completed (Hyperband continues a trial at most once).
    """

    def __init__(self, hypermodel, *, objective: kt.Objective, max_epochs: int, factor: int,
                 hyperband_iterations: int, seed: int, directory: str, project_name: str, overwrite: bool,
                 executions_per_trial: int = 1, keep_checkpoints: bool = False,
                 worker_timeout: float | None = None, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        # worker_timeout: the chief's; it gives up workers silent for that long (None: never).
        # heartbeat_seconds: how often a worker running a trial tells the chief it is alive.
        settings = dict(objective=objective, max_epochs=max_epochs, factor=factor,
                        hyperband_iterations=hyperband_iterations, seed=seed)
        oracle = (AtomicHyperbandOracle(**settings) if worker_timeout is None
                  else WatchedHyperbandOracle(**settings, worker_timeout=worker_timeout))
        self.search_seed = seed
        self.heartbeat_seconds = heartbeat_seconds
        self.keep_checkpoints = keep_checkpoints
        self.trials_run: list[str] = []
        # kt.Hyperband.__init__ only builds its own oracle; build ours and go on to kt.Tuner.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, directory=directory,
                          project_name=project_name, overwrite=overwrite,
                          executions_per_trial=executions_per_trial)

    def _populate_initial_space(self):
        # keras-tuner builds a whole model here to discover conditional
        # hyperparameters; our spaces have none, so declaring them is enough
        # (and the original space's model has 130 M parameters).
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        atomic_write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    def on_search_begin(self):
        super().on_search_begin()
        if self._is_worker():
            # A worker whose next trial waits on other workers' trials gets IDLE
            # and keras-tuner asks again at once: pause instead of spinning on gRPC.
            create_trial = self.oracle.create_trial

            def create_trial_or_wait(tuner_id):
                trial = create_trial(tuner_id)
                if trial.status == "IDLE":
                    time.sleep(IDLE_WAIT_SECONDS)
                return trial

            self.oracle.create_trial = create_trial_or_wait

    def run_trial(self, trial, *args, **kwargs):
        with _atomic_trial_checkpoints():
            return self._run_trial(trial, *args, **kwargs)

    def _run_trial(self, trial, *args, **kwargs):
        keras.utils.set_random_seed(self.search_seed * 10007 + int(trial.trial_id))
        record = {"worker": self.tuner_id, "host": socket.gethostname(), "pid": os.getpid(),
                  "started": time.time(), "status": "error", "epochs_run": 0}
        started = time.perf_counter()
        beating = Heartbeat(self.oracle, trial.trial_id, self.heartbeat_seconds) if self._is_worker() else None
        try:
            with beating or contextlib.nullcontext():
                histories = super().run_trial(trial, *args, **kwargs)
            record["epochs_run"] = int(sum(len(h.epoch) for h in histories))
            record["executions"] = len(histories)
            record["status"] = "completed"
            return histories
        except KeyboardInterrupt:
            record["status"] = "interrupted"
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - started, 3)
            record["rss_mb"] = _rss_mb()
            append_trial_record(Path(self.get_trial_dir(trial.trial_id)), record)
            self.trials_run.append(trial.trial_id)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle has recorded the trial when this returns
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent and not self.keep_checkpoints and trial.status == "COMPLETED":
            Path(self._get_checkpoint_fname(parent)).unlink(missing_ok=True)
        keras.backend.clear_session()
        gc.collect()


def append_trial_record(trial_dir: Path, record: dict[str, Any]) -> None:
    """Add one attempt to ``faces_trial.json`` (a retried trial has several)."""
    path = trial_dir / TRIAL_RECORD
    runs = read_json(path).get("runs", []) if path.is_file() else []
    write_json(path, {"runs": [*runs, record]})


def _rss_mb() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20, 1)


@contextlib.contextmanager
def distributed_env(config: TuneConfig) -> Iterator[None]:
    """Set keras-tuner's KERASTUNER_* variables for this role; restore them afterwards.

    keras-tuner reads them when the tuner is created and again in ``search``.
    A single-process search hides any that are set, so a stray variable cannot
    turn it into a worker.
    """
    names = (ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT)
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    if config.role != "single":
        os.environ.update({ENV_TUNER_ID: config.tuner_id, ENV_ORACLE_IP: config.oracle_ip,
                           ENV_ORACLE_PORT: str(config.oracle_port)})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the search directory --------------------------------------------------------------------

def prepare_search_dir(config: TuneConfig) -> str:
    """Start afresh (overwrite), or check that a resumed search is the same search.

    Returns "new" or "resumed". Only the chief or a single process calls this.
    """
    project = config.project_dir
    if config.overwrite and project.exists():
        shutil.rmtree(project)
    saved_path = project / CONFIG_FILE
    resumed = (project / "oracle.json").is_file()
    if saved_path.is_file():
        saved = read_json(saved_path).get("search", {})
        wanted = config.search_settings()
        differ = {k: (saved.get(k), wanted[k]) for k in SEARCH_KEYS if saved.get(k) != wanted[k]}
        if differ:
            details = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise RunError(f"{project} holds a different search ({details}); pass --overwrite to replace it "
                           "or choose another --project")
    elif resumed:
        log.warning("%s has keras-tuner state but no %s: resuming it as is", project, CONFIG_FILE)
    project.mkdir(parents=True, exist_ok=True)
    write_json(saved_path, {"search": config.search_settings(), "last_run": config.to_dict()})
    return "resumed" if resumed else "new"


# -- the summary -------------------------------------------------------------------------------

@dataclass
class TrialRow:
    """One trial as the summary shows it."""

    trial_id: str
    status: str
    score: float | None
    hyperparameters: dict[str, Any]
    epochs_from: int  # the epoch it started at (its parent's budget; 0 for a new trial)
    epochs_to: int  # its Hyperband budget
    epochs_run: int | None  # epochs actually trained (fewer when early stopping ended it)
    best_epoch: int | None  # 1-based epoch of its best objective value
    seconds: float | None
    worker: str | None
    attempts: int
    continues: str | None  # the trial it continued from
    bracket: int | None
    round: int | None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "hyperparameters"}
        return {**out, **self.hyperparameters}


def load_trials(project_dir: str | Path, direction: str = "min", space: str | None = None) -> list[TrialRow]:
    """Every trial of a search directory, best first (completed by score, then the rest by id).

    Hyperparameters are listed in the order ``space`` declares them (trials
    that went through gRPC come back grouped by type).
    """
    order: list[str] = []
    if space:
        hp = kt.HyperParameters()
        from faces_keras.tuning.hypermodels import get_space

        get_space(space)(hp)
        order = [param.name for param in hp.space]
    rows = []
    for path in sorted(Path(project_dir).glob("trial_*/trial.json")):
        state = read_json(path)
        values = dict(state.get("hyperparameters", {}).get("values", {}))
        values = dict(sorted(values.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        runs = read_json(path.parent / TRIAL_RECORD).get("runs", []) if (path.parent / TRIAL_RECORD).is_file() else []
        last = runs[-1] if runs else {}
        start = int(values.get("tuner/initial_epoch", 0))
        best_step = state.get("best_step")
        rows.append(TrialRow(
            trial_id=str(state["trial_id"]), status=str(state.get("status")),
            score=None if state.get("score") is None else float(state["score"]),
            hyperparameters={k: v for k, v in values.items() if not k.startswith("tuner/")},
            epochs_from=start, epochs_to=int(values.get("tuner/epochs", 0)),
            epochs_run=last.get("epochs_run"),
            best_epoch=None if best_step is None or state.get("score") is None else start + int(best_step) + 1,
            seconds=last.get("seconds"), worker=last.get("worker"), attempts=len(runs),
            continues=values.get("tuner/trial_id"), bracket=values.get("tuner/bracket"),
            round=values.get("tuner/round")))
    done = [r for r in rows if r.status == "COMPLETED" and r.score is not None and not math.isnan(r.score)]
    done.sort(key=lambda r: r.score, reverse=direction == "max")
    return done + [r for r in rows if r not in done]


def summary_frame(rows: list[TrialRow]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_dict() for r in rows])
    if not frame.empty:
        frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


def write_summary(config: TuneConfig, rows: list[TrialRow], *, device: dict | None = None,
                  run_dir: Path | None = None, seconds: float | None = None) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.md`` in the search directory, best trial first."""
    from faces_keras.tuning.hypermodels import describe_space

    project = config.project_dir
    frame = summary_frame(rows)
    csv_path, md_path = project / SUMMARY_CSV, project / SUMMARY_MD
    atomic_write_text(csv_path, frame.to_csv(index=False))
    plan = hyperband_plan(config.max_epochs, config.factor, config.hyperband_iterations)
    completed = sum(r.status == "COMPLETED" for r in rows)
    lines = [f"# Hyperband search `{config.project}`", "",
             f"- dataset: `{config.dataset}`; labels: {', '.join(config.labels) or 'all'}",
             f"- space: {config.space}; objective: {config.objective} ({config.direction})",
             f"- Hyperband: max_epochs {config.max_epochs}, factor {config.factor}, "
             f"iterations {config.hyperband_iterations}: plan {plan['trials']} trials, "
             f"at most {plan['epochs']} epochs",
             f"- trials: {len(rows)} ({completed} completed); trial time "
             f"{sum(r.seconds or 0 for r in rows):.0f} s" + (f"; this run {seconds:.0f} s" if seconds else "")]
    if device:
        lines.append(f"- device: {device.get('device')} ({device.get('backend')} backend, "
                     f"{', '.join(device.get('accelerators') or []) or 'no accelerator'})")
    if run_dir is not None:
        lines.append(f"- best configuration retrained into `{run_dir}`")
    lines += ["", "Search space:", "", *[f"- {line}" for line in describe_space(config.space)], "",
              to_markdown(frame, decimals=None, missing="").rstrip() if not frame.empty else "(no trials yet)", ""]
    atomic_write_text(md_path, "\n".join(lines))
    return csv_path, md_path


# -- the search --------------------------------------------------------------------------------

@dataclass
class SearchResult:
    """What a search left behind, and where."""

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


def run_search(config: TuneConfig) -> SearchResult:
    """Run (or resume) the search, summarise it, and retrain the best configuration.

    A worker only runs trials; the chief serves the oracle, then summarises
    and retrains like a single process does.
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
                          device=device)
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
    from faces_keras.models.heads import fit_targets

    callbacks = [
        # First: it adds the objective to the logs that the callbacks after it read.
        ObjectiveMetrics(config.objective, data.heads, data.x["val"], data.targets["val"]),
        keras.callbacks.EarlyStopping(monitor=config.objective, mode=config.direction, patience=config.patience),
    ]
    return {"x": data.x["train"], "y": fit_targets(data.targets["train"], data.heads),
            "validation_data": (data.x["val"], fit_targets(data.targets["val"], data.heads)),
            "batch_size": config.batch_size, "shuffle": True, "callbacks": callbacks}


def _finish(config: TuneConfig, result: SearchResult, input_shape: tuple[int, ...], metric_name: str,
            started: float) -> SearchResult:
    from faces_keras.tuning.hypermodels import model_config_from_values

    rows = load_trials(config.project_dir, config.direction, config.space)
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
    result.summary_csv, result.summary_md = write_summary(config, rows, device=result.device)
    epochs = config.max_epochs if config.retrain_epochs is None else config.retrain_epochs
    if best is not None and epochs > 0:
        monitor = metric_name if config.objective == "val_auc" else "val_loss"
        result.run_dir = retrain_best(config, result.best_model, epochs, monitor)
    result.seconds = time.perf_counter() - started
    write_summary(config, rows, device=result.device, run_dir=result.run_dir, seconds=result.seconds)
    return result


def retrain_best(config: TuneConfig, model: ModelConfig, epochs: int, monitor: str) -> Path:
    """Train ``model`` into ``<search>/best-run`` like ``faces-keras train`` would.

    A finished run with the same model and epochs is kept (running the command
    again does not retrain); an interrupted one is resumed.
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


# -- command line ------------------------------------------------------------------------------

from faces_keras.tuning.arguments import add_tune_arguments  # noqa: E402  (re-exported; the CLI shares it)


def _labels(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value if str(v).strip())


def config_from_args(args: argparse.Namespace) -> TuneConfig:
    """A TuneConfig from parsed flags; flags the parser lacks take their defaults.

    With neither ``--chief`` nor ``--worker``, keras-tuner's own environment
    variables (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)
    choose the role, so launch scripts written for keras-tuner work unchanged.
    """
    def get(name: str, default: Any = None) -> Any:
        value = getattr(args, name, None)
        return default if value is None else value

    if not get("dataset"):
        raise FacesKerasError("tune needs a prepared DATASET folder (argument or `dataset:` in --config)")
    role, worker_id = "single", None
    oracle_ip, oracle_port = get("oracle_ip", "127.0.0.1"), get("oracle_port")
    if get("chief", False) and get("worker"):
        raise FacesKerasError("--chief and --worker exclude each other")
    if get("chief", False):
        role = "chief"
    elif get("worker"):
        role, worker_id = "worker", str(get("worker"))
    elif os.environ.get(ENV_ORACLE_IP):
        tuner_id = os.environ.get(ENV_TUNER_ID, "")
        role, worker_id = ("chief", None) if "chief" in tuner_id else ("worker", tuner_id)
        oracle_ip = os.environ[ENV_ORACLE_IP]
        oracle_port = int(os.environ[ENV_ORACLE_PORT]) if os.environ.get(ENV_ORACLE_PORT) else None
    return TuneConfig(
        dataset=str(get("dataset")), labels=_labels(get("labels") or get("label_names")),
        space=get("space", "default"), objective=get("objective", "val_loss"),
        max_epochs=int(get("max_epochs", 20)), factor=int(get("factor", 3)),
        hyperband_iterations=int(get("iterations", 1)), batch_size=int(get("batch_size", 64)),
        seed=int(get("seed", 0)), directory=str(get("out", "searches")), project_name=get("project"),
        overwrite=bool(get("overwrite", False)), patience=int(get("patience", 3)), max_train=get("max_train"),
        mixed_precision=bool(get("mixed_precision", False)), augmentation=not get("no_augmentation", False),
        role=role, worker_id=worker_id, oracle_ip=str(oracle_ip),
        oracle_port=None if oracle_port is None else int(oracle_port),
        retrain_epochs=get("retrain_epochs"), keep_checkpoints=bool(get("keep_checkpoints", False)),
        worker_timeout=float(get("worker_timeout", TuneConfig.worker_timeout)))


def tune_command(args: argparse.Namespace) -> int:
    """``faces-keras tune``: run or resume a search and print where everything is."""
    config = config_from_args(args)
    result = run_search(config)
    if config.role == "worker":
        print(f"worker {config.worker_id} done: ran trial(s) {', '.join(result.trials_run) or 'none'} "
              f"in {result.seconds:.0f} s; results in {result.project_dir}")
        return 0
    print(f"search ({result.status}): {result.project_dir}  [{result.device.get('device')}, "
          f"{result.device.get('backend')} backend]")
    completed = [r for r in result.trials if r.status == "COMPLETED"]
    print(f"trials: {len(result.trials)} ({len(completed)} completed); this run {result.seconds:.0f} s")
    if result.best is not None:
        values = ", ".join(f"{k}={_short(v)}" for k, v in result.best.hyperparameters.items())
        print(f"best trial {result.best.trial_id}: {config.objective} {result.best.score:.4f}  ({values})")
    print(f"summary: {result.summary_csv}\n         {result.summary_md}")
    if result.best is not None:
        print(f"best configuration: {config.project_dir / BEST_JSON}")
    if result.run_dir is not None:
        print(f"retrained run: {result.run_dir}  (metrics.md, report.html)")
    return 0


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    """``python -m faces_keras.tuning.search``: the tune command with every flag it reads."""
    import sys

    from faces_keras.cli import apply_config_file

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m faces_keras.tuning.search", description=__doc__.splitlines()[0])
    add_tune_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    args = parser.parse_args(argv)
    args.command = "tune"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("faces_keras").setLevel(logging.INFO)
    try:
        apply_config_file(parser, args, argv)
        return tune_command(args)
    except (FacesKerasError, ValueError, FileExistsError) as exc:
        print(f"faces-keras tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    raise SystemExit(main())
