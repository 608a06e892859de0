"""Transfer to the grid faces: a backbone trained on CelebA, fine-tuned on 293 training faces.

For each seed, three models on the same prepared grid faces (the source
project's offline augmentation of the training split, split by source face):

* ``scratch``: the default preset from random weights;
* ``transfer``: the default preset with the backbone of a CelebA run
  (``train --init-from RUN --freeze-epochs 3``: heads only for 3 epochs, then
  everything at 0.1x the learning rate);
* ``original``: the source project's all-label CNN (``original-all-label``).

The CelebA run is trained once (5 labels: the grid faces' own). Every command is
the CLI's, so the runs can be repeated by hand. Runs already in ``--work`` are
reused, so an interrupted benchmark continues where it stopped.

    python benchmarks/bench_transfer.py --work /tmp/transfer --seeds 0,1,2

Prints the table (test F1 at validation-tuned thresholds, mean ± std over the
seeds) and writes docs/benchmarks/transfer.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACES_KERAS_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "docs" / "benchmarks" / "transfer.md"
MODELS = {
    "scratch": ("default, from scratch", []),
    "transfer": ("default, backbone from CelebA (--init-from, --freeze-epochs 3)", ["--freeze-epochs", "3"]),
    "original": ("original-all-label (the source project's CNN)", ["--preset", "original-all-label",
                                                                   "--patience", "3"]),
}


def cli(*args: str) -> None:
    command = [sys.executable, "-m", "faces_keras", *args]
    print("$ faces-keras " + " ".join(args), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def done(run: Path) -> bool:
    return (run / "metrics.json").is_file()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the prepared datasets and runs (kept)")
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--celeba-epochs", type=int, default=30)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    work = Path(args.work)
    started = time.time()
    if not (work / "celeba").is_dir():
        cli("prepare", str(work / "celeba"), "--config", "configs/celeba-prepare.yaml")
    if not (work / "grids").is_dir():
        cli("prepare", str(work / "grids"), "--schema", "grids", "--labels",
            str(DATA / "grids" / "faces-labels.csv"), "--augment", "original")
    celeba = work / "runs" / "celeba"
    if not done(celeba):
        cli("train", str(work / "celeba"), "--out", str(celeba), "--epochs", str(args.celeba_epochs),
            "--patience", "6", "--overwrite")
    scores: dict[str, dict[str, list[float]]] = {kind: {} for kind in MODELS}
    seconds: dict[str, list[float]] = {kind: [] for kind in MODELS}
    for seed in args.seeds:
        for kind, (_, extra) in MODELS.items():
            run = work / "runs" / f"grids-{kind}-{seed}"
            if not done(run):
                init = ["--init-from", str(celeba)] if kind == "transfer" else []
                cli("train", str(work / "grids"), "--out", str(run), "--epochs", str(args.epochs), "--seed",
                    str(seed), "--overwrite", *init, *extra)
            metrics = json.loads((run / "metrics.json").read_text())
            seconds[kind].append(metrics.get("train_seconds", float("nan")))
            for row in metrics["heads"]["labels"]["test"]:
                scores[kind].setdefault(row["label"], []).append(row["f1"])
    labels = list(scores["scratch"])
    lines = ["| model | " + " | ".join(labels) + " | training s per seed |",
             "|---|" + "---:|" * (len(labels) + 1)]
    for kind, (name, _) in MODELS.items():
        cells = [f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"
                 for v in (scores[kind][label] for label in labels)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(seconds[kind]):.0f} |")
    celeba_metrics = json.loads((celeba / "metrics.json").read_text())
    celeba_f1 = ", ".join(f"{r['label']} {r['f1']:.3f}" for r in celeba_metrics["heads"]["labels"]["test"])
    table = "\n".join(lines)
    print(table)
    text = (
        "# Transfer to the grid faces\n\n" + "\n\n".join(__doc__.split("\n\n")[1:3]) + "\n\n"
        f"Test F1 at thresholds tuned on validation, mean ± std over seeds {args.seeds} "
        f"({len(scores['scratch'][labels[0]])} runs each); the grid faces' test split has few hats and "
        "glasses, so those columns move most between seeds.\n\n" + table + "\n\n"
        f"The CelebA backbone's own run: test F1 {celeba_f1} "
        f"({celeba_metrics.get('train_seconds', 0):.0f} s, {celeba_metrics.get('train_faces')} training faces; "
        "trained once, and not counted in the transfer row's seconds).\n\n"
        f"Command: `python benchmarks/bench_transfer.py --work {args.work} --seeds "
        f"{','.join(map(str, args.seeds))}` on {os.cpu_count()} CPUs ({time.time() - started:.0f} s this "
        "invocation; runs found in --work were reused).\n")
    sys.path.insert(0, str(ROOT))
    from faces_keras.io import atomic_write_text

    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
