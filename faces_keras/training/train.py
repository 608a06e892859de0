"""``faces-keras train``: fit a model on a prepared dataset into a run directory.

The split is the dataset's own (made by source face before augmentation);
thresholds are tuned on validation; test is predicted once, at the end.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faces_keras.data.store import Dataset
from faces_keras.errors import RunError
from faces_keras.io import atomic_path, atomic_write_text, read_json, write_json
from faces_keras.locking import folder_lock
from faces_keras.models.heads import (Head, class_balance_weights, fit_targets, make_targets, plan_heads,
                                     standardise_heads)
from faces_keras.models.losses import class_priors
from faces_keras.models.presets import ModelConfig, build_model, compile_model
from faces_keras.models.saving import load_keras_model, load_run_model
from faces_keras.rundir import BEST, BEST_RECORD, CONFIG, LAST, MANIFEST, MODEL, SCHEMA, STATE, RunDir

log = logging.getLogger(__name__)


from faces_keras.training.config import SCHEDULES, TrainConfig  # noqa: F401  (TrainConfig is public here too)


@dataclass
class TrainingData:
    """The three splits of one dataset for one label selection, faces read when used.

    Args:
        dataset: the loaded dataset (its images memory-mapped).
        heads: the heads planned for the selected labels, regression heads
            standardised on the training targets.
        x: split name (``train``, ``val``, ``test``) to that split's faces, a
            :class:`~faces_keras.data.stream.FaceRows`: uint8
            ``(N, size, size, C)``, read from disk a batch at a time.
            ``np.asarray(data.x[split])`` reads a whole split.
        targets: split name to head name to targets (:func:`make_targets`).
        frames: split name to the split's rows of ``faces.csv``.
    """

    dataset: Dataset
    heads: list[Head]
    x: dict[str, Any]
    targets: dict[str, dict[str, np.ndarray]]
    frames: dict[str, Any]

    @classmethod
    def load(cls, dataset: Dataset, labels: tuple[str, ...] = (), max_train: int | None = None,
             seed: int = 0) -> "TrainingData":
        """Plan the heads and targets of ``dataset``'s three splits for ``labels``; no face is read yet.

        Args:
            dataset: the loaded dataset.
            labels: the labels to train on; empty (the default) takes them all.
            max_train: keep at most this many training faces, drawn at random
                (``seed``); ``None`` keeps all.
            seed: the random seed of that draw.

        Returns:
            The :class:`TrainingData`.

        Raises:
            SchemaError: a label is not in the dataset's schema.
            DatasetError: a split is empty.
        """
        from faces_keras.data.stream import FaceRows

        schema = dataset.schema.select(list(labels))
        heads = plan_heads(schema)
        x, targets, frames = {}, {}, {}
        for split in ("train", "val", "test"):
            rows = dataset.split_rows(split)
            if split == "train" and max_train and len(rows) > max_train:
                rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), max_train, replace=False))]
            frame = dataset.faces.iloc[rows].reset_index(drop=True)
            x[split] = FaceRows(dataset.images, rows)
            frames[split] = frame
            targets[split] = make_targets(frame, heads)
        return cls(dataset, standardise_heads(heads, targets["train"]), x, targets, frames)

    @property
    def schema(self):
        return self.dataset.schema.select([name for h in self.heads for name in h.labels])

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0):
        """One split as Keras batches of (faces, targets), cast to float32 a batch at a time.

        Args:
            split: ``train``, ``val`` or ``test``.
            batch_size: faces per batch.
            shuffle: a new order each epoch (training).
            seed: seed of those orders.

        Returns:
            A :class:`~faces_keras.data.stream.FaceBatches`.
        """
        from faces_keras.data.stream import FaceBatches

        return FaceBatches(self.x[split], fit_targets(self.targets[split], self.heads),
                           batch_size=batch_size, shuffle=shuffle, seed=seed)


def predict_heads(model, x, heads: list[Head], batch_size: int = 256,
                  tta_flip: bool = False) -> dict[str, np.ndarray]:
    """Probabilities (or values) per head, whatever the model's output structure.

    Faces are cast to float32 a batch at a time, so ``x`` may be a split
    larger than memory.

    Args:
        model: a Keras model built by :func:`faces_keras.models.presets.build_model`.
        x: faces, (N, size, size, channels), uint8 range: an array or a
            :class:`~faces_keras.data.stream.FaceRows`.
        heads: the model's heads.
        batch_size: faces per ``predict`` batch.
        tta_flip: also predict each face mirrored left-right and average the two.

    Returns:
        One array per head name.
    """
    from faces_keras.data.stream import FaceBatches

    out = _head_outputs(model.predict(FaceBatches(x, batch_size=batch_size), verbose=0), heads)
    if tta_flip:
        mirrored = _head_outputs(model.predict(FaceBatches(x, batch_size=batch_size, flip=True), verbose=0),
                                 heads)
        out = {name: (out[name] + mirrored[name]) / 2 for name in out}
    return out


def _head_outputs(out, heads: list[Head]) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {h.name: np.asarray(out[h.name]) for h in heads}
    if isinstance(out, (list, tuple)):
        return {h.name: np.asarray(o) for h, o in zip(heads, out)}
    return {heads[0].name: np.asarray(out)}


class _ResumeState:
    """Keras callback factory: after each epoch save last.keras, then state.json (the commit point).

    state.json also keeps the fit's seconds so far (``fit_seconds``, from
    ``earlier_seconds`` on), so a resumed run's ``train_seconds`` counts the
    sittings before it too.
    """

    @staticmethod
    def make(run: RunDir, monitor: str, earlier_seconds: float = 0.0):
        import keras

        class ResumeState(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.began = time.time()

            def on_epoch_end(self, epoch, logs=None):
                with atomic_path(run.checkpoints / LAST) as tmp:
                    self.model.save(tmp)
                # state.json is written last: a kill before it leaves the previous epoch's
                # state, whose last.keras was replaced only by a whole later one. The best
                # value to beat is best.json's, written with best.keras.
                now = time.time()
                write_json(run.checkpoints / STATE, {"epoch": epoch, "monitor": monitor, "time": now,
                                                     "fit_seconds": earlier_seconds + now - self.began})

        return ResumeState


def atomic_model_checkpoint(run: RunDir, monitor: str, mode: str, best: float | None):
    """Keras's ``ModelCheckpoint(save_best_only=True)`` on ``checkpoints/best.keras``, written atomically.

    Keras saves in place, so a kill during the save leaves a broken best.keras.
    Here each save goes to a temporary name beside it and is renamed over it,
    then ``best.json`` records its epoch and value: a kill leaves the previous
    best whole. Which epochs improve stays Keras's logic.

    Args:
        run: the run directory.
        monitor: the validation quantity followed (``val_loss``...).
        mode: ``min`` or ``max`` (:func:`monitor_mode`).
        best: the value to beat (a resumed run's best), or ``None``.

    Returns:
        The Keras callback.
    """
    import keras

    final = run.checkpoints / BEST
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")  # Keras wants the .keras suffix

    class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            self.filepath = str(tmp)
            try:
                super().on_epoch_end(epoch, logs)
                if tmp.exists():  # Keras saved: this epoch improved
                    os.replace(tmp, final)
                    write_json(run.checkpoints / BEST_RECORD,
                               {"epoch": epoch, "monitor": monitor, "value": float(self.best)})
            finally:
                tmp.unlink(missing_ok=True)

    return AtomicModelCheckpoint(final, monitor=monitor, mode=mode, save_best_only=True,
                                 initial_value_threshold=best)


def epoch_timer(train_faces: int):
    """A callback that adds training seconds and images/s (validation excluded) to each epoch's logs.

    It must come before CSVLogger in the callback list so the numbers reach history.csv.

    Args:
        train_faces: training faces per epoch.

    Returns:
        The Keras callback; it logs ``epoch_seconds`` and ``images_per_second``.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.train_seconds = time.perf_counter(), None

        def on_test_begin(self, logs=None):
            if getattr(self, "started", None) is not None and self.train_seconds is None:
                self.train_seconds = time.perf_counter() - self.started

        def on_epoch_end(self, epoch, logs=None):
            seconds = self.train_seconds or (time.perf_counter() - self.started)
            if logs is not None:
                logs["epoch_seconds"] = round(seconds, 3)
                logs["images_per_second"] = round(train_faces / seconds, 2)

    return EpochTimer()


def monitor_mode(monitor: str) -> str:
    """``"max"`` for quantities that grow as the model improves, else ``"min"``.

    Args:
        monitor: a logged quantity, e.g. ``val_loss`` or ``val_labels_auc``.

    Returns:
        ``"max"`` where the name holds auc, accuracy, precision, recall or f1.
    """
    from faces_keras.monitors import direction

    return direction(monitor)


def _callbacks(run: RunDir, config: TrainConfig, resume_state: dict | None, train_faces: int = 0):
    import keras

    mode = monitor_mode(config.monitor)
    best = resume_state.get("best") if resume_state else None
    # Order matters. The epoch is logged (history.csv) and committed (last.keras, then
    # state.json) before the EMA swap: last.keras must hold the raw weights, with the
    # average in the optimizer. The best checkpoint and early stopping come after the
    # swap, so they see (and keep) the averaged weights that validation scored.
    callbacks = [epoch_timer(train_faces)]
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=config.monitor, mode=mode, factor=0.5,
                                                           patience=config.reduce_lr_patience, min_lr=1e-5))
    callbacks += [keras.callbacks.CSVLogger(str(run / "history.csv"), append=resume_state is not None),
                  _ResumeState.make(run, config.monitor, float((resume_state or {}).get("fit_seconds", 0.0)))()]
    if config.ema_momentum is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [
        atomic_model_checkpoint(run, config.monitor, mode, best),
        keras.callbacks.EarlyStopping(monitor=config.monitor, mode=mode, patience=config.patience,
                                      restore_best_weights=True),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run / "tensorboard")))
    if config.confusion_per_epoch:
        from faces_keras.training.callbacks import confusion_callbacks

        callbacks += confusion_callbacks(config.dataset, config.labels, run.path, append=resume_state is not None)
    return callbacks


