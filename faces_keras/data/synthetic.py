"""Synthetic grid photos of cartoon faces with known labels, for the quickstart.

``faces-keras quickstart`` has to run without any downloaded data, so the
package draws its own: cartoon faces (head, eyes, nose, mouth on a random
background) whose attributes follow the original project's labels ``sex``,
``hair``, ``glasses``, ``hat`` and ``beard``. The faces are laid out in grid
photos named and numbered like the original project's sources, with a labels
CSV in its format, so the quickstart exercises the real loaders.

Each label is drawn exactly as the CSV says (no label noise), but every cue
varies in shape, colour, contrast and position, and the whole face is
jittered, rotated, blurred and noised, so a small CNN learns the labels
without reaching a perfect score. Some cues are faint on purpose: thin
low-contrast glasses, light stubble, blond eyebrows.

Drawing a face consumes the random generator identically whatever its
labels, so two faces drawn from the same generator state differ only where
the changed attribute is drawn; the tests rely on this.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faces_keras.errors import DatasetError
from faces_keras.io import atomic_path, atomic_write_text

LABEL_NAMES = ("sex", "hair", "glasses", "hat", "beard")
# The original project's one-character codes, indexed by the encoded value:
# CSV_CODES["sex"][1] == "M" (see datasets/original.yaml).
CSV_CODES = {
    "sex": ("F", "M"),
    "hair": ("S", "L"),
    "glasses": ("N", "Y"),
    "hat": ("N", "Y"),
    "beard": ("N", "Y"),
}
CSV_HEADER = "face_nr;" + ";".join(LABEL_NAMES)
LABELS_FILE = "labels.csv"
EMPTY_CELL_BGR = (128, 128, 128)
MIN_CELL = 16
# Faces are drawn at this multiple of the cell size and shrunk with area
# averaging: cheap anti-aliasing for thin lines such as glasses frames.
SUPERSAMPLE = 2
_GRID_NAME = re.compile(r"^faces\d+-\d+x\d+-\d+x\d+\.png$")

_SKIN_LIGHT = np.array([180, 205, 240], np.float32)  # BGR
_SKIN_DARK = np.array([50, 80, 125], np.float32)
_HAIR_COLOURS = np.array([
    [25, 25, 30],     # black
    [30, 45, 70],     # dark brown
    [45, 80, 120],    # brown
    [110, 175, 215],  # blond
    [40, 70, 150],    # auburn
    [165, 165, 170],  # grey
], np.float32)
_IRIS_COLOURS = np.array([[30, 50, 80], [140, 100, 40], [70, 120, 60], [30, 30, 30]], np.float32)
_LIPSTICK_COLOURS = np.array([[60, 40, 190], [150, 110, 230], [45, 30, 140]], np.float32)


@dataclass(frozen=True)
class Prevalence:
    """Share of faces with each label; ``sex`` is the share of M faces.

    Beards are drawn on M faces only, and long hair is ``hair_sex_gap`` more
    likely on F faces than on M faces, as in real photos, while the overall
    shares stay ``hair`` and ``beard``.
    """

    sex: float = 0.5
    hair: float = 0.45
    glasses: float = 0.2
    hat: float = 0.15
    beard: float = 0.25
    hair_sex_gap: float = 0.5

    def __post_init__(self) -> None:
        for name in ("sex", "hair", "glasses", "hat", "beard", "hair_sex_gap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DatasetError(f"synthetic prevalence {name}={value}: expected a share in [0, 1]")
        if self.beard > self.sex:
            raise DatasetError(f"synthetic prevalence beard={self.beard} exceeds sex={self.sex}: "
                               "beards are drawn on M faces only")
        for sex in (0, 1):
            p = self.long_hair_given(sex)
            if not 0.0 <= p <= 1.0:
                raise DatasetError(f"synthetic prevalence hair={self.hair} with hair_sex_gap="
                                   f"{self.hair_sex_gap} gives P(long hair | sex={sex}) = {p:.3f}; "
                                   "lower the gap")

    def long_hair_given(self, sex: int) -> float:
        """P(long hair | sex), keeping the overall share at ``hair``."""
        if sex:
            return self.hair - (1.0 - self.sex) * self.hair_sex_gap
        return self.hair + self.sex * self.hair_sex_gap

    def beard_given_male(self) -> float:
        return self.beard / self.sex if self.sex > 0 else 0.0


def sample_labels(rng: np.random.Generator, prevalence: Prevalence = Prevalence()) -> dict[str, int]:
    """Draw one face's labels; always consumes five uniforms from ``rng``."""
    u = rng.random(5)
    sex = int(u[0] < prevalence.sex)
    return {
        "sex": sex,
        "hair": int(u[1] < prevalence.long_hair_given(sex)),
        "glasses": int(u[2] < prevalence.glasses),
        "hat": int(u[3] < prevalence.hat),
        "beard": int(sex == 1 and u[4] < prevalence.beard_given_male()),
    }


