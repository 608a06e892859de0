"""Augmentation on real 64x64 faces cut from the shared grid photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from faces_keras.data import augment
from faces_keras.data.augment import (
    ORIGINAL_COMBINATIONS,
    OPERATIONS,
    AugmentationConfig,
    AugmentationError,
    augment_offline,
    blur,
    brightness_contrast,
    flip,
    narrow,
    online_augmentation,
    parse_combinations,
    rotate,
    widen,
    zoom,
)
from faces_keras.errors import FacesKerasError, ImageError

from tests.conftest import DATA, ROOT

GRID = DATA / "grids" / "faces1-11x11-704x704.png"
CELL = 64
FACE_COUNT = 4


def _grid_faces(flag: int) -> np.ndarray:
    """The first FACE_COUNT faces of the grid's top row, (N, 64, 64, C) uint8."""
    if not GRID.parent.is_dir():
        pytest.skip(f"the shared real data is not at {DATA} (set FACES_KERAS_DATA to its folder)")
    grid = cv2.imread(str(GRID), flag)
    assert grid is not None, f"cannot read the shared grid photo {GRID}"
    if grid.ndim == 2:
        grid = grid[..., np.newaxis]
    return np.stack([grid[:CELL, i * CELL : (i + 1) * CELL] for i in range(FACE_COUNT)])


@pytest.fixture(scope="module", params=["gray", "colour"])
def faces(request) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if request.param == "gray" else cv2.IMREAD_COLOR
    images = _grid_faces(flag)
    assert images.shape == (FACE_COUNT, CELL, CELL, 1 if request.param == "gray" else 3)
    return images


@pytest.fixture(scope="module")
def face(faces) -> np.ndarray:
    return faces[0]


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _centre(image: np.ndarray, margin: int = 16) -> np.ndarray:
    return image[margin:-margin, margin:-margin]


def _laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(image.astype(np.float64), cv2.CV_64F).var())


# --- offline operations ----------------------------------------------------


def test_flip_twice_is_the_original_and_once_mirrors(face):
    flipped = flip(face)
    assert flipped.shape == face.shape and flipped.dtype == np.uint8
    np.testing.assert_array_equal(flip(flipped), face)
    np.testing.assert_array_equal(flipped[:, 0], face[:, -1])
    assert _mean_abs_diff(flipped, face) > 5  # a real face is not symmetric


def test_rotate_keeps_size_and_zero_is_identity(face):
    rotated = rotate(face, 22.0)
    assert rotated.shape == face.shape and rotated.dtype == np.uint8
    assert _mean_abs_diff(rotated, face) > 5
    np.testing.assert_array_equal(rotate(face, 0.0), face)
    np.testing.assert_array_equal(rotate(face, 360.0), face)


def test_rotate_back_restores_the_centre(face):
    there_and_back = rotate(rotate(face, 15.0), -15.0)
    rotated_once = rotate(face, 15.0)
    restored_error = _mean_abs_diff(_centre(there_and_back), _centre(face))
    rotated_error = _mean_abs_diff(_centre(rotated_once), _centre(face))
    # Two bilinear resamplings blur a little, far less than the rotation moves.
    assert restored_error < 8
    assert restored_error < rotated_error / 3


def test_rotate_border_modes(face):
    constant = rotate(face, 45.0, border="constant")
    reflected = rotate(face, 45.0, border="reflect")
    # At 45 degrees the corner pixel comes from outside the image.
    assert (constant[0, 0] == 0).all()
    assert reflected[0, 0].any()
    np.testing.assert_array_equal(_centre(constant, 24), _centre(reflected, 24))
    with pytest.raises(AugmentationError, match="wrap"):
        rotate(face, 10.0, border="wrap")


@pytest.mark.parametrize(
    "operation, factor",
    [(narrow, 0.85), (widen, 1.15), (zoom, 1.2)],
    ids=["narrow", "widen", "zoom"],
)
def test_resizing_keeps_size_changes_pixels_and_factor_one_is_identity(face, operation, factor):
    changed = operation(face, factor)
    assert changed.shape == face.shape and changed.dtype == np.uint8
    assert _mean_abs_diff(changed, face) > 5
    np.testing.assert_array_equal(operation(face, 1.0), face)


