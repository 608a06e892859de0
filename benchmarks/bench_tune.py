"""Hyperband on CelebA: trials per hour, total time, and whether tuning beats the untuned default model.

Prepares CelebA (detect and crop; or the plain files where the detector is
missing) unless the dataset folder exists, runs a default-space search,
retrains the best configuration, trains the untuned ``default`` preset for the
same epochs on the same faces, and compares their test F1 per label (each at
thresholds tuned on validation). Prints a table and writes
docs/benchmarks/tune.md (``--report``).

    python benchmarks/bench_tune.py                                  # the full run: ~30 min on 2 idle cores
    python benchmarks/bench_tune.py --max-train 300 --max-epochs 2 \\
        --retrain-epochs 2 --report /tmp/tune.md                     # a quick check that it works
    python benchmarks/bench_tune.py --memory-trials 20 --max-train 500   # RSS per trial only: ~10 min

``--memory-trials N`` runs only the memory check: a search of N one-epoch
trials (Hyperband max_epochs 1, N iterations) recording the process's RSS
after each trial, then the same search with the per-trial release of
TensorFlow's graphs switched off (``--no-baseline`` skips it), in the same
process; it rewrites only the report's "Memory per trial" section. The full
run keeps that section.

The defaults (max_epochs 4, factor 3: 10 trials and at most 26 epochs, on
2,000 training faces) are sized for 2 CPU cores; on a GPU raise --max-train
(all faces), --max-epochs and --batch-size.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def prepare_celeba(out: Path) -> tuple[str, float]:
    """CelebA prepared into ``out`` unless it already is; returns how, and the seconds it took."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema

    if (out / "manifest.json").is_file():
        return "already prepared", 0.0
    # Detection is the schema's way (loosely cropped photos); the plain files are the fallback.
    images = "detect" if importlib.util.find_spec("faces_keras.data.detect") else "files"
    started = time.perf_counter()
    prepare_dataset(load_schema("celeba"), DATA / "celeba" / "list_attr_celeba.txt", out,
                    config=PrepareConfig(images=images), overwrite=True)
    return f"prepared (images: {images})", time.perf_counter() - started


def per_label_test_f1(run_dir: Path) -> dict[str, float]:
    from faces_keras.io import read_json

    rows = read_json(run_dir / "metrics.json")["heads"]["labels"]["test"]
    return {row["label"]: float(row["f1"]) for row in rows}


MEMORY_HEADING = "## Memory per trial"


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with its ``heading`` section (up to the next ``## `` heading) replaced by ``section``, or added."""
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        return "\n".join([*lines, "", section.rstrip("\n"), ""]) if lines else section.rstrip("\n") + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], section.rstrip("\n"), *([""] + lines[end:] if end < len(lines) else []), ""])


def kept_section(path: Path, heading: str) -> str:
    """The ``heading`` section of the report at ``path`` (empty when there is none)."""
    if not path.is_file():
        return ""
    lines = path.read_text().split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).rstrip("\n") + "\n"


def memory_search(args, release: bool) -> list[dict]:
    """N one-epoch trials on CelebA; per trial (in the order run): id, model, seconds, RSS after it."""
    from faces_keras.tuning import TuneConfig, tune
    from faces_keras.tuning import tuner as tuner_module
    from faces_keras.tuning.searchdir import trial_runs

    config = TuneConfig(dataset=str(args.dataset), space="default", objective=args.objective, max_epochs=1,
                        hyperband_iterations=args.memory_trials, max_train=args.max_train,
                        batch_size=args.batch_size, directory=str(args.work / "searches"),
                        project_name=f"celeba-memory-{'released' if release else 'kept'}", overwrite=True,
                        retrain_epochs=0, verbose=0)
    real = tuner_module._trial_gradients_released
    if not release:  # the search as it ran before: every trial's graphs stay registered in TensorFlow
        tuner_module._trial_gradients_released = contextlib.nullcontext
    try:
        result = tune(config)
    finally:
        tuner_module._trial_gradients_released = real
    rows = []
    for trial in result.trials:
        run = trial_runs(config.project_dir / f"trial_{trial.trial_id}")[-1]
        hp = trial.hyperparameters
        rows.append({"id": trial.trial_id, "started": run["started"], "seconds": trial.seconds, "rss": trial.rss_mb,
                     "model": f"{hp.get('blocks')} blocks, {hp.get('filters')} filters, dense {hp.get('dense')}"})
    return sorted(rows, key=lambda r: r["started"])


