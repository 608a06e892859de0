"""`faces-keras export`: ONNX, TFLite and SavedModel exports equal Keras on real faces, carry the
run's schema and thresholds, and `predict --model model.onnx` runs without TensorFlow."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from faces_keras.data.store import Dataset
from faces_keras.errors import RunError
from faces_keras.inference.export import ExportConfig, ExportError, export_model
from faces_keras.inference.runtime import ExportedModel, sidecar_paths
from faces_keras.io import read_json
from faces_keras.models.saving import load_run_model
from faces_keras.training.train import TrainConfig, train
from tests.conftest import ROOT, tiny_model

pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
pytest.importorskip("tf2onnx", reason="the export extra is not installed (pip install -e '.[export]')")


@pytest.fixture(scope="module")
def run(tmp_path_factory, grids_dataset):
    """One epoch on the real grid faces, with online augmentation (left out of the export)."""
    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(augmentation={}), epochs=1, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "grids")


@pytest.fixture(scope="module")
def real_faces(run) -> np.ndarray:
    """The run's test faces: real grid faces the model did not train on."""
    data = Dataset.load(read_json(run / "manifest.json")["path"])
    return data.images[data.faces["split"].to_numpy() == "test"]


@pytest.fixture(scope="module")
def onnx_export(run, tmp_path_factory):
    return export_model(run.path, "onnx", tmp_path_factory.mktemp("export") / "model.onnx")


def _keras_scores(run, faces: np.ndarray) -> np.ndarray:
    """The Keras model's outputs, written out here: the 5 binary labels' sigmoid head."""
    return np.asarray(load_run_model(run).predict(faces.astype("float32"), verbose=0))


def test_onnx_matches_keras_on_real_faces(run, real_faces, onnx_export):
    import onnxruntime

    assert onnx_export.path.is_file() and onnx_export.max_abs_diff <= 1e-4
    session = onnxruntime.InferenceSession(str(onnx_export.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [64, 64, 1]  # the stored 0-255 gray faces, preprocessing inside
    got = session.run(None, {session.get_inputs()[0].name: real_faces.astype("float32")})[0]
    expected = _keras_scores(run, real_faces)
    assert got.shape == expected.shape == (len(real_faces), 5)
    assert np.max(np.abs(got - expected)) <= 1e-4
    ops = {node.op_type for node in __import__("onnx").load(str(onnx_export.path)).graph.node}
    assert not any("Random" in op for op in ops)  # the augmentation layers are not in the graph


def test_tflite_matches_keras_on_real_faces(run, real_faces, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    result = export_model(run.path, "tflite", tmp_path / "model.tflite")
    assert result.max_abs_diff <= 1e-4 and result.faces_checked == 64
    interpreter = litert.Interpreter(model_path=str(result.path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, (len(real_faces), 64, 64, 1))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, real_faces.astype("float32"))
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.max(np.abs(got - _keras_scores(run, real_faces))) <= 1e-4


def test_saved_model_matches_keras(run, real_faces, tmp_path):
    import tensorflow as tf

    result = export_model(run.path, config=ExportConfig(format="saved_model", out=str(tmp_path / "model")))
    assert (result.path / "saved_model.pb").is_file()
    loaded = tf.saved_model.load(str(result.path))
    got = loaded.serve(real_faces.astype("float32")).numpy()
    assert np.max(np.abs(got - _keras_scores(run, real_faces))) <= 1e-4
    assert sidecar_paths(result.path)["schema"].name == "model.schema.yaml"


def test_the_export_carries_the_runs_schema_and_thresholds(run, onnx_export):
    sidecars = sidecar_paths(onnx_export.path)
    assert sidecars["schema"].read_text() == (run / "schema.yaml").read_text()
    assert read_json(sidecars["thresholds"]) == read_json(run / "thresholds.json")
    record = read_json(sidecars["export"])
    assert (record["size"], record["gray"], record["heads"][0]["labels"]) == \
           (64, True, ["sex", "glasses", "hat", "beard", "smile"])
    model = ExportedModel(onnx_export.path)
    assert model.thresholds == {k: float(v) for k, v in read_json(run / "thresholds.json")["thresholds"].items()}


def test_a_missing_sidecar_is_named(onnx_export, tmp_path):
    import shutil

    copy = tmp_path / "model.onnx"
    shutil.copy(onnx_export.path, copy)
    shutil.copy(sidecar_paths(onnx_export.path)["export"], tmp_path / "model.export.json")
    with pytest.raises(RunError, match=r"model\.schema\.yaml is missing"):
        ExportedModel(copy)


def test_a_wrong_suffix_is_refused(run, tmp_path):
    with pytest.raises(ExportError, match=r"model\.bin: a onnx export is a \.onnx file"):
        export_model(run.path, "onnx", tmp_path / "model.bin")


NO_TENSORFLOW = """
import json, sys
from faces_keras.cli import main
code = main(["predict", "--model", sys.argv[1], *sys.argv[3:], "--out", sys.argv[2], "--no-annotate"])
heavy = sorted(m for m in ("tensorflow", "keras", "jax", "tf2onnx") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_predict_with_an_onnx_model_runs_without_tensorflow(run, onnx_export, data_dir, tmp_path):
    from faces_keras.inference.predict import PredictConfig, predict_photos

    photos = [str(p) for p in sorted((data_dir / "photos").glob("*.jpg"))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(onnx_export.path), str(tmp_path / "onnx"),
                           *photos], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}

    keras_result = predict_photos(run.path, photos, PredictConfig(out=str(tmp_path / "keras"), no_annotate=True))
    with open(tmp_path / "onnx" / "predictions.csv", newline="") as a, open(keras_result.csv, newline="") as b:
        onnx_rows, keras_rows = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(onnx_rows) == len(keras_rows) == 10
    for x, y in zip(onnx_rows, keras_rows):
        assert (x["photo"], x["face"], x["x"], x["w"]) == (y["photo"], y["face"], y["x"], y["w"])
        for name in run.schema().label_names:
            assert abs(float(x[f"{name}_score"]) - float(y[f"{name}_score"])) <= 1e-4
            assert x[name] == y[name]


def test_export_cli(run, tmp_path, capsys):
    from faces_keras.cli import main

    out = tmp_path / "cli" / "model.onnx"
    assert main(["export", str(run.path), "--format", "onnx", "--out", str(out), "--parity-faces", "16"]) == 0
    printed = capsys.readouterr().out
    assert f"exported onnx: {out}" in printed and "parity with Keras on 16 real faces" in printed
    assert all(p.is_file() for p in sidecar_paths(out).values())
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]  # nothing half-written left
