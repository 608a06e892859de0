"""keras-tuner's distributed mode for real, on one machine: a chief and two workers on 127.0.0.1.

The chief serves the oracle over gRPC and runs no trials; the workers share
the search directory. Every process is bounded by a timeout and killed in
``finally``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from faces_keras.io import read_json
from faces_keras.tuning.searchdir import SUMMARY_CSV, TRIAL_RECORD
from faces_keras.tuning.settings import hyperband_plan
from faces_keras.tuning.summary import load_trials

ROOT = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"
TIMEOUT_SECONDS = 600
WORKER_TIMEOUT = 10  # seconds of silence before the chief gives a worker up

pytest.importorskip("grpc", reason="keras-tuner's distributed mode needs grpcio (extra: distributed)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def grids120(tmp_path_factory, data_dir) -> Path:
    """The first 120 labelled grid faces."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema

    out = tmp_path_factory.mktemp("prepared") / "grids120"
    return prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", out,
                           config=PrepareConfig(limit=120))


def launch(role: list[str], common: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)  # the flags set them, per process
    handle = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "faces_keras", "tune", *common, *role], cwd=ROOT,
                            env=env, stdout=handle, stderr=subprocess.STDOUT)


def test_chief_and_two_workers_finish_one_search_together(tmp_path, grids120):
    searches = tmp_path / "searches"
    common = [str(grids120), "--out", str(searches), "--project", "dist", "--max-epochs", "2", "--factor", "2",
              "--batch-size", "64", "--patience", "2", "--retrain-epochs", "0",
              "--oracle-ip", LOCALHOST, "--oracle-port", str(free_port())]
    logs = {name: tmp_path / f"{name}.log" for name in ("tuner0", "tuner1", "chief")}
    processes: dict[str, subprocess.Popen] = {}
    try:
        # Workers first: they wait for the chief (gRPC wait_for_ready), so both are
        # ready to take trials the moment it serves.
        for worker in ("tuner0", "tuner1"):
            processes[worker] = launch(["--worker", worker], common, logs[worker])
        processes["chief"] = launch(["--chief"], common, logs["chief"])
        deadline = time.time() + TIMEOUT_SECONDS
        for name, process in processes.items():
            try:
                process.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} did not finish in {TIMEOUT_SECONDS} s:\n{logs[name].read_text()[-3000:]}")
            assert process.returncode == 0, f"{name} failed:\n{logs[name].read_text()[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    project = searches / "dist"
    states = {p.parent.name: read_json(p) for p in project.glob("trial_*/trial.json")}
    plan = hyperband_plan(2, 2)
    assert len(states) == plan["trials"] == 5
    assert all(s["status"] == "COMPLETED" and s["score"] is not None for s in states.values())
    # Each trial was started and ended once, by the oracle the chief served.
    oracle = read_json(project / "oracle.json")
    ids = sorted(s["trial_id"] for s in states.values())
    assert sorted(oracle["start_order"]) == sorted(oracle["end_order"]) == ids
    assert oracle["ongoing_trials"] == {}
    # ... and run once, by one worker; the chief ran none.
    workers = {}
    for name in states:
        runs = read_json(project / name / TRIAL_RECORD)["runs"]
        assert len(runs) == 1 and runs[0]["status"] == "completed", (name, runs)
        workers[name] = runs[0]["worker"]
    assert set(workers.values()) == {"tuner0", "tuner1"}, workers
    # Hyperband continued trials across workers from the shared directory.
    continued = [s for s in states.values() if "tuner/trial_id" in s["hyperparameters"]["values"]]
    assert continued
    for worker in ("tuner0", "tuner1"):
        ran = {name.removeprefix("trial_") for name, who in workers.items() if who == worker}
        line = re.search(r"ran trial\(s\) ([0-9, ]+) in", logs[worker].read_text())
        assert line and set(line.group(1).replace(" ", "").split(",")) == ran
    # The chief's report of the best trial is the search's best trial.
    best = load_trials(project, "min")[0]
    chief_says = re.search(r"best trial (\d+): val_loss ([0-9.]+)", logs["chief"].read_text())
    assert chief_says and chief_says.group(1) == best.trial_id
    assert float(chief_says.group(2)) == pytest.approx(best.score, abs=1e-4)
    assert best.score == min(s["score"] for s in states.values())
    summary = pd.read_csv(project / SUMMARY_CSV, dtype={"trial_id": str})
    assert summary["trial_id"][0] == best.trial_id and len(summary) == 5
    assert set(summary["worker"]) == {"tuner0", "tuner1"}
    # Hyperparameters in the space's order, though trials came back over gRPC grouped by type.
    assert list(summary.columns[-5:]) == ["blocks", "filters", "dense", "dropout", "learning_rate"]


