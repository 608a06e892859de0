"""A prepared dataset: one folder, written atomically, checked when read.

Layout::

    images.npy      uint8 (N, size, size, C): every face, originals and augmented
    faces.csv       one row per face: index, id, source_id, split, augmentation,
                    origin (photo and cell, or file), then the encoded labels
    manifest.json   schema, preparation settings, sizes, counts, a checksum

``images.npy`` is uncompressed on purpose: it memory-maps in milliseconds,
so a dataset larger than memory is read a batch at a time
(:class:`faces_keras.data.stream.FaceBatches`), whereas a compressed ``.npz``
must be inflated whole. A folder of PNGs would be 200,000 files to open per
epoch. It is written in chunks as faces arrive (:class:`ImagesWriter`) and
hashed in chunks, so neither step holds every face in memory.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from faces_keras import __version__
from faces_keras.errors import DatasetError
from faces_keras.io import atomic_dir, read_json, write_json
from faces_keras.labels.schema import Schema, schema_from_dict

IMAGES, FACES, MANIFEST = "images.npy", "faces.csv", "manifest.json"


CHUNK_BYTES = 64 << 20  # faces read, hashed and written per step: 64 MiB keeps memory flat at any size


def chunk_rows(array_or_shape, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows of an image array that fit in ``chunk_bytes`` (at least one).

    Args:
        array_or_shape: an array, or the shape of one row.
        chunk_bytes: the chunk size in bytes.

    Returns:
        The number of rows per chunk.
    """
    row = array_or_shape.shape[1:] if hasattr(array_or_shape, "shape") else tuple(array_or_shape)
    return max(1, chunk_bytes // max(1, int(np.prod(row, dtype=np.int64))))


def release_pages(array) -> bool:
    """Tell the kernel this process no longer needs the pages of a memory-mapped array it has read.

    Pages of a read-only file mapping that a process has touched count in its
    resident memory until it unmaps them, so one pass over a 200k-face
    images.npy would show as 0.8 GB held. Dropping them (``MADV_DONTNEED``)
    keeps the pages in the page cache, whence a later read maps them again
    at the cost of a minor fault, and keeps the process's memory at what it
    really holds.

    Args:
        array: a ``np.memmap`` or a view of one; anything else is ignored.

    Returns:
        Whether pages were released.
    """
    import mmap

    while array is not None and not hasattr(array, "_mmap"):
        array = getattr(array, "base", None)
    mapping = getattr(array, "_mmap", None)  # numpy keeps the mmap object of a memmap here
    if mapping is None or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):
        return False
    return True


def checksum(array: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The first 16 hex digits of the SHA-256 of an array's bytes (the manifest's ``images_sha256``).

    The array is hashed a chunk of rows at a time, so a memory-mapped file is
    never read into memory whole; the digest is that of all its bytes in C
    order, as one call on the whole array would give.

    Args:
        array: any array (a memory map included); hashed in C order.
        chunk_bytes: bytes hashed per step.

    Returns:
        The hex digest, 16 characters.
    """
    digest = hashlib.sha256()
    if array.ndim == 0 or len(array) == 0:
        digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()[:16]
    step = chunk_rows(array, chunk_bytes)
    for start in range(0, len(array), step):
        digest.update(np.ascontiguousarray(array[start:start + step]).data)
        release_pages(array)  # a memory-mapped file is read once, not held
    return digest.hexdigest()[:16]


class ImagesWriter:
    """``images.npy`` written a chunk at a time, its checksum computed on the way.

    The ``.npy`` header is written first for the final shape, then each chunk
    is appended with plain file writes. (A writable ``open_memmap`` would do
    the same, but its dirty pages count in the process's resident memory until
    the kernel writes them back, so writing 200,000 faces through one would
    look like holding them.) The count must be known up front; :meth:`close`
    checks that exactly that many faces were written.

    Args:
        path: the file to write (inside a folder that is renamed into place
            when whole, e.g. by :func:`faces_keras.io.atomic_dir`).
        count: the number of faces the file will hold.
        face_shape: ``(size, size, channels)``.
    """

    def __init__(self, path: str | Path, count: int, face_shape: tuple[int, ...]):
        self.path, self.count, self.face_shape = Path(path), int(count), tuple(int(v) for v in face_shape)
        self.written = 0
        self._digest = hashlib.sha256()
        self._file = open(self.path, "wb")
        np.lib.format.write_array_header_1_0(self._file, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
            "shape": (self.count, *self.face_shape)})

    def write(self, faces: np.ndarray) -> None:
        """Append faces.

        Args:
            faces: uint8 ``(n, *face_shape)``.

        Raises:
            DatasetError: the faces have another shape or dtype, or more
                faces than ``count`` would be written.
        """
        faces = np.ascontiguousarray(faces)
        if faces.dtype != np.uint8 or faces.shape[1:] != self.face_shape:
            raise DatasetError(f"{self.path}: expected uint8 faces of shape {self.face_shape}, "
                               f"got {faces.dtype} {faces.shape[1:]}")
        if self.written + len(faces) > self.count:
            raise DatasetError(f"{self.path}: more than the {self.count} faces declared")
        self._digest.update(faces.data)
        self._file.write(faces.data)
        self.written += len(faces)

    def close(self) -> str:
        """Finish the file (flushed to disk) and return its checksum.

        Returns:
            The 16-digit checksum of the faces (as :func:`checksum` gives).

        Raises:
            DatasetError: fewer faces were written than declared.
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self.written != self.count:
            raise DatasetError(f"{self.path}: {self.written} faces written, {self.count} declared")
        return self._digest.hexdigest()[:16]

    def abort(self) -> None:
        """Close without checks (the folder being built is discarded)."""
        if not self._file.closed:
            self._file.close()


