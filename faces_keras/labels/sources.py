"""Read a labels source against its schema into one encoded table.

Every loader returns a :class:`pandas.DataFrame` with one row per face:

* ``id`` (str): the face's id in its source (face number, file name);
* ``image`` (str or empty): the image file, where the source names one;
* ``given_split`` (str, optional): a split the dataset itself fixes (FER-2013's
  ``train``/``test`` folders);
* one column per schema label, encoded as :mod:`faces_keras.labels.schema`
  describes (``-1`` / ``NaN`` for missing).

Bad input raises :class:`~faces_keras.errors.LabelsError` naming the file and
the line (or file name). Published datasets with a few known-malformed entries
(UTKFace) are skipped with a warning that counts and names them unless
``strict=True``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from faces_keras.errors import LabelsError, SchemaError
from faces_keras.labels.schema import MISSING, Label, Schema

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp")
MISSING_TOKENS = ("", "?", "-", "NA", "na", "nan")
MAX_AGE = 120  # UTKFace's ages run 0 to 116; a larger one is a malformed name
DROP_COLUMN, DROP_TOKENS = "drop", ("Y", "YES", "1", "TRUE")  # delimited files: faces to leave out
IMAGE_COLUMN = "image"  # delimited files: an optional image file per face, relative to the labels file


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark, as Excel writes, is accepted).

    Args:
        path: the text file.

    Returns:
        Its lines, without line endings.

    Raises:
        LabelsError: the file is not UTF-8 text, or holds a NUL byte; the
            message names the file and the line.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise LabelsError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; expected a UTF-8 "
                          "labels file (in Excel: save as \"CSV UTF-8\")") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise LabelsError(f"{path}:{line}: a NUL byte; expected a UTF-8 text labels file, not binary data")
    return text.splitlines()


def load_labels(schema: Schema, source: str | Path, *, check_images: bool = True,
                strict: bool = False) -> pd.DataFrame:
    """Load ``source`` (a file or folder) with the loader its schema's format names.

    Args:
        schema: the labels to read and the format they come in
            (``delimited``, ``celeba-attributes``, ``utkface-filenames``,
            ``folder-per-class``, ``matlab-array``).
        source: the labels file (delimited, CelebA's attribute list, a
            ``.mat`` file) or folder (UTKFace, folder per class; a CelebA
            folder holding ``list_attr_celeba.txt``).
        check_images: CelebA: check that every image named exists (the
            default); ``False`` leaves that to the caller.
        strict: UTKFace: refuse the first malformed file name instead of
            skipping malformed ones with a warning that names them.

    Returns:
        One row per face: ``id`` (str), ``image`` (the image file, or empty),
        ``given_split`` where the source fixes splits, and one column per
        schema label, encoded as :mod:`faces_keras.labels.schema` describes
        (``-1`` / ``NaN`` for missing).

    Raises:
        LabelsError: the source is missing, malformed, or holds no labelled
            face; the message names the file and line (or file name).
        SchemaError: the schema's format has no loader, or does not fit it.
    """
    source = Path(source)
    if not source.exists():
        raise LabelsError(f"{source}: labels source not found")
    loaders = {
        "delimited": lambda: load_delimited(schema, source),
        "celeba-attributes": lambda: load_celeba_attributes(schema, source, check_images=check_images),
        "utkface-filenames": lambda: load_utkface(schema, source, strict=strict),
        "folder-per-class": lambda: load_folder_per_class(schema, source),
        "matlab-array": lambda: load_matlab_array(schema, source),
    }
    if schema.format in loaders:
        frame = loaders[schema.format]()
        if frame.empty:
            raise LabelsError(f"{source}: no labelled faces in it; expected at least one face after the header")
        return frame
    raise SchemaError(f"{schema.path}: no loader for format {schema.format!r}")


# -- delimited: face_nr;sex;hair;glasses;hat;beard ------------------------------

def _encode_binary_char(label: Label, raw: str, where: str) -> int:
    if raw in MISSING_TOKENS:
        return MISSING
    if raw == label.positive:
        value = 1
    elif raw == label.negative:
        value = 0
    else:
        raise LabelsError(
            f"{where}: label {label.name!r} has value {raw!r}; expected "
            f"{label.positive!r} (positive) or {label.negative!r} (negative)"
        )
    return 1 - value if label.invert else value


def load_delimited(schema: Schema, path: Path) -> pd.DataFrame:
    """A delimited labels file: a header, then one face per line (``face_nr;sex;hair;...``).

    The schema's options name the ``delimiter`` (``;`` by default) and the
    ``id_column`` (``face_nr``); a ``drop`` column marking a face ``Y`` leaves
    it out.

    Args:
        schema: the labels, each read from its ``source`` column (or its name).
        path: the labels file.

    Returns:
        The encoded table :func:`load_labels` describes.

    Raises:
        LabelsError: the file is empty, lacks a column, or a line has the
            wrong number of fields, an empty or repeated id, or a bad value;
            the message names the file and line.
    """
    opts = schema.options
    delimiter = opts.get("delimiter", ";")
    id_column = opts.get("id_column", "face_nr")
    lines = read_text_lines(path)
    if not lines:
        raise LabelsError(f"{path}: empty labels file")
    header = [h.strip() for h in lines[0].split(delimiter)]
    wanted = [id_column] + [label.source or label.name for label in schema.labels]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise LabelsError(f"{path}:1: missing column(s) {missing}; header is {header} "
                          f"(separator {delimiter!r})")
    index = {name: header.index(name) for name in wanted}
    # An optional drop column (the labelling app's): a face marked Y is left out.
    drop_at = header.index(DROP_COLUMN) if DROP_COLUMN in header and DROP_COLUMN not in wanted else None
    image_at = header.index(IMAGE_COLUMN) if IMAGE_COLUMN in header and IMAGE_COLUMN not in wanted else None
    rows, seen, dropped = [], {}, []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(delimiter)]
        where = f"{path}:{lineno}"
        if len(cells) != len(header):
            raise LabelsError(f"{where}: {len(cells)} fields, expected {len(header)} ({line!r})")
        face_id = cells[index[id_column]]
        if not face_id:
            raise LabelsError(f"{where}: empty {id_column}")
        if face_id in seen:
            raise LabelsError(f"{where}: duplicate {id_column} {face_id!r} (first on line {seen[face_id]})")
        seen[face_id] = lineno
        if drop_at is not None and cells[drop_at].upper() in DROP_TOKENS:
            dropped.append(face_id)
            continue
        image = cells[image_at] if image_at is not None else ""
        row = {"id": face_id, "image": str(path.parent / image) if image else ""}
        for label in schema.labels:
            raw = cells[index[label.source or label.name]]
            if label.kind == "binary":
                row[label.name] = _encode_binary_char(label, raw, where)
            elif label.kind == "multiclass":
                row[label.name] = _encode_class(label, raw, where)
            else:
                row[label.name] = _encode_number(label, raw, where)
        rows.append(row)
    if dropped:
        log.info("%s: %d face(s) marked drop are left out: %s", path, len(dropped), ", ".join(dropped[:20]))
    return _frame(schema, rows)


def _encode_class(label: Label, raw: str, where: str) -> int:
    if raw in MISSING_TOKENS:
        return MISSING
    codes = label.codes or label.classes
    if raw in codes:
        return codes.index(raw)
    raise LabelsError(f"{where}: label {label.name!r} has value {raw!r}; expected one of {list(codes)}")


def _encode_number(label: Label, raw: str, where: str) -> float:
    if raw in MISSING_TOKENS:
        return float("nan")
    try:
        return float(raw)
    except ValueError:
        raise LabelsError(f"{where}: label {label.name!r} has value {raw!r}; expected a number") from None


def _frame(schema: Schema, rows: list[dict]) -> pd.DataFrame:
    columns = ["id", "image"] + (["given_split"] if rows and "given_split" in rows[0] else [])
    frame = pd.DataFrame(rows, columns=columns + schema.label_names)
    for label in schema.labels:
        frame[label.name] = frame[label.name].astype("float32" if label.kind == "regression" else "int16")
    frame["id"] = frame["id"].astype(str)
    return frame


# -- CelebA: list_attr_celeba.txt -------------------------------------------------

def load_celeba_attributes(schema: Schema, path: Path, *, check_images: bool = True) -> pd.DataFrame:
    """CelebA's attribute list: a count line, a names line, then ``file v1 ... v40``.

    Args:
        schema: binary labels, each read from its ``source`` attribute (or its
            name); images are looked for in the schema's ``image_dir`` option
            (``img_celeba`` by default) beside the file.
        path: ``list_attr_celeba.txt``, or the folder holding it.
        check_images: check that every image named exists.

    Returns:
        The encoded table :func:`load_labels` describes.

    Raises:
        LabelsError: the file is missing or malformed, names an attribute it
            lacks, repeats an image, or (``check_images``) names missing images.
        SchemaError: a schema label is not binary.
    """
    if path.is_dir():
        path = path / "list_attr_celeba.txt"
    if not path.is_file():
        raise LabelsError(f"{path}: CelebA attribute file not found")
    image_dir = path.parent / schema.options.get("image_dir", "img_celeba")
    lines = read_text_lines(path)
    if len(lines) < 2:
        raise LabelsError(f"{path}: expected a count line and a names line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise LabelsError(f"{path}:1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    for label in schema.labels:
        if label.kind != "binary":
            raise SchemaError(f"{schema.path}: CelebA labels are binary; {label.name!r} is {label.kind}")
        if (label.source or label.name) not in names:
            raise LabelsError(f"{path}:2: no attribute {label.source or label.name!r}; "
                              f"attributes are {names}")
    columns = [names.index(label.source or label.name) for label in schema.labels]
    body = [line for line in lines[2:] if line.strip()]
    if len(body) != count:
        raise LabelsError(f"{path}:1: says {count} images but {len(body)} rows follow")
    rows, seen = [], {}
    for lineno, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{lineno}"
        if len(parts) != len(names) + 1:
            raise LabelsError(f"{where}: {len(parts) - 1} values, expected {len(names)}")
        file = parts[0]
        if file in seen:
            raise LabelsError(f"{where}: duplicate image {file!r} (first on line {seen[file]})")
        seen[file] = lineno
        row = {"id": Path(file).stem, "image": str(image_dir / file)}
        for label, col in zip(schema.labels, columns):
            raw = parts[col + 1]
            if raw not in ("1", "-1", "0"):
                raise LabelsError(f"{where}: attribute {names[col]!r} has value {raw!r}; expected 1 or -1")
            value = 1 if raw == "1" else 0
            row[label.name] = 1 - value if label.invert else value
        rows.append(row)
    frame = _frame(schema, rows)
    if check_images:
        _check_images_exist(frame, path)
    return frame


def _check_images_exist(frame: pd.DataFrame, labels_path: Path) -> None:
    missing = [img for img in frame["image"] if img and not Path(img).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise LabelsError(f"{labels_path}: {len(missing)} image file(s) named there do not exist: {shown}")


# -- UTKFace: <age>_<gender>_<race>_<date>.jpg[.chip.jpg] ---------------------------

UTKFACE_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<date>\d{8,17})\.jpg(\.chip\.jpg)?$")


def parse_utkface_name(name: str) -> dict[str, str]:
    """The fields of one UTKFace file name.

    Args:
        name: a file name ``<age>_<gender 0|1>_<race 0-4>_<date>.jpg[.chip.jpg]``.

    Returns:
        The raw fields ``age``, ``gender``, ``race`` and ``date`` as strings.

    Raises:
        LabelsError: the name is malformed or the age above 120; the message
            names it.
    """
    match = UTKFACE_NAME.match(name)
    if not match:
        raise LabelsError(
            f"{name}: not a UTKFace file name <age>_<gender 0|1>_<race 0-4>_<date>.jpg[.chip.jpg]"
        )
    if int(match["age"]) > MAX_AGE:
        raise LabelsError(f"{name}: age {int(match['age'])} is out of range; expected an age of 0 to {MAX_AGE} years")
    return match.groupdict()


def _encode_field(label: Label, raw: str, where: str) -> int | float:
    if label.kind == "regression":
        return float(raw)
    if label.kind == "binary":
        value = 1 if raw == label.positive else 0
        if raw not in (label.positive, label.negative):
            raise LabelsError(f"{where}: {label.source} {raw!r} is neither {label.positive!r} nor {label.negative!r}")
        return 1 - value if label.invert else value
    if label.bands:
        number = float(raw)
        edges = np.asarray(label.bands)
        if not edges[0] <= number < edges[-1]:
            raise LabelsError(f"{where}: {label.source} {raw} is outside the bands {list(label.bands)}")
        return int(np.searchsorted(edges, number, side="right") - 1)
    return _encode_class(label, raw, where)


def load_utkface(schema: Schema, folder: Path, *, strict: bool = False) -> pd.DataFrame:
    """A folder of UTKFace images whose file names hold the labels.

    Args:
        schema: the labels, each read from its ``source`` field (``age``,
            ``gender``, ``race``).
        folder: the folder of images.
        strict: refuse the first malformed name instead of skipping malformed
            names with one warning that counts and names them.

    Returns:
        The encoded table :func:`load_labels` describes.

    Raises:
        LabelsError: the folder is missing or holds no UTKFace image, or
            (``strict``) a name is malformed.
    """
    if not folder.is_dir():
        raise LabelsError(f"{folder}: UTKFace folder not found")
    rows, malformed = [], []
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        try:
            fields = parse_utkface_name(file.name)
        except LabelsError as exc:
            if strict:
                raise LabelsError(f"{folder}/{exc}") from None
            malformed.append(file.name)
            continue
        row = {"id": file.name.split(".")[0], "image": str(file)}
        try:
            for label in schema.labels:
                row[label.name] = _encode_field(label, fields[label.source], f"{folder}/{file.name}")
        except LabelsError:
            if strict:
                raise
            malformed.append(file.name)
            continue
        rows.append(row)
    if malformed:
        log.warning("%s: skipped %d malformed UTKFace file name(s): %s", folder, len(malformed),
                    ", ".join(malformed))
    if not rows:
        raise LabelsError(f"{folder}: no UTKFace images found")
    return _frame(schema, rows)


# -- folder per class: <root>/[<split>/]<class>/*.jpg ------------------------------

def load_folder_per_class(schema: Schema, root: Path) -> pd.DataFrame:
    """Images in ``<root>/[<split>/]<class>/*.jpg``: the folder names the class.

    Args:
        schema: one multiclass label whose classes are the folder names.
        root: the folder of class folders, or of split folders (``train``,
            ``test``...) each holding class folders; the split is recorded
            as ``given_split``.

    Returns:
        The encoded table :func:`load_labels` describes.

    Raises:
        LabelsError: the folder is missing, has no class or split folders, a
            folder is not a class, or no image is found.
    """
    (label,) = schema.labels
    if not root.is_dir():
        raise LabelsError(f"{root}: folder not found")
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
    if set(subdirs) & set(label.classes):
        splits = [(None, root)]
    else:
        splits = [(name, root / name) for name in subdirs]
        if not splits:
            raise LabelsError(f"{root}: no class folders {list(label.classes)} and no split folders")
    rows = []
    for split, folder in splits:
        present = sorted(p.name for p in folder.iterdir() if p.is_dir())
        unknown = [p for p in present if p not in label.classes]
        if unknown:
            raise LabelsError(f"{folder}: folder(s) {unknown} are not classes of label "
                              f"{label.name!r} ({list(label.classes)})")
        for index, cls in enumerate(label.classes):
            class_dir = folder / cls
            if not class_dir.is_dir():
                log.warning("%s: no folder for class %r", folder, cls)
                continue
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                face_id = f"{split}/{cls}/{file.stem}" if split else f"{cls}/{file.stem}"
                row = {"id": face_id, "image": str(file)}
                if split is not None:
                    row["given_split"] = split
                row[label.name] = index
                rows.append(row)
    if not rows:
        raise LabelsError(f"{root}: no images found in class folders")
    return _frame(schema, rows)


# -- MATLAB array: Olivetti faces ---------------------------------------------------

def load_matlab_array(schema: Schema, path: Path) -> pd.DataFrame:
    """Images stored in one array of a ``.mat`` file; the class follows from the position.

    ``image`` is ``<file>#<index>``, which :func:`faces_keras.data.images.read_image`
    understands.

    Args:
        schema: one multiclass label; the options name the array's ``key``
            (``faces`` by default) and ``per_class``, the images per class
            (consecutive columns).
        path: the ``.mat`` file.

    Returns:
        The encoded table :func:`load_labels` describes.

    Raises:
        LabelsError: the file cannot be read or does not hold the array the
            schema describes.
    """
    from scipy.io import loadmat

    (label,) = schema.labels
    key = schema.options.get("key", "faces")
    per_class = int(schema.options.get("per_class", 1))
    try:
        data = loadmat(path)
    except Exception as exc:  # scipy raises several types for a bad file
        raise LabelsError(f"{path}: not a readable MATLAB file ({exc})") from None
    if key not in data:
        raise LabelsError(f"{path}: no array {key!r}; it has {sorted(k for k in data if not k.startswith('__'))}")
    count = data[key].shape[-1]
    if count // per_class > len(label.classes):
        raise LabelsError(f"{path}: {count} images at {per_class} per class need "
                          f"{count // per_class} classes; the schema has {len(label.classes)}")
    rows = [{"id": str(i), "image": f"{path}#{i}", label.name: i // per_class} for i in range(count)]
    return _frame(schema, rows)
