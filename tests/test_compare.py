"""`faces-keras compare` on real grid faces: per-label models against one all-label model."""

from __future__ import annotations

import pandas as pd
import pytest

from faces_keras.errors import DatasetError, FacesKerasError, RunError
from faces_keras.io import read_json
from faces_keras.training.compare import (compare, compared_labels, parse_families, plan_runs, preset_for,
                                          run_name)
from faces_keras.training.train import TrainConfig

TINY = dict(filters=8, blocks=2, augmentation=None)
LABELS = ("sex", "smile")


@pytest.fixture(scope="module")
def grids200(tmp_path_factory, data_dir):
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema

    out = tmp_path_factory.mktemp("compare") / "grids200"
    return prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", out,
                           config=PrepareConfig(limit=200))


def _run_compare(dataset, out, **changes):
    settings = dict(presets=("default",), epochs=1, batch_size=32, max_train=64, labels=LABELS,
                    model_overrides=TINY, verbose=0)
    settings.update(changes)
    return compare(dataset, out, **settings)


@pytest.fixture(scope="module")
def compared(tmp_path_factory, grids200):
    out = tmp_path_factory.mktemp("compare") / "out"
    return out, _run_compare(grids200, out)


def _test_rows(run_dir) -> pd.DataFrame:
    table = pd.read_csv(run_dir / "metrics.csv")
    return table[table["split"] == "test"].set_index("label")


# -- pure functions: no training ---------------------------------------------------------

def test_original_family_maps_to_the_original_presets():
    assert preset_for("original", "per-label") == "original-per-label"
    assert preset_for("original", "all-label") == "original-all-label"
    assert preset_for("default", "per-label") == preset_for("default", "all-label") == "default"
    assert parse_families("default,original") == ["default", "original"]
    assert parse_families(" original , original ") == ["original"]
    with pytest.raises(FacesKerasError, match="unknown preset family 'orignal'"):
        parse_families("default,orignal")
    with pytest.raises(FacesKerasError, match="no preset family"):
        parse_families(",")


def test_plan_has_one_run_per_label_and_one_all_label_run_per_family():
    base = TrainConfig(dataset="d", epochs=3)
    runs = plan_runs(["default", "original"], ["sex", "hat"], base, {"filters": 8})
    assert list(runs) == ["default-per-label-sex", "default-per-label-hat", "default-all-label",
                          "original-per-label-sex", "original-per-label-hat", "original-all-label"]
    assert runs["original-per-label-hat"].labels == ("hat",)
    assert runs["original-per-label-hat"].model.preset == "original-per-label"
    assert runs["original-all-label"].labels == ("sex", "hat")
    assert runs["original-all-label"].model.preset == "original-all-label"
    assert runs["default-all-label"].model.filters == 8 and runs["default-all-label"].epochs == 3
    assert run_name("original", "per-label", "hat") == "original-per-label-hat"


def test_compared_labels_are_binary_labels_of_the_schema(grids200):
    from faces_keras.data.store import Dataset

    dataset = Dataset.load(grids200)
    assert compared_labels(dataset) == ["sex", "glasses", "hat", "beard", "smile"]
    with pytest.raises(DatasetError, match="'moustache'"):
        compared_labels(dataset, ["sex", "moustache"])


# -- one small comparison ---------------------------------------------------------------

def test_table_has_one_row_per_label_and_model_kind(compared):
    out, table = compared
    assert sorted(zip(table["label"], table["kind"])) == sorted(
        (label, kind) for label in LABELS for kind in ("per-label", "all-label"))
    assert set(table["preset"]) == {"default"}
    for name in ("compare.csv", "compare.md", "compare.png"):
        assert (out / name).is_file(), name
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out / "compare.csv").shape == table.shape


def test_scores_are_those_of_the_underlying_runs(compared):
    out, table = compared
    for row in table.itertuples():
        run = out / (f"default-per-label-{row.label}" if row.kind == "per-label" else "default-all-label")
        truth = _test_rows(run).loc[row.label]
        for metric in ("f1@0.5", "f1@tuned", "precision@tuned", "recall@tuned", "accuracy@0.5"):
            assert table.loc[row.Index, metric] == pytest.approx(truth[metric], nan_ok=True), (run, metric)
        facts = read_json(run / "metrics.json")
        assert table.loc[row.Index, "parameters"] == facts["parameters"]
        assert table.loc[row.Index, "train_seconds"] == pytest.approx(facts["train_seconds"])
    # A per-label model has one output, the all-label model one per label: it is bigger.
    per_label = table[table["kind"] == "per-label"]["parameters"]
    all_label = table[table["kind"] == "all-label"]["parameters"]
    assert (all_label.to_numpy() > per_label.to_numpy()).all()
    markdown = (out / "compare.md").read_text()
    assert markdown.count("| default per-label |") == len(LABELS)


def test_second_call_reuses_finished_runs(compared, grids200):
    out, table = compared
    models = sorted(out.glob("*/model.keras"))
    assert len(models) == len(LABELS) + 1
    before = {path: path.stat().st_mtime_ns for path in models}
    again = _run_compare(grids200, out)
    assert {path: path.stat().st_mtime_ns for path in models} == before
    pd.testing.assert_frame_equal(again, table)


def test_interrupted_run_is_finished_from_its_checkpoint(compared, grids200):
    out, table = compared
    run = out / "default-per-label-smile"
    (run / "metrics.json").unlink()  # as if stopped after training, before evaluation
    untouched = out / "default-all-label" / "model.keras"
    mtime = untouched.stat().st_mtime_ns
    again = _run_compare(grids200, out)
    assert (run / "metrics.json").is_file()
    assert untouched.stat().st_mtime_ns == mtime
    smile = again[(again["label"] == "smile") & (again["kind"] == "per-label")]
    assert smile["f1@tuned"].iloc[0] == pytest.approx(_test_rows(run).loc["smile", "f1@tuned"])


def test_finished_run_with_other_settings_is_not_mixed_in(compared, grids200):
    out, _ = compared
    with pytest.raises(RunError, match="other settings \\(epochs\\)"):
        _run_compare(grids200, out, epochs=2)


@pytest.mark.slow
def test_cli_compares_every_binary_label(tmp_path, grids200, capsys, monkeypatch):
    """The command as a user runs it (default model size, so slow): all five labels."""
    from faces_keras.cli import main

    out = tmp_path / "cmp"
    assert main(["compare", str(grids200), "--out", str(out), "--epochs", "1", "--max-train", "64"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "compare.csv")
    assert len(table) == 5 * 2
    assert "| label | model |" in printed and f"{out / 'compare.csv'}" in printed
    for row in table.itertuples():
        run = out / row.run
        assert (run / "model.keras").is_file()
        assert table.loc[row.Index, "f1@tuned"] == pytest.approx(_test_rows(run).loc[row.label, "f1@tuned"])
