"""`faces-keras predict` on real photos: boxes on every face, the run's thresholds, clear skips,
batches equal to one photo at a time, and a killed run that resumes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.errors import ImageError, RunError
from faces_keras.inference.predict import (PredictConfig, PredictionsFileError, Predictor,
                                           expand_photos, predict_photos, read_predictions_csv)
from faces_keras.io import read_json
from faces_keras.locking import FolderLockedError, folder_lock
from faces_keras.models.saving import load_run_model
from faces_keras.training.train import TrainConfig, train
from tests.conftest import ROOT, tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory, grids_dataset):
    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=1, max_train=64, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "grids")


@pytest.fixture(scope="module")
def face_files(tmp_path_factory, data_dir) -> list[Path]:
    """64 real grid faces, one PNG each (cropped faces, as `--cropped` takes them)."""
    folder = tmp_path_factory.mktemp("faces")
    grid = cv2.imread(str(data_dir / "grids" / "faces3-8x8-512x512.png"))
    files = []
    for i in range(64):
        r, c = divmod(i, 8)
        path = folder / f"face{i:03d}.png"
        cv2.imwrite(str(path), grid[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64])
        files.append(path)
    return files


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_same_predictions(a: list[dict[str, str]], b: list[dict[str, str]], labels: list[str],
                             atol: float = 2e-6) -> None:
    assert [(r["photo"], r["face"], r["x"], r["y"], r["w"], r["h"]) for r in a] == \
           [(r["photo"], r["face"], r["x"], r["y"], r["w"], r["h"]) for r in b]
    for ra, rb in zip(a, b):
        for name in labels:
            assert ra[name] == rb[name], (ra["photo"], name)
            assert abs(float(ra[f"{name}_score"]) - float(rb[f"{name}_score"])) <= atol, (ra["photo"], name)


def test_group_photo_gets_six_boxes_and_predictions(run, data_dir, tmp_path, capsys):
    photo = data_dir / "photos" / "group-6-faces.jpg"
    code = main(["predict", str(run.path), str(photo), "--out", str(tmp_path)])
    assert code == 0
    result = read_json(tmp_path / "predictions.json")["photos"][0]
    assert len(result["faces"]) == 6
    thresholds = read_json(run / "thresholds.json")["thresholds"]
    for face in result["faces"]:
        assert set(face["labels"]) == {"sex", "glasses", "hat", "beard", "smile"}
        assert all(0.0 <= s <= 1.0 for s in face["scores"].values())  # probability of the chosen value
    annotated = cv2.imread(result["annotated"])
    original = cv2.imread(str(photo))
    assert annotated.shape == original.shape and (annotated != original).any()
    x, y, w, h = result["faces"][0]["box"]
    assert (annotated[y, x:x + w] != original[y, x:x + w]).any()  # the box outline is drawn
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 1 + 6
    assert "6 face(s)" in capsys.readouterr().out and thresholds


def test_predictions_use_the_runs_thresholds(run, data_dir):
    predictor = Predictor(run.path)
    faces = np.load(read_json(run / "manifest.json")["path"] + "/images.npy")[:20]
    probs = load_run_model(run).predict(faces.astype("float32"), verbose=0)
    decoded = predictor.predict_faces(faces)
    names = run.schema().label_names
    for i, (labels, _) in enumerate(decoded):
        for j, name in enumerate(names):
            positive = probs[i, j] >= predictor.thresholds[name]
            assert labels[name] == run.schema()[name].value_names()[int(positive)]


def test_unreadable_and_faceless_photos_are_named_and_exit_nonzero(run, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    code = main(["predict", str(run.path), str(bad), str(blank), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{bad}: skipped" in out and f"{blank}: no face found" in out
    rows = _rows(tmp_path / "out" / "predictions.csv")  # both recorded, so a rerun does not try them again
    assert [(r["photo"], r["face"], bool(r["error"])) for r in rows] == [(str(bad), "0", True), (str(blank), "0", True)]


def test_predict_refuses_a_run_without_thresholds(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    (copy / "thresholds.json").unlink()
    with pytest.raises(RunError, match="thresholds.json is missing"):
        predict_photos(copy, [], PredictConfig(out=str(tmp_path / "out")))


def test_cropped_faces_skip_detection(run, face_files, tmp_path):
    result = predict_photos(run.path, face_files[:1], PredictConfig(out=str(tmp_path / "out"), cropped=True))
    assert len(result.predictions[0].faces) == 1 and result.predictions[0].faces[0].box is None
    assert not list((tmp_path / "out").glob("*.jpg"))


def test_predict_on_a_folder_takes_every_image_in_it_sorted(run, data_dir, tmp_path, capsys):
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    faces = cv2.imread(str(data_dir / "grids" / "faces3-8x8-512x512.png"))
    cv2.imwrite(str(folder / "b.png"), faces[:64, :64])
    cv2.imwrite(str(folder / "a.jpg"), faces[64:128, :64])
    (folder / "notes.txt").write_text("not a photo")
    shutil.copy(folder / "b.png", tmp_path / "c.bmp")
    code = main(["predict", str(run.path), str(folder), str(tmp_path / "c.bmp"), "--cropped",
                 "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr()
    photos = [p["photo"] for p in read_json(tmp_path / "out" / "predictions.json")["photos"]]
    assert photos == [str(folder / "a.jpg"), str(folder / "b.png"), str(tmp_path / "c.bmp")]


def test_globs_expand_sorted_and_an_empty_glob_is_named(face_files, tmp_path):
    folder = face_files[0].parent
    assert expand_photos([str(folder / "face00[0-2].png")]) == face_files[:3]
    assert expand_photos([str(folder / "**" / "face06*.png")]) == face_files[60:64]
    assert expand_photos([folder, face_files[0]]) == face_files  # a photo given twice is predicted once
    with pytest.raises(ImageError, match=r"nothing\*\.jpg: the pattern matches no image"):
        expand_photos([str(tmp_path / "nothing*.jpg")])


def test_batches_equal_one_photo_at_a_time(run, data_dir, tmp_path):
    """Faces of many photos in one model call give what today's one model.predict per photo gave."""
    from faces_keras.data.detect import crop_face, make_detector
    from faces_keras.data.images import read_image, to_face

    photos = sorted((data_dir / "photos").glob("*.jpg"))
    batched = predict_photos(run.path, photos, PredictConfig(out=str(tmp_path / "batched"), no_annotate=True,
                                                             batch_size=256, workers=2))
    single = predict_photos(run.path, photos, PredictConfig(out=str(tmp_path / "single"), no_annotate=True,
                                                            batch_size=1, workers=1))
    assert batched.faces == 10 and not list((tmp_path / "batched").glob("*.jpg"))
    labels = run.schema().label_names
    _assert_same_predictions(_rows(batched.csv), _rows(single.csv), labels)

    # Today's path, written out here: one model.predict per photo on its own crops.
    predictor, model, finder = Predictor(run.path), load_run_model(run), make_detector("haar")
    expected = []
    for photo in photos:
        bgr = np.ascontiguousarray(read_image(photo)[..., ::-1])
        boxes = sorted(finder.detect(bgr), key=lambda b: (b.x, b.y))
        crops = np.stack([to_face(crop_face(bgr, b, margin=predictor.margin, size=predictor.size,
                                            gray=predictor.gray), predictor.size, gray=predictor.gray)
                          for b in boxes])
        probs = model.predict(crops.astype("float32"), verbose=0)
        for i, (box, p) in enumerate(zip(boxes, probs), 1):
            row = {"photo": str(photo), "face": str(i), "x": str(box.x), "y": str(box.y), "w": str(box.w),
                   "h": str(box.h)}
            for j, name in enumerate(labels):
                positive = p[j] >= predictor.thresholds[name]
                row[name] = run.schema()[name].value_names()[int(positive)]
                row[f"{name}_score"] = str(p[j] if positive else 1 - p[j])
            expected.append(row)
    _assert_same_predictions(_rows(batched.csv), expected, labels, atol=1e-5)


