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
* per-group metrics: each label's scores split by every other label, with
  bootstrap intervals and the gaps beyond the noise flagged (:mod:`.groups`);
* calibration: the expected calibration error and a reliability diagram per
  binary label and multiclass head (:mod:`.calibration`);
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
from faces_keras.reports.calibration import ReliabilityCurve, calibration_curves
from faces_keras.reports.groups import GroupReport, group_metrics
from faces_keras.reports.load import load_report_data
from faces_keras.reports.results import (DEFAULT_PER_CLASS, LabelResult, ReportData, binary_confusion,
                                         metrics_tables)
from faces_keras.rundir import RunDir

FACE_PIXELS = 96  # faces are shown at this size, whatever the dataset's


def report_filename(split: str) -> str:
    """``report.html`` for test (what training writes), ``report_<split>.html`` otherwise."""
    return "report.html" if split == "test" else f"report_{split}.html"


def write_run_report(run: RunDir | str | Path, split: str = "test", per_class: int = DEFAULT_PER_CLASS,
                     out: str | Path | None = None, seed: int = 0) -> Path:
    """Write the HTML report of one split of a run (only the page; ``write_report`` writes every file).

    Args:
        run: the run directory.
        split: ``val`` or ``test``.
        per_class: faces of each class of each label in the gallery (0: all).
        out: the HTML file (default ``<run>/report.html``, ``report_val.html`` for val).
        seed: the sampling seed.

    Returns:
        The path written (atomically).
    """
    data = load_report_data(run, split)
    path = Path(out) if out else Path(data.source) / report_filename(split)
    return write_html_report(data, path, per_class=per_class, seed=seed)


def write_html_report(data: ReportData, path: str | Path, per_class: int = DEFAULT_PER_CLASS,
                      seed: int = 0, groups: GroupReport | None = None,
                      calibration: dict[str, ReliabilityCurve] | None = None) -> Path:
    """Write :func:`render_html` to ``path`` atomically; return the path."""
    path = Path(path)
    atomic_write_text(path, render_html(data, per_class=per_class, seed=seed, groups=groups,
                                        calibration=calibration))
    return path


