"""Optional training callbacks: the validation confusion matrix of every epoch.

Accuracy alone hides what a multi-class model gets wrong: on FER-2013 a model
can reach 55% while never predicting ``disgust``. :class:`ConfusionMatrixLogger`
predicts the validation faces after each epoch and writes, for one multiclass
head, every epoch's confusion matrix so far:

* ``confusion_<head>.json``: ``{"head", "classes", "epochs": [{"epoch", "n",
  "accuracy", "recall", "matrix"}]}`` (rows: true class, columns: predicted);
* ``confusion_<head>.csv``: one row per epoch, true class and predicted class
  with its count (long format, for pandas or a spreadsheet).

Both are rewritten atomically each epoch, so an interrupted run keeps the
epochs it finished. Faces whose class is missing (``-1``) are left out.
The cost is one prediction pass over the validation split per epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from faces_keras.io import atomic_write_text, read_json, write_json


def confusion_matrix_counts(y_true: np.ndarray, y_prob: np.ndarray, classes: int) -> np.ndarray:
    """``classes`` x ``classes`` counts of (true, arg-max predicted); rows with class -1 are skipped.

    Args:
        y_true: true class indices, ``(N,)`` or ``(N, 1)``; -1 is missing.
        y_prob: class probabilities, ``(N, classes)``.
        classes: the number of classes.

    Returns:
        An int array ``(classes, classes)``: rows true, columns predicted.
    """
    y_true = np.asarray(y_true).reshape(-1).astype(int)
    keep = y_true >= 0
    predicted = np.argmax(np.asarray(y_prob), axis=-1).reshape(-1)[keep]
    pairs = y_true[keep] * classes + predicted
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


class ConfusionMatrixLogger(keras.callbacks.Callback):
    """After each epoch, the validation confusion matrix of one multiclass head, to JSON and CSV.

    Writes ``confusion_<head>.json`` (every epoch's matrix, accuracy and
    per-class recall) and ``confusion_<head>.csv`` into ``out_dir``.

    Args:
        x_val: validation faces ``(N, size, size, C)``, 0-255 (uint8 or float; cast a batch at a time).
        y_val: their true class indices; -1 is missing.
        head: the head's (output's) name.
        class_names: the classes, in index order.
        out_dir: the folder of the two files (the run directory).
        batch_size: faces per ``predict`` batch.
        append: continue an existing JSON file (a resumed run) instead of
            starting it again.
    """

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray, head: str, class_names: list[str],
                 out_dir: str | Path, *, batch_size: int = 256, append: bool = False):
        super().__init__()
        self.x_val = x_val
        self.y_val = np.asarray(y_val).reshape(-1).astype(int)
        self.head = head
        self.class_names = list(class_names)
        self.batch_size = batch_size
        self.json_path = Path(out_dir) / f"confusion_{head}.json"
        self.csv_path = Path(out_dir) / f"confusion_{head}.csv"
        # a resumed run continues the file instead of starting it again
        self.epochs: list[dict[str, Any]] = []
        if append and self.json_path.is_file():
            self.epochs = list(read_json(self.json_path).get("epochs", []))

    def _head_output(self, out) -> np.ndarray:
        if isinstance(out, dict):
            return np.asarray(out[self.head])
        if isinstance(out, (list, tuple)):
            names = list(getattr(self.model, "output_names", []) or [])
            return np.asarray(out[names.index(self.head)] if self.head in names else out[0])
        return np.asarray(out)

    def on_epoch_end(self, epoch, logs=None):
        from faces_keras.data.stream import FaceBatches  # batches a data-parallel model's devices divide

        probs = self._head_output(self.model.predict(FaceBatches(self.x_val, batch_size=self.batch_size), verbose=0))
        k = len(self.class_names)
        matrix = confusion_matrix_counts(self.y_val, probs, k)
        support = matrix.sum(axis=1)
        n = int(matrix.sum())
        record = {
            "epoch": int(epoch) + 1,  # 1-based, as Keras prints it
            "n": n,
            "accuracy": float(np.trace(matrix) / n) if n else float("nan"),
            "recall": {c: (float(matrix[i, i] / support[i]) if support[i] else None)
                       for i, c in enumerate(self.class_names)},
            "matrix": matrix.tolist(),
        }
        self.epochs = [e for e in self.epochs if e["epoch"] != record["epoch"]] + [record]
        self._write()

    def _write(self) -> None:
        write_json(self.json_path, {"head": self.head, "classes": self.class_names,
                                    "rows": "true class", "columns": "predicted class", "epochs": self.epochs})
        lines = ["epoch,true,predicted,count"]
        for record in self.epochs:
            for i, true in enumerate(self.class_names):
                for j, predicted in enumerate(self.class_names):
                    lines.append(f"{record['epoch']},{true},{predicted},{record['matrix'][i][j]}")
        atomic_write_text(self.csv_path, "\n".join(lines) + "\n")


def confusion_callbacks(dataset: str | Path, labels: tuple[str, ...] | list[str], out_dir: str | Path,
                        *, append: bool = False) -> list[ConfusionMatrixLogger]:
    """One :class:`ConfusionMatrixLogger` per multiclass head of a training run's label selection.

    Reads the validation split of the prepared ``dataset`` itself, so a caller
    builds it from a ``TrainConfig`` alone:
    ``train(config, run_dir, callbacks=confusion_callbacks(config.dataset, config.labels, run_dir))``.

    Args:
        dataset: the prepared dataset folder.
        labels: the run's labels; empty for all of the schema's.
        out_dir: where the loggers write (the run directory).
        append: continue existing files (a resumed run).

    Returns:
        The loggers; an empty list where no label is multiclass.

    Raises:
        DatasetError: ``dataset`` is not a whole prepared dataset, or has no
            validation faces.
        SchemaError: a label is not in its schema.
    """
    from faces_keras.data.store import Dataset
    from faces_keras.labels.heads import make_targets, plan_heads

    ds = Dataset.load(dataset)
    schema = ds.schema.select(list(labels))
    heads = [h for h in plan_heads(schema) if h.kind == "multiclass"]
    if not heads:
        return []
    images, frame = ds.split("val")
    targets = make_targets(frame, heads)
    # uint8: the logger predicts through FaceBatches, which casts a batch at a time
    return [ConfusionMatrixLogger(images, targets[h.name], h.name, list(schema[h.labels[0]].classes),
                                  out_dir, append=append) for h in heads]


__all__ = ["ConfusionMatrixLogger", "confusion_callbacks", "confusion_matrix_counts"]
