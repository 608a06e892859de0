"""Bad input: one line on stderr naming the file (and line or key) and what was expected, exit code 2.

Every broken input is built in tmp_path from small pieces of the real data; no test trains a model.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.errors import FacesKerasError

GRID1 = "faces1-11x11-704x704.png"  # 121 faces
GRID3 = "faces3-8x8-512x512.png"  # 64 faces
HEADER = "face_nr;sex;glasses;hat;beard;smile"


def error_line(stderr: str, command: str) -> str:
    """The one line a bad input prints; fails if there is more (a traceback, a libpng line, ...)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{stderr}"
    assert lines[0].startswith(f"faces-keras {command}: error: "), lines[0]
    return lines[0]


def labels_rows(data_dir: Path, count: int) -> list[str]:
    return (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()[1:count + 1]


def grid_folder(tmp_path: Path, data_dir: Path, photos: dict[str, str], rows: int) -> Path:
    """A folder of real grid photos (source name -> name here) and the first ``rows`` label rows."""
    folder = tmp_path / "grids"
    folder.mkdir()
    for source, name in photos.items():
        shutil.copy(data_dir / "grids" / source, folder / name)
    (folder / "labels.csv").write_text("\n".join([HEADER] + labels_rows(data_dir, rows)) + "\n")
    return folder


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, data_dir) -> Path:
    """121 real faces (one grid photo), prepared."""
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.labels import load_schema

    root = tmp_path_factory.mktemp("small")
    folder = grid_folder(root, data_dir, {GRID1: GRID1}, 121)
    return prepare_dataset(load_schema("grids"), folder / "labels.csv", root / "ds")


def dataset_copy(small_dataset: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset, copy)
    return copy


# -- 1. config files -------------------------------------------------------------------

def test_config_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    config = tmp_path / "prepare.yaml"
    config.write_text("schema: grids\nsize: 64\n  limit: 40\n")  # line 3: indented under a scalar
    code = main(["prepare", str(tmp_path / "out"), "--config", str(config)])
    line = error_line(capsys.readouterr().err, "prepare")
    assert code == 2
    assert f"{config}:3: not valid YAML" in line
    assert not (tmp_path / "out").exists()


def test_config_toml_syntax_error_names_file_and_line(tmp_path, capsys):
    config = tmp_path / "prepare.toml"
    config.write_text('schema = "grids"\nsize = \n')
    assert main(["prepare", str(tmp_path / "out"), "--config", str(config)]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert f"{config}: not valid TOML" in line and "line 2" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, text, key, expected", [
    ("prepare", "schema: grids\nsize: big\n", "size", "expected an integer"),
    ("prepare", "schema: grids\nval: a lot\n", "val", "expected a number"),
    ("prepare", "schema: grids\ncolor: sometimes\n", "color", "expected true or false"),
    ("prepare", "schema: grids\nimages: photos\n", "images", "expected one of ['grid', 'files', 'detect', 'embedded']"),
    ("train", "epochs: ten\n", "epochs", "expected an integer"),
    ("train", "batch-size: [64]\n", "batch_size", "expected an integer"),
])
def test_config_value_of_the_wrong_type_names_file_key_and_type(tmp_path, capsys, command, text, key, expected):
    config = tmp_path / "settings.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    argv = ["prepare", str(out)] if command == "prepare" else ["train", str(tmp_path / "ds"), "--out", str(out)]
    assert main(argv + ["--config", str(config)]) == 2
    line = error_line(capsys.readouterr().err, command)
    assert f"{config}: {key}: " in line and expected in line
    assert not out.exists()


def test_run_config_value_of_the_wrong_type_names_file_and_key(tmp_path, capsys):
    config = tmp_path / "config.yaml"  # a run directory's config.yaml, edited by hand
    config.write_text("dataset: ds\nepochs: ten\nmodel:\n  preset: default\n  filters: 8\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err, "train")
    assert f"{config}: epochs: 'ten' is not an integer; expected an integer" in line
    config.write_text("dataset: ds\nmodel:\n  preset: default\n  dropout: lots\n")
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    assert f"{config}: model.dropout: 'lots' is not a number" in error_line(capsys.readouterr().err, "train")
    assert not out.exists()
    # YAML 1.1 reads 1e-3 as a string; it is the number it looks like, so the check passes
    # and the run stops later, at the dataset that does not exist.
    config.write_text("dataset: no-such-ds\nmodel:\n  preset: default\n  learning_rate: 1e-3\n")
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err, "train")
    assert "learning_rate" not in line and "no-such-ds" in line