def render_html(data: ReportData, per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
                groups: GroupReport | None = None,
                calibration: dict[str, ReliabilityCurve] | None = None) -> str:
    """The whole page as a string.

    Args:
        data: the report's data.
        per_class: faces of each class of each label in the gallery (0: all).
        seed: the sampling seed.
        groups: the per-group metrics (computed here when not given).
        calibration: label -> reliability curve (computed here when not given).

    Returns:
        The HTML document.
    """
    positions = data.sample(per_class, seed)
    tables = metrics_tables(data)
    filters = _filters(data, positions)
    groups = group_metrics(data.labels) if groups is None else groups
    calibration = calibration_curves(data.labels) if calibration is None else calibration
    title = f"{data.name}: {data.split} predictions"
    body = "\n".join([
        f"<header><h1>{_e(title)}</h1>{_facts(data)}</header>",
        *[f'<p class="warning">&#9888; {_e(message)}</p>' for message in data.warnings],
        '<nav><a href="#metrics">Metrics</a> <a href="#confusion">Confusion matrices</a> '
        '<a href="#groups">Groups</a> <a href="#calibration">Calibration</a> '
        '<a href="#gallery">Faces</a> <a href="#training">Training</a></nav>',
        _metrics_section(data, tables),
        _confusion_section(data, tables),
        _groups_section(groups),
        _calibration_section(calibration),
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
                   ("tn", "TN", 0), ("roc_auc", "ROC AUC", 3), ("ece", "ECE", 3)]
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
                     f'<td data-metric="wrong">{result["wrong"]}</td>'
                     f'<td data-metric="ece">{_number(result["ece"])}</td>')
            rows.append(f'<tr data-label="{_e(name)}"><th>{_e(name)}</th>{cells}</tr>')
        parts.append('<h3>Multiclass labels</h3><p class="note">arg-max over classes, no threshold</p>'
                     '<table class="metrics multiclass"><tr><th>label</th><th>n</th><th>accuracy</th>'
                     f'<th>macro F1</th><th>right</th><th>wrong</th><th>ECE</th></tr>{"".join(rows)}</table>')
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
    return (f'<figure class="{classes}" data-index="{data.face_index(position)}">'
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


def _groups_section(groups: GroupReport) -> str:
    parts = ['<section id="groups"><h2>Per-group metrics</h2>',
             f'<p class="note">each label\'s metrics on the faces of each group of every other label '
             f'(true values); {_e(groups.method())}.</p>']
    if not len(groups.gaps):
        parts.append("<p>No other label to split by.</p></section>")
        return "\n".join(parts)
    flagged = groups.flagged
    if len(flagged):
        items = "".join(
            f'<li class="gap-flag" data-label="{_e(r.label)}" data-by="{_e(r.by)}" data-metric="{_e(r.metric)}">'
            f"{_e(r.label)} {_e(r.metric)} by {_e(r.by)}: {_e(r.worst)} {_number(r.worst_value)} against "
            f"{_e(r.best)} {_number(r.best_value)} (gap {_number(r.gap)}, interval {_number(r.low)} to "
            f"{_number(r.high)})</li>" for r in flagged.itertuples(index=False))
        parts.append(f'<p class="warning">&#9888; {len(flagged)} gap(s) beyond the noise</p><ul>{items}</ul>')
    else:
        parts.append(f"<p>No gap beyond the noise in {len(groups.gaps)} comparisons.</p>")
    parts += [_group_table(groups, label) for label in dict.fromkeys(groups.by_group["label"])]
    parts.append("</section>")
    return "\n".join(parts)


def _group_table(groups: GroupReport, label: str) -> str:
    """One label's metrics per group of every other label: a row per group, a column per metric."""
    rows = groups.by_group[groups.by_group["label"] == label]
    metrics = list(dict.fromkeys(rows["metric"]))
    mine = [r for r in groups.flagged.itertuples(index=False) if r.label == label]
    flagged = {(r.by, r.metric): r.worst for r in mine}
    best = {(r.by, r.metric): r.best for r in mine}
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    body = []
    for (by, group), part in rows.groupby(["by", "group"], sort=False):
        cells = []
        for metric in metrics:
            r = part[part["metric"] == metric].iloc[0]
            state = ("flagged" if flagged.get((by, metric)) == group
                     else "best" if best.get((by, metric)) == group else "")
            classes = f"score {state}".strip()
            cells.append(f'<td class="{classes}" data-score="{_e(metric)}" title="{int(r.support)} faces counted">'
                         f'{_number(r.value)} '
                         f'<span class="ci">({_number(r.low)} to {_number(r.high)})</span></td>')
        body.append(f'<tr class="group-row" data-target="{_e(label)}" data-by="{_e(by)}" data-group="{_e(group)}">'
                    f'<td class="name">{_e(by)}</td><td class="name">{_e(group)}</td>'
                    f'<td>{int(part["n"].iloc[0])}</td>{"".join(cells)}</tr>')
    return (f'<table class="metrics groups" data-target="{_e(label)}"><caption>{_e(label)}</caption>'
            f'<tr><th>by</th><th>group</th><th>n</th>{head}</tr>{"".join(body)}</table>')


def _calibration_section(calibration: dict[str, ReliabilityCurve]) -> str:
    if not calibration:
        return ('<section id="calibration"><h2>Calibration</h2><p>No classification labels.</p>'
                "</section>")
    rows = "".join(f'<tr data-label="{_e(c.label)}"><th>{_e(c.label)}</th><td>{_e(c.kind)}</td>'
                   f'<td>{c.n}</td><td data-metric="ece">{_number(c.ece)}</td></tr>'
                   for c in calibration.values())
    bins = len(next(iter(calibration.values())).counts)
    diagrams = "".join(reliability_svg(c) for c in calibration.values())
    return ('<section id="calibration"><h2>Calibration</h2><p class="note">expected calibration error over '
            f'{bins} equal-width bins: binary labels P(positive) against the positive rate, multiclass '
            'labels the top-label confidence against accuracy</p>'
            f'<table class="metrics calibration"><tr><th>label</th><th>kind</th><th>n</th><th>ECE</th></tr>'
            f'{rows}</table><div class="diagrams">{diagrams}</div></section>')


def reliability_svg(curve: ReliabilityCurve, size: int = 200) -> str:
    """One reliability diagram as inline SVG: the observed rate per bin as bars, the diagonal, the ECE.

    Each bar spans its bin; a dot marks the bin's mean confidence against its
    observed rate (on the diagonal when the bin is calibrated).

    Drawn without matplotlib, so the page stays fast to write at the end of every
    training; :func:`faces_keras.reports.calibration.save_reliability` draws the
    same diagrams as a PNG file.
    """
    pad, plot = 28, size - 36
    x = lambda v: pad + v * plot  # noqa: E731
    y = lambda v: 8 + (1 - v) * plot  # noqa: E731
    width = plot / len(curve.counts)
    bars = []
    for b, count in enumerate(curve.counts):
        if not count:
            continue
        rate, conf = float(curve.observed[b]), float(curve.confidence[b])
        bars.append(f'<rect class="bar" x="{x(curve.edges[b]) + 1:.1f}" y="{y(rate):.1f}" width="{width - 2:.1f}" '
                    f'height="{y(0) - y(rate):.1f}" data-bin="{b}" data-count="{int(count)}" '
                    f'data-observed="{rate:.4f}" data-confidence="{conf:.4f}"><title>{count} faces, '
                    f'confidence {conf:.2f}, observed {rate:.2f}</title></rect>'
                    f'<circle class="mean" cx="{x(conf):.1f}" cy="{y(rate):.1f}" r="2.5"/>')
    ticks = "".join(f'<text x="{x(v):.1f}" y="{y(0) + 12:.1f}" text-anchor="middle">{v:g}</text>'
                    f'<text x="{pad - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:g}</text>' for v in (0, 0.5, 1))
    axis = "P(positive)" if curve.kind == "binary" else "top-label confidence"
    return (f'<figure class="reliability" data-label="{_e(curve.label)}"><svg '
            f'width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
            f'aria-label="reliability diagram of {_e(curve.label)}">'
            f'<rect x="{pad}" y="8" width="{plot}" height="{plot}" class="frame"/>{"".join(bars)}'
            f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" class="diagonal"/>{ticks}</svg>'
            f"<figcaption>{_e(curve.label)}: ECE {_number(curve.ece)} (n={curve.n}); x: {axis}, "
            f"y: {'positive rate' if curve.kind == 'binary' else 'accuracy'}</figcaption></figure>")


def figure_data_uri(figure, dpi: int = 80) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,`` URI."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _training_section(data: ReportData) -> str:
    figures = []
    for caption, path in data.plots.items():
        path = Path(path)
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
.diagrams { display: flex; flex-wrap: wrap; gap: 1em; }
.reliability { margin: 0; } .reliability figcaption { color: var(--muted); font-size: .85em; max-width: 200px; }
.reliability .frame { fill: #f6f8fa; stroke: var(--line); }
.reliability .bar { fill: #0969da; opacity: .75; }
.reliability .mean { fill: var(--wrong); }
.reliability .diagonal { stroke: var(--wrong); stroke-width: 1; stroke-dasharray: 3 2; }
.reliability text { font-size: 9px; fill: var(--muted); }
.groups { margin: .8em 0; } .groups caption { font-weight: 600; text-align: left; padding-bottom: .2em; }
.groups td.name { text-align: left; }
.groups td.flagged { background: var(--wrong-bg); color: var(--wrong); font-weight: 600; }
.groups td.best { color: var(--right); }
.groups .ci { color: var(--muted); font-size: .85em; font-weight: normal; }
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

__all__ = ["write_run_report", "write_html_report", "render_html", "report_filename", "png_data_uri",
           "figure_data_uri", "reliability_svg", "FACE_PIXELS"]
