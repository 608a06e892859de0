"""The original all-label model against the suite's default, on one prepared CelebA split.

Prints (and writes to docs/benchmarks/models.md), side by side from one run:
images/s per epoch (training only, median over epochs), parameters, FLOPs per
image, peak resident memory, epochs run, and test F1 per label with
thresholds chosen on validation.

Each model trains in its own process so its peak memory is its own. The
original preset is early-stopped on validation loss (``--original-patience``;
the related projects saw it overfit after 3 to 5 epochs) because its 20 epochs
take about two hours on 2 CPU cores; the table says how many epochs each ran.

    python benchmarks/bench_models.py                       # prepares CelebA first if needed
    python benchmarks/bench_models.py --dataset prepared/celeba --original-epochs 20 --default-epochs 30
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
from faces_keras.models.saving import load_run_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def prepare_celeba(path: Path) -> None:
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.labels import load_schema

    print(f"preparing CelebA into {path} (detect and crop, 64x64 gray)", flush=True)
    prepare_dataset(load_schema("celeba"), DATA / "celeba" / "list_attr_celeba.txt", path)


def train_one(args) -> dict:
    """Child process: train one preset, print a JSON line of its measurements."""
    import numpy as np

    from faces_keras.io import read_json
    from faces_keras.models.flops import flops_per_image
    from faces_keras.models.presets import ModelConfig
    from faces_keras.training.train import TrainConfig, train

    preset = args.one
    original = preset.startswith("original")
    config = TrainConfig(
        dataset=str(args.dataset), model=ModelConfig(preset=preset),
        epochs=args.original_epochs if original else args.default_epochs,
        patience=args.original_patience if original else args.default_patience,
        batch_size=64, seed=args.seed, max_train=args.max_train, verbose=2,
    )
    run = train(config, Path(args.runs) / preset, overwrite=True)
    model = load_run_model(run)
    history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    header, rows = history[0], history[1:]
    speed = [float(r[header.index("images_per_second")]) for r in rows]
    metrics = read_json(run / "metrics.json")
    test = {r["label"]: r["f1"] for r in metrics["heads"]["labels"]["test"]}
    return {
        "preset": preset, "parameters": model.count_params(), "flops": flops_per_image(model),
        "images_per_second": float(np.median(speed)), "epochs": len(rows),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_faces": metrics["train_faces"], "train_seconds": metrics["train_seconds"], "test_f1": test,
        "run": str(run.path),
    }


def interleaved_speed(presets: list[str], rounds: int, faces: int, seed: int) -> dict[str, float]:
    """Training images/s of each preset, measured in alternation so machine load hits both alike."""
    import numpy as np

    from faces_keras.labels import load_schema
    from faces_keras.models.heads import plan_heads
    from faces_keras.models.presets import ModelConfig, build_model, compile_model

    heads = plan_heads(load_schema("celeba"))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (faces, 64, 64, 1)).astype("float32")
    y = (rng.random((faces, heads[0].units)) < 0.3).astype("float32")
    models = {p: compile_model(build_model(heads, (64, 64, 1), ModelConfig(preset=p)), heads) for p in presets}
    for model in models.values():  # compile the training step before timing
        model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)
    speeds: dict[str, list[float]] = {p: [] for p in presets}
    for _ in range(rounds):
        for preset, model in models.items():
            started = time.perf_counter()
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            speeds[preset].append(faces / (time.perf_counter() - started))
    return {p: float(np.median(v)) for p, v in speeds.items()}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import keras

    backend = keras.backend.backend()
    versions = f"Python {platform.python_version()}, Keras {keras.__version__} ({backend}"
    if backend == "tensorflow":
        import tensorflow as tf

        versions += f" {tf.__version__}"
    return f"{os.cpu_count()} cores ({cpu}); {versions})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "prepared" / "celeba")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-models")
    parser.add_argument("--presets", default="original-all-label,default")
    parser.add_argument("--original-epochs", type=int, default=20)
    parser.add_argument("--original-patience", type=int, default=2)
    parser.add_argument("--default-epochs", type=int, default=30)
    parser.add_argument("--default-patience", type=int, default=5)
    parser.add_argument("--max-train", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--speed-faces", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "models.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(train_one(args)), flush=True)
        return
    if not (args.dataset / "manifest.json").is_file():
        prepare_celeba(args.dataset)
    results = []
    started = time.time()
    for preset in args.presets.split(","):
        cmd = [sys.executable, __file__, "--one", preset] + [a for a in sys.argv[1:]]
        print(f"== training {preset}", flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT "):]))
    probe = interleaved_speed([r["preset"] for r in results], args.speed_rounds, args.speed_faces, args.seed)
    for r in results:
        r["probe"] = probe[r["preset"]]
    labels = list(results[0]["test_f1"])
    lines = ["| | " + " | ".join(r["preset"] for r in results) + " |",
             "|---|" + "---:|" * len(results)]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in results) + " |")

    row("images/s per epoch (training, median)", lambda r: f"{r['images_per_second']:.1f}")
    row(f"images/s, interleaved probe ({args.speed_rounds} x {args.speed_faces} faces)", lambda r: f"{r['probe']:.1f}")
    row("parameters", lambda r: f"{r['parameters']:,}")
    row("FLOPs per image (forward)", lambda r: f"{r['flops'] / 1e6:.1f} M")
    row("peak resident memory", lambda r: f"{r['peak_rss_mb']:.0f} MB")
    row("epochs run (early stopping on val loss)", lambda r: str(r["epochs"]))
    row("training time", lambda r: f"{r['train_seconds'] / 60:.1f} min")
    for label in labels:
        row(f"test F1 {label} (threshold from validation)", lambda r, l=label: f"{r['test_f1'][l]:.3f}")
    base = results[0]
    speedups = [f"{r['preset']}: {r['probe'] / base['probe']:.1f}x in the interleaved probe, "
                f"{r['images_per_second'] / base['images_per_second']:.1f}x over the training epochs" for r in results[1:]]
    command = "python benchmarks/bench_models.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Models: the original all-label preset against the default", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, in one run of `{command.strip()}` "
        f"({(time.time() - started) / 60:.0f} min in all), on the prepared CelebA split "
        f"({results[0]['train_faces']} training faces, 64x64 gray, detect-and-crop).", "",
        *lines, "",
        "Speed relative to the first column, same run: " + ", ".join(speedups) + ".", "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
