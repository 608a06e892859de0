"""Merge prepared datasets into one: the union of their labels, masked where a part lacks one.

CelebA labels sex and glasses but not race; UTKFace labels sex and race but not
glasses. Merged, every face keeps the labels its own dataset gives and the
others are *missing* (``-1`` for binary and multiclass, ``NaN`` for
regression), which the masked losses and metrics of
:mod:`faces_keras.models.heads` leave out. So one model learns ``sex`` from
both datasets, ``glasses`` from CelebA faces only and ``race`` from UTKFace
faces only.

Rules, checked before anything is written:

* a label name shared by two parts must mean the same thing: the same kind, and
  the same value names (binary) or classes (multiclass), else
  :class:`~faces_keras.errors.SchemaError` naming both parts and the label;
* images must have the same shape, else :class:`~faces_keras.errors.DatasetError`
  naming both shapes (prepare the parts with the same ``--size`` / ``--color``);
* face ids and source ids are prefixed with the part's name
  (``celeba:182638``) so they stay unique across parts;
* every face keeps its split: each part was split by source face when it was
  prepared, so no source crosses splits here either;
* rows are interleaved (a seeded shuffle), not stacked part after part: Keras
  evaluates validation in order, and a masked loss averages within a batch, so a
  batch holding no face of a part counts as a loss of 0 for that part's heads. With
  stacked parts most validation batches hold one part only, and the reported
  ``val_race_loss`` of a CelebA+UTKFace merge came out at ~0.44 of its true value.

The merged manifest records the parts: their paths, manifest checksums,
image checksums, counts and schemas.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faces_keras.data.store import MANIFEST, Dataset, FaceChunks, write_dataset
from faces_keras.errors import DatasetError, SchemaError
from faces_keras.labels.schema import MISSING, Label, Schema

PART_COLUMN = "part"
_BOOK_KEEPING = ("index", "id", "source_id", "split", "augmentation", "origin", "file", "given_split", PART_COLUMN)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def part_names(datasets: list[Dataset], names: list[str] | None) -> list[str]:
    """The name of each part: given, else its schema's name, else its folder's name.

    Args:
        datasets: the loaded parts.
        names: the names given, one per part, or ``None``.

    Returns:
        One name per part (letters, digits, ``_``, ``-``, ``.``), distinct.

    Raises:
        DatasetError: the names given are not one per part, not valid, or not
            distinct.
    """
    if names is not None:
        if len(names) != len(datasets):
            raise DatasetError(f"{len(names)} name(s) {names} for {len(datasets)} datasets; give one name per dataset")
    else:
        names = [ds.schema.name for ds in datasets]
        if len(set(names)) < len(names):
            names = [ds.path.name for ds in datasets]
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise DatasetError(f"part name(s) {bad}: use letters, digits, '_', '-' or '.' (they prefix face ids)")
    if len(set(names)) < len(names):
        raise DatasetError(f"part names {names} are not unique; give distinct names (--names a,b)")
    return names


def _same_meaning(a: Label, b: Label) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "regression":
        return True
    return a.value_names() == b.value_names()


def _describe(label: Label) -> str:
    if label.kind == "regression":
        return "regression"
    return f"{label.kind} {label.value_names()}"


def union_schema(schemas: list[Schema], names: list[str]) -> Schema:
    """Every label of every part, first appearance first; shared names must agree.

    Args:
        schemas: the parts' schemas.
        names: the parts' names, in the same order.

    Returns:
        A :class:`Schema` named ``a+b+...`` holding every label once.

    Raises:
        SchemaError: a label of one name is of another kind or has other
            values in two parts, or has the name of a bookkeeping column.
    """
    labels: dict[str, Label] = {}
    owner: dict[str, str] = {}
    for schema, part in zip(schemas, names):
        for label in schema.labels:
            if label.name in _BOOK_KEEPING:
                raise SchemaError(f"part {part!r}: label {label.name!r} has the name of a bookkeeping "
                                  f"column of a prepared dataset; rename it in the schema")
            if label.name not in labels:
                labels[label.name], owner[label.name] = label, part
            elif not _same_meaning(labels[label.name], label):
                raise SchemaError(
                    f"label {label.name!r} means different things in the datasets to merge: "
                    f"{_describe(labels[label.name])} in {owner[label.name]!r}, {_describe(label)} in {part!r}; "
                    "rename one of them in its schema and prepare it again")
    return Schema(
        name="+".join(names),
        # schema_from_dict accepts only the loaders' formats; a merged dataset is never
        # loaded from a labels source again, so the first part's format is a record only.
        format=schemas[0].format,
        labels=tuple(labels.values()),
        options={"combined_from": list(names)},
        description="merged from " + ", ".join(f"{n} ({s.name})" for n, s in zip(names, schemas)),
    )


def _check_shapes(datasets: list[Dataset], names: list[str]) -> tuple[int, ...]:
    first = tuple(datasets[0].images.shape[1:])
    for ds, name in zip(datasets[1:], names[1:]):
        shape = tuple(ds.images.shape[1:])
        if shape != first:
            raise DatasetError(
                f"images of {names[0]!r} ({datasets[0].path}) are {first} but those of {name!r} ({ds.path}) "
                f"are {shape}; prepare both with the same --size and --color")
    return first


def _part_faces(ds: Dataset, name: str, schema: Schema) -> pd.DataFrame:
    """The part's rows with prefixed ids and a column for every label of the union."""
    faces = ds.faces.drop(columns=["index"], errors="ignore").copy()
    faces["id"] = name + ":" + faces["id"].astype(str)
    faces["source_id"] = name + ":" + faces["source_id"].astype(str)
    faces[PART_COLUMN] = name
    own = set(ds.schema.label_names)
    for label in schema.labels:
        if label.name in own:
            continue
        if label.kind == "regression":
            faces[label.name] = np.float32("nan")
        else:
            faces[label.name] = MISSING
    return faces


