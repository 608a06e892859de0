"""The synthetic grid photos the quickstart trains on: layout, labels, determinism, learnability."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faces_keras.data.synthetic import (
    CSV_CODES,
    CSV_HEADER,
    EMPTY_CELL_BGR,
    LABEL_NAMES,
    Prevalence,
    draw_face,
    grid_photo_names,
    make_synthetic_grids,
    sample_labels,
)
from faces_keras.errors import DatasetError
from faces_keras.labels.schema import load_schema
from faces_keras.labels.sources import load_labels

SIZE = 64
ROWS = np.arange(SIZE)[:, None].repeat(SIZE, axis=1)


def _read_csv(path: Path) -> tuple[str, list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0], [line.split(";") for line in lines[1:]]


# -- layout and CSV -------------------------------------------------------------------

def test_photos_follow_the_grid_layout_and_cells_match_the_csv(tmp_path):
    grids = make_synthetic_grids(tmp_path, n_faces=25, cols=4, rows=3, cell=32, seed=3)

    assert [p.name for p in grids.photos] == [f"faces{i}-4x3-128x96.png" for i in (1, 2, 3)]
    assert grids.labels_csv == tmp_path / "labels.csv" and grids.n_faces == 25
    photos = [cv2.imread(str(p)) for p in grids.photos]
    assert all(photo.shape == (96, 128, 3) for photo in photos)

    # Replay the generator: face k sits row by row, photo after photo, and its
    # CSV row holds the labels it was drawn with.
    header, rows = _read_csv(grids.labels_csv)
    assert header == CSV_HEADER
    assert [int(r[0]) for r in rows] == list(range(1, 26))
    rng = np.random.default_rng(3)
    for k in range(25):
        labels = sample_labels(rng)
        face = draw_face(rng, labels, 32)
        photo, slot = divmod(k, 12)
        r, c = divmod(slot, 4)
        assert np.array_equal(photos[photo][r * 32:(r + 1) * 32, c * 32:(c + 1) * 32], face), f"face {k + 1}"
        assert rows[k][1:] == [CSV_CODES[name][labels[name]] for name in LABEL_NAMES]

    # The last photo holds one face; its other 11 cells are plain grey.
    last = photos[2].reshape(3, 32, 4, 32, 3).transpose(0, 2, 1, 3, 4).reshape(12, 32, 32, 3)
    assert not np.all(last[0] == EMPTY_CELL_BGR)
    assert np.all(last[1:] == EMPTY_CELL_BGR)


def test_photo_numbers_are_zero_padded_from_ten_photos_on():
    names = grid_photo_names(n_faces=11, cols=1, rows=1, cell=16)
    assert names[0] == "faces01-1x1-16x16.png" and names[-1] == "faces11-1x1-16x16.png"
    assert sorted(names) == names
    assert grid_photo_names(n_faces=9, cols=1, rows=1, cell=16)[0] == "faces1-1x1-16x16.png"


def test_csv_is_the_original_format_and_loads_with_its_schema(tmp_path):
    grids = make_synthetic_grids(tmp_path, n_faces=60, cols=5, rows=4, cell=32)
    header, rows = _read_csv(grids.labels_csv)
    assert header == "face_nr;sex;hair;glasses;hat;beard"
    for row in rows:
        assert row[1] in ("F", "M") and row[2] in ("L", "S")
        assert all(value in ("Y", "N") for value in row[3:])

    frame = load_labels(load_schema("original"), grids.labels_csv)
    assert len(frame) == 60
    assert list(frame["id"]) == [str(i) for i in range(1, 61)]
    assert (frame["sex"] == 1).sum() == sum(row[1] == "M" for row in rows)
    assert (frame["hair"] == 1).sum() == sum(row[2] == "L" for row in rows)


def test_same_seed_writes_identical_bytes_and_another_seed_differs(tmp_path):
    first = make_synthetic_grids(tmp_path / "a", n_faces=30, cols=5, rows=4, cell=32, seed=7)
    again = make_synthetic_grids(tmp_path / "b", n_faces=30, cols=5, rows=4, cell=32, seed=7)
    other = make_synthetic_grids(tmp_path / "c", n_faces=30, cols=5, rows=4, cell=32, seed=8)

    def contents(grids):
        return [p.read_bytes() for p in [*grids.photos, grids.labels_csv]]

    assert contents(first) == contents(again)
    assert all(x != y for x, y in zip(contents(first)[:-1], contents(other)[:-1]))


def test_rewriting_the_same_layout_is_allowed_but_another_layout_is_refused(tmp_path):
    make_synthetic_grids(tmp_path, n_faces=10, cols=5, rows=2, cell=32)
    make_synthetic_grids(tmp_path, n_faces=10, cols=5, rows=2, cell=32, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces1-5x2-160x64.png", "labels.csv"]
    with pytest.raises(DatasetError, match="faces1-5x2-160x64.png"):
        make_synthetic_grids(tmp_path, n_faces=10, cols=2, rows=5, cell=32)


@pytest.mark.parametrize("kwargs", [{"n_faces": 0}, {"cols": 0}, {"rows": -1}, {"cell": 8}])
def test_bad_layout_is_refused(tmp_path, kwargs):
    with pytest.raises(DatasetError, match=next(iter(kwargs))):
        make_synthetic_grids(tmp_path, **{"n_faces": 4, **kwargs})
    assert not any(tmp_path.iterdir())


def test_bad_face_labels_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(DatasetError, match="smile"):
        draw_face(rng, {"smile": 1})
    with pytest.raises(DatasetError, match="hat=2"):
        draw_face(rng, {"hat": 2})


# -- label prevalence ------------------------------------------------------------------

def _sample(n: int, prevalence: Prevalence, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    drawn = [sample_labels(rng, prevalence) for _ in range(n)]
    return {name: np.array([d[name] for d in drawn]) for name in LABEL_NAMES}


def test_label_prevalence_is_near_the_configured_shares():
    labels = _sample(4000, Prevalence())
    expected = {"sex": 0.5, "hair": 0.45, "glasses": 0.2, "hat": 0.15, "beard": 0.25}
    shares = {name: labels[name].mean() for name in LABEL_NAMES}
    print("prevalence over 4000 faces:", {k: round(float(v), 3) for k, v in shares.items()})
    for name, share in expected.items():
        assert abs(shares[name] - share) < 0.03, name
    male = labels["sex"] == 1
    assert labels["beard"][~male].sum() == 0
    assert labels["hair"][~male].mean() > labels["hair"][male].mean() + 0.3


def test_prevalence_is_configurable_and_checked():
    labels = _sample(3000, Prevalence(sex=0.3, hair=0.5, glasses=0.6, hat=0.05, beard=0.1, hair_sex_gap=0.0))
    for name, share in {"sex": 0.3, "hair": 0.5, "glasses": 0.6, "hat": 0.05, "beard": 0.1}.items():
        assert abs(labels[name].mean() - share) < 0.03, name
    with pytest.raises(DatasetError, match="beard"):
        Prevalence(sex=0.2, beard=0.3)
    with pytest.raises(DatasetError, match="glasses"):
        Prevalence(glasses=1.5)
    with pytest.raises(DatasetError, match="hair_sex_gap"):
        Prevalence(hair=0.9, hair_sex_gap=0.5)


# -- what each attribute draws ---------------------------------------------------------------

def _changed_pixels(base: dict[str, int], attribute: str, seed: int) -> np.ndarray:
    """Pixels that change when only ``attribute`` is switched on, from the same generator state."""
    without = draw_face(np.random.default_rng(seed), base, SIZE)
    with_it = draw_face(np.random.default_rng(seed), {**base, attribute: 1}, SIZE)
    return np.abs(without.astype(int) - with_it.astype(int)).max(axis=-1) > 20


@pytest.mark.parametrize("attribute, base, region, share", [
    ("hat", {}, ROWS < 0.5 * SIZE, 0.95),                                  # the top half
    ("glasses", {}, (ROWS > 0.3 * SIZE) & (ROWS < 0.72 * SIZE), 0.95),     # the eye band
    ("beard", {"sex": 1}, ROWS > 0.4 * SIZE, 0.95),                        # the lower face
    ("hair", {}, ROWS > 0.45 * SIZE, 0.6),                                 # down the sides
    ("sex", {}, ROWS > 0.3 * SIZE, 0.75),                                  # jaw, brows, lips
])
def test_each_attribute_changes_pixels_where_it_is_drawn(attribute, base, region, share):
    for seed in range(25):
        changed = _changed_pixels(base, attribute, seed)
        # Even the faint variants (thin frames, light stubble) change some pixels.
        assert changed.sum() >= 5, f"seed {seed}: {attribute} is invisible"
        inside = (changed & region).sum() / changed.sum()
        assert inside >= share, f"seed {seed}: only {inside:.2f} of the {attribute} change is where expected"


def test_long_hair_falls_past_the_jaw():
    for seed in range(25):
        changed = _changed_pixels({}, "hair", seed)
        assert changed[int(0.75 * SIZE):].sum() >= 10, f"seed {seed}"


def test_drawing_consumes_the_generator_the_same_whatever_the_labels():
    plain, full = np.random.default_rng(5), np.random.default_rng(5)
    draw_face(plain, {})
    draw_face(full, {name: 1 for name in LABEL_NAMES})
    assert plain.random() == full.random()


# -- learnable, but not trivially ----------------------------------------------------------

def _pixels(face: np.ndarray) -> np.ndarray:
    # Colour matters: a hat is any colour, so grey levels alone hide it from a linear model.
    return cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA).ravel().astype(np.float32) / 255.0


def test_labels_are_learnable_from_pixels_but_not_trivially():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(11)
    labels = [sample_labels(rng) for _ in range(1200)]
    pixels = np.stack([_pixels(draw_face(rng, face_labels)) for face_labels in labels])
    targets = np.array([[face[name] for name in LABEL_NAMES] for face in labels])
    scaler = StandardScaler().fit(pixels[:800])
    train, test = scaler.transform(pixels[:800]), scaler.transform(pixels[800:])

    scores = {}
    for j, name in enumerate(LABEL_NAMES):
        model = LogisticRegression(C=0.01, solver="liblinear", class_weight="balanced").fit(train, targets[:800, j])
        scores[name] = float(balanced_accuracy_score(targets[800:, j], model.predict(test)))
    print("balanced accuracy, logistic regression on 16x16 colour pixels:",
          {k: round(float(v), 3) for k, v in scores.items()})
    assert all(score > 0.6 for score in scores.values()), scores
    assert not all(score == 1.0 for score in scores.values()), scores