# -- 2. a --photos folder that does not exist ---------------------------------------------

def test_prepare_photos_folder_not_found(tmp_path, data_dir, capsys):
    missing = tmp_path / "no-such-folder"
    out = tmp_path / "out"
    code = main(["prepare", str(out), "--schema", "grids", "--labels", str(data_dir / "grids" / "faces-labels.csv"),
                 "--photos", str(missing)])
    line = error_line(capsys.readouterr().err, "prepare")
    assert code == 2
    assert f"{missing}: grid photos folder not found; expected a folder of grid photos" in line
    assert not out.exists()


# -- 3. damaged dataset files ---------------------------------------------------------------

def _truncate_images(ds: Path) -> None:
    data = (ds / "images.npy").read_bytes()
    (ds / "images.npy").write_bytes(data[: len(data) // 2])


def _object_header(ds: Path) -> None:
    data = (ds / "images.npy").read_bytes()
    assert b"'|u1'" in data[:128]
    (ds / "images.npy").write_bytes(data.replace(b"'|u1'", b"'|O' ", 1))  # same header length


def _truncate_manifest(ds: Path) -> None:
    text = (ds / "manifest.json").read_text()
    (ds / "manifest.json").write_text(text[: len(text) // 2])


@pytest.mark.parametrize("damage, file, says", [
    (_truncate_images, "images.npy", "images.npy is truncated or damaged"),
    (_object_header, "images.npy", "images.npy is truncated or damaged"),
    (_truncate_manifest, "manifest.json", "manifest.json is truncated or damaged"),
])
def test_damaged_dataset_file_names_the_file_and_what_was_expected(small_dataset, tmp_path, capsys,
                                                                   damage, file, says):
    ds = dataset_copy(small_dataset, tmp_path)
    damage(ds)
    show = tmp_path / "show"
    assert main(["dataset", "show", str(ds), "--out", str(show)]) == 2
    line = error_line(capsys.readouterr().err, "dataset")
    assert f"{ds / file}" in line and says in line and "prepare the dataset again" in line
    if file == "images.npy":
        assert "expected a uint8 array of 121 faces of 64x64x1" in line
    else:
        assert "expected the JSON manifest prepare writes" in line and "at line" in line
    assert not show.exists()
    run = tmp_path / "run"
    assert main(["train", str(ds), "--out", str(run), "--epochs", "1"]) == 2
    assert says in error_line(capsys.readouterr().err, "train")
    assert not run.exists()


# -- 4. labels files and UTKFace names -------------------------------------------------------

def test_labels_file_not_utf8_names_file_and_line(tmp_path, data_dir, capsys):
    folder = grid_folder(tmp_path, data_dir, {GRID1: GRID1}, 121)
    lines = [HEADER] + labels_rows(data_dir, 121)
    lines[4] = lines[4].replace("F", "\xc9", 1)  # line 5: a Latin-1 byte, as an old editor saves it
    (folder / "labels.csv").write_bytes("\n".join(lines).encode("latin-1"))
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert f"{folder / 'labels.csv'}:5: byte 0xc9 is not UTF-8 text; expected a UTF-8 labels file" in line
    assert not out.exists()


def test_header_only_labels_file_names_the_file(tmp_path, data_dir, capsys):
    folder = grid_folder(tmp_path, data_dir, {GRID1: GRID1}, 0)
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert f"{folder / 'labels.csv'}: no labelled faces in it; expected at least one face after the header" in line
    assert not out.exists()


def test_labels_file_with_a_byte_order_mark_is_accepted(tmp_path, data_dir, capsys):
    folder = grid_folder(tmp_path, data_dir, {GRID1: GRID1}, 121)
    text = (folder / "labels.csv").read_text()
    (folder / "labels.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())  # Excel's CSV UTF-8
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 0
    assert json.loads((out / "manifest.json").read_text())["count"] == 121


def test_utkface_age_out_of_range_is_a_malformed_name(tmp_path, data_dir, capsys, caplog):
    source = data_dir / "utkface" / "crop_part1"
    folder = tmp_path / "utk"
    folder.mkdir()
    good = sorted(p for p in source.iterdir() if p.name.startswith(("25_", "30_")))[:6]
    for photo in good:
        shutil.copy(photo, folder / photo.name)
    bad = folder / "999_0_0_20170109142408075.jpg.chip.jpg"
    shutil.copy(good[0], bad)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(["prepare", str(out), "--schema", "utkface", "--labels", str(folder), "--val", "0.2",
                     "--test", "0.2"]) == 0
    assert "skipped 1 malformed UTKFace file name(s)" in caplog.text and bad.name in caplog.text
    assert json.loads((out / "manifest.json").read_text())["count"] == len(good)
    capsys.readouterr()
    strict = tmp_path / "strict"
    assert main(["prepare", str(strict), "--schema", "utkface", "--labels", str(folder), "--strict"]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert f"{folder}/{bad.name}: age 999 is out of range; expected an age of 0 to 120 years" in line
    assert not strict.exists()


# -- 5. predict on a folder -----------------------------------------------------------------

def test_predict_accepts_a_folder_and_names_one_without_images(tmp_path, data_dir, capsys):
    from faces_keras.inference.predict import expand_photos

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b.JPG", "a.png", "c.bmp", "notes.txt", ".hidden.jpg"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    single = data_dir / "photos" / "group-6-faces.jpg"
    assert expand_photos([folder, single]) == [folder / "a.png", folder / "b.JPG", folder / "c.bmp", single]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    out = tmp_path / "pred"
    assert main(["predict", str(tmp_path / "run"), str(empty), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err, "predict")
    assert f"{empty} is a folder with no images in it: expected image files (jpg, jpeg, png, bmp)" in line
    assert not out.exists()


# -- 6. a gap in the grid-photo numbering -------------------------------------------------------

def test_gap_in_grid_photo_numbering_names_the_missing_photo(tmp_path, data_dir, capsys):
    # faces2 is missing and the labels are cut to match the photos left (121 + 64 faces): without the
    # check, faces 122-185 (faces3's) would get faces2's labels.
    folder = grid_folder(tmp_path, data_dir, {GRID1: GRID1, GRID3: GRID3}, 185)
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert f"{folder}: grid photo number(s) [2] missing (faces2-*)" in line
    assert "expected photos numbered 1 to 3 without gaps" in line
    assert not out.exists()


def test_repeated_grid_photo_number_is_refused(tmp_path, data_dir, capsys):
    folder = grid_folder(tmp_path, data_dir, {GRID1: GRID1, GRID3: "faces1-8x8-512x512.png"}, 185)
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 2
    line = error_line(capsys.readouterr().err, "prepare")
    assert "grid photo number 1 appears 2 times" in line and GRID1 in line
    assert not out.exists()


# -- 7. --max-train 0 ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_train_must_be_positive(small_dataset, tmp_path, capsys, value):
    run = tmp_path / "run"
    assert main(["train", str(small_dataset), "--out", str(run), "--max-train", value, "--epochs", "1"]) == 2
    line = error_line(capsys.readouterr().err, "train")
    assert f"--max-train: {value} is out of range; expected a value >= 1" in line
    assert not run.exists()


# -- 8. a damaged PNG: no stray libpng line --------------------------------------------------

def test_damaged_png_gives_one_line_without_libpng_output(tmp_path, capfd):
    ok, encoded = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    start = data.index(b"IDAT") + 4
    data[start + 10:start + 20] = b"\xff" * 10  # the IDAT chunk's CRC no longer matches
    folder = tmp_path / "grids"
    folder.mkdir()
    photo = folder / "faces1-2x2-128x128.png"
    photo.write_bytes(bytes(data))
    (folder / "labels.csv").write_text(HEADER + "\n" + "\n".join(f"{i};F;N;N;N;Y" for i in range(1, 5)) + "\n")
    out = tmp_path / "out"
    assert main(["prepare", str(out), "--schema", "grids", "--labels", str(folder / "labels.csv")]) == 2
    captured = capfd.readouterr()
    line = error_line(captured.err, "prepare")  # libpng writes to file descriptor 2: capfd sees it
    assert f"{photo}: not a readable image (damaged PNG" in line and "expected an intact PNG" in line
    assert "libpng" not in captured.err + captured.out
    assert not out.exists()


# -- 9. model.keras that Keras refuses -----------------------------------------------------------

def _run_with_model(tmp_path: Path, small_dataset: Path, write) -> Path:
    """A run directory complete but for its model.keras, which ``write`` makes."""
    import numpy as np

    from faces_keras.labels import load_schema
    from faces_keras.thresholds import ThresholdConfig, tune_thresholds

    run = tmp_path / "run"
    run.mkdir()
    schema = load_schema("grids")
    shutil.copy(Path(__file__).resolve().parents[1] / "datasets" / "grids.yaml", run / "schema.yaml")
    shutil.copy(small_dataset / "manifest.json", run / "manifest.json")
    names = schema.label_names
    truth = np.tile([[0], [1]], (10, len(names)))
    tune_thresholds(truth, truth * 0.8 + 0.1, names, ThresholdConfig()).save(run / "thresholds.json")
    write(run / "model.keras")
    return run


def _lambda_model(path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0)])
    model.save(path)


def _damaged_model(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 this is not a whole zip file" + bytes(range(256)))


@pytest.mark.parametrize("write, says", [
    (_lambda_model, "the model holds a Lambda layer (arbitrary Python code), which Keras refuses to load in safe mode"),
    (_damaged_model, "is truncated or damaged (not a .keras zip archive)"),
])
def test_model_keras_that_does_not_load_names_the_file(tmp_path, data_dir, small_dataset, capsys, write, says):
    run = _run_with_model(tmp_path, small_dataset, write)
    capsys.readouterr()
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(data_dir / "photos" / "group-6-faces.jpg"), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err, "predict")
    assert f"{run / 'model.keras'}" in line and says in line
    assert "expected a Keras model saved by `faces-keras train`" in line
    assert not out.exists()


# -- fuzz: the label readers raise only FacesKerasError ------------------------------------------

def _mutations():
    from hypothesis import strategies as st

    edit = st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]),
                     st.floats(0, 1, exclude_max=True), st.integers(0, 255))
    return st.lists(edit, min_size=1, max_size=8)


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, where, byte in edits:
        i = int(where * max(len(out), 1))
        if kind == "flip" and out:
            out[i] = byte
        elif kind == "insert":
            out[i:i] = bytes([byte])
        elif kind == "delete" and out:
            del out[i]
        elif kind == "truncate":
            del out[i:]
    return bytes(out)


def _fuzz_labels(tmp_path: Path, schema_name: str, name: str, seed_bytes: bytes, max_examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from faces_keras.labels import load_labels, load_schema

    schema = load_schema(schema_name)
    target = tmp_path / name

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(edits=_mutations(), random_bytes=st.binary(max_size=64), mode=st.sampled_from(["mutate", "random"]))
    def check(edits, random_bytes, mode):
        target.write_bytes(_mutate(seed_bytes, edits) if mode == "mutate" else random_bytes)
        try:
            frame = load_labels(schema, target, check_images=False)
        except FacesKerasError as exc:
            assert "\n" not in str(exc)
        else:
            assert len(frame) > 0

    check()


def test_fuzz_delimited_labels_reader_raises_only_faces_keras_errors(tmp_path, data_dir):
    real = (data_dir / "grids" / "faces-labels.csv").read_bytes()
    seed_bytes = b"\n".join(real.split(b"\n")[:25]) + b"\n"
    _fuzz_labels(tmp_path, "grids", "labels.csv", seed_bytes, 300)


def test_fuzz_celeba_attributes_reader_raises_only_faces_keras_errors(tmp_path, data_dir):
    lines = (data_dir / "celeba" / "list_attr_celeba.txt").read_bytes().split(b"\n")
    seed_bytes = b"\n".join([b"12"] + lines[1:14]) + b"\n"
    _fuzz_labels(tmp_path, "celeba", "list_attr_celeba.txt", seed_bytes, 200)


def test_fuzz_utkface_names_raise_only_labels_errors():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from faces_keras.errors import LabelsError
    from faces_keras.labels import parse_utkface_name

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(st.one_of(st.text(max_size=40), st.from_regex(r"\A\d{1,4}_[0-2]_[0-5]_\d{6,18}\.jpg(\.chip\.jpg)?\Z")))
    def check(name):
        try:
            fields = parse_utkface_name(name)
        except LabelsError as exc:
            assert name in str(exc)
        else:
            assert 0 <= int(fields["age"]) <= 120

    check()
