"""Preparation speed: the grid path and the detect-and-crop path, through `prepare_dataset` itself.

Prints a table and writes it to docs/benchmarks/prepare.md: faces per second
for cutting the real grid photos and for detecting and cropping all 8,205
CelebA images (target: under a minute on 2 cores), and how many CelebA images
the detector found exactly one face in. CPU seconds are reported beside wall
time because a shared machine's wall time says more about its neighbours.

    python benchmarks/bench_prepare.py
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_prepare(schema_name: str, labels: Path, out: Path, **config):
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.data.store import Dataset
    from faces_keras.labels import load_schema

    wall, cpu = time.perf_counter(), cpu_seconds()
    prepare_dataset(load_schema(schema_name), labels, out, config=PrepareConfig(**config), overwrite=True)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return Dataset.load(out), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "prepare.md")
    args = parser.parse_args()
    import cv2

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        grids, wall, cpu = timed_prepare("grids", DATA / "grids" / "faces-labels.csv", Path(tmp) / "grids")
        rows.append(("grid cut (4 photos)", len(grids.faces), wall, cpu, "-"))
        celeba, wall, cpu = timed_prepare("celeba", DATA / "celeba" / "list_attr_celeba.txt", Path(tmp) / "celeba")
        counts = [int(m.group(1)) for m in (re.search(r"\((\d+) face", o) for o in celeba.faces["origin"]) if m]
        one = sum(c == 1 for c in counts)
        dropped = len(celeba.manifest.get("dropped", []))
        total = len(celeba.faces) + dropped
        found = f"{one} of {total} ({one / total:.1%}) exactly one; {sum(c > 1 for c in counts)} several; {dropped} none (left out)"
        rows.append(("detect + crop (CelebA, Haar)", total, wall, cpu, found))
    load = os.getloadavg()[0]
    lines = ["| path | images | wall s | faces/s (wall) | CPU s | faces/s per core (CPU) | faces found |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, n, wall, cpu, found in rows:
        lines.append(f"| {name} | {n} | {wall:.1f} | {n / wall:.0f} | {cpu:.1f} | {n / cpu:.0f} | {found} |")
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    text = "\n".join([
        "# Preparation speed", "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench_prepare.py` on {os.cpu_count()} cores "
        f"({cpu_model}), Python {platform.python_version()}, OpenCV {cv2.__version__}; load average "
        f"{load:.1f} at the end (other work on the machine inflates wall time, not CPU time).", "",
        *lines, "",
        "Detect-and-crop runs in a pool of one process per core; CelebA images are shrunk to 96 px "
        "(`detect_max_side` in `datasets/celeba.yaml`) before the Haar cascade.", "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