def memory_section(args, released: list[dict], kept: list[dict] | None, seconds: float, command: str,
                   machine: str) -> str:
    """The report's "Memory per trial" section."""
    def growth(rows):
        return rows[-1]["rss"] - rows[1]["rss"]

    def spread(rows):
        later = [r["rss"] for r in rows[1:]]
        return max(later) - min(later)

    header = "| trial (order run) | id | model | seconds | RSS after it, MB |" + (
        " RSS without the release, MB |" if kept else "")
    rule = "|---:|---|---|---:|---:|" + ("---:|" if kept else "")
    rows = []
    for i, row in enumerate(released):
        cells = [str(i + 1), row["id"], row["model"], f"{row['seconds']:.1f}", f"{row['rss']:.0f}"]
        if kept:
            other = kept[i] if i < len(kept) else None
            cells.append("" if other is None else f"{other['rss']:.0f}" + (
                "" if other["id"] == row["id"] else f" ({other['id']})"))
        rows.append("| " + " | ".join(cells) + " |")
    lines = [MEMORY_HEADING, "",
             f"Measured {time.strftime('%Y-%m-%d')} with `{command}` on {machine}; "
             f"{seconds / 60:.1f} min for {'both searches' if kept else 'the search'}.", "",
             f"A search of {len(released)} one-epoch trials (default space, Hyperband max_epochs 1, "
             f"{args.memory_trials} iterations) on {args.max_train or 'all'} training faces of CelebA "
             f"({dataset_line(args.dataset)}), batch "
             f"{args.batch_size}, validation split whole. RSS is the process's resident memory just after "
             "each trial (`rss_mb` in the trial's `faces_trial.json` and in the summary), once its graphs "
             "are released; the first trial is lower because Keras and TensorFlow allocate on first use.", "",
             f"- with the release (what `tune` does): RSS after the last trial minus RSS after the second: "
             f"**{growth(released):+.0f} MB**; spread over trials 2-{len(released)}: {spread(released):.0f} MB"]
    if kept:
        lines.append(f"- without it (TensorFlow keeps every trial's train-step graphs through its custom-gradient "
                     f"registry; the search as it ran before), same seed, same trials, second in the same "
                     f"process: **{growth(kept):+.0f} MB** ({growth(kept) / max(len(kept) - 2, 1):.0f} MB per trial); "
                     f"spread {spread(kept):.0f} MB")
    lines += ["", header, rule, *rows, ""]
    return "\n".join(lines)


def dataset_line(path: Path) -> str:
    """How a prepared dataset was made, from its manifest: faces, image shape, how the faces were cropped."""
    from faces_keras.io import read_json

    manifest = read_json(path / "manifest.json")
    shape = "x".join(str(n) for n in manifest.get("image_shape", []))
    return f"`{path}`: {manifest.get('count')} faces, {shape}, images: {manifest.get('settings', {}).get('images')}"


def machine_line() -> str:
    import keras
    import keras_tuner as kt

    from faces_keras.backend import describe_device

    device = describe_device()
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "?") if Path("/proc/cpuinfo").is_file() else "?"
    return (f"{os.cpu_count()} cores ({cpu_model}), {device['device']} ({device['backend']} backend); Python "
            f"{platform.python_version()}, Keras {keras.__version__}, keras-tuner {kt.__version__}; load average "
            f"{os.getloadavg()[0]:.1f} at the end (the machine is shared: other work inflates wall time)")


