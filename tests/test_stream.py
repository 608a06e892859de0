"""Datasets larger than memory: images.npy written and hashed in chunks, read memory-mapped, fed a batch at a time."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from faces_keras.data.prepare import PrepareConfig, prepare_dataset
from faces_keras.data.store import Dataset, FaceChunks, ImagesWriter, checksum
from faces_keras.errors import DatasetError
from faces_keras.labels import load_schema


def test_checksum_in_chunks_is_the_digest_of_all_bytes():
    images = np.random.default_rng(0).integers(0, 256, (301, 9, 9, 1), dtype=np.uint8)
    whole = hashlib.sha256(images.tobytes()).hexdigest()[:16]
    assert checksum(images, chunk_bytes=1000) == whole  # 12 rows a chunk, a short last one
    assert checksum(images) == whole


def test_images_writer_writes_a_loadable_npy_and_refuses_a_wrong_count(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    writer = ImagesWriter(tmp_path / "images.npy", 50, (8, 8, 3))
    for start in range(0, 50, 7):
        writer.write(images[start:start + 7])
    assert writer.close() == checksum(images)
    assert np.array_equal(np.load(tmp_path / "images.npy"), images)

    short = ImagesWriter(tmp_path / "short.npy", 50, (8, 8, 3))
    short.write(images[:10])
    with pytest.raises(DatasetError, match=r"short\.npy: 10 faces written, 50 declared"):
        short.close()
    wrong = ImagesWriter(tmp_path / "wrong.npy", 5, (8, 8, 3))
    with pytest.raises(DatasetError, match=r"wrong\.npy: expected uint8 faces of shape \(8, 8, 3\)"):
        wrong.write(images[:2, :4])
    wrong.abort()


def test_face_chunks_gather_rows_in_the_asked_order():
    images = np.arange(40, dtype=np.uint8).reshape(10, 2, 2, 1)
    order = np.array([9, 0, 5, 5, 2])
    gathered = np.concatenate(list(FaceChunks.rows(images, order).chunks()))
    assert np.array_equal(gathered, images[order])


def test_prepared_augmented_dataset_is_memory_mapped_and_matches_each_source_face(tmp_path, data_dir):
    from faces_keras.data.augment import apply_combination, parse_combinations

    # 250 real faces, read by a pool of two (the path prepare takes above 200 images).
    out = prepare_dataset(load_schema("utkface"), data_dir / "utkface" / "crop_part1", tmp_path / "utk",
                          config=PrepareConfig(size=32, limit=250, workers=2, augment=("identity", "flip", "blur")))
    data = Dataset.load(out)
    assert isinstance(data.images, np.memmap) and not data.images.flags.writeable
    assert data.manifest["images_sha256"] == hashlib.sha256(np.asarray(data.images).tobytes()).hexdigest()[:16]
    faces = data.faces
    train = faces[faces["split"] == "train"]
    assert len(train) == 3 * train["source_id"].nunique()
    identity = {row.source_id: int(row.index) for row in train.itertuples() if row.augmentation == "identity"}
    for row in train[train["augmentation"] != "identity"].head(40).itertuples():
        (combination,) = parse_combinations([row.augmentation])
        expected = apply_combination(np.asarray(data.images[identity[row.source_id]]), combination, None)
        assert np.array_equal(data.images[int(row.index)], expected), row.id
    # Val and test faces are the source faces, read from their files as a plain prepare reads them.
    plain = Dataset.load(prepare_dataset(load_schema("utkface"), data_dir / "utkface" / "crop_part1",
                                         tmp_path / "plain", config=PrepareConfig(size=32, limit=250, workers=1)))
    held = faces[faces["split"] != "train"]
    by_id = dict(zip(plain.faces["id"], plain.faces["index"]))
    for row in held.itertuples():
        assert np.array_equal(data.images[int(row.index)], plain.images[by_id[row.id]]), row.id
    # No scratch folder is left beside the datasets.
    assert not [p for p in tmp_path.iterdir() if ".scratch-" in p.name]


def test_dropped_image_leaves_no_row_and_a_stale_scratch_folder_is_removed(tmp_path, data_dir):
    source = sorted((data_dir / "utkface" / "crop_part1").glob("*.jpg"))[:12]
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in source:
        shutil.copy(path, folder / path.name)
    (folder / source[3].name).write_bytes(b"not a jpeg")  # still a valid UTKFace name
    stale = tmp_path / ".utk.scratch-1-dead"
    stale.mkdir()
    (stale / "read.npy").write_bytes(b"left by a killed prepare")
    data = Dataset.load(prepare_dataset(load_schema("utkface"), folder, tmp_path / "utk",
                                        config=PrepareConfig(size=24, workers=1)))
    assert len(data.faces) == 11 and source[3].stem not in set(data.faces["id"])
    assert [d["id"] for d in data.manifest["dropped"]] == [source[3].name.split(".")[0]]
    assert not stale.exists()


def test_face_batches_shuffle_each_epoch_reproducibly_and_resume_at_an_epoch():
    from faces_keras.data.stream import FaceBatches, FaceRows

    images = np.arange(23, dtype=np.uint8).reshape(23, 1, 1, 1).repeat(2, axis=1).repeat(2, axis=2)
    rows = FaceRows(images, np.arange(3, 23))  # 20 faces, rows 3..22
    targets = np.arange(3, 23, dtype=np.float32)[:, None]  # each face's target is its row number

    def epoch(batches):
        seen = []
        for i in range(len(batches)):
            x, y = batches[i]
            assert x.dtype == np.float32 and np.array_equal(x[:, 0, 0, 0], y[:, 0])  # faces and targets aligned
            seen += list(y[:, 0])
        batches.on_epoch_end()
        return seen

    batches = FaceBatches(rows, targets, batch_size=6, shuffle=True, seed=4)
    assert len(batches) == 4
    first, second, third = epoch(batches), epoch(batches), epoch(batches)
    assert sorted(first) == sorted(second) == list(range(3, 23))  # every face once per epoch
    assert first != second
    assert epoch(FaceBatches(rows, targets, batch_size=6, shuffle=True, seed=4)) == first
    assert epoch(FaceBatches(rows, targets, batch_size=6, shuffle=True, seed=4).start_at_epoch(2)) == third
    ordered = FaceBatches(rows, targets, batch_size=6)
    assert epoch(ordered) == list(range(3, 23))
    (flipped,) = FaceBatches(FaceRows(np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1), [0]), flip=True)[0]
    assert list(flipped[0, 0, :, 0]) == [3, 2, 1, 0]


def test_face_rows_index_like_the_array_they_select():
    from faces_keras.data.stream import FaceRows

    images = np.random.default_rng(2).integers(0, 256, (30, 3, 3, 1), dtype=np.uint8)
    rows = np.array([29, 4, 17, 8, 0])
    view = FaceRows(images, rows)
    assert view.shape == (5, 3, 3, 1) and len(view) == 5
    assert np.array_equal(np.asarray(view), images[rows])
    assert np.array_equal(view[1:4], images[rows[1:4]])
    assert np.array_equal(view[np.array([4, 0])], images[rows[[4, 0]]])
    assert np.array_equal(view.take([2, 3])[:], images[rows[[2, 3]]])


@pytest.mark.backend_subset
def test_streamed_training_feeds_the_same_batches_as_arrays(grids_dataset):
    """One epoch over FaceBatches and one over the float32 arrays, from the same weights, end equal."""
    import keras

    from faces_keras.data.stream import FaceBatches
    from faces_keras.models.presets import build_model, compile_model
    from faces_keras.training.train import TrainingData
    from tests.conftest import tiny_model

    data = TrainingData.load(Dataset.load(grids_dataset), ("sex",))
    keras.utils.set_random_seed(0)
    model = build_model(data.heads, data.x["train"].shape[1:], tiny_model(dropout=0.0))
    initial = [w.copy() for w in model.get_weights()]
    trained = []
    for feed in ("stream", "arrays"):
        model.set_weights(initial)
        compile_model(model, data.heads, 1e-3)
        y = data.targets["train"][data.heads[0].name]
        if feed == "stream":
            model.fit(FaceBatches(data.x["train"], y, batch_size=32), epochs=1, shuffle=False, verbose=0)
        else:
            model.fit(np.asarray(data.x["train"], dtype="float32"), y, batch_size=32, epochs=1, shuffle=False,
                      verbose=0)
        trained.append(model.get_weights())
    moved = max(float(np.abs(a - b).max()) for a, b in zip(trained[0], initial))
    assert moved > 1e-4  # it trained
    for a, b in zip(*trained):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_face_chunks_gather_across_parts_in_the_asked_order():
    parts = [np.arange(n, dtype=np.uint8).reshape(-1, 1, 1, 1) + base for n, base in ((5, 0), (3, 100), (4, 200))]
    order = np.random.default_rng(3).permutation(12)
    gathered = np.concatenate(list(FaceChunks.rows_of(parts, order).chunks()))
    assert np.array_equal(gathered, np.concatenate(parts)[order])


def _rss_file_kb() -> int:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status (not Linux)")


def test_released_pages_of_a_memory_mapped_file_leave_resident_memory_and_read_back_the_same(tmp_path):
    from faces_keras.data.store import release_pages

    images = np.random.default_rng(5).integers(0, 256, (8192, 64, 64, 1), dtype=np.uint8)  # 32 MiB
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    before = _rss_file_kb()
    assert int(np.asarray(mapped).sum(dtype=np.int64)) == int(images.sum(dtype=np.int64))  # touch every page
    touched = _rss_file_kb()
    assert touched - before > 24 * 1024  # the pages read count as resident...
    assert release_pages(mapped[100:200])  # (a view finds its memory map)
    assert touched - _rss_file_kb() > 24 * 1024  # ...until released
    assert np.array_equal(mapped[4000:4100], images[4000:4100])  # and read back from the page cache
    assert not release_pages(images)  # an array in memory is left alone
