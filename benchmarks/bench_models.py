"""The original all-label model against the suite's default, on one prepared CelebA split.

Prints (and writes to docs/benchmarks/models.md), side by side from one run:
images/s per epoch (training only, median over epochs), parameters, FLOPs per
image, peak resident memory, epochs run, and test F1 per label with
thresholds chosen on validation.

Each model trains in its own process so its peak memory is its own. The
original preset is early-stopped on validation loss (``--original-patience``;
the related projects saw it overfit after 3 to 5 epochs) because its 20 epochs
take about two hours on 2 CPU cores; the table says how many epochs each ran.

Then, in one process, the throughput probe: the presets' training steps
(``train_on_batch``, the same random faces) taken in turn, round after round,
in a new random order each round, with a float32 matmul (2048 x 2048,
``keras.ops.matmul``) timed in each round as the machine's peak. Each preset's achieved GFLOP/s is images/s x FLOPs per
image x 3 (the forward pass and the two matmuls of the backward pass), its
utilisation that over the matmul's. Every rate is measured twice: per second
of wall time and per second of the process's CPU time, which other processes
on shared cores do not inflate; ratios are medians of the per-round ratios.
``--levers`` adds the settings tried to raise the default's share (the
augmentation layers, batch norm, stem, batch size, bfloat16, XLA) as rows of
their own, measured in the same rounds.

    python benchmarks/bench_models.py                       # prepares CelebA first if needed
    python benchmarks/bench_models.py --dataset prepared/celeba --original-epochs 20 --default-epochs 30
    python benchmarks/bench_models.py --skip-training --levers   # the probe only, a few minutes

The file's sections that this script does not write (notes under their own
``## `` headings) are kept as they are; ``--skip-training`` keeps the training
table of the last full run too.
"""

from __future__ import annotations

import argparse
import contextlib
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

THROUGHPUT = "## Throughput as a share of the machine"
LEVERS = "## What each lever gave"
PROBE_BATCH = 64  # the training default, for every preset alike

