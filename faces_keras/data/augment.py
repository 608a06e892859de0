"""Face augmentation, offline (numpy + OpenCV) and online (Keras layers).

The original project enlarged its training sets offline: every 64x64 face
became several faces (the original, a zoomed one, a blurred one, a zoomed and
blurred one) before training. :func:`augment_offline` does that with plain
functions that each take ONE image of shape ``(H, W, C)``, ``uint8``, with
``C`` 1 (gray) or 3 (colour), and return the same shape and dtype.

Online augmentation instead puts Keras preprocessing layers in front of the
model (:func:`online_augmentation`), so every epoch sees new random variants;
the flip, rotation, zoom and width change are one affine warp
(:class:`faces_keras.data.affine.RandomFaceAffine`) unless
``AugmentationConfig.fused`` is off.
Those layers only act in training: ``model.fit`` and
``model(x, training=True)`` augment, ``model.predict`` and
``model(x, training=False)`` return the input unchanged. Beware that a direct
call WITHOUT a ``training`` argument augments (Keras' default for these
layers). The layers run on any Keras 3 backend.

Combinations are written ``"zoom+blur"`` (applied left to right) or
``"identity"``; :data:`ORIGINAL_COMBINATIONS` is the original project's set.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from faces_keras.errors import FacesKerasError, ImageError

ORIGINAL_COMBINATIONS = ["identity", "zoom", "blur", "zoom+blur"]

# Border handling for pixels that come from outside the image (rotation
# corners, the strips that narrowing leaves). "reflect" mirrors the face's own
# surroundings without repeating the edge row; "edge" smears the edge row out;
# "constant" fills with black.
BORDERS = {
    "reflect": cv2.BORDER_REFLECT_101,
    "edge": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}


class AugmentationError(FacesKerasError, ValueError):
    """An augmentation name, parameter or setting is invalid.

    A :class:`ValueError` too, so callers that expect one for a bad argument
    catch it, and a :class:`FacesKerasError`, so the CLI prints it plainly.
    """


# ---------------------------------------------------------------------------
# Offline operations: one uint8 image (H, W, C) in, same shape and dtype out.
# ---------------------------------------------------------------------------


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ImageError(
            f"expected an image of shape (H, W, 1) or (H, W, 3), got {image.shape}"
        )


def _with_channel_axis(result: np.ndarray) -> np.ndarray:
    # OpenCV drops a size-1 channel axis; every operation keeps it.
    return result[..., np.newaxis] if result.ndim == 2 else result


def _border(border: str) -> int:
    if border not in BORDERS:
        raise AugmentationError(
            f"unknown border {border!r}; known borders: {', '.join(BORDERS)}"
        )
    return BORDERS[border]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_factor(
    name: str, factor: float, low: float, high: float, *, low_open: bool = False
) -> None:
    above_low = _is_number(factor) and (factor > low if low_open else factor >= low)
    if not (above_low and factor <= high):
        bracket = "(" if low_open else "["
        raise AugmentationError(f"{name} must be in {bracket}{low:g}, {high:g}], got {factor!r}")


def _centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def identity(image: np.ndarray) -> np.ndarray:
    """Return a copy of the image: the original among the augmented faces."""
    _check_image(image)
    return image.copy()


def flip(image: np.ndarray) -> np.ndarray:
    """Mirror the image left to right."""
    _check_image(image)
    return image[:, ::-1].copy()


def rotate(image: np.ndarray, degrees: float = 22.0, border: str = "reflect") -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` (negative: clockwise) about the centre.

    The size stays the same; corners that come from outside the image are
    filled according to ``border`` ("reflect", "edge" or "constant" black).
    """
    _check_image(image)
    mode = _border(border)
    if degrees % 360 == 0:
        return image.copy()
    height, width = image.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, float(degrees), 1.0)
    rotated = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0
    )
    return _with_channel_axis(rotated)


def narrow(image: np.ndarray, factor: float = 0.85, border: str = "reflect") -> np.ndarray:
    """Squeeze the width by ``factor`` in (0, 1] and pad back to the same size.

    The padding is split evenly between left and right and filled according
    to ``border`` ("reflect", "edge" or "constant" black).
    """
    _check_image(image)
    _check_factor("narrow factor", factor, 0.0, 1.0, low_open=True)
    mode = _border(border)
    height, width = image.shape[:2]
    new_width = max(1, int(round(width * factor)))
    if new_width == width:
        return image.copy()
    squeezed = _with_channel_axis(
        cv2.resize(image, (new_width, height), interpolation=cv2.INTER_AREA)
    )
    left = (width - new_width) // 2
    right = width - new_width - left
    padded = cv2.copyMakeBorder(squeezed, 0, 0, left, right, mode, value=0)
    return _with_channel_axis(padded)