@pytest.mark.parametrize(
    "operation, bad_factor",
    [(narrow, 0.0), (narrow, 1.2), (widen, 0.9), (zoom, 0.5), (zoom, "big")],
)
def test_resizing_rejects_factors_out_of_range(face, operation, bad_factor):
    with pytest.raises(AugmentationError, match=repr(bad_factor).replace(".", r"\.")):
        operation(face, bad_factor)


def _bar(axis: str) -> np.ndarray:
    """A black 64x64 image with a 10 px wide white bar through the middle."""
    image = np.zeros((64, 64, 1), np.uint8)
    if axis == "vertical":
        image[:, 27:37] = 255
    else:
        image[27:37, :] = 255
    return image


def _bar_sizes(operation, *args, **kwargs) -> tuple[int, int]:
    """Width of a vertical bar and height of a horizontal bar after ``operation``."""
    # Measured through the centre; >127 counts each half-lit edge pixel once at most.
    vertical = operation(_bar("vertical"), *args, **kwargs)
    horizontal = operation(_bar("horizontal"), *args, **kwargs)
    return int((vertical[32, :, 0] > 127).sum()), int((horizontal[:, 32, 0] > 127).sum())


def test_resizing_scales_the_right_axis():
    assert _bar_sizes(lambda image: image) == (10, 10)
    width, height = _bar_sizes(widen, 1.5)
    assert abs(width - 15) <= 1 and height == 10
    width, height = _bar_sizes(narrow, 0.5, border="constant")
    assert abs(width - 5) <= 1 and height == 10
    width, height = _bar_sizes(zoom, 2.0)
    assert abs(width - 20) <= 1 and abs(height - 20) <= 1


def test_narrow_pads_symmetrically():
    white = np.full((64, 64, 1), 255, np.uint8)
    padded = narrow(white, 0.5, border="constant")
    columns_lit = np.flatnonzero(padded[0, :, 0] > 127)
    assert columns_lit[0] == 64 - 1 - columns_lit[-1]  # as many black columns each side
    assert len(columns_lit) == 32


def test_blur_removes_high_frequencies_and_keeps_the_mean(face):
    blurred = blur(face, 3)
    assert blurred.shape == face.shape and blurred.dtype == np.uint8
    assert _laplacian_variance(blurred) < 0.5 * _laplacian_variance(face)
    assert abs(float(blurred.mean()) - float(face.mean())) < 1.0
    assert _laplacian_variance(blur(face, 5)) < _laplacian_variance(blurred)
    np.testing.assert_array_equal(blur(face, 1), face)


def test_brightness_shifts_the_mean_and_contrast_scales_the_std(face):
    brighter = brightness_contrast(face, brightness=0.1)
    darker = brightness_contrast(face, brightness=-0.1)
    assert brighter.shape == face.shape and brighter.dtype == np.uint8
    # +25.5 grey levels, less where pixels clip at 255.
    assert 15 < brighter.mean() - face.mean() <= 25.5 + 0.5
    assert darker.mean() < face.mean() - 15
    flatter = brightness_contrast(face, contrast=0.5)
    # Halving the contrast about mid-grey clips nothing, so the std halves.
    assert flatter.std() == pytest.approx(0.5 * face.std(), rel=0.02)
    np.testing.assert_array_equal(brightness_contrast(face), face)


def test_operations_reject_images_without_channel_axis_or_wrong_dtype(face):
    with pytest.raises(ImageError, match=r"\(64, 64\)"):
        flip(face[..., 0])
    with pytest.raises(ImageError, match="float32"):
        blur(face.astype(np.float32))


def test_every_registered_operation_keeps_shape_and_dtype(face):
    for name, operation in OPERATIONS.items():
        result = operation(face)
        assert result.shape == face.shape and result.dtype == np.uint8, name


# --- combinations ------------------------------------------------------------


def test_parse_combinations():
    assert parse_combinations("zoom+blur") == [("zoom", "blur")]
    assert parse_combinations(ORIGINAL_COMBINATIONS) == [
        ("identity",),
        ("zoom",),
        ("blur",),
        ("zoom", "blur"),
    ]
    assert parse_combinations("identity, flip ,rotate+narrow") == [
        ("identity",),
        ("flip",),
        ("rotate", "narrow"),
    ]