def test_a_rerun_skips_the_photos_already_predicted(run, face_files, tmp_path):
    config = PredictConfig(out=str(tmp_path / "out"), cropped=True, batch_size=8, workers=1)
    first = predict_photos(run.path, face_files[:10], config)
    second = predict_photos(run.path, face_files[:16], config)
    assert (first.resumed, len(first.predictions)) == (0, 10)
    assert (second.resumed, len(second.predictions)) == (10, 6)
    assert [r["photo"] for r in _rows(second.csv)] == [str(p) for p in face_files[:16]]
    assert len(read_json(second.json)["photos"]) == 16


def test_a_partly_written_csv_is_repaired(run, data_dir, tmp_path):
    """A line cut short, and a photo with fewer rows than faces, are dropped and predicted again."""
    photos = [data_dir / "photos" / "group-6-faces.jpg", *sorted((data_dir / "photos").glob("portrait-*.jpg"))[:2]]
    config = PredictConfig(out=str(tmp_path / "whole"), no_annotate=True)
    whole = predict_photos(run.path, photos, config)
    lines = whole.csv.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 6 + 2
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    # the group photo's first 4 of 6 rows, then the first portrait's row cut in the middle
    (damaged / "predictions.csv").write_text("".join(lines[:5]) + lines[7][:25])
    assert read_predictions_csv(damaged / "predictions.csv", run.schema()) == []
    assert (damaged / "predictions.csv").read_text() == lines[0]
    (damaged / "predictions.csv").write_text("".join(lines[:8]) + lines[8][:30])
    again = predict_photos(run.path, photos, PredictConfig(out=str(damaged), no_annotate=True))
    assert (again.resumed, len(again.predictions)) == (2, 1)
    _assert_same_predictions(_rows(again.csv), _rows(whole.csv), run.schema().label_names)


