"""The HTML report: one self-contained page per run and split.

Everything is inline (CSS, a little JavaScript, faces and plots as base64 PNG
``data:`` URIs), so the file opens from ``file://``, mails as one attachment
and never reaches the network. The page holds:

* the run's facts and any warning (e.g. thresholds.json missing);
* per-label metrics over the whole split, at the tuned thresholds;
* a confusion matrix per binary (2 x 2) and multiclass (K x K) label;
* a gallery of sampled faces, each prediction in a ``cell right`` (green) or
  ``cell wrong`` (red) element carrying ``data-label``, ``data-truth`` and
  ``data-pred``; filters show all faces, errors only, and each binary label's
  false positives and false negatives (links to ``#<filter>`` anchors: the
  script hides the other faces, and CSS ``:target`` rules do the same with
  scripts off);
* the training history and threshold curves, when the run has them.

:func:`write_run_report` runs at the end of every training, so it is built
for speed: a face is a 64 px PNG the browser upscales (pixelated), no
matplotlib.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import numpy as np

from faces_keras.io import atomic_write_text
from faces_keras.reports.report import (DEFAULT_PER_CLASS, LabelResult, ReportData,
                                        binary_confusion, load_report_data, metrics_tables,
                                        report_filename)
from faces_keras.rundir import RunDir

FACE_PIXELS = 96  # faces are shown at this size, whatever the dataset's


def write_run_report(run: RunDir | str | Path, split: str = "test", per_class: int = DEFAULT_PER_CLASS,
                     out: str | Path | None = None, seed: int = 0) -> Path:
    """Write the HTML report of ``run`` (default ``<run>/report.html``, atomically); return its path."""
    data = load_report_data(run, split)
    path = Path(out) if out else data.run / report_filename(split)
    return write_html_report(data, path, per_class=per_class, seed=seed)


def write_html_report(data: ReportData, path: str | Path, per_class: int = DEFAULT_PER_CLASS,
                      seed: int = 0) -> Path:
    path = Path(path)
    atomic_write_text(path, render_html(data, per_class=per_class, seed=seed))
    return path


def render_html(data: ReportData, per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> str:
    """The whole page as a string."""
    positions = data.sample(per_class, seed)
    tables = metrics_tables(data)
    filters = _filters(data, positions)
    title = f"{data.run.path.name}: {data.split} predictions"
    body = "\n".join([
        f"<header><h1>{_e(title)}</h1>{_facts(data)}</header>",
        *[f'<p class="warning">&#9888; {_e(message)}</p>' for message in data.warnings],
        '<nav><a href="#metrics">Metrics</a> <a href="#confusion">Confusion matrices</a> '
        '<a href="#gallery">Faces</a> <a href="#training">Training</a></nav>',
        _metrics_section(data, tables),
        _confusion_section(data, tables),
        _gallery_section(data, positions, per_class, filters),
        _training_section(data),
    ])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>\n{CSS}{_filter_css(filters)}</style>\n</head>\n"
            f"<body>\n{body}\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n")


# -- pieces ---------------------------------------------------------------------------

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, decimals: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{decimals}f}"


def _facts(data: ReportData) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in data.facts.items())
    note = f"<dt>thresholds</dt><dd>{_e(data.threshold_note())}</dd>"
    return f'<dl class="facts">{rows}{note}</dl>'


def _metrics_section(data: ReportData, tables: dict) -> str:
    parts = [f'<section id="metrics"><h2>Metrics: {_e(data.split)} split, all {data.n} faces</h2>']
    binary = tables["binary"]
    if len(binary):
        columns = [("n", "n", 0), ("prevalence", "prevalence", 3), ("threshold", "threshold", 2),
                   ("precision", "precision", 3), ("recall", "recall", 3), ("f1", "F1", 3),
                   ("accuracy", "accuracy", 3), ("tp", "TP", 0), ("fp", "FP", 0), ("fn", "FN", 0),
                   ("tn", "TN", 0), ("roc_auc", "ROC AUC", 3)]
        head = "".join(f"<th>{_e(title)}</th>" for _, title, _ in columns)
        rows = []
        for row in binary.to_dict(orient="records"):
            cells = "".join(f'<td data-metric="{key}">{_number(row[key], d)}</td>' for key, _, d in columns)
            rows.append(f'<tr data-label="{_e(row["label"])}"><th>{_e(row["label"])}</th>{cells}</tr>')
        parts.append('<h3>Binary labels</h3><p class="note">precision, recall, F1 and accuracy at the '
                     'threshold shown; right = TP + TN, wrong = FP + FN</p>'
                     f'<table class="metrics binary"><tr><th>label</th>{head}</tr>{"".join(rows)}</table>')
    if tables["multiclass"]:
        rows = []
        for name, result in tables["multiclass"].items():
            cells = (f'<td data-metric="n">{result["n"]}</td>'
                     f'<td data-metric="accuracy">{_number(result["accuracy"])}</td>'
                     f'<td data-metric="macro_f1">{_number(result["macro_f1"])}</td>'
                     f'<td data-metric="right">{result["right"]}</td>'
                     f'<td data-metric="wrong">{result["wrong"]}</td>')
            rows.append(f'<tr data-label="{_e(name)}"><th>{_e(name)}</th>{cells}</tr>')
        parts.append('<h3>Multiclass labels</h3><p class="note">arg-max over classes, no threshold</p>'
                     '<table class="metrics multiclass"><tr><th>label</th><th>n</th><th>accuracy</th>'
                     f'<th>macro F1</th><th>right</th><th>wrong</th></tr>{"".join(rows)}</table>')
    if tables["regression"]:
        rows = "".join(
            f'<tr data-label="{_e(name)}"><th>{_e(name)}</th><td data-metric="n">{m["n"]}</td>'
            f'<td data-metric="mae">{_number(m["mae"], 2)}</td>'
            f'<td data-metric="rmse">{_number(m["rmse"], 2)}</td></tr>'
            for name, m in tables["regression"].items())
        parts.append('<h3>Regression labels</h3><table class="metrics regression"><tr><th>label</th>'
                     f'<th>n</th><th>MAE</th><th>RMSE</th></tr>{rows}</table>')
    parts.append("</section>")
    return "\n".join(parts)


def _confusion_section(data: ReportData, tables: dict) -> str:
    matrices = []
    for r in data.labels:
        if r.kind == "binary":
            matrices.append(_confusion_table(r, binary_confusion(r)))
        elif r.kind == "multiclass":
            matrices.append(_confusion_table(r, np.asarray(tables["multiclass"][r.name]["confusion"])))
    if not matrices:
        return '<section id="confusion"><h2>Confusion matrices</h2><p>No classification labels.</p></section>'
    return ('<section id="confusion"><h2>Confusion matrices</h2><p class="note">rows: true value, '
            f'columns: prediction</p><div class="matrices">{"".join(matrices)}</div></section>')


def _confusion_table(result: LabelResult, matrix: np.ndarray) -> str:
    names = result.value_names
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = []
    for i, true_name in enumerate(names):
        cells = []
        for j, pred_name in enumerate(names):
            count = int(matrix[i, j])
            kind = "diag" if i == j else ("off" if count else "zero")
            cells.append(f'<td class="count {kind}" data-truth="{_e(true_name)}" '
                         f'data-pred="{_e(pred_name)}">{count}</td>')
        rows.append(f"<tr><th>{_e(true_name)}</th>{''.join(cells)}</tr>")
    return (f'<table class="confusion" data-label="{_e(result.name)}"><caption>{_e(result.name)} '
            f'({int(matrix.sum())} faces)</caption><tr><th class="corner">true \\ predicted</th>{head}</tr>'
            f"{''.join(rows)}</table>")


# -- gallery ----------------------------------------------------------------------------

def _slug(index: int, name: str) -> str:
    return f"{index}-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}"


def _filters(data: ReportData, positions: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(id, title, mask over the split) of each filter: all, errors, then per label."""
    errors = np.zeros(data.n, dtype=bool)
    for r in data.labels:
        errors |= r.wrong
    filters = [("all", "All", np.ones(data.n, dtype=bool)), ("errors", "Errors only", errors)]
    for i, r in enumerate(data.labels):
        names = r.value_names
        if r.kind == "binary":
            negative, positive = names[0], names[1]
            filters.append((f"fp-{_slug(i, r.name)}", f"{r.name}: false positives ({positive} predicted, "
                            f"{negative} true)", r.wrong & (r.predicted == 1)))
            filters.append((f"fn-{_slug(i, r.name)}", f"{r.name}: false negatives ({negative} predicted, "
                            f"{positive} true)", r.wrong & (r.predicted == 0)))
        elif r.kind == "multiclass":
            filters.append((f"wrong-{_slug(i, r.name)}", f"{r.name}: wrong", r.wrong))
    return filters