def test_parse_combinations_names_unknown_operations():
    with pytest.raises(AugmentationError, match="'sharpen'") as error:
        parse_combinations(["zoom", "zoom+sharpen"])
    message = str(error.value)
    assert all(name in message for name in OPERATIONS)  # lists the known ones
    assert isinstance(error.value, ValueError) and isinstance(error.value, FacesKerasError)
    with pytest.raises(AugmentationError, match="twice"):
        parse_combinations("zoom,blur,zoom")
    with pytest.raises(AugmentationError, match="''"):
        parse_combinations("zoom+")


def test_augment_offline_multiplies_and_keeps_sources_aligned(faces):
    source_ids = np.array([101, 205, 309, 413][: len(faces)])
    images, ids, names = augment_offline(faces, source_ids, ORIGINAL_COMBINATIONS)
    per_face = len(ORIGINAL_COMBINATIONS)
    assert images.shape == (len(faces) * per_face, *faces.shape[1:])
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(ids, np.repeat(source_ids, per_face))
    assert list(names[:per_face]) == ORIGINAL_COMBINATIONS
    assert names.dtype.kind == "U"
    for output, source_id, name in zip(images, ids, names):
        source = faces[list(source_ids).index(source_id)]
        if name == "identity":
            np.testing.assert_array_equal(output, source)
        # Every output is its own source transformed, never another face.
        expected = augment.apply_combination(source, name.split("+"))
        np.testing.assert_array_equal(output, expected)
        others = [f for f, i in zip(faces, source_ids) if i != source_id]
        expected_error = _mean_abs_diff(output, expected)
        assert all(_mean_abs_diff(output, other) > expected_error for other in others)


def test_augment_offline_applies_parameter_overrides(faces):
    ids = np.arange(len(faces))
    default, _, _ = augment_offline(faces, ids, "rotate")
    gentle, _, _ = augment_offline(faces, ids, "rotate", params={"rotate": {"degrees": 5}})
    np.testing.assert_array_equal(gentle[0], rotate(faces[0], 5))
    assert _mean_abs_diff(gentle, faces) < _mean_abs_diff(default, faces)
    with pytest.raises(AugmentationError, match="'angle'"):
        augment_offline(faces, ids, "rotate", params={"rotate": {"angle": 5}})
    with pytest.raises(AugmentationError, match="'twist'"):
        augment_offline(faces, ids, "rotate", params={"twist": {}})


def test_augment_offline_validates_inputs(faces):
    with pytest.raises(AugmentationError, match="source id"):
        augment_offline(faces, np.arange(len(faces) + 1), "flip")
    with pytest.raises(ImageError, match="uint8"):
        augment_offline(faces.astype(np.float32), np.arange(len(faces)), "flip")


def test_augment_offline_progress_bar(faces, capsys):
    images, _, _ = augment_offline(faces[:2], np.arange(2), "flip,blur", progress=True)
    assert len(images) == 4
    assert "augmenting" in capsys.readouterr().err


# --- online augmentation -------------------------------------------------------


def test_config_validates_and_round_trips():
    config = AugmentationConfig(rotation_degrees=15, zoom=0.2, seed=7)
    restored = AugmentationConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert config.to_dict()["rotation_degrees"] == 15.0
    for bad in (
        {"rotation_degrees": 190},
        {"zoom": 1.0},
        {"width_factor": -0.1},
        {"contrast": "high"},
        {"flip": "yes"},
        {"seed": -1},
    ):
        with pytest.raises(AugmentationError, match=next(iter(bad))):
            AugmentationConfig(**bad)
    with pytest.raises(AugmentationError, match="'shear'"):
        AugmentationConfig.from_dict({"zoom": 0.1, "shear": 0.2})


def _float_faces(faces: np.ndarray) -> np.ndarray:
    return faces.astype(np.float32)


