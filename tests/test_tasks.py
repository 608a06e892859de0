"""Beyond the five labels: 7-class emotion (FER-2013), multi-head UTKFace, merged datasets
with masked labels, and the residual preset, each on a few real faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_model

EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


# -- tiny real datasets -------------------------------------------------------------------

def _copy_fer(data_dir: Path, out: Path, train_per_class: int = 10, test_per_class: int = 3) -> Path:
    """A FER-2013 folder tree with the first few images of each emotion, train/ and test/."""
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for emotion in EMOTIONS:
            target = out / split / emotion
            target.mkdir(parents=True)
            for file in sorted((data_dir / "fer2013" / split / emotion).iterdir())[:count]:
                shutil.copy(file, target / file.name)
    return out


def _copy_utkface(data_dir: Path, out: Path, count: int = 60) -> Path:
    """``count`` UTKFace files spread over the folder (it is sorted by age, so not the first ones)."""
    files = sorted((data_dir / "utkface" / "crop_part1").iterdir())
    out.mkdir(parents=True)
    for file in files[:: max(1, len(files) // count)][:count]:
        shutil.copy(file, out / file.name)
    return out


def _prepare(schema, source, out, size=32, **config):
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset

    return prepare_dataset(schema, source, out, config=PrepareConfig(size=size, gray=True, workers=1, **config))


@pytest.fixture(scope="module")
def fer_tiny(tmp_path_factory, data_dir) -> Path:
    from faces_keras.labels import load_schema

    root = tmp_path_factory.mktemp("fer")
    source = _copy_fer(data_dir, root / "fer2013")
    # val 0.2 of 0.8 -> a quarter of train/ (about 2 faces per class); test/ stays the given split
    return _prepare(load_schema("fer2013"), source, root / "prepared", size=24, split=_split(0.2, 0.2))


@pytest.fixture(scope="module")
def utk_tiny(tmp_path_factory, data_dir) -> Path:
    from faces_keras.labels import load_schema

    root = tmp_path_factory.mktemp("utk")
    return _prepare(load_schema("utkface"), _copy_utkface(data_dir, root / "faces"), root / "prepared")


@pytest.fixture(scope="module")
def merged_tiny(tmp_path_factory, data_dir, utk_tiny) -> Path:
    """CelebA (sex, glasses) + UTKFace (sex, race): glasses masked on UTKFace faces, race on CelebA's."""
    from faces_keras.data.combine import combine_datasets
    from faces_keras.labels import load_schema

    root = tmp_path_factory.mktemp("merged")
    celeba = _prepare(load_schema("celeba_aligned").select(["sex", "glasses"]),
                      data_dir / "celeba_aligned" / "list_attr_celeba.txt", root / "celeba", limit=60)
    utk = _prepare(load_schema("utkface").select(["sex", "race"]),
                   _copy_utkface(data_dir, root / "utk_faces"), root / "utk")
    return combine_datasets([celeba, utk], root / "merged", names=["celeba", "utk"])


def _split(val, test):
    from faces_keras.data.split import SplitConfig

    return SplitConfig(val=val, test=test, seed=0)


def _train(dataset: Path, out: Path, callbacks=None, **overrides):
    from faces_keras.training.train import TrainConfig, train

    config = TrainConfig(dataset=str(dataset), model=tiny_model(), epochs=1, batch_size=16, verbose=0, **overrides)
    return train(config, out, callbacks=callbacks)


# -- merging datasets: schema and bookkeeping (synthetic pixels, real rules) ---------------------

def _write_part(path: Path, schema_dict: dict, rows: list[dict], shape=(16, 16, 1), seed=0) -> Path:
    from faces_keras.data.store import write_dataset
    from faces_keras.labels.schema import schema_from_dict

    schema = schema_from_dict(schema_dict)
    frame = pd.DataFrame(rows)
    frame = frame.assign(source_id=frame["id"], augmentation="identity", origin="synthetic", file="")
    frame = frame[["id", "source_id", "split", "augmentation", "origin", "file"] + schema.label_names]
    images = np.random.default_rng(seed).integers(0, 255, (len(frame), *shape), dtype=np.uint8)
    return write_dataset(path, images, frame, schema, {"size": shape[0], "gray": shape[-1] == 1})


SEX = {"kind": "binary", "names": ["F", "M"]}
GLASSES = {"kind": "binary"}
RACE = {"kind": "multiclass", "classes": ["white", "black", "asian", "indian", "other"]}


