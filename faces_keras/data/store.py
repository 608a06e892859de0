"""A prepared dataset: one folder, written atomically, checked when read.

Layout::

    images.npy      uint8 (N, size, size, C): every face, originals and augmented
    faces.csv       one row per face: index, id, source_id, split, augmentation,
                    origin (photo and cell, or file), then the encoded labels
    manifest.json   schema, preparation settings, sizes, counts, a checksum

``images.npy`` is uncompressed on purpose: it loads (or memory-maps) in
milliseconds, whereas a compressed ``.npz`` of the same CelebA faces takes
about a second to inflate for a ~30% saving on a file that never enters the
repository. A folder of PNGs would be 8,000 files to open per epoch.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faces_keras import __version__
from faces_keras.errors import DatasetError
from faces_keras.io import atomic_dir, read_json, write_json
from faces_keras.labels.schema import Schema, schema_from_dict

IMAGES, FACES, MANIFEST = "images.npy", "faces.csv", "manifest.json"


def checksum(array: np.ndarray) -> str:
    """The first 16 hex digits of the SHA-256 of an array's bytes (the manifest's ``images_sha256``).

    Args:
        array: any array; hashed in C order.

    Returns:
        The hex digest, 16 characters.
    """
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()[:16]


def label_balance(frame: pd.DataFrame, schema: Schema) -> dict[str, dict[str, Any]]:
    """Per split, per label: counts of each value (and missing).

    Args:
        frame: one row per face with ``split`` and encoded label columns.
        schema: the labels to count.

    Returns:
        Split to ``{"faces": n, <label>: {<value>: count, "missing": count}}``;
        regression labels give ``{"mean": ..., "missing": ...}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for split, part in frame.groupby("split", sort=False):
        out[split] = {"faces": int(len(part))}
        for label in schema.labels:
            values = part[label.name]
            if label.kind == "regression":
                out[split][label.name] = {"mean": float(values.mean()), "missing": int(values.isna().sum())}
            else:
                names = label.value_names()
                counts = {names[k]: int((values == k).sum()) for k in range(len(names))}
                counts["missing"] = int((values < 0).sum())
                out[split][label.name] = counts
    return out


def write_dataset(out_dir: str | Path, images: np.ndarray, faces: pd.DataFrame, schema: Schema,
                  settings: dict[str, Any], extra: dict[str, Any] | None = None,
                  overwrite: bool = False, writers=()) -> Path:
    """Write a prepared dataset folder; an interrupted write leaves no folder that looks whole.

    Args:
        out_dir: the dataset folder to write.
        images: uint8 faces ``(N, size, size, C)``.
        faces: one row per face (``id``, ``source_id``, ``split``,
            ``augmentation``, ``origin``, ``file``, the encoded labels); an
            ``index`` column is added.
        schema: the labels, recorded in the manifest.
        settings: the preparation settings, recorded in the manifest.
        extra: more manifest entries (``dropped``, ``parts``...).
        overwrite: replace ``out_dir`` if it exists.
        writers: functions ``write(tmp_folder)`` that add files (detections,
            box examples) inside the folder before it is renamed into place.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        DatasetError: ``images`` and ``faces`` differ in length.
        OutputExistsError: ``out_dir`` exists and ``overwrite`` is false.
    """
    if len(images) != len(faces):
        raise DatasetError(f"{len(images)} images but {len(faces)} face rows")
    faces = faces.reset_index(drop=True).copy()
    faces.insert(0, "index", np.arange(len(faces)))
    manifest = {
        "faces_keras_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "schema": schema.to_dict(),
        "settings": settings,
        "image_shape": list(images.shape[1:]),
        "count": int(len(images)),
        "sources": int(faces["source_id"].nunique()),
        "images_sha256": checksum(images),
        "balance": label_balance(faces, schema),
        **(extra or {}),
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        np.save(tmp / IMAGES, images, allow_pickle=False)
        faces.to_csv(tmp / FACES, index=False)
        for write in writers:  # extra files (detections.csv, boxes/) land atomically with the rest
            write(tmp)
        write_json(tmp / MANIFEST, manifest)
    return Path(out_dir)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


MANIFEST_KEYS = ("count", "image_shape", "images_sha256", "schema")


def _read_manifest(path: Path) -> dict[str, Any]:
    """manifest.json, or a :class:`DatasetError` naming it and saying what was expected."""
    import json

    try:
        manifest = read_json(path)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is truncated or damaged ({exc.msg} at line {exc.lineno}, column {exc.colno}): "
                           "expected the JSON manifest prepare writes; prepare the dataset again") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is damaged (not UTF-8 text): expected the JSON manifest prepare writes; "
                           "prepare the dataset again") from None
    if not isinstance(manifest, dict) or any(k not in manifest for k in MANIFEST_KEYS):
        lacking = [k for k in MANIFEST_KEYS if not isinstance(manifest, dict) or k not in manifest]
        raise DatasetError(f"{path}: key(s) {lacking} missing: expected the JSON manifest prepare writes; "
                           "prepare the dataset again")
    if not isinstance(manifest["count"], int) or not isinstance(manifest["image_shape"], list):
        raise DatasetError(f"{path}: count or image_shape is not what prepare writes (an integer, a list); "
                           "prepare the dataset again")
    return manifest


