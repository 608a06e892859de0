"""Output heads that follow the label schema, with masked losses and metrics.

A schema's labels map to heads:

* all binary labels share one sigmoid head named ``labels`` (one unit per
  label: the original all-label model; a per-label model is the same with one
  label);
* each multiclass label gets a softmax head of its own name;
* each regression label gets a linear head of its own name.

Missing values (``-1``, or ``NaN`` for regression) are masked: they add nothing
to a loss or a metric. Losses average over the *labelled* entries of a batch,
so a head whose labels are mostly missing (glasses on UTKFace faces) is not
diluted by the faces that do not label it.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from keras import ops

from faces_keras.labels.heads import (BINARY_HEAD, Head, fit_targets, make_targets, plan_heads,  # noqa: F401
                                     standardise_heads)
from faces_keras.labels.schema import Schema

_EPS = 1e-7


def _scale_to_labelled(per_sample: "keras.KerasTensor", mask_count):
    # Keras divides the per-sample losses by the batch size; rescale them so
    # the result is the mean over labelled entries instead.
    batch = ops.cast(ops.shape(per_sample)[0], per_sample.dtype)
    return per_sample * batch / ops.maximum(mask_count, 1.0)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy over labelled entries; ``pos_weight`` per label for imbalance.

    Targets of ``-1`` are missing and add nothing; the loss averages over the
    labelled entries of the batch.

    Args:
        pos_weight: one weight per label for its positive entries (e.g.
            negatives / positives); ``None`` (the default) weighs all 1.
        label_smoothing: in [0, 1); moves targets towards 0.5 by this much
            (0: none).
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, pos_weight=None, label_smoothing=0.0, name="masked_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in pos_weight]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        mask = ops.cast(ops.greater_equal(y_true, 0.0), "float32")
        y = ops.maximum(y_true, 0.0)
        if self.label_smoothing:  # towards 0.5, as keras.losses.BinaryCrossentropy does
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = ops.clip(y_pred, _EPS, 1.0 - _EPS)
        weight = 1.0 if self.pos_weight is None else ops.convert_to_tensor(self.pos_weight, "float32")
        bce = -(weight * y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
        return _scale_to_labelled(ops.sum(bce * mask, axis=-1), ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy over labelled faces (class ``-1`` is missing).

    Args:
        class_weight: one weight per class; ``None`` (the default) weighs all 1.
        label_smoothing: in [0, 1); spreads this much of each target over the
            classes (0: none).
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, class_weight=None, label_smoothing=0.0, name="masked_sparse_categorical_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weight = None if class_weight is None else [float(w) for w in class_weight]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(ops.greater_equal(y_true, 0), "float32")
        safe = ops.maximum(y_true, 0)
        onehot = ops.one_hot(safe, ops.shape(y_pred)[-1])
        if self.label_smoothing:  # spread over the classes, as keras.losses.CategoricalCrossentropy does
            onehot = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(
                ops.shape(y_pred)[-1], "float32")
        ce = -ops.sum(onehot * ops.log(ops.clip(y_pred, _EPS, 1.0)), axis=-1)
        if self.class_weight is not None:
            ce = ce * ops.take(ops.convert_to_tensor(self.class_weight, "float32"), safe)
        return _scale_to_labelled(ce * mask, ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "class_weight": self.class_weight, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedHuber(keras.losses.Loss):
    """Huber loss over labelled values (``NaN`` is missing), on errors divided by ``scale``.

    With ``scale`` the targets' standard deviation and ``delta=1`` the loss is
    quadratic within one standard deviation and comparable in size to a
    cross-entropy, whatever the label's unit.

    Args:
        delta: where the loss turns from quadratic to linear, in units of
            ``scale``.
        scale: the unit errors are measured in, in the label's unit (e.g.
            years); 1.0 by default.
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, delta=1.0, scale=1.0, name="masked_huber", **kwargs):
        super().__init__(name=name, **kwargs)
        self.delta = float(delta)
        self.scale = float(scale)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        mask = ops.cast(ops.logical_not(ops.isnan(y_true)), "float32")
        error = ops.abs(ops.where(ops.isnan(y_true), y_pred, y_true) - y_pred) / self.scale
        quadratic = ops.minimum(error, self.delta)
        huber = 0.5 * quadratic ** 2 + self.delta * (error - quadratic)
        return _scale_to_labelled(ops.sum(huber * mask, axis=-1), ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "delta": self.delta, "scale": self.scale}