def learning_rate(config: TrainConfig, train_faces: int, peak_factor: float = 1.0):
    """The optimizer's learning rate: a number (plateau schedule) or a Keras cosine schedule.

    Args:
        config: the run's settings (``model.learning_rate`` is the peak rate).
        train_faces: training faces per epoch, for the steps per epoch.
        peak_factor: scales the peak rate (fine-tuning after frozen epochs).

    Returns:
        A float, or a ``keras.optimizers.schedules.CosineDecay``.
    """
    import keras

    peak = config.model.learning_rate * peak_factor
    if config.schedule == "plateau":
        return peak
    steps = math.ceil(train_faces / config.batch_size)
    warmup = config.warmup_epochs * steps
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 100 if warmup else peak, decay_steps=max(1, config.epochs * steps - warmup),
        warmup_target=peak if warmup else None, warmup_steps=warmup)


def _started(run: RunDir) -> bool:
    """Whether the folder holds anything worth keeping: a finished model or a completed epoch."""
    return (run / MODEL).is_file() or (run.checkpoints / STATE).is_file()


def train(config: TrainConfig, run_dir: str | Path, *, overwrite: bool = False,
          callbacks: list | None = None) -> RunDir:
    """Train a model on a prepared dataset into a run directory.

    The run directory is locked for the whole run (one writer per folder). A
    folder left by a run that failed before completing an epoch is taken over;
    one that holds a model or a completed epoch needs ``overwrite`` (or
    :func:`resume`). If this call fails before an epoch completes, it removes
    the folder again, so a corrected rerun starts cleanly.

    Args:
        config: every setting of the run.
        run_dir: the run directory to create.
        overwrite: replace an existing run in ``run_dir``.
        callbacks: extra Keras callbacks for ``fit``.

    Returns:
        The finished :class:`RunDir`.

    Raises:
        RunError: ``run_dir`` holds a run and ``overwrite`` is false, or
            ``config.init_from`` is not a run or model whose backbone fits.
        DatasetError: ``config.dataset`` is not a whole prepared dataset, or
            one of its splits is empty.
        FolderLockedError: another process is writing ``run_dir``.
    """
    run = RunDir(run_dir)
    if config.init_from:
        config = _with_source_architecture(config)
    with folder_lock(run.path, "run directory"):
        if run.path.exists() and any(run.path.iterdir()):
            if _started(run) and not overwrite:
                raise RunError(f"{run.path} exists; use --resume to continue it or --overwrite to replace it")
            if not _started(run):
                log.info("%s: taking over the folder of a run that completed no epoch", run.path)
            shutil.rmtree(run.path)
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        try:
            return _fit(config, run, resume_state=None, extra_callbacks=callbacks)
        except BaseException:
            if not _started(run):
                shutil.rmtree(run.path, ignore_errors=True)
            raise