@dataclass
class FaceChunks:
    """Faces given to :func:`write_dataset` a chunk at a time, in their final order.

    Args:
        count: the number of faces.
        face_shape: ``(size, size, channels)``.
        chunks: a function returning an iterator of uint8 face arrays whose
            lengths add up to ``count``.
    """

    count: int
    face_shape: tuple[int, ...]
    chunks: Any

    @classmethod
    def of(cls, images: np.ndarray) -> "FaceChunks":
        """The chunks of an array (in memory or memory-mapped).

        Args:
            images: uint8 ``(N, size, size, C)``.

        Returns:
            The :class:`FaceChunks`.
        """
        step = chunk_rows(images)
        return cls(len(images), tuple(images.shape[1:]),
                   lambda: (images[i:i + step] for i in range(0, len(images), step)))

    @classmethod
    def rows(cls, images: np.ndarray, order: np.ndarray) -> "FaceChunks":
        """Rows ``order`` of ``images``, in that order, gathered a chunk at a time.

        Args:
            images: uint8 faces, e.g. a memory-mapped scratch file.
            order: row indices into ``images``.

        Returns:
            The :class:`FaceChunks`.
        """
        return cls.rows_of([images], order)

    @classmethod
    def rows_of(cls, arrays: list[np.ndarray], order: np.ndarray) -> "FaceChunks":
        """Rows ``order`` of the arrays taken end to end, gathered a chunk at a time.

        Args:
            arrays: uint8 face arrays of one face shape (memory-mapped parts).
            order: row indices into their concatenation.

        Returns:
            The :class:`FaceChunks`.
        """
        order = np.asarray(order, dtype=np.int64)
        starts = np.cumsum([0] + [len(a) for a in arrays])
        shape = tuple(arrays[0].shape[1:])
        step = chunk_rows(shape)

        def chunks():
            for begin in range(0, len(order), step):
                wanted = order[begin:begin + step]
                part = np.searchsorted(starts, wanted, side="right") - 1
                out = np.empty((len(wanted), *shape), np.uint8)
                for k in np.unique(part):
                    at = np.flatnonzero(part == k)
                    local = wanted[at] - starts[k]
                    ascending = np.argsort(local, kind="stable")  # forward reads through the file
                    out[at[ascending]] = arrays[k][local[ascending]]
                yield out

        return cls(len(order), shape, chunks)


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


def write_dataset(out_dir: str | Path, images: "np.ndarray | FaceChunks", faces: pd.DataFrame, schema: Schema,
                  settings: dict[str, Any], extra: dict[str, Any] | None = None,
                  overwrite: bool = False, writers=()) -> Path:
    """Write a prepared dataset folder; an interrupted write leaves no folder that looks whole.

    Args:
        out_dir: the dataset folder to write.
        images: uint8 faces ``(N, size, size, C)``, or :class:`FaceChunks`
            that give them a chunk at a time (a dataset larger than memory).
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
    chunks = images if isinstance(images, FaceChunks) else FaceChunks.of(np.asarray(images))
    if chunks.count != len(faces):
        raise DatasetError(f"{chunks.count} images but {len(faces)} face rows")
    faces = faces.reset_index(drop=True).copy()
    faces.insert(0, "index", np.arange(len(faces)))
    manifest = {
        "faces_keras_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "schema": schema.to_dict(),
        "settings": settings,
        "image_shape": list(chunks.face_shape),
        "count": int(chunks.count),
        "sources": int(faces["source_id"].nunique()),
        "images_sha256": None,
        "balance": label_balance(faces, schema),
        **(extra or {}),
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        writer = ImagesWriter(tmp / IMAGES, chunks.count, chunks.face_shape)
        try:
            for chunk in chunks.chunks():
                writer.write(chunk)
            manifest["images_sha256"] = writer.close()
        except BaseException:
            writer.abort()  # atomic_dir then discards the folder
            raise
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
        images: every face, uint8 ``(N, size, size, C)`` (C 1 gray or 3 RGB),
            memory-mapped read-only from ``images.npy`` (rows are read from
            disk when indexed; ``np.asarray(dataset.images)`` reads them all).
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
            # Memory-mapped: a batch is read when it is used, so a dataset larger than memory loads.
            images = np.load(path / IMAGES, mmap_mode="r", allow_pickle=False)
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
        rows = self.split_rows(name, augmented=augmented)
        return self.images[rows], self.faces.iloc[rows].reset_index(drop=True)

    def split_rows(self, name: str, *, augmented: bool = True) -> np.ndarray:
        """Row numbers (into :attr:`images` and :attr:`faces`) of one split, in file order.

        Reads no image: a split of a dataset larger than memory is streamed
        from these (:class:`faces_keras.data.stream.FaceBatches`).

        Args:
            name: ``train``, ``val`` or ``test``.
            augmented: include offline augmented faces (the default).

        Returns:
            An int64 array of row numbers.

        Raises:
            DatasetError: the split holds no face.
        """
        mask = (self.faces["split"] == name).to_numpy()
        if not augmented:
            mask = mask & (self.faces["augmentation"] == "identity").to_numpy()
        if not mask.any():
            raise DatasetError(f"{self.path}: split {name!r} is empty")
        return np.flatnonzero(mask)