def test_another_models_csv_is_refused(run, face_files, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "predictions.csv").write_text("photo,face,age,age_score\n")
    with pytest.raises(PredictionsFileError, match="predictions.csv: its columns"):
        predict_photos(run.path, face_files[:1], PredictConfig(out=str(tmp_path / "out"), cropped=True))


def test_one_writer_per_output_folder(run, face_files, tmp_path):
    with folder_lock(tmp_path / "out"):
        pass  # the same process may take it again; a second process may not:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from faces_keras.locking import folder_lock
        with folder_lock({str(tmp_path / 'out')!r}):
            print("held", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid}"):
            predict_photos(run.path, face_files[:1], PredictConfig(out=str(tmp_path / "out"), cropped=True))
    finally:
        holder.kill()
        holder.wait()


DRIVER = """
import sys, time
from faces_keras.inference.predict import PredictConfig, Predictor, predict_photos

class Slow(Predictor):  # a slow model, so that the kill lands mid-run
    def scores(self, faces):
        time.sleep(0.25)
        return super().scores(faces)

photos = sys.argv[3:]
predict_photos(Slow(sys.argv[1], batch_size=4), photos,
               PredictConfig(out=sys.argv[2], cropped=True, batch_size=4, workers=2))
"""


def test_resume_after_a_kill_equals_an_uninterrupted_run(run, face_files, tmp_path):
    photos = [str(p) for p in face_files[:48]]
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", DRIVER, str(run.path), str(out), *photos], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path = out / "predictions.csv"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if csv_path.is_file() and len(csv_path.read_text().splitlines()) >= 1 + 12:
                break
            assert child.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    done = len(csv_path.read_text().splitlines()) - 1
    assert 12 <= done < 48  # killed mid-run: some batches written, not all
    assert done % 4 == 0  # whole batches only
    resumed = predict_photos(run.path, photos, PredictConfig(out=str(out), cropped=True, batch_size=4))
    assert resumed.resumed == done and len(resumed.predictions) == 48 - done
    whole = predict_photos(run.path, photos, PredictConfig(out=str(tmp_path / "whole"), cropped=True))
    _assert_same_predictions(_rows(resumed.csv), _rows(whole.csv), run.schema().label_names)
    assert [p["photo"] for p in read_json(resumed.json)["photos"]] == photos


def test_settings_are_checked_where_declared():
    from faces_keras.errors import ConfigError

    with pytest.raises(ConfigError, match=r"batch_size.*\(--batch-size\).*expected a value >= 1"):
        PredictConfig(batch_size=0)
    with pytest.raises(ConfigError, match=r"detector.*yunet.*haar.*mtcnn"):
        PredictConfig(detector="yunet")


def test_an_unguarded_script_gets_one_clear_error(run, face_files, tmp_path):
    """Detection processes are spawned; a script without a main guard is told so, not restarted forever."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from faces_keras.inference.predict import PredictConfig, predict_photos
        predict_photos({str(run.path)!r}, {[str(p) for p in face_files[:8]]!r},
                       PredictConfig(out={str(tmp_path / 'out')!r}, cropped=True, workers=2))
    """))
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "must do so under `if __name__ == \"__main__\":`" in done.stderr.splitlines()[-1]
