"""The trial side of a search: :class:`FacesHyperband` (keras-tuner's Hyperband as this suite runs it),
the objective callback every trial's ``fit`` gets, and keras-tuner's environment for a role.

Where this package overrides keras-tuner's internals (here and in
:mod:`faces_keras.tuning.oracle`), the block below names each one and why.
"""

# keras-tuner 1.4.8 internals this package overrides (pinned: keras-tuner>=1.4.7,<1.5 in setup.cfg).
# Each has no public extension point in 1.4.8; check them all when keras-tuner is upgraded.
#
# * FacesHyperband.__init__ calls kt.Tuner.__init__, skipping kt.Hyperband.__init__: that one
#   only builds its own HyperbandOracle, and there is no argument to pass ours.
# * FacesHyperband._populate_initial_space: keras-tuner builds a whole model to discover
#   conditional hyperparameters; our spaces have none, so declaring them is enough (and the
#   original space's model has 130 M parameters).
# * FacesHyperband.save, pre_create_trial, on_trial_end use Tuner._is_worker, _get_tuner_fname
#   and _get_checkpoint_fname (the worker test, tuner0.json, a trial's checkpoint path).
# * _atomic_trial_checkpoints: Tuner.run_trial builds tuner_utils.SaveBestEpoch, which saves the
#   best epoch's weights in place, so a kill during the save leaves a broken
#   checkpoint.weights.h5 that a continuing Hyperband trial would load. Nothing lets a subclass
#   choose the callback, so for the duration of one run_trial the module attribute points at a
#   subclass that saves beside the file and renames (restored afterwards).
# * AtomicHyperbandOracle (oracle.py) replaces Oracle.save and Oracle._save_trial (keras-tuner
#   writes oracle.json and trial.json in place: a process killed mid-write leaves a truncated
#   file no resume can read), saves again after end_trial (keras-tuner saves before it drops the
#   trial from ongoing_trials, so a chief would leave it "ongoing" and a resume would run it
#   again), and filters Oracle._retry_queue after reload (a trial whose trial.json says it
#   completed needs no second run).
# * WatchedHyperbandOracle (oracle.py): keras-tuner's chief notices no dead worker. A worker
#   killed mid-trial keeps its trial in Oracle.ongoing_trials and its id in Oracle.tuner_ids for
#   good; Hyperband answers every other worker IDLE while a trial is ongoing, and
#   oracle_chief.exit_chief waits for both to be empty, so the whole search waits forever.
#   Workers only report when a trial starts (create_trial, the one call that names the worker)
#   and ends (update_trial/end_trial; Tuner.on_epoch_end reports nothing), so a long trial
#   would look like a dead worker: hence the Heartbeat, an update_trial with no metrics, which
#   only this chief understands. It touches ongoing_trials, tuner_ids, end_order and
#   _retry_queue, the way keras-tuner's own Oracle.reload sends a crashed search's ongoing
#   trials back for a retry (without counting a failure against max_retries_per_trial: the
#   worker died, not the trial); end_trial and update_trial drop a second result for a trial
#   that already ended (from a worker given up for dead that was only slow).
#
# TensorFlow 2.21 internal (tensorflow_cpu==2.21.0 in constraints.txt), also checked on upgrade:
#
# * _trial_gradients_released: Keras's TensorFlow optimizer sums gradients with
#   ReplicaContext.all_reduce, which in a traced train step goes through tf.custom_gradient; in
#   graph mode that registers a "CustomGradient-<uid>" function in TensorFlow's global gradient
#   registry (ops._gradient_registry) and never removes it. The function's closure holds the
#   whole traced train step, so every trial's graphs (~50 MB for the small default-space models,
#   measured) stayed in memory for good, clear_session and gc notwithstanding: RSS grew trial
#   over trial (keras-tuner issues #873, #1031). After a trial nothing computes gradients through
#   its graphs again, so the names it registered are dropped; nothing else in the registry is
#   touched. tests/test_tuning_memory.py fails if this stops working.

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

import keras
import keras_tuner as kt
import numpy as np

from faces_keras.errors import FacesKerasError
from faces_keras.io import atomic_write_text
from faces_keras.labels.heads import BINARY_HEAD, Head
from faces_keras.tuning.oracle import AtomicHyperbandOracle, Heartbeat, WatchedHyperbandOracle
from faces_keras.tuning.searchdir import append_trial_record
from faces_keras.tuning.settings import ENV_ORACLE_IP, ENV_ORACLE_PORT, ENV_TUNER_ID, HEARTBEAT_SECONDS, TuneConfig

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1.0  # a worker waiting for other workers' trials asks the chief again after this


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


# -- the tuner ---------------------------------------------------------------------------------

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


@contextlib.contextmanager
def _trial_gradients_released() -> Iterator[None]:
    """Drop the graph-mode custom gradients TensorFlow registered while the block ran (see the top).

    A no-op on other backends, or where TensorFlow's registry is not where 2.21 keeps it.
    """
    registry = _custom_gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [n for n in registry if n.startswith("CustomGradient-") and n not in before]:
                del registry[name]


def _custom_gradient_registry() -> dict | None:
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python.framework import ops
        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        log.debug("TensorFlow's gradient registry is not where 2.21 keeps it: trial graphs are not released")
        return None
    return registry if isinstance(registry, dict) else None


class FacesHyperband(kt.Hyperband):
    """Hyperband that times its trials, seeds them, keeps memory flat and disk small.

    * every trial starts from a seed derived from the search seed and its id,
      so a trial retried after a crash trains like the lost attempt;
    * ``run_trial`` writes ``faces_trial.json`` into the trial directory: the
      worker that ran it, seconds, epochs actually run (early stopping), and
      the process's RSS once the trial's graphs are released (``rss_mb``);
    * after each trial the graphs TensorFlow would keep for good are released
      (its custom-gradient registrations) and ``on_trial_end`` clears the Keras
      session and collects garbage, so RSS stays flat trial over trial;
    * a worker sends the chief a :class:`~faces_keras.tuning.oracle.Heartbeat`
      while it runs a trial, and pauses ``IDLE_WAIT_SECONDS`` between asks
      the chief answers with no trial yet;
    * trial checkpoints are written under a temporary name and renamed;
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
        self._asked_in_vain = False  # the oracle's last answer was IDLE (see pre_create_trial)
        # kt.Hyperband.__init__ only builds its own oracle (see the keras-tuner block at the top).
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, directory=directory,
                          project_name=project_name, overwrite=overwrite,
                          executions_per_trial=executions_per_trial)

    def _populate_initial_space(self):
        # Declare the space instead of building a model to discover it (the keras-tuner block at the top).
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        atomic_write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    def pre_create_trial(self):
        # keras-tuner asks the oracle again at once when it answers IDLE (a worker whose next
        # trial waits on other workers' trials): pause between such asks instead of spinning on gRPC.
        # No trial began since the last ask (on_trial_begin runs only for a trial to run): it was IDLE.
        if self._asked_in_vain and self._is_worker():
            time.sleep(IDLE_WAIT_SECONDS)
        self._asked_in_vain = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._asked_in_vain = False
        super().on_trial_begin(trial)

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
            with _trial_gradients_released(), beating or contextlib.nullcontext():
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
            gc.collect()  # the trial's graphs, released above (its model goes in on_trial_end)
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