# Settings tried on the default preset (docs/benchmarks/models.md): label, ModelConfig fields, and how it runs.
# "keras_bn" builds it with Keras's own BatchNormalization, as before FastBatchNormalization; fields None:
# the "default" preset's own measurements (it is probed anyway), not a second copy.
LEVER_VARIANTS = [
    ("before: Keras's 4 augmentation layers and batch norm, norm-first stem",
     {"augmentation": {"fused": False}, "stem": "norm-first"}, {"keras_bn": True}),
    ("+ one fused affine augmentation layer", {"stem": "norm-first"}, {"keras_bn": True}),
    ("+ FastBatchNormalization", {"stem": "norm-first"}, {}),
    ("+ pool-first stem: the default", None, {}),
    ("default, batch 128", {}, {"batch": 128}),
    ("default, batch 256", {}, {"batch": 256}),
    ("default, mixed_bfloat16", {}, {"policy": "mixed_bfloat16"}),
    ("default without augmentation", {"augmentation": None}, {}),
    ("default without augmentation, XLA (jit_compile=True)", {"augmentation": None}, {"jit": True}),
    ("original-all-label, batch 128", {"preset": "original-all-label"}, {"batch": 128}),
]


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
    from faces_keras.models.saving import load_run_model
    from faces_keras.training.train import TrainConfig, train

    preset = args.one
    original = preset.startswith("original")
    config = TrainConfig(
        dataset=str(args.dataset), model=ModelConfig(preset=preset),
        epochs=args.original_epochs if original else args.default_epochs,
        patience=args.original_patience if original else args.default_patience,
        batch_size=PROBE_BATCH, seed=args.seed, max_train=args.max_train, verbose=2,
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


def matmul_rates(size: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """A float32 ``size`` x ``size`` matmul on the running backend: (GFLOP/s of wall time, GFLOP per CPU-second)."""
    import keras
    import numpy as np

    a = keras.random.normal((size, size), seed=1)
    b = keras.random.normal((size, size), seed=2)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    flop = 2 * size ** 3 / 1e9
    return flop / float(np.median(wall)), flop / float(np.median(cpu))


@contextlib.contextmanager
def variant_build(policy: str, keras_bn: bool):
    """Build under a dtype policy, and with Keras's BatchNormalization in place of the suite's if asked."""
    import keras

    import faces_keras.models.presets as presets

    fast = presets.FastBatchNormalization
    keras.mixed_precision.set_global_policy(policy)
    if keras_bn:
        presets.FastBatchNormalization = keras.layers.BatchNormalization
    try:
        yield
    finally:
        presets.FastBatchNormalization = fast
        keras.mixed_precision.set_global_policy("float32")


def probe(variants: list[tuple[str, dict, dict]], rounds: int, steps: int, seed: int) -> dict:
    """Training steps of each variant in turn, ``rounds`` times, with a matmul timed in each round.

    Returns per variant its parameters, FLOPs per image and per-round images/s
    (wall and CPU time), and the per-round matmul rates under ``"matmul"``.
    """
    import warnings

    import numpy as np

    from faces_keras.labels import load_schema
    from faces_keras.models.flops import flops_per_image
    from faces_keras.models.heads import plan_heads
    from faces_keras.models.presets import ModelConfig, build_model, compile_model

    heads = plan_heads(load_schema("celeba"))
    rng = np.random.default_rng(seed)
    largest = max(run.get("batch", PROBE_BATCH) for _, _, run in variants)
    x = rng.integers(0, 256, (largest * steps, 64, 64, 1)).astype("float32")
    y = (rng.random((len(x), heads[0].units)) < 0.3).astype("float32")
    built = {}
    for name, fields, run in variants:
        with variant_build(run.get("policy", "float32"), run.get("keras_bn", False)):
            model = build_model(heads, (64, 64, 1), ModelConfig(**fields))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # XLA refused: recorded in the table instead
            compile_model(model, heads, jit_compile=run.get("jit", "auto"))
        batch = run.get("batch", PROBE_BATCH)
        for _ in range(2):  # trace (and compile) the step before timing
            model.train_on_batch(x[:batch], y[:batch])
        built[name] = (model, batch)
    out = {name: {"parameters": m.count_params(), "flops": flops_per_image(m), "jit": bool(m.jit_compile),
                  "wall": [], "cpu": []} for name, (m, _) in built.items()}
    out["matmul"] = {"wall": [], "cpu": []}
    names = list(built)
    for _ in range(rounds):
        wall, cpu = matmul_rates()
        out["matmul"]["wall"].append(wall)
        out["matmul"]["cpu"].append(cpu)
        for index in rng.permutation(len(names)):  # a new order each round: no model always follows the matmul
            name = names[index]
            model, batch = built[name]
            started, cpu_started = time.perf_counter(), time.process_time()
            for step in range(steps):
                model.train_on_batch(x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch])
            out[name]["wall"].append(steps * batch / (time.perf_counter() - started))
            out[name]["cpu"].append(steps * batch / (time.process_time() - cpu_started))
    return out


def summarise(speeds: dict, name: str, base: str | None = None) -> dict:
    """Medians for one variant: images/s, GFLOP/s and utilisation (wall and CPU time), ratio to ``base``."""
    import numpy as np

    v, mm = speeds[name], speeds["matmul"]
    rates = {}
    for clock in ("wall", "cpu"):
        images = np.array(v[clock])
        achieved = images * v["flops"] * 3 / 1e9
        rates[clock] = float(np.median(images))
        rates[f"{clock}_gflops"] = float(np.median(achieved))
        rates[f"{clock}_share"] = float(np.median(achieved / np.array(mm[clock])))
        if base:
            rates[f"{clock}_ratio"] = float(np.median(images / np.array(speeds[base][clock])))
    return rates


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
        cpu += ", " + "/".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags)
    except (OSError, StopIteration):
        pass
    import keras

    backend = keras.backend.backend()
    versions = f"Python {platform.python_version()}, Keras {keras.__version__} ({backend}"
    if backend == "tensorflow":
        import tensorflow as tf

        versions += f" {tf.__version__}"
    return f"{os.cpu_count()} cores ({cpu}); {versions})"


def training_section(results: list[dict], command: str, minutes: float) -> str:
    labels = list(results[0]["test_f1"])
    lines = ["| | " + " | ".join(r["preset"] for r in results) + " |",
             "|---|" + "---:|" * len(results)]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in results) + " |")

    row("images/s per epoch (training, median)", lambda r: f"{r['images_per_second']:.1f}")
    row("images/s, interleaved probe (wall)", lambda r: f"{r['probe']['wall']:.1f}")
    row("parameters", lambda r: f"{r['parameters']:,}")
    row("FLOPs per image (forward)", lambda r: f"{r['flops'] / 1e6:.1f} M")
    row("peak resident memory", lambda r: f"{r['peak_rss_mb']:.0f} MB")
    row("epochs run (early stopping on val loss)", lambda r: str(r["epochs"]))
    row("training time", lambda r: f"{r['train_seconds'] / 60:.1f} min")
    for label in labels:
        row(f"test F1 {label} (threshold from validation)", lambda r, l=label: f"{r['test_f1'][l]:.3f}")
    base = results[0]
    speedups = [f"{r['preset']}: {r['probe']['cpu_ratio']:.1f}x in the interleaved probe (CPU time; "
                f"{r['probe']['wall_ratio']:.1f}x wall), "
                f"{r['images_per_second'] / base['images_per_second']:.1f}x over the training epochs"
                for r in results[1:]]
    return "\n".join([
        "# Models: the original all-label preset against the default", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, in one run of `{command}` "
        f"({minutes:.0f} min in all), on the prepared CelebA split "
        f"({base['train_faces']} training faces, 64x64 gray, detect-and-crop).", "",
        *lines, "",
        "Speed relative to the first column, same run: " + ", ".join(speedups) + ".", "",
    ])


