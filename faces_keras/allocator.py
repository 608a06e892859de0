"""The memory allocator a ``faces-keras`` process trains with.

TensorFlow's CPU convolutions (Eigen) take im2col buffers of tens of megabytes
every step. glibc's malloc serves any block over 32 MiB with a fresh ``mmap``
and returns it with ``munmap`` when freed, so each step the kernel maps, zeroes
and faults in those pages again. On a 2-core machine that spent 40% of the
training process's time in the kernel and made the xception preset 2.7x slower
(benchmarks/bench_allocator.py, docs/benchmarks/allocator.md).

Two remedies, best first:

* ``tcmalloc`` keeps freed memory for reuse. The ``faces-keras`` command
  re-executes itself once with ``libtcmalloc_minimal`` preloaded when the
  library is installed (Debian/Ubuntu: ``apt-get install libtcmalloc-minimal4``)
  and not loaded yet.
* Without it, glibc is told never to ``mmap`` a block and never to trim its
  heap (``mallopt``), so freed blocks are reused as well. The process then
  keeps its peak memory until it ends, which is what a training process does
  anyway.

``FACES_KERAS_ALLOCATOR`` chooses: ``auto`` (the default: tcmalloc if
installed, else the glibc settings), ``tcmalloc`` (the same, but warn when it
is missing), ``glibc`` (the glibc settings only) or ``system`` (change
nothing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from pathlib import Path

from faces_keras.errors import ConfigError

log = logging.getLogger(__name__)

ALLOCATOR_ENV = "FACES_KERAS_ALLOCATOR"
ALLOCATOR_CHOICES = ("auto", "tcmalloc", "glibc", "system")
# Set in the re-executed process, so it never re-executes again.
_REEXECUTED_ENV = "FACES_KERAS_ALLOCATOR_PRELOADED"
# Where Debian, Ubuntu and Fedora put the library; find_library finds it elsewhere when ldconfig knows it.
_TCMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
                   "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib64/libtcmalloc_minimal.so.4")
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_glibc_told = False  # keep_freed_memory() has set glibc up in this process


def allocator_choice() -> str:
    """The allocator ``FACES_KERAS_ALLOCATOR`` asks for.

    Returns:
        One of :data:`ALLOCATOR_CHOICES` (``auto`` when the variable is unset).

    Raises:
        ConfigError: the variable holds anything else.
    """
    choice = os.environ.get(ALLOCATOR_ENV, "auto").strip().lower() or "auto"
    if choice not in ALLOCATOR_CHOICES:
        raise ConfigError(f"{ALLOCATOR_ENV}={choice!r}: expected one of {', '.join(ALLOCATOR_CHOICES)}")
    return choice


def tcmalloc_path() -> str | None:
    """The installed ``libtcmalloc_minimal`` shared library, or None."""
    for path in _TCMALLOC_PATHS:
        if Path(path).is_file():
            return path
    return ctypes.util.find_library("tcmalloc_minimal")


@functools.cache  # a preloaded allocator is there from the process's start and stays
def loaded_allocator() -> str:
    """Which allocator serves this process: ``tcmalloc``, ``jemalloc`` or ``glibc``."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "glibc"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "glibc"


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed blocks instead of unmapping them.

    Applies to the blocks allocated from now on, so call it before the
    framework builds a model. Harmless where another allocator is loaded.

    Returns:
        True if glibc took the settings, False off glibc (macOS, musl) or
        where another allocator serves this process.
    """
    if not sys.platform.startswith("linux") or loaded_allocator() != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    global _glibc_told
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mmap no block (freed blocks go back to the heap for reuse), and never give the heap's top back.
    _glibc_told = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _glibc_told


def current_allocator() -> str:
    """What serves this process's memory now (recorded in each run's environment).

    Returns:
        ``tcmalloc`` or ``jemalloc`` (preloaded), ``glibc-reuse`` (glibc after
        :func:`keep_freed_memory`) or ``glibc`` (glibc as it starts).
    """
    loaded = loaded_allocator()
    return "glibc-reuse" if loaded == "glibc" and _glibc_told else loaded


def tune_allocator(argv: list[str] | None = None) -> str:
    """Set up this process's allocator as ``FACES_KERAS_ALLOCATOR`` says (see the module's docstring).

    With ``argv`` given (the ``faces-keras`` command's arguments), a process
    without tcmalloc re-executes itself as ``python -m faces_keras ARGV`` with
    it preloaded, when installed; this call then does not return. Without
    ``argv`` (a notebook, a test session) it only tunes glibc.

    Args:
        argv: the command's arguments, or None never to re-execute.

    Returns:
        The allocator now in use: ``tcmalloc``, ``jemalloc``, ``glibc-reuse``
        (glibc told to keep freed memory) or ``glibc``.

    Raises:
        ConfigError: ``FACES_KERAS_ALLOCATOR`` holds an unknown value.
    """
    choice = allocator_choice()
    loaded = loaded_allocator()
    if choice == "system" or loaded != "glibc":
        return loaded
    linux = sys.platform.startswith("linux")  # LD_PRELOAD is the Linux loader's
    if choice in ("auto", "tcmalloc") and argv is not None and linux and not os.environ.get(_REEXECUTED_ENV):
        library = tcmalloc_path()
        if library:
            env = dict(os.environ, **{_REEXECUTED_ENV: "1"})
            env["LD_PRELOAD"] = ":".join(p for p in (library, os.environ.get("LD_PRELOAD", "")) if p)
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                os.execve(sys.executable, [sys.executable, "-m", "faces_keras", *argv], env)
            except OSError as exc:  # carry on with glibc
                log.warning("could not re-execute with %s preloaded: %s", library, exc)
        elif choice == "tcmalloc":
            log.warning("%s=tcmalloc: libtcmalloc_minimal is not installed (apt-get install "
                        "libtcmalloc-minimal4); using glibc", ALLOCATOR_ENV)
    keep_freed_memory()
    return current_allocator()


__all__ = ["ALLOCATOR_CHOICES", "ALLOCATOR_ENV", "allocator_choice", "current_allocator", "keep_freed_memory",
           "loaded_allocator", "tcmalloc_path", "tune_allocator"]