def _with_source_architecture(config: TrainConfig) -> TrainConfig:
    """A run directory given to init_from sets the architecture (its weights fit no other)."""
    from dataclasses import replace

    from faces_keras.training.transfer import check_source, source_architecture

    check_source(config.init_from)  # fail early, before the dataset loads
    architecture = source_architecture(config.init_from)
    if not architecture:
        return config
    changed = {k: v for k, v in architecture.items() if getattr(config.model, k) != v}
    if changed:
        log.info("architecture from %s: %s", config.init_from, changed)
    model = replace(config.model, **{k: tuple(v) if isinstance(v, list) else v for k, v in architecture.items()})
    return replace(config, model=model)


def resume(run_dir: str | Path) -> RunDir:
    """Continue a run from its last completed epoch (or finish it if training was done).

    Works from any point at which the run was killed: a damaged best checkpoint
    is discarded (with a warning) and the best of the remaining epochs kept,
    and a damaged last checkpoint restarts the run from the beginning.

    Args:
        run_dir: the run directory of an interrupted ``train``.

    Returns:
        The finished :class:`RunDir`.

    Raises:
        RunError: ``run_dir`` is not a run directory.
        FolderLockedError: another process is writing ``run_dir``.
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunError(f"{run.path}: no such run directory to resume")
    with folder_lock(run.path, "run directory"):
        if not (run / CONFIG).is_file():
            raise RunError(f"{run.path}: config.yaml missing, so this run cannot be resumed "
                           "(it failed before it started); run train DATASET --out again")
        config = TrainConfig.from_dict(run.read_config())
        state = _resume_state(run)
        return _fit(config, run, resume_state=state)


def _loads(path: Path) -> str | None:
    """None if the Keras model file at ``path`` loads, else why not."""
    try:
        load_keras_model(path)
    except RunError as exc:
        return str(exc)
    return None


def _resume_state(run: RunDir) -> dict | None:
    """The state to resume from, after checking the checkpoints it relies on."""
    state_path, last, best = run.checkpoints / STATE, run.checkpoints / LAST, run.checkpoints / BEST
    # Temporary files of a killed writer (this process holds the run's lock, so no live one has any).
    for folder in (run.path, run.checkpoints):
        for leftover in folder.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)
    state = None
    if state_path.is_file() and last.is_file():
        try:
            state = read_json(state_path)
        except ValueError:
            log.warning("%s is damaged; starting the run again from the first epoch", state_path)
        else:
            problem = _loads(last)
            if problem:
                log.warning("%s is damaged (%s); starting the run again from the first epoch", last, problem)
                state = None
    if state is None:
        log.info("%s: no completed epoch to resume from; starting from the beginning", run.path)
        for stale in (state_path, last, best, run.checkpoints / BEST_RECORD, run / "history.csv"):
            stale.unlink(missing_ok=True)
        return None
    # The value later epochs must beat is that of the best checkpoint on disk.
    state["best"] = None
    if best.is_file():
        problem = _loads(best)
        if problem:
            log.warning("%s is damaged (%s): discarded; the best of the epochs from here on is kept, "
                        "or the last good weights if none improves", best, problem)
            best.unlink()
            (run.checkpoints / BEST_RECORD).unlink(missing_ok=True)
        elif (run.checkpoints / BEST_RECORD).is_file():
            state["best"] = _best_value(run)
    _trim_history(run / "history.csv", int(state["epoch"]))
    return state


def _best_value(run: RunDir) -> float | None:
    """The monitored value of checkpoints/best.keras, from best.json (None if there is none)."""
    try:
        return read_json(run.checkpoints / BEST_RECORD).get("value")
    except (OSError, ValueError):
        return None


def _trim_history(path: Path, last_epoch: int) -> None:
    """Drop history rows after the resumed epoch (and a row cut off by a kill) before CSVLogger appends."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    if not lines:
        return
    kept = [lines[0]]
    width = lines[0].count(",")
    for line in lines[1:]:
        first = line.split(",", 1)[0]
        if first.isdigit() and int(first) <= last_epoch and line.count(",") == width:
            kept.append(line)
    atomic_write_text(path, "\n".join(kept) + "\n")