def throughput_section(speeds: dict, presets: list[str], args, command: str) -> str:
    mm = speeds["matmul"]
    import numpy as np

    base = presets[0]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, by `{command}`: "
             f"{args.speed_rounds} rounds, each a float32 2048x2048 matmul and then {args.speed_steps} training "
             f"steps of batch {PROBE_BATCH} per model, in turn. Matmul peak: "
             f"{np.median(mm['cpu']):.0f} GFLOP per CPU-second ({min(mm['cpu']):.0f}-{max(mm['cpu']):.0f}), "
             f"{np.median(mm['wall']):.0f} GFLOP/s of wall time ({min(mm['wall']):.0f}-{max(mm['wall']):.0f}; "
             f"this machine's cores were shared, so the CPU-time columns are the ones to compare).", "",
             "| preset | parameters | FLOPs/image | images/s | images per CPU-s | GFLOP/s achieved | "
             "share of matmul (CPU time) | share (wall) | vs " + base + " (CPU time) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for preset in presets:
        s = summarise(speeds, preset, base)
        v = speeds[preset]
        lines.append(f"| {preset} | {v['parameters']:,} | {v['flops'] / 1e6:.1f} M | {s['wall']:.0f} | "
                     f"{s['cpu']:.0f} | {s['cpu_gflops']:.1f} per CPU-s | {100 * s['cpu_share']:.0f}% | "
                     f"{100 * s['wall_share']:.0f}% | {s['cpu_ratio']:.1f}x |")
    return "\n".join([THROUGHPUT, "", *lines, ""])


def levers_section(speeds: dict, default: str, original: str) -> str:
    lines = ["| setting | images/s | images per CPU-s | share of matmul (CPU time) | vs default | "
             "vs original-all-label (batch 64) |", "|---|---:|---:|---:|---:|---:|"]
    for label, fields, run in LEVER_VARIANTS:
        name = label if fields is not None else default
        s = summarise(speeds, name, default)
        r = summarise(speeds, name, original)
        note = " (XLA refused)" if run.get("jit") and not speeds[name]["jit"] else ""
        lines.append(f"| {label}{note} | {s['wall']:.0f} | {s['cpu']:.0f} | {100 * s['cpu_share']:.0f}% | "
                     f"{s['cpu_ratio']:.2f}x | {r['cpu_ratio']:.1f}x |")
    return "\n".join([LEVERS, "", "Same rounds as the table above; ratios in CPU time.", "", *lines, ""])


def merge(old: str, preamble: str | None, sections: dict[str, str]) -> str:
    """The new file: a new preamble (or the old one), generated sections replaced in place, other sections kept."""
    parts = old.split("\n## ")
    old_preamble = parts[0]
    old_sections = ["## " + p for p in parts[1:]]
    out = [(preamble or old_preamble).rstrip() + "\n"]
    placed = set()
    for section in old_sections:
        heading = section.splitlines()[0]
        if heading in sections:
            out.append(sections[heading].rstrip() + "\n")
            placed.add(heading)
        else:
            out.append(section.rstrip() + "\n")
    missing = [sections[h].rstrip() + "\n" for h in sections if h not in placed]
    return "\n".join(out[:1] + missing + out[1:])


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
    parser.add_argument("--speed-rounds", type=int, default=8)
    parser.add_argument("--speed-steps", type=int, default=4)
    parser.add_argument("--skip-training", action="store_true",
                        help="the throughput probe only; the file keeps its training table")
    parser.add_argument("--levers", action="store_true", help="also probe the settings tried on the default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "models.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(train_one(args)), flush=True)
        return
    presets = args.presets.split(",")
    command = ("python benchmarks/bench_models.py " + " ".join(sys.argv[1:])).strip()
    started = time.time()
    results = []
    if not args.skip_training:
        if not (args.dataset / "manifest.json").is_file():
            prepare_celeba(args.dataset)
        for preset in presets:
            cmd = [sys.executable, __file__, "--one", preset] + sys.argv[1:]
            print(f"== training {preset}", flush=True)
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
            results.append(json.loads(line[len("RESULT "):]))
    variants = [(p, {"preset": p}, {}) for p in presets]
    if args.levers:
        variants += [v for v in LEVER_VARIANTS if v[1] is not None]
    print(f"== throughput probe: {len(variants)} models, {args.speed_rounds} rounds", flush=True)
    speeds = probe(variants, args.speed_rounds, args.speed_steps, args.seed)
    sections = {THROUGHPUT: throughput_section(speeds, presets, args, command)}
    if args.levers:
        sections[LEVERS] = levers_section(speeds, "default", "original-all-label")
    preamble = None
    if results:
        for r in results:
            r["probe"] = summarise(speeds, r["preset"], presets[0])
        preamble = training_section(results, command, (time.time() - started) / 60)
    old = args.out.read_text() if args.out.is_file() else "# Models: the original all-label preset against the default\n"
    text = merge(old, preamble, sections)
    print("\n\n".join([preamble or "", *sections.values()]))
    from faces_keras.io import atomic_write_text

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
