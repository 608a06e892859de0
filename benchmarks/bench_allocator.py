"""Training speed under each memory allocator, measured in one run (faces_keras.allocator).

TensorFlow's CPU kernels take buffers of tens of megabytes every step; glibc's
malloc maps any block over 32 MiB afresh and unmaps it when freed, so the kernel
zeroes and faults those pages in again each step. This runs the same short
``faces-keras train`` under ``FACES_KERAS_ALLOCATOR`` = ``system`` (glibc as it
starts), ``glibc`` (glibc told to reuse freed blocks) and ``tcmalloc`` (preloaded,
where installed), interleaved over ``--rounds``, and reports each one's training
images/s (the last epoch's, median over rounds), the share of the process's CPU
time spent in the kernel, its minor page faults per image and its peak RSS.

    python benchmarks/bench_allocator.py                # ~20 min on 2 cores
    python benchmarks/bench_allocator.py --rounds 1     # ~10 min (docs/benchmarks/allocator.md's run)

Writes docs/benchmarks/allocator.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
OUT = ROOT / "docs" / "benchmarks" / "allocator.md"


@dataclass(frozen=True)
class Case:
    """One training to time: a prepared dataset (and its prepare config) and the train flags."""

    name: str
    dataset: str
    prepare_config: str
    flags: tuple[str, ...]


CASES = (
    Case("FER-2013 48x48, xception preset, 12 filters", "fer2013", "configs/fer2013-prepare.yaml",
         ("--preset", "xception", "--filters", "12")),
    Case("CelebA 64x64, default preset, 32 filters", "celeba", "configs/celeba-prepare.yaml",
         ("--filters", "32")),
    Case("CelebA 64x64, default preset, 16 filters", "celeba", "configs/celeba-prepare.yaml", ()),
)


def run_once(case: Case, data: Path, mode: str, faces: int, epochs: int) -> dict:
    """Train ``case`` once under allocator ``mode`` in a child process; its speed and costs."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FACES_KERAS_ALLOCATOR_PRELOADED")}
    env["FACES_KERAS_ALLOCATOR"] = mode
    with tempfile.TemporaryDirectory(prefix="bench-allocator-") as tmp:
        out = Path(tmp) / "run"
        child = subprocess.Popen([sys.executable, "-m", "faces_keras", "train", str(data), "--out", str(out),
                                  "--epochs", str(epochs), "--max-train", str(faces), "--patience", str(epochs),
                                  *case.flags], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU times, faults and peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"{case.name} under {mode}: faces-keras train exited {child.returncode}")
        with (out / "history.csv").open() as f:
            history = list(csv.DictReader(f))
        import yaml

        allocator = yaml.safe_load((out / "config.yaml").read_text())["environment"]["allocator"]
    return {"images_per_second": float(history[-1]["images_per_second"]), "allocator": allocator,
            "kernel_share": usage.ru_stime / (usage.ru_utime + usage.ru_stime),
            "faults_per_image": usage.ru_minflt / (faces * epochs), "peak_rss_mb": usage.ru_maxrss / 1024}


def table(results: dict[str, dict[str, list[dict]]], modes: list[str]) -> str:
    lines = ["| training | allocator | images/s | vs system | kernel share of CPU time | minor faults per image "
             "| peak RSS (MB) |", "|---|---|---:|---:|---:|---:|---:|"]
    for case, by_mode in results.items():
        base = statistics.median(r["images_per_second"] for r in by_mode["system"])
        for mode in modes:
            rows = by_mode[mode]
            speed = statistics.median(r["images_per_second"] for r in rows)
            lines.append(f"| {case} | {mode} ({rows[0]['allocator']}) | {speed:.0f} | {speed / base:.2f}x | "
                         f"{statistics.median(r['kernel_share'] for r in rows):.0%} | "
                         f"{statistics.median(r['faults_per_image'] for r in rows):.0f} | "
                         f"{max(r['peak_rss_mb'] for r in rows):,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "prepared",
                        help="folder of the prepared datasets; missing ones are prepared there")
    parser.add_argument("--faces", type=int, default=2048, help="training faces per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (the last one is timed)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every allocator, interleaved")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from faces_keras.allocator import tcmalloc_path
    from faces_keras.io import atomic_write_text

    modes = ["system", "glibc"] + (["tcmalloc"] if tcmalloc_path() else [])
    results: dict[str, dict[str, list[dict]]] = {}
    for case in CASES:
        data = args.data_dir / case.dataset
        if not (data / "manifest.json").is_file():
            subprocess.run([sys.executable, "-m", "faces_keras", "prepare", str(data), "--config",
                            case.prepare_config], cwd=ROOT, check=True)
        results[case.name] = {mode: [] for mode in modes}
        for round_ in range(args.rounds):
            for mode in modes if round_ % 2 == 0 else modes[::-1]:
                result = run_once(case, data, mode, args.faces, args.epochs)
                results[case.name][mode].append(result)
                print(f"{case.name} | {mode} | round {round_ + 1}: {result['images_per_second']:.0f} images/s, "
                      f"kernel {result['kernel_share']:.0%}", flush=True)
    cpu = platform.processor() or platform.machine()
    body = table(results, modes)
    text = (f"# Training speed by memory allocator\n\n{__doc__.split(chr(10) * 2)[1]}\n\n{body}\n\n"
            f"Measured {dt.date.today()} on {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}; {args.faces} faces x {args.epochs} epochs per run, "
            f"{args.rounds} rounds, median. `python benchmarks/bench_allocator.py` repeats it.\n")
    if not tcmalloc_path():
        text += "\ntcmalloc was not installed (apt-get install libtcmalloc-minimal4), so it has no row.\n"
    print(body)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
