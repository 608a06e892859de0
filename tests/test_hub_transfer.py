"""Transfer learning from a local keras-hub preset: ``train DATA --init-from PRESET_DIR``.

The presets are tiny keras-hub ResNets built and saved here with
``Backbone.save_to_preset``; nothing is downloaded.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from faces_keras.cli import main  # noqa: E402
from faces_keras.errors import RunError  # noqa: E402
from faces_keras.labels import load_schema  # noqa: E402
from faces_keras.models.heads import plan_heads  # noqa: E402
from faces_keras.models.hub import build_hub_model, hub_backbone_of  # noqa: E402
from faces_keras.models.saving import load_keras_model, load_run_model  # noqa: E402
from faces_keras.rundir import RunDir  # noqa: E402
from faces_keras.training.transfer import backbone_layers, build_transfer_model, set_backbone_trainable  # noqa: E402
from tests.conftest import tiny_model  # noqa: E402

TINY = ["--no-augmentation", "--batch-size", "32", "--max-train", "64"]


def save_tiny_preset(folder, channels: int, seed: int = 0):
    """A keras-hub ResNet of one 64-filter basic block (75 k parameters), saved as a preset; its weights."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
        stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
        image_shape=(None, None, channels))
    # Moving statistics other than the initial 0 and 1, so a frozen epoch that updated them would show.
    backbone.set_weights([w + np.random.default_rng(seed).normal(0, 0.05, w.shape).astype(w.dtype) ** 2
                          for w in backbone.get_weights()])
    backbone.save_to_preset(str(folder))
    return [np.array(w) for w in backbone.get_weights()]


@pytest.fixture(scope="module")
def gray_preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub") / "resnet_gray"
    return folder, save_tiny_preset(folder, channels=1)


def same_weights(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


@pytest.mark.backend_subset
def test_hub_model_holds_the_saved_backbone_and_fresh_heads_for_the_schema(gray_preset, tmp_path):
    folder, saved = gray_preset
    assert sorted(p.name for p in folder.iterdir()) >= ["config.json", "metadata.json", "model.weights.h5"]
    heads = plan_heads(load_schema("utkface"))  # binary, two multi-class and a regression head
    model = build_hub_model(heads, (64, 64, 1), tiny_model(dropout=0.2), folder)
    hub = hub_backbone_of(model)
    assert type(hub.backbone).__name__ == "ResNetBackbone"
    assert same_weights(hub.backbone.get_weights(), saved)
    # One output per head, of the head's width; the hub backbone is the model's only backbone layer.
    assert sorted(model.output_names) == sorted(h.name for h in heads)
    shapes = {name: tuple(shape) for name, shape in zip(model.output_names, model.output_shape)}
    assert shapes == {h.name: (None, h.units) for h in heads}
    assert backbone_layers(model) == [hub]
    assert model.get_layer("dropout").rate == 0.2
    head_layers = [h.name for h in heads] + ["age_standardised"]
    head_weights = sum(int(np.prod(w.shape)) for name in head_layers for w in model.get_layer(name).trainable_weights)
    assert set_backbone_trainable(model, False)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == head_weights
    faces = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype("float32")
    out = model.predict(faces, verbose=0)
    assert all(np.all((out[h.name] >= 0) & (out[h.name] <= 1)) for h in heads if h.kind != "regression")
    # Saved and loaded back, the backbone is still frozen, inside as well as outside.
    model.save(tmp_path / "m.keras")
    again = load_keras_model(tmp_path / "m.keras", compile=False)
    inner = hub_backbone_of(again).backbone
    assert not hub_backbone_of(again).trainable and not any(layer.trainable for layer in inner.layers)
    assert same_weights(inner.get_weights(), saved)
    assert all(np.allclose(again.predict(faces, verbose=0)[k], out[k], atol=1e-5) for k in out)


def test_gray_faces_meet_an_rgb_backbone_and_rgb_faces_a_gray_one_are_refused(gray_preset, tmp_path):
    heads = plan_heads(load_schema("grids").select(["glasses"]))
    rgb = tmp_path / "resnet_rgb"
    saved = save_tiny_preset(rgb, channels=3, seed=1)
    model = build_hub_model(heads, (32, 32, 1), tiny_model(), rgb)
    assert model.get_layer("gray_to_rgb").output.shape[-1] == 3
    assert same_weights(hub_backbone_of(model).backbone.get_weights(), saved)
    gray = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 1)).astype("float32")
    # The gray face goes in as the RGB face whose three channels are that gray.
    plain = keras.Model(model.input, model.get_layer("hub_backbone").output)(gray)
    by_hand = hub_backbone_of(model).backbone(np.repeat(gray / 255, 3, axis=-1))
    assert np.allclose(keras.ops.convert_to_numpy(plain), keras.ops.convert_to_numpy(by_hand), atol=1e-5)
    with pytest.raises(RunError, match="takes 1-channel images, the dataset's faces have 3"):
        build_hub_model(heads, (32, 32, 3), tiny_model(), gray_preset[0])


