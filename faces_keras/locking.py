"""One writer per output folder: an advisory lock beside every run, dataset and search directory.

The lock itself is a ``filelock.FileLock`` on ``<parent>/.<name>.lock``. It lives
beside the folder, not inside it, because ``--overwrite`` and the atomic folder
build replace the folder itself. The operating system releases the lock when its
holder dies (even by SIGKILL), so a stale lock never blocks anyone.

Who holds it is written to ``<parent>/.<name>.lock.json`` (pid, host, start
time, command). A second writer is refused at once with those facts; a writer
that finds the record of a holder that no longer holds the lock takes over and
warns about the dead holder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from faces_keras.errors import FacesKerasError

log = logging.getLogger(__name__)

# Locks this process holds, with their depth: a step that holds a folder's lock
# may call another that takes it again (prepare, then the atomic folder build).
_HELD: dict[Path, int] = {}


class FolderLockedError(FacesKerasError):
    """Another process is writing the same output folder."""


def lock_paths(folder: str | os.PathLike) -> tuple[Path, Path]:
    """The lock file and its holder record for ``folder``."""
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock", folder.parent / f".{folder.name}.lock.json"


def _describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {started}"


def _read_holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold the one-writer lock of ``folder`` for the duration of the block.

    Args:
        folder: the output folder (it need not exist yet).
        what: a word for messages, e.g. ``"run directory"``.

    Returns:
        A context manager yielding the lock file's path.

    Raises:
        FolderLockedError: another live process holds the lock; the message names
            it (pid, host, start time).
    """
    lock_file, holder_file = lock_paths(folder)
    if lock_file in _HELD:
        _HELD[lock_file] += 1
        try:
            yield lock_file
        finally:
            _HELD[lock_file] -= 1
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_holder(holder_file)
        who = _describe(holder) if holder else "another process"
        raise FolderLockedError(f"{folder}: {what} is being written by {who} "
                                f"(lock {lock_file}); wait for it, or write elsewhere") from None
    try:
        stale = _read_holder(holder_file)
        if stale and stale.get("pid") != os.getpid():
            log.warning("%s: taking over the lock of %s, which stopped without releasing it", folder,
                        _describe(stale))
        record = holder_file.with_name(f"{holder_file.name}.{os.getpid()}.tmp")
        record.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "started": time.time(), "command": " ".join(sys.argv)}) + "\n")
        os.replace(record, holder_file)
        _HELD[lock_file] = 1
        yield lock_file
    finally:
        _HELD.pop(lock_file, None)
        try:
            holder_file.unlink()
        except OSError:
            pass
        lock.release()


__all__ = ["FolderLockedError", "folder_lock", "lock_paths"]