def _parts(tmp_path, b_labels=None, b_shape=(16, 16, 1)):
    a = _write_part(tmp_path / "a", {"name": "celeba", "format": "celeba-attributes",
                                     "labels": {"sex": SEX, "glasses": GLASSES}},
                    [{"id": "182638", "split": "train", "sex": 1, "glasses": 0},
                     {"id": "7", "split": "test", "sex": 0, "glasses": 1}])
    b = _write_part(tmp_path / "b", {"name": "utkface", "format": "utkface-filenames",
                                     "labels": b_labels or {"sex": SEX, "race": RACE, "age": {"kind": "regression"}}},
                    [{"id": "7", "split": "val", "sex": 1, "race": 2, "age": 31.0, "glasses": 0},
                     {"id": "8", "split": "train", "sex": 0, "race": 0, "age": 4.0, "glasses": 1}],
                    shape=b_shape, seed=1)
    return a, b


def test_merge_masks_the_labels_a_part_lacks_and_keeps_ids_unique(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.data.store import MANIFEST, Dataset
    import hashlib

    a, b = _parts(tmp_path)
    merged = Dataset.load(combine_datasets([a, b], tmp_path / "m"))
    faces = merged.faces.set_index("id").sort_index()
    assert merged.schema.label_names == ["sex", "glasses", "race", "age"]
    assert merged.schema.options["combined_from"] == ["celeba", "utkface"]
    # the same raw id "7" in both parts stays two faces
    assert list(faces.index) == ["celeba:182638", "celeba:7", "utkface:7", "utkface:8"]
    assert list(faces["source_id"]) == list(faces.index)
    assert list(faces["part"]) == ["celeba", "celeba", "utkface", "utkface"]
    assert list(faces["split"]) == ["train", "test", "val", "train"]
    assert list(faces["glasses"]) == [0, 1, -1, -1]
    assert list(faces["race"]) == [-1, -1, 2, 0]
    assert faces.loc[["celeba:182638", "celeba:7"], "age"].isna().all()
    assert faces.loc["utkface:7", "age"] == pytest.approx(31.0)
    assert list(faces["sex"]) == [1, 0, 1, 0]
    # pixels follow their rows, whatever the interleaving
    originals = {f"{name}:{i}": image for name, path in (("celeba", a), ("utkface", b))
                 for i, image in zip(Dataset.load(path).faces["id"], Dataset.load(path).images)}
    for row in merged.faces.itertuples():
        assert np.array_equal(merged.images[row.index], originals[row.id])
    parts = merged.manifest["parts"]
    assert [p["count"] for p in parts] == [2, 2]
    assert parts[0]["manifest_sha256"] == hashlib.sha256((a / MANIFEST).read_bytes()).hexdigest()[:16]
    assert parts[1]["splits"] == {"train": 1, "val": 1, "test": 0}
    assert merged.manifest["balance"]["train"]["glasses"]["missing"] == 1


def test_merge_interleaves_the_parts_so_batches_mix_them(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.data.store import Dataset, write_dataset
    from faces_keras.labels.schema import schema_from_dict

    paths = []
    for name, label in (("p", "glasses"), ("q", "race")):
        schema = schema_from_dict({"name": name, "format": "delimited", "labels": {label: GLASSES}})
        frame = pd.DataFrame({"id": [str(i) for i in range(200)], "split": "val"})
        frame = frame.assign(source_id=frame["id"], augmentation="identity", origin="", file="", **{label: 1})
        paths.append(write_dataset(tmp_path / name, np.zeros((200, 4, 4, 1), np.uint8), frame, schema, {}))
    faces = Dataset.load(combine_datasets(paths, tmp_path / "m")).faces
    # every batch of 32 validation faces holds faces of both parts
    for start in range(0, 400, 32):
        assert faces["part"].iloc[start:start + 32].nunique() == 2


def test_merge_refuses_a_label_that_means_different_things(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.errors import SchemaError

    a, b = _parts(tmp_path, b_labels={"sex": SEX, "glasses": RACE})
    with pytest.raises(SchemaError, match=r"'glasses'.*'celeba'.*'utkface'"):
        combine_datasets([a, b], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_merge_refuses_binary_labels_with_swapped_values(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.errors import SchemaError

    a, b = _parts(tmp_path, b_labels={"sex": {"kind": "binary", "names": ["M", "F"]}})
    with pytest.raises(SchemaError, match=r"'sex'.*\['F', 'M'\].*\['M', 'F'\]"):
        combine_datasets([a, b], tmp_path / "m")


def test_merge_refuses_images_of_different_shapes(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.errors import DatasetError

    a, b = _parts(tmp_path, b_shape=(16, 16, 3))
    with pytest.raises(DatasetError, match=r"\(16, 16, 1\).*\(16, 16, 3\).*--size and --color"):
        combine_datasets([a, b], tmp_path / "m")


def test_merge_names_must_be_one_per_part_and_unique(tmp_path):
    from faces_keras.data.combine import combine_datasets
    from faces_keras.errors import DatasetError

    a, b = _parts(tmp_path)
    with pytest.raises(DatasetError, match="not unique"):
        combine_datasets([a, b], tmp_path / "m", names=["x", "x"])
    with pytest.raises(DatasetError, match="one name per dataset"):
        combine_datasets([a, b], tmp_path / "m", names=["x"])
    with pytest.raises(DatasetError, match="two or more"):
        combine_datasets([a], tmp_path / "m")


def test_merge_command_prints_the_parts(tmp_path, capsys):
    from faces_keras.cli import main
    from faces_keras.data.store import Dataset

    a, b = _parts(tmp_path)
    assert main(["dataset", "merge", str(tmp_path / "m"), str(a), str(b), "--names", "c,u"]) == 0
    printed = capsys.readouterr().out
    assert "merged 4 faces" in printed and "glasses" in printed
    assert Dataset.load(tmp_path / "m").faces["id"].str.startswith(("c:", "u:")).all()


# -- masked labels are really ignored by training ---------------------------------------------

def test_masked_labels_add_nothing_to_the_loss_of_a_merged_model(tmp_path, merged_tiny):
    import keras

    import faces_keras.models.heads  # noqa: F401  (registers the masked losses for loading)
    from faces_keras.data.store import Dataset
    from faces_keras.models.heads import make_targets, plan_heads

    run = _train(merged_tiny, tmp_path / "run")
    history = pd.read_csv(run / "history.csv")
    for column in ("labels_loss", "race_loss", "val_labels_loss", "val_race_loss"):
        assert np.isfinite(history[column]).all(), column

    dataset = Dataset.load(merged_tiny)
    heads = plan_heads(dataset.schema)
    assert [(h.name, h.labels) for h in heads] == [("labels", ("sex", "glasses")), ("race", ("race",))]
    model = keras.saving.load_model(run / "model.keras")
    part = {name: (dataset.faces["part"] == name).to_numpy() for name in ("celeba", "utk")}

    def losses(name):
        x = dataset.images[part[name]].astype("float32")
        targets = make_targets(dataset.faces[part[name]], heads)
        # one batch, so the loss is exactly that batch's mean over labelled entries
        return model.evaluate(x, targets, batch_size=len(x), verbose=0, return_dict=True), x, targets

    before_utk, x_utk, y_utk = losses("utk")
    before_celeba, _, _ = losses("celeba")
    assert (y_utk["labels"][:, 1] == -1).all()  # UTKFace does not label glasses

    # Loss on UTKFace faces = cross-entropy of sex alone: glasses adds nothing, and the
    # mean is over labelled entries (a diluted mean would be half of it).
    p_sex = np.clip(model.predict(x_utk, verbose=0)["labels"][:, 0], 1e-7, 1 - 1e-7)
    y_sex = y_utk["labels"][:, 0]
    expected = -np.mean(y_sex * np.log(p_sex) + (1 - y_sex) * np.log(1 - p_sex))
    assert before_utk["labels_loss"] == pytest.approx(expected, rel=1e-4)
    assert before_celeba["race_loss"] == pytest.approx(0.0, abs=1e-7)  # CelebA does not label race

    # Push the glasses output far away: CelebA's loss must move, UTKFace's must not.
    dense = model.get_layer("labels")
    kernel, bias = dense.get_weights()
    kernel[:, 1] = np.random.default_rng(0).normal(0, 1, kernel.shape[0])
    bias[1] = 6.0
    dense.set_weights([kernel, bias])
    after_utk, _, _ = losses("utk")
    after_celeba, _, _ = losses("celeba")
    assert after_celeba["labels_loss"] > before_celeba["labels_loss"] + 0.05
    assert after_utk["labels_loss"] == pytest.approx(before_utk["labels_loss"], rel=1e-6)
    assert after_utk["race_loss"] == pytest.approx(before_utk["race_loss"], rel=1e-6)


# -- FER-2013: seven classes, metrics and confusion matrices ------------------------------------

def test_fer_multiclass_metrics_and_confusion_matrices(tmp_path, fer_tiny):
    from faces_keras.data.store import Dataset
    from faces_keras.io import read_json
    from faces_keras.training.callbacks import confusion_callbacks
    from faces_keras.rundir import RunDir

    dataset = Dataset.load(fer_tiny)
    counts = dataset.faces["split"].value_counts()
    assert counts["test"] == 7 * 3  # the given test/ folder is the test split
    assert (dataset.faces.loc[dataset.faces["split"] == "test", "id"].str.startswith("test/")).all()

    out = tmp_path / "run"
    run = _train(fer_tiny, out, callbacks=confusion_callbacks(fer_tiny, (), out))
    metrics = read_json(run / "metrics.json")["heads"]["emotion"]
    assert metrics["kind"] == "multiclass"
    preds = RunDir(run.path).load_predictions()
    for split in ("val", "test"):
        result = metrics[split]
        truth = preds[f"{split}/emotion/true"]
        predicted = preds[f"{split}/emotion"].argmax(axis=1)
        confusion = np.asarray(result["confusion"])
        assert confusion.shape == (7, 7)
        assert confusion.sum() == result["n"] == len(truth) == counts[split]
        assert np.array_equal(confusion.sum(axis=1), np.bincount(truth, minlength=7))
        assert np.array_equal(confusion.sum(axis=0), np.bincount(predicted, minlength=7))
        assert result["accuracy"] == pytest.approx(np.mean(truth == predicted))
        per_class = pd.DataFrame(result["per_class"])
        assert list(per_class["class"]) == EMOTIONS
        assert 0.0 <= result["macro_f1"] <= 1.0

    # the per-epoch logger saw the same weights as the saved model (one epoch)
    logged = read_json(out / "confusion_emotion.json")
    assert logged["classes"] == EMOTIONS and [e["epoch"] for e in logged["epochs"]] == [1]
    assert np.array_equal(np.asarray(logged["epochs"][0]["matrix"]), np.asarray(metrics["val"]["confusion"]))
    rows = pd.read_csv(out / "confusion_emotion.csv")
    assert len(rows) == 49 and rows["count"].sum() == counts["val"]


def test_confusion_logger_counts_and_skips_missing(tmp_path):
    import keras

    from faces_keras.io import read_json
    from faces_keras.training.callbacks import ConfusionMatrixLogger

    # A model that predicts class 2 for every face, whatever it sees.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.layers[0].set_weights([np.zeros((4, 3)), np.array([0.0, 0.0, 5.0])])
    y = np.array([0, 1, 2, 2, -1])
    logger = ConfusionMatrixLogger(np.ones((5, 4), "float32"), y, "emotion", ["a", "b", "c"], tmp_path)
    logger.set_model(model)
    logger.on_epoch_end(0)
    logger.on_epoch_end(1)
    saved = read_json(tmp_path / "confusion_emotion.json")
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    assert saved["epochs"][0]["matrix"] == [[0, 0, 1], [0, 0, 1], [0, 0, 2]]
    assert saved["epochs"][0]["n"] == 4 and saved["epochs"][0]["accuracy"] == pytest.approx(0.5)
    assert saved["epochs"][0]["recall"] == {"a": 0.0, "b": 0.0, "c": 1.0}


# -- UTKFace: one model, four heads -----------------------------------------------------------

def test_utkface_multi_head_losses_and_metrics_per_head(tmp_path, utk_tiny):
    from faces_keras.io import read_json

    run = _train(utk_tiny, tmp_path / "run")
    history = pd.read_csv(run / "history.csv")
    for head in ("labels", "race", "age_band", "age"):
        for column in (f"{head}_loss", f"val_{head}_loss"):
            assert column in history and np.isfinite(history[column]).all(), column
    assert "val_age_mae" in history and "val_race_accuracy" in history
    heads = read_json(run / "metrics.json")["heads"]
    assert {h: heads[h]["kind"] for h in heads} == {"labels": "binary", "race": "multiclass",
                                                    "age_band": "multiclass", "age": "regression"}
    assert [row["label"] for row in heads["labels"]["test"]] == ["sex"]
    assert len(heads["race"]["test"]["confusion"]) == 5
    assert len(heads["age_band"]["test"]["confusion"]) == 9
    assert np.isfinite(heads["age"]["test"]["mae"]) and heads["age"]["test"]["mae"] > 0


# -- the residual preset ----------------------------------------------------------------------

def test_residual_preset_shapes_and_skip_connections():
    import keras

    from faces_keras.labels import load_schema
    from faces_keras.models.heads import plan_heads
    from faces_keras.models.presets import build_model

    heads = plan_heads(load_schema("utkface"))
    model = build_model(heads, (64, 64, 1), tiny_model(preset="residual", blocks=3))
    out = model(np.zeros((2, 64, 64, 1), "float32"))
    assert {name: tuple(out[name].shape) for name in out} == {"labels": (2, 1), "race": (2, 5),
                                                              "age_band": (2, 9), "age": (2, 1)}
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 2 * (3 - 1)  # two residual blocks per stage after the stem
    # a skip connection: one input of the Add comes straight from the block's input,
    # not through the block's two convolutions
    first = adds[0]
    sources = [t._keras_history.operation for t in first.input]
    assert any(isinstance(op, keras.layers.ReLU) or isinstance(op, keras.layers.MaxPooling2D) for op in sources)
    assert any(isinstance(op, keras.layers.BatchNormalization) for op in sources)
