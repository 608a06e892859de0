"""Grid cutting, splitting by source, offline augmentation and the dataset store, on real faces."""

from __future__ import annotations

import shutil

import cv2
import pandas as pd
import numpy as np
import pytest

from faces_keras.data.grids import cut_grids, layout_from_name, list_grid_photos
from faces_keras.data.prepare import PrepareConfig, prepare_dataset
from faces_keras.data.split import SplitConfig
from faces_keras.data.store import Dataset
from faces_keras.errors import DatasetError, ImageError, LabelsError
from faces_keras.labels import load_schema


def test_grid_numbering_first_and_last_face(data_dir):
    photos = list_grid_photos(data_dir / "grids")
    assert [p.name.split("-")[0] for p in photos] == ["faces1", "faces2", "faces3", "faces4"]
    faces, origins = cut_grids(data_dir / "grids")
    assert len(faces) == 458 and origins[-1].number == 458
    first = cv2.imread(str(photos[0]))[:64, :64, ::-1]
    assert np.array_equal(faces[0], first)  # face 1: top-left cell of the first photo
    last = cv2.imread(str(photos[-1]))[-64:, -64:, ::-1]
    assert np.array_equal(faces[457], last)  # face 458: bottom-right cell of the last photo
    assert (origins[0].row, origins[0].col) == (0, 0)
    layout = layout_from_name(photos[-1])
    assert (origins[-1].row, origins[-1].col) == (layout.rows - 1, layout.cols - 1)


def test_grid_photo_of_wrong_size_names_file_and_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "faces1-2x2-128x128.png"), np.zeros((120, 128, 3), np.uint8))
    with pytest.raises(ImageError, match=r"faces1-2x2-128x128\.png: the photo is 128x120 but a 2x2 grid .* needs 128x128"):
        cut_grids(tmp_path)


def test_corrupt_grid_photo_names_file(tmp_path):
    (tmp_path / "faces1-2x2-128x128.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match=r"faces1-2x2-128x128\.png: not a readable image"):
        cut_grids(tmp_path)


def test_label_row_for_missing_face_names_labels_file(tmp_path, data_dir):
    # the only photo is face photo 1 (photos are numbered without gaps)
    shutil.copy(data_dir / "grids" / "faces3-8x8-512x512.png", tmp_path / "faces1-8x8-512x512.png")
    rows = "\n".join(f"{i};F;N;N;N;Y" for i in range(1, 66))  # 65 rows, the photo holds 64
    (tmp_path / "labels.csv").write_text("face_nr;sex;glasses;hat;beard;smile\n" + rows + "\n")
    with pytest.raises(LabelsError, match=r"labels\.csv: label row\(s\) for face\(s\) \['65'\] that do not exist"):
        prepare_dataset(load_schema("grids"), tmp_path / "labels.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_split_by_source_is_disjoint_stratified_and_reproducible(grids_dataset):
    data = Dataset.load(grids_dataset)
    by_split = data.faces.groupby("split")["source_id"].apply(set)
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])
    counts = data.faces["split"].value_counts()
    assert abs(counts["test"] / 458 - 0.20) < 0.02 and abs(counts["val"] / 458 - 0.16) < 0.02
    for label in ("hat", "glasses"):  # rare labels reach every split
        assert (data.faces.groupby("split")[label].sum() > 0).all(), label


def test_augmentation_touches_train_only(tmp_path, data_dir, grids_dataset):
    config = PrepareConfig(augment=("identity", "zoom", "blur", "zoom+blur"))
    out = prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", tmp_path / "aug",
                          config=config)
    aug, plain = Dataset.load(out), Dataset.load(grids_dataset)
    for split in ("val", "test"):
        a_img, a_rows = aug.split(split)
        p_img, p_rows = plain.split(split)
        assert (a_rows["augmentation"] == "identity").all()
        assert np.array_equal(a_img, p_img) and a_rows["id"].tolist() == p_rows["id"].tolist()
    train = aug.faces[aug.faces["split"] == "train"]
    assert len(train) == 4 * (plain.faces["split"] == "train").sum()
    assert train.groupby("source_id")["augmentation"].nunique().eq(4).all()
    # every augmented face keeps its source's labels and split
    merged = train.merge(plain.faces, on="source_id", suffixes=("", "_src"))
    assert (merged["hat"] == merged["hat_src"]).all() and (merged["split_src"] == "train").all()


def test_store_detects_tampering_and_incomplete_folders(tmp_path, grids_dataset):
    copy = tmp_path / "copy"
    shutil.copytree(grids_dataset, copy)
    images = np.load(copy / "images.npy")
    images[0, 0, 0, 0] ^= 1
    np.save(copy / "images.npy", images)
    with pytest.raises(DatasetError, match="does not match the checksum"):
        Dataset.load(copy)
    (copy / "faces.csv").unlink()
    with pytest.raises(DatasetError, match=r"faces\.csv is missing"):
        Dataset.load(copy)


