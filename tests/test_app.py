"""The web app's JSON API and labelling store, through FastAPI's test client, on the real grid faces.

A tiny run (1 epoch on 120 prepared grid faces) is trained once for the module for
the try-a-model calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("fastapi", reason="the app extra is not installed (pip install faces-keras[app])")
pytest.importorskip("multipart", reason="python-multipart is not installed (pip install faces-keras[app])")

from fastapi.testclient import TestClient  # noqa: E402

from faces_keras.app import AppConfig, LabelStore, create_app  # noqa: E402
from faces_keras.errors import FacesKerasError  # noqa: E402
from faces_keras.labels import load_schema  # noqa: E402

from tests.conftest import tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    """A trained run folder under a runs root: ``(root, run)``."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.training.config import TrainConfig
    from faces_keras.training.train import train

    work = tmp_path_factory.mktemp("app-run")
    dataset = prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", work / "grids120",
                              config=PrepareConfig(limit=120))
    root = work / "runs"
    run = train(TrainConfig(dataset=str(dataset), model=tiny_model(), epochs=1, batch_size=32), root / "tiny")
    return root, run.path


@pytest.fixture
def grids(data_dir):
    return data_dir / "grids"


@pytest.fixture
def client(tmp_path, grids):
    config = AppConfig(faces=str(grids), labels=str(tmp_path / "labels.csv"))
    app = create_app(config)
    with TestClient(app) as c:
        yield c
    app.state.store.close()


def _csv_rows(path):
    lines = path.read_text().splitlines()
    return lines[0].split(";"), [line.split(";") for line in lines[1:]]


# -- labelling -------------------------------------------------------------------------------

def test_label_writes_go_to_disk_in_the_schemas_format_and_prepare_takes_them(tmp_path, grids):
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.data.store import Dataset
    from faces_keras.labels.sources import load_labels

    schema = load_schema("grids")
    truth = load_labels(schema, grids / "faces-labels.csv")
    labels = tmp_path / "labels.csv"
    app = create_app(AppConfig(faces=str(grids), labels=str(labels)))
    with TestClient(app) as c:
        index = c.get("/api/labels").json()
        assert index["progress"] == {"labelled": 0, "dropped": 0, "total": 458}
        assert [lab["codes"] for lab in index["labels"]] == [["F", "M"], ["N", "Y"], ["N", "Y"], ["N", "Y"],
                                                             ["N", "Y"]]
        # copy the real labels of faces 1..40 through the API, one label per call as the page does
        raw = (grids / "faces-labels.csv").read_text().splitlines()
        typed = {line.split(";")[0]: line.split(";")[1:] for line in raw[1:41]}
        for face_id, codes in typed.items():
            version = 0
            for name, code in zip(schema.label_names, codes):
                r = c.put(f"/api/labels/faces/{face_id}", json={"values": {name: code}, "version": version})
                assert r.status_code == 200, r.text
                version = r.json()["face"]["version"]
        r = c.put("/api/labels/faces/7", json={"drop": True})
        assert r.json()["progress"] == {"labelled": 40, "dropped": 1, "total": 458}
        assert c.get("/api/labels?unlabelled=1").json()["ids"][0] == "41"
        women = [face_id for face_id, codes in typed.items() if codes[0] == "F"]
        assert c.get("/api/labels?label=sex&value=F").json()["ids"] == women
    app.state.store.close()
    header, rows = _csv_rows(labels)
    assert header == ["face_nr", "sex", "glasses", "hat", "beard", "smile", "drop"]
    assert [r[0] for r in rows] == [str(i) for i in range(1, 41)]
    assert {r[0]: r[1:6] for r in rows} == typed
    assert [r[0] for r in rows if r[6] == "Y"] == ["7"]
    out = prepare_dataset(schema, labels, tmp_path / "prepared", photos=grids)
    prepared = Dataset.load(out)
    ids = set(prepared.faces["source_id"].astype(str))
    assert ids == {str(i) for i in range(1, 41)} - {"7"}  # the dropped face is left out
    merged = prepared.faces.assign(id=prepared.faces["source_id"].astype(str)).set_index("id")
    expected = truth.set_index("id").loc[sorted(ids, key=int)]
    for name in schema.label_names:
        assert (merged.loc[expected.index, name].to_numpy() == expected[name].to_numpy()).all()