def _fit(config: TrainConfig, run: RunDir, resume_state: dict | None,
         extra_callbacks: list | None = None) -> RunDir:
    from faces_keras.backend import describe_device, set_precision, set_seed, use_distribution

    set_seed(config.seed)
    precision = set_precision(config.mixed_precision)
    use_distribution(config.distribute, config.batch_size)
    device = describe_device()
    log.info("training on %s (%s backend, %s, %s allocator)", device["device"], device["backend"], precision,
             device["allocator"])
    dataset = Dataset.load(config.dataset)
    data = TrainingData.load(dataset, config.labels, config.max_train, config.seed)
    schema = data.schema
    run.write_config({**config.to_dict(), **_backbone_record(config, run),
                      "environment": _environment(device, precision)})
    schema.dump(run / SCHEMA)
    write_json(run / MANIFEST, {**dataset.manifest, "path": str(dataset.path)})

    weights = class_balance_weights(data.targets["train"], data.heads) if config.class_weights == "balanced" else {}
    train_faces = len(data.x["train"])

    def compile_for(model, peak_factor: float = 1.0):
        compile_model(model, data.heads, learning_rate(config, train_faces, peak_factor), weights,
                      config.head_weights, label_smoothing=config.label_smoothing,
                      ema_momentum=config.ema_momentum, loss=config.loss, logit_tau=config.logit_tau,
                      priors=class_priors(data.targets["train"], data.heads))

    initial_epoch = 0
    if resume_state is not None:
        model = load_keras_model(run.checkpoints / LAST)
        initial_epoch = int(resume_state["epoch"]) + 1
        log.info("resuming %s at epoch %d of %d", run.path, initial_epoch + 1, config.epochs)
    else:
        if config.init_from:
            from faces_keras.training.transfer import build_transfer_model, set_backbone_trainable

            model = build_transfer_model(data.heads, data.x["train"].shape[1:], config.model, config.init_from)
            set_backbone_trainable(model, not config.freeze_epochs)
        else:
            model = build_model(data.heads, data.x["train"].shape[1:], config.model)
        compile_for(model)
    started = time.time()
    earlier_seconds = float((resume_state or {}).get("fit_seconds", 0.0))  # the sittings before a resume
    # Two phases with a frozen backbone (heads first, then everything at a lower rate);
    # one otherwise. A run resumed after the first phase unfreezes and recompiles here.
    phases = [(config.freeze_epochs, 1.0), (config.epochs, config.finetune_lr_factor)] \
        if config.freeze_epochs else [(config.epochs, 1.0)]
    for end_epoch, factor in phases:
        if initial_epoch >= end_epoch:
            continue
        if config.freeze_epochs and end_epoch == config.epochs:
            from faces_keras.training.transfer import set_backbone_trainable

            if set_backbone_trainable(model, True):
                log.info("epoch %d: backbone unfrozen, learning rate x%g", initial_epoch + 1, factor)
                compile_for(model, factor)
        # Faces stream from the memory-mapped images.npy a batch at a time; the
        # batches shuffle themselves (seeded per epoch, so a resumed run repeats them).
        model.fit(
            data.batches("train", config.batch_size, shuffle=True, seed=config.seed).start_at_epoch(initial_epoch),
            validation_data=data.batches("val", config.batch_size),
            epochs=end_epoch, initial_epoch=initial_epoch,
            callbacks=_callbacks(run, config, resume_state, train_faces) + list(extra_callbacks or []),
            verbose=config.verbose, shuffle=False,
        )
        initial_epoch = end_epoch
        # The next phase's callbacks continue this one's files and best value.
        resume_state = {"epoch": end_epoch - 1, "best": _best_value(run),
                        "fit_seconds": earlier_seconds + time.time() - started}
    train_seconds = earlier_seconds + time.time() - started
    best = run.checkpoints / BEST
    if best.is_file():
        model = load_keras_model(best)
    else:
        log.warning("%s: no best checkpoint; the model is the last good weights", run.path)
    with atomic_path(run / MODEL) as tmp:
        model.save(tmp)
    finish_run(run, model, data, config, train_seconds)
    return run


