"""Opening a prepared dataset for labelling: its source faces as PNG crops, its values, a schema to read them back.

A prepared dataset (:class:`faces_keras.data.store.Dataset`) is checksummed and
never changed. To correct its labels the app works beside it:

* its **source faces** (the rows of ``faces.csv`` whose ``augmentation`` is
  ``identity``; offline augmented copies are left out, they come back when the
  dataset is prepared again) are written once, as PNG crops at the dataset's
  size and colour, into ``<labels stem>-faces/`` beside the labels file
  (atomically: a temporary folder renamed into place), with a ``source.json``
  naming the dataset and its checksum, so a later opening reuses them and an
  opening of another dataset against the same labels file is refused;
* the labels file is then an ordinary crop-folder labels file (an ``image``
  column naming each crop), pre-filled with the values the dataset has
  (a missing value stays empty), one row for every source face;
* a **labelling schema**, ``<labels stem>.schema.yaml``, is written beside it:
  the dataset's labels in the delimited format with ``images: files``, so
  ``faces-keras prepare NEW --schema <labels stem>.schema.yaml --labels
  <labels file>`` rebuilds a dataset from the corrected labels, whatever format
  the dataset was first read from (grid photos, CelebA's attribute list...).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faces_keras.errors import LabelsError
from faces_keras.io import atomic_dir, read_json, write_json
from faces_keras.labels.schema import Label, Schema

log = logging.getLogger(__name__)

SOURCE = "source.json"  # in the crops folder: the dataset the crops were cut from
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_prepared_dataset(folder: str | Path) -> bool:
    """Whether ``folder`` is a prepared dataset (it holds ``manifest.json`` and ``images.npy``).

    Args:
        folder: a folder.

    Returns:
        True for a folder ``faces-keras prepare`` wrote.
    """
    from faces_keras.data.store import IMAGES, MANIFEST

    folder = Path(folder)
    return (folder / MANIFEST).is_file() and (folder / IMAGES).is_file()


def default_labels_path(dataset: str | Path) -> Path:
    """Where a prepared dataset's labels go when ``--labels`` is not given: beside it, never inside.

    Args:
        dataset: the dataset folder.

    Returns:
        ``<dataset parent>/<dataset name>-labels.csv``.
    """
    dataset = Path(dataset)
    return dataset.absolute().parent / f"{dataset.absolute().name}-labels.csv"


def schema_path(labels: str | Path) -> Path:
    """The labelling schema written beside a labels file.

    Args:
        labels: the labels file.

    Returns:
        ``<labels stem>.schema.yaml`` beside it.
    """
    labels = Path(labels)
    return labels.with_name(f"{labels.stem}.schema.yaml")


def crops_path(labels: str | Path) -> Path:
    """The folder of source-face crops beside a labels file.

    Args:
        labels: the labels file.

    Returns:
        ``<labels stem>-faces`` beside it.
    """
    labels = Path(labels)
    return labels.with_name(f"{labels.stem}-faces")


def _binary_codes(label: Label) -> tuple[str, str]:
    """(negative, positive) codes of a binary label for the file the app writes, after any inversion."""
    if label.positive is not None and label.negative is not None:
        neg, pos = str(label.negative), str(label.positive)
        return (pos, neg) if label.invert else (neg, pos)
    if len(label.names) == 2 and label.names[0] != label.names[1] and "" not in label.names:
        return str(label.names[0]), str(label.names[1])
    return "N", "Y"


def labelling_schema(schema: Schema, where: str) -> Schema:
    """The schema the app labels a prepared dataset with: its labels, read from a delimited file of crops.

    Binary labels keep their codes (``F``/``M``, ``N``/``Y``), or get their
    display names or ``N``/``Y`` when the source had none (CelebA's 1/-1);
    inverted labels are written after the inversion; banded multi-class labels
    are written as their class codes. Options are only the delimiter, the id
    column and ``images: files``: a dataset's ``center_crop`` or detector
    settings are not applied twice.

    Args:
        schema: the dataset's schema (its manifest's).
        where: what to name in messages (the dataset folder).

    Returns:
        The delimited :class:`Schema`, same name and labels.

    Raises:
        LabelsError: the schema has a regression label (the page has no key for one).
    """
    labels = []
    for label in schema.labels:
        if label.kind == "binary":
            neg, pos = _binary_codes(label)
            labels.append(Label(label.name, "binary", positive=pos, negative=neg, names=label.names,
                                description=label.description))
        elif label.kind == "multiclass":
            labels.append(Label(label.name, "multiclass", classes=label.classes, codes=label.codes,
                                description=label.description))
        else:
            raise LabelsError(f"{where}: label {label.name!r} is a {label.kind} label; the labelling page "
                              "handles binary and multi-class labels")
    delimited = schema.format == "delimited"
    options = {"delimiter": schema.options.get("delimiter", ";") if delimited else ";",
               "id_column": schema.options.get("id_column", "face_nr") if delimited else "face_nr",
               "images": "files"}
    return Schema(schema.name, "delimited", tuple(labels), options,
                  f"the labels of {where}, as the labelling app writes them (face crops beside the file)")


def encoded_to_code(label: Label, value) -> str:
    """A dataset's encoded value of ``label`` (of :func:`labelling_schema`) as the labels file's code.

    Args:
        label: a label of :func:`labelling_schema`'s schema.
        value: the encoded value (``-1`` missing).

    Returns:
        The code (``F``, ``Y``, a class code), or ``""`` for a missing value.
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        return ""
    if number < 0:
        return ""
    if label.kind == "binary":
        return str(label.positive if number == 1 else label.negative)
    codes = label.codes or label.classes
    return str(codes[number]) if number < len(codes) else ""


