"""`faces-keras dataset show` on real faces: grids with offline augmentation, UTKFace, FER-2013."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faces_keras.data import augment
from faces_keras.data.present import (DEMO_OPERATIONS, augmentation_examples, balance_table, face_caption,
                                      operation_examples, plot_augmentations, plot_balance, plot_samples,
                                      show_dataset)
from faces_keras.data.store import Dataset
from faces_keras.labels import load_schema

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMBINATIONS = ("identity", "zoom", "blur", "zoom+blur")


def _prepare(data_dir, out, schema: str, labels: str, **config):
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset

    return prepare_dataset(load_schema(schema), data_dir / labels, out, config=PrepareConfig(**config))


@pytest.fixture(scope="module")
def augmented_grids(tmp_path_factory, data_dir):
    return _prepare(data_dir, tmp_path_factory.mktemp("present") / "grids", "grids",
                    "grids/faces-labels.csv", augment=COMBINATIONS)


@pytest.fixture(scope="module")
def grids_shown(augmented_grids):
    return show_dataset(augmented_grids)


@pytest.fixture(scope="module")
def utkface(tmp_path_factory, data_dir):
    return _prepare(data_dir, tmp_path_factory.mktemp("present") / "utkface", "utkface",
                    "utkface/crop_part1", limit=150, gray=False)


def _assert_png(path):
    import cv2

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = cv2.imread(str(path))
    assert image is not None and min(image.shape[:2]) >= 100, path


def _independent_counts(dataset_dir) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(label, value name, split) -> (originals, all faces), straight from faces.csv."""
    faces = pd.read_csv(dataset_dir / "faces.csv")
    schema = load_schema("grids")
    counts = {}
    for label in schema.labels:
        for split in faces["split"].unique():
            part = faces[faces["split"] == split]
            for code, name in enumerate(label.value_names()):
                everything = part[part[label.name] == code]
                counts[(label.name, name, split)] = (int((everything["augmentation"] == "identity").sum()),
                                                     len(everything))
    return counts


def test_show_writes_every_file_into_the_dataset_show_folder(grids_shown, augmented_grids):
    names = {path.name for path in grids_shown}
    assert {"balance.png", "balance.csv", "balance.md", "samples.png", "augmentations.png",
            "summary.txt"} <= names
    for path in grids_shown:
        assert path.parent == augmented_grids / "show" and path.is_file()
        if path.suffix == ".png":
            _assert_png(path)
    assert not list((augmented_grids / "show").glob(".*")), "temporary files left behind"


def test_balance_csv_counts_match_faces_csv(grids_shown, augmented_grids):
    table = pd.read_csv(augmented_grids / "show" / "balance.csv")
    expected = _independent_counts(augmented_grids)
    got = {(r.label, r.value, r.split): (r.before, r.after) for r in table.itertuples()}
    assert got == expected  # also: no "missing" rows, since every grid face has every label


def test_augmentation_multiplies_train_only(grids_shown, augmented_grids):
    table = pd.read_csv(augmented_grids / "show" / "balance.csv")
    train = table[table["split"] == "train"]
    held_out = table[table["split"] != "train"]
    assert (train["after"] == len(COMBINATIONS) * train["before"]).all()
    assert (held_out["after"] == held_out["before"]).all()
    assert set(held_out["split"]) == {"val", "test"}


def test_balance_markdown_has_a_row_per_label_value(grids_shown, augmented_grids):
    markdown = (augmented_grids / "show" / "balance.md").read_text()
    table = pd.read_csv(augmented_grids / "show" / "balance.csv")
    for label, value in table[["label", "value"]].drop_duplicates().itertuples(index=False):
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {label} | {value} |"))
        train = table[(table["label"] == label) & (table["value"] == value) & (table["split"] == "train")]
        assert f"| {int(train['before'].iloc[0])} | {int(train['after'].iloc[0])} |" in row


def test_summary_counts_faces_sources_and_splits(grids_shown, augmented_grids):
    faces = pd.read_csv(augmented_grids / "faces.csv", dtype={"source_id": str})
    summary = (augmented_grids / "show" / "summary.txt").read_text()
    assert f"{len(faces)} faces from {faces['source_id'].nunique()} source faces" in summary
    assert "64x64, 1 channel(s)" in summary
    for split, count in faces["split"].value_counts().items():
        line = next(line for line in summary.splitlines() if line.strip().startswith(split + " "))
        assert f" {count} faces" in line
    assert "left out at preparation: 0 face(s)" in summary


def test_augmentation_examples_are_each_sources_own_variants(augmented_grids):
    dataset = Dataset.load(augmented_grids)
    combos, grid = augmentation_examples(dataset, faces=3, seed=1)
    assert combos == list(COMBINATIONS)
    assert grid.shape == (3, len(COMBINATIONS), 64, 64, 1)
    for variants in grid:
        original = variants[0]
        assert np.array_equal(variants[1], augment.zoom(original))
        assert np.array_equal(variants[2], augment.blur(original))
        assert np.array_equal(variants[3], augment.blur(augment.zoom(original)))