def ongoing(project: Path) -> dict[str, str]:
    """The chief's ``oracle.json``: worker id -> the trial it runs (written atomically at every change)."""
    try:
        return json.loads((project / "oracle.json").read_text())["ongoing_trials"]
    except (OSError, ValueError, KeyError):
        return {}


def test_a_killed_worker_is_given_up_and_its_trial_finished_by_the_other(tmp_path, grids120):
    searches = tmp_path / "searches"
    project = searches / "dead"
    common = [str(grids120), "--out", str(searches), "--project", "dead", "--max-epochs", "2", "--factor", "2",
              "--batch-size", "64", "--patience", "2", "--retrain-epochs", "0", "--worker-timeout",
              str(WORKER_TIMEOUT), "--oracle-ip", LOCALHOST, "--oracle-port", str(free_port())]
    logs = {name: tmp_path / f"{name}.log" for name in ("tuner0", "tuner1", "chief")}
    processes: dict[str, subprocess.Popen] = {}
    started = time.time()
    deadline = started + 240
    try:
        for worker in ("tuner0", "tuner1"):
            processes[worker] = launch(["--worker", worker], common, logs[worker])
        processes["chief"] = launch(["--chief"], common, logs["chief"])
        # Kill tuner1 while it runs a trial: the chief has given it one and it is building or training.
        while "tuner1" not in ongoing(project):
            assert time.time() < deadline, "tuner1 never got a trial:\n" + logs["tuner1"].read_text()[-3000:]
            assert processes["tuner1"].poll() is None, logs["tuner1"].read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(1.5)  # a trial here takes 5 s or more: tuner1 has built its model and is training
        processes["tuner1"].send_signal(signal.SIGKILL)
        processes["tuner1"].wait(timeout=30)
        killed_at = time.time()
        time.sleep(0.5)  # an answer the chief was writing when tuner1 died
        lost = ongoing(project).get("tuner1")
        assert lost, "tuner1 finished its trial before the kill; nothing to move"
        for name in ("chief", "tuner0"):
            try:
                processes[name].wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still waits {time.time() - killed_at:.0f} s after tuner1 died:\n"
                            + logs[name].read_text()[-3000:])
            assert processes[name].returncode == 0, f"{name} failed:\n{logs[name].read_text()[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    # Every trial of the plan completed exactly once; nothing is left running.
    oracle = read_json(project / "oracle.json")
    states = {s["trial_id"]: s for s in map(read_json, project.glob("trial_*/trial.json"))}
    assert len(states) == hyperband_plan(2, 2)["trials"] == 5
    assert all(s["status"] == "COMPLETED" and s["score"] is not None for s in states.values())
    assert sorted(oracle["end_order"]) == sorted(set(oracle["end_order"])) == sorted(states)
    assert oracle["ongoing_trials"] == {} and oracle["retry_queue"] == []
    # The chief named the dead worker and the trial that moved; tuner0 ran it.
    chief_log = logs["chief"].read_text()
    assert re.search(rf"WARNING: worker tuner1 silent for [0-9.]+ s \(worker timeout {WORKER_TIMEOUT} s\): given up for "
                     rf"dead; trial {lost} goes back to the queue for another worker", chief_log), chief_log[-3000:]
    assert "worker tuner0" not in chief_log  # its heartbeats kept it alive through every trial
    runs = read_json(project / f"trial_{lost}" / TRIAL_RECORD)["runs"]
    assert [(r["worker"], r["status"]) for r in runs] == [("tuner1", "lost"), ("tuner0", "completed")]
    line = re.search(r"ran trial\(s\) ([0-9, ]+) in", logs["tuner0"].read_text())
    assert line and lost in line.group(1).replace(" ", "").split(",")
    summary = pd.read_csv(project / SUMMARY_CSV, dtype={"trial_id": str}).set_index("trial_id")
    assert summary.loc[lost, "attempts"] == 2 and summary.loc[lost, "worker"] == "tuner0"
