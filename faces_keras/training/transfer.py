"""Transfer learning: start a new model's backbone from another run's, with fresh heads.

A model trained on a few hundred faces cannot learn what one trained on tens of
thousands has; a backbone trained on the big set and fine-tuned on the small
one can. ``train DATA --init-from SOURCE`` builds the new model for the new
dataset's schema (fresh heads), then copies every backbone layer's weights from
SOURCE, a run directory or a ``.keras`` model file on disk (nothing is ever
downloaded). With ``--freeze-epochs N`` the backbone trains frozen for N epochs
(only the heads learn), then unfrozen at ``finetune_lr_factor`` times the
learning rate.

SOURCE may also be a local keras-hub preset directory (what
``keras_hub.models.Backbone.save_to_preset`` writes): the new model is then the
keras-hub backbone, with its saved weights, between the suite's augmentation
and rescaling and fresh heads (:func:`faces_keras.models.hub.build_hub_model`).
A run (or model file) whose model holds such a backbone passes it on the same
way, so a backbone can be fine-tuned on a big dataset and then on a small one.
The run's config.yaml records where the backbone came from under ``backbone``
(:func:`source_record`).

Backbone layers are matched in order: the i-th layer with weights of the
source's backbone gives its weights to the i-th of the new model's, and every
shape must agree, but for one: a gray backbone may start a colour model and a
colour one a gray model. The first convolution's kernel is then adapted
(:func:`adapt_input_channels`): a gray kernel is spread evenly over red, green
and blue, so a gray face repeated on three channels gives the source's features
exactly; a colour kernel is summed over its channels, the inverse of that. This
is how ImageNet backbones are commonly moved between colour and gray inputs, and
it lets a gray CelebA backbone start UTKFace's colour model. Head layers (a
model's outputs, and the ``*_standardised`` layer before a regression head's
rescaling) are never copied.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faces_keras.errors import RunError
from faces_keras.models.saving import load_keras_model
from faces_keras.rundir import CONFIG, MODEL

log = logging.getLogger(__name__)

# The architecture settings a backbone's weights depend on: a run directory as the
# source passes them to the new model.
ARCHITECTURE_KEYS = ("preset", "filters", "blocks", "convs_per_block", "dense", "original_filters",
                     "original_dense")


def check_source(source: str | Path) -> None:
    """Fail early, before the dataset loads, if ``source`` cannot give a backbone.

    Args:
        source: a run directory, a ``.keras`` file, or a keras-hub preset directory.

    Raises:
        RunError: none of those (the message names it and what was
            expected), or a keras-hub preset without keras-hub installed.
    """
    from faces_keras.models.hub import check_preset_dir, is_hub_preset, require_keras_hub

    if is_hub_preset(source):
        check_preset_dir(source)
        require_keras_hub()
    else:
        source_model_path(source)


def source_record(source: str | Path) -> dict:
    """Where a run's backbone came from, for its config.yaml's ``backbone`` entry.

    Args:
        source: the ``--init-from`` source.

    Returns:
        ``from`` (``keras-hub preset``, ``run directory`` or ``model file``)
        and the absolute ``path``; for a preset its class and metadata
        (:func:`faces_keras.models.hub.describe_preset`); for a run whose own
        backbone came from elsewhere, that run's record as ``via``.
    """
    from faces_keras.models.hub import describe_preset, is_hub_preset

    if is_hub_preset(source):
        return describe_preset(source)
    path = Path(source)
    record = {"from": "run directory" if path.is_dir() else "model file", "path": str(path.resolve())}
    config = path / CONFIG
    if config.is_file():
        import yaml

        earlier = (yaml.safe_load(config.read_text()) or {}).get("backbone")
        if earlier:
            record["via"] = earlier
    return record


def build_transfer_model(heads: list, input_shape: tuple[int, int, int], config, source: str | Path):
    """The new, uncompiled model for ``heads``, its backbone from ``source`` (fresh heads).

    Args:
        heads: the new dataset's heads.
        input_shape: one face's shape ``(size, size, channels)``.
        config: the :class:`~faces_keras.models.config.ModelConfig`.
        source: a run directory or ``.keras`` file (the suite's presets, or
            a keras-hub backbone inside), or a keras-hub preset directory.

    Returns:
        The model, its backbone weights the source's.

    Raises:
        RunError: the source cannot be read, or its backbone does not fit.
    """
    from faces_keras.models.hub import build_hub_model, hub_backbone_of, is_hub_preset

    if is_hub_preset(source):
        model = build_hub_model(heads, input_shape, config, Path(source))
        log.info("backbone %s loaded from keras-hub preset %s", hub_backbone_of(model).backbone.name, source)
        return model
    path = source_model_path(source)
    try:
        donor = load_keras_model(path, compile=False)
    except RunError as exc:
        raise RunError(f"--init-from: {exc}") from None
    hub = hub_backbone_of(donor)
    if hub is not None:  # the donor's keras-hub backbone itself, its weights as trained
        model = build_hub_model(heads, input_shape, config, hub.backbone)
        log.info("keras-hub backbone %s loaded from %s", hub.backbone.name, path)
        return model
    from faces_keras.models.presets import build_model

    model = build_model(heads, input_shape, config)
    _copy_backbone(model, donor, path)
    return model


def source_model_path(source: str | Path) -> Path:
    """The ``.keras`` file behind ``source`` (a run directory or the file itself).

    Args:
        source: a run directory holding model.keras, or a ``.keras`` file.

    Returns:
        The model file's path.

    Raises:
        RunError: no such run directory or file, or not a ``.keras`` file.
    """
    path = Path(source)
    if path.is_dir():
        path = path / MODEL
    if not path.is_file():
        raise RunError(f"--init-from {source}: expected a run directory holding {MODEL}, a keras-hub preset "
                       "directory holding config.json (Backbone.save_to_preset), or a .keras model file")
    if path.suffix != ".keras":
        raise RunError(f"--init-from {source}: expected a .keras model file, got {path.name}")
    return path


def source_architecture(source: str | Path) -> dict | None:
    """A run directory's architecture settings (None for a bare model file).

    Args:
        source: a run directory, or a model file.

    Returns:
        The model settings of :data:`ARCHITECTURE_KEYS` its config.yaml
        records, or ``None`` where ``source`` has no config.yaml.
    """
    config = Path(source) / CONFIG
    if not config.is_file():
        return None
    import yaml

    model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
    return {key: model[key] for key in ARCHITECTURE_KEYS if key in model}


def _head_layer_names(model) -> set[str]:
    outputs = set(model.output_names) if hasattr(model, "output_names") else set()
    return outputs | {f"{name}_standardised" for name in outputs}


def backbone_layers(model) -> list:
    """The model's layers that hold weights, in order, without its head layers.

    Args:
        model: a Keras model built by the suite.

    Returns:
        The layers.
    """
    heads = _head_layer_names(model)
    return [layer for layer in model.layers if layer.weights and layer.name not in heads]


def load_backbone(model, source: str | Path) -> int:
    """Copy the backbone weights of ``source`` into ``model``.

    Args:
        model: the new, built model (its heads stay as initialised).
        source: a run directory or a ``.keras`` file.

    Returns:
        How many layers were copied.

    Raises:
        RunError: the source cannot be read, or its backbone does not fit
            (the message names the first layer that differs).
    """
    path = source_model_path(source)
    try:
        donor = load_keras_model(path, compile=False)
    except RunError as exc:
        raise RunError(f"--init-from: {exc}") from None
    return _copy_backbone(model, donor, path)


def adapt_input_channels(kernel, channels: int):
    """A first convolution's kernel moved between gray and colour input.

    Args:
        kernel: the source's kernel, ``(height, width, in_channels, filters)``
            with ``in_channels`` 1 or 3.
        channels: the new model's input channels, 1 or 3.

    Returns:
        The kernel for ``channels``: a gray kernel repeated over the three
        channels and divided by 3 (a gray face repeated on three channels then
        gives the same response), or a colour kernel summed over its channels
        (a gray face then gives what the same face repeated on three channels
        gave the source). ``kernel`` itself where the channels already agree.

    Raises:
        ValueError: a move other than between 1 and 3 channels.
    """
    import numpy as np

    have = kernel.shape[2]
    if have == channels:
        return kernel
    if (have, channels) == (1, 3):
        return np.repeat(kernel, 3, axis=2) / 3.0
    if (have, channels) == (3, 1):
        return kernel.sum(axis=2, keepdims=True)
    raise ValueError(f"cannot move a kernel of {have} input channels to {channels}")


def _only_input_channels_differ(their_shapes: list[tuple], our_shapes: list[tuple]) -> bool:
    """Whether two layers' weights differ only in a 4-D kernel's input channels, gray against colour."""
    if len(their_shapes) != len(our_shapes) or not their_shapes or len(their_shapes[0]) != 4:
        return False
    (theirs, *their_rest), (ours, *our_rest) = their_shapes, our_shapes
    return (their_rest == our_rest and theirs[:2] == ours[:2] and theirs[3] == ours[3]
            and {theirs[2], ours[2]} == {1, 3})


def _copy_backbone(model, donor, path: Path) -> int:
    theirs, ours = backbone_layers(donor), backbone_layers(model)
    if len(theirs) != len(ours):
        raise RunError(f"--init-from {path}: its backbone has {len(theirs)} layers with weights, the new "
                       f"model's {len(ours)}: use the same preset and sizes as the source")
    for index, (their, our) in enumerate(zip(theirs, ours)):
        their_shapes = [tuple(w.shape) for w in their.weights]
        our_shapes = [tuple(w.shape) for w in our.weights]
        weights = their.get_weights()
        if their_shapes != our_shapes:
            # Only the first convolution sees the input's channels, so only it may differ in them.
            if index == 0 and _only_input_channels_differ(their_shapes, our_shapes):
                weights[0] = adapt_input_channels(weights[0], our_shapes[0][2])
                log.info("--init-from %s: the first convolution moved from %d to %d input channels", path,
                         their_shapes[0][2], our_shapes[0][2])
            else:
                raise RunError(f"--init-from {path}: backbone layer {index} ({their.name}) has weights "
                               f"{their_shapes}, the new model's ({our.name}) {our_shapes}: the face size "
                               "and architecture must match the source's (colour may differ: gray and "
                               "colour move into each other at the first convolution)")
        our.set_weights(weights)
    log.info("backbone of %d layers loaded from %s", len(ours), path)
    return len(ours)


def set_backbone_trainable(model, trainable: bool) -> bool:
    """Freeze or unfreeze the backbone.

    Args:
        model: a Keras model built by the suite.
        trainable: ``False`` freezes the backbone, ``True`` unfreezes it.

    Returns:
        True if any layer changed (the model then needs compiling again).
    """
    changed = False
    for layer in backbone_layers(model):
        if layer.trainable != trainable:
            layer.trainable = trainable
            changed = True
    return changed


__all__ = ["adapt_input_channels", "backbone_layers", "build_transfer_model", "check_source", "load_backbone",
           "set_backbone_trainable", "source_architecture", "source_model_path", "source_record"]
