"""The label schema: one description for every kind of face label.

A schema says where the labels of a dataset come from (its ``format``) and
what each label is: a ``binary`` label (two values, one of them positive), a
``multiclass`` label (one of several classes, optionally derived from a number
by bands) or a ``regression`` label (a number). Schemas are plain YAML files in
``datasets/`` so that users read and change them without touching code.

Encoded values, shared by every loader, model and metric in the suite:

* binary: ``1`` positive, ``0`` negative, ``-1`` missing;
* multiclass: the class index, ``-1`` missing;
* regression: the number, ``NaN`` missing.

Missing values are masked: losses and metrics ignore them.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faces_keras.errors import SchemaError, UnknownLabelError

FORMATS = (
    "delimited",  # face_nr;sex;hair;... with one character per value
    "celeba-attributes",  # list_attr_celeba.txt
    "utkface-filenames",  # <age>_<gender>_<race>_<date>.jpg[.chip.jpg]
    "folder-per-class",  # <root>/<split?>/<class>/*.jpg
    "matlab-array",  # images in a MATLAB array, class by position (Olivetti)
)
KINDS = ("binary", "multiclass", "regression")
MISSING = -1


@dataclass(frozen=True)
class Label:
    """One label of a schema.

    Args:
        name: the label's name (a column of prepared datasets, a model output).
        kind: ``binary``, ``multiclass`` or ``regression``.
        source: the column (delimited), attribute (CelebA) or file-name field
            (UTKFace) the label is read from; unused for folder-per-class.
            ``None`` (the default) reads the column of the label's name.
        positive: binary: the raw value that means 1.
        negative: binary: the raw value that means 0.
        invert: binary: swap after reading (beard = not No_Beard).
        classes: multiclass: class names, in index order.
        codes: multiclass: the raw codes, in the same order as ``classes``.
        bands: multiclass from a number: the band edges (``[a, b)`` per class).
        names: binary: display names of 0 and 1 (e.g. ``("F", "M")``).
        description: free text for people.
    """

    name: str
    kind: str
    source: str | None = None
    positive: str | None = None  # binary: the raw value that means 1
    negative: str | None = None  # binary: the raw value that means 0
    invert: bool = False  # binary: swap after reading (beard = not No_Beard)
    classes: tuple[str, ...] = ()  # multiclass: class names, index order
    codes: tuple[str, ...] = ()  # multiclass: raw codes, same order as classes
    bands: tuple[float, ...] = ()  # multiclass from a number: band edges
    names: tuple[str, ...] = ()  # binary: display names of 0 and 1
    description: str = ""

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    @property
    def num_classes(self) -> int:
        if self.kind == "binary":
            return 2
        if self.kind == "multiclass":
            return len(self.classes)
        return 0

    def value_names(self) -> list[str]:
        """Display names of the encoded values, in index order.

        Returns:
            For binary labels the ``names``, else the raw negative/positive values
            when both are words other than Y/N, else ``["no", "yes"]``; for
            multiclass labels the classes; ``[]`` for regression.
        """
        if self.kind == "binary":
            if self.names:
                return list(self.names)
            neg, pos = self.negative, self.positive
            if self.invert:
                neg, pos = pos, neg
            if neg and pos and neg.isalpha() and pos.isalpha() and neg not in "YN":
                return [neg, pos]
            return ["no", "yes"]
        return list(self.classes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("source", "positive", "negative", "description"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.invert:
            out["invert"] = True
        if self.classes:
            out["classes"] = list(self.classes)
        if self.codes:
            out["codes"] = list(self.codes)
        if self.bands:
            out["bands"] = list(self.bands)
        if self.names:
            out["names"] = list(self.names)
        return out


@dataclass(frozen=True)
class Schema:
    """A dataset format and its labels, in order.

    Built by :func:`load_schema` (from YAML) or :func:`schema_from_dict`.

    Args:
        name: the schema's name (``grids``, ``celeba``...).
        format: how the labels are read: one of :data:`FORMATS`.
        labels: the labels, in order.
        options: format options (delimiter, id column, image mode...).
        description: free text for people.
        path: where it was read from, for messages; ``None`` if built in code.
    """

    name: str
    format: str
    labels: tuple[Label, ...]
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    path: str | None = None  # where it was read from, for messages

    # -- views ---------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def binary_labels(self) -> list[Label]:
        return [label for label in self.labels if label.kind == "binary"]

    def __getitem__(self, name: str) -> Label:
        for label in self.labels:
            if label.name == name:
                return label
        raise UnknownLabelError(f"schema {self.name!r} has no label {name!r}; it has {self.label_names}")

    def select(self, names: list[str] | None) -> "Schema":
        """The same schema restricted to ``names`` (in that order).

        Args:
            names: the labels to keep; ``None`` or empty keeps them all.

        Returns:
            A new :class:`Schema`, or this one when ``names`` is empty.

        Raises:
            SchemaError: a name is not a label of the schema.
        """
        if not names:
            return self
        missing = [n for n in names if n not in self.label_names]
        if missing:
            raise SchemaError(
                f"{self.path or self.name}: unknown label(s) {missing}; "
                f"the schema has {self.label_names}"
            )
        return Schema(self.name, self.format, tuple(self[n] for n in names),
                      self.options, self.description, self.path)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "format": self.format}
        if self.description:
            out["description"] = self.description
        if self.options:
            out["options"] = copy.deepcopy(self.options)
        out["labels"] = {label.name: label.to_dict() for label in self.labels}
        return out

    def dump(self, path: str | os.PathLike) -> None:
        """Write the schema as YAML, atomically.

        Args:
            path: the file to write.
        """
        from faces_keras.io import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# -- parsing -------------------------------------------------------------------

def _label_from_dict(schema_where: str, name: str, spec: Any) -> Label:
    where = f"{schema_where}: label {name!r}"
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: expected a mapping, got {spec!r}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SchemaError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    unknown = set(spec) - {"kind", "source", "positive", "negative", "invert",
                           "classes", "codes", "bands", "names", "description"}
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {sorted(unknown)}")
    classes = tuple(str(c) for c in spec.get("classes", ()))
    codes = tuple(str(c) for c in spec.get("codes", ()))
    bands = tuple(float(b) for b in spec.get("bands", ()))
    if kind == "multiclass":
        if bands:
            if list(bands) != sorted(bands) or len(bands) < 2:
                raise SchemaError(f"{where}: bands must be at least two increasing edges")
            if not classes:
                classes = tuple(f"{int(a)}-{int(b) - 1}" for a, b in zip(bands[:-1], bands[1:]))
            if len(classes) != len(bands) - 1:
                raise SchemaError(f"{where}: {len(bands) - 1} bands but {len(classes)} class names")
        elif len(classes) < 2:
            raise SchemaError(f"{where}: a multiclass label needs at least two classes")
        if codes and len(codes) != len(classes):
            raise SchemaError(f"{where}: {len(codes)} codes for {len(classes)} classes")
    if kind == "binary" and spec.get("names") is not None and len(spec["names"]) != 2:
        raise SchemaError(f"{where}: a binary label has two names (negative, positive)")
    if kind == "binary" and spec.get("positive") is not None and spec.get("negative") is not None:
        if str(spec["positive"]) == str(spec["negative"]):
            raise SchemaError(f"{where}: positive and negative are both {spec['positive']!r}")
    return Label(
        name=str(name),
        kind=kind,
        source=None if spec.get("source") is None else str(spec["source"]),
        positive=None if spec.get("positive") is None else str(spec["positive"]),
        negative=None if spec.get("negative") is None else str(spec["negative"]),
        invert=bool(spec.get("invert", False)),
        classes=classes,
        codes=codes,
        bands=bands,
        names=tuple(str(n) for n in spec.get("names", ())),
        description=str(spec.get("description", "")),
    )


def schema_from_dict(data: dict[str, Any], where: str = "<schema>") -> Schema:
    """Build a schema from its YAML mapping, checking every key.

    Args:
        data: the mapping: ``name``, ``format``, ``labels`` (name to spec),
            optional ``options`` and ``description``.
        where: what to name in messages (the file it came from).

    Returns:
        The :class:`Schema`; its name defaults to ``where``'s file stem.

    Raises:
        SchemaError: the mapping or a label spec is not a valid schema; the
            message names ``where`` and the label.
    """
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: a schema is a mapping with name, format and labels")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise SchemaError(f"{where}: format must be one of {FORMATS}, got {fmt!r}")
    labels_spec = data.get("labels")
    if not isinstance(labels_spec, dict) or not labels_spec:
        raise SchemaError(f"{where}: 'labels' must be a non-empty mapping of label name to spec")
    labels = tuple(_label_from_dict(where, n, s) for n, s in labels_spec.items())
    if fmt == "folder-per-class" and (len(labels) != 1 or labels[0].kind != "multiclass"):
        raise SchemaError(f"{where}: a folder-per-class schema has exactly one multiclass label")
    return Schema(
        name=str(data.get("name", Path(where).stem)),
        format=fmt,
        labels=labels,
        options=dict(data.get("options", {}) or {}),
        description=str(data.get("description", "")),
        path=where,
    )


def schema_search_path() -> list[Path]:
    """Folders searched for a schema given by name, first match wins.

    Returns:
        ``$FACES_KERAS_DATASETS`` (when set), ``./datasets``, then the
        ``datasets/`` folder of the source checkout.
    """
    paths = []
    if os.environ.get("FACES_KERAS_DATASETS"):
        paths.append(Path(os.environ["FACES_KERAS_DATASETS"]))
    paths.append(Path.cwd() / "datasets")
    paths.append(Path(__file__).resolve().parents[2] / "datasets")
    return paths


def load_schema(name_or_path: str | os.PathLike) -> Schema:
    """Load a schema from a YAML file, or by name from ``datasets/``.

    Args:
        name_or_path: a path to a ``.yaml`` schema file, or a bare name
            without a suffix (``grids``, ``celeba``) looked up as
            ``<name>.yaml`` in :func:`schema_search_path`'s folders.

    Returns:
        The :class:`Schema`, with ``path`` set to the file read.

    Raises:
        SchemaError: no schema of that name (the known ones are listed), the
            file is missing, not valid YAML, or not a valid schema.
    """
    path = Path(name_or_path)
    if not path.suffix:
        for folder in schema_search_path():
            candidate = folder / f"{path.name}.yaml"
            if candidate.is_file():
                path = candidate
                break
        else:
            known = sorted({p.stem for f in schema_search_path() if f.is_dir() for p in f.glob("*.yaml")})
            raise SchemaError(f"no schema named {str(name_or_path)!r}; known schemas: {known}")
    if not path.is_file():
        raise SchemaError(f"{path}: schema file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML: {exc}") from exc
    return schema_from_dict(data, str(path))