# -- drawing ----------------------------------------------------------------------

@dataclass
class _Head:
    """Where the head is on the canvas (pixels) and the colours shared by its parts."""

    canvas: np.ndarray
    cx: float
    cy: float
    a: float  # half-width
    b: float  # half-height
    skin: np.ndarray
    hair: np.ndarray
    outline: np.ndarray  # int32 (n, 2) polygon of the head
    eye_y: float
    eye_dx: float
    mouth_y: float
    hairline_y: float


def _bgr(colour: np.ndarray) -> tuple[int, int, int]:
    b, g, r = (min(max(int(c), 0), 255) for c in colour)
    return b, g, r


def _pt(x: float, y: float) -> tuple[int, int]:
    return math.floor(x + 0.5), math.floor(y + 0.5)


def _luma(colour: np.ndarray) -> float:
    return float(colour @ np.array([0.114, 0.587, 0.299], np.float32))  # BGR


def _darker_than(colour: np.ndarray, other: np.ndarray, margin: float) -> np.ndarray:
    """``colour``, darkened where needed to be ``margin`` below ``other`` in brightness.

    Keeps a blond beard on light skin, or a thin frame, visible to a human.
    """
    luma, target = _luma(colour), _luma(other) - margin
    if luma <= target:
        return colour
    return colour * (max(target, 12.0) / max(luma, 1e-3))


def _lerp(low: float, high: float, u: float) -> float:
    return low + (high - low) * u


def _head_outline(cx: float, cy: float, a: float, b: float, jaw_power: float) -> np.ndarray:
    """A superellipse: round on top, squarer below as ``jaw_power`` grows past 2."""
    t = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    cos, sin = np.cos(t), np.sin(t)
    power = np.where(sin > 0, jaw_power, 2.1)  # image y grows downwards: sin > 0 is the jaw
    x = cx + a * np.sign(cos) * np.abs(cos) ** (2.0 / power)
    y = cy + b * np.sign(sin) * np.abs(sin) ** (2.0 / power)
    return np.round(np.stack([x, y], axis=1)).astype(np.int32)


def _new_head(rng: np.random.Generator, width: int, sex: int) -> _Head:
    u = rng.random(11)
    hair_index = int(rng.integers(len(_HAIR_COLOURS)))
    jitter = rng.normal(0.0, 10.0, size=(3, 3)).astype(np.float32)
    # Sex cues overlap on purpose: M faces are a little wider, shorter and squarer-jawed.
    a = width * _lerp(0.19, 0.225, u[0]) * (1.05 if sex else 1.0)
    b = a * (_lerp(1.15, 1.35, u[1]) if sex else _lerp(1.25, 1.45, u[1]))
    jaw_power = _lerp(2.4, 3.6, u[2]) if sex else _lerp(1.9, 2.6, u[2])
    cx = width * (0.5 + _lerp(-0.06, 0.06, u[3]))
    cy = width * (0.53 + _lerp(-0.04, 0.05, u[4]))
    grey = _lerp(60, 200, u[5])
    background = np.full(3, grey, np.float32) + jitter[0] * 2.5
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * u[6] + jitter[1]
    hair = _HAIR_COLOURS[hair_index] + jitter[2]
    canvas = np.empty((width, width, 3), np.uint8)
    canvas[:] = _bgr(background)
    return _Head(
        canvas=canvas, cx=cx, cy=cy, a=a, b=b, skin=skin, hair=hair,
        outline=_head_outline(cx, cy, a, b, jaw_power),
        eye_y=cy - b * _lerp(0.05, 0.16, u[7]),
        eye_dx=a * _lerp(0.36, 0.46, u[8]),
        mouth_y=cy + b * _lerp(0.42, 0.54, u[9]),
        hairline_y=cy - b * _lerp(0.38, 0.58, u[10]),
    )


