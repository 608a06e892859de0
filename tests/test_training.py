"""A one-epoch training on real faces writes a complete run directory that loads back."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from faces_keras.data.store import Dataset
from faces_keras.errors import RunError
from faces_keras.io import read_json
from faces_keras.rundir import RunDir
from faces_keras.training.train import TrainConfig, TrainingData, predict_heads, resume, train
from faces_keras.models.saving import load_run_model
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def grids_run(tmp_path_factory, grids_dataset):
    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=1, batch_size=32, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "grids")


@pytest.mark.backend_subset
def test_run_directory_is_complete_and_reloads(grids_run, grids_dataset):
    for name in ("config.yaml", "schema.yaml", "manifest.json", "model.keras", "history.csv", "history.png",
                 "predictions.npz", "thresholds.json", "metrics.json", "metrics.csv", "checkpoints/state.json"):
        assert (grids_run / name).is_file(), name
    config = yaml.safe_load((grids_run / "config.yaml").read_text())
    assert config["model"]["preset"] == "default" and config["environment"]["backend"]
    assert read_json(grids_run / "manifest.json")["images_sha256"] == Dataset.load(grids_dataset).manifest["images_sha256"]
    model = load_run_model(grids_run)
    data = TrainingData.load(Dataset.load(grids_dataset))
    again = predict_heads(model, data.x["test"], data.heads)["labels"]
    stored = grids_run.load_predictions()
    assert np.allclose(again, stored["test/labels"], atol=1e-5)
    assert np.array_equal(stored["test/labels/true"], data.targets["test"]["labels"])


def test_metrics_use_thresholds_tuned_on_validation(grids_run):
    from faces_keras.thresholds import ThresholdConfig, tune_thresholds

    preds = grids_run.load_predictions()
    names = grids_run.schema().label_names
    expected = tune_thresholds(preds["val/labels/true"].astype(int), preds["val/labels"], names, ThresholdConfig())
    metrics = read_json(grids_run / "metrics.json")
    assert metrics["heads"]["labels"]["thresholds"] == expected.thresholds
    test_rows = {r["label"]: r for r in metrics["heads"]["labels"]["test"]}
    assert all(test_rows[n]["threshold"] == expected.thresholds[n] for n in names)


def test_existing_run_is_not_overwritten_by_accident(grids_run, grids_dataset):
    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=1, verbose=0)
    with pytest.raises(RunError, match="use --resume"):
        train(config, grids_run.path)


def test_resume_continues_from_last_completed_epoch(tmp_path, grids_dataset, monkeypatch):
    import faces_keras.training.train as training

    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=3, batch_size=64,
                         max_train=96, verbose=0, patience=10)
    real_callbacks = training._callbacks

    def interrupt_after_second_epoch(run, cfg, state, faces):
        import keras

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt

        return real_callbacks(run, cfg, state, faces) + [Interrupt()]

    monkeypatch.setattr(training, "_callbacks", interrupt_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run")
    monkeypatch.setattr(training, "_callbacks", real_callbacks)
    assert read_json(tmp_path / "run" / "checkpoints" / "state.json")["epoch"] == 1
    assert not (tmp_path / "run" / "model.keras").exists()
    first_sitting = read_json(tmp_path / "run" / "checkpoints" / "state.json")["fit_seconds"]
    assert first_sitting > 0
    run = resume(tmp_path / "run")
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]  # epoch 3 only was added
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    # the training time counts both sittings, not only the resumed epoch
    assert read_json(run / "metrics.json")["train_seconds"] > first_sitting


def test_train_config_round_trip_and_validation():
    config = TrainConfig(dataset="d", labels=("hat",), epochs=3, model=tiny_model(preset="residual"))
    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"epoch": 3})


def test_missing_run_directory_is_named(tmp_path):
    with pytest.raises(RunError, match="config.yaml missing"):
        RunDir(tmp_path).read_config()


def test_a_run_repeats_from_its_config_file(grids_run, tmp_path):
    from faces_keras.cli import main

    assert main(["train", "--config", str(grids_run / "config.yaml"), "--out", str(tmp_path / "again")]) == 0
    first = yaml.safe_load((grids_run / "config.yaml").read_text())
    again = yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
    first.pop("environment"), again.pop("environment")
    assert first == again
    same_seed = np.allclose(RunDir(tmp_path / "again").load_predictions()["test/labels"],
                            grids_run.load_predictions()["test/labels"], atol=1e-4)
    assert same_seed  # seeded through Keras: the same config gives the same model on one backend
