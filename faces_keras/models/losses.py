"""Class-balanced losses for rare classes: focal (Keras's own) and logit-adjusted.

Both keep the heads' masking: targets of ``-1`` add nothing, and each loss
averages over the labelled entries of a batch, as the cross-entropies in
:mod:`faces_keras.models.heads` do.

* ``focal``: Keras's binary (Lin et al. 2017) and categorical focal
  cross-entropies with class balancing; ``alpha`` per label (per class) from
  the training split's priors, ``alpha_k = (1 / prior_k) / sum_j (1 / prior_j)``
  (for a binary label: ``1 - positive rate`` for positives, the positive rate
  for negatives, the ratio ``--class-weights balanced`` gives).
* ``logit_adjusted``: Menon et al. 2021, "Long-tail learning via logit
  adjustment": the cross-entropy of the logits shifted by ``tau * log(prior)``
  in the loss only; the model's own outputs are not shifted. A sigmoid unit is
  a two-class softmax of logits ``(0, z)``, so a binary label's shift is
  ``tau * (log(prior) - log(1 - prior))``. Keras has no such loss.

The heads output probabilities; logits are recovered as ``log(p / (1 - p))``
(binary) or ``log(p)`` (softmax, up to a constant the softmax ignores), with
``p`` clipped to ``[1e-7, 1 - 1e-7]``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from faces_keras.errors import ConfigError
from faces_keras.models.heads import _EPS, Head, _scale_to_labelled

LOSSES = ("crossentropy", "focal", "logit_adjusted")
_PRIOR_FLOOR = 1e-4  # a class the training split never shows still gets a finite log-prior


def class_priors(targets: dict[str, np.ndarray], heads: list[Head]) -> dict[str, list[float]]:
    """Class frequencies of the training targets (masked entries ignored).

    Args:
        targets: head name to training targets (``make_targets``).
        heads: the heads; regression heads get no priors.

    Returns:
        Head name to its priors: the positive rate per label (binary) or each
        class's share (multiclass), kept within ``[1e-4, 1 - 1e-4]``; a label
        with no labelled faces gets 0.5.
    """
    priors: dict[str, list[float]] = {}
    for head in heads:
        y = np.asarray(targets[head.name])
        if head.kind == "binary":
            y = y.reshape(len(y), -1)
            pos = np.sum(y == 1, axis=0).astype(float)
            labelled = np.sum(y >= 0, axis=0).astype(float)
            rate = np.where(labelled > 0, pos / np.maximum(labelled, 1.0), 0.5)
            priors[head.name] = [float(v) for v in np.clip(rate, _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)]
        elif head.kind == "multiclass":
            labelled = y[y >= 0].astype(int)
            counts = np.bincount(labelled, minlength=head.units).astype(float)
            share = counts / max(len(labelled), 1) if len(labelled) else np.full(head.units, 1.0 / head.units)
            priors[head.name] = [float(v) for v in np.clip(share, _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)]
    return priors


def balanced_alpha(priors) -> list[float]:
    """Focal-loss ``alpha`` from multiclass priors: inverse frequency, summing to 1.

    Args:
        priors: each class's share of the training split.

    Returns:
        One weight per class, ``(1 / prior_k) / sum_j (1 / prior_j)``.
    """
    inverse = 1.0 / np.asarray(priors, dtype=float)
    return [float(v) for v in inverse / inverse.sum()]


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedBinaryFocalCrossentropy(keras.losses.Loss):
    """Keras's ``binary_focal_crossentropy`` with class balancing, over labelled entries.

    Args:
        alpha: the positive class's weight, one per label (e.g.
            ``1 - positive rate``) or one number; negatives weigh ``1 - alpha``.
        gamma: the focusing parameter (Keras's default 2; 0: weighted
            cross-entropy).
        label_smoothing: in [0, 1); moves targets towards 0.5 (0: none).
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, alpha=0.25, gamma=2.0, label_smoothing=0.0, name="masked_binary_focal_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = [float(a) for a in alpha] if isinstance(alpha, (list, tuple, np.ndarray)) else float(alpha)
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        mask = ops.cast(ops.greater_equal(y_true, 0.0), "float32")
        alpha = ops.convert_to_tensor(self.alpha, "float32")
        if isinstance(self.alpha, list):
            alpha = ops.expand_dims(alpha, -1)  # one per label, against the trailing axis below
        # A trailing axis of 1 makes Keras's mean over axis -1 a per-entry loss the mask can weigh.
        focal = keras.losses.binary_focal_crossentropy(
            ops.expand_dims(ops.maximum(y_true, 0.0), -1), ops.expand_dims(y_pred, -1),
            apply_class_balancing=True, alpha=alpha, gamma=self.gamma, label_smoothing=self.label_smoothing)
        return _scale_to_labelled(ops.sum(focal * mask, axis=-1), ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedSparseCategoricalFocalCrossentropy(keras.losses.Loss):
    """Keras's ``categorical_focal_crossentropy`` on class ids, over labelled faces (``-1`` is missing).

    Args:
        alpha: one weight per class (e.g. :func:`balanced_alpha`) or one number.
        gamma: the focusing parameter (Keras's default 2).
        label_smoothing: in [0, 1); spreads this much over the classes.
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, alpha=0.25, gamma=2.0, label_smoothing=0.0,
                 name="masked_sparse_categorical_focal_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = [float(a) for a in alpha] if isinstance(alpha, (list, tuple, np.ndarray)) else float(alpha)
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(ops.greater_equal(y_true, 0), "float32")
        onehot = ops.one_hot(ops.maximum(y_true, 0), ops.shape(y_pred)[-1])
        focal = keras.losses.categorical_focal_crossentropy(
            onehot, y_pred, alpha=ops.convert_to_tensor(self.alpha, "float32"), gamma=self.gamma,
            label_smoothing=self.label_smoothing)
        return _scale_to_labelled(focal * mask, ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedLogitAdjustedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of logits shifted by ``tau * log(prior / (1 - prior))``, over labelled entries.

    Args:
        priors: the positive rate of each label in the training split.
        tau: how much of the log-prior odds to add (Menon et al.'s tau; 1: the
            balanced-error-optimal shift).
        label_smoothing: in [0, 1); moves targets towards 0.5 (0: none).
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, priors, tau=1.0, label_smoothing=0.0, name="masked_logit_adjusted_binary_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.priors = [float(p) for p in priors]
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        mask = ops.cast(ops.greater_equal(y_true, 0.0), "float32")
        y = ops.maximum(y_true, 0.0)
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = ops.clip(ops.cast(y_pred, "float32"), _EPS, 1.0 - _EPS)
        priors = ops.convert_to_tensor(self.priors, "float32")
        logits = ops.log(p) - ops.log(1.0 - p) + self.tau * (ops.log(priors) - ops.log(1.0 - priors))
        bce = ops.binary_crossentropy(y, logits, from_logits=True)
        return _scale_to_labelled(ops.sum(bce * mask, axis=-1), ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "priors": self.priors, "tau": self.tau,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="faces_keras")
class MaskedLogitAdjustedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of ``log(p) + tau * log(prior)``, over labelled faces (``-1`` is missing).

    Args:
        priors: each class's share of the training split.
        tau: how much of the log-priors to add (1: balanced-error-optimal).
        label_smoothing: in [0, 1); spreads this much over the classes.
        name: the loss's Keras name.
        **kwargs: passed to ``keras.losses.Loss``.
    """

    def __init__(self, priors, tau=1.0, label_smoothing=0.0,
                 name="masked_logit_adjusted_sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.priors = [float(p) for p in priors]
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        mask = ops.cast(ops.greater_equal(y_true, 0), "float32")
        classes = ops.shape(y_pred)[-1]
        target = ops.one_hot(ops.maximum(y_true, 0), classes)
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + self.label_smoothing / len(self.priors)
        p = ops.clip(ops.cast(y_pred, "float32"), _EPS, 1.0)
        logits = ops.log(p) + self.tau * ops.log(ops.convert_to_tensor(self.priors, "float32"))
        ce = ops.categorical_crossentropy(target, logits, from_logits=True)
        return _scale_to_labelled(ce * mask, ops.sum(mask))

    def get_config(self):
        return {**super().get_config(), "priors": self.priors, "tau": self.tau,
                "label_smoothing": self.label_smoothing}


def balanced_head_loss(head: Head, loss: str, priors, *, tau: float = 1.0, gamma: float = 2.0,
                       label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The class-balanced loss of one binary or multiclass head.

    Args:
        head: the head (binary or multiclass).
        loss: ``"focal"`` or ``"logit_adjusted"``.
        priors: the head's training priors (:func:`class_priors`).
        tau: logit adjustment's tau.
        gamma: the focal loss's focusing parameter.
        label_smoothing: the smoothing (0: none).

    Returns:
        The masked loss.

    Raises:
        ConfigError: an unknown ``loss``, a regression head, or no priors.
    """
    if loss not in LOSSES[1:]:
        raise ConfigError(f"loss={loss!r} (--loss): expected one of {list(LOSSES)}")
    if head.kind not in ("binary", "multiclass"):
        raise ConfigError(f"loss={loss!r} (--loss): head {head.name!r} is a regression head; "
                          "expected a binary or multiclass head")
    if priors is None:
        raise ConfigError(f"loss={loss!r} (--loss): head {head.name!r} has no class priors from the training split")
    if loss == "focal":
        if head.kind == "binary":
            return MaskedBinaryFocalCrossentropy(alpha=[1.0 - p for p in priors], gamma=gamma,
                                                 label_smoothing=label_smoothing)
        return MaskedSparseCategoricalFocalCrossentropy(alpha=balanced_alpha(priors), gamma=gamma,
                                                        label_smoothing=label_smoothing)
    if head.kind == "binary":
        return MaskedLogitAdjustedBinaryCrossentropy(priors, tau=tau, label_smoothing=label_smoothing)
    return MaskedLogitAdjustedSparseCategoricalCrossentropy(priors, tau=tau, label_smoothing=label_smoothing)