def test_operation_examples_apply_each_offline_operation(augmented_grids):
    images = Dataset.load(augmented_grids).images[:2]
    names, grid = operation_examples(images)
    assert names == ["identity", *DEMO_OPERATIONS]
    assert {"flip", "rotate", "narrow", "widen", "zoom", "blur", "brightness_contrast"} <= set(names)
    assert np.array_equal(grid[:, 0], images)
    assert np.array_equal(grid[:, names.index("flip")], images[:, :, ::-1])
    for column, name in enumerate(names[1:], start=1):
        assert not np.array_equal(grid[:, column], images), f"{name} left the faces unchanged"


def test_samples_show_faces_of_each_value_with_their_labels(augmented_grids):
    dataset = Dataset.load(augmented_grids)
    figure = plot_samples(dataset, per_value=4, seed=0)
    axes = figure.axes
    rows = sum(len(label.value_names()) for label in dataset.schema.labels)
    assert len(axes) == rows * 4
    titled = [ax for ax in axes if ax.images]
    faces = dataset.faces.set_index("index")
    # Every face shown is a training original whose labels its title names.
    by_caption = {face_caption(row, dataset.schema) for _, row in faces.iterrows()}
    assert titled and all(ax.get_title() in by_caption for ax in titled)
    first_row_label = dataset.schema.labels[0]
    assert axes[0].get_ylabel().startswith(f"{first_row_label.name}\n= {first_row_label.value_names()[0]}")


def test_face_caption_names_positive_labels_and_value_names():
    schema = load_schema("grids")
    row = {"sex": 1, "glasses": 1, "hat": 0, "beard": -1, "smile": 0}
    assert face_caption(row, schema) == "M glasses beard ?"
    utk = load_schema("utkface")
    assert face_caption({"sex": 0, "race": 2, "age_band": 3, "age": 25.0}, utk) == "F asian 20-29 age 25"
    assert face_caption({"sex": 0, "race": 2, "age_band": 3, "age": float("nan")}, utk).endswith("age ?")


def test_plots_leave_pyplot_alone(augmented_grids):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    dataset = Dataset.load(augmented_grids)
    for figure in (plot_balance(dataset), plot_augmentations(dataset, faces=2)):
        assert figure.axes
    assert plt.get_fignums() == before


def test_utkface_multi_head_with_a_regression_label(utkface, tmp_path):
    paths = show_dataset(utkface, tmp_path / "show")
    for path in paths:
        if path.suffix == ".png":
            _assert_png(path)
    dataset = Dataset.load(utkface)
    table = balance_table(dataset)
    age = table[table["label"] == "age"]
    known = dataset.faces.groupby("split")["age"].count()
    assert dict(zip(age.loc[age["value"] == "known", "split"], age.loc[age["value"] == "known", "after"])) \
        == known.to_dict()
    races = table[(table["label"] == "race") & (table["value"] != "missing")]
    assert list(dict.fromkeys(races["value"])) == list(dataset.schema["race"].classes)
    assert races["after"].sum() == (dataset.faces["race"] >= 0).sum()
    # The age histogram: one axis per label, and its title names it.
    figure = plot_balance(dataset)
    assert [ax.get_title().split(":")[0] for ax in figure.axes] == dataset.schema.label_names
    assert figure.axes[-1].get_xlabel() == "age"
    # No offline augmentation: the figure shows what each operation would do.
    augmentations = plot_augmentations(dataset, faces=2)
    assert [ax.get_title() for ax in augmentations.axes[: len(DEMO_OPERATIONS) + 1]] == \
        [name.replace("_", " ") for name in ["identity", *DEMO_OPERATIONS]]
    summary = (tmp_path / "show" / "summary.txt").read_text()
    ages = dataset.faces["age"]
    assert f"age: {ages.min():g} to {ages.max():g}" in summary and "3 channel(s)" in summary


def test_fer2013_multiclass_with_only_a_test_split(tmp_path, data_dir):
    dataset_dir = _prepare(data_dir, tmp_path / "fer", "fer2013", "fer2013", limit=40)
    paths = show_dataset(dataset_dir)
    assert {p.name for p in paths} >= {"balance.png", "samples.png", "augmentations.png"}
    table = pd.read_csv(dataset_dir / "show" / "balance.csv")
    faces = pd.read_csv(dataset_dir / "faces.csv")
    assert table.groupby("split")["after"].sum().to_dict() == faces["split"].value_counts().to_dict()
    assert len(table) == len(load_schema("fer2013")["emotion"].classes) * faces["split"].nunique()
