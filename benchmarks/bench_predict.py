"""predict's throughput: today's one ``model.predict`` per photo against batched, streaming predict.

On the shared CelebA photos (``celeba/img_celeba``: loosely cropped, longest side
160 px, so every photo goes through face detection), in one run:

* ``today``: the predict of commit 6ad258b (read from git, run unchanged): one
  photo after another, detection in the main process, one ``model.predict`` per
  photo, an annotated JPEG for each, every result kept until the end;
* ``batched --no-annotate``: :func:`faces_keras.inference.predict.predict_photos`
  with detection in ``--workers`` processes, faces of many photos in one model
  call per batch, rows streamed to predictions.csv, no drawn copies;
* ``--detect-max-side 96``: the same, detecting on photos shrunk as CelebA is prepared;
* ``batched``: the same, drawing the annotated copies;
* ``onnx --no-annotate``: the same with the run exported to ONNX and run by
  onnxruntime (no TensorFlow in the loop);
* ``model only``: the Keras model on the detected faces, batched (the ceiling).

Every figure is end to end (the model's loading included) and wall time on this
machine. The run is trained here unless ``--run`` is given: the default preset,
``--epochs`` epochs on ``--train-faces`` CelebA faces (a model of the default's
size: the speed, not its accuracy, is the point).

    python benchmarks/bench_predict.py --photos 2000 --today-photos 300 --workers 2

Prints the table and writes docs/benchmarks/predict.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("FACES_KERAS_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "docs" / "benchmarks" / "predict.md"
TODAY_COMMIT = "6ad258b"  # the last commit with the one-photo-at-a-time predict


def train_run(work: Path, faces: int, epochs: int) -> Path:
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema
    from faces_keras.training.train import TrainConfig, train

    dataset, run = work / "celeba", work / "run"
    if not (dataset / "manifest.json").is_file():
        prepare_dataset(load_schema("celeba"), DATA / "celeba" / "list_attr_celeba.txt", dataset,
                        config=PrepareConfig(limit=faces))
    if not (run / "thresholds.json").is_file():
        train(TrainConfig(dataset=str(dataset), epochs=epochs, verbose=0), run, overwrite=True)
    return run


def load_today():
    """The predict module of TODAY_COMMIT, as it was, importable beside today's code."""
    source = subprocess.run(["git", "show", f"{TODAY_COMMIT}:faces_keras/inference/predict.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "predict_today.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("predict_today", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["predict_today"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(label: str, photos: int, call) -> dict:
    started = time.perf_counter()
    faces = call()
    seconds = time.perf_counter() - started
    row = {"path": label, "photos": photos, "faces": faces, "seconds": seconds,
           "photos/s": photos / seconds, "faces/s": faces / seconds}
    print(f"{label:32s} {photos:6d} photos {faces:6d} faces {seconds:8.1f} s "
          f"{row['photos/s']:8.1f} photos/s {row['faces/s']:8.1f} faces/s", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run (default: train a small one in --work)")
    parser.add_argument("--work", help="folder for the run and outputs (default: a temporary folder)")
    parser.add_argument("--photos", type=int, default=2000, help="CelebA photos for the batched paths")
    parser.add_argument("--today-photos", type=int, default=300,
                        help="photos for today's path (slow; its rate is per photo, so comparable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--train-faces", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from faces_keras.inference.export import export_model
    from faces_keras.inference.predict import PredictConfig, Predictor, predict_photos
    from faces_keras.tables import to_markdown

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.run) if args.run else train_run(work, args.train_faces, args.epochs)
    photos = sorted((DATA / "celeba" / "img_celeba").glob("*.jpg"))[-args.photos:]  # the last ids: not trained on
    today_photos = photos[:args.today_photos]
    print(f"run {run}; {len(photos)} CelebA photos; {os.cpu_count()} cores", flush=True)

    def fresh(name: str) -> Path:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        return out

    rows = []
    today = load_today()
    out = fresh("today")
    rows.append(timed("today (model.predict per photo)", len(today_photos),
                      lambda: sum(len(r.faces) for r in today.predict_photos(run, today_photos, out))))
    config = PredictConfig(no_annotate=True, workers=args.workers, batch_size=args.batch_size)
    rows.append(timed("batched --no-annotate", len(photos), lambda: predict_photos(
        run, photos, config, out=str(fresh("batched"))).faces))
    rows.append(timed("batched --no-annotate --detect-max-side 96", len(photos), lambda: predict_photos(
        run, photos, config, out=str(fresh("batched96")), detect_max_side=96).faces))
    rows.append(timed("batched (annotated copies)", len(today_photos), lambda: predict_photos(
        run, today_photos, config, out=str(fresh("annotated")), no_annotate=False).faces))
    exported = export_model(run, "onnx", work / "export" / "model.onnx").path
    rows.append(timed("onnx --no-annotate", len(photos), lambda: predict_photos(
        exported, photos, config, out=str(fresh("onnx"))).faces))

    from faces_keras.data.store import Dataset

    predictor = Predictor(run, batch_size=args.batch_size)
    faces = Dataset.load(predictor.run.manifest()["path"]).images
    faces = np.concatenate([faces] * max(1, -(-len(photos) // len(faces))))[:len(photos)]
    predictor.scores(faces[:args.batch_size])  # compile once, as the streaming paths do on their first batch

    rows.append(timed("model only (Keras, batched)", len(faces), lambda: len(predictor.scores(faces)["labels"])))
    base = rows[0]["photos/s"]
    for row in rows:
        row["vs today"] = f"{row['photos/s'] / base:.1f}x"
    table = to_markdown(_frame(rows))
    print(table)
    command = ("python benchmarks/bench_predict.py " + " ".join(sys.argv[1:])).strip()
    args.out.write_text(_report(table, command, run, len(photos), args))
    print(f"wrote {args.out}")
    return 0


def _frame(rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in ("seconds", "photos/s", "faces/s"):
        frame[column] = frame[column].map(lambda v: f"{v:.1f}")
    return frame


def _report(table: str, command: str, run: Path, photos: int, args) -> str:
    return f"""# predict throughput

`{command}` on {platform.machine()} with {os.cpu_count()} cores ({platform.python_version()},
workers={args.workers}, batch size {args.batch_size}), on the shared CelebA photos
(`celeba/img_celeba`: loosely cropped, 160 px longest side; Haar detection on every photo).
The run: {'given (`--run`)' if args.run else f'the default preset trained here for {args.epochs} epoch(s) on {args.train_faces} CelebA faces'}.
Wall time end to end, the model's loading included; the machine is shared, so
expect the figures to move by tens of percent from run to run.

{table}

* **today**: `predict` of commit {TODAY_COMMIT}, run unchanged: one photo at a time, one
  `model.predict` per photo, an annotated JPEG for every photo, detection in the
  main process. Timed on the first {args.today_photos} of the photos (a rate per photo).
* **batched --no-annotate**: `faces-keras predict RUN PHOTOS --no-annotate --workers {args.workers}`:
  detection in a process pool, the faces of many photos in one `predict_on_batch`
  per {args.batch_size} faces, rows appended to predictions.csv per batch.
* **--detect-max-side 96**: the same, with Haar run on photos shrunk to 96 px, as
  `datasets/celeba.yaml` prepares CelebA (its faces stay above the cascade's 24 px
  window); boxes are mapped back and faces cut from the full photo.
* **batched (annotated copies)**: the same, writing the drawn JPEG copies (on the
  photos today's path had).
* **onnx --no-annotate**: `faces-keras export RUN --format onnx`, then
  `faces-keras predict --model model.onnx PHOTOS --no-annotate`: onnxruntime, no TensorFlow.
* **model only**: the Keras model alone on stored faces, batched: the ceiling the
  model sets; with 1 face per photo, detection is what the batched paths spend
  their time on.
"""


if __name__ == "__main__":
    sys.exit(main())
