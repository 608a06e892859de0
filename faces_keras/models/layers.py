"""Layers of the suite's own presets, registered so saved models load back.

:class:`FastBatchNormalization` is Keras's ``BatchNormalization`` with a
hand-written gradient for the training step: Keras 3 builds batch norm from
separate moments and arithmetic, and on a CPU differentiating that graph was
about a quarter of a training step of the default model (most of it full-size
element-wise passes, docs/benchmarks/models.md). The result is the same to
float32 rounding; inference is Keras's own code.
"""

from __future__ import annotations

import keras
from keras import ops

import faces_keras.data.affine  # noqa: F401  (registers the online augmentation layer for loading)


@keras.saving.register_keras_serializable(package="faces_keras")
class FastBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step has a hand-written gradient.

    In training (``fit``, or ``training=True``) it normalises with the batch's
    mean and variance and updates the moving statistics as Keras's layer does,
    but computes the variance in the same pass as the mean
    (``E[x^2] - E[x]^2``) and differentiates with the closed-form batch-norm
    gradient (three per-channel sums and one element-wise pass instead of
    Keras's generic graph). Outside training, with a mask, renormalisation,
    synchronised statistics, a non-last ``axis``, ``center`` or ``scale`` off,
    or on the torch backend (which has no ``custom_gradient``), it is Keras's
    own layer, unchanged.

    Args:
        **kwargs: as ``keras.layers.BatchNormalization`` (``momentum``,
            ``epsilon``, ``axis``, ...).
    """

    def _fast_path(self, inputs, training, mask) -> bool:
        channels_last = list(self._reduction_axes) == list(range(len(inputs.shape) - 1))
        return bool(training and self.trainable and mask is None and channels_last and not self.renorm
                    and not self.synchronized and self.center and self.scale
                    and keras.backend.backend() != "torch")

    def call(self, inputs, training=None, mask=None):
        if not self._fast_path(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")  # statistics in float32 under mixed precision, as Keras does
        axes = self._reduction_axes
        mean = ops.mean(x, axis=axes)
        variance = ops.maximum(ops.mean(ops.square(x), axis=axes) - ops.square(mean), 0.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        count = ops.cast(ops.size(x) // ops.shape(x)[-1], "float32")
        epsilon = self.epsilon

        @ops.custom_gradient
        def normalise(x, gamma, beta, mean, variance):
            inv = ops.rsqrt(variance + epsilon)
            a = gamma * inv
            y = x * a + (beta - mean * a)

            def grad(*args, upstream=None):
                dy = args[0] if upstream is None else upstream
                dbeta = ops.sum(dy, axis=axes)
                dgamma = (ops.sum(dy * x, axis=axes) - mean * dbeta) * inv
                # d/dx of gamma * (x - mean) * inv + beta, through mean and variance too
                c = a * inv * dgamma / count
                dx = a * dy - c * x + (c * mean - a * dbeta / count)
                # mean and variance come in with their gradient stopped: the terms above carry it
                return dx, dgamma, dbeta, ops.zeros_like(mean), ops.zeros_like(variance)

            return y, grad

        # "* 1.0": tensors, not variables, so TensorFlow's custom_gradient sees no variable reads inside
        y = normalise(x, self.gamma * 1.0, self.beta * 1.0, ops.stop_gradient(mean), ops.stop_gradient(variance))
        return ops.cast(y, self.compute_dtype)
