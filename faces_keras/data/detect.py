"""Find faces in any photo, pick the main one, crop it, and draw what was found.

Images here are OpenCV's ``uint8`` BGR arrays ``(H, W, 3)`` (gray ``(H, W)`` or
``(H, W, 1)`` and BGRA are accepted too). Crops come out in the suite's storage
layout, ``(size, size, 1)`` gray or ``(size, size, 3)`` **RGB**, so a detected
face and a stored training face go through the same model code.

Detectors (see :func:`make_detector`):

* ``haar`` (default): OpenCV's frontal-face Haar cascade, shipped inside
  ``opencv-python-headless`` 4.x. No extra download, runs on one CPU core at
  a few milliseconds per photo.
* ``mtcnn``: the ``mtcnn`` package (``pip install faces-keras[mtcnn]``), more
  accurate on turned and small faces, much slower; runs on TensorFlow.

OpenCV's LBP cascade and YuNet model are not offered: ``opencv-python-headless``
ships neither file, and the suite downloads nothing at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from faces_keras.errors import ConfigError, FacesKerasError, ImageError

HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"

# Tuned on the real photos in shared/data/photos (one group photo with 6 faces,
# 4 portraits): with these values every photo gives its true number of faces,
# and so do all neighbouring values tried (scale factor 1.15, min_neighbors 8,
# min_size 0.06-0.12, max_side 480-800), so the defaults do not sit on a knife
# edge. The brief's starting point (1.1, 5) found a 7th "face" at max_side 640.
# On CelebA's loosely cropped faces they give exactly one face on ~99% images.
DEFAULT_SCALE_FACTOR = 1.15
DEFAULT_MIN_NEIGHBORS = 8
DEFAULT_MIN_SIZE = 0.1
DEFAULT_MAX_SIDE = 640

BOX_COLOR_BGR = (0, 200, 0)


@dataclass(frozen=True)
class Box:
    """A face's bounding box in pixels of the image it was found in.

    Args:
        x: the left edge, in pixels from the image's left.
        y: the top edge, in pixels from the image's top.
        w: the width in pixels.
        h: the height in pixels.
        score: the detector's confidence in ``[0, 1]`` where it gives one
            (MTCNN); ``None`` (the default) for detectors that give none (Haar).
    """

    x: int
    y: int
    w: int
    h: int
    score: float | None = None

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with ``detect(image_bgr) -> list[Box]``; :func:`make_detector` builds them."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """All faces in a uint8 BGR (or gray) image, as boxes in its pixels."""
        ...


# -- reading ------------------------------------------------------------------------

def read_image_bgr(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 BGR ``(H, W, 3)``.

    :func:`faces_keras.data.images.read_image` does the reading so there is
    one place that decides what "unreadable" means.

    Args:
        path: the image file (PNG, JPEG, BMP or what OpenCV decodes).

    Returns:
        A contiguous uint8 array ``(H, W, 3)`` in OpenCV's BGR order.

    Raises:
        ImageError: the file is missing or cannot be decoded; the message
            names the path.
    """
    from faces_keras.data.images import read_image

    return np.ascontiguousarray(read_image(path, gray=False)[..., ::-1])


# -- image helpers --------------------------------------------------------------------

