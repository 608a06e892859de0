"""Training speed of the default and the original all-label preset on each Keras backend.

Prints (and writes to docs/benchmarks/backends.md), from one run: training
images/s of the ``default`` preset (with and without its online augmentation
layers) and of the ``original-all-label`` preset on ``tensorflow``, ``jax``
and ``torch`` (with its default threads, and with one: ``torch:1``), each
one's ratio to tensorflow, the first epoch's time (which holds tracing and
compiling), the load average when it started and the peak resident memory.

Each backend trains in its own process with ``KERAS_BACKEND`` set, one after
the other, on the same real faces: the grid photos of ``shared/data/grids``
prepared as ``faces-keras prepare --schema grids`` does (458 faces, 64x64
gray, all five labels in one all-label head), of whose training split 256
faces are drawn at random (``--seed``), 4 whole batches of 64. The faces stream
through the suite's own batches (:class:`faces_keras.data.stream.FaceBatches`)
into ``model.fit``, as in ``faces-keras train``, without validation or
checkpoints, so the epochs time the training step alone: one warm-up epoch,
then a fixed number of timed epochs (``--default-epochs``, ``--original-epochs``).

    python benchmarks/bench_backends.py                    # 9 minutes on 2 busy cores (load ~4)
    python benchmarks/bench_backends.py --backends jax,torch --presets default
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

BACKENDS = ("tensorflow", "jax", "torch")


def prepare_grids(path: Path) -> None:
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.labels import load_schema

    print(f"preparing the grid faces into {path}", flush=True)
    prepare_dataset(load_schema("grids"), DATA / "grids" / "faces-labels.csv", path)


def framework_version(backend: str) -> str:
    if backend == "tensorflow":
        import tensorflow as tf

        return f"tensorflow {tf.__version__}"
    if backend == "jax":
        import jax

        return f"jax {jax.__version__} ({jax.default_backend()})"
    import torch

    threads = torch.get_num_threads()
    return f"torch {torch.__version__} ({threads} thread{'s' * (threads != 1)})"


def measure(args) -> dict:
    """Child process: train each preset on this process's backend, return its measurements."""
    import keras

    from faces_keras.backend import describe_device, set_seed
    from faces_keras.data.store import Dataset
    from faces_keras.models.presets import ModelConfig, build_model, compile_model
    from faces_keras.training.train import TrainingData

    backend = keras.backend.backend()
    name, _, threads = args.one.partition(":")
    assert backend == name, f"asked for {name}, Keras runs {backend}"
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    load = os.getloadavg()[0]
    # Whole batches only: every step the same shape, so nothing traces or compiles again after the warm-up.
    dataset = Dataset.load(args.dataset)
    whole = len(dataset.split_rows("train")) // args.batch_size * args.batch_size
    data = TrainingData.load(dataset, max_train=whole, seed=args.seed)
    faces = len(data.x["train"])

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    presets = {}
    for preset in args.presets.split(","):
        epochs = args.original_epochs if preset.startswith("original") else args.default_epochs
        name, _, variant = preset.partition(":")
        model_config = ModelConfig(preset=name, augmentation=None) if variant == "no-augmentation" \
            else ModelConfig(preset=name)
        set_seed(args.seed)
        model = build_model(data.heads, data.x["train"].shape[1:], model_config)
        compile_model(model, data.heads)
        batches = data.batches("train", args.batch_size, shuffle=True, seed=args.seed)
        timer = Timer()
        model.fit(batches, epochs=1 + epochs, verbose=0, callbacks=[timer], shuffle=False)
        timed = timer.seconds[1:]
        presets[preset] = {
            "images_per_second": faces * len(timed) / sum(timed),
            "first_epoch_seconds": timer.seconds[0],
            "steps": len(batches) * len(timed),
            "parameters": model.count_params(),
        }
        print(f"  {backend} {preset}: {presets[preset]['images_per_second']:.1f} images/s", flush=True)
        del model
    return {
        "backend": args.one if not threads else f"{backend}, {threads} thread{'s' * (threads != '1')}",
        "load": load, "framework": framework_version(backend), "keras": keras.__version__,
        "device": describe_device()["device"], "train_faces": faces, "steps_per_epoch": len(batches),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "presets": presets,
    }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}); Python {platform.python_version()}"


def table(results: list[dict], presets: list[str]) -> list[str]:
    base = next((r for r in results if r["backend"] == "tensorflow"), None)
    lines = ["| | " + " | ".join(r["backend"] for r in results) + " |", "|---|" + "---:|" * len(results)]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in results) + " |")

    for preset in presets:
        steps = results[0]["presets"][preset]["steps"]
        row(f"`{preset}`: images/s ({steps} timed steps)",
            lambda r, p=preset: f"{r['presets'][p]['images_per_second']:.1f}")
        if base is not None:
            row(f"`{preset}`: speed relative to tensorflow",
                lambda r, p=preset: f"{r['presets'][p]['images_per_second'] / base['presets'][p]['images_per_second']:.2f}x")
        row(f"`{preset}`: first epoch, with tracing and compiling",
            lambda r, p=preset: f"{r['presets'][p]['first_epoch_seconds']:.1f} s")
    row("load average when it started (1 min, other processes included)", lambda r: f"{r['load']:.2f}")
    row("peak resident memory (all presets, one process)", lambda r: f"{r['peak_rss_mb']:.0f} MB")
    row("framework", lambda r: r["framework"])
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "prepared" / "grids")
    parser.add_argument("--backends", default=",".join(BACKENDS) + ",torch:1",
                        help="backends to measure, in order; torch:N runs torch with N threads")
    parser.add_argument("--presets", default="default,default:no-augmentation,original-all-label",
                        help="presets to train; PRESET:no-augmentation leaves out the online augmentation layers")
    parser.add_argument("--default-epochs", type=int, default=3, help="timed epochs of the default presets")
    parser.add_argument("--original-epochs", type=int, default=1, help="timed epochs of the original presets")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "backends.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(measure(args)), flush=True)
        return
    if not (args.dataset / "manifest.json").is_file():
        prepare_grids(args.dataset)
    started = time.time()
    results = []
    for backend in args.backends.split(","):
        print(f"== {backend}", flush=True)
        if ":" in backend and not backend.startswith("torch:"):
            parser.error(f"--backends {backend}: a thread count is supported for torch only")
        env = dict(os.environ, KERAS_BACKEND=backend.partition(":")[0])
        if backend.startswith("jax"):
            env.setdefault("JAX_PLATFORMS", "cpu")
        cmd = [sys.executable, __file__, "--one", backend, *sys.argv[1:]]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True)
        print("\n".join(l for l in proc.stdout.splitlines() if l.startswith("  ")), flush=True)
        line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT "):]))
    presets = args.presets.split(",")
    first = results[0]
    command = ("python benchmarks/bench_backends.py " + " ".join(sys.argv[1:])).strip()
    text = "\n".join([
        "# Backends: training speed on tensorflow, jax and torch", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, Keras {first['keras']}, device: "
        f"{', '.join(sorted({r['device'] for r in results}))}; in one run of `{command}` "
        f"({(time.time() - started) / 60:.1f} min in all), each backend in its own process, one after "
        f"the other, on the grid faces of `shared/data/grids` ({first['train_faces']} training faces, "
        f"64x64 gray, one all-label head of five labels, batches of {args.batch_size}, "
        f"{first['steps_per_epoch']} steps an epoch). Images/s are over the timed epochs after one "
        "warm-up epoch; the ratios compare backends within this run.", "",
        *table(results, presets), "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