def _draw_shoulders(rng: np.random.Generator, h: _Head) -> None:
    u = rng.random(3)
    colour = rng.uniform(20, 235, 3)
    top = h.cy + h.b * _lerp(1.05, 1.2, u[0])
    axes = _pt(h.a * _lerp(1.7, 2.3, u[1]), h.b * _lerp(0.5, 0.7, u[2]))
    cv2.ellipse(h.canvas, _pt(h.cx, top + axes[1]), axes, 0, 0, 360, _bgr(colour), -1, cv2.LINE_AA)


def _draw_long_hair_back(rng: np.random.Generator, h: _Head, long_hair: bool) -> None:
    u = rng.random(3)
    if not long_hair:
        return
    colour = _bgr(h.hair * 0.85)
    half = h.a * _lerp(1.2, 1.4, u[0])
    bottom = h.cy + h.b * _lerp(0.95, 1.45, u[1])
    cv2.ellipse(h.canvas, _pt(h.cx, h.cy - 0.05 * h.b), _pt(half, h.b * 1.12), 0, 0, 360, colour, -1, cv2.LINE_AA)
    corner = h.a * _lerp(0.1, 0.4, u[2])
    body = np.array([
        _pt(h.cx - half, h.cy), _pt(h.cx + half, h.cy),
        _pt(h.cx + half, bottom - corner), _pt(h.cx + half - corner, bottom),
        _pt(h.cx - half + corner, bottom), _pt(h.cx - half, bottom - corner),
    ], np.int32)
    cv2.fillPoly(h.canvas, [body], colour, cv2.LINE_AA)


def _draw_neck_ears_head(rng: np.random.Generator, h: _Head, sex: int) -> None:
    u = rng.random(2)
    neck_half = h.a * (_lerp(0.42, 0.55, u[0]) if sex else _lerp(0.34, 0.46, u[0]))
    cv2.rectangle(h.canvas, _pt(h.cx - neck_half, h.cy), _pt(h.cx + neck_half, h.cy + h.b * 1.6),
                  _bgr(h.skin * 0.82), -1)
    ear_axes = _pt(h.a * 0.14, h.b * _lerp(0.15, 0.2, u[1]))
    for side in (-1, 1):
        cv2.ellipse(h.canvas, _pt(h.cx + side * h.a * 0.97, h.eye_y + 0.1 * h.b), ear_axes, 0, 0, 360,
                    _bgr(h.skin * 0.9), -1, cv2.LINE_AA)
    cv2.fillPoly(h.canvas, [h.outline], _bgr(h.skin), cv2.LINE_AA)


def _draw_beard(rng: np.random.Generator, h: _Head, beard: bool) -> None:
    u = rng.random(6)
    # Full beards are the most common style, goatees the rarest.
    style = int(np.searchsorted([0.5, 0.7], u[5], side="right"))  # 0 full beard, 1 goatee, 2 stubble
    width = h.canvas.shape[0]
    texture = rng.random((width, width), dtype=np.float32)
    if not beard:
        return
    top = h.cy + h.b * _lerp(-0.05, 0.15, u[0])
    jaw = h.outline[h.outline[:, 1] > top]
    mask = np.zeros((width, width), np.uint8)
    cv2.fillPoly(mask, [jaw], 255, cv2.LINE_AA)
    if style == 1:  # goatee: the chin only
        chin = np.zeros_like(mask)
        chin_bottom = h.cy + h.b
        chin_axes = _pt(h.a * _lerp(0.3, 0.45, u[1]), chin_bottom - h.mouth_y + 0.12 * h.b)
        cv2.ellipse(chin, _pt(h.cx, chin_bottom), chin_axes, 0, 0, 360, 255, -1)
        mask = np.minimum(mask, chin)
    if style == 2:  # stubble: dark dots one output pixel wide, sparse and sometimes faint
        colour = _darker_than(h.hair * 0.6, h.skin, margin=70.0)
        dots = texture[::SUPERSAMPLE, ::SUPERSAMPLE].repeat(SUPERSAMPLE, 0).repeat(SUPERSAMPLE, 1)
        alpha = (dots < _lerp(0.3, 0.65, u[3])).astype(np.float32) * _lerp(0.4, 0.9, u[2])
    else:
        colour = _darker_than(h.hair * 0.75, h.skin, margin=60.0)
        alpha = (0.75 + 0.25 * texture) * _lerp(0.7, 1.0, u[2])
    alpha = (alpha * (mask.astype(np.float32) / 255.0))[:, :, None]
    blended = h.canvas.astype(np.float32) * (1.0 - alpha) + colour * alpha
    h.canvas[:] = np.clip(blended, 0, 255).astype(np.uint8)
    if style != 2:  # moustache
        thickness = max(2, int(round(h.b * _lerp(0.06, 0.12, u[4]))))
        cv2.line(h.canvas, _pt(h.cx - h.a * 0.38, h.mouth_y - 0.1 * h.b),
                 _pt(h.cx + h.a * 0.38, h.mouth_y - 0.1 * h.b), _bgr(colour), thickness, cv2.LINE_AA)


