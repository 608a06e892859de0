"""Every preset builds for binary, multi-class and multi-head schemas; masked labels cost nothing."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from faces_keras.labels import load_schema
from faces_keras.labels.heads import plan_heads
from faces_keras.models.config import ModelConfig
from faces_keras.models.presets import build_model, compile_model
from faces_keras.models.heads import (MaskedBinaryCrossentropy, MaskedHuber, MaskedPrecision,
                                      MaskedSparseCategoricalCrossentropy, class_balance_weights)

SCHEMAS = {
    "binary": ("grids", (64, 64, 1), {"labels": (5,)}),
    "multiclass": ("fer2013", (48, 48, 1), {"emotion": (7,)}),
    "multihead": ("utkface", (64, 64, 3), {"labels": (1,), "race": (5,), "age_band": (9,), "age": (1,)}),
}


def _outputs(model, x):
    out = model(x, training=False)
    return out if isinstance(out, dict) else {model.layers[-1].name: out}


@pytest.mark.parametrize("preset", ["default", "residual", "xception", "sequential", "original-per-label"])
@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_preset_output_shapes(preset, kind):
    schema_name, shape, expected = SCHEMAS[kind]
    heads = plan_heads(load_schema(schema_name))
    model = build_model(heads, shape, ModelConfig(preset=preset))
    x = np.random.default_rng(0).integers(0, 255, (3, *shape)).astype("float32")
    out = _outputs(model, x)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == expected
    for head in heads:
        values = np.asarray(out[head.name])
        if head.kind == "binary":
            assert ((values >= 0) & (values <= 1)).all()
        elif head.kind == "multiclass":
            assert np.allclose(values.sum(axis=1), 1.0, atol=1e-5)


def test_single_head_presets_are_sequential_and_original_matches_the_paper():
    import keras

    heads = plan_heads(load_schema("grids").select(["glasses"]))
    per_label = build_model(heads, (64, 64, 1), ModelConfig(preset="original-per-label"))
    assert isinstance(per_label, keras.Sequential)
    convs = [l for l in per_label.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (2, 2)), (128, (2, 2))]
    # 64 -> conv3 62 -> pool 31 -> conv2 30 -> pool 15 -> conv2 14: Flatten gives 14*14*128 features
    expected = (9 * 32 + 32) + (4 * 32 * 64 + 64) + (4 * 64 * 128 + 128) + (14 * 14 * 128 * 256 + 256) + 257
    assert per_label.count_params() == expected  # 6.5 M, nearly all in Dense(256) after Flatten
    sequential = build_model(heads, (64, 64, 1), ModelConfig(preset="sequential"))
    assert isinstance(sequential, keras.Sequential) and sequential.count_params() < 200_000
    # The stride-2 stem and pool: the conv blocks work at a quarter of the input size.
    first_block = [l for l in sequential.layers if isinstance(l, keras.layers.Conv2D)][1]
    assert tuple(first_block.output.shape[1:3]) == (16, 16)


def test_default_preset_is_the_small_resnet_with_skip_connections():
    import keras

    heads = plan_heads(load_schema("grids"))
    default = build_model(heads, (64, 64, 1), ModelConfig())
    assert ModelConfig().preset == "default" and (ModelConfig().filters, ModelConfig().blocks) == (16, 4)
    adds = [l for l in default.layers if isinstance(l, keras.layers.Add)]
    assert len(adds) == 6  # 3 stages x 2 residual blocks
    assert default.count_params() < 200_000
    same = build_model(heads, (64, 64, 1), ModelConfig(preset="residual"))
    assert same.count_params() == default.count_params()


@pytest.mark.slow
def test_original_all_label_size():
    heads = plan_heads(load_schema("grids"))
    model = build_model(heads, (64, 64, 1), ModelConfig(preset="original-all-label"))
    assert 129e6 < model.count_params() < 131e6


def test_masked_binary_loss_ignores_missing_entries():
    loss = MaskedBinaryCrossentropy()
    y = np.array([[1, 0, -1], [0, -1, -1]], dtype="float32")
    p1 = np.array([[0.8, 0.3, 0.5], [0.1, 0.9, 0.2]], dtype="float32")
    p2 = p1.copy()
    p2[y < 0] = [0.01, 0.99, 0.7]  # only the masked predictions change
    assert np.isclose(float(loss(y, p1)), float(loss(y, p2)))
    labelled = -(np.log(0.8) + np.log(0.7) + np.log(0.9)) / 3  # mean over the 3 labelled entries
    assert np.isclose(float(loss(y, p1)), labelled, atol=1e-5)
    # a face with nothing labelled adds nothing either
    y3, p3 = np.vstack([y, [[-1, -1, -1]]]), np.vstack([p1, [[0.5, 0.5, 0.5]]])
    assert np.isclose(float(loss(y3, p3.astype("float32"))), labelled, atol=1e-5)


def test_masked_categorical_and_regression_losses():
    ce = MaskedSparseCategoricalCrossentropy()
    y = np.array([2, -1, 0])
    p = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]], dtype="float32")
    q = p.copy()
    q[1] = [0.9, 0.05, 0.05]
    assert np.isclose(float(ce(y, p)), float(ce(y, q)))
    assert np.isclose(float(ce(y, p)), -(np.log(0.7) + np.log(0.6)) / 2, atol=1e-5)
    huber = MaskedHuber(delta=5.0)
    yr = np.array([[30.0], [np.nan]], dtype="float32")
    assert np.isclose(float(huber(yr, np.array([[32.0], [99.0]], "float32"))), 0.5 * 4, atol=1e-5)


def test_masked_metric_counts_only_labelled_entries():
    metric = MaskedPrecision()
    metric.update_state(np.array([[1, -1], [0, -1]], "float32"), np.array([[0.9, 0.9], [0.8, 0.9]], "float32"))
    assert np.isclose(float(metric.result()), 0.5)  # 1 TP, 1 FP; the masked column's 0.9s ignored


def test_class_weights_balance_from_training_targets():
    heads = plan_heads(load_schema("utkface").select(["sex", "race"]))
    targets = {"labels": np.array([[1], [0], [0], [0], [-1]], "float32"), "race": np.array([0, 0, 0, 1, -1])}
    weights = class_balance_weights(targets, heads)
    assert weights["labels"] == [3.0]
    assert weights["race"][0] == pytest.approx(4 / (5 * 3)) and weights["race"][1] == pytest.approx(4 / 5)


@pytest.mark.backend_subset
def test_multihead_training_step_reports_loss_per_head():
    heads = plan_heads(load_schema("utkface").select(["sex", "race", "age"]))
    model = compile_model(build_model(heads, (32, 32, 3), ModelConfig(filters=4, blocks=2, augmentation=None)), heads)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (16, 32, 32, 3)).astype("float32")
    y = {"labels": rng.integers(-1, 2, (16, 1)).astype("float32"), "race": rng.integers(-1, 5, 16),
         "age": rng.uniform(1, 80, (16, 1)).astype("float32")}
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for name in ("labels_loss", "race_loss", "age_loss", "race_accuracy", "age_mae"):
        assert name in history.history, sorted(history.history)
    assert np.isfinite(history.history["loss"][0])
    assert ops.convert_to_numpy(model.predict(x, verbose=0)["race"]).shape == (16, 5)


def test_huber_scale_measures_errors_in_standard_deviations():
    yr = np.array([[30.0], [np.nan]], dtype="float32")
    pred = np.array([[32.0], [99.0]], "float32")
    # 2 years off with a 4-year standard deviation is half a unit: 0.5 * 0.5**2.
    assert np.isclose(float(MaskedHuber(scale=4.0)(yr, pred)), 0.125, atol=1e-6)
    # Beyond delta the loss grows linearly: 40 years / 4 = 10 units -> 1 * (10 - 0.5).
    assert np.isclose(float(MaskedHuber(scale=4.0)(yr, pred + 38.0)), 9.5, atol=1e-5)


def test_regression_head_is_standardised_from_training_targets_and_predicts_in_label_units():
    from faces_keras.models.heads import standardise_heads

    heads = plan_heads(load_schema("utkface").select(["sex", "age"]))
    ages = np.array([[20.0], [40.0], [np.nan], [60.0]], "float32")
    heads = standardise_heads(heads, {"labels": np.zeros((4, 1), "float32"), "age": ages})
    age = next(h for h in heads if h.name == "age")
    assert age.center == pytest.approx(40.0) and age.scale == pytest.approx(np.std([20, 40, 60]))
    model = build_model(heads, (32, 32, 1), ModelConfig(filters=4, blocks=2, augmentation=None))
    dense = model.get_layer("age_standardised")
    kernel, bias = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.full_like(bias, 1.5)])  # 1.5 standard deviations
    out = model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)["age"]
    assert np.allclose(ops.convert_to_numpy(out), 40.0 + 1.5 * age.scale)


def test_head_weights_scale_each_heads_share_of_the_total_loss():
    heads = plan_heads(load_schema("utkface").select(["sex", "race"]))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (8, 32, 32, 1)).astype("float32")
    y = {"labels": rng.integers(0, 2, (8, 1)).astype("float32"), "race": rng.integers(0, 5, 8)}
    config = ModelConfig(filters=4, blocks=2, augmentation=None)
    model = compile_model(build_model(heads, (32, 32, 1), config), heads, head_weights={"race": 0.25})
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isclose(logs["loss"], logs["labels_loss"] + 0.25 * logs["race_loss"], rtol=1e-4)
    with pytest.raises(ValueError, match="agee"):
        compile_model(build_model(heads, (32, 32, 1), config), heads, head_weights={"agee": 1.0})


def _bn_net(norm_layer, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(norm_layer(momentum=0.9)(x))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    return model


@pytest.mark.backend_subset
def test_fast_batch_norm_trains_exactly_as_keras_batch_norm():
    # Same start, the same three SGD steps: every weight (hence every gradient)
    # and both moving statistics agree with Keras's layer to float32 rounding.
    import keras

    from faces_keras.models.layers import FastBatchNormalization

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(16, 8, 8, 3)) * 4 + 2).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    ours, theirs = _bn_net(FastBatchNormalization), _bn_net(keras.layers.BatchNormalization)
    theirs.set_weights(ours.get_weights())
    start = [w.copy() for w in ours.get_weights()]
    for _ in range(3):
        ours.train_on_batch(x, y)
        theirs.train_on_batch(x, y)
    assert not np.allclose(theirs.get_weights()[0], start[0])  # the steps moved the convolution
    for mine, keras_w in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, keras_w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_residual_stem_order_follows_the_setting_and_saves_and_loads(tmp_path):
    import keras

    from faces_keras.models.saving import load_keras_model

    heads = plan_heads(load_schema("grids"))
    kinds = {}
    for stem in ("pool-first", "norm-first"):
        model = build_model(heads, (64, 64, 1), ModelConfig(stem=stem))
        kinds[stem] = [type(l).__name__ for l in model.layers[3:6]]  # after the input, augmentation, rescale
        assert model.count_params() == build_model(heads, (64, 64, 1), ModelConfig()).count_params()
    assert kinds["pool-first"] == ["Conv2D", "MaxPooling2D", "FastBatchNormalization"]
    assert kinds["norm-first"] == ["Conv2D", "FastBatchNormalization", "ReLU"]
    with pytest.raises(Exception, match="stem"):
        ModelConfig(stem="pool-last")
    # The suite's own layers (fused augmentation, fast batch norm) come back from a saved file.
    model = compile_model(build_model(heads, (64, 64, 1), ModelConfig()), heads)
    x = np.random.default_rng(1).integers(0, 255, (4, 64, 64, 1)).astype("float32")
    model.train_on_batch(x, np.ones((4, 5), "float32"))
    model.save(tmp_path / "m.keras")
    back = load_keras_model(tmp_path / "m.keras")
    assert type(back.get_layer("augmentation").layers[0]).__name__ == "RandomFaceAffine"
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert isinstance(back.layers[4], keras.layers.MaxPooling2D)


def test_compile_model_passes_jit_compile_to_keras():
    import keras

    heads = plan_heads(load_schema("grids"))
    plain = ModelConfig(filters=4, blocks=2, augmentation=None)
    assert compile_model(build_model(heads, (32, 32, 1), plain), heads, jit_compile=True).jit_compile is True
    assert compile_model(build_model(heads, (32, 32, 1), plain), heads, jit_compile=False).jit_compile is False
    # TensorFlow's XLA cannot compile the augmentation's warp: Keras falls back (with a warning).
    augmented = build_model(heads, (32, 32, 1), ModelConfig(filters=4, blocks=2))
    with pytest.warns(UserWarning) if keras.backend.backend() == "tensorflow" else _no_warning():
        compiled = compile_model(augmented, heads, jit_compile=True)
    assert compiled.jit_compile is (keras.backend.backend() != "tensorflow")


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_xception_keeps_small_faces_at_full_resolution_and_halves_large_ones():
    import keras

    heads = plan_heads(load_schema("fer2013"))

    def first_separable_input(size):
        model = build_model(heads, (size, size, 1), ModelConfig(preset="xception"))
        layer = next(l for l in model.layers if isinstance(l, keras.layers.SeparableConv2D))
        return layer.input.shape[1], model

    assert first_separable_input(48)[0] == 48  # not quartered as the residual stem would (12)
    assert first_separable_input(96)[0] == 48
    size, model = first_separable_input(64)
    assert size == 64
    separable = [l for l in model.layers if isinstance(l, keras.layers.SeparableConv2D)]
    assert [l.filters for l in separable] == [16, 16, 32, 32, 64, 64, 128, 128]  # mini-Xception's widths
    assert 40_000 < model.count_params() < 80_000
    assert ModelConfig(preset="xception", stem="half").stem_for(48) == "half"


@pytest.mark.backend_subset
def test_strided_projection_equals_a_strided_1x1_convolution_and_trains_at_48x48():
    import keras

    from faces_keras.models.presets import _strided_projection

    # The subsampled 1x1 convolution replaces Conv2D(strides=2), whose oneDNN training kernel corrupts the
    # heap on 48x48 maps in TensorFlow 2.21: same numbers from the same kernel.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 48, 48, 8)).astype("float32")
    inputs = keras.Input((48, 48, 8))
    ours = keras.Model(inputs, _strided_projection(inputs, 16))
    strided = keras.layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)
    strided.build((None, 48, 48, 8))
    conv = next(l for l in ours.layers if isinstance(l, keras.layers.Conv2D))
    strided.set_weights(conv.get_weights())
    bn = next(l for l in ours.layers if isinstance(l, keras.layers.BatchNormalization))
    reference = keras.Sequential([keras.Input((48, 48, 8)), strided, bn])
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5)
    # A few training steps of the xception preset on 48x48 faces: the strided kernel aborted here.
    heads = plan_heads(load_schema("fer2013"))
    model = compile_model(build_model(heads, (48, 48, 1), ModelConfig(preset="xception", augmentation=None)), heads)
    faces = rng.integers(0, 255, (16, 48, 48, 1)).astype("float32")
    labels = rng.integers(0, 7, 16).astype("float32")
    losses = [float(np.ravel(model.train_on_batch(faces, labels))[0]) for _ in range(3)]
    assert np.isfinite(losses).all()
