"""Class-balanced losses: focal (Keras's) and logit-adjusted, masked like the cross-entropies."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.errors import ConfigError
from faces_keras.models.heads import Head
from faces_keras.models.losses import (LOSSES, MaskedBinaryFocalCrossentropy, MaskedLogitAdjustedBinaryCrossentropy,
                                       MaskedLogitAdjustedSparseCategoricalCrossentropy,
                                       MaskedSparseCategoricalFocalCrossentropy, balanced_head_loss, class_priors)
from faces_keras.rundir import RunDir
from faces_keras.training.config import LOSSES as CONFIG_LOSSES
from faces_keras.training.config import TrainConfig

TINY = ["--filters", "8", "--blocks", "2", "--no-augmentation", "--batch-size", "32", "--max-train", "64"]

# 4 faces x 3 binary labels; -1 is missing
Y_TRUE = np.array([[1, 0, -1], [0, -1, 1], [0, 0, 0], [-1, 1, 1]], dtype="float32")
Y_PRED = np.array([[0.8, 0.3, 0.9], [0.4, 0.6, 0.2], [0.1, 0.05, 0.7], [0.5, 0.35, 0.95]], dtype="float32")
LABELLED = Y_TRUE >= 0


def _bce(y, z):  # cross-entropy of a logit, by hand
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0) - y * z


def test_losses_offered_match_the_losses_built():
    assert CONFIG_LOSSES == LOSSES


def test_focal_loss_is_keras_binary_focal_crossentropy_on_labelled_entries():
    alpha = [0.9, 0.7, 0.4]
    ours = float(MaskedBinaryFocalCrossentropy(alpha=alpha, gamma=2.0)(Y_TRUE, Y_PRED))
    expected = []
    for j in range(3):  # Keras's loss, one label (one alpha) at a time, on its labelled faces only
        rows = LABELLED[:, j]
        keras_loss = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=alpha[j], gamma=2.0,
                                                          reduction=None)
        expected.extend(np.asarray(keras_loss(Y_TRUE[rows, j:j + 1], Y_PRED[rows, j:j + 1])).ravel())
    assert len(expected) == LABELLED.sum() == 9
    assert ours == pytest.approx(np.mean(expected), rel=1e-5)
    # masked entries add nothing, whatever the prediction there
    moved = Y_PRED.copy()
    moved[~LABELLED] = 0.999
    assert float(MaskedBinaryFocalCrossentropy(alpha=alpha)(Y_TRUE, moved)) == pytest.approx(ours, rel=1e-6)


def test_multiclass_focal_loss_is_keras_categorical_focal_on_labelled_faces():
    classes = np.array([2, -1, 0, 1, 0])
    probs = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]],
                     dtype="float32")
    alpha = [0.2, 0.3, 0.5]
    ours = float(MaskedSparseCategoricalFocalCrossentropy(alpha=alpha)(classes, probs))
    keep = classes >= 0
    reference = keras.losses.CategoricalFocalCrossentropy(alpha=alpha)(np.eye(3)[classes[keep]], probs[keep])
    assert ours == pytest.approx(float(reference), rel=1e-5)


def test_logit_adjusted_loss_is_crossentropy_of_shifted_logits():
    priors = np.array([0.02, 0.5, 0.3])
    tau = 1.5
    ours = float(MaskedLogitAdjustedBinaryCrossentropy(priors.tolist(), tau=tau)(Y_TRUE, Y_PRED))
    logits = np.log(Y_PRED.astype(float)) - np.log(1 - Y_PRED.astype(float))
    shifted = logits + tau * (np.log(priors) - np.log(1 - priors))
    expected = _bce(Y_TRUE, shifted)[LABELLED].mean()
    assert ours == pytest.approx(expected, rel=1e-5)
    # a rare label's positives cost more than under plain cross-entropy; tau=0 is plain cross-entropy
    plain = _bce(Y_TRUE, logits)[LABELLED].mean()
    assert float(MaskedLogitAdjustedBinaryCrossentropy(priors.tolist(), tau=0.0)(Y_TRUE, Y_PRED)) == \
        pytest.approx(plain, rel=1e-5)
    assert ours != pytest.approx(plain, rel=1e-3)
    moved = Y_PRED.copy()
    moved[~LABELLED] = 0.001
    assert float(MaskedLogitAdjustedBinaryCrossentropy(priors.tolist(), tau=tau)(Y_TRUE, moved)) == \
        pytest.approx(ours, rel=1e-6)


def test_multiclass_logit_adjusted_loss_by_hand():
    classes = np.array([2, -1, 0, 1])
    probs = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    priors = np.array([0.7, 0.2, 0.1])
    ours = float(MaskedLogitAdjustedSparseCategoricalCrossentropy(priors.tolist())(classes, probs))
    z = np.log(probs.astype(float)) + np.log(priors)
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    keep = classes >= 0
    assert ours == pytest.approx(-log_softmax[keep, classes[keep]].mean(), rel=1e-5)


def test_priors_come_from_labelled_targets_and_a_bad_loss_is_refused():
    heads = [Head("labels", "binary", ("a", "b", "c"), 3), Head("race", "multiclass", ("race",), 3)]
    targets = {"labels": Y_TRUE, "race": np.array([0, 0, 1, -1, 0, 2])}
    priors = class_priors(targets, heads)
    assert priors["labels"] == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    assert priors["race"] == pytest.approx([0.6, 0.2, 0.2])
    focal = balanced_head_loss(heads[0], "focal", priors["labels"])
    assert focal.alpha == pytest.approx([2 / 3, 2 / 3, 1 / 3])  # 1 - positive rate: rare positives weigh more
    with pytest.raises(ConfigError, match=r"loss='hinge' \(--loss\)"):
        balanced_head_loss(heads[0], "hinge", priors["labels"])
    with pytest.raises(ConfigError, match="loss"):
        TrainConfig(dataset="d", loss="hinge")
    with pytest.raises(ConfigError, match=r"class_weights"):
        TrainConfig(dataset="d", loss="focal", class_weights="balanced")


def test_bad_loss_setting_is_one_line(tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text("loss: hinge\n")
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "ds"), "--out", str(out), "--config", str(settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "loss" in err and "hinge" in err and "focal" in err
    assert not out.exists()


@pytest.mark.backend_subset
def test_focal_training_run_records_its_loss(tmp_path, grids_dataset):
    run = tmp_path / "run"
    assert main(["train", str(grids_dataset), "--out", str(run), "--epochs", "1", "--loss", "focal", *TINY]) == 0
    config = RunDir(run).read_config()
    assert config["loss"] == "focal" and config["logit_tau"] == 1.0
    model = keras.saving.load_model(run / "checkpoints" / "last.keras")
    losses = model.loss if isinstance(model.loss, dict) else {"labels": model.loss}
    assert any(isinstance(loss, MaskedBinaryFocalCrossentropy) for loss in losses.values())
    import pandas as pd

    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all() and history["loss"].iloc[0] > 0
