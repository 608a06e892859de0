"""The allocator: glibc told to reuse freed memory, tcmalloc preloaded by the ``faces-keras`` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from faces_keras.allocator import ALLOCATOR_ENV, allocator_choice, tcmalloc_path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and LD_PRELOAD: Linux only")

# A child process that mallocs and frees a 48 MiB block (over glibc's largest mmap threshold) 30 times,
# as TensorFlow's CPU kernels do with their buffers, touching every page, and prints its minor page faults.
# A block mapped afresh faults in every page again. (Not numpy: it asks for huge pages for large arrays.)
FAULTS = """
import ctypes, resource, sys
from faces_keras.allocator import tune_allocator, current_allocator
if sys.argv[1] != "system":
    tune_allocator()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 48 * 2**20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
print(current_allocator(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def child_env(**extra: str) -> dict[str, str]:
    left_out = ("LD_PRELOAD", ALLOCATOR_ENV, "FACES_KERAS_ALLOCATOR_PRELOADED")
    return {**{k: v for k, v in os.environ.items() if k not in left_out}, **extra}


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], env=child_env(**{ALLOCATOR_ENV: mode}),
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


def test_glibc_told_to_keep_freed_memory_stops_refaulting_large_blocks():
    plain_name, plain = faults("system")
    kept_name, kept = faults("glibc")
    assert (plain_name, kept_name) == ("glibc", "glibc-reuse")
    pages = 48 * 2**20 // 4096
    assert plain > 25 * pages  # every round faulted the block's pages in again
    assert kept < 3 * pages  # the first round did; later rounds reused the same memory


def test_an_unknown_allocator_is_refused_in_one_line(monkeypatch):
    from faces_keras.errors import ConfigError

    monkeypatch.setenv(ALLOCATOR_ENV, "mimalloc")
    with pytest.raises(ConfigError, match=f"{ALLOCATOR_ENV}='mimalloc': expected one of auto, tcmalloc"):
        allocator_choice()
    done = subprocess.run([sys.executable, "-m", "faces_keras", "--version"], capture_output=True, text=True,
                          env=child_env(**{ALLOCATOR_ENV: "mimalloc"}))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and ALLOCATOR_ENV in done.stderr


def test_the_command_records_the_allocator_it_trained_with(tmp_path, grids_dataset):
    expected = {"auto": "tcmalloc" if tcmalloc_path() else "glibc-reuse", "system": "glibc"}
    for mode, allocator in expected.items():
        run = tmp_path / mode
        subprocess.run([sys.executable, "-m", "faces_keras", "train", str(grids_dataset), "--out", str(run),
                        "--epochs", "1", "--filters", "4", "--blocks", "1", "--no-augmentation", "--max-train", "32"],
                       env=child_env(**{ALLOCATOR_ENV: mode}), check=True, capture_output=True)
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["environment"]["allocator"] == allocator, mode
