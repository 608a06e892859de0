"""``embed RUN [DATA]``: penultimate-layer embeddings of a tiny grid-faces run, projections, neighbours, hard pairs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from faces_keras.data.store import Dataset
from faces_keras.inference.embed import (EmbedConfig, clipped_perplexity, embed_run, hard_pairs,
                                         nearest_neighbours, project)
from faces_keras.rundir import RunDir
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def grids_run(tmp_path_factory, grids_dataset) -> RunDir:
    from faces_keras.training.train import TrainConfig, train

    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=1, batch_size=32, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "grids")


@pytest.fixture(scope="module")
def embedded(grids_run):
    return embed_run(grids_run)  # the run's own test split


def _png_shape(path) -> tuple[int, ...]:
    import cv2

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape


def test_embeddings_are_what_the_heads_read(embedded, grids_run, grids_dataset):
    from faces_keras.models.saving import load_run_model

    test_images, test_faces = Dataset.load(grids_dataset).split("test", augmented=False)
    n = len(test_faces)
    assert embedded.out_dir == grids_run.path / "embeddings" / "test"
    model = load_run_model(grids_run, compile=False)
    kernel, bias = model.get_layer("labels").get_weights()
    assert embedded.vectors.shape == (n, kernel.shape[0])
    # The heads applied to the embeddings give the model's own outputs: the vectors are the heads' input.
    heads = 1 / (1 + np.exp(-(embedded.vectors @ kernel + bias)))
    assert np.allclose(heads, model.predict(test_images.astype("float32"), verbose=0), atol=1e-4)
    stored = np.load(embedded.out_dir / "embeddings.npz")
    assert stored["ids"].tolist() == test_faces["id"].tolist()
    assert np.array_equal(stored["vectors"], embedded.vectors)
    names = stored["label_names"].tolist()
    assert names == grids_run.schema().label_names
    assert np.array_equal(stored["labels"], test_faces[names].to_numpy(dtype="float32"))


def test_projections_and_pictures(embedded):
    n = len(embedded.ids)
    assert set(embedded.projections) == {"pca", "tsne"}
    for method, xy in embedded.projections.items():
        assert xy.shape == (n, 2) and np.isfinite(xy).all(), method
        height, width, _ = _png_shape(embedded.out_dir / f"{method}.png")
        assert height > 200 and width > 200
    coords = pd.read_csv(embedded.out_dir / "projections.csv", dtype={"id": str})
    assert np.allclose(coords[["pca_x", "pca_y"]].to_numpy(), embedded.projections["pca"], atol=1e-5)
    # PCA's first coordinate is the projection on the first principal axis of the centred embeddings.
    centred = embedded.vectors - embedded.vectors.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    assert abs(np.corrcoef(centred @ axis, embedded.projections["pca"][:, 0])[0, 1]) > 0.999


def test_embed_html_is_self_contained(embedded):
    page = (embedded.out_dir / "embed.html").read_text()
    assert "<script src" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    payload = re.search(r"<script type='application/json' id='embed-data'>(.*?)</script>", page, re.S).group(1)
    data = json.loads(payload)
    assert data["ids"] == embedded.ids.tolist()
    assert all(thumb.startswith("data:image/png;base64,") for thumb in data["thumbs"])
    assert set(data["projections"]) == {"pca", "tsne"} and len(data["projections"]["tsne"]) == len(embedded.ids)
    assert "Hard pairs" in page and page.count("<img src='data:image/png") >= 2 * len(embedded.hard_pairs)


def test_neighbours_on_a_hand_checked_case():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 1.0]])
    table = nearest_neighbours(vectors, ["a", "b", "c", "d", "e"], k=1)
    assert dict(zip(table["id"], table["neighbour"])) == {"a": "b", "b": "a", "c": "d", "d": "c", "e": "b"}
    cosine_ab = 0.9 / np.hypot(0.9, 0.1)
    assert table.loc[table["id"] == "a", "similarity"].item() == pytest.approx(cosine_ab)
    assert nearest_neighbours(vectors, list("abcde"), k=9)["rank"].max() == 4  # at most the others


def test_neighbours_of_the_run(embedded):
    table = pd.read_csv(embedded.out_dir / "neighbours.csv", dtype={"id": str, "neighbour": str})
    assert len(table) == 5 * len(embedded.ids) and (table["id"] != table["neighbour"]).all()
    index = {face: i for i, face in enumerate(embedded.ids)}
    unit = embedded.vectors / np.linalg.norm(embedded.vectors, axis=1, keepdims=True)
    first = table[table["rank"] == 1]
    for row in first.head(10).itertuples():
        sims = unit @ unit[index[row.id]]
        sims[index[row.id]] = -np.inf
        assert sims.max() == pytest.approx(row.similarity, abs=1e-5)


def test_hard_pairs_on_a_hand_checked_case():
    vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.2, 1.0], [1.0, 0.02]])
    values = np.array([0, 0, 1, 1, -1])  # face 4 is missing: in no pair, though it is nearest to 0 and 1
    pairs = hard_pairs(vectors, values, k=2)
    assert [(i, j) for i, j, _ in pairs] == [(1, 3), (0, 3)]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert pairs[0][2] == pytest.approx(unit[1] @ unit[3])
    assert hard_pairs(vectors, np.array([1, 1, 1, 1, 1]), k=3) == []


def test_hard_pairs_of_the_run_cross_a_boundary_and_are_the_most_alike(embedded, grids_run):
    pairs = pd.read_csv(embedded.out_dir / "hard_pairs.csv", dtype={"id_a": str, "id_b": str})
    assert len(pairs) and (pairs["value_a"] != pairs["value_b"]).all()
    stored = np.load(embedded.out_dir / "embeddings.npz")
    unit = stored["vectors"] / np.linalg.norm(stored["vectors"], axis=1, keepdims=True)
    names = stored["label_names"].tolist()
    label = pairs["label"].iloc[0]
    values = stored["labels"][:, names.index(label)]
    sims = unit @ unit.T
    cross = (values[:, None] != values[None, :]) & np.isfinite(values)[:, None] & np.isfinite(values)[None, :]
    best = sims[np.triu(cross, 1)].max()
    top = pairs[(pairs["label"] == label) & (pairs["rank"] == 1)].iloc[0]
    assert top["similarity"] == pytest.approx(best, abs=1e-5)
    assert values[top["index_a"]] != values[top["index_b"]]


def test_a_given_dataset_is_embedded_whole_and_small_sets_project(grids_run, grids_dataset, tmp_path):
    result = embed_run(grids_run, grids_dataset, EmbedConfig(out=str(tmp_path / "all"), projections=("pca",),
                                                             neighbours=2))
    assert len(result.ids) == len(Dataset.load(grids_dataset).faces)
    assert set(result.files) >= {"embeddings.npz", "pca.png", "neighbours.csv", "hard_pairs.csv", "embed.html"}
    assert clipped_perplexity(30, 10) == 3.0 and clipped_perplexity(5, 1000) == 5.0
    xy = project(result.vectors[:7], "tsne", perplexity=30)
    assert xy.shape == (7, 2)
    assert np.array_equal(xy, project(result.vectors[:7], "tsne", perplexity=30))  # seeded


def test_the_panel_draws_every_face_in_a_browser(embedded, tmp_path):
    """Headless Chromium runs embed.html's script: one circle per face in each projection's panel."""
    import shutil
    import subprocess

    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                  None)
    if binary is None:
        pytest.skip("no Chromium binary found (Debian: apt-get install chromium)")
    page = embedded.out_dir / "embed.html"
    dom = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    panels = re.findall(r'<div class="panel" data-method="(\w+)">(.*?)</svg>', dom, re.S)
    assert [method for method, _ in panels] == ["pca", "tsne"]
    for method, body in panels:
        assert body.count("<circle") == len(embedded.ids), method
        assert len(set(re.findall(r'fill="(#[0-9a-f]{6})"', body))) >= 2, method  # coloured by the first label


def test_command_line_embeds_the_runs_test_split(grids_run, tmp_path, capsys):
    from faces_keras.cli import main

    out = tmp_path / "cli"
    assert main(["embed", str(grids_run.path), "--out", str(out), "--projections", "pca", "--neighbours", "2",
                 "--hard-pairs", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"-> {out}" in printed and "embed.html" in printed
    table = pd.read_csv(out / "neighbours.csv")
    assert table["rank"].max() == 2
    assert pd.read_csv(out / "hard_pairs.csv").groupby("label").size().max() <= 3
    assert not (out / "tsne.png").exists()


@pytest.mark.parametrize("preset", ["default", "sequential", "original-per-label"])
def test_the_embedding_layer_is_found_for_every_preset_and_head_mix(preset, tmp_path):
    import keras

    from faces_keras.inference.embed import embedding_model
    from faces_keras.labels.heads import Head
    from faces_keras.models.presets import ModelConfig, build_model
    from faces_keras.models.saving import load_keras_model

    sizes = {} if preset.startswith("original") else {"filters": 8, "blocks": 2}
    config = ModelConfig(preset=preset, augmentation=None, dense=0 if preset.startswith("original") else 12,
                         original_filters=(4, 4, 4) if preset.startswith("original") else None,
                         original_dense=10 if preset.startswith("original") else None, **sizes)
    x = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 1)).astype("float32")
    for heads in ([Head("labels", "binary", ("a", "b"), 2)],
                  [Head("labels", "binary", ("a",), 1), Head("age", "regression", ("age",), 1, 30.0, 10.0),
                   Head("race", "multiclass", ("race",), 3)]):
        path = tmp_path / f"{len(heads)}.keras"
        build_model(heads, (24, 24, 1), config).save(path)
        model = load_keras_model(path, compile=False)  # as a run's model.keras comes back
        vectors = embedding_model(model).predict(x, verbose=0)
        assert vectors.shape == (3, 10 if preset.startswith("original") else 12)
        outputs = model.predict(x, verbose=0)
        if len(heads) == 1:
            kernel, bias = model.get_layer("labels").get_weights()
            assert np.allclose(1 / (1 + np.exp(-(vectors @ kernel + bias))), outputs, atol=1e-5)
        else:
            kernel, bias = model.get_layer("age_standardised").get_weights()
            assert np.allclose((vectors @ kernel + bias) * 10.0 + 30.0, outputs["age"], atol=1e-4)
            kernel, bias = model.get_layer("race").get_weights()
            assert np.allclose(keras.ops.convert_to_numpy(keras.ops.softmax(vectors @ kernel + bias)),
                               outputs["race"], atol=1e-5)