def _to_gray(image: np.ndarray) -> np.ndarray:
    """A 2-D uint8 gray view/copy of a gray, BGR or BGRA image."""
    _check_image(image)
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 1:
        return image[..., 0]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel uint8 BGR copy of a gray, BGR or BGRA image."""
    _check_image(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"empty image of shape {image.shape}")


# -- Haar -----------------------------------------------------------------------------

def _haar_cascade_path() -> Path:
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if not folder:
        raise FacesKerasError(
            f"OpenCV {cv2.__version__} does not ship its Haar cascades (cv2.data is missing); "
            "the haar detector needs opencv-python-headless 4.x (pip install 'opencv-python-headless<5') "
            "or use --detector mtcnn")
    path = Path(folder) / HAAR_CASCADE_FILE
    if not path.is_file():
        raise FacesKerasError(f"{path}: OpenCV {cv2.__version__} does not ship the frontal-face Haar "
                              "cascade; install opencv-python-headless 4.x or use --detector mtcnn")
    return path


def validate_haar_params(scale_factor: float, min_neighbors: int, min_size: float,
                         max_side: int | None) -> None:
    """Raise ValueError naming the first out-of-range Haar parameter.

    Args:
        scale_factor: the image pyramid's step; must be > 1.
        min_neighbors: overlapping detections a face needs; an integer >= 0.
        min_size: the smallest face, a fraction of the shorter side in (0, 1).
        max_side: the longest side detection runs at, an integer >= 24, or
            ``None``.

    Raises:
        ValueError: a parameter is out of range.
    """
    if not scale_factor > 1.0:
        raise ValueError(f"scale_factor must be > 1 (the image pyramid's step), got {scale_factor!r}")
    if isinstance(min_neighbors, bool) or not isinstance(min_neighbors, (int, np.integer)) or min_neighbors < 0:
        raise ValueError(f"min_neighbors must be an integer >= 0, got {min_neighbors!r}")
    if not 0.0 < min_size < 1.0:
        raise ValueError(f"min_size is a fraction of the image's shorter side, in (0, 1); got {min_size!r}")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                 or max_side < 24):
        raise ValueError(f"max_side must be None or an integer >= 24 (the cascade's window), got {max_side!r}")


class HaarDetector:
    """OpenCV's frontal-face Haar cascade on an equalised gray copy of the photo.

    Photos whose longer side exceeds ``max_side`` are shrunk before detection
    (speed grows with the pixel count) and the boxes are mapped back to the
    original pixels.

    Args:
        scale_factor: the step between the cascade's image scales, > 1
            (1.15 by default; smaller finds more faces, slower).
        min_neighbors: how many overlapping detections a face needs, >= 0
            (8 by default; higher drops more false faces).
        min_size: the smallest face looked for, as a fraction of the photo's
            shorter side in (0, 1), so the same setting suits a phone photo
            and a thumbnail (0.1 by default).
        max_side: the longest side, in pixels (>= 24), a photo is shrunk to
            before detection (640 by default); ``None`` never shrinks.

    Raises:
        ValueError: a parameter is out of range.
        FacesKerasError: this OpenCV does not ship the Haar cascade or cannot
            load it.
    """

    name = "haar"

    def __init__(self, scale_factor: float = DEFAULT_SCALE_FACTOR,
                 min_neighbors: int = DEFAULT_MIN_NEIGHBORS,
                 min_size: float = DEFAULT_MIN_SIZE,
                 max_side: int | None = DEFAULT_MAX_SIDE) -> None:
        validate_haar_params(scale_factor, min_neighbors, min_size, max_side)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = float(min_size)
        self.max_side = None if max_side is None else int(max_side)
        path = _haar_cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FacesKerasError(f"{path}: OpenCV could not load this Haar cascade file")

    def __repr__(self) -> str:
        return (f"HaarDetector(scale_factor={self.scale_factor}, min_neighbors={self.min_neighbors}, "
                f"min_size={self.min_size}, max_side={self.max_side})")

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        gray = _to_gray(image_bgr)
        height, width = gray.shape
        scale = 1.0
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            gray = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))),
                              interpolation=cv2.INTER_AREA)
        # Equalising makes the cascade's fixed thresholds work on dark and washed-out photos alike.
        gray = cv2.equalizeHist(gray)
        min_px = max(1, round(self.min_size * min(gray.shape)))
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors, minSize=(min_px, min_px))
        return [_scaled_box(x, y, w, h, 1.0 / scale, width, height) for x, y, w, h in found]


def _scaled_box(x: float, y: float, w: float, h: float, factor: float, width: int, height: int,
                score: float | None = None) -> Box:
    """Scale a box by ``factor`` and clip it into a ``width`` x ``height`` image."""
    left = min(max(0, int(round(x * factor))), width - 1)
    top = min(max(0, int(round(y * factor))), height - 1)
    right = min(width, max(left + 1, int(round((x + w) * factor))))
    bottom = min(height, max(top + 1, int(round((y + h) * factor))))
    return Box(left, top, right - left, bottom - top, score)


# -- MTCNN ----------------------------------------------------------------------------

class MtcnnDetector:
    """The ``mtcnn`` package's detector (weights ship in its wheel; runs on TensorFlow).

    Imported only when built, so the suite does not need it otherwise.

    Args:
        min_confidence: detections below this confidence, in ``[0, 1]``, are
            dropped (0.9 by default).

    Raises:
        ValueError: ``min_confidence`` is outside ``[0, 1]``.
        FacesKerasError: the ``mtcnn`` package is not installed.
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        try:
            from mtcnn import MTCNN
        except ImportError as exc:
            raise FacesKerasError(
                "the mtcnn detector needs the mtcnn package: pip install faces-keras[mtcnn] "
                f"(import failed: {exc})") from exc
        self.min_confidence = float(min_confidence)
        self._mtcnn = MTCNN()

    def __repr__(self) -> str:
        return f"MtcnnDetector(min_confidence={self.min_confidence})"

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        rgb = cv2.cvtColor(_to_bgr(image_bgr), cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        boxes = []
        for found in self._mtcnn.detect_faces(rgb) or []:
            confidence = float(found.get("confidence", 0.0))
            if confidence < self.min_confidence:
                continue
            x, y, w, h = (float(v) for v in found["box"])
            # MTCNN boxes may start left of or above the image; clip them into it.
            boxes.append(_scaled_box(x, y, w, h, 1.0, width, height, score=confidence))
        return boxes


# -- factory --------------------------------------------------------------------------

DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "haar": HaarDetector,
    "mtcnn": MtcnnDetector,
}


