"""Prediction reports (terminal, HTML, PNG, CSV, per-group tables, calibration) on hand-built runs.

No Keras here: each run directory is built by hand, the way training leaves
one (schema.yaml, manifest.json, predictions.npz via RunDir.save_predictions,
thresholds.json tuned on its validation split, history.png), over a small
prepared dataset of the package's synthetic faces. Predictions are noisy
functions of the truth, so every report has right and wrong faces.

Right and wrong are recomputed here from predictions.npz and thresholds.json
alone, never through the report code, and compared with what each report shows.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from faces_keras.reports.report import load_report_data, write_predictions_csv
from faces_keras.rundir import RunDir

ESCAPE = "\x1b["
GREEN, RED = "\x1b[32m", "\x1b[31m"
COLOURED = re.compile(r"\x1b\[(32|31)m([^\x1b]*)\x1b\[0m")
# What a report needs from a run (not the model), for copies the tests change.
RUN_FILES = ("config.yaml", "schema.yaml", "manifest.json", "predictions.npz", "thresholds.json",
             "history.png", "thresholds.png")
SPLIT_SHARES = (("train", 0.6), ("val", 0.2), ("test", 0.2))


# -- hand-built runs ------------------------------------------------------------------------

def _truth(schema, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Encoded truth per label: binary 1/0 with a few missing, classes, ages in years."""
    truth = {}
    for k, label in enumerate(schema.labels):
        if label.kind == "binary":
            values = (rng.random(n) < 0.25 + 0.1 * k).astype(int)
            if k:  # the first label is always known, the others miss a few faces
                values[rng.random(n) < 0.05] = -1
        elif label.kind == "multiclass":
            values = rng.integers(0, label.num_classes, n)
        else:
            values = np.round(rng.uniform(1, 90, n))
        truth[label.name] = values
    if any(label.bands for label in schema.labels):  # age_band follows age, as prepare reads it
        for label in schema.labels:
            if label.bands:
                truth[label.name] = np.digitize(truth["age"], label.bands[1:-1]).astype(int)
    return truth


def _outputs(head, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A noisy model's output for ``truth``: mostly right, sometimes confidently wrong."""
    m = len(truth)
    if head.kind == "binary":
        signal = np.where(truth == 1, 1.0, np.where(truth == 0, -1.0, 0.0))
        logits = 1.6 * signal + rng.normal(0, 1.4, truth.shape)
        return (1 / (1 + np.exp(-logits))).astype("float32")
    if head.kind == "multiclass":
        logits = rng.normal(0, 1, (m, head.units))
        known = truth >= 0
        logits[np.flatnonzero(known), truth[known].astype(int)] += 1.8
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype("float32")
    return (truth.reshape(m, 1) + rng.normal(0, 8, (m, 1))).astype("float32")


def build_run(base: Path, schema_name: str = "grids", n: int = 200, seed: int = 0, size: int = 32,
              gray: bool = True) -> RunDir:
    """A run directory as training leaves it, over a prepared dataset of ``n`` synthetic faces."""
    from faces_keras.data.store import Dataset, write_dataset
    from faces_keras.data.synthetic import draw_face
    from faces_keras.labels import load_schema
    from faces_keras.labels.heads import make_targets, plan_heads
    from faces_keras.reports.plots import plot_history
    from faces_keras.thresholds import plot_threshold_curves
    from faces_keras.thresholds.tune import tune_thresholds

    schema = load_schema(schema_name)
    rng = np.random.default_rng(seed)
    truth = _truth(schema, n, rng)
    drawn = {name: np.clip(truth[name], 0, 1).astype(int) for name in ("sex", "glasses", "hat", "beard")
             if name in truth and schema[name].kind == "binary"}
    images = np.stack([draw_face(rng, {k: int(v[i]) for k, v in drawn.items()}, size) for i in range(n)])
    if gray:
        images = cv2.cvtColor(images.reshape(-1, size, 3), cv2.COLOR_BGR2GRAY).reshape(n, size, size, 1)
    else:
        images = images[..., ::-1].copy()  # RGB
    splits = np.concatenate([[name] * int(round(share * n)) for name, share in SPLIT_SHARES])[:n]
    splits = rng.permutation(splits)
    faces = pd.DataFrame({"id": [f"{i + 1}" for i in range(n)], "source_id": [f"photo{i // 25}" for i in range(n)],
                          "split": splits, "augmentation": "identity", "origin": "synthetic", **truth})
    dataset = write_dataset(base / "dataset", images, faces, schema, settings={"size": size})
    run = RunDir(base / "run")
    run.path.mkdir(parents=True)
    schema.dump(run / "schema.yaml")
    (run / "manifest.json").write_text(json.dumps({**Dataset.load(dataset).manifest, "path": str(dataset)}))
    run.write_config({"model": {"preset": "hand-built"}})
    heads = plan_heads(schema)
    targets = make_targets(faces, heads)
    arrays = {}
    for split in ("val", "test"):
        index = np.flatnonzero(splits == split)
        arrays[f"{split}/index"] = index
        for head in heads:
            arrays[f"{split}/{head.name}/true"] = targets[head.name][index]
            arrays[f"{split}/{head.name}"] = _outputs(head, targets[head.name][index], rng)
    run.save_predictions(arrays)
    binary = [h for h in heads if h.kind == "binary"]
    if binary:
        head = binary[0]
        tuned = tune_thresholds(arrays[f"val/{head.name}/true"].astype(int), arrays[f"val/{head.name}"],
                                list(head.labels))
        tuned.save(run / "thresholds.json")
        plot_threshold_curves(tuned, run / "thresholds.png")
    plot_history(pd.DataFrame({"epoch": [0, 1, 2], "loss": [0.9, 0.7, 0.6], "val_loss": [0.95, 0.8, 0.75]}),
                 run / "history.png")
    return run


def build_grid_run(base: Path) -> RunDir:
    """The five binary labels of the grid schema on 200 synthetic gray faces (cached under ``base``)."""
    path = base / "report-runs" / "grids"
    if (path / "run" / "history.png").is_file():
        return RunDir(path / "run")
    return build_run(path)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory) -> RunDir:
    return build_grid_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def fer_run(tmp_path_factory) -> RunDir:
    """A multiclass run: the seven FER-2013 emotions on 150 synthetic gray faces."""
    return build_run(tmp_path_factory.mktemp("fer"), "fer2013", n=150, seed=1, size=48)


