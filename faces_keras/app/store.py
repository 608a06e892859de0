"""The labelling store: one labels file, the faces it describes, and crash-safe saves.

A :class:`LabelStore` holds the faces of one folder (grid photos cut as
``prepare`` cuts them, a folder of face crops, or a prepared dataset: see
:mod:`faces_keras.app.prepared`) and the labels given to them so far. Every
change rewrites the labels file whole, through
:func:`faces_keras.io.atomic_write_text` (a temporary file beside it, then a
rename), so a server killed at any moment leaves either the file before the
keystroke or the file after it, never a part of one. Opening the store again
reads the file back: labelling resumes where it stopped.

The file is in the format the schema reads; for the delimited (grid) schema
that is the original's ``face_nr;sex;glasses;hat;beard;smile`` CSV, with one
extra ``drop`` column (``Y`` for a face to leave out), which ``prepare``
honours, and for a folder of crops an ``image`` column (the file, relative to
the labels file; ``prepare --images files`` reads it). Rows are written for the
faces that have at least one value or a drop mark, in face order; for a
prepared dataset, whose source faces are written out once as PNG crops beside
the labels file, for every face (pre-filled with the dataset's values), with the
``image`` column, and a delimited schema beside it that ``prepare`` reads them with.

Two writers:

* Two servers on the same labels file: the second is refused at start
  (:func:`faces_keras.locking.folder_lock` on the file).
* Two browser tabs on one server: changes are per face, so edits of different
  faces merge. Each face carries a version; a write that names an older
  version of the face than the store holds (the other tab changed it since) is
  refused with :class:`StaleFaceError` and the current values, which the page
  shows. No tab silently overwrites the other's labels.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faces_keras.errors import FacesKerasError, LabelsError
from faces_keras.io import atomic_write_text
from faces_keras.labels.schema import Label, Schema

log = logging.getLogger(__name__)

DROP_COLUMN = "drop"
IMAGE_COLUMN = "image"  # crop folders: each face's file, relative to the labels file (prepare --images files)
DROP_VALUE = "Y"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_OPEN: set[Path] = set()  # labels files a store of this process holds


class UnknownFaceError(FacesKerasError, KeyError):
    """A face id the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BadValueError(FacesKerasError, ValueError):
    """A label value the schema does not allow."""


class StaleFaceError(FacesKerasError):
    """A write based on an older version of a face than the store holds (another tab changed it)."""

    def __init__(self, message: str, face: dict[str, Any]):
        super().__init__(message)
        self.face = face


@dataclass
class Face:
    """One face of the folder: its id, where it comes from, its labels so far."""

    id: str
    origin: str
    values: dict[str, str] = field(default_factory=dict)  # label -> the schema's code, as the file holds it
    drop: bool = False
    version: int = 0

    @property
    def labelled(self) -> bool:
        return self.drop or bool(self.values)

    def to_dict(self, schema: Schema) -> dict[str, Any]:
        return {"id": self.id, "origin": self.origin, "version": self.version, "drop": self.drop,
                "values": {name: self.values.get(name, "") for name in schema.label_names},
                "complete": self.drop or all(name in self.values for name in schema.label_names)}


def label_codes(label: Label) -> list[str]:
    """The values a label takes in the labels file, in the schema's order.

    Binary: negative then positive (``F``/``M``, ``N``/``Y``); multi-class: its
    codes (or class names).

    Raises:
        LabelsError: a regression label (no fixed codes; not labelled by key).
    """
    if label.kind == "binary":
        return [str(label.negative), str(label.positive)]
    if label.kind == "multiclass":
        return [str(c) for c in (label.codes or label.classes)]
    raise LabelsError(f"label {label.name!r} is a {label.kind} label; the labelling page handles binary "
                      "and multi-class labels")


def _read_faces(folder: Path) -> tuple[list[str], list[str], Any, list[Path] | None]:
    """Face ids, origins, a loader of one face's pixels, and the image files (crop folders), for a folder."""
    from faces_keras.data.grids import GRID_NAME, cut_grids

    folder = Path(folder)
    if not folder.is_dir():
        raise LabelsError(f"{folder}: faces folder not found; expected a folder of grid photos or face crops")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if any(GRID_NAME.match(p.name) for p in files):
        pixels, origins = cut_grids(folder)
        ids = [str(o.number) for o in origins]
        where = [f"{Path(o.photo).name} row {o.row + 1} column {o.col + 1}" for o in origins]
        return ids, where, lambda i: pixels[i], None
    if not files:
        raise LabelsError(f"{folder}: no grid photos and no face images (jpg/png/bmp) in it")
    from faces_keras.data.images import read_image

    return [p.stem for p in files], [p.name for p in files], lambda i: read_image(files[i]), files