def _manifest_sha256(ds: Dataset) -> str:
    return hashlib.sha256((ds.path / MANIFEST).read_bytes()).hexdigest()[:16]


def _part_record(ds: Dataset, name: str) -> dict[str, Any]:
    counts = ds.faces["split"].value_counts()
    return {
        "name": name,
        "path": str(ds.path.resolve()),
        "schema": ds.schema.name,
        "labels": ds.schema.label_names,
        "manifest_sha256": _manifest_sha256(ds),
        "images_sha256": ds.manifest.get("images_sha256"),
        "count": int(len(ds.faces)),
        "splits": {split: int(counts.get(split, 0)) for split in ("train", "val", "test")},
        "settings": ds.manifest.get("settings", {}),
    }


def combine_datasets(paths: list, out: str | Path, names: list[str] | None = None,
                     overwrite: bool = False, seed: int = 0) -> Path:
    """Merge prepared dataset folders ``paths`` into the dataset folder ``out``.

    See the module docstring for the rules: every face keeps its part's split,
    its labels are mapped onto the union schema (missing where its part lacks
    the label), and the rows of the parts are interleaved.

    Args:
        paths: two or more prepared dataset folders.
        out: the combined dataset folder to write (atomically).
        names: one name per part, prefixing its face ids (``name:id``);
            ``None`` (the default) uses each part's schema name, or its folder
            name where two parts share a schema name.
        overwrite: replace ``out`` if it exists; otherwise an existing ``out``
            is refused.
        seed: the random seed of the rows' interleaving.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        DatasetError: fewer than two paths, a part is not a whole prepared
            dataset, the names are not one valid, distinct name per part, or
            the parts' face shapes differ.
        SchemaError: labels of one name mean different things in two parts,
            or a label has the name of a bookkeeping column.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    if len(paths) < 2:
        raise DatasetError(f"merging needs two or more prepared datasets, got {len(paths)}")
    datasets = [Dataset.load(p) for p in paths]
    names = part_names(datasets, names)
    schema = union_schema([ds.schema for ds in datasets], names)
    shape = _check_shapes(datasets, names)
    frames = [_part_faces(ds, name, schema) for ds, name in zip(datasets, names)]
    faces = pd.concat(frames, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(faces))
    # The parts stay memory-mapped; the merged file is gathered from them a chunk at a time.
    images = FaceChunks.rows_of([ds.images for ds in datasets], order)
    faces = faces.iloc[order].reset_index(drop=True)
    if "given_split" in faces:
        faces["given_split"] = faces["given_split"].fillna("")
    columns = ["id", "source_id", "split", "augmentation", "origin", "file", PART_COLUMN] + \
        (["given_split"] if "given_split" in faces else []) + schema.label_names
    faces = faces[columns]
    for label in schema.labels:
        if label.kind != "regression":
            faces[label.name] = faces[label.name].astype(int)
    first = datasets[0].manifest.get("settings", {})
    settings = {
        "combined": True,
        # what prediction needs to feed photos like the training faces
        "size": int(shape[0]), "gray": shape[-1] == 1, "margin": first.get("margin", 0.2),
        "parts": names,
    }
    dropped = [{**d, "id": f"{name}:{d.get('id')}"} for ds, name in zip(datasets, names)
               for d in ds.manifest.get("dropped", [])]
    extra = {
        "parts": [_part_record(ds, name) for ds, name in zip(datasets, names)],
        "split_note": "each face keeps the split of its part; every part was split by source face "
                      "when it was prepared, so no source id is in two splits",
        "row_order": f"parts interleaved by a shuffle with seed {seed}, so every batch mixes them",
        "dropped": dropped,
    }
    return write_dataset(out, images, faces, schema, settings, extra=extra, overwrite=overwrite)


__all__ = ["combine_datasets", "part_names", "union_schema", "PART_COLUMN"]