def _backbone_record(config: TrainConfig, run: RunDir) -> dict:
    """config.yaml's ``backbone`` entry: where an --init-from backbone came from (kept as is on resume)."""
    if not config.init_from:
        return {}
    if (run / CONFIG).is_file():
        earlier = run.read_config().get("backbone")
        if earlier:
            return {"backbone": earlier}
    from faces_keras.training.transfer import source_record

    return {"backbone": source_record(config.init_from)}


def _environment(device: dict, precision: str) -> dict:
    """What the run ran on, so a result can be traced to its machine and versions."""
    import platform

    import numpy

    from faces_keras import __version__

    return {**device, "precision": precision, "faces_keras": __version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "machine": platform.machine(), "cpus": os.cpu_count()}


def finish_run(run: RunDir, model, data: TrainingData, config: TrainConfig, train_seconds: float) -> None:
    """Predict val and test once, tune thresholds on val, write metrics, plots and the report.

    Args:
        run: the run directory.
        model: the trained Keras model.
        data: the run's arrays.
        config: the run's settings (threshold search, test-time flips).
        train_seconds: the training time, recorded in metrics.json.
    """
    from faces_keras.training.evaluate import tune_run_thresholds

    save_split_predictions(run, model, data, config)
    tune_run_thresholds(run, config.thresholds,
                        extra={"train_seconds": round(train_seconds, 1), "parameters": int(model.count_params()),
                               "train_faces": int(len(data.x["train"]))})


