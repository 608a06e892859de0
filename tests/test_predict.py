"""`faces-keras predict` on real photos: boxes on every face, the run's thresholds, clear skips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faces_keras.cli import main
from faces_keras.errors import RunError
from faces_keras.inference.predict import Predictor, predict_photos
from faces_keras.io import read_json
from faces_keras.training.train import TrainConfig, train
from faces_keras.models.saving import load_run_model
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory, grids_dataset):
    config = TrainConfig(dataset=str(grids_dataset), model=tiny_model(), epochs=1, max_train=64, verbose=0)
    return train(config, tmp_path_factory.mktemp("runs") / "grids")


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


def test_predict_refuses_a_run_without_thresholds(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    (copy / "thresholds.json").unlink()
    with pytest.raises(RunError, match="thresholds.json is missing"):
        predict_photos(copy, [], tmp_path / "out")


def test_cropped_faces_skip_detection(run, data_dir, tmp_path):
    faces = cv2.imread(str(data_dir / "grids" / "faces3-8x8-512x512.png"))[:64, :64]
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), faces)
    results = predict_photos(run.path, [face], tmp_path / "out", cropped=True)
    assert len(results[0].faces) == 1 and results[0].faces[0].box is None


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
