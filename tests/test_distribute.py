"""Data-parallel training (``--distribute``) on two virtual CPU devices of the jax backend.

The suite's pytest pass runs on TensorFlow, and jax fixes its device count
when it starts, so the data-parallel checks run in a subprocess with
``KERAS_BACKEND=jax`` and ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(two CPU devices, the way CI can have "several devices" without a GPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from faces_keras.data.store import Dataset
from faces_keras.errors import ConfigError
from faces_keras.models.saving import load_keras_model
from faces_keras.training.config import TrainConfig
from faces_keras.training.train import TrainingData

DEVICES = 2


def _jax_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS=f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}".strip())
    return env


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=_jax_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])


# One fit step of the same model from the same weights on the same 16 faces, on one device and then
# split over both. The model has no randomness in training: dropout 0 and no augmentation layers
# (keras draws dropout masks and random flips from a seed generator whose draws would have to match
# between the two runs, which is not what is being tested). BatchNorm stays in: under DataParallel jax
# computes its batch mean and variance over the whole sharded batch, so it must match as well.
STEP_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import jax, keras
    from faces_keras.backend import describe_device, set_seed, use_distribution
    from faces_keras.data.store import Dataset
    from faces_keras.data.stream import FaceBatches
    from faces_keras.models.heads import fit_targets
    from faces_keras.models.presets import ModelConfig, build_model, compile_model
    from faces_keras.training.train import TrainingData

    dataset, batch = sys.argv[1], int(sys.argv[2])
    data = TrainingData.load(Dataset.load(dataset))
    x, y = FaceBatches(data.x["train"], fit_targets(data.targets["train"], data.heads), batch_size=batch)[0]
    probe = data.x["val"].take(np.arange(batch - 3))  # a short batch first: replicated, not split
    config = ModelConfig(filters=8, blocks=2, dropout=0.0, augmentation=None)

    def one_step(initial):
        set_seed(0)
        model = build_model(data.heads, x.shape[1:], config)
        if initial is not None:
            model.set_weights(initial)
        compile_model(model, data.heads, 1e-3)
        before = model.get_weights()
        history = model.fit(FaceBatches(x, y, batch_size=batch), epochs=1, shuffle=False, verbose=0)
        preds = model.predict(FaceBatches(probe, batch_size=4), verbose=0)
        preds = [np.asarray(p) for p in (preds.values() if isinstance(preds, dict) else
                                         preds if isinstance(preds, (list, tuple)) else [preds])]
        return model, before, float(history.history["loss"][0]), model.get_weights(), preds

    single, initial, single_loss, single_after, single_preds = one_step(None)
    text = use_distribution(True, batch)
    layout = keras.distribution.distribution().get_data_layout(x.shape).backend_layout
    short_layout = keras.distribution.distribution().get_data_layout((batch - 3,) + x.shape[1:]).backend_layout
    parallel, start, parallel_loss, parallel_after, parallel_preds = one_step(initial)
    print(json.dumps({
        "jax_devices": len(jax.devices()),
        "description": text,
        "environment": describe_device(),
        "batch_split": layout.shard_shape(x.shape)[0],
        "short_batch_split": short_layout.shard_shape((batch - 3,) + x.shape[1:])[0],
        "weight_devices": len(parallel.weights[0].value.sharding.device_set),
        "same_start": all(np.array_equal(a, b) for a, b in zip(initial, start)),
        "single_loss": single_loss, "parallel_loss": parallel_loss,
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(initial, single_after)),
        "weights_diff": max(float(np.abs(a - b).max()) for a, b in zip(single_after, parallel_after)),
        "weights": len(single_after),
        "preds_diff": max(float(np.abs(a - b).max()) for a, b in zip(single_preds, parallel_preds)),
        "preds_rows": [len(p) for p in parallel_preds],
    }))
''')


def test_one_step_data_parallel_equals_single_device(grids_dataset, tmp_path):
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    batch = 16
    done = _run([sys.executable, str(script), str(grids_dataset), str(batch)])
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["jax_devices"] == DEVICES
    assert out["description"].startswith(f"data-parallel over {DEVICES} devices")
    assert out["environment"]["distribution"] == "data-parallel" and out["environment"]["devices"] == DEVICES
    assert out["batch_split"] == batch // DEVICES  # each device computes on half the batch
    assert out["short_batch_split"] == batch - 3  # 13 faces: the whole batch on each device
    assert out["weight_devices"] == DEVICES  # the weights are replicated on both
    assert out["same_start"]
    assert out["moved"] > 1e-4  # the step did change the weights, so equal weights after it mean something
    assert out["parallel_loss"] == pytest.approx(out["single_loss"], rel=1e-5)
    assert out["weights_diff"] < 1e-5, out  # every weight, BatchNorm's moving statistics included
    assert out["preds_diff"] < 1e-4, out
    assert set(out["preds_rows"]) == {batch - 3}  # the short first batch did not pad or drop a face


def test_train_cli_distribute_end_to_end(grids_dataset, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "faces_keras", "train", str(grids_dataset), "--out", str(run), "--epochs", "1",
            "--batch-size", "16", "--filters", "8", "--blocks", "2", "--no-augmentation", "--distribute"]
    done = _run(args)
    assert done.returncode == 0, done.stderr[-3000:]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["distribute"] is True
    env = config["environment"]
    assert (env["backend"], env["distribution"], env["devices"]) == ("jax", "data-parallel", DEVICES)
    # val (73 faces here) ends in a short batch the two devices do not divide: it was predicted whole,
    # in order, equal to what the saved model predicts on one device (this process, TensorFlow)
    data = TrainingData.load(Dataset.load(grids_dataset))
    assert len(data.x["val"]) % 16 % DEVICES, len(data.x["val"])
    saved = np.load(run / "predictions.npz")
    model = load_keras_model(run / "model.keras")
    here = model.predict(np.asarray(data.x["val"], dtype="float32"), verbose=0)
    here = np.asarray(here["labels"] if isinstance(here, dict) else here)  # the grids schema: one head
    assert saved["val/labels"].shape == here.shape
    np.testing.assert_allclose(saved["val/labels"], here, atol=1e-4)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["heads"]["labels"]["val"][0]["n"] == len(data.x["val"])
    assert (run / "thresholds.json").is_file() and (run / "report.html").is_file()

    bad = _run(args[:-1] + ["--batch-size", "15", "--distribute", "--overwrite"])
    assert bad.returncode != 0
    assert f"batch_size=15 (--batch-size): data-parallel training splits each batch over {DEVICES} devices" \
        in bad.stderr


@pytest.mark.backend_subset
def test_distribute_refused_off_jax():
    from faces_keras.backend import backend_name, use_distribution

    if backend_name() == "jax":
        pytest.skip("this process runs jax, where --distribute is supported (tested above)")
    with pytest.raises(ConfigError, match=r"^distribute \(--distribute\): data-parallel training needs "
                                          r"KERAS_BACKEND=jax \(this process runs the (tensorflow|torch) backend\)$"):
        use_distribution(True, 16)
    assert use_distribution(False, 16) == "one device"
    assert TrainConfig(dataset="x", distribute=True).distribute is True  # judged at run time, on the backend