def _filter_css(filters: list[tuple[str, str, np.ndarray]]) -> str:
    """Without scripts, ``#<filter>`` in the address hides the faces outside that filter."""
    return "".join(f"#{fid}:target ~ .faces .card:not(.f-{fid}){{display:none}}\n"
                   for fid, _, _ in filters if fid != "all")


def _gallery_section(data: ReportData, positions: np.ndarray, per_class: int,
                     filters: list[tuple[str, str, np.ndarray]]) -> str:
    buttons, anchors = [], []
    for fid, title, mask in filters:
        count = int(mask[positions].sum())
        active = " active" if fid == "all" else ""
        buttons.append(f'<a class="filter{active}" href="#{fid}" data-filter="{fid}">{_e(title)} '
                       f'<span class="n">{count}</span></a>')
        anchors.append(f'<span class="anchor" id="{fid}"></span>')
    cards = [_card(data, int(p), [fid for fid, _, mask in filters if mask[p]]) for p in positions]
    return ('<section id="gallery"><h2>Faces</h2>'
            f'<p class="note">{_e(data.sampling_note(per_class, len(positions)))}; '
            f'<span id="shown">{len(positions)}</span> shown. Binary probabilities are P(positive), '
            'multiclass ones P(predicted class).</p>'
            f'{"".join(anchors)}\n<div class="filters">{"".join(buttons)}</div>\n'
            f'<div class="faces">\n{"".join(cards)}\n</div></section>')