@pytest.mark.backend_subset
def test_online_augmentation_changes_in_training_and_is_identity_at_inference(faces):
    import keras

    block = online_augmentation(seed=3)
    assert isinstance(block, keras.Sequential)
    batch = _float_faces(faces)
    trained = keras.ops.convert_to_numpy(block(batch, training=True))
    assert trained.shape == batch.shape
    assert _mean_abs_diff(trained, batch) > 3
    assert trained.min() >= 0 and trained.max() <= 255 + 1e-3
    inferred = keras.ops.convert_to_numpy(block(batch, training=False))
    np.testing.assert_array_equal(inferred, batch)
    np.testing.assert_array_equal(block.predict(batch, verbose=0), batch)


@pytest.mark.parametrize("fused", [True, False])
def test_online_flip_alone_mirrors_or_keeps_each_face(faces, fused):
    import keras

    block = online_augmentation(
        flip=True, rotation_degrees=0, zoom=0, width_factor=0, brightness=0, contrast=0, seed=1, fused=fused
    )
    assert [layer.name for layer in block.layers] == ["affine" if fused else "flip"]
    batch = _float_faces(np.concatenate([faces] * 4))  # 16 faces: both outcomes appear
    out = keras.ops.convert_to_numpy(block(batch, training=True))
    mirrored = [np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch)]
    kept = [np.array_equal(o, b) for o, b in zip(out, batch)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert any(mirrored) and any(kept)


def test_online_layers_follow_the_config(faces):
    block = online_augmentation(AugmentationConfig(flip=False, brightness=0, contrast=0.2))
    assert [layer.name for layer in block.layers] == ["affine", "contrast"]  # one warp for the geometry
    block = online_augmentation(AugmentationConfig(flip=False, brightness=0, contrast=0.2, fused=False))
    assert [layer.name for layer in block.layers] == [
        "rotate",
        "zoom",
        "narrow_widen",
        "contrast",
    ]
    all_off = dict(flip=False, rotation_degrees=0, zoom=0, width_factor=0, brightness=0, contrast=0)
    assert online_augmentation(**all_off) is None
    with pytest.raises(AugmentationError, match="not both"):
        online_augmentation(AugmentationConfig(), zoom=0.1)
    with pytest.raises(AugmentationError, match="'shear'"):
        online_augmentation(shear=0.1)


def _keras_matrix(layer_kind, count, angle=None, zooms=None, size=64):
    """The matrix Keras's own RandomRotation / RandomZoom would use for these draws."""
    import keras

    ops = keras.ops
    if layer_kind == "rotate":
        layer = keras.layers.RandomRotation(0.1)
        return layer._compute_affine_matrix(
            0.5, 0.5, ops.convert_to_tensor(angle), ops.zeros([count]), ops.zeros([count]),
            ops.ones([count]), ops.zeros([count]), ops.zeros([count]), size, size)
    layer = keras.layers.RandomZoom(0.1)
    return layer._get_zoom_matrix(ops.convert_to_tensor(zooms), size, size)


def _draws(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle (degrees), signed x scale and y scale back out of RandomFaceAffine's matrices."""
    a0, a1, b0, b1 = matrix[:, 0], matrix[:, 1], matrix[:, 3], matrix[:, 4]
    scale_y = np.hypot(a1, b1)
    angle = np.degrees(np.arctan2(-a1, b1))
    cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return angle, a0 * cos + b0 * sin, scale_y


def test_fused_warp_draws_what_the_separate_layers_draw():
    # Each draw's matrix is the matrix Keras's RandomRotation / RandomZoom
    # compute for that draw, and the draws fill the configured ranges.
    from faces_keras.data.affine import RandomFaceAffine

    rotate = RandomFaceAffine(flip=False, rotation_degrees=22, zoom=0, width_factor=0, seed=0)
    matrix = np.asarray(rotate.transform_matrix(400, 64, 64))
    angle, scale_x, scale_y = _draws(matrix)
    np.testing.assert_allclose(matrix, np.asarray(_keras_matrix("rotate", 400, angle=angle)), atol=1e-4)
    assert -22 <= angle.min() < -20 and 20 < angle.max() <= 22
    np.testing.assert_allclose([scale_x, scale_y], 1.0, atol=1e-5)

    zoom = RandomFaceAffine(flip=False, rotation_degrees=0, zoom=0.15, width_factor=0.1, seed=0)
    matrix = np.asarray(zoom.transform_matrix(400, 64, 64))
    angle, scale_x, scale_y = _draws(matrix)
    zooms = np.stack([scale_x, scale_y], axis=1).astype("float32")
    np.testing.assert_allclose(matrix, np.asarray(_keras_matrix("zoom", 400, zooms=zooms)), atol=1e-4)
    assert 0.85 <= scale_y.min() < 0.87 and 1.13 < scale_y.max() <= 1.15
    width = scale_x / scale_y  # the width-only change on top of the zoom
    assert 0.9 <= width.min() < 0.92 and 1.08 < width.max() <= 1.1
    assert abs(np.corrcoef(width, scale_y)[0, 1]) < 0.2  # drawn independently

    flip = RandomFaceAffine(flip=True, rotation_degrees=0, zoom=0, width_factor=0, seed=0)
    mirrored = np.asarray(flip.transform_matrix(400, 64, 64))[:, 0] < 0
    assert 160 < mirrored.sum() < 240  # about half


def test_fused_warp_matches_rotating_then_zooming_real_faces(faces):
    # The one warp against Keras's two resamplings for the same draws: the
    # same picture (up to one interpolation less), far from the input.
    import keras

    from faces_keras.data.affine import RandomFaceAffine

    batch = _float_faces(np.concatenate([faces] * 4))
    layer = RandomFaceAffine(flip=False, rotation_degrees=22, zoom=0.15, width_factor=0, seed=4)
    matrix = np.asarray(layer.transform_matrix(len(batch), 64, 64))
    angle, scale_x, scale_y = _draws(matrix)
    ops = keras.ops
    rotated = ops.image.affine_transform(batch, _keras_matrix("rotate", len(batch), angle=angle),
                                         fill_mode="reflect")
    two_steps = ops.convert_to_numpy(ops.image.affine_transform(
        rotated, _keras_matrix("zoom", len(batch), zooms=np.stack([scale_x, scale_y], 1).astype("float32")),
        fill_mode="reflect"))
    one_step = ops.convert_to_numpy(ops.image.affine_transform(batch, matrix, fill_mode="reflect"))
    centre = (slice(None), slice(16, -16), slice(16, -16))  # away from the borders the two fill differently
    assert _mean_abs_diff(one_step[centre], two_steps[centre]) < 4
    assert _mean_abs_diff(one_step[centre], batch[centre]) > 15
    # and the layer itself applies that warp (its generator was advanced by the draw above: reseed)
    again = RandomFaceAffine(flip=False, rotation_degrees=22, zoom=0.15, width_factor=0, seed=4)
    np.testing.assert_allclose(ops.convert_to_numpy(again(batch, training=True)), one_step, atol=1e-3)


@pytest.mark.backend_subset
def test_online_augmentation_trains_inside_a_model(faces):
    import keras

    inputs = keras.Input(shape=faces.shape[1:])
    x = online_augmentation(seed=0)(inputs)
    x = keras.layers.Rescaling(1 / 255.0)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    history = model.fit(
        _float_faces(faces), np.array([0, 1, 0, 1][: len(faces)]), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


JAX_SCRIPT = textwrap.dedent(
    """
    import keras, numpy as np
    from faces_keras.data.augment import online_augmentation
    assert keras.backend.backend() == "jax", keras.backend.backend()
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        batch = rng.uniform(0, 255, (4, 64, 64, channels)).astype("float32")
        block = online_augmentation(seed=5)
        trained = keras.ops.convert_to_numpy(block(batch, training=True))
        assert trained.shape == batch.shape
        assert np.abs(trained - batch).mean() > 3
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(block(batch, training=False)), batch
        )
    # The fused warp lets jax compile the whole training step (Keras's
    # RandomRotation / RandomZoom turn jit off for the model: 3x slower steps).
    inputs = keras.Input((64, 64, 1))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(online_augmentation(seed=5)(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    assert model.jit_compile, "the augmentation turned jit off"
    model.fit(batch[:, :, :, :1], np.zeros((4, 1), "float32"), epochs=1, verbose=0)
    print("JAX OK")
    """
)


@pytest.mark.backend_subset
def test_online_augmentation_runs_on_the_jax_backend():
    # Eager calls, and one jit-compiled training step of a tiny model.
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "JAX OK" in result.stdout