def test_interrupted_prepare_leaves_no_dataset(tmp_path, data_dir, monkeypatch):
    import faces_keras.data.store as store

    def interrupted(*args, **kwargs):  # images.npy and faces.csv are written by now
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", tmp_path / "ds")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_atomic_dir_leaves_only_partial_on_interrupt(tmp_path):
    from faces_keras.io import atomic_dir

    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "ds") as tmp:
            (tmp / "images.npy").write_bytes(b"half")
            raise KeyboardInterrupt
    assert not (tmp_path / "ds").exists()
    assert not any(p.name.startswith(".ds") and not p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_prepare_files_color_and_size(tmp_path, data_dir):
    out = prepare_dataset(load_schema("utkface"), data_dir / "utkface" / "crop_part1", tmp_path / "utk",
                          config=PrepareConfig(size=48, gray=False, limit=60, workers=1))
    data = Dataset.load(out)
    assert data.images.shape == (60, 48, 48, 3) and data.images.dtype == np.uint8
    original = cv2.imread(data.faces.loc[0, "file"])[..., ::-1]
    expected = cv2.resize(original, (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(data.images[0].astype(int) - expected).max() <= 1


def test_prepare_fer_keeps_given_test_split(tmp_path, data_dir):
    # a small folder-per-class copy: 4 classes present, train and test folders
    root = tmp_path / "fer"
    for split, n in (("train", 12), ("test", 4)):
        for emotion in ("angry", "happy", "sad", "surprise"):
            (root / split / emotion).mkdir(parents=True)
            for src in sorted((data_dir / "fer2013" / split / emotion).iterdir())[:n]:
                shutil.copy(src, root / split / emotion)
    out = prepare_dataset(load_schema("fer2013"), root, tmp_path / "ds",
                          config=PrepareConfig(size=48, split=SplitConfig(val=0.2, test=0.2)))
    faces = Dataset.load(out).faces
    assert (faces.loc[faces["given_split"] == "test", "split"] == "test").all()
    assert set(faces.loc[faces["given_split"] == "train", "split"]) == {"train", "val"}


def test_prepare_config_validation():
    with pytest.raises(ValueError, match="size=4"):
        PrepareConfig(size=4)
    with pytest.raises(ValueError, match="--cols, --rows and --cell"):
        PrepareConfig(cols=3)
    with pytest.raises(ValueError, match=r"val=0.5 \(--val\) \+ test=0.5"):
        SplitConfig(val=0.5, test=0.5)


def test_detect_and_crop_reports_faces_found_and_draws_boxes(tmp_path, data_dir):
    # 40 loosely cropped CelebA images plus the group photo (6 faces) as an odd one out
    names = (data_dir / "celeba" / "list_attr_celeba.txt").read_text().splitlines()
    (tmp_path / "img_celeba").mkdir()
    rows = names[2:42]
    for line in rows:
        shutil.copy(data_dir / "celeba" / "img_celeba" / line.split()[0], tmp_path / "img_celeba")
    shutil.copy(data_dir / "photos" / "group-6-faces.jpg", tmp_path / "img_celeba" / "group.jpg")
    rows.append("group.jpg " + " ".join(rows[0].split()[1:]))
    (tmp_path / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{names[1]}\n" + "\n".join(rows) + "\n")
    out = prepare_dataset(load_schema("celeba"), tmp_path / "list_attr_celeba.txt", tmp_path / "ds",
                          config=PrepareConfig(box_examples=3, workers=1, detect_max_side=640))
    data = Dataset.load(out)
    detections = pd.read_csv(out / "detections.csv", dtype={"id": str})
    assert len(detections) == 41
    group = detections[detections["id"] == "group"].iloc[0]
    assert group["faces_found"] == 6 and len(group["boxes"].split(";")) == 6
    summary = data.manifest["detection"]
    assert summary["images"] == 41 and summary["several"] >= 1
    assert summary["one_face"] == int((detections["faces_found"] == 1).sum())
    drawn = sorted(p.name for p in (out / "boxes").iterdir())
    assert "6faces-group.jpg" in drawn and len(drawn) >= 4
    kept = detections[detections["kept"]]
    assert len(data.faces) == len(kept) and data.images.shape[1:] == (64, 64, 1)


def test_split_of_originals_only(tmp_path, data_dir):
    out = prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", tmp_path / "aug",
                          config=PrepareConfig(augment=("identity", "flip")))
    data = Dataset.load(out)
    images, rows = data.split("train", augmented=False)
    assert (rows["augmentation"] == "identity").all() and len(rows) * 2 == len(data.split("train")[1])