def test_train_from_a_preset_freezes_then_fine_tunes_resumes_and_loads_back(tmp_path, grids_dataset,
                                                                             gray_preset, monkeypatch):
    folder, saved = gray_preset
    run = tmp_path / "run"
    args = ["train", str(grids_dataset), "--out", str(run), "--init-from", str(folder), "--freeze-epochs", "1",
            "--epochs", "2", *TINY]
    # Ctrl-C while the second epoch's last.keras is written: the first (frozen) epoch is committed.
    real_save, saves = keras.Model.save, []

    def save(self, filepath, *a, **kw):
        if str(filepath).split("/")[-1].startswith(".last"):
            saves.append(filepath)
            if len(saves) == 2:
                raise KeyboardInterrupt
        return real_save(self, filepath, *a, **kw)

    monkeypatch.setattr(keras.Model, "save", save)
    assert main(args) == 130
    monkeypatch.setattr(keras.Model, "save", real_save)
    frozen = load_keras_model(run / "checkpoints" / "last.keras")
    hub = hub_backbone_of(frozen)
    assert not hub.trainable and not any(layer.trainable for layer in hub.backbone.layers)
    # The frozen epoch left every backbone weight as saved, batch-norm statistics included ...
    assert same_weights(hub.backbone.get_weights(), saved)
    # ... and trained the head: the optimizer stepped (2 steps of 32 faces) on the head's weights only.
    assert int(frozen.optimizer.iterations) == 2
    assert [v.path for v in frozen.trainable_variables] == [v.path for v in frozen.get_layer("labels").weights]

    assert main(["train", "--resume", str(run)]) == 0
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1"]
    last = load_keras_model(run / "checkpoints" / "last.keras")
    tuned = hub_backbone_of(last)
    assert tuned.trainable and all(layer.trainable for layer in tuned.backbone.layers)
    kernels = [(np.asarray(w), s) for w, s in zip(tuned.backbone.weights, saved) if w.path.endswith("kernel")]
    assert all(not np.array_equal(w, s) for w, s in kernels)  # the unfrozen epoch fine-tuned the backbone

    config = RunDir(run).read_config()
    assert config["init_from"] == str(folder)
    assert config["backbone"]["from"] == "keras-hub preset" and config["backbone"]["path"] == str(folder.resolve())
    assert config["backbone"]["class"] == "ResNetBackbone"
    assert config["backbone"]["parameter_count"] == json.loads((folder / "metadata.json").read_text())[
        "parameter_count"]
    model = load_run_model(run)
    faces = np.load(grids_dataset / "images.npy", mmap_mode="r")[:4].astype("float32")
    probs = np.asarray(model.predict(faces, verbose=0))
    assert probs.shape == (4, 5) and np.all((probs >= 0) & (probs <= 1))
    assert (run / "metrics.json").is_file()

    # That run passes its keras-hub backbone on: fresh heads, the run's backbone weights.
    heads = plan_heads(load_schema("grids").select(["hat"]))
    again = build_transfer_model(heads, (64, 64, 1), tiny_model(), run)
    assert same_weights(hub_backbone_of(again).backbone.get_weights(), hub_backbone_of(model).backbone.get_weights())
    assert again.output_shape == (None, 1)


def test_a_source_that_is_no_preset_is_refused_in_one_line(tmp_path, grids_dataset, capsys, monkeypatch):
    run = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    not_hub = tmp_path / "not_hub"
    not_hub.mkdir()
    (not_hub / "config.json").write_text('{"hello": 1}')
    for source, expected in [(tmp_path / "nothing", "keras-hub preset directory"),
                             (empty, "keras-hub preset directory"),
                             ("hf://someone/resnet", "keras-hub preset directory"),
                             (not_hub, "not a keras-hub backbone config")]:
        assert main(["train", str(grids_dataset), "--out", str(run), "--init-from", str(source),
                     "--epochs", "1", *TINY]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(source) in err and expected in err, err
        assert not run.exists()
    monkeypatch.setitem(__import__("sys").modules, "keras_hub", None)  # keras-hub not installed
    folder = tmp_path / "preset"
    folder.mkdir()
    (folder / "config.json").write_text('{"registered_name": "keras_hub>ResNetBackbone"}')
    assert main(["train", str(grids_dataset), "--out", str(run), "--init-from", str(folder), "--epochs", "1",
                 *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install --no-deps keras-hub" in err, err
