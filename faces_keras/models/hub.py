"""keras-hub backbones as the suite's backbone: ``train DATA --init-from PRESET_DIR``.

A keras-hub preset directory is what ``keras_hub.models.Backbone.save_to_preset(dir)``
writes (``config.json``, ``model.weights.h5``, ``metadata.json``). Only an
existing local directory is accepted: nothing is ever downloaded (a Kaggle or
Hugging Face handle is refused before keras-hub sees it).

The model built around the backbone (:func:`build_hub_model`) is::

    Input(size, size, C) → the suite's online augmentation → Rescaling(1/255)
      [→ gray_to_rgb: the gray channel repeated 3 times, for an RGB backbone]
      → the keras-hub backbone, its weights as saved
      → GlobalAveragePooling2D (4-D features; 1-D pooling for token sequences)
      → Dropout(dropout) → fresh heads for the dataset's schema

The backbone sees images in [0, 1], as the suite's own presets do; a preset's
image converter (ImageNet mean and deviation...) is not applied. Gray faces
meet an RGB backbone by repeating their channel (a pretrained RGB backbone is
then still usable on gray data); an RGB dataset and a gray backbone, or any
other channel count, are refused.

keras-hub is optional (``pip install --no-deps keras-hub`` and
``pip install 'faces-keras[hub]'``); it is imported only when a preset is read
or a model holding a keras-hub backbone is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
from keras import layers

from faces_keras.errors import ConfigError, RunError
from faces_keras.models.heads import Head
from faces_keras.models.presets import ModelConfig, _apply, _augmentation_layers, _head_layers
from faces_keras.rundir import MODEL

PRESET_CONFIG = "config.json"
# What the training run's config.yaml records under "backbone" for a keras-hub source.
HUB_SOURCE = "keras-hub preset"
MISSING = ("keras-hub is not installed: pip install --no-deps keras-hub, then pip install 'faces-keras[hub]' "
           "(its regex and tokenizers)")


def require_keras_hub():
    """Import keras-hub, or say in one line how to install it.

    Returns:
        The ``keras_hub`` module.

    Raises:
        RunError: keras-hub is not installed.
    """
    try:
        import keras_hub
    except ImportError as exc:
        raise RunError(f"{MISSING} ({exc})") from None
    return keras_hub


def is_hub_preset(path: str | Path) -> bool:
    """Whether ``path`` is a directory laid out as a keras-hub preset (not a run directory).

    Args:
        path: a candidate ``--init-from`` source.

    Returns:
        True for a directory holding ``config.json`` and no ``model.keras``.
    """
    path = Path(path)
    return path.is_dir() and (path / PRESET_CONFIG).is_file() and not (path / MODEL).is_file()


def check_preset_dir(source: str | Path) -> Path:
    """The local keras-hub preset directory ``source``, checked without reading its weights.

    Args:
        source: the directory.

    Returns:
        Its path.

    Raises:
        RunError: ``source`` is not an existing local directory holding a
            readable keras-hub ``config.json`` (the message names it).
    """
    expected = ("expected an existing local keras-hub preset directory (config.json, model.weights.h5: "
                "what keras_hub.models.Backbone.save_to_preset writes; nothing is downloaded)")
    text = str(source)
    path = Path(source)
    if "://" in text or not path.is_dir():
        raise RunError(f"--init-from {text}: {expected}")
    config = path / PRESET_CONFIG
    if not config.is_file():
        raise RunError(f"--init-from {text}: no {PRESET_CONFIG}; {expected}")
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{config}: not readable JSON ({exc}); {expected}") from None
    if not isinstance(data, dict) or not ({"registered_name", "model_type", "architecture"} & set(data)):
        raise RunError(f"{config}: not a keras-hub backbone config (no registered_name); {expected}")
    return path


def describe_preset(source: str | Path) -> dict[str, Any]:
    """What a run records about the keras-hub preset its backbone came from.

    Args:
        source: the preset directory (checked with :func:`check_preset_dir`).

    Returns:
        ``from`` (:data:`HUB_SOURCE`), ``path`` (absolute), ``class`` (the
        backbone's class name), and, where metadata.json has them, the
        ``keras_hub_version``, ``parameter_count`` and ``date_saved``.
    """
    path = check_preset_dir(source)
    config = json.loads((path / PRESET_CONFIG).read_text())
    record: dict[str, Any] = {"from": HUB_SOURCE, "path": str(path.resolve()),
                              "class": config.get("class_name") or config.get("model_type")
                              or config.get("architecture")}
    try:
        metadata = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError):
        metadata = {}
    for key in ("keras_hub_version", "parameter_count", "date_saved"):
        if key in metadata:
            record[key] = metadata[key]
    return record


def load_hub_backbone(source: str | Path):
    """The keras-hub backbone saved in a local preset directory, weights included.

    Args:
        source: the preset directory.

    Returns:
        The ``keras_hub.models.Backbone``, in the current dtype policy.

    Raises:
        RunError: not a local preset directory, keras-hub missing, or
            keras-hub could not load it (the message names the directory).
    """
    path = check_preset_dir(source)
    keras_hub = require_keras_hub()
    try:
        return keras_hub.models.Backbone.from_preset(str(path))
    except Exception as exc:  # keras-hub raises ValueError, KeyError, OSError... for a bad preset
        text = " ".join(str(exc).split())
        reason = text if len(text) <= 160 else text[:157] + "..."
        raise RunError(f"--init-from {source}: keras-hub could not load the backbone ({type(exc).__name__}: "
                       f"{reason}); expected a preset saved by keras_hub.models.Backbone.save_to_preset") from None


@keras.saving.register_keras_serializable(package="faces_keras")
class HubBackbone(layers.Layer):
    """A keras-hub backbone inside a suite model, frozen or not as a whole.

    Keras saves a nested keras-hub model's ``trainable`` flag but rebuilds its
    inner layers trainable, so a model saved with a frozen backbone would load
    with it unfrozen (and its optimizer state would not fit). This layer
    records the flag and sets it again on everything inside when loaded.

    Args:
        backbone: a ``keras_hub.models.Backbone`` (or its serialised config,
            when loading).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``trainable``...).
    """

    def __init__(self, backbone, **kwargs):
        trainable = kwargs.pop("trainable", True)
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            require_keras_hub()  # registers the keras-hub classes
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        # Keras's setter reaches every layer inside, but an assignment of the value a layer already
        # holds is skipped (TensorFlow's tracking), and a rebuilt backbone holds its saved flag with
        # its inner layers trainable: call the setter itself, on the backbone first.
        layers.Layer.trainable.fset(backbone, trainable)
        layers.Layer.trainable.fset(self, trainable)

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        return self.backbone(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return self.backbone.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone)}


def hub_backbone_of(model) -> HubBackbone | None:
    """The model's :class:`HubBackbone` layer, if it has one.

    Args:
        model: a Keras model.

    Returns:
        The layer, or ``None``.
    """
    return next((layer for layer in getattr(model, "layers", []) if isinstance(layer, HubBackbone)), None)


def _input_shape(backbone, source) -> tuple:
    if getattr(backbone, "data_format", "channels_last") == "channels_first":
        raise RunError(f"--init-from {source}: the backbone takes channels-first images; expected a "
                       "channels-last backbone (data_format='channels_last')")
    shape = backbone.input_shape
    if isinstance(shape, list) or not isinstance(shape, tuple) or len(shape) != 4:
        raise RunError(f"--init-from {source}: the backbone takes {shape}; expected an image backbone with one "
                       "(batch, height, width, channels) input")
    return shape


def build_hub_model(heads: list[Head], input_shape: tuple[int, int, int], config: ModelConfig,
                    backbone, name: str | None = None) -> keras.Model:
    """An uncompiled suite model around a keras-hub backbone (see the module docstring).

    Of ``config`` only the online augmentation and the dropout shape the
    model (and the learning rate its training); the architecture settings
    belong to the suite's own presets.

    Args:
        heads: the output heads, planned from the schema.
        input_shape: one face's shape ``(size, size, channels)``, channels 1
            or 3; the model takes float images in [0, 255].
        config: augmentation and dropout.
        backbone: a local keras-hub preset directory, or an already loaded
            ``keras_hub.models.Backbone`` (from another run's model).
        name: the Keras model's name; ``None``: ``hub_`` and the backbone's.

    Returns:
        A functional ``keras.Model``: one output for one head, else a dict of
        outputs keyed by head name. Its :class:`HubBackbone` layer is the
        model's backbone (:func:`faces_keras.training.transfer.backbone_layers`).

    Raises:
        RunError: the preset cannot be loaded, or the backbone does not fit
            the faces (channels, a fixed size other than theirs, features
            that are not an image's or a sequence's).
        ConfigError: ``config.dense`` is set (a hidden layer would be
            frozen with the backbone).
    """
    source = backbone if isinstance(backbone, (str, Path)) else getattr(backbone, "name", "backbone")
    if isinstance(backbone, (str, Path)):
        backbone = load_hub_backbone(backbone)
    if config.dense:
        raise ConfigError(f"dense={config.dense} (--dense): a keras-hub backbone's features go to the heads "
                          "through dropout only; expected dense=0")
    size_h, size_w, channels = (int(d) for d in input_shape)
    shape = _input_shape(backbone, source)
    want = shape[-1]
    fixed = tuple(shape[1:3])
    if any(d is not None for d in fixed) and fixed != (size_h, size_w):
        raise RunError(f"--init-from {source}: the backbone takes {fixed[0]}x{fixed[1]} images, the dataset's "
                       f"faces are {size_h}x{size_w}; prepare the faces at its size, or save the backbone with "
                       "image_shape=(None, None, channels)")
    gray_to_rgb = channels == 1 and want == 3
    if want not in (None, channels) and not gray_to_rgb:
        raise RunError(f"--init-from {source}: the backbone takes {want}-channel images, the dataset's faces "
                       f"have {channels}; expected a {channels}-channel backbone (gray faces may meet an "
                       "RGB backbone, not the reverse)")
    inputs = keras.Input(shape=(size_h, size_w, channels), name="image")
    x = _apply([*_augmentation_layers(config), layers.Rescaling(1.0 / 255, name="rescale")], inputs)
    if gray_to_rgb:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    hub = HubBackbone(backbone, name="hub_backbone")
    features = hub(x)
    if isinstance(features, (list, tuple, dict)):
        raise RunError(f"--init-from {source}: the backbone has several outputs; expected an image backbone "
                       "with one feature output")
    rank = len(features.shape)
    if rank == 4:
        features = layers.GlobalAveragePooling2D(name="pool")(features)
    elif rank == 3:
        features = layers.GlobalAveragePooling1D(name="pool")(features)
    elif rank != 2:
        raise RunError(f"--init-from {source}: the backbone's features have shape {features.shape}; expected "
                       "(batch, height, width, channels), (batch, tokens, channels) or (batch, channels)")
    features = layers.Dropout(config.dropout, name="dropout")(features)
    outputs = {h.name: _apply(_head_layers(h), features) for h in heads}
    name = name or f"hub_{backbone.name}"
    return keras.Model(inputs, outputs if len(heads) > 1 else outputs[heads[0].name], name=name)


__all__ = ["HUB_SOURCE", "HubBackbone", "build_hub_model", "check_preset_dir", "describe_preset",
           "hub_backbone_of", "is_hub_preset", "load_hub_backbone", "require_keras_hub"]
