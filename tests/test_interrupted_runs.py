"""Interrupted and concurrent work: kills during checkpoint writes, one writer per folder, failed runs.

The kill tests run ``faces-keras train`` in a subprocess that SIGKILLs itself
inside a Keras save, so the checkpoint file is left exactly as a real kill
would leave it; then ``train --resume`` must finish the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.io import read_json
from faces_keras.locking import folder_lock, lock_paths
from faces_keras.models.saving import load_run_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--filters", "8", "--blocks", "2", "--no-augmentation", "--batch-size", "64", "--max-train", "96"]

# Runs the CLI with keras.Model.save patched: the KILL_AT-th save whose file name
# starts with KILL_PREFIX writes half a file, then the process SIGKILLs itself.
KILLER = textwrap.dedent("""
    import os, signal, sys
    import keras
    real_save = keras.Model.save
    calls = {"n": 0}
    def save(self, filepath, *args, **kwargs):
        name = os.path.basename(str(filepath))
        if name.startswith(os.environ["KILL_PREFIX"]):
            calls["n"] += 1
            if calls["n"] == int(os.environ["KILL_AT"]):
                with open(filepath, "wb") as handle:
                    handle.write(b"PK\\x03\\x04 half a zip")
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(self, filepath, *args, **kwargs)
    keras.Model.save = save
    from faces_keras.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def run_killed(args: list[str], prefix: str, at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_PREFIX": prefix, "KILL_AT": str(at), "PYTHONPATH": str(ROOT),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", KILLER, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def hidden_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if not p.name.endswith((".lock", ".lock.json"))]


# The first epoch always improves, so its best save is certain (after last.keras and state.json
# of that epoch); last.keras is saved every epoch.
@pytest.mark.parametrize("prefix, at, committed", [(".best", 1, 0), (".last", 2, 0)],
                         ids=["during-first-best-save", "during-second-last-save"])
def test_kill_during_a_checkpoint_write_then_resume_completes(tmp_path, grids_dataset, prefix, at, committed):
    run = tmp_path / "run"
    killed = run_killed(["train", str(grids_dataset), "--out", str(run), "--epochs", "3", *TINY], prefix, at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    state = run / "checkpoints" / "state.json"
    assert (read_json(state)["epoch"] if state.is_file() else None) == committed
    # What the kill left: the half file has a temporary name, never the checkpoint's own.
    assert any(".tmp" in p.name for p in hidden_leftovers(run / "checkpoints"))
    assert main(["train", "--resume", str(run)]) == 0
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]
    assert hidden_leftovers(run) == []


def test_damaged_best_checkpoint_is_discarded_and_resume_completes(tmp_path, grids_dataset, caplog):
    import faces_keras.training.train as training

    run = tmp_path / "run"
    killed = run_killed(["train", str(grids_dataset), "--out", str(run), "--epochs", "3", *TINY], ".last", at=2)
    assert killed.returncode == -signal.SIGKILL
    best = run / "checkpoints" / "best.keras"
    best.write_bytes(best.read_bytes()[:1000])  # as an older, in-place save cut by a kill left it
    with caplog.at_level("WARNING", logger=training.__name__):
        assert main(["train", "--resume", str(run)]) == 0
    assert any("best.keras is damaged" in r.getMessage() and "discarded" in r.getMessage() for r in caplog.records)
    assert (run / "model.keras").is_file()
    assert run.joinpath("checkpoints", "best.keras").stat().st_size > 1000  # a later epoch saved a whole one


def test_second_writer_is_refused_at_once_naming_the_holder(tmp_path, grids_dataset, data_dir, capsys, caplog):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom faces_keras.locking import folder_lock\n"
         f"with folder_lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(120)"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", str(grids_dataset), "--out", str(run), "--overwrite", "--epochs", "1", *TINY]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {holder.pid}" in err[0] and str(run) in err[0], err
        assert not run.exists()
        # The same for prepare into a locked dataset folder.
        out = tmp_path / "ds"
        with folder_lock(out):
            code = subprocess.run([sys.executable, "-m", "faces_keras", "prepare", str(out), "--schema", "grids",
                                   "--labels", str(data_dir / "grids" / "faces-labels.csv")], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
        assert code.returncode == 2 and "being written by pid" in code.stderr, code.stderr[-1000:]
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # The holder died without releasing: the next writer takes over, with a warning.
    assert lock_paths(run)[1].is_file()
    with caplog.at_level("WARNING", logger="faces_keras.locking"):
        assert main(["train", str(grids_dataset), "--out", str(run), "--epochs", "1", *TINY]) == 0
    assert any(f"lock of pid {holder.pid}" in r.getMessage() for r in caplog.records)
    assert not lock_paths(run)[1].exists()


def test_two_concurrent_overwrite_trainings_exactly_one_proceeds(tmp_path, grids_dataset):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "faces_keras", "train", str(grids_dataset), "--out", str(run), "--overwrite",
            "--epochs", "4", *TINY]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The first holds the lock from before its dataset loads until its report is written; the
    # second starts once the first has the lock, so the two overlap for certain.
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        holder = lock_paths(run)[1]
        for _ in range(1200):
            if holder.is_file() or first.poll() is not None:
                break
            __import__("time").sleep(0.05)
        second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        first_out, first_err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_err[-2000:]
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr[-1000:]
    assert read_json(run / "metrics.json")["heads"]


def test_failed_train_leaves_nothing_and_the_corrected_rerun_starts(tmp_path, grids_dataset, capsys):
    run = tmp_path / "run"
    assert main(["train", str(grids_dataset), "--out", str(run), "--label", "no_such_label", *TINY]) == 2
    assert "no_such_label" in capsys.readouterr().err
    assert not run.exists()
    # A folder left by a run that died before its first epoch (older versions left these) is taken over.
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("dataset: x\n")
    assert main(["train", str(grids_dataset), "--out", str(run), "--epochs", "1", *TINY]) == 0
    assert (run / "model.keras").is_file()


def test_resume_of_a_folder_without_config_names_it(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.yaml missing" in err[0] and str(tmp_path / "run") in err[0]


def test_report_and_thresholds_refuse_predictions_of_another_model(tmp_path, grids_dataset, capsys):
    from faces_keras.data.store import Dataset

    run = tmp_path / "run"
    assert main(["train", str(grids_dataset), "--out", str(run), "--epochs", "1", *TINY]) == 0
    from faces_keras.rundir import RunDir

    before = RunDir(run).load_predictions()["test/labels"]
    model = load_run_model(run)
    model.set_weights([w + np.float32(0.05) for w in model.get_weights()])
    model.save(run / "model.keras")  # replaced by hand after predictions.npz was written
    capsys.readouterr()
    for command in (["report", str(run)], ["thresholds", str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "predictions.npz was made by another model.keras" in err[0], err
    assert main(["thresholds", str(run), "--repredict"]) == 0
    after = RunDir(run).load_predictions()["test/labels"]
    assert not np.allclose(before, after)
    images, _ = Dataset.load(grids_dataset).split("test")
    assert np.allclose(after, model.predict(images.astype("float32"), verbose=0), atol=1e-5)
    assert main(["report", str(run)]) == 0
