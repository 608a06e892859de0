"""Atomic writes: a file or folder either appears whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from faces_keras.errors import OutputExistsError


def _tmp_beside(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last so libraries that check it (Keras wants
    # ``.keras``, numpy adds ``.npy``) accept the temporary name.
    tmp = _tmp_beside(path, suffix="")
    tmp.unlink()
    tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def to_jsonable(value: Any) -> Any:
    """``value`` with tables, arrays and numpy scalars turned into lists, dicts and numbers.

    Args:
        value: a pandas DataFrame (-> a list of row dicts), a dict of such values, a numpy
            array or scalar, or anything else (returned as it is).

    Returns:
        The value as plain Python that :func:`json.dumps` writes.
    """
    import numpy as np

    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame, without importing pandas
        return value.to_dict(orient="records")
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it into place at the end.

    The build holds the folder's one-writer lock (:mod:`faces_keras.locking`), so
    a second build of the same folder is refused at once. An interrupted build
    leaves only a hidden ``.<name>.partial-*`` folder (unique per process), which
    the next build removes; nothing that looks complete.
    """
    from faces_keras.locking import folder_lock

    path = Path(path)
    with folder_lock(path, "dataset folder"):
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Under the lock no other build is running, so any partial folder is a dead build's.
        for stale in path.parent.glob(f".{path.name}.partial*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-{os.getpid()}-", dir=path.parent))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
