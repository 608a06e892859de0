"""Face detection, choosing, cropping and drawing, on the real photos in ../shared/data/photos."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from faces_keras.data import detect
from faces_keras.data.detect import (Box, FaceDetector, HaarDetector, crop_face, detect_and_crop, draw_boxes,
                                     make_detector, pick_main_face, read_image_bgr)
from faces_keras.errors import FacesKerasError, ImageError

PORTRAITS = ["portrait-angelina_jolie.jpg", "portrait-kate_siegel.jpg", "portrait-paul_rudd.jpg",
             "portrait-shea_whigham.jpg"]


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    return make_detector("haar")


@pytest.fixture(scope="module")
def group_photo(data_dir) -> np.ndarray:
    return read_image_bgr(data_dir / "photos" / "group-6-faces.jpg")


# -- detecting --------------------------------------------------------------------------

def test_default_detector_is_haar_and_satisfies_the_protocol(haar):
    assert isinstance(haar, HaarDetector)
    assert isinstance(haar, FaceDetector)


def test_haar_finds_the_six_faces_of_the_group_photo(haar, group_photo):
    boxes = haar.detect(group_photo)
    assert len(boxes) == 6
    # Six different people: no two boxes overlap.
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y


@pytest.mark.parametrize("name", PORTRAITS)
def test_haar_finds_exactly_one_face_in_each_portrait(haar, data_dir, name):
    image = read_image_bgr(data_dir / "photos" / name)
    boxes = haar.detect(image)
    assert len(boxes) == 1
    # A portrait's face is a sizeable part of it, not a speck in the background.
    assert boxes[0].w >= 0.15 * min(image.shape[:2])


@pytest.mark.parametrize("name", ["group-6-faces.jpg", *PORTRAITS])
def test_boxes_lie_inside_the_image(haar, data_dir, name):
    image = read_image_bgr(data_dir / "photos" / name)
    height, width = image.shape[:2]
    for box in haar.detect(image):
        assert isinstance(box.x, int) and isinstance(box.w, int)
        assert 0 <= box.x and 0 <= box.y and box.w > 0 and box.h > 0
        assert box.x + box.w <= width and box.y + box.h <= height


def test_boxes_are_mapped_back_to_original_pixels_after_downscaling(data_dir):
    image = read_image_bgr(data_dir / "photos" / "portrait-shea_whigham.jpg")
    full = HaarDetector(max_side=None).detect(image)
    shrunk = HaarDetector(max_side=320).detect(image)  # detects on a half-size copy
    assert len(full) == len(shrunk) == 1
    a, b = full[0], shrunk[0]
    # Same face in the same original pixels, up to the pyramid's step.
    assert abs(a.center[0] - b.center[0]) < 0.1 * a.w and abs(a.center[1] - b.center[1]) < 0.1 * a.h
    assert 0.8 < b.w / a.w < 1.25


def test_gray_input_finds_the_same_faces(haar, group_photo):
    gray = cv2.cvtColor(group_photo, cv2.COLOR_BGR2GRAY)
    assert haar.detect(gray) == haar.detect(group_photo)
    assert haar.detect(gray[..., None]) == haar.detect(group_photo)


def test_haar_on_celeba_finds_one_face_in_nearly_every_loosely_cropped_image(haar, data_dir):
    folder = data_dir / "celeba" / "img_celeba"
    files = sorted(folder.glob("*.jpg"))[:200]
    assert len(files) == 200
    counts = [len(haar.detect(read_image_bgr(f))) for f in files]
    exactly_one = sum(c == 1 for c in counts)
    # Measured 200/200 with the defaults; the floor leaves room for OpenCV versions.
    assert exactly_one >= 190, f"only {exactly_one}/200 images gave exactly one face"


@pytest.mark.parametrize("params, message", [
    (dict(scale_factor=1.0), "scale_factor"),
    (dict(min_neighbors=-1), "min_neighbors"),
    (dict(min_neighbors=2.5), "min_neighbors"),
    (dict(min_size=0), "min_size"),
    (dict(min_size=1.5), "min_size"),
    (dict(max_side=10), "max_side"),
])
def test_bad_haar_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        make_detector("haar", **params)


def test_unknown_detector_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known detectors: haar, mtcnn") as info:
        make_detector("yolo")
    assert "'yolo'" in str(info.value)


def test_missing_opencv_cascades_give_a_clear_error(monkeypatch):
    monkeypatch.setattr(cv2, "data", None, raising=False)
    with pytest.raises(FacesKerasError, match="Haar cascades"):
        HaarDetector()


def test_missing_cascade_file_is_named(monkeypatch):
    monkeypatch.setattr(detect, "HAAR_CASCADE_FILE", "no-such-cascade.xml")
    with pytest.raises(FacesKerasError, match="no-such-cascade.xml"):
        HaarDetector()


def test_bad_image_arrays_raise_image_error(haar):
    with pytest.raises(ImageError, match="uint8"):
        haar.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ImageError, match="shape"):
        haar.detect(np.zeros((50, 50, 2), np.uint8))


# -- MTCNN ------------------------------------------------------------------------------

def test_mtcnn_missing_tells_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # makes `import mtcnn` fail
    with pytest.raises(FacesKerasError, match=r"pip install faces-keras\[mtcnn\]"):
        make_detector("mtcnn")


def test_mtcnn_results_are_filtered_and_clipped(monkeypatch):
    """Our handling of MTCNN's output, with a stand-in for the package."""
    seen = {}

    class FakeMTCNN:
        def detect_faces(self, rgb):
            seen["rgb"] = rgb
            return [{"box": [-5, 10, 30, 40], "confidence": 0.99},
                    {"box": [60, 60, 80, 80], "confidence": 0.95},
                    {"box": [20, 20, 10, 10], "confidence": 0.5}]

    monkeypatch.setitem(sys.modules, "mtcnn", types.SimpleNamespace(MTCNN=FakeMTCNN))
    image = np.zeros((100, 120, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    boxes = make_detector("mtcnn", min_confidence=0.9).detect(image)
    assert boxes == [Box(0, 10, 25, 40, 0.99), Box(60, 60, 60, 40, 0.95)]
    assert seen["rgb"][0, 0].tolist() == [0, 0, 255]  # MTCNN is given RGB


def test_real_mtcnn_finds_the_portrait_face(data_dir):
    pytest.importorskip("mtcnn")
    image = read_image_bgr(data_dir / "photos" / "portrait-paul_rudd.jpg")
    boxes = make_detector("mtcnn").detect(image)
    assert len(boxes) == 1 and boxes[0].score >= 0.9


# -- choosing ---------------------------------------------------------------------------

def test_pick_main_face_picks_the_largest():
    boxes = [Box(0, 0, 10, 10), Box(50, 50, 40, 40), Box(5, 5, 30, 30)]
    assert pick_main_face(boxes, (200, 200, 3)) == Box(50, 50, 40, 40)


def test_pick_main_face_breaks_ties_by_closeness_to_the_centre():
    corner, centre = Box(0, 0, 20, 20), Box(90, 90, 20, 20)
    assert pick_main_face([corner, centre], (200, 200)) == centre
    assert pick_main_face([centre, corner], (200, 200)) == centre


def test_pick_main_face_of_no_boxes_is_none():
    assert pick_main_face([], (10, 10)) is None


def test_detect_and_crop_keeps_only_the_main_face_when_one_is_expected(haar, group_photo):
    crops, boxes = detect_and_crop(group_photo, haar, margin=0.2, size=48, gray=True, expect_one=False)
    assert len(crops) == len(boxes) == 6
    one_crop, one_box = detect_and_crop(group_photo, haar, margin=0.2, size=48, gray=True, expect_one=True)
    assert one_box == [max(boxes, key=lambda b: b.area)]
    assert len(one_crop) == 1 and one_crop[0].shape == (48, 48, 1)


def test_detect_and_crop_of_a_faceless_image_is_empty(haar):
    crops, boxes = detect_and_crop(np.full((200, 200, 3), 127, np.uint8), haar, expect_one=True)
    assert crops == [] and boxes == []


# -- cropping ---------------------------------------------------------------------------

@pytest.mark.parametrize("gray, channels", [(True, 1), (False, 3)])
def test_crop_face_size_dtype_and_channels(haar, group_photo, gray, channels):
    box = haar.detect(group_photo)[0]
    crop = crop_face(group_photo, box, margin=0.2, size=64, gray=gray)
    assert crop.shape == (64, 64, channels)
    assert crop.dtype == np.uint8
    assert crop.std() > 10  # a face, not a flat patch


def test_colour_crops_are_rgb():
    image = np.zeros((100, 100, 3), np.uint8)
    image[..., 0] = 200  # BGR: blue
    crop = crop_face(image, Box(30, 30, 40, 40), size=32, gray=False)
    assert crop[..., 2].min() == 200 and crop[..., 0].max() == 0


def test_crop_face_is_a_square_around_the_box_grown_by_the_margin():
    image = np.zeros((200, 200), np.uint8)
    image[80:120, 70:130] = 255  # the "face": 60 wide, 40 high, centred at (100, 100)
    crop = crop_face(image, Box(70, 80, 60, 40), margin=0.25, size=90, gray=True)
    # side = 60 * 1.5 = 90, so no resizing: the face spans columns 15..75, rows 25..65.
    rows, cols = np.nonzero(crop[..., 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (25, 64, 15, 74)


def test_crop_face_at_the_image_edge_replicates_the_border(data_dir):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    # Square: side 30, from (-5, -5): 5 rows and columns lie outside the image.
    crop = crop_face(image, Box(0, 0, 20, 20), margin=0.25, size=30, gray=True)[..., 0]
    assert crop.shape == (30, 30)
    np.testing.assert_array_equal(crop[5:, 5:], image[:25, :25])
    np.testing.assert_array_equal(crop[:5, 5:], np.broadcast_to(image[0, :25], (5, 25)))
    np.testing.assert_array_equal(crop[5:, :5], np.broadcast_to(image[:25, :1], (25, 5)))

    portrait = read_image_bgr(data_dir / "photos" / "portrait-kate_siegel.jpg")
    h, w = portrait.shape[:2]
    corner = Box(w - 100, h - 100, 100, 100)  # touches the bottom-right corner
    assert crop_face(portrait, corner, size=64, gray=False).shape == (64, 64, 3)


def test_crop_face_rejects_boxes_off_the_image_and_bad_settings():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="does not overlap"):
        crop_face(image, Box(60, 60, 10, 10))
    with pytest.raises(ValueError, match="margin"):
        crop_face(image, Box(10, 10, 10, 10), margin=-0.1)
    with pytest.raises(ValueError, match="size"):
        crop_face(image, Box(10, 10, 10, 10), size=0)


# -- drawing ----------------------------------------------------------------------------

def test_draw_boxes_returns_an_annotated_copy(haar, group_photo):
    boxes = haar.detect(group_photo)
    before = group_photo.copy()
    annotated = draw_boxes(group_photo, boxes, labels=[f"face {i}" for i in range(len(boxes))])
    np.testing.assert_array_equal(group_photo, before)
    assert annotated is not group_photo and annotated.shape == group_photo.shape
    for box in boxes:
        # The outline is drawn in the default colour...
        assert annotated[box.y, box.x + box.w // 2].tolist() == list(detect.BOX_COLOR_BGR)
        assert annotated[box.y + box.h // 2, box.x].tolist() == list(detect.BOX_COLOR_BGR)
        # ...and the label band sits above the box.
        above = slice(max(0, box.y - 10), box.y)
        assert not np.array_equal(annotated[above, box.x:box.x + 20], group_photo[above, box.x:box.x + 20])
    # The face inside the outline is left alone.
    inner = boxes[0]
    region = np.s_[inner.y + 10:inner.y + inner.h - 10, inner.x + 10:inner.x + inner.w - 10]
    np.testing.assert_array_equal(annotated[region], group_photo[region])


def test_draw_boxes_colours_per_box_and_gray_input():
    gray = np.full((100, 100), 128, np.uint8)
    boxes = [Box(10, 10, 30, 30), Box(60, 60, 30, 30)]
    annotated = draw_boxes(gray, boxes, colors=[(0, 0, 255), (255, 0, 0)])
    assert annotated.shape == (100, 100, 3)
    assert annotated[10, 25].tolist() == [0, 0, 255] and annotated[60, 75].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(gray, boxes, labels=["only one"])


# -- reading ----------------------------------------------------------------------------

def test_corrupt_file_gives_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="bad.jpg"):
        read_image_bgr(bad)


def test_missing_file_gives_an_error_naming_it(tmp_path):
    with pytest.raises(ImageError, match="missing.jpg"):
        read_image_bgr(tmp_path / "missing.jpg")


def test_read_image_bgr_is_in_opencv_order(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    path = tmp_path / "blue.png"
    cv2.imwrite(str(path), image)
    np.testing.assert_array_equal(read_image_bgr(path), image)
