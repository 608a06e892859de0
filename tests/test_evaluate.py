"""``evaluate RUN DATA``: a run trained on one CelebA subset, scored on another and on labelled grid photos."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from faces_keras.errors import SchemaError
from faces_keras.inference.evaluate import EvaluateConfig, evaluate_run_on, label_mapping
from faces_keras.io import read_json
from faces_keras.labels import load_schema
from faces_keras.rundir import RunDir
from tests.conftest import tiny_model


def celeba_subset(data_dir: Path, folder: Path, rows: slice) -> Path:
    """A CelebA attribute file holding only ``rows`` of the shared one, beside a link to its images."""
    lines = (data_dir / "celeba" / "list_attr_celeba.txt").read_text().splitlines()
    body = [line for line in lines[2:] if line.strip()][rows]
    folder.mkdir(parents=True)
    (folder / "img_celeba").symlink_to(data_dir / "celeba" / "img_celeba")
    path = folder / "list_attr_celeba.txt"
    path.write_text("\n".join([str(len(body)), lines[1], *body]) + "\n")
    return path


def prepared_celeba(data_dir: Path, root: Path, rows: slice) -> Path:
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset

    labels = celeba_subset(data_dir, root / "labels", rows)
    return prepare_dataset(load_schema("celeba"), labels, root / "prepared", config=PrepareConfig(workers=2))


@pytest.fixture(scope="module")
def celeba_run(tmp_path_factory, data_dir) -> RunDir:
    """One tiny run, one epoch, on CelebA faces 1-300."""
    from faces_keras.training.train import TrainConfig, train

    dataset = prepared_celeba(data_dir, tmp_path_factory.mktemp("celeba_a"), slice(0, 300))
    config = TrainConfig(dataset=str(dataset), model=tiny_model(), epochs=1, batch_size=32, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "celeba")


@pytest.fixture(scope="module")
def second_celeba(tmp_path_factory, data_dir) -> Path:
    """Another 200 CelebA faces (4001-4200), prepared the same way: none of them trained the run."""
    return prepared_celeba(data_dir, tmp_path_factory.mktemp("celeba_b"), slice(4000, 4200))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recomputed(predictions: pd.DataFrame, label: str, threshold: float) -> dict[str, float]:
    rows = predictions[predictions[label] != -1]
    truth, prob = rows[label].to_numpy(), rows[f"{label}_prob"].to_numpy()
    predicted = (prob >= threshold).astype(int)
    return {"n": len(rows), "f1": f1_score(truth, predicted, zero_division=0),
            "precision": precision_score(truth, predicted, zero_division=0),
            "recall": recall_score(truth, predicted, zero_division=0),
            "roc_auc": roc_auc_score(truth, prob) if len(set(truth)) == 2 else math.nan}


def _check_against_sklearn(result, predictions: pd.DataFrame, thresholds: dict[str, float], group: str) -> None:
    rows = {r["label"]: r for r in result.metrics["heads"]["labels"]["splits"][group]}
    part = predictions if group == "all" else predictions[predictions["split"] == group]
    for label, threshold in thresholds.items():
        expected = _recomputed(part, label, threshold)
        assert rows[label]["n"] == expected["n"], label
        assert rows[label]["threshold"] == threshold
        for metric in ("f1", "precision", "recall", "roc_auc"):
            assert rows[label][metric] == pytest.approx(expected[metric], nan_ok=True), (label, metric)


def test_second_celeba_set_scored_with_the_runs_thresholds(celeba_run, second_celeba, tmp_path):
    thresholds_file = celeba_run / "thresholds.json"
    before = _digest(thresholds_file)
    listing = sorted(p.name for p in celeba_run.path.iterdir())
    result = evaluate_run_on(celeba_run, second_celeba)

    # Only <run>/evaluations/<data name> was added; the thresholds are byte for byte the same.
    assert _digest(thresholds_file) == before
    assert result.out_dir == celeba_run.path / "evaluations" / second_celeba.name
    assert sorted(p.name for p in celeba_run.path.iterdir()) == sorted(listing + ["evaluations"])
    assert not [p for p in result.out_dir.parent.iterdir() if p.name.startswith(".") and "partial" in p.name]

    from faces_keras.data.store import Dataset
    from faces_keras.models.saving import load_run_model

    dataset = Dataset.load(second_celeba)  # the faces the detector found among the 200 photos
    predictions = pd.read_csv(result.out_dir / "predictions.csv", dtype={"id": str})
    assert result.faces == len(predictions) == len(dataset.faces) > 190
    thresholds = read_json(thresholds_file)["thresholds"]
    assert result.metrics["thresholds"] == thresholds
    # The probabilities are the model's own on the stored faces (its preprocessing is inside it).
    model = load_run_model(celeba_run, compile=False)
    order = dataset.faces.set_index("id").loc[predictions["id"], "index"].to_numpy()
    direct = model.predict(dataset.images[order].astype("float32"), verbose=0)
    labels = celeba_run.schema().label_names
    assert np.allclose(direct, predictions[[f"{n}_prob" for n in labels]].to_numpy(), atol=1e-5)
    # Every group's metrics against an independent recomputation from predictions.csv.
    assert set(result.metrics["splits"]) == {"train", "val", "test", "all"}
    for group in ("all", "test"):
        _check_against_sklearn(result, predictions, thresholds, group)
    # The green/red report of the set: its right/wrong per face agree with the metrics.
    assert result.report.html == result.out_dir / "report_all.html" and result.report.html.is_file()
    assert (result.out_dir / "report_all.txt").read_text() == result.report.terminal_plain
    marks = pd.read_csv(result.report.predictions, dtype={"id": str})
    assert marks["id"].tolist() == predictions["id"].tolist()
    rows = {r["label"]: r for r in result.metrics["heads"]["labels"]["splits"]["all"]}
    for label in labels:
        assert (~marks[f"{label}_right"]).sum() == rows[label]["fp"] + rows[label]["fn"], label
    md = (result.out_dir / "metrics.md").read_text()
    assert "f1@tuned" in md and all(f"| {n} |" in md for n in labels)
    summary = result.summary()
    assert "metrics.md" in summary and str(celeba_run.path) in summary


def test_labelled_grid_photos_with_missing_values_are_skipped_per_face(celeba_run, data_dir, tmp_path):
    # The grid photos' labels, in the grids schema, with hat unknown for every fifth face.
    lines = (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()
    header = lines[0].split(";")
    hat = header.index("hat")
    rows = []
    for i, line in enumerate(lines[1:]):
        cells = line.split(";")
        if i % 5 == 0:
            cells[hat] = "?"
        rows.append(";".join(cells))
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join([lines[0], *rows]) + "\n")
    before = _digest(celeba_run / "thresholds.json")
    out = tmp_path / "grids-eval"
    result = evaluate_run_on(celeba_run, data_dir / "grids",
                             EvaluateConfig(out=str(out), labels=str(labels), schema="grids"))
    assert _digest(celeba_run / "thresholds.json") == before
    assert result.out_dir == out and result.faces == len(rows)
    predictions = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    masked = sum(1 for i in range(len(rows)) if i % 5 == 0)
    assert (predictions["hat"] == -1).sum() == masked
    hat_row = {r["label"]: r for r in result.metrics["heads"]["labels"]["splits"]["all"]}["hat"]
    assert hat_row["n"] == len(rows) - masked
    _check_against_sklearn(result, predictions, read_json(celeba_run / "thresholds.json")["thresholds"], "all")


def test_a_set_without_one_of_the_runs_labels_is_refused(celeba_run, data_dir, tmp_path):
    # The original project's labels (sex, hair, glasses, hat, beard): no smile.
    labels = tmp_path / "original.csv"
    labels.write_text("face_nr;sex;hair;glasses;hat;beard\n1;M;S;N;N;Y\n2;F;L;N;N;N\n")
    with pytest.raises(SchemaError, match=r"the run predicts 'smile', but the set has no 'smile' label") as info:
        evaluate_run_on(celeba_run, data_dir / "grids",
                        EvaluateConfig(out=str(tmp_path / "out"), labels=str(labels), schema="original"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_binary_label_with_other_values_is_refused_and_swapped_values_map(celeba_run):
    run_schema = celeba_run.schema()
    grids = load_schema("grids")
    from faces_keras.labels.schema import schema_from_dict

    spec = grids.to_dict()
    spec["labels"]["sex"] = {"kind": "binary", "positive": "W", "negative": "X", "names": ["boy", "girl"]}
    with pytest.raises(SchemaError, match=r"binary label 'sex' has the values \['boy', 'girl'\]"):
        label_mapping(run_schema, schema_from_dict(spec, "other.yaml"), "other.yaml")
    spec["labels"]["sex"] = {"kind": "binary", "positive": "F", "negative": "M", "names": ["M", "F"]}
    mapping = label_mapping(run_schema, schema_from_dict(spec, "swapped.yaml"), "swapped.yaml")
    assert mapping["sex"](np.array([1, 0, -1])).tolist() == [0, 1, -1]
    assert mapping["smile"](np.array([1, 0, -1])).tolist() == [1, 0, -1]


def test_settings_are_validated():
    from faces_keras.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size"):
        EvaluateConfig(batch_size=0)
    with pytest.raises(ConfigError, match="split"):
        EvaluateConfig(split=("dev",))
    assert EvaluateConfig(split="val,test").split == ("val", "test")


def test_command_line_prints_the_table_and_refuses_in_one_line(celeba_run, second_celeba, tmp_path, capsys):
    from faces_keras.cli import main

    out = tmp_path / "cli"
    assert main(["evaluate", str(celeba_run.path), str(second_celeba), "--split", "test", "--out", str(out),
                 "--batch-size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "| split | label |" in printed and f"report: {out / 'report.html'}" in printed
    assert read_json(out / "evaluation.json")["splits"] == {"test": int(_test_faces(second_celeba).sum())}
    labels = tmp_path / "original.csv"
    labels.write_text("face_nr;sex;hair;glasses;hat;beard\n1;M;S;N;N;Y\n")
    code = main(["evaluate", str(celeba_run.path), str(tmp_path), "--labels", str(labels), "--schema", "original"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'smile'" in err[0]


def _test_faces(folder: Path) -> np.ndarray:
    from faces_keras.data.store import Dataset

    return (Dataset.load(folder).faces["split"] == "test").to_numpy()


def _schema(spec: dict, name: str = "made"):
    from faces_keras.labels.schema import schema_from_dict

    return schema_from_dict({"name": name, "format": "delimited", "labels": spec}, f"{name}.yaml")


def test_multiclass_and_regression_heads_scored_and_mapped():
    from sklearn.metrics import accuracy_score, mean_absolute_error

    from faces_keras.inference.evaluate import predictions_frame, score_heads
    from faces_keras.labels.heads import make_targets, plan_heads
    from faces_keras.thresholds import ThresholdResult

    run_schema = _schema({"smile": {"kind": "binary", "positive": "Y", "negative": "N"},
                          "race": {"kind": "multiclass", "classes": ["x", "y", "z"]},
                          "age": {"kind": "regression"}})
    # The set lists the classes in another order, and lacks one of them.
    data_schema = _schema({"age": {"kind": "regression"}, "race": {"kind": "multiclass", "classes": ["z", "x"]},
                           "smile": {"kind": "binary", "positive": "Y", "negative": "N"}}, "set")
    mapping = label_mapping(run_schema, data_schema, "set.yaml")
    assert mapping["race"](np.array([0, 1, -1, 1])).tolist() == [2, 0, -1, 0]
    with pytest.raises(SchemaError, match=r"class\(es\) \['w'\] the run does not know"):
        label_mapping(run_schema, _schema({**data_schema.to_dict()["labels"],
                                           "race": {"kind": "multiclass", "classes": ["x", "w"]}}), "w.yaml")
    with pytest.raises(SchemaError, match="'age' is multiclass in the set, regression in the run"):
        label_mapping(run_schema, _schema({**data_schema.to_dict()["labels"],
                                           "age": {"kind": "multiclass", "classes": ["young", "old"]}}), "a.yaml")

    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"id": [str(i) for i in range(n)], "split": "all",
                          "smile": rng.integers(-1, 2, n), "race": rng.integers(-1, 3, n),
                          "age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 80, n))})
    heads = plan_heads(run_schema)
    softmax = rng.dirichlet(np.ones(3), n)
    outputs = {"labels": rng.random((n, 1)), "race": softmax, "age": rng.uniform(1, 80, (n, 1))}
    thresholds = ThresholdResult(thresholds={"smile": 0.4}, method="grid", mode="per-label")
    metrics, table, md = score_heads(run_schema, heads, outputs, make_targets(frame, heads),
                                     {"all": np.ones(n, dtype=bool)}, thresholds)
    known = frame["race"].to_numpy() >= 0
    race = metrics["heads"]["race"]["splits"]["all"]
    assert race["n"] == known.sum()
    assert race["accuracy"] == pytest.approx(accuracy_score(frame["race"][known], softmax[known].argmax(1)))
    age = metrics["heads"]["age"]["splits"]["all"]
    ages = frame["age"].notna().to_numpy()
    assert age["n"] == ages.sum()
    assert age["mae"] == pytest.approx(mean_absolute_error(frame["age"][ages], outputs["age"][ages, 0]))
    assert table["label"].tolist() == ["smile"] and "## Multi-class labels" in md and "## Regression labels" in md
    written = predictions_frame(run_schema, heads, frame, outputs, thresholds)
    assert written["race_pred"].tolist() == softmax.argmax(1).tolist()
    assert written["smile_pred"].tolist() == (outputs["labels"][:, 0] >= 0.4).astype(int).tolist()
    assert np.allclose(written[["race_prob_x", "race_prob_y", "race_prob_z"]].to_numpy(), softmax)


def test_faces_of_another_size_are_refused_naming_both(celeba_run, data_dir, tmp_path):
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.errors import DatasetError

    small = prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", tmp_path / "g48",
                            config=PrepareConfig(size=48, limit=40))
    with pytest.raises(DatasetError, match=r"faces are 48x48x1, the run's model takes 64x64x1"):
        evaluate_run_on(celeba_run, small, EvaluateConfig(out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
