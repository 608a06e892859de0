"""Every ready training config in configs/ is read by `faces-keras train` without an unknown or bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from faces_keras.cli import main

FOLDER = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted([*FOLDER.glob("*-train.yaml"), *FOLDER.glob("*-finetune.yaml")])


def test_there_are_training_configs():
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_training_config_is_read_up_to_the_missing_dataset(config, tmp_path, capsys):
    # The dataset folder is missing on purpose: training stops there, after every key was read and checked.
    status = main(["train", str(tmp_path / "absent"), "--config", str(config), "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert status == 2
    # a fine-tuning config's --init-from run is checked first, and is missing here too
    assert "not a prepared dataset" in error or "--init-from runs/" in error, error
