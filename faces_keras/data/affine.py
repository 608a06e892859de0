"""One Keras layer for the online geometric augmentation: flip, rotation, zoom and width as ONE warp.

Keras's own layers (``RandomFlip``, ``RandomRotation``, two ``RandomZoom``)
each resample the whole batch; on a CPU those three resamplings were 14% of a
training step of the default model (docs/benchmarks/models.md). This layer
draws the same random changes per face, composes them into one affine matrix
and resamples once, with ``keras.ops.image.affine_transform`` (any backend).

Importing this module imports Keras (:mod:`faces_keras.data.augment` does not:
it imports this module only when online augmentation is built).
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="faces_keras")
class RandomFaceAffine(keras.layers.Layer):
    """Mirror, rotate, zoom and narrow/widen each face at random, in one resampling.

    Per face it draws what the separate Keras layers would: a mirror image
    with probability 1/2 (``flip``), an angle uniform in
    ``[-rotation_degrees, rotation_degrees]``, a zoom of both axes uniform in
    ``[1 - zoom, 1 + zoom]`` and an extra width factor uniform in
    ``[1 - width_factor, 1 + width_factor]``, all about the image centre as
    Keras's layers do. The composition is applied as one affine warp, so the
    face is interpolated once (not three times) and only the final image's
    borders are filled (``fill_mode``).

    Like Keras's preprocessing layers it acts only in training: in ``fit``, or
    called with ``training=True`` (also when called with no ``training``
    argument outside ``fit``); ``predict`` and ``training=False`` return the
    input unchanged.

    Args:
        flip: mirror half of the faces left to right.
        rotation_degrees: the largest rotation either way, in degrees.
        zoom: the largest relative zoom in or out of both axes, in [0, 1).
        width_factor: the largest relative change of the width only, in [0, 1).
        fill_mode: how pixels from outside the image are filled:
            ``"reflect"``, ``"wrap"``, ``"nearest"`` or ``"constant"`` (0).
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: makes the draws repeatable; ``None`` draws anew each run.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``).
    """

    def __init__(self, flip: bool = True, rotation_degrees: float = 22.0, zoom: float = 0.15,
                 width_factor: float = 0.15, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.flip = bool(flip)
        self.rotation_degrees = float(rotation_degrees)
        self.zoom = float(zoom)
        self.width_factor = float(width_factor)
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        # affine_transform is ImageProjectiveTransformV3 on TensorFlow, which XLA cannot compile.
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def _uniform(self, count, spread: float, centre: float = 0.0):
        if spread == 0:
            return ops.full((count,), centre, dtype="float32")
        return keras.random.uniform((count,), centre - spread, centre + spread, seed=self.generator)

    def transform_matrix(self, count, height: int, width: int):
        """The random warps of ``count`` faces, in ``affine_transform``'s 8-number form.

        Args:
            count: how many faces (the batch size, a tensor or an int).
            height: the faces' height in pixels.
            width: the faces' width in pixels.

        Returns:
            A ``(count, 8)`` float32 tensor; row ``[a0, a1, a2, b0, b1, b2, 0, 0]``
            maps output pixel ``(x, y)`` to input ``(a0 x + a1 y + a2,
            b0 x + b1 y + b2)``.
        """
        angle = self._uniform(count, self.rotation_degrees) * (math.pi / 180.0)
        scale_y = self._uniform(count, self.zoom, 1.0)
        scale_x = scale_y * self._uniform(count, self.width_factor, 1.0)
        if self.flip:
            mirror = keras.random.uniform((count,), seed=self.generator) < 0.5
            scale_x = ops.where(mirror, -scale_x, scale_x)
        cos, sin = ops.cos(angle), ops.sin(angle)
        # rotation @ diag(scale_x, scale_y) about the centre (Keras's layers use (size - 1) / 2)
        a0, a1, b0, b1 = cos * scale_x, -sin * scale_y, sin * scale_x, cos * scale_y
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        zero = ops.zeros_like(a0)
        return ops.stack([a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, zero, zero], axis=1)

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.cast(images, self.compute_dtype)
        if ops.ndim(images) == 3:
            return self.call(images[None], training=True)[0]
        matrix = self.transform_matrix(ops.shape(images)[0], images.shape[1], images.shape[2])
        return ops.image.affine_transform(images, matrix, interpolation=self.interpolation,
                                          fill_mode=self.fill_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "flip": self.flip, "rotation_degrees": self.rotation_degrees,
                "zoom": self.zoom, "width_factor": self.width_factor, "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "seed": self.seed}
