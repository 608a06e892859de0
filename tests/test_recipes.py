"""Training recipes: the cosine schedule, label smoothing, weight EMA and flip test-time augmentation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.io import read_json
from faces_keras.models.heads import Head, MaskedBinaryCrossentropy, MaskedSparseCategoricalCrossentropy
from faces_keras.rundir import RunDir
from faces_keras.training.train import TrainConfig, learning_rate, predict_heads
from faces_keras.models.saving import load_run_model
from tests.conftest import tiny_model

TINY = ["--filters", "8", "--blocks", "2", "--no-augmentation", "--batch-size", "32", "--max-train", "64"]


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(dataset="d", epochs=5, batch_size=10, schedule="cosine", warmup_epochs=1,
                         model=tiny_model(learning_rate=1e-2))
    schedule = learning_rate(config, train_faces=100)  # 10 steps per epoch, 10 of warm-up
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] == pytest.approx(1e-4) and rates[1] == pytest.approx((1e-4 + 1e-2) / 2, rel=1e-3)
    assert rates[2] == pytest.approx(1e-2)
    assert rates[3] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 20 / 40)), rel=1e-3)
    assert rates[4] == pytest.approx(0, abs=1e-9)
    assert learning_rate(TrainConfig(dataset="d"), 100) == 1e-3  # plateau: a plain number
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(dataset="d", warmup_epochs=1)  # warm-up belongs to the cosine schedule


def test_label_smoothing_matches_keras_losses():
    y_true = np.array([[1.0, 0.0], [0.0, -1.0]], "float32")  # -1: missing, masked
    y_pred = np.array([[0.8, 0.3], [0.4, 0.9]], "float32")
    ours = float(MaskedBinaryCrossentropy(label_smoothing=0.2)(y_true, y_pred))
    kept = y_true.reshape(-1) >= 0
    reference = keras.losses.BinaryCrossentropy(label_smoothing=0.2, reduction=None)(
        y_true.reshape(-1, 1)[kept], y_pred.reshape(-1, 1)[kept])
    assert ours == pytest.approx(float(np.mean(reference)), rel=1e-5)  # the mean over labelled entries
    classes = np.array([2, 0], "int32")
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]], "float32")
    ours = float(MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)(classes, probs))
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[classes], probs)
    assert ours == pytest.approx(float(reference), rel=1e-5)


def test_flip_tta_averages_the_face_and_its_mirror():
    inputs = keras.Input((4, 4, 1))
    # A model that is not mirror-symmetric: a weighted sum over columns.
    weights = np.arange(16, dtype="float32").reshape(1, 4, 4, 1) / 100
    outputs = keras.layers.Activation("sigmoid")(
        keras.ops.sum(inputs * weights, axis=(1, 2, 3), keepdims=False)[:, None])
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).random((3, 4, 4, 1)).astype("float32")
    heads = [Head("labels", "binary", ("a",), 1)]
    plain = predict_heads(model, x, heads)["labels"]
    mirrored = predict_heads(model, x[:, :, ::-1], heads)["labels"]
    both = predict_heads(model, x, heads, tta_flip=True)["labels"]
    assert not np.allclose(plain, mirrored)
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-6)


def test_ema_run_validates_and_keeps_the_averaged_weights(tmp_path, grids_dataset):
    run = tmp_path / "run"
    # One epoch: it is the best, so best.keras (saved after the EMA swap) must hold the
    # average that last.keras (saved before it) keeps in its optimizer.
    assert main(["train", str(grids_dataset), "--out", str(run), "--epochs", "1", "--ema", "0.5",
                 "--schedule", "cosine", "--label-smoothing", "0.1", "--tta-flip", *TINY]) == 0
    config = RunDir(run).read_config()
    assert config["ema_momentum"] == 0.5 and config["schedule"] == "cosine" and config["tta_flip"]
    last = keras.saving.load_model(run / "checkpoints" / "last.keras")
    assert last.optimizer.use_ema
    assert isinstance(last.optimizer.learning_rate_schedule if hasattr(last.optimizer, "learning_rate_schedule")
                      else last.optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    averages = [np.asarray(v) for v in last.optimizer._model_variables_moving_average]
    raw = [np.asarray(v) for v in last.trainable_variables]
    assert any(not np.allclose(a, r) for a, r in zip(averages, raw))  # the average is not the weights
    assert read_json(run / "checkpoints" / "best.json")["epoch"] == 0
    kept = [np.asarray(v) for v in load_run_model(run).trainable_variables]
    assert all(np.allclose(k, a, atol=1e-6) for k, a in zip(kept, averages))


# -- transfer learning ------------------------------------------------------------

def test_init_from_loads_the_backbone_and_rebuilds_the_heads(tmp_path, grids_dataset, data_dir, capsys):
    from faces_keras.training.transfer import backbone_layers

    source = tmp_path / "source"
    assert main(["train", str(grids_dataset), "--out", str(source), "--epochs", "1", *TINY]) == 0
    # A one-label dataset: a different schema, so a different head.
    target = tmp_path / "glasses"
    assert main(["train", str(grids_dataset), "--out", str(target), "--label", "glasses", "--epochs", "2",
                 "--init-from", str(source), "--freeze-epochs", "1", "--preset", "sequential",
                 "--no-augmentation", "--batch-size", "32", "--max-train", "64"]) == 0
    config = RunDir(target).read_config()
    assert config["model"]["preset"] == "default" and config["model"]["filters"] == 8  # the source's architecture
    donor, model = load_run_model(source), load_run_model(target)
    assert model.output_shape == (None, 1) and donor.output_shape[-1] == 5
    # The second epoch trained everything (last.keras), from the donor's backbone.
    last = keras.saving.load_model(target / "checkpoints" / "last.keras")
    assert all(layer.trainable for layer in backbone_layers(last))
    first_donor, first_last = backbone_layers(donor)[0], backbone_layers(last)[0]
    assert not np.allclose(first_donor.get_weights()[0], first_last.get_weights()[0])  # fine-tuned
    assert np.allclose(first_donor.get_weights()[0], first_last.get_weights()[0], atol=0.05)  # ... a little
    history = (target / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1"]


@pytest.mark.parametrize("donor_channels, channels", [(1, 3), (3, 1)])
def test_init_from_moves_a_backbone_between_gray_and_colour(tmp_path, grids_dataset, donor_channels, channels):
    from faces_keras.data.store import Dataset
    from faces_keras.models.heads import plan_heads
    from faces_keras.models.presets import build_model
    from faces_keras.training.transfer import backbone_layers, load_backbone

    heads = plan_heads(Dataset.load(grids_dataset).schema)
    donor = build_model(heads, (32, 32, donor_channels), tiny_model())
    rng = np.random.default_rng(0)
    for layer in backbone_layers(donor):  # weights unlike any fresh model's, batch-norm statistics too
        layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) if w.ndim > 1 else
                           np.abs(w) + rng.random(w.shape).astype(w.dtype) for w in layer.get_weights()])
    donor.save(tmp_path / "donor.keras")
    model = build_model(heads, (32, 32, channels), tiny_model())
    assert load_backbone(model, tmp_path / "donor.keras") == len(backbone_layers(model))
    kernel, donor_kernel = backbone_layers(model)[0].get_weights()[0], backbone_layers(donor)[0].get_weights()[0]
    assert kernel.shape[2] == channels and kernel.shape[3] == donor_kernel.shape[3]
    # The same gray faces, repeated on three channels for the colour model, give the same features.
    gray = rng.random((4, 32, 32, 1)).astype("float32")
    faces = {1: gray, 3: np.repeat(gray, 3, axis=-1)}

    def features(m, x):
        return keras.Model(m.inputs, backbone_layers(m)[-1].output).predict(x, verbose=0)

    assert np.allclose(features(model, faces[channels]), features(donor, faces[donor_channels]), atol=1e-4)
    for ours, theirs in zip(backbone_layers(model)[1:], backbone_layers(donor)[1:]):
        assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights()))


def test_init_from_with_frozen_backbone_keeps_the_donor_weights(tmp_path, grids_dataset):
    from faces_keras.models.heads import plan_heads
    from faces_keras.models.presets import build_model
    from faces_keras.training.transfer import backbone_layers, load_backbone, set_backbone_trainable
    from faces_keras.data.store import Dataset

    source = tmp_path / "source"
    assert main(["train", str(grids_dataset), "--out", str(source), "--epochs", "1", *TINY]) == 0
    schema = Dataset.load(grids_dataset).schema.select(["hat"])
    model = build_model(plan_heads(schema), (64, 64, 1), tiny_model())
    assert load_backbone(model, source) == len(backbone_layers(model))
    donor = load_run_model(source)
    for ours, theirs in zip(backbone_layers(model), backbone_layers(donor)):
        assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights()))
    assert set_backbone_trainable(model, False) and not set_backbone_trainable(model, False)
    # A model file of another architecture is refused, naming the layer that differs.
    wide = build_model(plan_heads(schema), (64, 64, 1), tiny_model(filters=16))
    from faces_keras.errors import RunError

    with pytest.raises(RunError, match="backbone layer 0"):
        load_backbone(wide, source / "model.keras")
    with pytest.raises(RunError, match="expected a run directory"):
        load_backbone(wide, tmp_path / "nothing")