def widen(image: np.ndarray, factor: float = 1.15) -> np.ndarray:
    """Stretch the width by ``factor`` >= 1 and crop the centre back to the same size."""
    _check_image(image)
    _check_factor("widen factor", factor, 1.0, math.inf)
    height, width = image.shape[:2]
    return _enlarge_and_crop(image, height, int(round(width * factor)))


def zoom(image: np.ndarray, factor: float = 1.2) -> np.ndarray:
    """Enlarge both axes by ``factor`` >= 1 and crop the centre back to the same size."""
    _check_image(image)
    _check_factor("zoom factor", factor, 1.0, math.inf)
    height, width = image.shape[:2]
    return _enlarge_and_crop(image, int(round(height * factor)), int(round(width * factor)))


def _enlarge_and_crop(image: np.ndarray, new_height: int, new_width: int) -> np.ndarray:
    """Resize to ``(new_height, new_width)`` (no smaller than the image), then crop the centre back."""
    height, width = image.shape[:2]
    if (new_height, new_width) == (height, width):
        return image.copy()
    enlarged = _with_channel_axis(
        cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    )
    return np.ascontiguousarray(_centre_crop(enlarged, height, width))


def blur(image: np.ndarray, ksize: int = 3) -> np.ndarray:
    """Box-blur with a ``ksize`` x ``ksize`` mean filter (1: unchanged)."""
    _check_image(image)
    if not isinstance(ksize, (int, np.integer)) or isinstance(ksize, bool) or ksize < 1:
        raise AugmentationError(f"blur ksize must be a positive integer, got {ksize!r}")
    if ksize == 1:
        return image.copy()
    return _with_channel_axis(cv2.blur(image, (int(ksize), int(ksize))))


def brightness_contrast(
    image: np.ndarray, brightness: float = 0.0, contrast: float = 1.0
) -> np.ndarray:
    """Scale the contrast about mid-grey and shift the brightness.

    ``out = clip((x - 127.5) * contrast + 127.5 + brightness * 255, 0, 255)``;
    ``brightness`` in [-1, 1] is a fraction of the full range, ``contrast`` >= 0.
    """
    _check_image(image)
    _check_factor("brightness", brightness, -1.0, 1.0)
    _check_factor("contrast", contrast, 0.0, math.inf)
    adjusted = (image.astype(np.float32) - 127.5) * contrast + 127.5 + brightness * 255.0
    return np.clip(np.rint(adjusted), 0, 255).astype(np.uint8)


OPERATIONS: dict[str, Callable[..., np.ndarray]] = {
    "identity": identity,
    "flip": flip,
    "rotate": rotate,
    "narrow": narrow,
    "widen": widen,
    "zoom": zoom,
    "blur": blur,
    "brightness_contrast": brightness_contrast,
}


# ---------------------------------------------------------------------------
# Combinations and the offline pipeline.
# ---------------------------------------------------------------------------


def parse_combinations(spec: str | Sequence[str]) -> list[tuple[str, ...]]:
    """Parse combinations such as ``"zoom+blur"`` into tuples of operation names.

    ``spec`` is a list of combinations, or one string holding one or several
    comma-separated ones (``"identity,zoom,zoom+blur"``). Unknown names, empty
    names and repeated combinations raise :class:`AugmentationError`.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    if not items:
        raise AugmentationError("no augmentation combinations given")
    combinations: list[tuple[str, ...]] = []
    for item in items:
        if not isinstance(item, str):
            raise AugmentationError(f"a combination must be a string, got {item!r}")
        names = tuple(name.strip() for name in item.split("+"))
        for name in names:
            if name not in OPERATIONS:
                raise AugmentationError(
                    f"unknown augmentation {name!r} in combination {item.strip()!r}; "
                    f"known augmentations: {', '.join(OPERATIONS)}"
                )
        if names in combinations:
            raise AugmentationError(f"combination {item.strip()!r} is given twice")
        combinations.append(names)
    return combinations


def combination_name(combination: Iterable[str]) -> str:
    """The string form of a combination: ``("zoom", "blur")`` -> ``"zoom+blur"``."""
    return "+".join(combination)


def _check_params(params: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Validate per-operation parameter overrides against each function's signature."""
    checked: dict[str, dict[str, Any]] = {}
    for op_name, kwargs in (params or {}).items():
        if op_name not in OPERATIONS:
            raise AugmentationError(
                f"parameters given for unknown augmentation {op_name!r}; "
                f"known augmentations: {', '.join(OPERATIONS)}"
            )
        accepted = list(inspect.signature(OPERATIONS[op_name]).parameters)[1:]
        for key in kwargs:
            if key not in accepted:
                raise AugmentationError(
                    f"augmentation {op_name!r} has no parameter {key!r}; "
                    f"its parameters: {', '.join(accepted) or 'none'}"
                )
        checked[op_name] = dict(kwargs)
    return checked


