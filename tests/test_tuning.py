"""Hyperband tuning: spaces, Hyperband's plan, objectives, and real tiny searches on grid faces.

The searches are real (keras-tuner, Keras, the real grid faces) and tiny:
max_epochs 2, 64 training faces, a one-epoch retraining.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from faces_keras.cli import build_parser, read_config_file
from faces_keras.cli.tune import tune_config
from faces_keras.errors import ConfigError, FacesKerasError, RunError
from faces_keras.io import read_json
from faces_keras.labels import load_schema
from faces_keras.models.heads import Head, plan_heads
from faces_keras.models.presets import ModelConfig, build_model
from faces_keras.tuning.hypermodels import (ORIGINAL_DEFAULTS, SPACES, describe_space, get_space,
                                            hypermodel_for, model_config_from_values, original_parameter_count)
from faces_keras.tuning.oracle import AtomicHyperbandOracle, Heartbeat, WatchedHyperbandOracle
from faces_keras.tuning.search import tune
from faces_keras.tuning.searchdir import BEST_JSON, BEST_RUN, CONFIG_FILE, SUMMARY_CSV, SUMMARY_MD, TRIAL_RECORD
from faces_keras.tuning.settings import SPACE_NAMES, TuneConfig, hyperband_plan
from faces_keras.tuning.tuner import FacesHyperband, keras_metric_name, mean_tuned_f1

ROOT = Path(__file__).resolve().parents[1]


# -- spaces ----------------------------------------------------------------------------------

def sample_configs(space: str, count: int, seed: int = 0, input_size: int = 64):
    """``count`` random points of a space, as keras-tuner samples them, with their ModelConfigs."""
    hp = kt.HyperParameters()
    get_space(space)(hp, input_size=input_size)
    rng = random.Random(seed)
    for _ in range(count):
        values = {param.name: param.random_sample(rng.randrange(2 ** 31)) for param in hp.space}
        yield values, model_config_from_values(space, values, input_size)


def test_original_space_keeps_the_source_ranges_and_steps():
    seen = defaultdict(set)
    for values, config in sample_configs("original", 400):
        assert config.preset == "original-all-label" and config.augmentation is None
        assert config.learning_rate == 1e-3
        f1, f2, f3 = config.original_filters
        seen["f1"].add(f1), seen["f2"].add(f2), seen["f3"].add(f3), seen["dense"].add(config.original_dense)
        assert (f1, f2, f3) == (values["filters_1"], values["filters_2"], values["filters_3"])
    assert seen["f1"] == set(range(32, 161, 16))
    assert seen["f2"] == set(range(64, 321, 32))
    assert seen["f3"] == set(range(128, 641, 64))
    assert seen["dense"] == set(range(256, 1281, 128))


def test_sequential_space_ranges_and_log_learning_rate():
    seen = defaultdict(set)
    rates = []
    for _, config in sample_configs("sequential", 400):
        assert config.preset == "sequential" and config.augmentation == {}
        for name in ("blocks", "filters", "convs_per_block", "dense", "dropout"):
            seen[name].add(getattr(config, name))
        rates.append(config.learning_rate)
    assert seen["blocks"] == {3, 4, 5}
    assert seen["filters"] == {8, 16, 24, 32}
    assert seen["convs_per_block"] == {1, 2}
    assert seen["dense"] == {0, 64, 128}
    assert seen["dropout"] == {0.1, 0.2, 0.3, 0.4, 0.5}
    rates = np.array(rates)
    assert rates.min() >= 1e-4 and rates.max() <= 3e-3
    # Log sampling: half the draws fall below the geometric mid-point, not a tenth of them.
    assert 0.4 < np.mean(rates < math.sqrt(1e-4 * 3e-3)) < 0.6


@pytest.mark.parametrize("space", ["default", "residual"])
def test_residual_space_ranges(space):
    seen = defaultdict(set)
    for _, config in sample_configs(space, 300):
        assert config.preset == space
        seen["blocks"].add(config.blocks), seen["filters"].add(config.filters), seen["dense"].add(config.dense)
        assert 0.1 <= config.dropout <= 0.5 and 1e-4 <= config.learning_rate <= 3e-3
    assert seen == {"blocks": {3, 4, 5}, "filters": {8, 16, 24, 32}, "dense": {0, 64, 128}}


def test_space_defaults_are_the_untuned_presets():
    assert get_space("default")(kt.HyperParameters()) == ModelConfig()
    assert get_space("residual")(kt.HyperParameters()) == ModelConfig(preset="residual")
    assert get_space("sequential")(kt.HyperParameters()) == ModelConfig(preset="sequential")
    original = get_space("original")(kt.HyperParameters())
    assert (original.original_filters, original.original_dense) == ORIGINAL_DEFAULTS == ((64, 128, 576), 1152)


def test_depth_is_capped_by_the_input_size():
    # Sequential: the stem quarters the image and each later block halves it,
    # so 32 pixels allow 4 blocks (32 -> 8 -> 4 -> 2 -> 1), 16 pixels only 3.
    assert {c.blocks for _, c in sample_configs("sequential", 100, input_size=32)} == {3, 4}
    assert any("blocks: 3 to 4" in line for line in describe_space("sequential", input_size=32))
    assert {c.blocks for _, c in sample_configs("sequential", 50, input_size=16)} == {3}
    # Residual (the default): the first stage keeps the size, so 16 pixels allow 4 stages.
    assert {c.blocks for _, c in sample_configs("default", 100, input_size=16)} == {3, 4}


def test_largest_points_of_the_small_spaces_build():
    heads = plan_heads(load_schema("grids"))
    for space, values in (("sequential", dict(blocks=5, filters=32, convs_per_block=2, dense=128)),
                          ("default", dict(blocks=5, filters=32, dense=128)),
                          ("residual", dict(blocks=5, filters=32, dense=128))):
        model = build_model(heads, (64, 64, 1), model_config_from_values(space, values))
        assert model.output_shape == (None, 5)


def test_original_parameter_arithmetic_matches_keras():
    heads = plan_heads(load_schema("grids"))
    config = ModelConfig(preset="original-all-label", original_filters=(32, 64, 128), original_dense=256,
                         augmentation=None)
    model = build_model(heads, (64, 64, 1), config)
    assert model.count_params() == original_parameter_count((32, 64, 128), 256, (64, 64, 1), 5)
    # The source's all-label model: 130 M parameters, nearly all in the Dense after Flatten.
    assert 125e6 < original_parameter_count(*ORIGINAL_DEFAULTS, (64, 64, 1), 5) < 135e6


# -- Hyperband's plan against keras-tuner's oracle ---------------------------------------------

@pytest.mark.parametrize("max_epochs,factor,iterations", [(1, 3, 1), (2, 2, 1), (2, 3, 1), (9, 3, 1),
                                                          (20, 3, 1), (10, 2, 2)])
def test_hyperband_plan_matches_the_oracle(tmp_path, max_epochs, factor, iterations):
    oracle = AtomicHyperbandOracle(objective=kt.Objective("val_loss", "min"), max_epochs=max_epochs,
                                   factor=factor, hyperband_iterations=iterations, seed=1)
    oracle._set_project_dir(str(tmp_path), "plan")
    oracle.verbose = 0
    hp = oracle.get_space()
    get_space("default")(hp)
    oracle.update_space(hp)
    rng = np.random.default_rng(0)
    trials = epochs = 0
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        assert trial.status == "RUNNING"
        values = trial.hyperparameters.values
        trials += 1
        epochs += values["tuner/epochs"] - values["tuner/initial_epoch"]
        oracle.update_trial(trial.trial_id, {"val_loss": float(rng.random())})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    plan = hyperband_plan(max_epochs, factor, iterations)
    assert (plan["trials"], plan["epochs"]) == (trials, epochs)
    # Written atomically, and complete: every trial file parses; nothing is left "ongoing".
    assert len(list((tmp_path / "plan").glob("trial_*/trial.json"))) == trials
    assert not list((tmp_path / "plan").rglob("*.tmp"))
    assert read_json(tmp_path / "plan" / "oracle.json")["ongoing_trials"] == {}


def make_oracle(directory: Path) -> AtomicHyperbandOracle:
    oracle = AtomicHyperbandOracle(objective=kt.Objective("val_loss", "min"), max_epochs=2, factor=2, seed=1)
    oracle._set_project_dir(str(directory), "p")
    oracle.verbose = 0
    hp = oracle.get_space()
    get_space("default")(hp)
    oracle.update_space(hp)
    return oracle


def test_reloaded_oracle_retries_only_the_trial_that_was_running(tmp_path):
    oracle = make_oracle(tmp_path)
    done = oracle.create_trial("tuner0")
    oracle.update_trial(done.trial_id, {"val_loss": 0.5})
    done.status = "COMPLETED"
    oracle.end_trial(done)
    running = oracle.create_trial("tuner0")  # the process dies during this trial
    # keras-tuner's own end_trial saves before it drops the trial from the ongoing
    # ones; a chief killed then leaves a completed trial listed as ongoing.
    state = read_json(tmp_path / "p" / "oracle.json")
    state["ongoing_trials"] = {"tuner0": running.trial_id, "tuner1": done.trial_id}
    (tmp_path / "p" / "oracle.json").write_text(json.dumps(state))
    resumed = make_oracle(tmp_path)
    resumed.reload()
    assert resumed._retry_queue == [running.trial_id]
    assert resumed.trials[done.trial_id].score == 0.5
    assert resumed.create_trial("tuner0").trial_id == running.trial_id
    assert resumed.create_trial("tuner1").trial_id not in (done.trial_id, running.trial_id)


def test_chief_gives_up_a_silent_worker_and_its_trial_goes_to_another(tmp_path, caplog):
    oracle = WatchedHyperbandOracle(objective=kt.Objective("val_loss", "min"), max_epochs=4, factor=2, seed=1,
                                    worker_timeout=5)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    hp = kt.HyperParameters()
    hp.Int("x", 0, 100)
    oracle.update_space(hp)
    kept, lost = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    assert kept.status == lost.status == "RUNNING"
    oracle._last_seen["tuner1"] -= 6  # tuner1 has said nothing for 6 s
    oracle.update_trial(kept.trial_id, {})  # tuner0's heartbeat: no metrics, nothing recorded
    assert not oracle.trials[kept.trial_id].metrics.exists("val_loss")
    with caplog.at_level("WARNING", logger="faces_keras.tuning.oracle"):
        assert oracle.give_up_silent_workers() == [lost.trial_id]
        assert oracle.give_up_silent_workers() == []
    assert f"worker tuner1 silent for 6.0 s (worker timeout 5 s): given up for dead; trial {lost.trial_id} goes " \
           "back to the queue" in caplog.text
    assert "tuner1" not in oracle.ongoing_trials and "tuner1" not in oracle.tuner_ids
    assert read_json(tmp_path / "p" / "oracle.json")["ongoing_trials"] == {"tuner0": kept.trial_id}
    runs = read_json(tmp_path / "p" / f"trial_{lost.trial_id}" / TRIAL_RECORD)["runs"]
    assert [(r["worker"], r["status"]) for r in runs] == [("tuner1", "lost")]
    # tuner0 finishes its trial and takes over the lost one.
    oracle.update_trial(kept.trial_id, {"val_loss": 0.5})
    kept.status = "COMPLETED"
    oracle.end_trial(kept)
    assert oracle.create_trial("tuner0").trial_id == lost.trial_id
    # tuner1 comes back with the same id: a new trial, and the chief says so.
    caplog.clear()
    with caplog.at_level("WARNING", logger="faces_keras.tuning.oracle"):
        back = oracle.create_trial("tuner1")
    assert back.status in ("RUNNING", "IDLE") and back.trial_id not in (kept.trial_id, lost.trial_id)
    assert "worker tuner1, given up for dead 0 s ago, is back" in caplog.text
    # A restart before the timeout runs the same trial again; the chief says so too.
    if back.status == "RUNNING":
        caplog.clear()
        with caplog.at_level("WARNING", logger="faces_keras.tuning.oracle"):
            assert oracle.create_trial("tuner1").trial_id == back.trial_id
        assert f"worker tuner1 asks for a trial while trial {back.trial_id} is still its own" in caplog.text
    # Two results for the lost trial (its first worker was only slow): the first is kept.
    for score in (0.4, 0.3):
        oracle.update_trial(lost.trial_id, {"val_loss": score})
        finished = oracle.trials[lost.trial_id]
        finished.status = "COMPLETED"
        oracle.end_trial(finished)
    assert oracle.end_order.count(lost.trial_id) == 1 and oracle.trials[lost.trial_id].score == 0.4
    assert "tuner0" not in oracle.ongoing_trials
    # A worker that dies while it waits for others' trials is given up too, or the chief would wait for it.
    oracle.tuner_ids.add("tuner2")
    oracle._last_seen["tuner2"] = time.monotonic() - 6
    with caplog.at_level("WARNING", logger="faces_keras.tuning.oracle"):
        assert oracle.give_up_silent_workers() == []
    assert "tuner2" not in oracle.tuner_ids and "worker tuner2 silent for 6.0 s" in caplog.text


def test_a_worker_heartbeat_reports_its_trial_until_the_trial_ends():
    calls = []

    class Chief:
        def update_trial(self, trial_id, metrics, step=0):
            calls.append((trial_id, metrics, step))
            if len(calls) == 2:
                raise ConnectionError("the chief is busy")  # a failed beat does not stop the next ones

    with Heartbeat(Chief(), "0007", every=0.05):
        time.sleep(0.5)
    count = len(calls)
    assert count >= 4 and all(call == ("0007", {}, 0) for call in calls)
    time.sleep(0.2)
    assert len(calls) == count
    assert TuneConfig(dataset="d", worker_timeout=10).heartbeat_seconds == 2.5
    assert TuneConfig(dataset="d").heartbeat_seconds == 10


# -- objectives --------------------------------------------------------------------------------

def best_grid_f1(truth: np.ndarray, prob: np.ndarray) -> float:
    keep = truth >= 0
    grid = np.round(np.arange(0.05, 0.951, 0.05), 10)
    return max(f1_score(truth[keep], (prob[keep] >= t).astype(int), zero_division=0) for t in grid)


def test_mean_tuned_f1_averages_tuned_binary_and_macro_multiclass():
    rng = np.random.default_rng(3)
    n = 80
    binary = np.stack([rng.random(n) < 0.3, rng.random(n) < 0.6, np.zeros(n, bool)], axis=1).astype(int)
    binary[rng.random((n, 3)) < 0.1] = -1
    probs = np.clip(binary * 0.35 + rng.random((n, 3)) * 0.65, 0, 1)
    classes = rng.integers(0, 3, n)
    classes[:5] = -1
    softmax = rng.random((n, 3)) + np.eye(3)[np.maximum(classes, 0)] * 0.6
    heads = [Head("labels", "binary", ("a", "b", "never"), 3), Head("age", "multiclass", ("age",), 3),
             Head("years", "regression", ("years",), 1)]
    targets = {"labels": binary, "age": classes, "years": rng.random((n, 1))}
    got = mean_tuned_f1({"labels": probs, "age": softmax, "years": rng.random((n, 1))}, targets, heads)
    keep = classes >= 0
    expected = np.mean([best_grid_f1(binary[:, 0], probs[:, 0]), best_grid_f1(binary[:, 1], probs[:, 1]),
                        f1_score(classes[keep], softmax[keep].argmax(1), average="macro")])
    # "never" has no positives in validation: no F1 to tune, so it is left out.
    assert got == pytest.approx(expected, abs=1e-9)
    perfect = mean_tuned_f1({"labels": binary.clip(0, 1).astype(float)}, {"labels": binary}, heads[:1])
    assert perfect == 1.0


def test_objective_names_follow_the_heads():
    one = [Head("labels", "binary", ("a",), 1)]
    two = one + [Head("age", "regression", ("age",), 1)]
    assert keras_metric_name("val_auc", one) == "val_auc"
    assert keras_metric_name("val_auc", two) == "val_labels_auc"
    with pytest.raises(FacesKerasError, match="binary"):
        keras_metric_name("val_auc", two[1:])
    with pytest.raises(FacesKerasError, match="val_loss"):
        keras_metric_name("val_mean_f1", two[1:])


def test_hypermodel_restores_adam_state_when_hyperband_continues_a_trial(tmp_path):
    import keras

    heads = plan_heads(load_schema("grids"))
    hypermodel = hypermodel_for("default", heads, (64, 64, 1), augmentation=False)
    hp = kt.HyperParameters()
    hp.values.update(blocks=3, filters=8, convs_per_block=1, dense=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (16, 64, 64, 1)).astype("float32"), (rng.random((16, 5)) < 0.5).astype("float32")
    parent = hypermodel.build(hp)
    parent.fit(x, y, epochs=2, batch_size=8, verbose=0)
    checkpoint = tmp_path / "checkpoint.weights.h5"
    parent.save_weights(checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        child = hypermodel.build(hp)
        child.load_weights(checkpoint)  # what kt.Hyperband does to continue a trial
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert int(child.optimizer.iterations) == int(parent.optimizer.iterations) == 4
    for mine, theirs in zip(child.optimizer.variables, parent.optimizer.variables):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy())
    # The cause of Keras's warning: an optimiser without variables cannot take the saved ones.
    plain = build_model(heads, (64, 64, 1), hypermodel.model_config(hp))
    plain.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        plain.load_weights(checkpoint)


# -- settings and the command line ---------------------------------------------------------------

@pytest.mark.parametrize("changes,setting", [
    (dict(space="vgg"), "space"), (dict(objective="accuracy"), "objective"), (dict(factor=1), "factor"),
    (dict(max_epochs=0), "max_epochs"), (dict(labels=("glasses", "")), "labels"), (dict(max_epochs="9"), "max_epochs"),
    (dict(worker="tuner0"), "oracle_port"), (dict(chief=True), "oracle_port"),
    (dict(chief=True, oracle_port=70000), "oracle_port"), (dict(worker="", oracle_port=8000), "worker"),
    (dict(chief=True, worker="tuner0", oracle_port=8000), "chief"),
    (dict(worker="chief1", oracle_port=8000), "worker"), (dict(worker="a/b", oracle_port=8000), "worker"),
    (dict(worker="tuner0", oracle_port=8000, overwrite=True), "overwrite"),
    (dict(retrain_epochs=-1), "retrain_epochs"), (dict(dataset=""), "dataset"),
    (dict(worker_timeout=0), "worker_timeout"), (dict(worker_timeout=float("inf")), "worker_timeout"),
    (dict(worker_timeout=True), "worker_timeout"), (dict(project_name="a/b"), "project_name"),
])
def test_tune_config_rejects_bad_settings(changes, setting):
    settings = dict(dataset="prepared/grids")
    settings.update(changes)
    with pytest.raises(ConfigError, match=rf"^{setting}\b"):  # the one line names the setting first
        TuneConfig(**settings)


def test_project_names_say_what_was_searched():
    assert TuneConfig(dataset="prepared/grids").project_dir == Path("searches/grids-default")
    config = TuneConfig(dataset="prepared/grids/", labels=("glasses",), space="residual", objective="val_auc")
    assert config.project == "grids-glasses-residual-val_auc"
    assert TuneConfig(dataset="x", project_name="mine", directory="/tmp/s").project_dir == Path("/tmp/s/mine")


def test_tune_flags_fill_the_config_and_keras_tuner_variables_choose_the_role(monkeypatch, tmp_path):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    parser = build_parser()

    def config(*argv):
        return tune_config(parser.parse_args(["tune", *argv]))

    plain = config("prepared/grids", "--space", "residual", "--out", "s")
    assert plain == TuneConfig(dataset="prepared/grids", space="residual", directory="s")
    assert (plain.max_epochs, plain.role, plain.tuner_id, plain.augmentation) == (20, "single", "tuner0", True)
    worker = config("prepared/grids", "--labels", "glasses,smile", "--worker", "tuner1", "--oracle-port", "8123",
                    "--max-epochs", "4", "--iterations", "2", "--no-augmentation", "--project", "mine")
    assert worker.labels == ("glasses", "smile") and worker.tuner_id == "tuner1" and not worker.augmentation
    assert (worker.role, worker.oracle_port, worker.max_epochs, worker.hyperband_iterations) == ("worker", 8123, 4, 2)
    assert worker.project_dir == Path("searches/mine") and worker.worker_timeout == TuneConfig.worker_timeout
    assert config("d", "--chief", "--oracle-port", "1", "--worker-timeout", "12.5").worker_timeout == 12.5
    with pytest.raises(FacesKerasError, match="exclude"):
        config("d", "--chief", "--worker", "tuner0", "--oracle-port", "1")
    with pytest.raises(FacesKerasError, match="DATASET"):
        config()
    # A config file fills what the command line leaves out, by setting or flag name; the command line wins.
    settings = tmp_path / "search.yaml"
    settings.write_text("dataset: prepared/grids\nout: elsewhere\niterations: 3\nmax-epochs: 5\n")
    from_file = config("--config", str(settings), "--max-epochs", "7")
    assert (from_file.dataset, from_file.directory, from_file.hyperband_iterations, from_file.max_epochs) == (
        "prepared/grids", "elsewhere", 3, 7)
    settings.write_text("dataset: prepared/grids\nmax_epoch: 5\n")
    with pytest.raises(FacesKerasError, match="unknown setting 'max_epoch'"):
        config("--config", str(settings))
    # keras-tuner's own environment variables choose the role when no flag does.
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner7")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "9001")
    from_env = config("prepared/grids")
    assert (from_env.role, from_env.worker, from_env.oracle_port) == ("worker", "tuner7", 9001)
    assert config("prepared/grids", "--chief", "--oracle-port", "1").role == "chief"  # a flag wins
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert config("prepared/grids").role == "chief"
    monkeypatch.delenv("KERASTUNER_TUNER_ID")
    with pytest.raises(FacesKerasError, match="KERASTUNER_TUNER_ID is not"):
        config("prepared/grids")


def test_the_space_names_the_flags_offer_are_the_spaces_there_are():
    assert tuple(SPACES) == SPACE_NAMES


@pytest.mark.parametrize("module", ["faces_keras.tuning", "faces_keras.tuning.settings", "faces_keras.tuning.summary",
                                    "faces_keras.cli.tune"])
def test_settings_and_summaries_import_neither_keras_nor_keras_tuner(module, tmp_path):
    # A search directory is read and its settings built without either (the CLI's --help, reports).
    code = (f"import sys, {module}\n"
            "from faces_keras.tuning import TuneConfig, load_trials, summary_frame\n"
            "config = TuneConfig(dataset='d', space='original')\n"
            f"summary_frame(load_trials({str(tmp_path)!r}))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'keras_tuner', 'tensorflow', 'jax'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_worker_pauses_between_asks_the_chief_answers_with_no_trial(tmp_path, monkeypatch):
    import faces_keras.tuning.tuner as tuner_module

    heads = plan_heads(load_schema("grids"))
    sleeps, asked = [], []
    monkeypatch.setattr(tuner_module.time, "sleep", lambda seconds: sleeps.append((len(asked), seconds)))

    class Chief:  # the answers a chief gives while other workers' trials decide the next round
        def __init__(self, answers):
            self.answers = list(answers)

        def create_trial(self, tuner_id):
            asked.append(tuner_id)
            status = self.answers.pop(0)
            return kt.engine.trial.Trial(kt.HyperParameters(), trial_id=str(len(asked)), status=status)

    for worker, expected in ((True, [(1, tuner_module.IDLE_WAIT_SECONDS), (4, tuner_module.IDLE_WAIT_SECONDS)]),
                             (False, [])):
        tuner = FacesHyperband(hypermodel_for("default", heads, (64, 64, 1)), objective=kt.Objective("val_loss", "min"),
                               max_epochs=2, factor=2, hyperband_iterations=1, seed=0, directory=str(tmp_path),
                               project_name=f"worker-{worker}", overwrite=False)
        monkeypatch.setattr(tuner, "_is_worker", lambda worker=worker: worker)
        monkeypatch.setattr(tuner, "_try_run_and_update_trial", lambda trial, *args, **kwargs: None)
        monkeypatch.setattr(tuner, "on_trial_end", lambda trial: None)
        tuner.oracle = Chief(["IDLE", "RUNNING", "RUNNING", "IDLE", "STOPPED"])
        sleeps.clear(), asked.clear()
        tuner.search()
        # Asked five times; paused only before an ask that follows an IDLE answer.
        assert len(asked) == 5 and sleeps == expected, (worker, sleeps)


@pytest.mark.parametrize("role", [[], ["--chief", "--oracle-port", "1"]], ids=["single", "chief"])
def test_a_second_search_into_the_same_directory_is_refused_at_once(tmp_path, role):
    from faces_keras.locking import folder_lock

    project = tmp_path / "searches" / "held"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    # No dataset at all: the lock must be the first thing the search looks at.
    command = [sys.executable, "-m", "faces_keras", "tune", str(tmp_path / "no-such-dataset"),
               "--out", str(tmp_path / "searches"), "--project", "held", *role]
    with folder_lock(project, "search directory"):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{project}: search directory is being written by pid {os.getpid()}" in done.stderr
    assert "FolderLocked" not in done.stderr and "Traceback" not in done.stderr
    assert not project.exists()


def test_ready_configs_use_known_settings(monkeypatch):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    parser = build_parser()
    configs = sorted((ROOT / "tuning").glob("*.yaml"))
    assert len(configs) >= 3
    spaces = set()
    for path in configs:
        assert read_config_file(path)  # (unknown keys are refused by tune_config)
        spaces.add(tune_config(parser.parse_args(["tune", "--config", str(path)])).space)
    assert {"default", "original"} <= spaces
    script = ROOT / "tuning" / "distributed-local.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0 and os.access(script, os.X_OK)


# -- real tiny searches ----------------------------------------------------------------------------

def tiny_search(dataset: Path, directory: Path, **changes) -> TuneConfig:
    settings = dict(dataset=str(dataset), max_epochs=2, factor=3, max_train=64, batch_size=64, patience=2,
                    retrain_epochs=1, directory=str(directory), verbose=0)
    settings.update(changes)
    return TuneConfig(**settings)


def trial_states(project: Path) -> dict[str, dict]:
    return {p.parent.name: read_json(p) for p in sorted(project.glob("trial_*/trial.json"))}


@pytest.fixture(scope="module")
def resumed_search(tmp_path_factory, grids_dataset):
    """A search interrupted after its first trial, then run again to the end (the same command)."""
    config = tiny_search(grids_dataset, tmp_path_factory.mktemp("searches"))
    real_on_trial_end = FacesHyperband.on_trial_end

    def interrupt(self, trial):
        real_on_trial_end(self, trial)
        raise KeyboardInterrupt  # Ctrl-C between trials

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FacesHyperband, "on_trial_end", interrupt)
        with pytest.raises(KeyboardInterrupt):
            tune(config)
    before = trial_states(config.project_dir)
    records = {name: read_json(config.project_dir / name / TRIAL_RECORD) for name in before}
    result = tune(config)
    return config, before, records, result


@pytest.mark.backend_subset
def test_interrupted_search_resumes_without_repeating_trials(resumed_search):
    config, before, records, result = resumed_search
    assert [s["status"] for s in before.values()] == ["COMPLETED"]
    assert result.status == "resumed"
    after = trial_states(config.project_dir)
    assert len(after) == hyperband_plan(2, 3)["trials"] == 2
    for name, state in before.items():
        assert after[name]["score"] == state["score"] and after[name]["metrics"] == state["metrics"]
        # Not run again: its record still holds the one attempt of the first run.
        assert read_json(config.project_dir / name / TRIAL_RECORD) == records[name]
    assert set(result.trials_run) == {s["trial_id"] for s in after.values()} - {s["trial_id"] for s in before.values()}
    oracle = read_json(config.project_dir / "oracle.json")
    assert sorted(oracle["end_order"]) == sorted(s["trial_id"] for s in after.values())
    assert len(set(oracle["end_order"])) == len(oracle["end_order"])


@pytest.mark.backend_subset
def test_summary_lists_every_trial_best_first(resumed_search):
    config, _, _, result = resumed_search
    table = pd.read_csv(config.project_dir / SUMMARY_CSV, dtype={"trial_id": str, "continues": str})
    states = trial_states(config.project_dir)
    assert sorted(table["trial_id"]) == sorted(s["trial_id"] for s in states.values())
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert list(table["score"]) == sorted(table["score"])  # val_loss: lower is better
    for row in table.itertuples():
        state = states[f"trial_{row.trial_id}"]
        assert row.score == pytest.approx(state["score"]) and row.status == state["status"]
        assert 1 <= row.epochs_run <= row.epochs_to - row.epochs_from and row.seconds > 0
        assert row.worker == "tuner0" and row.attempts == 1
        assert row.blocks == state["hyperparameters"]["values"]["blocks"]
    markdown = (config.project_dir / SUMMARY_MD).read_text()
    assert sum(line.startswith(f"| {rank} | ") for line in markdown.splitlines() for rank in table["rank"]) == len(table)
    best = read_json(config.project_dir / BEST_JSON)
    assert best["trial_id"] == table["trial_id"][0] == result.best.trial_id
    assert best["model"] == model_config_from_values("default", best["hyperparameters"]).to_dict()
    assert read_json(config.project_dir / CONFIG_FILE)["search"]["max_epochs"] == 2
    # Nothing continues from a finished search's trials: their checkpoints are gone.
    assert not list(config.project_dir.glob("trial_*/checkpoint.weights.h5"))


@pytest.mark.backend_subset
def test_best_configuration_is_retrained_into_a_run_directory(resumed_search):
    config, _, _, result = resumed_search
    run = result.run_dir
    assert run == config.project_dir / BEST_RUN
    for name in ("model.keras", "metrics.json", "thresholds.json", "predictions.npz", "schema.yaml"):
        assert (run / name).is_file(), name
    import yaml

    trained = yaml.safe_load((run / "config.yaml").read_text())
    assert trained["model"] == read_json(config.project_dir / BEST_JSON)["model"]
    assert trained["epochs"] == 1 and trained["max_train"] == 64
    assert read_json(run / "metrics.json")["heads"]["labels"]["test"]


def test_running_a_finished_search_again_changes_nothing(resumed_search):
    config, _, _, result = resumed_search
    stamps = {p: p.stat().st_mtime_ns for p in config.project_dir.rglob("*")
              if p.is_file() and p.name in ("trial.json", TRIAL_RECORD, "model.keras")}
    again = tune(config)
    assert again.trials_run == [] and again.best.trial_id == result.best.trial_id
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_a_different_search_needs_overwrite_which_starts_afresh(resumed_search):
    config, _, _, _ = resumed_search
    changed = tiny_search(Path(config.dataset), Path(config.directory), max_epochs=1, retrain_epochs=0)
    with pytest.raises(RunError, match="max_epochs: saved 2, now 1"):
        tune(changed)
    started = time.time()
    result = tune(dataclasses.replace(changed, overwrite=True))
    states = trial_states(config.project_dir)
    assert list(states) == ["trial_0000"] == [f"trial_{t}" for t in result.trials_run]
    assert read_json(config.project_dir / "trial_0000" / TRIAL_RECORD)["runs"][0]["started"] >= started
    assert not (config.project_dir / BEST_RUN).exists() and result.run_dir is None
    assert read_json(config.project_dir / CONFIG_FILE)["search"]["max_epochs"] == 1


@pytest.mark.slow
def test_killed_search_process_resumes_where_it_stopped(tmp_path, grids_dataset):
    """SIGKILL a search process after its first trial; the same command then finishes it."""
    config = tiny_search(grids_dataset, tmp_path / "searches", factor=2, retrain_epochs=0)
    command = [sys.executable, "-m", "faces_keras", "tune", str(grids_dataset), "--out", config.directory,
               "--max-epochs", "2", "--factor", "2", "--max-train", "64", "--patience", "2",
               "--retrain-epochs", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    oracle_file = config.project_dir / "oracle.json"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            if oracle_file.is_file() and read_json(oracle_file)["end_order"]:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the search ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    before = trial_states(config.project_dir)
    finished = {name: s for name, s in before.items() if s["status"] == "COMPLETED"}
    assert finished and len(finished) < hyperband_plan(2, 2)["trials"]
    result = tune(config)
    after = trial_states(config.project_dir)
    assert len(after) == hyperband_plan(2, 2)["trials"] == 5
    assert all(s["status"] == "COMPLETED" for s in after.values())
    for name, state in finished.items():
        assert after[name]["score"] == state["score"]
        assert len(read_json(config.project_dir / name / TRIAL_RECORD)["runs"]) == 1
    # The trial running at the kill (if any) is the only one run again; nothing new repeats.
    rerun = set(result.trials_run)
    assert not rerun & {s["trial_id"] for s in finished.values()}
    assert rerun | {s["trial_id"] for s in finished.values()} == {s["trial_id"] for s in after.values()}
    oracle = read_json(oracle_file)
    assert len(oracle["end_order"]) == len(set(oracle["end_order"])) == 5


def test_trial_checkpoints_are_written_under_a_temporary_name_and_renamed(tmp_path, monkeypatch):
    import keras
    import keras_tuner as kt
    from keras_tuner.src.engine import tuner_utils

    from faces_keras.tuning.tuner import _atomic_trial_checkpoints

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    target = tmp_path / "checkpoint.weights.h5"
    with _atomic_trial_checkpoints():
        saver = tuner_utils.SaveBestEpoch(kt.Objective("val_loss", "min"), str(target))
    saver.set_model(model)
    saver.on_epoch_end(0, {"val_loss": 1.0})
    assert target.is_file() and [p.name for p in tmp_path.iterdir()] == [target.name]
    before = target.read_bytes()

    def killed_mid_save(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save_weights", killed_mid_save)
    with pytest.raises(KeyboardInterrupt):
        saver.on_epoch_end(1, {"val_loss": 0.5})
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [target.name]
    assert tuner_utils.SaveBestEpoch is not type(saver)  # the name is restored after the trial
