"""``faces-keras evaluate RUN DATA``: score a trained run on any labelled set.

DATA is either a prepared dataset folder (``faces-keras prepare``'s output) or
labelled photos: a labels source in a schema that maps to the run's (the
run's own schema unless ``--schema`` names another), with ``--labels FILE``
when DATA is the photos' folder (grid photos). Photos are prepared into a
temporary folder exactly as the run's training faces were (face size, gray or
colour, margin, detector), with no augmentation and every face in one split.

The set is scored with the run's own model (it includes its preprocessing),
its test-time augmentation setting and its tuned thresholds, read from
``thresholds.json`` and never changed. Each of the run's labels must exist in
the set with the same kind and values (classes may come in another order, a
binary label's two values may be swapped); otherwise the set is refused with
one line naming the label. Faces whose value of a label is missing (``-1`` /
``NaN``) are left out of that label's metrics, not guessed.

Everything is written to one folder (``<run>/evaluations/<data name>`` by
default), built under a temporary name and renamed into place, under that
folder's one-writer lock::

    evaluation.json   what was scored, with what (run, data, model checksum, thresholds, TTA)
    metrics.json      per label: binary scores at the run's thresholds, multi-class, regression
    metrics.md/.csv   the table of training's metrics.md (0.5 beside the run's thresholds)
    predictions.csv   one row per face: true value, probabilities, prediction per label
    predictions.npz   the same as arrays per head
    report_<name>.*   the green/red report of the set (faces_keras.reports.write_set_report: report
                      HTML, gallery PNG, per-face CSV, per-group tables, reliability; the
                      terminal text in report_<name>.txt); <name> is the split scored, or
                      ``all`` (report.html when only the test split is scored)

Nothing else in the run directory is touched.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from faces_keras.data.store import MANIFEST as DATASET_MANIFEST
from faces_keras.data.store import Dataset
from faces_keras.errors import DatasetError, RunError, SchemaError
from faces_keras.io import atomic_dir, atomic_write_text, to_jsonable, write_json
from faces_keras.labels.heads import Head, make_targets, plan_heads
from faces_keras.labels.schema import MISSING, Label, Schema, load_schema
from faces_keras.locking import folder_lock
from faces_keras.rundir import THRESHOLDS, RunDir
from faces_keras.settings import setting, validate

log = logging.getLogger(__name__)

SPLIT_CHOICES = ("train", "val", "test")
ALL = "all"  # the split name of every face of a set prepared here, and of the union of several splits
PREDICT_CHUNK = 1024  # faces per progress-bar step


# -- settings -----------------------------------------------------------------------


@dataclass
class EvaluateConfig:
    """Settings of ``faces-keras evaluate``.

    Attributes:
        out: the output folder; default ``<run>/evaluations/<data name>``
            (``<data name>-<split>`` when ``split`` picks splits).
        labels: with photos: the labels file, DATA being the photos' folder.
        schema: with photos: the labels' schema (a name in ``datasets/`` or a
            YAML file); default the run's own.
        split: the splits of a prepared dataset to score; empty: all of them.
        batch_size: faces per ``predict`` batch.
        tta_flip: average each face's prediction with its mirror image's;
            None: as the run was trained (its config.yaml).
    """

    out: str | None = setting(None, help="output folder (default: <run>/evaluations/<data name>)", metavar="DIR")
    labels: str | None = setting(None, help="labels file of the photos in DATA (DATA is then the photos' folder)",
                                 metavar="FILE")
    schema: str | None = setting(None, help="schema of the labels (a name in datasets/ or a YAML file; "
                                            "default: the run's own)", metavar="S")
    split: tuple[str, ...] = setting(default_factory=tuple, help="split(s) of a prepared dataset to score, "
                                     "comma-separated (default: all)", each_choices=SPLIT_CHOICES,
                                     metavar="SPLIT[,SPLIT]")
    batch_size: int = setting(256, help="faces per predict batch", at_least=1)
    tta_flip: bool | None = setting(None, help="average each face with its mirror image "
                                               "(default: as the run was trained)")

    def __post_init__(self):
        validate(self)


# -- the labelled set ------------------------------------------------------------------


@dataclass
class LabelledSet:
    """Faces to score or embed, with their labels in the set's own schema.

    Attributes:
        name: a short name for output folders (the dataset folder's name).
        source: what DATA was (a dataset folder, a labels file, a photos folder).
        schema: the set's schema.
        images: uint8 faces ``(N, size, size, C)``.
        faces: one row per face: ``id``, ``split`` and the set's encoded labels.
        prepared: whether the faces were prepared here from photos.
    """

    name: str
    source: Path
    schema: Schema
    images: np.ndarray
    faces: pd.DataFrame
    prepared: bool = False


def data_name(data: str | Path) -> str:
    """The name a set's output folder gets: a folder's own name, or a labels file's folder's."""
    path = Path(data).absolute()
    return path.name if path.is_dir() or not path.parent.name else path.parent.name


def is_prepared_dataset(path: str | Path) -> bool:
    return (Path(path) / DATASET_MANIFEST).is_file()


def set_schema(data: str | Path, run: RunDir, *, labels: str | None = None, schema: str | None = None) -> Schema:
    """The schema of DATA without reading its faces: the dataset's, ``schema``, or the run's."""
    if is_prepared_dataset(data):
        if labels or schema:
            raise DatasetError(f"{data} is a prepared dataset (it has {DATASET_MANIFEST}); --labels and "
                               "--schema are for photos and a labels file")
        from faces_keras.data.store import _read_manifest
        from faces_keras.labels.schema import schema_from_dict

        manifest = _read_manifest(Path(data) / DATASET_MANIFEST)
        return schema_from_dict(manifest["schema"], str(Path(data) / DATASET_MANIFEST))
    return load_schema(schema) if schema else run.schema()


def load_labelled_set(data: str | Path, run: RunDir, *, labels: str | None = None, schema: str | None = None,
                      splits: tuple[str, ...] = (), workers: int = 0) -> LabelledSet:
    """The faces of DATA: a prepared dataset, or photos prepared as the run's training faces were.

    Args:
        data: a prepared dataset folder; a labels source (file or folder) in
            ``schema``; or, with ``labels``, the photos' folder.
        run: the run whose face preparation (size, colour, margin, detector) photos follow.
        labels: the labels file when ``data`` is the photos' folder.
        schema: the labels' schema (default: the run's).
        splits: splits of a prepared dataset to keep (empty: all).
        workers: processes for reading and detecting faces (0: one per core).

    Returns:
        The :class:`LabelledSet`, original faces only (no augmented copies).

    Raises:
        DatasetError: DATA does not exist, or holds none of the splits asked for.
    """
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"{data}: not found; expected a prepared dataset folder, or photos and a labels file")
    if is_prepared_dataset(data):
        set_schema(data, run, labels=labels, schema=schema)  # refuses --labels/--schema with a dataset
        dataset = Dataset.load(data)
        faces = dataset.faces
        keep = (faces["augmentation"] == "identity").to_numpy().copy()
        if splits:
            present = sorted(set(faces["split"]))
            absent = [s for s in splits if s not in present]
            if absent:
                raise DatasetError(f"{data}: no {'/'.join(absent)} split; it has {', '.join(present)}")
            keep &= faces["split"].isin(splits).to_numpy()
        from faces_keras.data.stream import FaceRows

        # The faces stay memory-mapped: they are read a chunk at a time when predicted.
        return LabelledSet(data.name, data, dataset.schema, FaceRows(dataset.images, np.flatnonzero(keep)),
                           faces[keep].reset_index(drop=True), prepared=False)
    if splits:
        raise DatasetError(f"{data}: --split picks splits of a prepared dataset; photos are scored whole")
    the_schema = set_schema(data, run, labels=labels, schema=schema)
    labels_source = Path(labels) if labels else data
    photos = data if labels else None
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.data.split import SplitConfig

    settings = run.manifest().get("settings", {}) or {}
    keep_settings = {k: settings[k] for k in ("size", "gray", "margin", "detector") if settings.get(k) is not None}
    config = PrepareConfig(**keep_settings, split=SplitConfig(val=0.0, test=0.0), augment=(), workers=workers,
                           box_examples=0)
    with tempfile.TemporaryDirectory(prefix="faces-keras-evaluate-") as tmp:
        log.info("preparing %s as the run's faces were (%s)", labels_source, keep_settings)
        folder = prepare_dataset(the_schema, labels_source, Path(tmp) / "set", photos=photos, config=config)
        dataset = Dataset.load(folder)
    faces = dataset.faces.assign(split=ALL)
    return LabelledSet(data_name(labels_source if not labels else data), data, dataset.schema, dataset.images,
                       faces, prepared=True)


# -- mapping the set's labels onto the run's -------------------------------------------


def label_mapping(run_schema: Schema, data_schema: Schema, where: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """How each of the run's labels is read from the set's encoded columns.

    Args:
        run_schema: the labels the run predicts.
        data_schema: the labels the set has.
        where: the set, for messages.

    Returns:
        For each run label, a function from the set's encoded column to the
        run's encoding (binary values swapped, classes re-indexed where needed).

    Raises:
        SchemaError: one line naming the first label the set cannot give: absent,
            of another kind, with other values or classes the run does not know.
    """
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for label in run_schema.labels:
        if label.name not in data_schema.label_names:
            raise SchemaError(f"{where}: the run predicts {label.name!r}, but the set has no {label.name!r} label "
                              f"(it has {', '.join(data_schema.label_names)}); label it, or train a run without "
                              f"{label.name!r}")
        theirs = data_schema[label.name]
        out[label.name] = _map_label(label, theirs, where)
    return out


def _map_label(ours: Label, theirs: Label, where: str) -> Callable[[np.ndarray], np.ndarray]:
    if ours.kind != theirs.kind:
        raise SchemaError(f"{where}: label {ours.name!r} is {theirs.kind} in the set, {ours.kind} in the run")
    if ours.kind == "regression":
        return lambda column: np.asarray(column, dtype="float32")
    our_names, their_names = ours.value_names(), theirs.value_names()
    if ours.kind == "binary":
        if our_names == their_names:
            return lambda column: np.asarray(column, dtype="int16")
        if our_names == their_names[::-1]:
            return lambda column: np.where(np.asarray(column) == MISSING, MISSING,
                                           1 - np.asarray(column)).astype("int16")
        raise SchemaError(f"{where}: binary label {ours.name!r} has the values {their_names} in the set and "
                          f"{our_names} in the run; they must be the same two values")
    unknown = [c for c in their_names if c not in our_names]
    if unknown:
        raise SchemaError(f"{where}: label {ours.name!r} has class(es) {unknown} the run does not know "
                          f"(the run's classes are {our_names})")
    lookup = np.array([our_names.index(c) for c in their_names] + [MISSING], dtype="int16")
    return lambda column: lookup[np.where(np.asarray(column) == MISSING, len(their_names), np.asarray(column))]


def mapped_labels(faces: pd.DataFrame, mapping: dict[str, Callable[[np.ndarray], np.ndarray]]) -> pd.DataFrame:
    """``faces`` with each run label's column in the run's encoding."""
    out = faces[[c for c in ("index", "id", "split") if c in faces]].copy()
    for name, convert in mapping.items():
        out[name] = convert(faces[name].to_numpy())
    return out


# -- the run -------------------------------------------------------------------------


def run_tta(run: RunDir) -> bool:
    """Whether the run predicts with its mirror image averaged in (its config's ``tta_flip``)."""
    try:
        return bool((run.read_config() or {}).get("tta_flip", False))
    except RunError:
        return False


def run_thresholds(run: RunDir, schema: Schema):
    """The run's tuned thresholds (a ``ThresholdResult``), or None when it has no binary label.

    Raises:
        RunError: thresholds.json is missing, damaged, or lacks one of the run's binary labels.
    """
    if not schema.binary_labels:
        return None
    from faces_keras.thresholds import ThresholdResult

    path = run / THRESHOLDS
    if not path.is_file():
        raise RunError(f"{run.path}: {THRESHOLDS} is missing; run `faces-keras thresholds {run.path}` first "
                       "(evaluate scores with the run's own thresholds, never 0.5)")
    result = ThresholdResult.load(path)
    missing = [label.name for label in schema.binary_labels if label.name not in result.thresholds]
    if missing:
        raise RunError(f"{path}: no threshold for label(s) {missing}")
    return result


def check_input_shape(model, images: np.ndarray, where: str) -> None:
    expected = tuple(model.input_shape[1:])
    if tuple(images.shape[1:]) != expected:
        raise DatasetError(f"{where}: faces are {'x'.join(map(str, images.shape[1:]))}, the run's model takes "
                           f"{'x'.join(str(d) for d in expected)}; prepare the set with the run's --size and "
                           "--gray/--color")


def predict_in_chunks(model, images: np.ndarray, heads: list[Head], *, batch_size: int,
                      tta_flip: bool, desc: str = "evaluate") -> dict[str, np.ndarray]:
    """Each head's outputs for uint8 faces, in chunks behind a progress bar."""
    from tqdm.auto import tqdm

    from faces_keras.training.train import predict_heads

    parts: list[dict[str, np.ndarray]] = []
    for start in tqdm(range(0, len(images), PREDICT_CHUNK), desc=desc, unit="chunk", leave=False,
                      disable=True if len(images) <= PREDICT_CHUNK else None):
        chunk = images[start:start + PREDICT_CHUNK]  # uint8: predict_heads casts a batch at a time
        parts.append(predict_heads(model, chunk, heads, batch_size=batch_size, tta_flip=tta_flip))
    return {head.name: np.concatenate([p[head.name] for p in parts]) for head in heads}


# -- the result ---------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """What :func:`evaluate_run_on` scored and wrote.

    Attributes:
        out_dir: the evaluation folder.
        run: the run directory.
        data: what was scored.
        faces: how many faces were scored.
        table: the metrics table (one row per split and binary label, as in
            training's metrics.md).
        metrics: everything metrics.json holds.
        report: the green/red report's ``ReportResult``.
        files: name -> path of every file written.
    """

    out_dir: Path
    run: Path
    data: Path
    faces: int
    table: pd.DataFrame
    metrics: dict[str, Any]
    report: Any = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """The metrics as Markdown and where the files went, for the command line."""
        from faces_keras.tables import to_markdown

        lines = [f"{self.run} on {self.data}: {self.faces} faces"]
        if not self.table.empty:
            lines.append(to_markdown(self.table).rstrip())
        for name, head in self.metrics.get("heads", {}).items():
            if head["kind"] == "multiclass":
                for split, result in head["splits"].items():
                    lines.append(f"{name} ({split}): accuracy {result['accuracy']:.3f}, "
                                 f"macro F1 {result['macro_f1']:.3f} over {result['n']} faces")
            elif head["kind"] == "regression":
                for split, result in head["splits"].items():
                    lines.append(f"{name} ({split}): MAE {result['mae']:.3f}, RMSE {result['rmse']:.3f} "
                                 f"over {result['n']} faces")
        report_path = _report_path(self.report)
        lines.append(f"metrics: {self.out_dir / 'metrics.md'}")
        if report_path:
            lines.append(f"report: {report_path}")
        return "\n".join(lines)


def _report_path(report: Any) -> Path | None:
    return None if report is None else Path(report.html)


# -- evaluating -----------------------------------------------------------------------


def evaluate_run_on(run: RunDir | str | Path, data: str | Path,
                    config: EvaluateConfig | None = None) -> EvaluationResult:
    """Score a trained run on a labelled set with its own preprocessing and thresholds.

    Args:
        run: the run directory (model.keras, schema.yaml, thresholds.json).
        data: a prepared dataset folder, a labels source in ``config.schema``,
            or (with ``config.labels``) the photos' folder.
        config: the settings (output folder, splits, batch size, TTA).

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        SchemaError: the set lacks one of the run's labels, or has it with other
            values; the message names the label.
        RunError: the run is incomplete (no model, no thresholds).
        DatasetError: DATA is not found, or its faces do not fit the model.
        FolderLockedError: another process is writing the output folder.
    """
    config = config or EvaluateConfig()
    run = RunDir(run) if not isinstance(run, RunDir) else run
    run.require("model.keras", "schema.yaml")
    data = Path(data)
    run_schema = run.schema()
    thresholds = run_thresholds(run, run_schema)
    # Refuse a set that cannot map before any face is read or prepared.
    where = str(data)
    if data.exists():
        mapping = label_mapping(run_schema, set_schema(data, run, labels=config.labels, schema=config.schema),
                                where)
    labelled = load_labelled_set(data, run, labels=config.labels, schema=config.schema, splits=config.split)
    mapping = label_mapping(run_schema, labelled.schema, where)
    name = labelled.name + ("-" + "-".join(config.split) if config.split else "")
    out_dir = Path(config.out) if config.out else run.path / "evaluations" / name
    tta = run_tta(run) if config.tta_flip is None else bool(config.tta_flip)

    from faces_keras.models.saving import load_run_model

    model = load_run_model(run, compile=False)
    check_input_shape(model, labelled.images, where)
    heads = plan_heads(run_schema)
    frame = mapped_labels(labelled.faces, mapping)
    started = time.time()
    outputs = predict_in_chunks(model, labelled.images, heads, batch_size=config.batch_size, tta_flip=tta)
    seconds = time.time() - started
    targets = make_targets(frame, heads)
    groups = _split_groups(frame["split"].to_numpy())
    metrics, table, md = score_heads(run_schema, heads, outputs, targets, groups, thresholds)
    record = {
        "run": str(run.path.absolute()), "data": str(data.absolute()), "data_schema": labelled.schema.name,
        "prepared_from_photos": labelled.prepared, "faces": int(len(frame)),
        "splits": {name: int(mask.sum()) for name, mask in groups.items()},
        "model_sha256": run.model_checksum(), "tta_flip": tta,
        "thresholds": dict(thresholds.thresholds) if thresholds is not None else {},
        "thresholds_file": str((run / THRESHOLDS).absolute()) if thresholds is not None else None,
        "predict_seconds": round(seconds, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    metrics = {**record, **metrics}
    cut = f"binary labels cut at the run's thresholds ({run / THRESHOLDS})" if thresholds is not None else ""
    md = (f"# {run.path.name} on {labelled.name}\n\n{len(frame)} faces of {data}; "
          + ", ".join(p for p in (cut, f"test-time flip: {'yes' if tta else 'no'}") if p) + ".\n\n" + md)
    predictions = predictions_frame(run_schema, heads, frame, outputs, thresholds)
    report_name = next(iter(groups)) if len(groups) == 1 else ALL
    with folder_lock(out_dir, "evaluation folder"):
        with atomic_dir(out_dir, overwrite=True) as tmp:
            write_json(tmp / "evaluation.json", record)
            write_json(tmp / "metrics.json", metrics)
            atomic_write_text(tmp / "metrics.csv", table.to_csv(index=False))
            atomic_write_text(tmp / "metrics.md", md)
            atomic_write_text(tmp / "predictions.csv", predictions.to_csv(index=False))
            with open(tmp / "predictions.npz", "wb") as handle:
                np.savez_compressed(handle, id=frame["id"].to_numpy().astype(str),
                                    split=frame["split"].to_numpy().astype(str),
                                    **{head.name: outputs[head.name] for head in heads},
                                    **{f"{head.name}/true": targets[head.name] for head in heads})
            report = _write_report(
                tmp, run_schema, frame, labelled.images, outputs, thresholds,
                title=f"{run.path.name} on {labelled.name}", name=report_name,
                facts={"run": str(run.path), "data": str(data), "test-time flip": "yes" if tta else "no"},
                thresholds_from=f"{run / THRESHOLDS}" if thresholds is not None else None)
        files = {p.name: out_dir / p.name for p in sorted(out_dir.iterdir())}
    report = _relocate(report, tmp, out_dir)
    log.info("evaluated %s on %s: %d faces -> %s", run.path, data, len(frame), out_dir)
    return EvaluationResult(out_dir, run.path, data, int(len(frame)), table, metrics, report, files)


def _split_groups(splits: np.ndarray) -> dict[str, np.ndarray]:
    """One mask per split present, and ``all`` over them when there are several."""
    names = list(dict.fromkeys(splits.tolist()))
    groups = {name: splits == name for name in names}
    if len(names) > 1:
        groups[ALL] = np.ones(len(splits), dtype=bool)
    return groups


def score_heads(schema: Schema, heads: list[Head], outputs: dict[str, np.ndarray],
                targets: dict[str, np.ndarray], groups: dict[str, np.ndarray],
                thresholds) -> tuple[dict[str, Any], pd.DataFrame, str]:
    """Metrics per head and group of faces, with the functions training's metrics use.

    Args:
        schema: the run's schema.
        heads: the run's heads.
        outputs: each head's probabilities (or values).
        targets: each head's true values in the run's encoding (missing -1 / NaN).
        groups: name -> mask of the faces to score together (a split, or all).
        thresholds: the run's ``ThresholdResult`` (None without binary labels).

    Returns:
        ``(metrics, table, markdown)``: metrics.json's ``heads``; the binary
        labels' table (0.5 beside the run's thresholds, as in training's
        metrics.md); metrics.md's text with the multi-class and regression tables.
    """
    from faces_keras.reports.metrics import (before_after_table, binary_metrics, multiclass_metrics,
                                             regression_metrics)
    from faces_keras.tables import to_markdown

    heads_out: dict[str, Any] = {}
    binary_tables, multiclass_rows, regression_rows, class_tables = [], [], [], []
    for head in heads:
        y_true, y_out = targets[head.name], outputs[head.name]
        if head.kind == "binary":
            names = list(head.labels)
            out: dict[str, Any] = {"kind": "binary", "thresholds": {n: thresholds.thresholds[n] for n in names},
                                   "splits": {}}
            for group, mask in groups.items():
                truth = y_true[mask].astype(int)
                table = binary_metrics(truth, y_out[mask], names, thresholds)
                out["splits"][group] = table.to_dict(orient="records")
                binary_tables.append(before_after_table(truth, y_out[mask], names, thresholds, group))
        elif head.kind == "multiclass":
            label = schema[head.labels[0]]
            out = {"kind": "multiclass", "note": "arg-max over classes, no threshold", "splits": {}}
            for group, mask in groups.items():
                result = multiclass_metrics(y_true[mask].astype(int), y_out[mask], list(label.classes))
                out["splits"][group] = to_jsonable(result)
                multiclass_rows.append({"split": group, "label": label.name, "n": result["n"],
                                        "accuracy": result["accuracy"], "macro_f1": result["macro_f1"]})
                class_tables.append((f"{label.name} ({group})", result["per_class"]))
        else:
            out = {"kind": "regression", "splits": {}}
            for group, mask in groups.items():
                result = regression_metrics(y_true[mask][:, 0], y_out[mask][:, 0])
                out["splits"][group] = to_jsonable(result)
                regression_rows.append({"split": group, "label": head.name, **result})
        heads_out[head.name] = out
    table = pd.concat(binary_tables, ignore_index=True) if binary_tables else pd.DataFrame()
    sections = []
    if binary_tables:
        sections.append("## Binary labels (at 0.5 and at the run's thresholds)\n\n" + to_markdown(table))
    if multiclass_rows:
        sections.append("## Multi-class labels (arg-max)\n\n" + to_markdown(pd.DataFrame(multiclass_rows)))
        for title, per_class in class_tables:
            sections.append(f"### {title}\n\n" + to_markdown(per_class))
    if regression_rows:
        frame = pd.DataFrame(regression_rows)[["split", "label", "n", "mae", "rmse"]]
        sections.append("## Regression labels\n\n" + to_markdown(frame))
    return {"heads": heads_out}, table, "\n".join(sections)


def predictions_frame(schema: Schema, heads: list[Head], frame: pd.DataFrame, outputs: dict[str, np.ndarray],
                      thresholds) -> pd.DataFrame:
    """One row per face: id, split, and per label its true value (encoded), outputs and prediction.

    Binary: ``<label>`` (1, 0, -1 missing), ``<label>_prob``, ``<label>_pred``
    at the run's threshold. Multi-class: ``<label>``, ``<label>_prob_<class>``
    per class, ``<label>_pred`` (arg-max). Regression: ``<label>`` (NaN
    missing), ``<label>_pred``.
    """
    out = pd.DataFrame({"id": frame["id"].to_numpy(), "split": frame["split"].to_numpy()})
    for head in heads:
        values = outputs[head.name]
        if head.kind == "binary":
            for j, name in enumerate(head.labels):
                out[name] = frame[name].to_numpy().astype(int)
                out[f"{name}_prob"] = values[:, j].astype(float)
                out[f"{name}_pred"] = (values[:, j] >= thresholds.thresholds[name]).astype(int)
        elif head.kind == "multiclass":
            label = schema[head.name]
            out[head.name] = frame[head.name].to_numpy().astype(int)
            for k, cls in enumerate(label.classes):
                out[f"{head.name}_prob_{cls}"] = values[:, k].astype(float)
            out[f"{head.name}_pred"] = np.argmax(values, axis=1)
        else:
            out[head.name] = frame[head.name].to_numpy().astype(float)
            out[f"{head.name}_pred"] = values[:, 0].astype(float)
    return out


def _write_report(folder: Path, schema: Schema, frame: pd.DataFrame, images: np.ndarray,
                  outputs: dict[str, np.ndarray], thresholds, *, title: str, name: str,
                  facts: dict[str, str], thresholds_from: str | None):
    """The green/red report of the set (HTML, gallery, CSV, per-group tables, terminal text) in ``folder``."""
    from faces_keras.locking import lock_paths
    from faces_keras.reports import ReportConfig, write_set_report

    try:
        report = write_set_report(folder, schema=schema, faces=frame, images=images, probabilities=outputs,
                                  thresholds=dict(thresholds.thresholds) if thresholds is not None else {},
                                  config=ReportConfig(), title=title, name=name, thresholds_from=thresholds_from,
                                  facts=facts)
    finally:
        # The report locks the folder it writes: here the build's unique temporary name, whose
        # lock file would be left beside the finished folder. Nobody else can hold that lock.
        lock_paths(folder)[0].unlink(missing_ok=True)
    atomic_write_text(folder / f"report_{name}.txt", report.terminal_plain)
    return report


def _relocate(report: Any, built: Path, final: Path) -> Any:
    """The report's result with its paths in the temporary build folder moved to the final folder."""
    if report is None or not hasattr(report, "__dataclass_fields__"):
        return report
    changes = {}
    for key in report.__dataclass_fields__:
        value = getattr(report, key)
        if isinstance(value, Path) and (value == built or built in value.parents):
            changes[key] = final / value.relative_to(built)
    return replace(report, **changes) if changes else report


__all__ = ["EvaluateConfig", "EvaluationResult", "LabelledSet", "evaluate_run_on", "label_mapping",
           "load_labelled_set", "score_heads"]