def _card(data: ReportData, position: int, filter_ids: list[str]) -> str:
    classes = " ".join(["card", *[f"f-{fid}" for fid in filter_ids]])
    face_id = data.face_id(position)
    rows = []
    for cell in data.cells(position):
        prob = "" if cell.probability is None else f' <span class="p">{cell.probability:.2f}</span>'
        rows.append(f'<tr><th>{_e(cell.label)}</th><td class="truth">{_e(cell.truth)}</td>'
                    f'<td class="cell {cell.status}" data-label="{_e(cell.label)}" '
                    f'data-truth="{_e(cell.truth)}" data-pred="{_e(cell.prediction)}">'
                    f"{_e(cell.prediction)}{prob}</td></tr>")
    return (f'<figure class="{classes}" data-index="{int(data.faces["index"].iat[position])}">'
            f'{_face_img(data.image(position), face_id)}<figcaption title="{_e(face_id)}">{_e(face_id)}</figcaption>'
            f'<table class="preds">{"".join(rows)}</table></figure>\n')


def _face_img(image: np.ndarray | None, face_id: str) -> str:
    if image is None:
        return f'<div class="noimage" style="width:{FACE_PIXELS}px;height:{FACE_PIXELS}px">no image</div>'
    return (f'<img src="{png_data_uri(image)}" width="{FACE_PIXELS}" height="{FACE_PIXELS}" '
            f'alt="face {_e(face_id)}">')


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 gray (H, W, 1) or RGB (H, W, 3) image as a ``data:image/png;base64,`` URI."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3:
        image = image[..., 0]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image.astype(np.uint8)))
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _training_section(data: ReportData) -> str:
    figures = []
    for name, caption in (("history.png", "Training history: train against validation"),
                          ("thresholds.png", "Threshold curves (validation): precision, recall, F1")):
        path = data.run / name
        if path.is_file():
            uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
            figures.append(f'<figure class="plot"><img src="{uri}" alt="{_e(caption)}">'
                           f"<figcaption>{_e(caption)}</figcaption></figure>")
    body = "".join(figures) or "<p>No history.png or thresholds.png in this run.</p>"
    return f'<section id="training"><h2>Training</h2>{body}</section>'


