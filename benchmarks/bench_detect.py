"""Read, detect and crop every CelebA image with the Haar detector, over a process pool.

Prints (and writes to docs/benchmarks/detect.md) the number of images, the
wall time (pool start-up included), images/s and faces/s, and how many images
gave exactly one, no, or several faces. Each image's main face (the largest
box) is cropped to 64x64 gray, as preparing a dataset does.

CelebA's loosely cropped images are at most 160 px on their longer side and
their face fills about half of it, so they are searched at ``--max-side 96``:
the face is still 40-60 px there, well above the cascade's 24 px window, and
detection is 2-3 times faster than at full size, with the same share of
images giving exactly one face (measured on images 1000-1400).

    python benchmarks/bench_detect.py                  # all of ../shared/data/celeba/img_celeba
    python benchmarks/bench_detect.py --limit 500 --processes 1 --max-side 640
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

_DETECTOR = None


def _init_worker(max_side: int | None) -> None:
    """Pool worker: one OpenCV thread per process, so 2 processes use 2 cores and no more."""
    import cv2

    from faces_keras.data.detect import make_detector

    cv2.setNumThreads(1)
    global _DETECTOR
    _DETECTOR = make_detector("haar", max_side=max_side)


def _detect_one(path: str) -> tuple[int, int]:
    """Pool worker: (faces found, faces cropped) for one image file; (-1, 0) if unreadable."""
    from faces_keras.data.detect import crop_face, pick_main_face, read_image_bgr
    from faces_keras.errors import ImageError

    try:
        image = read_image_bgr(path)
    except ImageError:
        return -1, 0
    boxes = _DETECTOR.detect(image)
    main = pick_main_face(boxes, image.shape)
    if main is None:
        return 0, 0
    crop_face(image, main, margin=0.2, size=64, gray=True)
    return len(boxes), 1


def nproc() -> int:
    """CPUs this process may run on, as `nproc` counts them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(files: list[str], processes: int, max_side: int | None) -> dict:
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    if processes > 1:
        with get_context("fork").Pool(processes, initializer=_init_worker, initargs=(max_side,)) as pool:
            results = pool.map(_detect_one, files, chunksize=64)
    else:
        _init_worker(max_side)
        results = [_detect_one(f) for f in files]
    seconds = time.perf_counter() - started
    # The pool's workers have exited and been reaped here, so their CPU time is in RUSAGE_CHILDREN.
    cpu_seconds = _cpu_seconds() - cpu_before
    found = [n for n, _ in results]
    return {
        "images": len(files), "seconds": seconds, "cpu_seconds": cpu_seconds,
        "faces": sum(n for n in found if n > 0), "crops": sum(c for _, c in results),
        "one": sum(n == 1 for n in found), "zero": sum(n == 0 for n in found),
        "several": sum(n > 1 for n in found), "unreadable": sum(n < 0 for n in found),
    }


def table(r: dict) -> str:
    def share(n: int) -> str:
        return f"{n:,} ({100 * n / r['images']:.1f}%)"

    rows = [
        ("images", f"{r['images']:,}"),
        ("seconds (wall, pool start-up included)", f"{r['seconds']:.1f}"),
        ("CPU seconds (all processes)", f"{r['cpu_seconds']:.1f}"),
        ("CPU milliseconds per image", f"{1000 * r['cpu_seconds'] / r['images']:.1f}"),
        ("images/s", f"{r['images'] / r['seconds']:.0f}"),
        ("faces found", f"{r['faces']:,}"),
        ("faces/s (found)", f"{r['faces'] / r['seconds']:.0f}"),
        ("main faces cropped (64x64 gray)", f"{r['crops']:,}"),
        ("images with exactly one face", share(r["one"])),
        ("images with no face", share(r["zero"])),
        ("images with several faces", share(r["several"])),
        ("unreadable images", f"{r['unreadable']:,}"),
    ]
    return "\n".join(["| measure | value |", "|---|---:|", *(f"| {k} | {v} |" for k, v in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DATA / "celeba" / "img_celeba",
                        help="folder of .jpg images (default: the shared CelebA set)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--max-side", type=int, default=96,
                        help="shrink images whose longer side exceeds this before detecting (0: never)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (sorted); 0: all")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "detect.md")
    args = parser.parse_args()

    import cv2

    from faces_keras.data.detect import make_detector
    from faces_keras.io import atomic_write_text

    files = sorted(str(p) for p in args.images.glob("*.jpg"))
    if args.limit:
        files = files[:args.limit]
    if not files:
        sys.exit(f"{args.images}: no .jpg images")
    max_side = args.max_side or None
    print(f"{len(files)} images, {args.processes} process(es), {make_detector('haar', max_side=max_side)}",
          flush=True)
    load = os.getloadavg()[0]
    result = run(files, args.processes, max_side)
    command = "python benchmarks/bench_detect.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Face detection: read, detect and crop CelebA", "",
        f"Measured {time.strftime('%Y-%m-%d')} with `{command.strip()}`: every image of "
        f"`{args.images.relative_to(ROOT.parent) if args.images.is_relative_to(ROOT.parent) else args.images}` "
        f"read, searched with `{make_detector('haar', max_side=max_side)}` and its main face cropped to "
        f"64x64 gray, over a pool of {args.processes} process(es) with one OpenCV thread each.", "",
        table(result), "",
        f"The work itself is the CPU time: {result['cpu_seconds']:.1f} s, so about "
        f"{result['cpu_seconds'] / args.processes:.1f} s of wall time on {args.processes} core(s) held by "
        "nothing else; the wall time above is longer when other work competes for the cores.", "",
        f"Machine: {nproc()} CPUs (nproc), {cpu_model()}; load average {load:.1f} when the run started "
        "(the machine is shared, so other work competes for the cores); "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}.", "",
    ])
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