def test_reopening_resumes_and_a_second_writer_on_the_same_file_is_refused(tmp_path, grids):
    from faces_keras.locking import FolderLockedError

    schema = load_schema("grids")
    labels = tmp_path / "labels.csv"
    store = LabelStore(schema, grids, labels)
    for face_id in ("1", "2"):
        store.set(face_id, dict(zip(schema.label_names, "FNNNY")))
    store.set("3", {"sex": "M"})
    with pytest.raises(FolderLockedError, match="labels file is being written"):
        LabelStore(schema, grids, labels)
    other = subprocess.run([sys.executable, "-c", "import sys; from faces_keras.app import LabelStore; "
                            "from faces_keras.labels import load_schema; "
                            "LabelStore(load_schema('grids'), sys.argv[1], sys.argv[2])", str(grids), str(labels)],
                           capture_output=True, text=True)
    assert other.returncode != 0 and "labels file is being written by pid" in other.stderr
    store.close()
    again = LabelStore(schema, grids, labels)
    assert again.face("2").values == dict(zip(schema.label_names, "FNNNY"))
    assert again.face("3").values == {"sex": "M"}
    assert again.ids(unlabelled=True)[0] == "3"  # the page reopens here
    assert again.progress()["labelled"] == 2
    again.close()


def test_two_tabs_merge_different_faces_and_a_stale_write_to_the_same_face_is_refused(client, tmp_path):
    a = client.put("/api/labels/faces/5", json={"values": {"sex": "F"}, "version": 0})
    b = client.put("/api/labels/faces/6", json={"values": {"sex": "M"}, "version": 0})  # the other tab
    assert a.status_code == b.status_code == 200
    stale = client.put("/api/labels/faces/5", json={"values": {"sex": "M"}, "version": 0})
    assert stale.status_code == 409
    assert stale.json()["face"]["values"]["sex"] == "F" and "changed elsewhere" in stale.json()["detail"]
    _, rows = _csv_rows(tmp_path / "labels.csv")
    assert [(r[0], r[1]) for r in rows] == [("5", "F"), ("6", "M")]


@pytest.mark.parametrize("url, body, status, words", [
    ("/api/labels/faces/9999", {"values": {"sex": "F"}}, 404, "no face '9999'"),
    ("/api/labels/faces/1", {"values": {"sex": "X"}}, 422, "cannot be 'X'"),
    ("/api/labels/faces/1", {"values": {"age": "3"}}, 422, "no label 'age'"),
    ("/api/labels/faces/1", {"values": ["sex"]}, 422, "expected an object"),
    ("/api/labels/faces/1", {"drop": "yes"}, 422, "drop: expected true or false"),
    ("/api/labels/faces/1", [1, 2], 422, "expected a JSON object"),
])
def test_bad_label_writes_get_a_4xx_with_a_message_and_change_nothing(client, tmp_path, url, body, status, words):
    r = client.put(url, json=body)
    assert r.status_code == status and words in r.json()["detail"]
    assert not (tmp_path / "labels.csv").exists()