@dataclass
class PreparedFaces:
    """The source faces of a prepared dataset, as the labelling store uses them.

    Args:
        schema: the labelling schema (:func:`labelling_schema`).
        ids: the faces' ids (their ``source_id``), grid numbers in number order, others sorted.
        origins: where each came from, as ``faces.csv`` says, and its split.
        files: each face's PNG crop.
        values: per face, label -> code the dataset holds (missing left out).
    """

    schema: Schema
    ids: list[str]
    origins: list[str]
    files: list[Path]
    values: list[dict[str, str]]


def open_prepared(dataset: str | Path, labels: str | Path) -> PreparedFaces:
    """Read a prepared dataset's source faces and values, writing their crops and the schema beside ``labels``.

    The dataset is loaded (and its checksum checked) and never written. The
    crops are written once; the schema file is (re)written when it differs.

    Args:
        dataset: the prepared dataset folder.
        labels: the labels file the app will write (outside the dataset folder).

    Returns:
        The :class:`PreparedFaces`.

    Raises:
        LabelsError: ``labels`` lies inside the dataset folder, the schema has a
            regression label, or the crops folder beside ``labels`` was cut from
            another dataset.
        DatasetError: the dataset is damaged or does not match its manifest.
    """
    from faces_keras.data.store import Dataset

    dataset, labels = Path(dataset), Path(labels)
    if labels.absolute().resolve().is_relative_to(dataset.absolute().resolve()):
        raise LabelsError(f"{labels}: the labels file would be inside the prepared dataset {dataset}, which is "
                          "never changed; give --labels a file outside it")
    data = Dataset.load(dataset)
    schema = labelling_schema(data.schema, str(dataset))
    frame = data.faces
    source = frame["augmentation"].astype(str).isin(("identity", ""))
    order: dict[str, int] = {}
    for k, (sid, is_source) in enumerate(zip(frame["source_id"].astype(str), source)):
        if sid not in order or (is_source and not source.iloc[order[sid]]):
            order[sid] = k  # the identity row of each source; its first augmented copy if it has none
    only_augmented = [sid for sid, k in order.items() if not source.iloc[k]]
    if only_augmented:
        log.warning("%s: %d source face(s) are in it only as augmented copies (the augmentation had no "
                    "identity); their first copy is shown: %s", dataset, len(only_augmented),
                    ", ".join(only_augmented[:10]))
    rows = sorted(order.values(), key=lambda k: _natural(str(frame["source_id"].iloc[k])))  # ids in order
    ids = [str(frame["source_id"].iloc[k]) for k in rows]
    origins = []
    for k in rows:
        row = frame.iloc[k]
        note = "" if source.iloc[k] else f", {row['augmentation']} copy"
        origins.append(f"{row.get('origin', '') or row.get('file', '') or ids[len(origins)]} ({row['split']}{note})")
    names = [f"{i}.png" if SAFE_ID.fullmatch(i) else f"_{k}.png" for i, k in zip(ids, rows)]
    folder = crops_path(labels)
    _write_crops(folder, data, rows, ids, names)
    values = [{label.name: code for label in schema.labels
               if (code := encoded_to_code(label, frame[label.name].iloc[k]))} for k in rows]
    text = _schema_text(schema)
    target = schema_path(labels)
    if not target.is_file() or target.read_text() != text:
        from faces_keras.io import atomic_write_text

        atomic_write_text(target, text)
    return PreparedFaces(schema, ids, origins, [folder / n for n in names], values)


def _natural(face_id: str) -> tuple:
    """Sort key: grid numbers as numbers, other ids as text."""
    return (0, int(face_id), "") if face_id.isdigit() else (1, 0, face_id)


def _schema_text(schema: Schema) -> str:
    import yaml

    return yaml.safe_dump(schema.to_dict(), sort_keys=False)


def _write_crops(folder: Path, data, rows: list[int], ids: list[str], names: list[str]) -> None:
    """The source faces as PNGs in ``folder``, once, atomically; an existing folder must be of this dataset."""
    checksum = data.manifest["images_sha256"]
    if folder.exists():
        try:
            source = read_json(folder / SOURCE)
        except (OSError, ValueError):
            source = None
        if (not isinstance(source, dict) or source.get("images_sha256") != checksum
                or source.get("ids") != ids or not all((folder / n).is_file() for n in names)):
            raise LabelsError(f"{folder}: holds face crops, but not those of {data.path} (no {SOURCE} with its "
                              f"checksum {checksum} and {len(ids)} faces); remove the folder or give another --labels")
        return
    import cv2

    log.info("%s: writing its %d source faces as PNG crops to %s", data.path, len(rows), folder)
    with atomic_dir(folder) as tmp:
        for k, name in zip(rows, names):
            image = data.images[k]
            pixels = image[..., 0] if image.shape[-1] == 1 else np.ascontiguousarray(image[..., ::-1])
            if not cv2.imwrite(str(tmp / name), pixels):
                raise LabelsError(f"{tmp / name}: could not write the face crop")
        write_json(tmp / SOURCE, {"dataset": str(data.path.absolute()), "images_sha256": checksum,
                                  "ids": ids, "files": names})


__all__ = ["PreparedFaces", "crops_path", "default_labels_path", "encoded_to_code", "is_prepared_dataset",
           "labelling_schema", "open_prepared", "schema_path"]