def make_detector(name: str = "haar", **params) -> FaceDetector:
    """Build the detector called ``name`` (``haar``, ``mtcnn``) with its parameters.

    Args:
        name: the detector, case-insensitive: ``haar`` (the default, OpenCV's
            Haar cascade) or ``mtcnn`` (needs ``faces-keras[mtcnn]``).
        **params: the detector's keyword arguments: see
            :class:`HaarDetector` (``scale_factor``, ``min_neighbors``,
            ``min_size``, ``max_side``) and :class:`MtcnnDetector`
            (``min_confidence``).

    Returns:
        A :class:`FaceDetector`: ``detector.detect(image_bgr)`` gives boxes.

    Raises:
        ConfigError: ``name`` is not a known detector.
        FacesKerasError: the detector's software is missing (the Haar cascade,
            the ``mtcnn`` package).
        ValueError: a parameter is out of range.
    """
    key = str(name).strip().lower()
    if key not in DETECTORS:
        raise ConfigError(f"unknown face detector {name!r}; known detectors: {', '.join(DETECTORS)}")
    return DETECTORS[key](**params)


# -- choosing and cropping ------------------------------------------------------------

def pick_main_face(boxes: Sequence[Box], image_shape: Sequence[int]) -> Box | None:
    """The face a one-face photo is about: the largest box; ties go to the one nearest the centre.

    Args:
        boxes: the faces found.
        image_shape: the image's shape, ``(H, W, ...)``.

    Returns:
        The main box, or ``None`` when ``boxes`` is empty.
    """
    if not boxes:
        return None
    centre_y, centre_x = image_shape[0] / 2, image_shape[1] / 2

    def distance_to_centre(box: Box) -> float:
        cx, cy = box.center
        return math.hypot(cx - centre_x, cy - centre_y)

    return min(boxes, key=lambda box: (-box.area, distance_to_centre(box)))


