"""Prediction reports (terminal, HTML, PNG, CSV) on real one-epoch runs of grid and FER-2013 faces.

Right and wrong are recomputed here from predictions.npz and thresholds.json
alone, never through the report code, and compared with what each report shows.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faces_keras.reports.report import load_report_data, write_predictions_csv
from faces_keras.rundir import RunDir
from tests.conftest import tiny_model

ESCAPE = "\x1b["
GREEN, RED = "\x1b[32m", "\x1b[31m"
COLOURED = re.compile(r"\x1b\[(32|31)m([^\x1b]*)\x1b\[0m")
# What a report needs from a run (not the model), for copies the tests change.
RUN_FILES = ("config.yaml", "schema.yaml", "manifest.json", "predictions.npz", "thresholds.json",
             "history.png", "thresholds.png")


# -- runs ---------------------------------------------------------------------------------

def train_grid_run(dataset: Path, base: Path) -> RunDir:
    """One epoch on the real grid faces, trained once per test session (cached under ``base``)."""
    from faces_keras.training.train import TrainConfig, train

    path = base / "report-runs" / "grids"
    if (path / "metrics.json").is_file():
        return RunDir(path)
    config = TrainConfig(dataset=str(dataset), epochs=1, max_train=128, verbose=0, model=tiny_model())
    return train(config, path, overwrite=True)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, grids_dataset) -> RunDir:
    return train_grid_run(grids_dataset, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def fer_run(tmp_path_factory, data_dir) -> RunDir:
    """A multiclass run: 63 real FER-2013 faces (6 train + 3 test per emotion) copied to a temp folder."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema
    from faces_keras.training.train import TrainConfig, train

    base = tmp_path_factory.mktemp("fer")
    schema = load_schema("fer2013")
    for split, count in (("train", 6), ("test", 3)):
        for emotion in schema["emotion"].classes:
            source = data_dir / "fer2013" / split / emotion
            target = base / "photos" / split / emotion
            target.mkdir(parents=True)
            for file in sorted(source.iterdir())[:count]:
                shutil.copy(file, target / file.name)
    dataset = prepare_dataset(schema, base / "photos", base / "dataset",
                              config=PrepareConfig(size=48, workers=1))
    config = TrainConfig(dataset=str(dataset), epochs=1, verbose=0, model=tiny_model())
    return train(config, base / "run")


def copy_run(run: RunDir, target: Path, leave_out: tuple[str, ...] = ()) -> RunDir:
    target.mkdir(parents=True)
    for name in RUN_FILES:
        if name not in leave_out and (run / name).is_file():
            shutil.copy(run / name, target / name)
    return RunDir(target)


# -- truth computed independently -------------------------------------------------------

def expected_binary(run: RunDir, split: str = "test", thresholds: dict | None = None):
    """Per label name: (right, labelled, predicted 0/1) from the raw files."""
    preds = np.load(run / "predictions.npz")
    if thresholds is None:
        thresholds = json.loads((run / "thresholds.json").read_text())["thresholds"]
    names = [name for name, spec in _schema_labels(run).items() if spec["kind"] == "binary"]
    prob, truth = preds[f"{split}/labels"].astype(float), preds[f"{split}/labels/true"].astype(int)
    out = {}
    for j, name in enumerate(names):
        predicted = (prob[:, j] >= thresholds[name]).astype(int)
        labelled = truth[:, j] >= 0
        out[name] = (labelled & (predicted == truth[:, j]), labelled, predicted)
    return out


def _schema_labels(run: RunDir) -> dict:
    import yaml

    return yaml.safe_load((run / "schema.yaml").read_text())["labels"]


