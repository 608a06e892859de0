"""Output heads planned from a label schema (no Keras here: reports and inference read the plan too).

A schema's labels map to heads:

* all binary labels share one sigmoid head named ``labels`` (one unit per
  label: the original all-label model; a per-label model is the same with one
  label);
* each multiclass label gets a softmax head of its own name;
* each regression label gets a linear head of its own name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from faces_keras.labels.schema import Schema

BINARY_HEAD = "labels"


@dataclass(frozen=True)
class Head:
    """One output head of a model, planned from the schema's labels.

    Args:
        name: the head's (and the Keras output's) name: ``labels`` for the
            shared binary head, else the label's name.
        kind: ``binary`` (sigmoid), ``multiclass`` (softmax) or ``regression``
            (linear).
        labels: the labels the head predicts, one per unit for a binary head,
            the one label otherwise.
        units: the head's output units: one per binary label, one per class,
            or 1 for a regression.
        center: regression heads: the training targets' mean, in the label's
            unit (e.g. years); 0.0 otherwise. The head predicts in
            standardised units and rescales to the label's own, so its loss
            is on the scale of a cross-entropy instead of swamping the other
            heads' gradients.
        scale: regression heads: the training targets' standard deviation, in
            the label's unit; 1.0 otherwise.
    """

    name: str
    kind: str  # binary | multiclass | regression
    labels: tuple[str, ...]
    units: int
    # Regression heads: the training targets' mean and standard deviation. The
    # head predicts in standardised units and rescales to the label's own (e.g.
    # years), so its loss is on the scale of a cross-entropy instead of
    # swamping the other heads' gradients.
    center: float = 0.0
    scale: float = 1.0

    @property
    def activation(self) -> str:
        return {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[self.kind]


def plan_heads(schema: Schema) -> list[Head]:
    """The output heads a schema's labels map to.

    All binary labels share one sigmoid head named ``labels`` (one unit per
    label, in schema order); each multiclass label gets a softmax head of its
    own name, each regression label a linear head of its own name.

    Args:
        schema: the labels to predict (see :meth:`Schema.select` to keep some).

    Returns:
        The heads, the binary head first; regression heads have ``center`` 0
        and ``scale`` 1 until :func:`standardise_heads` sets them.
    """
    heads = []
    binary = [label.name for label in schema.labels if label.kind == "binary"]
    if binary:
        heads.append(Head(BINARY_HEAD, "binary", tuple(binary), len(binary)))
    for label in schema.labels:
        if label.kind == "multiclass":
            heads.append(Head(label.name, "multiclass", (label.name,), label.num_classes))
        elif label.kind == "regression":
            heads.append(Head(label.name, "regression", (label.name,), 1))
    return heads


def make_targets(frame: pd.DataFrame, heads: list[Head]) -> dict[str, np.ndarray]:
    """Encoded labels of ``frame`` as one array per head (missing stays -1 / NaN).

    Args:
        frame: encoded labels, one row per face, one column per label.
        heads: the heads to build targets for (:func:`plan_heads`).

    Returns:
        Head name to targets: float32 ``(N, units)`` for the binary head,
        int32 ``(N,)`` class indices for a multiclass head, float32 ``(N, 1)``
        for a regression head.
    """
    out = {}
    for head in heads:
        if head.kind == "binary":
            out[head.name] = frame[list(head.labels)].to_numpy(dtype="float32")
        elif head.kind == "multiclass":
            out[head.name] = frame[head.labels[0]].to_numpy(dtype="int32")
        else:
            out[head.name] = frame[head.labels[0]].to_numpy(dtype="float32")[:, None]
    return out


def standardise_heads(heads: list[Head], train_targets: dict[str, np.ndarray]) -> list[Head]:
    """``heads`` with each regression head's center/scale set from its labelled training targets.

    Args:
        heads: the planned heads.
        train_targets: the training split's targets (:func:`make_targets`);
            NaN (missing) values are ignored.

    Returns:
        New heads: regression heads get the targets' mean and standard
        deviation (1.0 where it is 0); other heads are unchanged.
    """
    from dataclasses import replace

    out = []
    for head in heads:
        if head.kind == "regression":
            values = train_targets[head.name]
            values = values[~np.isnan(values)]
            if len(values):
                std = float(np.std(values))
                head = replace(head, center=float(np.mean(values)), scale=std if std > 0 else 1.0)
        out.append(head)
    return out


def fit_targets(targets: dict[str, np.ndarray], heads: list[Head]):
    """What ``model.fit`` takes: the array itself for one head, else the dict.

    Args:
        targets: head name to targets (:func:`make_targets`).
        heads: the model's heads, in order.

    Returns:
        The one head's array, or ``targets`` unchanged.
    """
    return targets[heads[0].name] if len(heads) == 1 else targets