def main_memory(args, argv) -> int:
    how, _ = prepare_celeba(args.dataset)
    print(f"dataset {args.dataset}: {how}; {args.memory_trials} one-epoch trials, then "
          f"{'the same without the release' if args.baseline else 'done'}", flush=True)
    started = time.perf_counter()
    released = memory_search(args, release=True)
    kept = memory_search(args, release=False) if args.baseline else None
    command = "python benchmarks/bench_tune.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    section = memory_section(args, released, kept, time.perf_counter() - started, command.strip(), machine_line())
    print(section)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    old = args.report.read_text() if args.report.is_file() else "# Hyperband tuning on CelebA\n"
    args.report.write_text(replace_section(old, MEMORY_HEADING, section))
    print(f"written: {args.report} (its {MEMORY_HEADING!r} section)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("/tmp/celeba64"), help="prepared CelebA (made if missing)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_tune"), help="searches and runs go here")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=2000)
    parser.add_argument("--retrain-epochs", type=int, default=8, help="epochs of the tuned and the untuned run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--objective", default="val_loss")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks" / "tune.md")
    parser.add_argument("--memory-trials", type=int, default=0, metavar="N",
                        help="only the memory check: N one-epoch trials, RSS after each (0: the full run)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="memory check: skip the second search without the per-trial release")
    args = parser.parse_args(argv)
    if args.memory_trials:
        if args.memory_trials < 3:
            parser.error("--memory-trials: at least 3 (RSS after the second trial is the reference)")
        return main_memory(args, argv)

    import keras
    import keras_tuner as kt

    from faces_keras.backend import describe_device
    from faces_keras.models.presets import ModelConfig
    from faces_keras.training.train import TrainConfig, train
    from faces_keras.tuning import TuneConfig, hyperband_plan, retrain_best, tune

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    how, prepare_seconds = prepare_celeba(args.dataset)
    config = TuneConfig(dataset=str(args.dataset), space="default", objective=args.objective,
                        max_epochs=args.max_epochs, factor=args.factor, max_train=args.max_train,
                        batch_size=args.batch_size, directory=str(args.work / "searches"), project_name="celeba",
                        overwrite=True, retrain_epochs=0, verbose=0)
    plan = hyperband_plan(args.max_epochs, args.factor)
    print(f"dataset {args.dataset}: {how}; search plan: {plan['trials']} trials, at most {plan['epochs']} epochs",
          flush=True)
    started = time.perf_counter()
    result = tune(config)
    search_seconds = time.perf_counter() - started
    completed = [r for r in result.trials if r.status == "COMPLETED"]
    epochs_run = sum(r.epochs_run or 0 for r in result.trials)

    monitor = "val_auc" if args.objective == "val_auc" else "val_loss"
    started = time.perf_counter()
    tuned_run = retrain_best(config, result.best_model, args.retrain_epochs, monitor)
    tuned_seconds = time.perf_counter() - started
    started = time.perf_counter()
    untuned = TrainConfig(dataset=str(args.dataset), model=ModelConfig(), epochs=args.retrain_epochs,
                          batch_size=args.batch_size, seed=config.seed, monitor=monitor, patience=config.patience,
                          max_train=args.max_train, verbose=0)
    untuned_run = train(untuned, args.work / "untuned-default", overwrite=True).path
    untuned_seconds = time.perf_counter() - started

    tuned_f1, untuned_f1 = per_label_test_f1(tuned_run), per_label_test_f1(untuned_run)
    label_rows = [f"| {label} | {untuned_f1[label]:.3f} | {tuned_f1[label]:.3f} | "
                  f"{tuned_f1[label] - untuned_f1[label]:+.3f} |" for label in tuned_f1]
    mean_untuned, mean_tuned = (sum(d.values()) / len(d) for d in (untuned_f1, tuned_f1))
    label_rows.append(f"| **mean** | {mean_untuned:.3f} | {mean_tuned:.3f} | {mean_tuned - mean_untuned:+.3f} |")
    best = result.best
    best_values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in best.hyperparameters.items())
    device = describe_device()
    total = time.perf_counter() - wall0
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "?") if Path("/proc/cpuinfo").is_file() else "?"
    command = "python benchmarks/bench_tune.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = "\n".join([
        "# Hyperband tuning on CelebA", "",
        f"Measured {time.strftime('%Y-%m-%d')} with `{command.strip()}` on {os.cpu_count()} cores ({cpu_model}), "
        f"{device['device']} ({device['backend']} backend); Python {platform.python_version()}, "
        f"Keras {keras.__version__}, keras-tuner {kt.__version__}; load average {os.getloadavg()[0]:.1f} "
        "at the end (the machine is shared: other work inflates wall time, not CPU time).", "",
        f"Dataset: CelebA ({args.dataset}, {how}); training on {args.max_train or 'all'} faces, "
        f"validation and test splits whole. Search: default space, objective {args.objective}, "
        f"Hyperband max_epochs {args.max_epochs}, factor {args.factor}.", "",
        "| measure | value |", "|---|---:|",
        f"| trials (completed / planned) | {len(completed)} / {plan['trials']} |",
        f"| epochs trained in the search (planned at most) | {epochs_run} ({plan['epochs']}) |",
        f"| search wall time | {search_seconds / 60:.1f} min |",
        f"| trials per hour | {len(completed) / (search_seconds / 3600):.1f} |",
        f"| retraining the best ({args.retrain_epochs} epochs) | {tuned_seconds / 60:.1f} min |",
        f"| training the untuned default ({args.retrain_epochs} epochs) | {untuned_seconds / 60:.1f} min |",
        f"| preparing the dataset | {prepare_seconds / 60:.1f} min |",
        f"| total wall time / CPU time | {total / 60:.1f} min / {(cpu_seconds() - cpu0) / 60:.1f} min |", "",
        f"Best trial {best.trial_id}: {args.objective} {best.score:.4f} ({best_values}).", "",
        "Test F1 per label, each at its threshold tuned on validation:", "",
        "| label | untuned default | tuned (best trial retrained) | change |", "|---|---:|---:|---:|",
        *label_rows, "",
        f"Search summary: `{result.summary_md}`; runs: `{tuned_run}`, `{untuned_run}`.", "",
    ])
    print(text)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    memory = kept_section(args.report, MEMORY_HEADING)  # from a --memory-trials run: kept
    args.report.write_text(replace_section(text, MEMORY_HEADING, memory) if memory else text)
    print(f"written: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
