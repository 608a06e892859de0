"""Reading images and turning them into model-sized faces.

Faces are stored as ``uint8`` arrays of shape ``(size, size, C)`` with ``C = 1``
(gray) or ``C = 3`` (RGB); models scale them to ``[0, 1]`` themselves (a
``Rescaling`` layer), so a stored dataset and a photo at prediction time go
through exactly the same code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from faces_keras.errors import ImageError


@lru_cache(maxsize=4)
def _load_mat_array(path: str, key: str) -> np.ndarray:
    from scipy.io import loadmat

    return loadmat(path)[key]


def read_image(path: str | Path, *, gray: bool = False) -> np.ndarray:
    """Read an image file as uint8 RGB ``(H, W, 3)`` or gray ``(H, W, 1)``.

    ``file.mat#i`` reads image ``i`` of a MATLAB array (Olivetti: 64x64 gray,
    column-major).

    Args:
        path: an image file (PNG, JPEG, BMP or what OpenCV decodes), or
            ``file.mat#i`` for image ``i`` of the ``faces`` array of a MATLAB
            file.
        gray: read as gray, shape ``(H, W, 1)``; ``False`` (the default)
            reads RGB, shape ``(H, W, 3)``.

    Returns:
        The image, uint8.

    Raises:
        ImageError: the file is missing, damaged, or not a readable image; the
            message names it.
    """
    path = str(path)
    if "#" in path and path.split("#", 1)[0].endswith(".mat"):
        file, index = path.split("#", 1)
        column = _load_mat_array(file, "faces")[:, int(index)]
        side = int(round(np.sqrt(column.size)))
        image = np.ascontiguousarray(column.reshape(side, side).T).astype(np.uint8)
        image = image[..., None]
        return image if gray else np.repeat(image, 3, axis=-1)
    if not Path(path).is_file():
        raise ImageError(f"{path}: image file not found")
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    _check_png(path)  # libpng would print its own "libpng error" line for a damaged PNG
    image = cv2.imread(path, flag)
    if image is None:
        raise ImageError(f"{path}: not a readable image (corrupt or unsupported format)")
    if gray:
        return image[..., None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: str) -> None:
    """A damaged PNG raises :class:`ImageError` before OpenCV's libpng prints to stderr.

    Pillow walks the chunks and checks their CRCs without decoding the pixels.
    """
    with open(path, "rb") as handle:
        if handle.read(8) != PNG_SIGNATURE:
            return
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # Pillow raises several types (SyntaxError, OSError, ValueError) for bad PNGs
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"{path}: not a readable image (damaged PNG: {reason}); expected an intact "
                         "PNG, JPEG or BMP file") from None


def center_crop(image: np.ndarray, fraction: float = 1.0) -> np.ndarray:
    """The central square of ``image`` whose side is ``fraction`` of its shorter side.

    Args:
        image: an array ``(H, W, ...)``.
        fraction: the crop's side as a fraction of ``min(H, W)``; 1.0 (the
            default) keeps the largest central square.

    Returns:
        A view of ``image``, ``(side, side, ...)`` with ``side >= 1``.
    """
    h, w = image.shape[:2]
    side = max(1, int(round(min(h, w) * fraction)))
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def to_face(image: np.ndarray, size: int = 64, *, gray: bool = True) -> np.ndarray:
    """Resize a square-ish face crop to ``(size, size, C)`` uint8, gray or RGB.

    Args:
        image: a uint8 crop, ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` RGB.
        size: the side of the result, in pixels (area interpolation when
            shrinking, bilinear when growing).
        gray: convert to one gray channel (the default); ``False`` gives three
            RGB channels.

    Returns:
        A contiguous uint8 array ``(size, size, 1)`` or ``(size, size, 3)``.
    """
    if image.ndim == 2:
        image = image[..., None]
    if gray and image.shape[-1] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    elif not gray and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.shape[:2] != (size, size):
        shrinking = image.shape[0] > size
        image = cv2.resize(image, (size, size),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        if image.ndim == 2:
            image = image[..., None]
    return np.ascontiguousarray(image, dtype=np.uint8)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """Stored faces as the float32 array models take (0-255; models rescale).

    Args:
        faces: uint8 faces, ``(N, H, W, C)``.

    Returns:
        The same values as float32, still 0-255.
    """
    return np.asarray(faces, dtype=np.float32)