class LabelStore:
    """The faces of one folder and their labels file, saved atomically after every change.

    Args:
        schema: the labels to give (binary and multi-class ones get keys). For a
            prepared dataset ``None`` (it carries its own schema, labelled with
            :func:`faces_keras.app.prepared.labelling_schema`); a schema given
            with one must have the same labels.
        faces: the folder of grid photos (``faces<i>-<cols>x<rows>-...png``), face
            crops, or a prepared dataset (``images.npy``, ``faces.csv``,
            ``manifest.json``; read, never written).
        labels: the labels file to read (if it exists) and write. For a prepared
            dataset it must lie outside the dataset; its first opening writes the
            source faces to ``<labels stem>-faces/``, the schema to
            ``<labels stem>.schema.yaml`` and the file itself, with the dataset's values.
        lock: hold the labels file's one-writer lock while the store is open
            (a second server on the same file is refused).

    Raises:
        LabelsError: the faces folder is missing or empty, the labels file does
            not fit the schema, or names faces the folder does not hold; a
            prepared dataset's labels file inside it, or its crops folder is
            another dataset's.
        DatasetError: the prepared dataset is damaged.
        FolderLockedError: another process has the labels file open.
    """

    def __init__(self, schema: Schema | None, faces: str | Path, labels: str | Path, *, lock: bool = True):
        self.faces_dir = Path(faces)
        self.path = Path(labels)
        self._lock = threading.RLock()
        self._exit = ExitStack()
        if lock:
            from faces_keras.locking import FolderLockedError, folder_lock

            key = self.path.absolute()
            if key in _OPEN:  # the folder lock is re-entrant within a process; two stores would not be
                raise FolderLockedError(f"{self.path}: labels file is being written by another store in this "
                                        "process; close it first")
            self._exit.enter_context(folder_lock(self.path, "labels file"))
            _OPEN.add(key)
            self._exit.callback(_OPEN.discard, key)
            # Under the lock no other writer runs: a temporary file beside the labels is a killed save's.
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp{self.path.suffix}"):
                log.info("%s: removing %s, left by a save that was interrupted", self.path, stale.name)
                stale.unlink(missing_ok=True)
        try:
            from faces_keras.app.prepared import is_prepared_dataset, open_prepared, schema_path

            self.kind = "dataset" if is_prepared_dataset(self.faces_dir) else None
            self.schema_file: Path | None = None
            prefill: list[dict[str, str]] = []
            if self.kind == "dataset":
                prepared = open_prepared(self.faces_dir, self.path)
                if schema is not None and schema.label_names != prepared.schema.label_names:
                    raise LabelsError(f"{self.faces_dir}: a prepared dataset carries its own schema (labels "
                                      f"{prepared.schema.label_names}); schema {schema.name!r} has "
                                      f"{schema.label_names}: leave out --schema")
                schema, self.schema_file = prepared.schema, schema_path(self.path)
                from faces_keras.data.images import read_image

                files = prepared.files
                ids, origins, self._pixels, self._files = (prepared.ids, prepared.origins,
                                                           lambda i: read_image(files[i]), files)
                prefill = prepared.values
            else:
                if schema is None:
                    raise LabelsError(f"{self.faces_dir}: grid photos and face crops need a schema "
                                      "(--schema); only a prepared dataset carries its own")
                ids, origins, self._pixels, self._files = _read_faces(self.faces_dir)
                self.kind = "crops" if self._files is not None else "grids"
            self.schema = schema
            for label in schema.labels:
                label_codes(label)  # refuses a regression label up front
            self.delimiter = schema.options.get("delimiter", ";")
            self.id_column = schema.options.get("id_column", "face_nr")
            self.faces = [Face(i, o) for i, o in zip(ids, origins)]
            self._index = {face.id: k for k, face in enumerate(self.faces)}
            if self.path.is_file():
                self._read()
            elif self.kind == "dataset":  # a prepared dataset's first opening: its values, saved at once
                for face, values in zip(self.faces, prefill):
                    face.values = dict(values)
                self.save()
                log.info("%s: %d faces of %s with their values; prepare reads it with --schema %s", self.path,
                         len(self.faces), self.faces_dir, self.schema_file)
        except BaseException:
            self._exit.close()
            raise

    def close(self) -> None:
        """Release the labels file's lock."""
        self._exit.close()

    # -- reading -----------------------------------------------------------------
    def _columns(self) -> list[str]:
        return [label.source or label.name for label in self.schema.labels]

    def _read(self) -> None:
        from faces_keras.labels.sources import read_text_lines

        lines = read_text_lines(self.path)
        if not lines:
            return
        header = [h.strip() for h in lines[0].split(self.delimiter)]
        wanted = [self.id_column] + self._columns()
        missing = [c for c in wanted if c not in header]
        if missing:
            raise LabelsError(f"{self.path}:1: missing column(s) {missing}; header is {header}")
        at = {c: header.index(c) for c in header}
        for lineno, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            cells = [c.strip() for c in line.split(self.delimiter)]
            if len(cells) != len(header):
                raise LabelsError(f"{self.path}:{lineno}: {len(cells)} fields, expected {len(header)}")
            face_id = cells[at[self.id_column]]
            if face_id not in self._index:
                raise LabelsError(f"{self.path}:{lineno}: face {face_id!r} is not in {self.faces_dir} "
                                  f"({len(self.faces)} faces)")
            face = self.faces[self._index[face_id]]
            for label, column in zip(self.schema.labels, self._columns()):
                raw = cells[at[column]]
                if raw in ("", "?", "-", "NA", "na", "nan"):
                    continue
                if raw not in label_codes(label):
                    raise LabelsError(f"{self.path}:{lineno}: label {label.name!r} has value {raw!r}; "
                                      f"expected one of {label_codes(label)}")
                face.values[label.name] = raw
            if DROP_COLUMN in at:
                face.drop = cells[at[DROP_COLUMN]].upper() in ("Y", "YES", "1", "TRUE")

    # -- views -------------------------------------------------------------------
    def face(self, face_id: str) -> Face:
        """The face with this id.

        Raises:
            UnknownFaceError: no such face in the folder.
        """
        if face_id not in self._index:
            raise UnknownFaceError(f"no face {face_id!r} in {self.faces_dir} (ids run from "
                                   f"{self.faces[0].id} to {self.faces[-1].id})")
        return self.faces[self._index[face_id]]

    def pixels(self, face_id: str) -> np.ndarray:
        """The face's pixels, uint8 ``(H, W, C)``."""
        return np.asarray(self._pixels(self._index[self.face(face_id).id]))

    def progress(self) -> dict[str, int]:
        """How many faces have all their labels (or a drop mark), are dropped, and in all."""
        return {"labelled": sum(1 for f in self.faces if f.to_dict(self.schema)["complete"]),
                "dropped": sum(1 for f in self.faces if f.drop), "total": len(self.faces)}

    def ids(self, *, unlabelled: bool = False, label: str | None = None, value: str | None = None) -> list[str]:
        """Face ids in order, filtered: only faces without every label, or only faces whose ``label`` is ``value``."""
        out = []
        for face in self.faces:
            if unlabelled and face.to_dict(self.schema)["complete"]:
                continue
            if label is not None:
                self.schema[label]  # raises naming an unknown label
                if face.values.get(label, "") != (value or ""):
                    continue
            out.append(face.id)
        return out

    # -- writing -----------------------------------------------------------------
    def set(self, face_id: str, values: dict[str, str | None] | None = None, *, drop: bool | None = None,
            version: int | None = None) -> Face:
        """Change a face's labels (``None`` or ``""`` clears one) and drop mark, and save the file.

        Args:
            face_id: the face.
            values: label -> code (as :func:`label_codes` lists them); labels not named stay.
            drop: mark (True) or unmark (False) the face to be left out; None keeps it.
            version: the face's version the change is based on; None skips the check.

        Returns:
            The face after the change (its version one higher).

        Raises:
            UnknownFaceError, BadValueError: an unknown face, label or value.
            StaleFaceError: ``version`` is not the face's current version.
        """
        with self._lock:
            face = self.face(face_id)
            if version is not None and int(version) != face.version:
                raise StaleFaceError(f"face {face_id} was changed elsewhere (version {face.version}, "
                                     f"this change was based on {version}); it now has its latest values",
                                     face.to_dict(self.schema))
            new = dict(face.values)
            for name, code in (values or {}).items():
                if name not in self.schema.label_names:
                    raise BadValueError(f"schema {self.schema.name!r} has no label {name!r}; "
                                        f"it has {self.schema.label_names}")
                if code in (None, ""):
                    new.pop(name, None)
                    continue
                allowed = label_codes(self.schema[name])
                if code not in allowed:
                    raise BadValueError(f"label {name!r} cannot be {code!r}; expected one of {allowed}")
                new[name] = str(code)
            old = (dict(face.values), face.drop)
            face.values = new
            if drop is not None:
                face.drop = bool(drop)
            try:
                self.save()
            except BaseException:
                face.values, face.drop = old
                raise
            face.version += 1
            return face

    def text(self) -> str:
        """The labels file's text as :meth:`save` writes it."""
        out = io.StringIO()
        d = self.delimiter
        images = self._files is not None  # crops: the image column, relative to the labels file
        out.write(d.join([self.id_column, *self._columns(), DROP_COLUMN] + ([IMAGE_COLUMN] if images else [])) + "\n")
        for k, face in enumerate(self.faces):
            if not face.labelled and self.kind != "dataset":  # a dataset's every face keeps its row
                continue
            cells = [face.id] + [face.values.get(name, "") for name in self.schema.label_names]
            cells.append(DROP_VALUE if face.drop else "")
            if images:
                cells.append(os.path.relpath(self._files[k].absolute(), self.path.absolute().parent))
            out.write(d.join(cells) + "\n")
        return out.getvalue()

    def save(self) -> None:
        """Write the labels file whole, atomically (temporary file, then rename)."""
        with self._lock:
            atomic_write_text(self.path, self.text())


__all__ = ["BadValueError", "DROP_COLUMN", "Face", "LabelStore", "StaleFaceError", "UnknownFaceError",
           "label_codes"]