def test_bad_json_and_unknown_faces(client):
    r = client.put("/api/labels/faces/1", content=b"{not json", headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    assert client.get("/api/labels/faces/0/image.png").status_code == 404
    png = client.get("/api/labels/faces/458/image.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_labels_file_that_does_not_fit_is_refused_naming_the_line(tmp_path, grids):
    labels = tmp_path / "labels.csv"
    labels.write_text("face_nr;sex;glasses;hat;beard;smile\n1;F;N;N;N;Y\n2;Q;N;N;N;Y\n")
    with pytest.raises(FacesKerasError, match=r"labels.csv:3: label 'sex' has value 'Q'"):
        LabelStore(load_schema("grids"), grids, labels)
    labels.write_text("face_nr;sex;glasses;hat;beard;smile\n999;F;N;N;N;Y\n")
    with pytest.raises(FacesKerasError, match=r"labels.csv:2: face '999' is not in"):
        LabelStore(load_schema("grids"), grids, labels)


def test_a_folder_of_face_crops_is_labelled_by_file_name_and_prepare_reads_the_images(tmp_path, data_dir):
    import shutil

    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.data.store import Dataset

    schema = load_schema("grids")
    crops = tmp_path / "crops"
    crops.mkdir()
    for photo in sorted((data_dir / "celeba" / "img_celeba").glob("*.jpg"))[:30]:
        shutil.copy(photo, crops / photo.name)
    labels = tmp_path / "work" / "labels.csv"
    store = LabelStore(schema, crops, labels)
    ids = [face.id for face in store.faces]
    assert ids == sorted(p.stem for p in crops.iterdir())
    assert store.pixels(ids[0]).ndim == 3
    truth = (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()[1:31]  # any valid values
    given = {face_id: line.split(";")[1:] for face_id, line in zip(ids, truth)}
    for face_id, codes in given.items():
        store.set(face_id, dict(zip(schema.label_names, codes)))
    store.set(ids[4], drop=True)
    store.close()
    lines = labels.read_text().splitlines()
    assert lines[0] == "face_nr;sex;glasses;hat;beard;smile;drop;image"
    assert lines[1] == ";".join([ids[0], *given[ids[0]], "", f"../crops/{ids[0]}.jpg"])
    out = prepare_dataset(schema, labels, tmp_path / "prepared", config=PrepareConfig(images="files"))
    prepared = Dataset.load(out)
    assert sorted(prepared.faces["source_id"]) == sorted(set(ids) - {ids[4]})
    row = prepared.faces.set_index("source_id").loc[ids[0]]
    assert row["sex"] == int(given[ids[0]][0] == "M") and row["smile"] == int(given[ids[0]][4] == "Y")


def _tree_digest(folder):
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_prepared_dataset_is_labelled_beside_it_and_prepare_rebuilds_it_from_the_corrections(tmp_path, grids):
    import cv2
    import numpy as np

    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.data.store import Dataset

    # 30 real grid faces, one value missing, the training split augmented (zoomed copies must not be shown)
    lines = (grids / "faces-labels.csv").read_text().splitlines()[:31]
    cells = lines[3].split(";")
    cells[3] = ""  # face 3 has no hat value
    lines[3] = ";".join(cells)
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    dataset = prepare_dataset(load_schema("grids"), tmp_path / "in.csv", tmp_path / "ds", photos=grids,
                              config=PrepareConfig(limit=30, augment=("identity", "zoom")))
    before = Dataset.load(dataset)
    assert (before.faces["augmentation"] == "zoom").any()  # the test covers augmented copies
    source = before.faces[before.faces["augmentation"] == "identity"].set_index("source_id")
    digest = _tree_digest(dataset)
    typed = {line.split(";")[0]: line.split(";")[1:] for line in lines[1:]}
    names = load_schema("grids").label_names

    labels = tmp_path / "work" / "labels.csv"
    app = create_app(AppConfig(faces=str(dataset), labels=str(labels)))
    with TestClient(app) as c:
        index = c.get("/api/labels").json()
        assert index["kind"] == "dataset" and index["schema_file"] == str(tmp_path / "work" / "labels.schema.yaml")
        assert index["ids"] == [str(i) for i in range(1, 31)]  # the source faces only, in number order
        assert index["progress"] == {"labelled": 29, "dropped": 0, "total": 30}  # face 3 lacks its hat
        for face_id, codes in typed.items():  # pre-filled with the dataset's values; the missing one stays empty
            face = c.get(f"/api/labels/faces/{face_id}").json()
            assert face["values"] == dict(zip(names, codes)), face_id
        assert c.get("/api/labels?unlabelled=1").json()["ids"] == ["3"]
        png = c.get("/api/labels/faces/12/image.png")
        shown = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(shown, before.images[source.loc["12", "index"]][..., 0])
        # change two labels and drop one face, as the page does
        sex = {"F": "M", "M": "F"}[typed["5"][0]]
        smile = {"N": "Y", "Y": "N"}[typed["9"][4]]
        assert c.put("/api/labels/faces/5", json={"values": {"sex": sex}, "version": 0}).status_code == 200
        assert c.put("/api/labels/faces/9", json={"values": {"smile": smile}, "version": 0}).status_code == 200
        r = c.put("/api/labels/faces/17", json={"drop": True, "version": 0})
        assert r.json()["progress"] == {"labelled": 29, "dropped": 1, "total": 30}
    app.state.store.close()

    header, rows = _csv_rows(labels)
    assert header == ["face_nr", *names, "drop", "image"]
    on_disk = {r[0]: r for r in rows}
    assert list(on_disk) == [str(i) for i in range(1, 31)]  # every source face keeps its row
    assert on_disk["5"][1] == sex and on_disk["9"][5] == smile and on_disk["3"][3] == ""
    assert [r[0] for r in rows if r[6] == "Y"] == ["17"]
    assert on_disk["12"][7] == "labels-faces/12.png" and (labels.parent / "labels-faces" / "12.png").is_file()
    assert _tree_digest(dataset) == digest  # the prepared dataset is never written
    assert not list(labels.parent.glob(".*.tmp*"))

    # prepare reads the corrections back with the schema written beside them
    again = Dataset.load(prepare_dataset(load_schema(tmp_path / "work" / "labels.schema.yaml"), labels,
                                         tmp_path / "again"))
    rebuilt = again.faces.set_index("source_id")
    assert sorted(rebuilt.index, key=int) == [str(i) for i in range(1, 31) if i != 17]
    assert rebuilt.loc["5", "sex"] == int(sex == "M") and rebuilt.loc["9", "smile"] == int(smile == "Y")
    assert rebuilt.loc["3", "hat"] == -1
    for face_id in rebuilt.index:
        for name in names:
            if (face_id, name) not in (("5", "sex"), ("9", "smile")):
                assert rebuilt.loc[face_id, name] == source.loc[face_id, name], (face_id, name)
        assert np.array_equal(again.images[rebuilt.loc[face_id, "index"]],
                              before.images[source.loc[face_id, "index"]])  # the same pixels

    # reopening resumes from the labels file and reuses the crops; another dataset's crops are refused
    crops_digest = _tree_digest(labels.parent / "labels-faces")
    store = LabelStore(None, dataset, labels)
    assert store.face("5").values["sex"] == sex and store.face("17").drop
    store.close()
    assert _tree_digest(labels.parent / "labels-faces") == crops_digest
    other = prepare_dataset(load_schema("grids"), tmp_path / "in.csv", tmp_path / "other", photos=grids,
                            config=PrepareConfig(limit=20))
    with pytest.raises(FacesKerasError, match="labels-faces: holds face crops, but not those of"):
        LabelStore(None, other, labels)
    with pytest.raises(FacesKerasError, match="inside the prepared dataset"):
        LabelStore(None, dataset, dataset / "labels.csv")
    with pytest.raises(FacesKerasError, match="carries its own schema"):
        LabelStore(load_schema("utkface"), dataset, tmp_path / "u.csv")
    assert AppConfig(faces=str(dataset)).labels_path == tmp_path / "ds-labels.csv"  # beside it, not inside


# -- runs, files and paths ---------------------------------------------------------------------

def test_runs_pages_and_files_stay_inside_the_served_folders(tiny_run, tmp_path):
    root, run = tiny_run
    (tmp_path / "secret.txt").write_text("not served")
    link = run / "link-out.txt"
    if not link.exists():
        os.symlink(tmp_path / "secret.txt", link)
    with TestClient(create_app(AppConfig(runs=(str(root),)))) as c:
        runs = c.get("/api/runs").json()["runs"]
        assert [r["name"] for r in runs] == ["tiny"]
        assert runs[0]["preset"] == "default" and runs[0]["dataset"] == "grids120"
        metrics = json.loads((run / "metrics.json").read_text())["heads"]["labels"]["test"]
        assert runs[0]["per_label"]["sex"]["f1"] == pytest.approx(next(m["f1"] for m in metrics
                                                                         if m["label"] == "sex"))
        listing = c.get("/")
        assert listing.status_code == 200 and 'href="/runs/tiny"' in listing.text
        page = c.get("/runs/tiny")
        assert page.status_code == 200 and "Confusion matrices" in page.text
        sex = next(m for m in metrics if m["label"] == "sex")
        cm = next(m for m in c.get("/api/runs/tiny/confusion").json()["matrices"] if m["label"] == "sex")
        assert cm["matrix"] == [[sex["tn"], sex["fp"]], [sex["fn"], sex["tp"]]]
        assert c.get("/runs/tiny/files/config.yaml").text == (run / "config.yaml").read_text()
        for escape in ("/runs/tiny/files/%2e%2e/%2e%2e/secret.txt", "/runs/tiny/files/..%2f..%2fsecret.txt",
                       f"/runs/tiny/files/{'%2F'.join(['', *str(tmp_path / 'secret.txt').split('/')[1:]])}",
                       "/runs/tiny/files/link-out.txt"):
            r = c.get(escape)
            assert r.status_code in (403, 404), escape
            assert "not served" not in r.text
        assert c.get("/runs/tiny/files/nothing.txt").status_code == 404
        for url in ("/runs/nope", "/api/runs/nope/describe", "/api/runs/%2e%2e/describe", "/runs/nope/files/x"):
            r = c.get(url)
            assert r.status_code == 404 and "no run" in r.json()["detail"], url
    link.unlink()


def _post(c, run, *files, **form):
    return c.post("/predict", data={"run": run, **form}, files=[("files", f) for f in files])


def test_predict_finds_the_six_faces_of_the_group_photo_with_the_runs_thresholds(tiny_run, data_dir):
    from faces_keras.thresholds import ThresholdResult

    root, run = tiny_run
    thresholds = ThresholdResult.load(run / "thresholds.json").thresholds
    photo = (data_dir / "photos" / "group-6-faces.jpg").read_bytes()
    with TestClient(create_app(AppConfig(runs=(str(root),)))) as c:
        r = _post(c, "tiny", ("group.jpg", photo, "image/jpeg"))
        assert r.status_code == 200, r.text
        body = r.json()
        (result,) = body["photos"]
        assert len(result["faces"]) == 6
        xs = [f["box"][0] for f in result["faces"]]
        assert xs == sorted(xs)
        for face in result["faces"]:
            for name, t in thresholds.items():
                p = face["probabilities"][name]
                assert 0.0 <= p <= 1.0
                names = ["F", "M"] if name == "sex" else ["no", "yes"]
                assert face["labels"][name] == names[int(p >= t)]
        assert {lab["name"]: lab["threshold"] for lab in body["labels"]} == pytest.approx(thresholds)
        single = c.post("/api/predict", data={"run": "tiny"}, files={"file": ("one.jpg", photo, "image/jpeg")})
        assert [f["box"] for f in single.json()["photos"][0]["faces"]] == [f["box"] for f in result["faces"]]
        csv = _post(c, "tiny", ("group.jpg", photo, "image/jpeg"), ("b.jpg", photo, "image/jpeg"), format="csv")
        lines = csv.text.splitlines()
        assert lines[0].startswith("photo,face,x,y,w,h,sex,sex_score")
        assert len(lines) == 1 + 12 and lines[7].startswith("b.jpg,1,")


def test_bad_uploads_get_a_4xx_never_a_500(tiny_run, data_dir, tmp_path):
    root, _ = tiny_run
    photo = (data_dir / "photos" / "group-6-faces.jpg").read_bytes()
    with TestClient(create_app(AppConfig(runs=(str(root),), max_upload_mb=0.05)), raise_server_exceptions=False) as c:
        cases = [
            (_post(c, "tiny", ("notes.jpg", b"this is text, not a JPEG", "image/jpeg")), 415, "not an image"),
            (_post(c, "tiny", ("empty.png", b"", "image/png")), 415, "not an image"),
            (_post(c, "tiny", ("big.jpg", photo + b"\0" * 60_000, "image/jpeg")), 413, "over the"),
            (_post(c, "nope", ("group.jpg", photo[:1000], "image/jpeg")), 404, "no run 'nope'"),
            (_post(c, "../runs/tiny", ("group.jpg", photo[:1000], "image/jpeg")), 404, "no run"),
            (c.post("/predict", data={"run": "tiny"}), 422, "no photo"),
            (c.post("/predict", files=[("files", ("g.jpg", photo[:1000], "image/jpeg"))]), 422, "run"),
            (_post(c, "tiny", ("g.jpg", photo[:1000], "image/jpeg"), format="xml"), 422, "format"),
        ]
        for response, status, words in cases:
            assert response.status_code == status, response.text
            assert words in response.json()["detail"]


def test_saving_thresholds_keeps_the_old_file_and_refuses_bad_values(tiny_run, tmp_path):
    import shutil

    root, run = tiny_run
    copy_root = tmp_path / "runs"
    shutil.copytree(run, copy_root / "tiny")
    folder = copy_root / "tiny"
    before = (folder / "thresholds.json").read_text()
    with TestClient(create_app(AppConfig(runs=(str(copy_root),)))) as c:
        r = c.put("/api/runs/tiny/thresholds", json={"thresholds": {"smile": 0.8}})
        assert r.status_code == 200, r.text
        kept = folder / r.json()["kept"]
        assert kept.read_text() == before
        now = json.loads((folder / "thresholds.json").read_text())
        assert now["thresholds"]["smile"] == 0.8
        assert {k: v for k, v in now["thresholds"].items() if k != "smile"} == \
            {k: v for k, v in json.loads(before)["thresholds"].items() if k != "smile"}
        assert c.get("/api/runs/tiny/describe").json()["labels"][-1]["threshold"] == 0.8
        for body, words in (({"thresholds": {"smile": 1.5}}, "in [0, 1]"), ({"thresholds": {"age": 0.5}}, "no label"),
                            ({"smile": 0.5}, "expected a JSON object")):
            r = c.put("/api/runs/tiny/thresholds", json=body)
            assert 400 <= r.status_code < 500 and words in r.json()["detail"]
        assert json.loads((folder / "thresholds.json").read_text())["thresholds"]["smile"] == 0.8


# -- serving ----------------------------------------------------------------------------------

def test_binding_beyond_localhost_needs_the_host_given_and_says_what_it_exposes(tmp_path, grids):
    from faces_keras.app.config import exposure, is_loopback
    from faces_keras.app.server import serve

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    config = AppConfig(host="0.0.0.0", faces=str(grids), labels=str(tmp_path / "l.csv"), runs=("runs",))
    with pytest.raises(FacesKerasError, match="give --host 0.0.0.0 explicitly"):
        serve(config)
    text = exposure(config)
    assert str(tmp_path / "l.csv") in text and "runs" in text and "without a login" in text


def test_the_app_command_declares_its_flags():
    from faces_keras.cli import build_parser

    args = build_parser().parse_args(["app", "--faces", "f", "--runs", "a", "--runs", "b", "--port", "9001"])
    from faces_keras.cli.flags import settings_from

    config = settings_from(AppConfig, args)
    assert (config.faces, config.runs, config.port, config.host) == ("f", ("a", "b"), 9001, "127.0.0.1")
    assert "host" not in vars(args)  # not given: the default, localhost
    with pytest.raises(FacesKerasError):
        AppConfig(port=0)


def test_an_app_without_faces_or_runs_says_what_to_give_it():
    with TestClient(create_app(AppConfig())) as c:
        r = c.get("/api/labels")
        assert r.status_code == 404 and "--faces DIR" in r.json()["detail"]
        assert "--faces DIR" in c.get("/label").text
        assert "start the app with --runs DIR" in c.get("/").text
        assert c.get("/api/runs").json() == {"runs": []}
        assert c.get("/static/label.js").status_code == 200
        assert c.get("/static/../server.py").status_code == 404


def test_the_pages_fetch_nothing_from_the_network(grids, tmp_path):
    import re
    from pathlib import Path

    import faces_keras.app

    static = Path(faces_keras.app.__file__).with_name("static")
    with TestClient(create_app(AppConfig(faces=str(grids), labels=str(tmp_path / "l.csv")))) as c:
        texts = [c.get(url).text for url in ("/", "/label", "/try")]
        texts += [c.get(f"/static/{p.name}").text for p in sorted(static.iterdir())]
    assert len(texts) == 6
    for text in texts:
        assert not re.search(r"(src|href)=[\"']?(https?:)?//|url\((https?:)?//|@import|fetch\([\"']https?:", text)
        assert "googleapis" not in text and "cdn" not in text.lower()


def test_the_labelling_schema_of_a_prepared_dataset_is_delimited_with_letters_for_every_binary_label():
    from faces_keras.app.prepared import encoded_to_code, labelling_schema
    from faces_keras.labels.sources import _encode_binary_char

    celeba = load_schema("celeba")  # CelebA's 1/-1 attributes, beard = not No_Beard, detected crops
    schema = labelling_schema(celeba, "data/celeba")
    assert (schema.format, schema.options) == ("delimited", {"delimiter": ";", "id_column": "face_nr",
                                                             "images": "files"})
    assert schema.label_names == celeba.label_names
    assert [(lab.negative, lab.positive) for lab in schema.labels] == [("F", "M")] + [("N", "Y")] * 4
    for label in schema.labels:  # a dataset's encoded value goes out as a code that reads back as the same value
        assert [_encode_binary_char(label, encoded_to_code(label, v), "x") for v in (0, 1)] == [0, 1]
        assert encoded_to_code(label, -1) == ""
    utk = load_schema("utkface").select(["race", "age_band"])  # codes; bands written as class codes
    race, band = labelling_schema(utk, "data/utk").labels
    assert encoded_to_code(race, 2) == "2" and encoded_to_code(band, 3) == "20-29" and not band.bands
    with pytest.raises(FacesKerasError, match="'age' is a regression label"):
        labelling_schema(load_schema("utkface"), "data/utk")