CSS = """\
:root { --right: #1a7f37; --right-bg: #dafbe1; --wrong: #cf222e; --wrong-bg: #ffebe9;
        --muted: #57606a; --line: #d0d7de; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       padding: 1em 2em 3em; max-width: 1400px; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: .3em; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2em; margin-top: 1.6em; }
h3 { margin-bottom: .2em; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; margin: 0; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .6em 1em; border-radius: 6px;
           font-weight: 600; }
nav { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid var(--line);
      z-index: 2; }
nav a { margin-right: 1.2em; }
.note { color: var(--muted); margin: .2em 0 .6em; }
table { border-collapse: collapse; }
.metrics th, .metrics td { border: 1px solid var(--line); padding: .25em .6em; }
.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
.metrics tr:first-child th { background: #f6f8fa; }
.matrices { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.confusion caption { font-weight: 600; text-align: left; padding-bottom: .2em; }
.confusion th, .confusion td { border: 1px solid var(--line); padding: .2em .6em; text-align: right; }
.confusion .corner { font-weight: normal; color: var(--muted); font-size: .85em; }
.confusion .diag { background: var(--right-bg); color: var(--right); font-weight: 600; }
.confusion .off { background: var(--wrong-bg); color: var(--wrong); }
.confusion .zero { color: #8c959f; }
.filters { display: flex; flex-wrap: wrap; gap: .4em; margin: .6em 0 1em; }
.filter { border: 1px solid var(--line); border-radius: 999px; padding: .2em .8em; text-decoration: none;
          color: inherit; background: #f6f8fa; }
.filter .n { color: var(--muted); }
.filter.active { background: #0969da; border-color: #0969da; color: #fff; }
.filter.active .n { color: #dbe9ff; }
.anchor { display: block; }
section, .anchor { scroll-margin-top: 3em; }  /* clear of the sticky navigation bar */
.faces { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .8em; }
.card { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: .5em; background: #fff; }
.card[hidden] { display: none; }
.card img, .card .noimage { display: block; margin: 0 auto; image-rendering: pixelated;
                            border-radius: 4px; }
.card .noimage { background: #eee; color: var(--muted); text-align: center; line-height: 96px; }
.card figcaption { text-align: center; color: var(--muted); font-size: .85em; margin: .2em 0;
                   overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.preds { width: 100%; font-size: .85em; }
.preds th { text-align: left; font-weight: normal; color: var(--muted); padding-right: .4em; }
.preds td { padding: .05em .3em; white-space: nowrap; }
.cell { border-radius: 3px; font-weight: 600; }
.cell.right { background: var(--right-bg); color: var(--right); }
.cell.wrong { background: var(--wrong-bg); color: var(--wrong); }
.cell.missing { color: var(--muted); font-weight: normal; }
.cell.value { font-weight: normal; }
.cell .p { font-weight: normal; opacity: .8; }
.plot { margin: 1em 0; } .plot img { max-width: 100%; border: 1px solid var(--line); }
.plot figcaption { color: var(--muted); }
"""

SCRIPT = """\
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll('.faces .card'));
  var links = Array.prototype.slice.call(document.querySelectorAll('a.filter'));
  var shown = document.getElementById('shown');
  var ids = links.map(function (a) { return a.getAttribute('data-filter'); });
  function apply(id) {
    var count = 0;
    cards.forEach(function (card) {
      var on = id === 'all' || card.classList.contains('f-' + id);
      card.hidden = !on;
      if (on) { count += 1; }
    });
    links.forEach(function (a) { a.classList.toggle('active', a.getAttribute('data-filter') === id); });
    if (shown) { shown.textContent = count; }
  }
  function fromHash() {
    var id = location.hash.slice(1);
    if (ids.indexOf(id) >= 0) { apply(id); }
  }
  window.addEventListener('hashchange', fromHash);
  apply('all');
  fromHash();
})();
"""

__all__ = ["write_run_report", "write_html_report", "render_html", "png_data_uri", "FACE_PIXELS"]