@dataclass
class Dataset:
    """A prepared dataset folder, loaded and checked against its manifest.

    Made by :meth:`load`; the fields hold what it read.

    Args:
        path: the dataset folder.
        images: every face, uint8 ``(N, size, size, C)`` (C 1 gray or 3 RGB).
        faces: ``faces.csv``: one row per face, ``index`` into ``images``, its
            ids, split, augmentation, origin and encoded labels (regression
            labels float32, NaN missing).
        manifest: ``manifest.json``: schema, settings, sizes, counts, checksum.
        schema: the labels, as the manifest records them.
    """

    path: Path
    images: np.ndarray
    faces: pd.DataFrame
    manifest: dict[str, Any]
    schema: Schema

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> "Dataset":
        """Load a prepared dataset folder and check it against its manifest.

        Args:
            path: the dataset folder (``images.npy``, ``faces.csv``,
                ``manifest.json``).
            verify: also check the images' checksum (reads every byte once);
                ``True`` by default.

        Returns:
            The :class:`Dataset`.

        Raises:
            DatasetError: a file is missing, truncated or damaged, or does not
                match the manifest (counts, image shape, checksum); the message
                names the file and what was expected.
            SchemaError: the manifest's schema is not valid.
        """
        path = Path(path)
        for name in (IMAGES, FACES, MANIFEST):
            if not (path / name).is_file():
                raise DatasetError(f"{path}: not a prepared dataset ({name} is missing); "
                                   "run `faces-keras prepare` first")
        manifest = _read_manifest(path / MANIFEST)
        count, shape = manifest["count"], manifest["image_shape"]
        expected = (f"expected a uint8 array of {count} faces of {'x'.join(map(str, shape))}; "
                    "prepare the dataset again")
        try:
            images = np.load(path / IMAGES, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise DatasetError(f"{path / IMAGES} is truncated or damaged ({_first_line(exc)}): {expected}") from None
        if images.dtype != np.uint8 or images.ndim != 4:
            raise DatasetError(f"{path / IMAGES} holds a {images.dtype} array of shape {images.shape}: {expected}")
        try:
            faces = pd.read_csv(path / FACES, dtype={"id": str, "source_id": str}, keep_default_na=False)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DatasetError(f"{path / FACES} is truncated or damaged ({_first_line(exc)}): expected one row "
                               f"per face ({count}); prepare the dataset again") from None
        lacking = [c for c in ("id", "source_id", "split", "augmentation") if c not in faces.columns]
        if lacking:
            raise DatasetError(f"{path / FACES}: column(s) {lacking} missing: expected the table prepare writes; "
                               "prepare the dataset again")
        if len(images) != count or len(faces) != count:
            raise DatasetError(f"{path}: manifest says {count} faces, found "
                               f"{len(images)} images and {len(faces)} rows")
        if list(images.shape[1:]) != manifest["image_shape"]:
            raise DatasetError(f"{path}: images are {images.shape[1:]}, manifest says {manifest['image_shape']}")
        if verify and checksum(images) != manifest["images_sha256"]:
            raise DatasetError(f"{path}: {IMAGES} does not match the checksum in {MANIFEST}")
        schema = schema_from_dict(manifest["schema"], str(path / MANIFEST))
        for label in schema.labels:
            if label.kind == "regression":
                faces[label.name] = pd.to_numeric(faces[label.name], errors="coerce").astype("float32")
        return cls(path, images, faces, manifest, schema)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def gray(self) -> bool:
        return self.images.shape[-1] == 1

    def split(self, name: str, *, augmented: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
        """Images and rows of one split; ``augmented=False`` keeps originals only.

        Args:
            name: ``train``, ``val`` or ``test``.
            augmented: include offline augmented faces (the default).

        Returns:
            A pair: uint8 images ``(n, size, size, C)`` and their rows, re-indexed
            from 0.

        Raises:
            DatasetError: the split holds no face.
        """
        mask = (self.faces["split"] == name).to_numpy()
        if not augmented:
            mask = mask & (self.faces["augmentation"] == "identity").to_numpy()
        if not mask.any():
            raise DatasetError(f"{self.path}: split {name!r} is empty")
        return self.images[mask], self.faces[mask].reset_index(drop=True)
