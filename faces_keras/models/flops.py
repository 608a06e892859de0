"""Floating-point operations per image, counted from a model's layers.

Counts 2 x multiply-adds of the convolution and dense layers (the usual
convention; batch norm, activations and pooling add a few percent more and are
left out). Works on any Keras backend because it only reads layer shapes.
"""

from __future__ import annotations

import math

import keras


def _walk(layer):
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from _walk(inner)
    else:
        yield layer


def flops_per_image(model: keras.Model) -> int:
    """Floating-point operations for one image: 2 x the multiply-adds of the conv and dense layers.

    Args:
        model: a built Keras model; nested models are walked into.

    Returns:
        The count for a batch of one; batch norm, activations and pooling are
        left out.
    """
    total = 0
    for layer in _walk(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)):
            out_h, out_w, out_c = layer.output.shape[1:4]
            in_c = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                macs = out_h * out_w * kh * kw * in_c
            elif isinstance(layer, keras.layers.SeparableConv2D):
                macs = out_h * out_w * (kh * kw * in_c + in_c * out_c)
            else:
                macs = out_h * out_w * kh * kw * in_c * out_c // layer.groups
            total += 2 * macs
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.input.shape[1:]) * layer.units
    return int(total)
