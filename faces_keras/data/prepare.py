"""``faces-keras prepare``: from photos and labels to a prepared dataset folder.

Steps, in this order (the order is the point):

1. read the labels through the schema;
2. get one face per label row: cut grid cells, read files, or detect and crop;
3. split by source face (stratified) — *before* any augmentation;
4. augment the training split only, each new face keeping its source id;
5. write the folder atomically with a manifest of where every face came from.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from faces_keras.data.grids import GridLayout, cut_grids
from faces_keras.data.images import center_crop, read_image, to_face
from faces_keras.data.split import SplitConfig, assign_splits
from faces_keras.data.store import FaceChunks, write_dataset
from faces_keras.errors import ConfigError, DatasetError, ImageError, LabelsError, OutputExistsError
from faces_keras.settings import setting, validate
from faces_keras.labels.schema import Schema
from faces_keras.labels.sources import load_labels

log = logging.getLogger(__name__)
IMAGE_MODES = ("grid", "files", "detect", "embedded")


@dataclass(frozen=True)
class PrepareConfig:
    """Every setting of a preparation, validated here and recorded in the manifest.

    Each field is declared once with :func:`faces_keras.settings.setting`; its
    ``help`` says what it means, its unit and its default (the ``prepare``
    command's flags come from those declarations).

    Raises:
        ConfigError: a field is out of range, ``augment`` names an unknown
            operation, or a grid layout is given only in part.
    """

    size: int = setting(64, at_least=8, at_most=512, help="face size in pixels (square)")
    gray: bool = setting(True, flag="--color", help="grayscale faces; --color keeps RGB colour")
    images: str | None = setting(None, choices=IMAGE_MODES,
                                 help="how faces are obtained (default: the schema's)")
    detector: str = setting("haar", help="face detector for --images detect: haar (OpenCV) or mtcnn "
                                         "(pip install faces-keras[mtcnn])")
    detect_max_side: int | None = setting(None, at_least=32, help="shrink photos to this longest side "
                                                                  "before detecting (speed)")
    margin: float = setting(0.2, at_least=0, at_most=1, help="margin around a detected face, fraction of its box")
    center_crop: float | None = setting(None, above=0, at_most=1,
                                        help="files: keep this central fraction of each image first")
    no_face: str = setting("skip", choices=("skip", "center"),
                           help="detect: skip an image without a face, or fall back to a center crop")
    box_examples: int = setting(24, at_least=0, help="detect: annotated copies written to boxes/ for checking by eye")
    augment: tuple[str, ...] = setting((), metavar="COMBINATIONS",
                                       help="offline augmentation of the training split, e.g. "
                                            "identity,zoom,blur,zoom+blur (the original's four) or 'original'")
    split: SplitConfig = setting(default_factory=SplitConfig, cli=False, help="the val/test split")
    limit: int | None = setting(None, at_least=1, help="use only the first N labelled faces")
    workers: int = setting(0, at_least=0, help="processes that read and crop photos (0: one per core)")
    cols: int | None = setting(None, at_least=1, help="grid layout: columns (instead of the file name)")
    rows: int | None = setting(None, at_least=1, help="grid layout: rows")
    cell: int | None = setting(None, at_least=1, help="grid layout: cell size in pixels")

    def __post_init__(self):
        if self.augment in ("original", ("original",)):
            from faces_keras.data.augment import ORIGINAL_COMBINATIONS

            object.__setattr__(self, "augment", tuple(ORIGINAL_COMBINATIONS))
        validate(self)
        if self.augment:
            from faces_keras.data.augment import parse_combinations

            parse_combinations(list(self.augment))  # raises naming an unknown operation
        layout = (self.cols, self.rows, self.cell)
        if any(v is not None for v in layout) and not all(v is not None for v in layout):
            raise ConfigError("a grid layout needs --cols, --rows and --cell together")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["augment"] = list(self.augment)
        return out


# -- faces from each kind of source -----------------------------------------------

def _grid_faces(photos: Path, labels: pd.DataFrame, config: PrepareConfig, labels_path: Path):
    layout = GridLayout(config.cols, config.rows, config.cell) if config.cols else None
    faces, origins = cut_grids(photos, layout, gray=config.gray)
    number_of = {str(o.number): i for i, o in enumerate(origins)}
    orphans = [fid for fid in labels["id"] if fid not in number_of]
    if orphans:
        raise LabelsError(
            f"{labels_path}: label row(s) for face(s) {orphans[:10]} that do not exist: "
            f"the photos in {photos} hold {len(origins)} faces"
        )
    unlabelled = sorted(set(number_of) - set(labels["id"]), key=int)
    if unlabelled:
        log.warning("%s: %d grid cell(s) have no label row and are left out: faces %s",
                    photos, len(unlabelled), ", ".join(unlabelled[:20]))
    index = [number_of[fid] for fid in labels["id"]]
    images = np.stack([to_face(faces[i], config.size, gray=config.gray) for i in index])
    origin = [f"{Path(origins[i].photo).name}:r{origins[i].row}c{origins[i].col}" for i in index]
    return images, labels.assign(origin=origin), []


_WORKER_DETECTOR = None


def _init_worker(detector_name: str, max_side: int | None = None) -> None:
    import cv2

    cv2.setNumThreads(1)
    global _WORKER_DETECTOR
    if detector_name:
        from faces_keras.data.detect import make_detector

        params = {"max_side": max_side} if (max_side and detector_name == "haar") else {}
        _WORKER_DETECTOR = make_detector(detector_name, **params)


def _load_one(task: tuple[str, str, PrepareConfig]):
    """Worker: one image file to ``(id, face or None, note, boxes found)``."""
    face_id, path, config = task
    try:
        if config.images == "detect":
            from faces_keras.data.detect import crop_face, pick_main_face

            bgr = np.ascontiguousarray(read_image(path, gray=False)[..., ::-1])
            boxes = _WORKER_DETECTOR.detect(bgr)
            found = [(b.x, b.y, b.w, b.h) for b in boxes]
            box = pick_main_face(boxes, bgr.shape)
            if box is None:
                if config.no_face == "skip":
                    return face_id, None, "no face detected", found
                rgb = bgr[..., ::-1]
                return face_id, to_face(center_crop(rgb), config.size, gray=config.gray), "no face: center crop", found
            crop = crop_face(bgr, box, margin=config.margin, size=config.size, gray=config.gray)
            note = f"{len(boxes)} face(s); box {box.x},{box.y},{box.w},{box.h}"
            return face_id, to_face(crop, config.size, gray=config.gray), note, found
        image = read_image(path, gray=config.gray)
        if config.center_crop:
            image = center_crop(image, config.center_crop)
        return face_id, to_face(image, config.size, gray=config.gray), "file", []
    except ImageError as exc:
        return face_id, None, str(exc), []


def _file_faces(labels: pd.DataFrame, config: PrepareConfig, scratch: Path):
    """Read (or detect) one face per label row, written to ``scratch/read.npy`` as they arrive.

    Faces are never all in memory: each is appended to the scratch file (a
    dropped image leaves a blank row there), and the rows kept are gathered
    from it a chunk at a time when the dataset is written.

    Returns:
        The scratch faces (memory-mapped), the kept label rows with their
        ``scratch_row``, the dropped images, and the detections table (or None).
    """
    from faces_keras.data.store import ImagesWriter

    tasks = [(fid, img, config) for fid, img in zip(labels["id"], labels["image"])]
    workers = config.workers or os.cpu_count() or 1
    detector = config.detector if config.images == "detect" else ""
    channels = 1 if config.gray else 3
    blank = np.zeros((config.size, config.size, channels), np.uint8)
    notes: dict[str, tuple] = {}  # id -> (kept, note, boxes found): no pixels
    writer = ImagesWriter(scratch / "read.npy", len(tasks), blank.shape)
    desc = "detect+crop" if detector else "read"

    def take(fid, face, note, found):
        writer.write((blank if face is None else face)[None])
        notes[fid] = (face is not None, note, found)

    try:
        if workers > 1 and len(tasks) > 200:
            with get_context("fork").Pool(workers, initializer=_init_worker,
                                          initargs=(detector, config.detect_max_side)) as pool:
                for result in tqdm(pool.imap(_load_one, tasks, chunksize=64), total=len(tasks),
                                   desc=desc, unit="face", leave=False, disable=None):
                    take(*result)
        else:
            _init_worker(detector, config.detect_max_side)
            for task in tqdm(tasks, desc=desc, unit="face", leave=False, disable=None):
                take(*_load_one(task))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    dropped = [{"id": fid, "reason": note} for fid, (kept, note, _) in notes.items() if not kept]
    kept_mask = np.array([notes[fid][0] for fid in labels["id"]], dtype=bool)
    keep = labels[kept_mask].copy()
    if keep.empty:
        raise DatasetError(f"no usable face among {len(labels)} images: first problem: {dropped[0]['reason']}")
    keep["scratch_row"] = np.flatnonzero(kept_mask)
    keep["origin"] = [f"{Path(img).name}" + ("" if config.images != "detect" else f" ({notes[fid][1]})")
                      for fid, img in zip(keep["id"], keep["image"])]
    detections = None
    if detector:
        detections = pd.DataFrame({
            "id": labels["id"], "file": labels["image"],
            "faces_found": [len(notes[fid][2]) for fid in labels["id"]],
            "boxes": [";".join(",".join(map(str, b)) for b in notes[fid][2]) for fid in labels["id"]],
            "kept": kept_mask,
        })
    images = np.load(scratch / "read.npy", mmap_mode="r")
    return images, keep, dropped, detections


def _write_detections(folder: Path, detections: pd.DataFrame, config: PrepareConfig) -> None:
    """detections.csv for every image, and annotated copies to check by eye in boxes/.

    boxes/ holds the first ``config.box_examples`` images and every image where
    the detector found no face or several (at most 200 of those).
    """
    from faces_keras.data.detect import Box, draw_boxes

    detections.to_csv(folder / "detections.csv", index=False)
    odd = detections[detections["faces_found"] != 1].head(200)
    chosen = pd.concat([detections.head(config.box_examples), odd]).drop_duplicates("id")
    if chosen.empty:
        return
    import cv2

    (folder / "boxes").mkdir()
    for row in chosen.itertuples():
        boxes = [Box(*map(int, b.split(","))) for b in row.boxes.split(";") if b]
        bgr = np.ascontiguousarray(read_image(row.file, gray=False)[..., ::-1])
        name = f"{row.faces_found}faces-{Path(row.file).stem}.jpg"
        cv2.imwrite(str(folder / "boxes" / name), draw_boxes(bgr, boxes))


# -- the whole preparation ----------------------------------------------------------

def prepare_dataset(schema: Schema, labels_source: str | Path, out_dir: str | Path, *,
                    photos: str | Path | None = None, config: PrepareConfig = PrepareConfig(),
                    overwrite: bool = False, strict: bool = False) -> Path:
    """Prepare a dataset folder from a labels source. See the module docstring for the steps.

    The output folder is locked from the start (one writer per folder), so a
    second ``prepare`` of the same folder is refused before it does any work.

    Args:
        schema: the dataset's format and labels (:func:`load_schema`).
        labels_source: the labels file or folder, in the schema's format
            (see :func:`load_labels`), naming each face's image or grid number
            and its labels.
        out_dir: the dataset folder to write (``images.npy``, ``faces.csv``,
            ``manifest.json``), atomically.
        photos: grid mode: the folder of grid photos; ``None`` (the default)
            uses the labels file's folder.
        config: how faces are obtained, sized, split and augmented
            (:class:`PrepareConfig`; its defaults: 64-pixel gray faces, the
            schema's image mode, a 64/16/20 split, no offline augmentation).
        overwrite: replace ``out_dir`` if it exists; otherwise an existing
            folder is refused.
        strict: for sources that skip known-malformed entries with a warning
            (UTKFace file names), refuse the first one instead.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``out_dir`` exists and ``overwrite`` is false.
        LabelsError: the labels source cannot be read or holds bad values.
        ImageError: an image the labels name is missing or unreadable, or a
            grid photo does not fit its layout.
        FolderLockedError: another process is writing ``out_dir``.
    """
    from faces_keras.locking import folder_lock

    with folder_lock(out_dir, "dataset folder"):
        if Path(out_dir).exists() and not overwrite:
            raise OutputExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
        out = Path(out_dir)
        # Under the lock no other prepare of this folder runs: scratch folders left are a dead one's.
        for stale in out.parent.glob(f".{out.name}.scratch-*"):
            shutil.rmtree(stale, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.scratch-{os.getpid()}-", dir=out.parent))
        try:
            return _prepare_dataset(schema, labels_source, out_dir, photos=photos, config=config,
                                    overwrite=overwrite, strict=strict, scratch=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _prepare_dataset(schema: Schema, labels_source: str | Path, out_dir: str | Path, *,
                     photos: str | Path | None, config: PrepareConfig, overwrite: bool, strict: bool,
                     scratch: Path) -> Path:
    mode = config.images or schema.options.get("images", "files")
    if mode == "embedded":
        mode = "files"  # read_image understands file.mat#index
    if config.center_crop is None and schema.options.get("center_crop"):
        config = replace(config, center_crop=float(schema.options["center_crop"]))
    if config.detect_max_side is None and schema.options.get("detect_max_side"):
        config = replace(config, detect_max_side=int(schema.options["detect_max_side"]))
    config = replace(config, images=mode)
    labels = load_labels(schema, labels_source, check_images=False, strict=strict)
    if config.limit:
        labels = labels.iloc[: config.limit].copy()
    if mode == "grid":
        photos = Path(photos) if photos else Path(labels_source).parent
        images, faces, dropped = _grid_faces(photos, labels, config, Path(labels_source))
        faces["scratch_row"] = np.arange(len(faces))
        detections = None
    else:
        missing = [img for img in labels["image"] if "#" not in img and not Path(img).is_file()]
        if missing:
            raise ImageError(f"{len(missing)} image file(s) named by {labels_source} do not exist: "
                             + ", ".join(missing[:5]))
        images, faces, dropped, detections = _file_faces(labels, config, scratch)
    if dropped:
        log.warning("%d face(s) left out (listed in the manifest): %s", len(dropped),
                    "; ".join(f"{d['id']}: {d['reason']}" for d in dropped[:10]))
    faces = faces.drop(columns=["image"]).assign(
        source_id=faces["id"], augmentation="identity",
        file=faces["image"].map(lambda p: str(p) if p else ""),
    )
    faces["split"] = assign_splits(faces, schema, config.split)
    faces = faces.reset_index(drop=True)
    if config.augment:
        chunks, faces = _augment_train(images, faces, config)
    else:
        chunks = FaceChunks.rows(images, faces["scratch_row"].to_numpy())
    columns = ["id", "source_id", "split", "augmentation", "origin", "file"] + \
        (["given_split"] if "given_split" in faces else []) + schema.label_names
    settings = {**config.to_dict(), "labels_source": str(labels_source),
                "photos": str(photos) if photos else None}
    extra: dict = {"dropped": dropped}
    writers = []
    if detections is not None:
        counts = detections["faces_found"]
        extra["detection"] = {"images": int(len(counts)), "one_face": int((counts == 1).sum()),
                              "no_face": int((counts == 0).sum()), "several": int((counts > 1).sum())}
        log.info(f"faces found: exactly one in {extra['detection']['one_face']} of {len(counts)} images, "
              f"none in {extra['detection']['no_face']}, several in {extra['detection']['several']} "
              "(detections.csv; annotated examples in boxes/)")
        writers.append(lambda folder: _write_detections(folder, detections, config))
    return write_dataset(out_dir, chunks, faces[columns], schema, settings, extra=extra,
                         overwrite=overwrite, writers=writers)


AUGMENT_CHUNK = 1024  # source faces augmented per step: memory stays flat, progress stays fine-grained


def _augment_train(images: np.ndarray, faces: pd.DataFrame, config: PrepareConfig):
    """Multiply the training split by the offline combinations; val and test stay as they are.

    The rows are planned here, the pixels made a chunk at a time while the
    dataset is written: every training face's combinations (in order), then
    the other faces.

    Returns:
        The :class:`~faces_keras.data.store.FaceChunks` to write and the rows.
    """
    from faces_keras.data.augment import augment_offline, combination_name, parse_combinations

    names = [combination_name(c) for c in parse_combinations(list(config.augment))]
    per_face = len(names)
    train = (faces["split"] == "train").to_numpy()
    train_rows = faces.loc[train, "scratch_row"].to_numpy()
    other_rows = faces.loc[~train, "scratch_row"].to_numpy()
    train_sources = faces.loc[train, "source_id"].to_numpy()

    aug_rows = faces[train].loc[np.repeat(np.flatnonzero(train), per_face)].reset_index(drop=True)
    aug_ops = np.array(names * int(train.sum()), dtype=str)
    aug_rows["augmentation"] = aug_ops
    aug_rows["id"] = [sid if op == "identity" else f"{sid}~{op}" for sid, op in zip(aug_rows["source_id"], aug_ops)]
    rows = pd.concat([aug_rows, faces[~train]], ignore_index=True)

    def chunks():
        bar = tqdm(total=len(train_rows), desc="augmenting", unit="face", disable=None)
        try:
            for start in range(0, len(train_rows), AUGMENT_CHUNK):
                part = slice(start, start + AUGMENT_CHUNK)
                out, _, _ = augment_offline(np.asarray(images[train_rows[part]]), train_sources[part],
                                            list(config.augment))
                bar.update(len(out) // per_face)
                yield out
        finally:
            bar.close()
        yield from FaceChunks.rows(images, other_rows).chunks()

    return FaceChunks(len(rows), tuple(images.shape[1:]), chunks), rows


__all__ = ["PrepareConfig", "prepare_dataset"]
