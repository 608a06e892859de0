"""The oracle side of a search: keras-tuner's Hyperband oracle writing atomically, the chief's watch, the heartbeat.

:class:`AtomicHyperbandOracle` serves a single process and the chief alike;
:class:`WatchedHyperbandOracle` is the chief's: it gives up a worker that has
been silent for ``worker_timeout`` seconds and sends its trial back to the
queue (:func:`watch_workers` checks even when no worker calls). A worker
running a trial sends the chief a :class:`Heartbeat`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import keras_tuner as kt

from faces_keras.io import atomic_write_text
from faces_keras.tuning.searchdir import append_trial_record

log = logging.getLogger(__name__)


# The keras-tuner internals overridden here, and why: the block at the top of faces_keras/tuning/tuner.py.


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


class WatchedHyperbandOracle(AtomicHyperbandOracle):
    """The chief's oracle: gives up a worker silent for ``worker_timeout`` seconds and re-queues its trial.

    A worker is heard from when it asks for a trial (idle workers ask every
    :data:`~faces_keras.tuning.tuner.IDLE_WAIT_SECONDS`) and by its heartbeat while it runs one.
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
