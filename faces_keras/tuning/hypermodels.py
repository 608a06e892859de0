"""Search spaces and the keras-tuner HyperModels that build them.

A *space* is a plain function ``space(hp, input_size=64) -> ModelConfig``: it
declares its hyperparameters on a ``keras_tuner.HyperParameters`` and returns
the :class:`~faces_keras.models.presets.ModelConfig` they fill. A space knows
nothing about data, training or keras-tuner's execution; a
:class:`FacesHyperModel` turns a space into compiled models for one dataset's
heads, and :mod:`faces_keras.tuning.search` runs the search.

Spaces, by name (:data:`SPACES`):

``default`` (the default) and ``residual``
    The small ResNet of the ``default`` / ``residual`` presets: 3-5 stages,
    8-32 stem filters (step 8), a hidden Dense of 0/64/128 units, dropout
    0.1-0.5 (step 0.1), learning rate 1e-4 to 3e-3 (log scale).
``sequential``
    The plain Sequential CNN: depth 3-5 (the stem and the conv blocks after
    it), 8-32 stem filters (step 8), 1-2 convolutions per block, Dense,
    dropout and learning rate as above.
``original``
    The source project's tuner space for its all-label CNN: the three
    convolutions' filters 32-160 (step 16), 64-320 (step 32), 128-640
    (step 64), Dense 256-1280 (step 128); learning rate fixed at Adam's 1e-3
    and no online augmentation, as in the source.

Each hyperparameter's default is the preset's untuned value, so the first
point of a space is the model ``faces-keras train`` builds without tuning.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import keras_tuner as kt

from faces_keras.models.heads import Head
from faces_keras.models.presets import PRESET_SIZES, ModelConfig, build_model, compile_model

# (min, max, step) of the original all-label model's tuned sizes, and the untuned preset's values.
ORIGINAL_FILTER_RANGES = ((32, 160, 16), (64, 320, 32), (128, 640, 64))
ORIGINAL_DENSE_RANGE = (256, 1280, 128)
ORIGINAL_DEFAULTS = ((64, 128, 576), 1152)

DEPTH_RANGE = (3, 5)
WIDTH_RANGE = (8, 32, 8)
DENSE_CHOICES = (0, 64, 128)
DROPOUT_RANGE = (0.1, 0.5, 0.1)
LEARNING_RATE_RANGE = (1e-4, 3e-3)

Space = Callable[..., ModelConfig]


def _depth(hp: kt.HyperParameters, name: str, default: int, input_size: int, extra_halvings: int = 0) -> int:
    # The stem quarters the image and each later stage (residual) or block
    # (sequential, ``extra_halvings=1``) halves it, the first residual stage
    # excepted: 2**(depth + extra_halvings) must not exceed the input, or the
    # last pooling has nothing left to pool.
    high = min(DEPTH_RANGE[1], int(math.log2(max(input_size, 4))) - extra_halvings)
    low = min(DEPTH_RANGE[0], high)
    return hp.Int(name, low, high, default=min(max(default, low), high))


def _regularisation(hp: kt.HyperParameters) -> dict:
    return {
        "dense": hp.Choice("dense", list(DENSE_CHOICES), default=0),
        # Rounded: a stepped Float yields 0.30000000000000004 for 0.3.
        "dropout": round(hp.Float("dropout", *DROPOUT_RANGE[:2], step=DROPOUT_RANGE[2], default=0.3), 6),
        "learning_rate": hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log", default=1e-3),
    }


def sequential_space(hp: kt.HyperParameters, input_size: int = 64) -> ModelConfig:
    """The ``sequential`` preset's depth, width, convolutions per block, head and optimiser.

    Args:
        hp: the keras-tuner hyperparameters to declare (or read) the values in.
        input_size: the faces' side in pixels; it caps the depth so the last
            pooling has something left to pool.

    Returns:
        The :class:`ModelConfig` of the values ``hp`` holds (defaults where
        unset).
    """
    sizes = PRESET_SIZES["sequential"]
    blocks = _depth(hp, "blocks", sizes["blocks"], input_size, extra_halvings=1)
    filters = hp.Int("filters", *WIDTH_RANGE[:2], step=WIDTH_RANGE[2], default=sizes["filters"])
    convs = hp.Int("convs_per_block", 1, 2, default=sizes["convs_per_block"])
    return ModelConfig(preset="sequential", blocks=blocks, filters=filters, convs_per_block=convs,
                       **_regularisation(hp))


def _residual_space(preset: str) -> Space:
    def space(hp: kt.HyperParameters, input_size: int = 64) -> ModelConfig:
        sizes = PRESET_SIZES[preset]
        blocks = _depth(hp, "blocks", sizes["blocks"], input_size)
        filters = hp.Int("filters", *WIDTH_RANGE[:2], step=WIDTH_RANGE[2], default=sizes["filters"])
        return ModelConfig(preset=preset, blocks=blocks, filters=filters, **_regularisation(hp))

    space.__name__ = f"{preset}_space"
    space.__doc__ = f"The ``{preset}`` preset's (small ResNet) stages, stem width, head and optimiser."
    return space


default_space = _residual_space("default")
residual_space = _residual_space("residual")


def original_space(hp: kt.HyperParameters, input_size: int = 64) -> ModelConfig:
    """The source project's space for its all-label CNN (three conv sizes and the Dense width).

    Args:
        hp: the keras-tuner hyperparameters to declare (or read) the values in.
        input_size: the faces' side in pixels (unused: the original's sizes
            fit any input the preset takes).

    Returns:
        An ``original-all-label`` :class:`ModelConfig` without online
        augmentation, as the source project trained it.
    """
    filters = tuple(
        hp.Int(f"filters_{i + 1}", low, high, step=step, default=ORIGINAL_DEFAULTS[0][i])
        for i, (low, high, step) in enumerate(ORIGINAL_FILTER_RANGES))
    dense = hp.Int("dense", *ORIGINAL_DENSE_RANGE[:2], step=ORIGINAL_DENSE_RANGE[2], default=ORIGINAL_DEFAULTS[1])
    return ModelConfig(preset="original-all-label", original_filters=filters, original_dense=dense,
                       augmentation=None)


SPACES: dict[str, Space] = {"default": default_space, "residual": residual_space, "sequential": sequential_space,
                            "original": original_space}


def get_space(name: str) -> Space:
    """The search space called ``name``.

    Args:
        name: ``default``, ``residual``, ``sequential`` or ``original``.

    Returns:
        The space: a function ``(hp, input_size=64) -> ModelConfig``.

    Raises:
        ValueError: ``name`` is not a space.
    """
    if name not in SPACES:
        raise ValueError(f"space={name!r}: expected one of {sorted(SPACES)}")
    return SPACES[name]


def model_config_from_values(space: str, values: dict, input_size: int = 64) -> ModelConfig:
    """The ModelConfig a space makes of fixed hyperparameter values (e.g. a trial's).

    Args:
        space: the space's name.
        values: hyperparameter name to value; keras-tuner's ``tuner/...``
            bookkeeping values are ignored, missing ones take the defaults.
        input_size: the faces' side in pixels.

    Returns:
        The :class:`ModelConfig`.

    Raises:
        ValueError: ``space`` is not a space.
    """
    hp = kt.HyperParameters()
    hp.values.update({k: v for k, v in values.items() if not k.startswith("tuner/")})
    return get_space(space)(hp, input_size=input_size)


def describe_space(space: str, input_size: int = 64) -> list[str]:
    """One line per hyperparameter: name, range or choices, default.

    Args:
        space: the space's name (``default``, ``residual``, ``sequential``,
            ``original``).
        input_size: the faces' side in pixels; it bounds the depth range.

    Returns:
        Lines such as ``"filters: 8 to 32 step 8 (default 16)"``, in the order
        the space declares them.

    Raises:
        ValueError: ``space`` is not a space.
    """
    hp = kt.HyperParameters()
    get_space(space)(hp, input_size=input_size)
    lines = []
    for param in hp.space:
        config = param.get_config()
        if "values" in config:
            domain = "one of " + ", ".join(str(v) for v in config["values"])
        else:
            domain = f"{config['min_value']} to {config['max_value']}"
            if config.get("step") and config.get("sampling", "linear") == "linear":
                domain += f" step {config['step']}"
            if config.get("sampling") == "log":
                domain += " (log scale)"
        lines.append(f"{param.name}: {domain} (default {config['default']})")
    return lines


def original_parameter_count(filters: tuple[int, int, int], dense: int, input_shape: tuple[int, int, int],
                             outputs: int) -> int:
    """Parameters of the original preset, by arithmetic (building it would allocate them).

    Args:
        filters: the three convolutions' filters.
        dense: units of the hidden Dense layer.
        input_shape: one face's shape ``(size, size, channels)``.
        outputs: the output units (one per binary label).

    Returns:
        The number of weights.
    """
    size, channels = input_shape[0], input_shape[-1]
    f1, f2, f3 = filters
    side = ((size - 2) // 2 - 1) // 2 - 1  # conv 3 valid, pool, conv 2, pool, conv 2
    flat = side * side * f3
    return ((9 * channels + 1) * f1 + (4 * f1 + 1) * f2 + (4 * f2 + 1) * f3
            + (flat + 1) * dense + (dense + 1) * outputs)


class FacesHyperModel(kt.HyperModel):
    """Compiled models of one space for one dataset's heads.

    ``build(hp)`` fills the space, builds the model with
    :func:`~faces_keras.models.presets.build_model`, compiles it with
    :func:`~faces_keras.models.presets.compile_model`, and builds the
    optimiser's variables at once. That last step matters to Hyperband: it
    continues a trial by loading its parent's checkpoint into a fresh model,
    and Keras restores Adam's moments only into an optimiser that already has
    its variables (otherwise it warns "Skipping variable loading for
    optimizer" and starts them at zero).

    Args:
        heads: the output heads, planned from the dataset's schema.
        input_shape: one face's shape ``(size, size, channels)``.
        augmentation: keep the space's online augmentation layers; ``False``
            leaves them out.
        loss_weights: per head, the class weights passed to
            :func:`compile_model` (``class_weights``); ``None``: unweighted.
        name: the HyperModel's name (``faces_<space>`` by default).
    """

    space_name = "default"

    def __init__(self, heads: list[Head], input_shape: tuple[int, int, int], *, augmentation: bool = True,
                 loss_weights: dict[str, list[float]] | None = None, name: str | None = None):
        super().__init__(name=name or f"faces_{self.space_name}", tunable=True)
        self.heads = list(heads)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.augmentation = augmentation
        self.loss_weights = loss_weights

    def model_config(self, hp: kt.HyperParameters) -> ModelConfig:
        """The :class:`ModelConfig` the space makes of ``hp``.

        Args:
            hp: the trial's hyperparameters.

        Returns:
            The config, without augmentation where the HyperModel has none.
        """
        config = get_space(self.space_name)(hp, input_size=self.input_shape[0])
        if not self.augmentation and config.augmentation is not None:
            config = replace(config, augmentation=None)
        return config

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declare the space's hyperparameters in ``hp`` without building a model.

        Args:
            hp: the hyperparameters to declare them in.
        """
        self.model_config(hp)

    def build(self, hp: kt.HyperParameters):
        """Build and compile the model of one trial.

        Args:
            hp: the trial's hyperparameters.

        Returns:
            The compiled Keras model, its optimiser's variables built.
        """
        config = self.model_config(hp)
        model = build_model(self.heads, self.input_shape, config)
        compile_model(model, self.heads, config.learning_rate, self.loss_weights)
        model.optimizer.build(model.trainable_variables)
        return model


class DefaultHyperModel(FacesHyperModel):
    """The ``default`` space (the suite's small ResNet); constructor as :class:`FacesHyperModel`."""

    space_name = "default"


class ResidualHyperModel(FacesHyperModel):
    """The ``residual`` space; constructor as :class:`FacesHyperModel`."""

    space_name = "residual"


class SequentialHyperModel(FacesHyperModel):
    """The ``sequential`` space; constructor as :class:`FacesHyperModel`."""

    space_name = "sequential"


class OriginalHyperModel(FacesHyperModel):
    """The source project's ``original`` space; constructor as :class:`FacesHyperModel`."""

    space_name = "original"


HYPERMODELS: dict[str, type[FacesHyperModel]] = {
    "default": DefaultHyperModel, "residual": ResidualHyperModel, "sequential": SequentialHyperModel,
    "original": OriginalHyperModel}


def hypermodel_for(space: str, heads: list[Head], input_shape: tuple[int, int, int], **kwargs) -> FacesHyperModel:
    """The HyperModel of ``space`` for these heads and input shape.

    Args:
        space: the space's name.
        heads: the output heads.
        input_shape: one face's shape ``(size, size, channels)``.
        **kwargs: :class:`FacesHyperModel`'s keyword arguments
            (``augmentation``, ``loss_weights``, ``name``).

    Returns:
        The :class:`FacesHyperModel` subclass instance of that space.

    Raises:
        ValueError: ``space`` is not a space.
    """
    get_space(space)
    return HYPERMODELS[space](heads, input_shape, **kwargs)