def _binary_mask(y_true):
    y_true = ops.cast(y_true, "float32")
    return ops.maximum(y_true, 0.0), ops.cast(ops.greater_equal(y_true, 0.0), "float32")


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedPrecision(keras.metrics.Precision):
    """Keras's ``Precision`` over labelled entries only (targets of ``-1`` are skipped)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, mask = _binary_mask(y_true)
        return super().update_state(y, y_pred, sample_weight=mask)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedRecall(keras.metrics.Recall):
    """Keras's ``Recall`` over labelled entries only (targets of ``-1`` are skipped)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, mask = _binary_mask(y_true)
        return super().update_state(y, y_pred, sample_weight=mask)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedAUC(keras.metrics.AUC):
    """Keras's ``AUC`` over labelled entries only (targets of ``-1`` are skipped)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, mask = _binary_mask(y_true)
        return super().update_state(y, y_pred, sample_weight=mask)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedBinaryAccuracy(keras.metrics.Mean):
    """The share of labelled binary entries whose prediction, thresholded at 0.5, is right."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, mask = _binary_mask(y_true)
        hit = ops.cast(ops.equal(y, ops.cast(ops.greater_equal(ops.cast(y_pred, "float32"), 0.5), "float32")),
                       "float32")
        return super().update_state(hit, sample_weight=mask)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedSparseAccuracy(keras.metrics.Mean):
    """The share of labelled faces (class >= 0) whose most probable class is right."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(ops.greater_equal(y_true, 0), "float32")
        hit = ops.cast(ops.equal(y_true, ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")
        return super().update_state(hit, sample_weight=mask)


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedMeanAbsoluteError(keras.metrics.Mean):
    """The mean absolute error over labelled values (``NaN`` is missing), in the label's unit."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        mask = ops.cast(ops.logical_not(ops.isnan(y_true)), "float32")
        error = ops.abs(ops.where(ops.isnan(y_true), ops.cast(y_pred, "float32"), y_true) - ops.cast(y_pred, "float32"))
        return super().update_state(error, sample_weight=mask)


def head_loss(head: Head, *, pos_weight=None, class_weight=None, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The masked loss of one head.

    Args:
        head: the head.
        pos_weight: binary heads: one positive-class weight per label.
        class_weight: multiclass heads: one weight per class.
        label_smoothing: binary and multiclass heads: the smoothing (0: none).

    Returns:
        :class:`MaskedBinaryCrossentropy`, :class:`MaskedSparseCategoricalCrossentropy`,
        or (regression) :class:`MaskedHuber` on the head's ``scale``.
    """
    if head.kind == "binary":
        return MaskedBinaryCrossentropy(pos_weight=pos_weight, label_smoothing=label_smoothing)
    if head.kind == "multiclass":
        return MaskedSparseCategoricalCrossentropy(class_weight=class_weight, label_smoothing=label_smoothing)
    return MaskedHuber(scale=head.scale)


def head_metrics(head: Head) -> list[keras.metrics.Metric]:
    """The masked metrics of one head.

    Args:
        head: the head.

    Returns:
        Binary: accuracy, precision, recall and AUC; multiclass: accuracy;
        regression: ``mae`` in the label's unit.
    """
    if head.kind == "binary":
        return [MaskedBinaryAccuracy(name="accuracy"), MaskedPrecision(name="precision"),
                MaskedRecall(name="recall"), MaskedAUC(name="auc")]
    if head.kind == "multiclass":
        return [MaskedSparseAccuracy(name="accuracy")]
    return [MaskedMeanAbsoluteError(name="mae")]


def class_balance_weights(targets: dict[str, np.ndarray], heads: list[Head]) -> dict[str, list[float]]:
    """Weights that balance classes, from training targets (masked entries ignored).

    Binary: ``pos_weight = negatives / positives`` per label (capped at 50).
    Multiclass: ``n / (k * count_k)``, scikit-learn's "balanced" rule.

    Args:
        targets: head name to training targets (:func:`make_targets`).
        heads: the heads; regression heads get no weights.

    Returns:
        Head name to its weights, one per label (binary) or class (multiclass).
    """
    weights: dict[str, list[float]] = {}
    for head in heads:
        y = targets[head.name]
        if head.kind == "binary":
            pos = np.sum(y == 1, axis=0)
            neg = np.sum(y == 0, axis=0)
            weights[head.name] = [float(min(50.0, n / max(p, 1))) for p, n in zip(pos, neg)]
        elif head.kind == "multiclass":
            labelled = y[y >= 0]
            counts = np.bincount(labelled, minlength=head.units).astype(float)
            weights[head.name] = [float(len(labelled) / (head.units * max(c, 1.0))) for c in counts]
    return weights