def square_around(box: Box, margin: float) -> tuple[int, int, int]:
    """``(left, top, side)`` of the square around ``box`` grown by ``margin`` of its size per side.

    Args:
        box: the face's box.
        margin: the growth per side, as a fraction of the box's longer side.

    Returns:
        The square's left and top edge and its side, in pixels; the square may
        leave the image.
    """
    side = max(1, int(round(max(box.w, box.h) * (1.0 + 2.0 * margin))))
    cx, cy = box.center
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_face(image: np.ndarray, box: Box, margin: float = 0.2, size: int = 64,
              gray: bool = True) -> np.ndarray:
    """Cut the face in ``box`` out of a BGR (or gray) image as ``(size, size, C)`` uint8.

    The box grows by ``margin`` times its size on every side and becomes a
    square around its centre, so the face keeps its proportions. Where the
    square leaves the image the border pixels are repeated, so faces at the
    edge of a photo still give a full crop.

    Args:
        image: a uint8 BGR ``(H, W, 3)``, BGRA, or gray ``(H, W)`` /
            ``(H, W, 1)`` image.
        box: the face, in the image's pixels; it must overlap the image.
        margin: the growth per side as a fraction of the box, >= 0 (0.2 by
            default).
        size: the crop's side in pixels.
        gray: one gray channel (the default); ``False`` gives 3 channels in
            **RGB** order, the order the suite stores colour faces in.

    Returns:
        A contiguous uint8 array ``(size, size, 1)`` or ``(size, size, 3)``.

    Raises:
        ValueError: ``margin`` or ``size`` is out of range, or ``box`` does not
            overlap the image.
        ImageError: ``image`` is not a uint8 image of a supported shape.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0 (a fraction of the box per side), got {margin!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    _check_image(image)
    height, width = image.shape[:2]
    if box.w <= 0 or box.h <= 0 or box.x >= width or box.y >= height or box.x + box.w <= 0 or box.y + box.h <= 0:
        raise ValueError(f"{box} does not overlap the {width}x{height} image")
    left, top, side = square_around(box, margin)
    inside = image[max(0, top):min(height, top + side), max(0, left):min(width, left + side)]
    pads = (max(0, -top), max(0, top + side - height), max(0, -left), max(0, left + side - width))
    if any(pads):
        inside = cv2.copyMakeBorder(inside, *pads, cv2.BORDER_REPLICATE)
    colour = _to_gray(inside) if gray else cv2.cvtColor(_to_bgr(inside), cv2.COLOR_BGR2RGB)
    # INTER_AREA averages when shrinking (no aliasing); when enlarging a small
    # face it degrades to nearest-neighbour, so enlarge bilinearly instead.
    interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    resized = cv2.resize(colour, (size, size), interpolation=interpolation)
    if resized.ndim == 2:
        resized = resized[..., None]
    return np.ascontiguousarray(resized, dtype=np.uint8)


def detect_and_crop(image_bgr: np.ndarray, detector: FaceDetector, *, margin: float = 0.2,
                    size: int = 64, gray: bool = True,
                    expect_one: bool = False) -> tuple[list[np.ndarray], list[Box]]:
    """Detect faces and crop each; with ``expect_one`` only the main face (see :func:`pick_main_face`).

    Args:
        image_bgr: a uint8 BGR ``(H, W, 3)`` (or gray, or BGRA) photo.
        detector: a :class:`FaceDetector`, e.g. from :func:`make_detector`.
        margin: the growth of each box per side before cropping, as a fraction
            of its size (0.2 by default; see :func:`crop_face`).
        size: the crops' side in pixels.
        gray: gray crops ``(size, size, 1)`` (the default); ``False`` gives RGB
            ``(size, size, 3)``.
        expect_one: keep only the main face (a photo of one person).

    Returns:
        A pair ``(crops, boxes)`` in the same order, the boxes in the photo's
        pixels; both empty when no face is found.

    Raises:
        ImageError: ``image_bgr`` is not a uint8 image of a supported shape.
    """
    boxes = detector.detect(image_bgr)
    if expect_one:
        main = pick_main_face(boxes, image_bgr.shape)
        boxes = [] if main is None else [main]
    crops = [crop_face(image_bgr, box, margin=margin, size=size, gray=gray) for box in boxes]
    return crops, boxes


# -- drawing --------------------------------------------------------------------------

def draw_boxes(image_bgr: np.ndarray, boxes: Sequence[Box], labels: Sequence[str] | None = None,
               colors: Sequence[tuple[int, int, int]] | None = None) -> np.ndarray:
    """An annotated BGR copy: a rectangle per face and, if given, its label above it.

    Labels sit on a filled band in the box's colour, in black or white
    whichever contrasts more, so they read on any photo. A gray input comes
    back as BGR so the colours show. The input is never modified. Line width
    and text size grow with the photo.

    Args:
        image_bgr: a uint8 BGR (or gray, or BGRA) photo.
        boxes: the faces to draw, in the photo's pixels.
        labels: one text per box (an empty one draws no band); ``None`` (the
            default) draws rectangles only.
        colors: one BGR colour ``(b, g, r)`` per box, 0-255; ``None`` draws
            every box in green.

    Returns:
        A new uint8 BGR array ``(H, W, 3)``.

    Raises:
        ValueError: ``labels`` or ``colors`` does not have one entry per box.
        ImageError: ``image_bgr`` is not a uint8 image of a supported shape.
    """
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"got {len(labels)} labels for {len(boxes)} boxes")
    if colors is not None and len(colors) != len(boxes):
        raise ValueError(f"got {len(colors)} colors for {len(boxes)} boxes")
    canvas = _to_bgr(image_bgr)
    height, width = canvas.shape[:2]
    # Line and text sizes follow the photo's size so they stay visible on big photos.
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.4, min(height, width) / 1000)
    for i, box in enumerate(boxes):
        color = tuple(int(c) for c in (colors[i] if colors is not None else BOX_COLOR_BGR))
        cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), color, thickness)
        if labels is not None and labels[i]:
            _draw_label(canvas, str(labels[i]), box, color, font_scale, thickness)
    return canvas


def _draw_label(canvas: np.ndarray, text: str, box: Box, color: tuple[int, ...], font_scale: float,
                thickness: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (text_w, text_h), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    band_h = text_h + baseline + 2 * thickness
    # Above the box if there is room, else just inside its top edge.
    top = box.y - band_h if box.y - band_h >= 0 else box.y
    left = min(max(0, box.x), max(0, canvas.shape[1] - text_w - 2 * thickness))
    cv2.rectangle(canvas, (left, top), (left + text_w + 2 * thickness, top + band_h), color, cv2.FILLED)
    b, g, r = color[:3]
    ink = (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 128 else (255, 255, 255)
    cv2.putText(canvas, text, (left + thickness, top + thickness + text_h), font, font_scale, ink,
                thickness, cv2.LINE_AA)