def coloured_rows(text: str, face_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """face id -> [(colour code, coloured text)] in label order, from a terminal report."""
    rows = {}
    wanted = set(face_ids)
    for line in text.splitlines():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        first = plain.split()[0] if plain.split() else ""
        if first in wanted:
            rows[first] = COLOURED.findall(line)
    return rows


class ReportHTML(HTMLParser):
    """The facts a test needs from a report page: cells, metrics, confusion counts, URLs."""

    def __init__(self):
        super().__init__()
        self.cells: list[dict] = []
        self.metrics: dict[tuple[str, str], str] = {}
        self.confusion: dict[str, int] = {}
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._row_label = self._metric = self._matrix = None
        self._in_count = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        classes = (attrs.get("class") or "").split()
        for key in ("src", "href"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag == "td" and "cell" in classes:
            self.cells.append({"status": next((c for c in classes if c != "cell"), ""),
                               "label": attrs.get("data-label"), "truth": attrs.get("data-truth"),
                               "pred": attrs.get("data-pred")})
        if tag == "tr" and attrs.get("data-label"):
            self._row_label = attrs["data-label"]
        if tag == "td" and attrs.get("data-metric"):
            self._metric = attrs["data-metric"]
        if tag == "table" and "confusion" in classes:
            self._matrix = attrs["data-label"]
            self.confusion[self._matrix] = 0
        self._in_count = tag == "td" and "count" in classes

    def handle_data(self, data):
        if self._metric and self._row_label:
            self.metrics[(self._row_label, self._metric)] = data.strip()
            self._metric = None
        if self._in_count and self._matrix:
            self.confusion[self._matrix] += int(data)
            self._in_count = False

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row_label = None
        if tag == "table":
            self._matrix = None


def parse_report(text: str) -> ReportHTML:
    parser = ReportHTML()
    parser.feed(text)
    return parser


# -- terminal ---------------------------------------------------------------------------

def test_terminal_colours_right_green_and_wrong_red_at_tuned_thresholds(grid_run):
    from faces_keras.reports.terminal import render_report

    data = load_report_data(grid_run, "test")
    expected = expected_binary(grid_run)
    text = render_report(data, per_class=0, color=True)
    ids = [data.face_id(p) for p in range(data.n)]
    rows = coloured_rows(text, ids)
    assert len(rows) == data.n
    for position, face_id in enumerate(ids):
        shown = rows[face_id]
        judged = [name for name, (_, labelled, _) in expected.items() if labelled[position]]
        assert len(shown) == len(judged)
        for name, (code, cell) in zip(judged, shown):
            right, _, predicted = expected[name]
            assert code == ("32" if right[position] else "31"), (face_id, name, cell)
            value_names = data[name].value_names
            assert cell.split()[0] == value_names[predicted[position]]
    assert GREEN in text and RED in text


def test_terminal_is_plain_without_colour_off_a_tty_and_with_no_color(grid_run, monkeypatch):
    from faces_keras.reports.terminal import print_report, render_report

    class FakeTerminal(io.StringIO):
        def isatty(self):
            return True

    data = load_report_data(grid_run, "test")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert ESCAPE not in render_report(data, color=False)
    piped = io.StringIO()
    print_report(data, stream=piped)
    assert ESCAPE not in piped.getvalue() and data.face_id(data.sample()[0]) in piped.getvalue()
    tty = FakeTerminal()
    print_report(data, stream=tty)
    assert GREEN in tty.getvalue() or RED in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTerminal()
    print_report(data, stream=tty)
    assert ESCAPE not in tty.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", render_report(data, color=True))
    assert plain == render_report(data, color=False).replace(
        "colour off: right/wrong per face in the CSV", "green: right, red: wrong")


def test_sampling_takes_n_of_each_class_seeded_and_zero_takes_all(grid_run):
    data = load_report_data(grid_run, "test")
    for per_class in (1, 3):
        positions = data.sample(per_class, seed=0)
        assert np.array_equal(positions, data.sample(per_class, seed=0))
        for r in data.labels:
            for k in range(len(r.value_names)):
                available = int((r.truth == k).sum())
                assert int((r.truth[positions] == k).sum()) >= min(per_class, available)
    assert np.array_equal(data.sample(0), np.arange(data.n))
    assert len({tuple(data.sample(1, seed=s)) for s in range(5)}) > 1


# -- CSV --------------------------------------------------------------------------------

def test_csv_has_every_test_face_and_right_agrees_with_thresholds(grid_run):
    data = load_report_data(grid_run, "test")
    path = write_predictions_csv(data)
    assert path == grid_run / "predictions_test.csv"
    table = pd.read_csv(path, dtype={"id": str})
    preds = np.load(grid_run / "predictions.npz")
    assert len(table) == len(preds["test/index"])
    assert table["index"].tolist() == preds["test/index"].tolist()
    thresholds = json.loads((grid_run / "thresholds.json").read_text())["thresholds"]
    for j, (name, (right, labelled, predicted)) in enumerate(expected_binary(grid_run).items()):
        column = table[f"{name}_right"]
        assert column[labelled].astype(bool).tolist() == right[labelled].tolist()
        assert column[~labelled].isna().all()
        assert table[f"{name}_threshold"].eq(thresholds[name]).all()
        names = data[name].value_names
        assert table[f"{name}_pred"].tolist() == [names[v] for v in predicted]
        assert np.allclose(table[f"{name}_prob"], preds["test/labels"][:, j], atol=1e-4)


# -- HTML -------------------------------------------------------------------------------

def test_training_writes_a_self_contained_html_report(grid_run):
    path = grid_run / "report.html"
    assert path.is_file(), "evaluate_run should write report.html at the end of training"
    text = path.read_text()
    page = parse_report(text)
    assert page.urls and all(u.startswith("data:") or u.startswith("#") for u in page.urls), page.urls[:5]
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert "link" not in page.tags and "iframe" not in page.tags
    assert sum(u.startswith("data:image/png;base64,") for u in page.urls) >= 2 + len(page.cells) // 5
    assert "data:image/png;base64," in text and "history" in text


def test_html_cells_and_confusion_matrices_agree_with_metrics(grid_run, tmp_path):
    from faces_keras.reports.html import write_run_report

    path = write_run_report(grid_run, per_class=0, out=tmp_path / "all.html")
    page = parse_report(path.read_text())
    expected = expected_binary(grid_run)
    for name, (right, labelled, _) in expected.items():
        cells = [c for c in page.cells if c["label"] == name]
        assert sum(c["status"] == "right" for c in cells) == int(right.sum())
        assert sum(c["status"] == "wrong" for c in cells) == int((labelled & ~right).sum())
        tp, tn = int(page.metrics[(name, "tp")]), int(page.metrics[(name, "tn")])
        fp, fn = int(page.metrics[(name, "fp")]), int(page.metrics[(name, "fn")])
        assert tp + tn == int(right.sum()) and fp + fn == int((labelled & ~right).sum())
        assert page.confusion[name] == int(labelled.sum()) == int(page.metrics[(name, "n")])


def test_report_follows_thresholds_json_not_half(grid_run, tmp_path):
    """Thresholds set to each label's median probability change the verdicts a 0.5 cut would give."""
    run = copy_run(grid_run, tmp_path / "run")
    preds = np.load(run / "predictions.npz")
    stored = json.loads((run / "thresholds.json").read_text())
    names = list(stored["thresholds"])
    medians = {n: float(np.median(preds["test/labels"][:, j])) for j, n in enumerate(names)}
    stored["thresholds"] = medians
    (run / "thresholds.json").write_text(json.dumps(stored))
    data = load_report_data(run, "test")
    at_median = expected_binary(run, thresholds=medians)
    at_half = expected_binary(run, thresholds=dict.fromkeys(names, 0.5))
    assert any(not np.array_equal(at_median[n][2], at_half[n][2]) for n in names)
    for name in names:
        assert data[name].threshold == medians[name]
        assert np.array_equal(data[name].right, at_median[name][0])
    assert not data.warnings


def test_missing_thresholds_warns_loudly_and_uses_half(grid_run, tmp_path, caplog):
    from faces_keras.reports.html import write_run_report
    from faces_keras.reports.terminal import render_report

    run = copy_run(grid_run, tmp_path / "run", leave_out=("thresholds.json",))
    with caplog.at_level("WARNING"):
        data = load_report_data(run, "test")
    assert any("thresholds.json" in r.getMessage() and "0.5" in r.getMessage() for r in caplog.records)
    at_half = expected_binary(run, thresholds={r.name: 0.5 for r in data.labels})
    for name, (right, _, _) in at_half.items():
        assert data[name].threshold == 0.5 and np.array_equal(data[name].right, right)
    text = render_report(data, color=False)
    assert text.startswith("WARNING:") and "thresholds.json" in text and "DEFAULT threshold 0.5" in text
    page = write_run_report(run).read_text()
    assert 'class="warning"' in page and "thresholds.json" in page


def test_report_without_the_dataset_still_lists_predictions(grid_run, tmp_path):
    from faces_keras.reports.html import write_run_report

    run = copy_run(grid_run, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["path"] = str(tmp_path / "gone")
    (run / "manifest.json").write_text(json.dumps(manifest))
    data = load_report_data(run, "test")
    assert data.images is None and any("unavailable" in w for w in data.warnings)
    page = parse_report(write_run_report(run, per_class=0).read_text())
    assert len(page.cells) == data.n * len(data.labels)


def test_html_report_is_fast(grid_run, tmp_path):
    import time

    from faces_keras.reports.html import write_run_report

    started = time.perf_counter()
    write_run_report(grid_run, per_class=0, out=tmp_path / "all.html")
    assert time.perf_counter() - started < 2.0


# -- PNG gallery --------------------------------------------------------------------------

def test_gallery_figure_colours_each_label_line(grid_run, tmp_path):
    from matplotlib.colors import to_hex

    from faces_keras.reports.gallery import COLOURS, plot_gallery, save_gallery

    data = load_report_data(grid_run, "test")
    positions = data.sample(1, seed=3)
    figure = plot_gallery(data, positions)
    assert len(figure.axes) == len(positions)
    expected = expected_binary(grid_run)
    greens = sum(int(expected[n][0][positions].sum()) for n in expected)
    reds = sum(int((expected[n][1] & ~expected[n][0])[positions].sum()) for n in expected)
    colours = [to_hex(t.get_color()) for ax in figure.axes for t in ax.texts]
    assert colours.count(COLOURS["right"]) == greens and colours.count(COLOURS["wrong"]) == reds
    path = save_gallery(data, tmp_path / "gallery.png", per_class=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- multiclass -------------------------------------------------------------------------

def test_multiclass_report_uses_argmax_and_confusion_sums_to_faces(fer_run, tmp_path):
    from faces_keras.reports.html import write_run_report
    from faces_keras.reports.terminal import render_report

    preds = np.load(fer_run / "predictions.npz")
    truth, prob = preds["test/emotion/true"].astype(int), preds["test/emotion"]
    right = np.argmax(prob, axis=1) == truth
    data = load_report_data(fer_run, "test")
    assert not data.warnings and data.thresholds_from is None
    page = parse_report(write_run_report(fer_run, per_class=0, out=tmp_path / "fer.html").read_text())
    assert page.confusion["emotion"] == len(preds["test/index"]) == 21
    cells = [c for c in page.cells if c["label"] == "emotion"]
    assert sum(c["status"] == "right" for c in cells) == int(right.sum()) == int(page.metrics[("emotion", "right")])
    assert sum(c["status"] == "wrong" for c in cells) == int((~right).sum())
    classes = data["emotion"].value_names
    assert [c["truth"] for c in cells] == [classes[k] for k in truth]
    text = render_report(data, per_class=0, color=True)
    rows = coloured_rows(text, [data.face_id(p) for p in range(data.n)])
    assert [code for p in range(data.n) for code, _ in rows[data.face_id(p)]] == \
        ["32" if r else "31" for r in right]


# -- the command line ---------------------------------------------------------------------

def test_report_command_prints_plain_table_and_writes_files(grid_run, tmp_path, capsys):
    from faces_keras.cli import main

    out = tmp_path / "out"
    assert main(["report", str(grid_run.path), "--split", "val", "--per-class", "2", "--no-color",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ESCAPE not in printed
    for name in ("report_val.html", "report_val.png", "predictions_val.csv"):
        assert (out / name).is_file() and str(out / name) in printed
    preds = np.load(grid_run / "predictions.npz")
    assert len(pd.read_csv(out / "predictions_val.csv")) == len(preds["val/index"])


# -- several heads: binary, multiclass and regression --------------------------------------

@pytest.fixture(scope="module")
def utk_run(tmp_path_factory, data_dir) -> RunDir:
    """sex (binary), race and age_band (multiclass) and age (regression) on 120 real UTKFace faces."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema
    from faces_keras.training.train import TrainConfig, train

    base = tmp_path_factory.mktemp("utk")
    dataset = prepare_dataset(load_schema("utkface"), data_dir / "utkface" / "crop_part1", base / "dataset",
                              config=PrepareConfig(size=32, limit=120, workers=1))
    config = TrainConfig(dataset=str(dataset), epochs=1, verbose=0, model=tiny_model())
    return train(config, base / "run")


def test_multi_head_report_judges_classes_and_shows_regression_uncoloured(utk_run, tmp_path):
    from faces_keras.models.heads import plan_heads
    from faces_keras.reports.html import write_run_report
    from faces_keras.reports.terminal import render_report

    data = load_report_data(utk_run, "test")
    assert [(r.name, r.head) for r in data.labels] == \
        [(name, head.name) for head in plan_heads(utk_run.schema()) for name in head.labels]
    preds = np.load(utk_run / "predictions.npz")
    age_true, age_pred = preds["test/age/true"][:, 0], preds["test/age"][:, 0]
    page = parse_report(write_run_report(utk_run, per_class=0, out=tmp_path / "utk.html").read_text())
    age_cells = [c for c in page.cells if c["label"] == "age"]
    assert len(age_cells) == data.n and {c["status"] for c in age_cells} == {"value"}
    assert [float(c["pred"]) for c in age_cells] == pytest.approx(age_pred.tolist(), abs=0.051)
    assert [float(c["truth"]) for c in age_cells] == age_true.tolist()
    for name in ("race", "age_band"):
        right = np.argmax(preds[f"test/{name}"], axis=1) == preds[f"test/{name}/true"]
        assert sum(c["status"] == "right" for c in page.cells if c["label"] == name) == int(right.sum())
        assert page.confusion[name] == data.n
    assert page.metrics[("age", "mae")] == f"{np.abs(age_pred - age_true).mean():.2f}"
    text = render_report(data, per_class=0, color=True)
    rows = coloured_rows(text, [data.face_id(p) for p in range(data.n)])
    assert all(len(rows[data.face_id(p)]) == 3 for p in range(data.n))  # sex, race, age_band; not age
    table = pd.read_csv(write_predictions_csv(data))
    assert np.allclose(table["age_error"], np.round(age_pred, 3) - age_true, atol=2e-3)
    assert "age_right" not in table and table["race_right"].sum() == int(
        (np.argmax(preds["test/race"], axis=1) == preds["test/race/true"]).sum())