def save_split_predictions(run: RunDir, model, data: TrainingData, config: TrainConfig) -> None:
    """predictions.npz: the model's outputs and the true values on val and test.

    Args:
        run: the run directory.
        model: the trained Keras model.
        data: the run's arrays.
        config: the run's settings (``tta_flip``).
    """
    arrays: dict[str, np.ndarray] = {}
    for split in ("val", "test"):
        for head, probs in predict_heads(model, data.x[split], data.heads, tta_flip=config.tta_flip).items():
            arrays[f"{split}/{head}"] = probs
            arrays[f"{split}/{head}/true"] = data.targets[split][head]
        arrays[f"{split}/index"] = data.frames[split]["index"].to_numpy()
    run.save_predictions(arrays)


def repredict(run_dir: str | Path) -> RunDir:
    """Predict val and test again with the run's current model.keras (after it was replaced).

    Args:
        run_dir: a finished run directory whose dataset is still where it was.

    Returns:
        The :class:`RunDir`, with a new predictions.npz that matches model.keras.

    Raises:
        RunError: the run lacks its config or model.
        DatasetError: the run's dataset is no longer a whole prepared dataset.
        FolderLockedError: another process is writing ``run_dir``.
    """
    run = RunDir(run_dir)
    with folder_lock(run.path, "run directory"):
        config = TrainConfig.from_dict(run.read_config())
        data = TrainingData.load(Dataset.load(config.dataset), config.labels, config.max_train, config.seed)
        save_split_predictions(run, load_run_model(run), data, config)
    return run


__all__ = ["TrainConfig", "TrainingData", "predict_heads", "repredict", "resume", "train"]