@pytest.fixture(scope="module")
def utk_run(tmp_path_factory) -> RunDir:
    """sex (binary), race and age_band (multiclass) and age (regression) on 200 synthetic colour faces."""
    return build_run(tmp_path_factory.mktemp("utk"), "utkface", n=200, seed=2, gray=False)


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


# -- the library: keras-free, typed, nothing printed ---------------------------------------

def test_importing_reports_leaves_keras_out():
    code = ("import sys, faces_keras.reports, faces_keras.reports.html, faces_keras.reports.gallery; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_report_modules_import_each_other_one_way():
    """No cycle among faces_keras.reports.*: renderers import the data model, report.py orchestrates."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("faces_keras")
    modules = sorted(m for m in graph.modules if m.startswith("faces_keras.reports."))
    assert {"faces_keras.reports.results", "faces_keras.reports.report"} <= set(modules)
    cycles = [(a, b) for a in modules for b in modules
              if a != b and graph.direct_import_exists(importer=a, imported=b)
              and graph.find_shortest_chain(importer=b, imported=a)]
    assert cycles == []
    for renderer in ("html", "terminal", "gallery", "groups", "load"):
        assert not graph.find_shortest_chain(importer=f"faces_keras.reports.{renderer}",
                                             imported="faces_keras.reports.report")


def test_report_config_declares_todays_flags_and_checks_values():
    from faces_keras.errors import ConfigError
    from faces_keras.reports import ReportConfig
    from faces_keras.settings import settings_of

    flags = {f.name: meta.flag or "--" + f.name.replace("_", "-") for f, meta in settings_of(ReportConfig)}
    assert flags == {"split": "--split", "per_class": "--per-class", "color": "--no-color", "out": "--out"}
    assert ReportConfig() == ReportConfig("test", 5, True, None)
    for bad in ({"split": "train"}, {"per_class": -1}, {"per_class": "many"}):
        with pytest.raises(ConfigError):
            ReportConfig(**bad)


def test_write_report_writes_every_file_and_returns_the_terminal_text(grid_run, tmp_path, capsys):
    from faces_keras.reports import ReportConfig, write_report

    result = write_report(grid_run, ReportConfig(split="val", per_class=2, out=str(tmp_path / "out")))
    assert capsys.readouterr().out == ""  # the library prints nothing
    names = [path.name for path in result.paths]
    assert names == ["report_val.html", "report_val.png", "predictions_val.csv", "groups_val.csv",
                     "groups_val.md", "reliability_val.png"]
    assert all(path.parent == tmp_path / "out" and path.is_file() for path in result.paths)
    assert result.reliability.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert GREEN in result.terminal and ESCAPE not in result.terminal_plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.terminal) == result.terminal_plain.replace(
        "colour off: right/wrong per face in the CSV", "green: right, red: wrong")
    assert "expected calibration error" in result.terminal_plain
    plain = write_report(grid_run, ReportConfig(color=False, out=str(tmp_path / "plain")))
    assert plain.terminal == plain.terminal_plain and plain.html.name == "report.html"
    assert plain.groups_csv.name == "groups.csv" and plain.reliability.name == "reliability.png"


def _set_inputs(run: RunDir, split: str = "test"):
    """A labelled set as `evaluate` has it: rows with id and truth, images, head outputs, thresholds."""
    from faces_keras.data.store import Dataset

    preds = np.load(run / "predictions.npz")
    dataset = Dataset.load(json.loads((run / "manifest.json").read_text())["path"])
    index = preds[f"{split}/index"]
    faces = dataset.faces.iloc[index].reset_index(drop=True)
    probabilities = {"labels": preds[f"{split}/labels"]}
    thresholds = json.loads((run / "thresholds.json").read_text())["thresholds"]
    return faces, dataset.images[index], probabilities, thresholds


def test_write_set_report_scores_any_labelled_set(grid_run, tmp_path):
    from faces_keras.reports import ReportConfig, write_set_report

    faces, images, probabilities, thresholds = _set_inputs(grid_run)
    faces = faces[["id", *[c for c in faces.columns if c in thresholds]]]  # id and the labels only
    result = write_set_report(tmp_path / "second", schema=grid_run.schema(), faces=faces, images=images,
                              probabilities=probabilities, thresholds=thresholds,
                              config=ReportConfig(per_class=0, color=False), title="second batch")
    assert [p.name for p in result.paths][:3] == ["report.html", "report_test.png", "predictions_test.csv"]
    expected = expected_binary(grid_run)
    table = pd.read_csv(result.predictions, dtype={"id": str})
    assert table["id"].tolist() == faces["id"].tolist()
    page = parse_report(result.html.read_text())
    for name, (right, labelled, predicted) in expected.items():
        assert table[f"{name}_right"][labelled].astype(bool).tolist() == right[labelled].tolist()
        cells = [c for c in page.cells if c["label"] == name]
        assert sum(c["status"] == "right" for c in cells) == int(right.sum())
    assert "second batch" in result.html.read_text() and "second batch" in result.terminal


def test_write_set_report_refuses_what_does_not_fit_the_schema(grid_run, tmp_path):
    from faces_keras.reports import ReportError, write_set_report

    faces, images, probabilities, thresholds = _set_inputs(grid_run)
    schema = grid_run.schema()
    common = dict(schema=schema, images=images, title="set")
    with pytest.raises(ReportError, match="glasses"):
        write_set_report(tmp_path / "a", faces=faces.drop(columns=["glasses"]), probabilities=probabilities,
                         thresholds=thresholds, **common)
    with pytest.raises(ReportError, match=r"\['sex'\] are not encoded"):
        write_set_report(tmp_path / "e", faces=faces.assign(sex=np.where(faces["sex"] == 1, "M", "F")),
                         probabilities=probabilities, thresholds=thresholds, **common)
    with pytest.raises(ReportError, match="threshold.*hat"):
        write_set_report(tmp_path / "b", faces=faces, probabilities=probabilities,
                         thresholds={k: v for k, v in thresholds.items() if k != "hat"}, **common)
    with pytest.raises(ReportError, match="head 'labels'"):
        write_set_report(tmp_path / "c", faces=faces, probabilities={}, thresholds=thresholds, **common)
    with pytest.raises(ReportError, match="columns"):
        write_set_report(tmp_path / "d", faces=faces, probabilities={"labels": probabilities["labels"][:, :3]},
                         thresholds=thresholds, **common)
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()


def test_reports_read_heads_from_the_schema_not_the_file_keys(grid_run, tmp_path):
    from faces_keras.errors import RunError

    run = copy_run(grid_run, tmp_path / "run")
    arrays = dict(np.load(run / "predictions.npz"))
    arrays["test/extra"] = arrays.pop("test/labels")  # an extra key must not pass for the binary head
    arrays["test/extra/true"] = arrays.pop("test/labels/true")
    run.save_predictions(arrays)
    with pytest.raises(RunError, match="test/labels"):
        load_report_data(run, "test")


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

def test_the_html_report_is_self_contained(grid_run, tmp_path):
    from faces_keras.reports import ReportConfig, write_report

    path = write_report(grid_run, ReportConfig(out=str(tmp_path))).html
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
    assert page.confusion["emotion"] == len(preds["test/index"]) == data.n > 0
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

def test_multi_head_report_judges_classes_and_shows_regression_uncoloured(utk_run, tmp_path):
    from faces_keras.labels.heads import plan_heads
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