def _draw_nose_mouth(rng: np.random.Generator, h: _Head, sex: int) -> None:
    u = rng.random(8)
    lipstick_index = int(rng.integers(len(_LIPSTICK_COLOURS)))
    nose_colour = _bgr(h.skin * _lerp(0.65, 0.8, u[0]))
    tip_y = h.cy + h.b * _lerp(0.18, 0.28, u[1])
    tip_x = h.cx + h.a * _lerp(-0.05, 0.05, u[2])
    cv2.line(h.canvas, _pt(h.cx, h.eye_y + 0.1 * h.b), _pt(tip_x, tip_y), nose_colour, 2, cv2.LINE_AA)
    cv2.ellipse(h.canvas, _pt(tip_x, tip_y), _pt(h.a * 0.13, h.a * 0.05), 0, 0, 180, nose_colour, 2, cv2.LINE_AA)
    # Lip colour: most F faces wear lipstick of varying strength; M lips are darker skin.
    plain_lips = h.skin * np.array([0.7, 0.7, 0.85], np.float32)
    if sex == 0 and u[3] < 0.75:
        strength = _lerp(0.4, 1.0, u[4])
        lips = plain_lips * (1 - strength) + _LIPSTICK_COLOURS[lipstick_index] * strength
    else:
        lips = plain_lips * _lerp(0.8, 1.0, u[4])
    thickness = int(round(_lerp(4, 7, u[5]) if sex == 0 else _lerp(2.5, 5, u[5])))
    half_width = h.a * _lerp(0.26, 0.4, u[6])
    smile = h.a * _lerp(0.02, 0.14, u[7])
    cv2.ellipse(h.canvas, _pt(h.cx, h.mouth_y - smile), _pt(half_width, max(smile, 1.0)), 0, 0, 180,
                _bgr(lips), thickness, cv2.LINE_AA)