def apply_combination(
    image: np.ndarray,
    combination: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> np.ndarray:
    """Apply the operations of one combination to one image, left to right."""
    result = image
    for name in combination:
        result = OPERATIONS[name](result, **(params or {}).get(name, {}))
    return result


def augment_offline(
    images: np.ndarray,
    source_ids: np.ndarray,
    combinations: str | Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply every combination to every image.

    ``images`` is ``(N, H, W, C)`` uint8 and ``source_ids`` has one id per
    image. The result holds ``N * len(combinations)`` images, grouped by
    source: the outputs of image ``i`` are rows ``i*K .. i*K + K-1`` in the
    order of ``combinations``. Returned with them: each output's source id
    (so that splits keep a face's variants together) and its combination
    name as a string array. ``params`` overrides operation parameters, e.g.
    ``{"rotate": {"degrees": 15}}``; ``progress`` shows a tqdm bar.
    """
    parsed = parse_combinations(combinations)
    checked_params = _check_params(params)
    images, source_ids = _check_batch(images, source_ids)
    count, per_image = len(images), len(parsed)
    outputs = np.empty((count * per_image, *images.shape[1:]), dtype=np.uint8)
    indices: Iterable[int] = range(count)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, total=count, desc="augmenting", unit="face")
    for index in indices:
        for offset, combination in enumerate(parsed):
            outputs[index * per_image + offset] = apply_combination(
                images[index], combination, checked_params
            )
    names = np.array([combination_name(c) for c in parsed] * count, dtype=str)
    return outputs, np.repeat(source_ids, per_image), names


def _check_batch(images: np.ndarray, source_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    source_ids = np.asarray(source_ids)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ImageError(
            "expected images of shape (N, H, W, 1) or (N, H, W, 3) and dtype uint8, "
            f"got shape {images.shape} and dtype {images.dtype}"
        )
    if source_ids.shape != (len(images),):
        raise AugmentationError(
            f"expected one source id per image ({len(images)}), "
            f"got source_ids of shape {source_ids.shape}"
        )
    return images, source_ids


# ---------------------------------------------------------------------------
# Online augmentation: Keras preprocessing layers.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentationConfig:
    """Settings of the online augmentation; 0 or False turns an operation off.

    Args:
        flip: mirror faces left to right at random (half of them).
        rotation_degrees: the largest rotation either way, in degrees, in
            [0, 180] (22 by default).
        zoom: the largest relative zoom in or out of both axes, in [0, 1).
        width_factor: the largest relative change of the width only (narrow
            or widen), in [0, 1).
        brightness: the largest relative brightness change, in [0, 1).
        contrast: the largest relative contrast change, in [0, 1).
        seed: a non-negative integer that makes the random draws repeatable;
            ``None`` (the default) draws anew each run.
        fused: flip, rotation, zoom and width change as one warp
            (:class:`faces_keras.data.affine.RandomFaceAffine`, the default:
            one resampling instead of three, 1.3x faster training of the
            default model on a CPU); False: Keras's separate layers, one
            resampling each, as before.

    Raises:
        AugmentationError: a setting is of the wrong type or out of range.
    """

    flip: bool = True
    rotation_degrees: float = 22.0
    zoom: float = 0.15
    width_factor: float = 0.15
    brightness: float = 0.1
    contrast: float = 0.1
    seed: int | None = None
    fused: bool = True

    def __post_init__(self) -> None:
        for name in ("flip", "fused"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise AugmentationError(f"{name} must be true or false, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        self._set_number("rotation_degrees", 0.0, 180.0, high_open=False)
        for name in ("zoom", "width_factor", "brightness", "contrast"):
            self._set_number(name, 0.0, 1.0, high_open=True)
        if self.seed is not None and (
            not isinstance(self.seed, (int, np.integer))
            or isinstance(self.seed, bool)
            or self.seed < 0
        ):
            raise AugmentationError(
                f"seed must be a non-negative integer or None, got {self.seed!r}"
            )
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))  # JSON-friendly in to_dict()

    def _set_number(self, name: str, low: float, high: float, *, high_open: bool) -> None:
        value = getattr(self, name)
        in_range = _is_number(value) and low <= value and (
            value < high if high_open else value <= high
        )
        if not in_range:
            bracket = ")" if high_open else "]"
            raise AugmentationError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value!r}")
        # Floats throughout, so that to_dict() writes the same thing for 0 and 0.0.
        object.__setattr__(self, name, float(value))

    @property
    def enabled(self) -> bool:
        """True when at least one operation is on."""
        return self.flip or any(
            getattr(self, name) > 0
            for name in ("rotation_degrees", "zoom", "width_factor", "brightness", "contrast")
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-friendly dict (run directories record it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentationConfig:
        """Build from a dict such as :meth:`to_dict` writes; missing keys take defaults."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise AugmentationError(
                f"unknown augmentation setting(s) {', '.join(map(repr, unknown))}; "
                f"known settings: {', '.join(known)}"
            )
        return cls(**dict(data))


def online_augmentation(
    config: AugmentationConfig | None = None,
    *,
    name: str = "augmentation",
    **settings: Any,
):
    """Keras preprocessing layers that augment a batch anew on every call in training.

    Pass an :class:`AugmentationConfig`, or its fields as keyword arguments,
    not both. Inputs are float images in [0, 255], channels-last, 1 or 3
    channels; rescale after this block. Operations set to 0 or False are left
    out.

    Args:
        config: the augmentation's settings; ``None`` (the default) builds them
            from ``settings``.
        name: the Keras name of the ``Sequential`` block.
        **settings: :class:`AugmentationConfig` fields (``flip=True,
            rotation_degrees=22.0, zoom=0.15, width_factor=0.15,
            brightness=0.1, contrast=0.1, seed=None, fused=True``); missing
            ones take those defaults.

    Returns:
        A ``keras.Sequential`` that acts only in training: inside ``fit`` or
        with ``training=True``. With ``training=False`` (and in ``predict``) it
        returns its input unchanged. With every operation off this returns
        ``None`` (Keras cannot call a Sequential without layers), so callers
        skip the block.

    Raises:
        AugmentationError: both ``config`` and ``settings`` are given, a
            setting is unknown, or a value is out of range.
    """
    if config is not None and settings:
        raise AugmentationError(
            "give either an AugmentationConfig or keyword settings, not both; "
            f"got both and {', '.join(sorted(settings))}"
        )
    if config is None:
        config = AugmentationConfig.from_dict(settings)
    layers = _augmentation_layers(config)
    if not layers:
        return None
    import keras

    return keras.Sequential(layers, name=name)


def _augmentation_layers(config: AugmentationConfig) -> list:
    import keras

    layers: list = []

    def seed() -> int | None:
        # A different seed per layer: with one shared seed the layers would
        # draw the same numbers and their changes would be correlated.
        return None if config.seed is None else config.seed + len(layers)

    geometric = config.flip or config.rotation_degrees > 0 or config.zoom > 0 or config.width_factor > 0
    if config.fused and geometric:
        from faces_keras.data.affine import RandomFaceAffine

        layers.append(RandomFaceAffine(config.flip, config.rotation_degrees, config.zoom, config.width_factor,
                                       fill_mode="reflect", seed=seed(), name="affine"))
    else:
        if config.flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed(), name="flip"))
        if config.rotation_degrees > 0:
            # RandomRotation takes a fraction of a full turn.
            layers.append(
                keras.layers.RandomRotation(
                    config.rotation_degrees / 360.0, fill_mode="reflect", seed=seed(), name="rotate"
                )
            )
        if config.zoom > 0:
            # No width_factor: Keras then zooms both axes by the same draw.
            layers.append(
                keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed(), name="zoom")
            )
        if config.width_factor > 0:
            # RandomWidth would change the output size; a width-only zoom keeps it.
            layers.append(
                keras.layers.RandomZoom(
                    height_factor=0.0,
                    width_factor=config.width_factor,
                    fill_mode="reflect",
                    seed=seed(),
                    name="narrow_widen",
                )
            )
    if config.brightness > 0:
        layers.append(
            keras.layers.RandomBrightness(
                config.brightness, value_range=(0, 255), seed=seed(), name="brightness"
            )
        )
    if config.contrast > 0:
        layers.append(
            keras.layers.RandomContrast(
                config.contrast, value_range=(0, 255), seed=seed(), name="contrast"
            )
        )
    return layers