def _draw_eyes_brows(rng: np.random.Generator, h: _Head, sex: int) -> None:
    u = rng.random(8)
    iris = _IRIS_COLOURS[int(rng.integers(len(_IRIS_COLOURS)))]
    eye_axes = _pt(h.a * _lerp(0.15, 0.2, u[0]), h.a * _lerp(0.075, 0.1, u[1]))
    gaze = h.a * _lerp(-0.04, 0.04, u[2])
    brow_y = h.eye_y - h.a * _lerp(0.2, 0.3, u[3])
    # Brows: M thicker and flatter, F thinner and arched; the ranges overlap.
    brow_thickness = int(round(_lerp(3, 6, u[4]) if sex else _lerp(1.5, 3.5, u[4])))
    brow_arch = h.a * (_lerp(0.02, 0.06, u[5]) if sex else _lerp(0.05, 0.1, u[5]))
    brow_colour = _bgr(h.hair * _lerp(0.55, 0.85, u[6]))
    eyeliner = sex == 0 and u[7] < 0.6
    for side in (-1, 1):
        ex = h.cx + side * h.eye_dx
        centre = _pt(ex, h.eye_y)
        cv2.ellipse(h.canvas, centre, eye_axes, 0, 0, 360, (235, 235, 235), -1, cv2.LINE_AA)
        cv2.circle(h.canvas, _pt(ex + gaze, h.eye_y), max(2, eye_axes[1]), _bgr(iris), -1, cv2.LINE_AA)
        cv2.circle(h.canvas, _pt(ex + gaze, h.eye_y), max(1, eye_axes[1] // 2), (10, 10, 10), -1, cv2.LINE_AA)
        if eyeliner:
            cv2.ellipse(h.canvas, centre, eye_axes, 0, 180, 360, (20, 20, 20), 2, cv2.LINE_AA)
        cv2.ellipse(h.canvas, _pt(ex, brow_y + brow_arch), _pt(h.a * 0.22, max(brow_arch, 1.0)), 0, 200, 340,
                    brow_colour, brow_thickness, cv2.LINE_AA)


def _draw_hair_front(rng: np.random.Generator, h: _Head, long_hair: bool) -> None:
    u = rng.random(4)
    colour = _bgr(h.hair)
    top = h.cy - h.b * _lerp(1.04, 1.16, u[0])
    cap_axes = _pt(h.a * _lerp(1.02, 1.1, u[1]), h.hairline_y - top)
    cv2.ellipse(h.canvas, _pt(h.cx, h.hairline_y), cap_axes, 0, 180, 360, colour, -1, cv2.LINE_AA)
    if not long_hair:
        # Sideburns: short hair stops around the eyes.
        for side in (-1, 1):
            x = h.cx + side * h.a * 0.97
            cv2.line(h.canvas, _pt(x, h.hairline_y), _pt(x, h.eye_y + _lerp(0.0, 0.1, u[2]) * h.b),
                     colour, max(2, int(h.a * 0.16)), cv2.LINE_AA)
        return
    # Long hair falls over the sides of the face, past the jaw.
    bottom = h.cy + h.b * _lerp(0.85, 1.3, u[3])
    for side in (-1, 1):
        strand = np.array([
            _pt(h.cx + side * h.a * 1.12, h.hairline_y),
            _pt(h.cx + side * h.a * _lerp(0.7, 0.8, u[2]), h.hairline_y),
            _pt(h.cx + side * h.a * 0.86, h.cy + 0.3 * h.b),
            _pt(h.cx + side * h.a * 0.9, bottom),
            _pt(h.cx + side * h.a * 1.25, bottom),
        ], np.int32)
        cv2.fillPoly(h.canvas, [strand], colour, cv2.LINE_AA)


def _draw_glasses(rng: np.random.Generator, h: _Head, glasses: bool) -> None:
    u = rng.random(6)
    shape = int(rng.integers(2))  # 0 round, 1 rectangular
    frame_colour = rng.uniform(0, 90, 3)
    if not glasses:
        return
    radius = h.a * _lerp(0.2, 0.28, u[0])
    faint = u[1] < 0.25
    if faint:  # a thin frame in a shade of the skin: low contrast, but visible
        colour = _bgr(_darker_than(h.skin * _lerp(0.45, 0.7, u[2]), h.skin, margin=40.0))
        thickness = 2
    else:
        colour = _bgr(frame_colour)
        thickness = int(round(_lerp(3, 5, u[2])))
    sunglasses = u[3] < 0.15
    y = h.eye_y + h.a * _lerp(-0.03, 0.03, u[4])
    for side in (-1, 1):
        x = h.cx + side * h.eye_dx
        if sunglasses:
            lens = h.canvas.copy()
            cv2.circle(lens, _pt(x, y), int(radius), (25, 25, 25), -1, cv2.LINE_AA)
            cv2.addWeighted(lens, 0.75, h.canvas, 0.25, 0, dst=h.canvas)
        if shape == 0:
            cv2.circle(h.canvas, _pt(x, y), int(round(radius)), colour, thickness, cv2.LINE_AA)
        else:
            cv2.rectangle(h.canvas, _pt(x - radius * 1.1, y - radius * 0.8), _pt(x + radius * 1.1, y + radius * 0.8),
                          colour, thickness, cv2.LINE_AA)
        outer = x + side * radius * (1.0 if shape == 0 else 1.1)
        cv2.line(h.canvas, _pt(outer, y - radius * 0.3), _pt(h.cx + side * h.a * 1.0, y - radius * 0.5),
                 colour, thickness, cv2.LINE_AA)
    inner = h.eye_dx - radius * (1.0 if shape == 0 else 1.1)
    bridge_y = y - radius * _lerp(0.0, 0.3, u[5])
    cv2.line(h.canvas, _pt(h.cx - inner, bridge_y), _pt(h.cx + inner, bridge_y), colour, thickness, cv2.LINE_AA)


def _draw_hat(rng: np.random.Generator, h: _Head, hat: bool) -> None:
    u = rng.random(5)
    style = int(rng.integers(3))  # 0 brimmed hat, 1 cap, 2 beanie
    colour = rng.uniform(15, 240, 3)
    band = rng.uniform(15, 240, 3)
    if not hat:
        return
    brim_y = h.cy - h.b * _lerp(0.45, 0.62, u[0])
    crown_height = h.b * _lerp(0.6, 0.9, u[1])
    if style == 0:
        crown_half = h.a * _lerp(0.8, 0.95, u[2])
        cv2.rectangle(h.canvas, _pt(h.cx - crown_half, brim_y - crown_height), _pt(h.cx + crown_half, brim_y),
                      _bgr(colour), -1)
        cv2.rectangle(h.canvas, _pt(h.cx - crown_half, brim_y - crown_height * 0.3), _pt(h.cx + crown_half, brim_y),
                      _bgr(band), -1)
        cv2.ellipse(h.canvas, _pt(h.cx, brim_y), _pt(h.a * _lerp(1.3, 1.65, u[3]), h.b * _lerp(0.06, 0.11, u[4])),
                    0, 0, 360, _bgr(colour * 0.85), -1, cv2.LINE_AA)
    elif style == 1:
        cv2.ellipse(h.canvas, _pt(h.cx, brim_y), _pt(h.a * 1.08, crown_height), 0, 180, 360, _bgr(colour), -1,
                    cv2.LINE_AA)
        side = 1 if u[2] < 0.5 else -1
        cv2.ellipse(h.canvas, _pt(h.cx + side * h.a * _lerp(0.5, 0.9, u[3]), brim_y),
                    _pt(h.a * 0.75, h.b * _lerp(0.08, 0.14, u[4])), 0, 0, 180, _bgr(colour * 0.8), -1, cv2.LINE_AA)
    else:
        cv2.ellipse(h.canvas, _pt(h.cx, brim_y + 0.05 * h.b), _pt(h.a * 1.15, crown_height), 0, 180, 360,
                    _bgr(colour), -1, cv2.LINE_AA)
        cv2.rectangle(h.canvas, _pt(h.cx - h.a * 1.1, brim_y - 0.12 * h.b), _pt(h.cx + h.a * 1.1, brim_y + 0.08 * h.b),
                      _bgr(band), -1)


def _finish(rng: np.random.Generator, h: _Head, size: int) -> np.ndarray:
    """Rotate, shrink, blur, relight and noise the drawing into the final face."""
    u = rng.random(5)
    noise = rng.standard_normal((size, size, 3), dtype=np.float32)
    rotation = cv2.getRotationMatrix2D((h.cx, h.cy), _lerp(-8, 8, u[0]), 1.0)
    width = h.canvas.shape[0]
    image = cv2.warpAffine(h.canvas, rotation, (width, width), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    image = cv2.GaussianBlur(image, (0, 0), _lerp(0.3, 1.0, u[1]))
    # Light falling from one side and from above or below.
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    light = 1.0 + ramp[None, :] * _lerp(-0.2, 0.2, u[2]) + ramp[:, None] * _lerp(-0.15, 0.15, u[4])
    out = image.astype(np.float32) * light[:, :, None] + noise * _lerp(2.0, 7.0, u[3])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _checked_labels(labels: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(labels) - set(LABEL_NAMES))
    if unknown:
        raise DatasetError(f"synthetic face labels {unknown} unknown; expected some of {list(LABEL_NAMES)}")
    checked = {}
    for name in LABEL_NAMES:
        value = labels.get(name, 0)
        if value not in (0, 1):
            raise DatasetError(f"synthetic face label {name}={value!r}: expected 0 or 1")
        checked[name] = int(value)
    return checked


def draw_face(rng: np.random.Generator, labels: dict[str, int], size: int = 64) -> np.ndarray:
    """Draw one cartoon face showing ``labels``; a ``(size, size, 3)`` uint8 BGR image.

    ``labels`` maps some of :data:`LABEL_NAMES` to 0/1 (missing ones are 0):
    ``sex`` 1 = M, ``hair`` 1 = long, ``glasses``/``hat``/``beard`` 1 = present.
    The generator is consumed the same way whatever the labels.
    """
    if size < MIN_CELL:
        raise DatasetError(f"synthetic face size {size}: expected at least {MIN_CELL} px")
    labels = _checked_labels(labels)
    sex, long_hair = labels["sex"], bool(labels["hair"])
    head = _new_head(rng, size * SUPERSAMPLE, sex)
    _draw_shoulders(rng, head)
    _draw_long_hair_back(rng, head, long_hair)
    _draw_neck_ears_head(rng, head, sex)
    _draw_beard(rng, head, bool(labels["beard"]))
    _draw_nose_mouth(rng, head, sex)
    _draw_eyes_brows(rng, head, sex)
    _draw_hair_front(rng, head, long_hair)
    _draw_glasses(rng, head, bool(labels["glasses"]))
    _draw_hat(rng, head, bool(labels["hat"]))
    return _finish(rng, head, size)


# -- grid photos --------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticGrids:
    """What :func:`make_synthetic_grids` wrote."""

    photos: list[Path]
    labels_csv: Path
    n_faces: int
    cols: int
    rows: int
    cell: int


def grid_photo_names(n_faces: int, cols: int, rows: int, cell: int) -> list[str]:
    """File names of the grid photos holding ``n_faces`` faces, in numbering order."""
    n_photos = math.ceil(n_faces / (cols * rows))
    # Zero-pad the photo number when there are 10 or more photos, so that
    # plain alphabetical order (faces02 < faces10) is also numbering order;
    # unpadded, faces10 would sort before faces2.
    digits = len(str(n_photos)) if n_photos >= 10 else 1
    return [f"faces{i:0{digits}d}-{cols}x{rows}-{cols * cell}x{rows * cell}.png" for i in range(1, n_photos + 1)]


def _check_layout(n_faces: int, cols: int, rows: int, cell: int) -> None:
    for name, value, least in (("n_faces", n_faces, 1), ("cols", cols, 1), ("rows", rows, 1), ("cell", cell, MIN_CELL)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise DatasetError(f"synthetic grids: {name}={value!r}; expected an integer >= {least}")


def _check_no_stale_photos(out_dir: Path, names: list[str]) -> None:
    """Refuse a folder holding other grid photos: loaders would number their faces too."""
    if not out_dir.is_dir():
        return
    stale = sorted(p.name for p in out_dir.iterdir() if _GRID_NAME.match(p.name) and p.name not in names)
    if stale:
        raise DatasetError(f"{out_dir}: already holds grid photos of another layout ({', '.join(stale[:3])}"
                           f"{', ...' if len(stale) > 3 else ''}); remove them or choose an empty folder")


def _csv_line(face_nr: int, labels: dict[str, int]) -> str:
    return ";".join([str(face_nr)] + [CSV_CODES[name][labels[name]] for name in LABEL_NAMES])


def make_synthetic_grids(out_dir: str | Path, n_faces: int = 600, cols: int = 10, rows: int = 10,
                         cell: int = 64, seed: int = 0, prevalence: Prevalence | None = None) -> SyntheticGrids:
    """Write grid photos of ``n_faces`` synthetic faces and their ``labels.csv`` into ``out_dir``.

    Photos are ``faces<i>-<cols>x<rows>-<width>x<height>.png``; faces are
    numbered from 1 row by row, photo after photo. Cells after the last face
    are plain grey and absent from the CSV. The same seed writes the same bytes.
    """
    _check_layout(n_faces, cols, rows, cell)
    prevalence = prevalence or Prevalence()
    out_dir = Path(out_dir)
    names = grid_photo_names(n_faces, cols, rows, cell)
    _check_no_stale_photos(out_dir, names)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines, photos = [CSV_HEADER], []
    per_photo = cols * rows
    for photo_index, name in enumerate(names):
        grid = np.empty((rows * cell, cols * cell, 3), np.uint8)
        grid[:] = EMPTY_CELL_BGR
        first = photo_index * per_photo
        for slot in range(min(per_photo, n_faces - first)):
            labels = sample_labels(rng, prevalence)
            r, c = divmod(slot, cols)
            grid[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = draw_face(rng, labels, cell)
            lines.append(_csv_line(first + slot + 1, labels))
        path = out_dir / name
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), grid):
                raise DatasetError(f"{path}: OpenCV could not write the grid photo")
        photos.append(path)
    # The CSV goes last: a complete labels file means every photo is in place.
    labels_csv = out_dir / LABELS_FILE
    atomic_write_text(labels_csv, "\n".join(lines) + "\n")
    return SyntheticGrids(photos=photos, labels_csv=labels_csv, n_faces=n_faces, cols=cols, rows=rows, cell=cell)
