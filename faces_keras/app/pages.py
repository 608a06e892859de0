"""The app's HTML pages: the run list, a run, labelling and try-a-model.

Pages are plain HTML written here, with the package's own script and style
(``/static``); the labelling and try pages fill themselves from the JSON API.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

NAV = ('<nav class="top"><a href="/">Runs</a> <a href="/label">Label</a> <a href="/try">Try a model</a>'
       '<span class="brand">faces-keras</span></nav>')


def page(title: str, body: str, script: str | None = None) -> str:
    """A whole page: the shared navigation, ``body`` and an optional script of /static."""
    tag = f'<script src="/static/{script}"></script>' if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - faces-keras'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="/static/app.css"></head><body>{NAV}<main>{body}</main>{tag}'
            '</body></html>')


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else escape(str(value))


def runs_page(summaries: list[dict[str, Any]], roots: tuple[str, ...]) -> str:
    """The run list: preset, dataset, date and headline metrics of each run, side by side."""
    if not summaries:
        where = ", ".join(roots) or "no folder (start the app with --runs DIR)"
        return page("Runs", f"<h1>Runs</h1><p class=\"muted\">No runs in {escape(where)}.</p>")
    metric_names = list(summaries[0]["metrics"])
    labels = [name for s in summaries for name in s["per_label"]]
    labels = list(dict.fromkeys(labels))
    head = ("<tr><th>run</th><th>preset</th><th>dataset</th><th>date</th>"
            + "".join(f"<th>{escape(m)}</th>" for m in metric_names)
            + "".join(f"<th>{escape(str(n))} F1</th>" for n in labels) + "<th></th></tr>")
    rows = []
    for s in summaries:
        name = escape(s["name"])
        rows.append(
            f'<tr><td><a href="/runs/{name}">{name}</a></td><td>{escape(s["preset"])}</td>'
            f'<td>{escape(s["dataset"])}</td><td>{escape(s["date"])}</td>'
            + "".join(f"<td class=\"num\">{_number(s['metrics'][m])}</td>" for m in metric_names)
            + "".join(f"<td class=\"num\">{_number(s['per_label'].get(n, {}).get('f1'))}</td>" for n in labels)
            + f'<td><a href="/try?run={name}">try</a></td></tr>')
    body = (f"<h1>Runs</h1><p class=\"muted\">From {escape(', '.join(roots))}; metrics on each run's test split."
            f"</p><table class=\"metrics\" id=\"runs\">{head}{''.join(rows)}</table>")
    return page("Runs", body)


def run_page(name: str, folder: Path, summary: dict[str, Any], matrices: list[dict[str, Any]]) -> str:
    """One run: its report, metrics, confusion matrices and plots."""
    from faces_keras.rundir import METRICS_CSV, REPORT, THRESHOLDS

    q = escape(name)
    links = [f'<a href="/runs/{q}/files/{n}">{n}</a>' for n in (REPORT, "metrics.json", METRICS_CSV, THRESHOLDS,
                                                                "config.yaml", "history.csv")
             if (folder / n).is_file()]
    metrics = ""
    md = folder / "metrics.md"
    if (folder / "metrics.json").is_file():
        rows = "".join(
            f"<tr><td>{escape(str(label))}</td>" + "".join(f"<td class=\"num\">{_number(v.get(k))}</td>"
                                                          for k in ("n", "f1", "accuracy", "roc_auc")) + "</tr>"
            for label, v in summary["per_label"].items())
        metrics = ("<h2>Test metrics</h2><table class=\"metrics\"><tr><th>label</th><th>n</th><th>F1</th>"
                   f"<th>accuracy</th><th>AUC</th></tr>{rows}</table>")
    elif md.is_file():
        metrics = f"<h2>Metrics</h2><pre>{escape(md.read_text())}</pre>"
    cms = []
    for m in matrices:
        (tn, fp), (fn, tp) = m["matrix"]
        cms.append(f'<table class="confusion"><caption>{escape(m["label"])} (threshold {_number(m["threshold"])})'
                   '</caption><tr><th></th><th>predicted no</th><th>predicted yes</th></tr>'
                   f'<tr><th>true no</th><td class="right">{tn}</td><td class="wrong">{fp}</td></tr>'
                   f'<tr><th>true yes</th><td class="wrong">{fn}</td><td class="right">{tp}</td></tr></table>')
    confusion = f"<h2 id=\"confusion\">Confusion matrices (test)</h2><div class=\"cms\">{''.join(cms)}</div>" \
        if cms else ""
    plots = "".join(f'<figure><img src="/runs/{q}/files/{p.name}" alt="{escape(p.name)}"><figcaption>'
                    f'{escape(p.name)}</figcaption></figure>' for p in sorted(folder.glob("*.png")))
    report = (f'<h2>Report</h2><iframe class="report" src="/runs/{q}/files/{REPORT}"></iframe>'
              if (folder / REPORT).is_file() else "")
    body = (f"<h1>Run {q}</h1><p>preset <b>{escape(summary['preset'])}</b>, dataset "
            f"<b>{escape(summary['dataset'])}</b>, {escape(summary['date'])} · <a href=\"/try?run={q}\">try it</a>"
            f"</p><p class=\"files\">{' · '.join(links)}</p>{metrics}{confusion}"
            f"<div class=\"plots\">{plots}</div>{report}")
    return page(f"Run {name}", body)


LABEL_BODY = """
<h1>Label faces <span id="progress" class="muted"></span></h1>
<div class="label-layout">
  <div class="face-panel">
    <img id="face" alt="face" width="320" height="320">
    <div class="face-meta"><b id="face-id"></b> <span id="origin" class="muted"></span>
      <span id="dropped" class="drop-mark" hidden>drop</span></div>
    <div id="values" class="values"></div>
    <div class="buttons"><button id="prev">&larr; previous</button> <button id="next">next &rarr;</button>
      <button id="undo">undo</button> <button id="drop">drop</button></div>
    <div id="status" class="status" role="status"></div>
  </div>
  <div class="side">
    <label>show <select id="filter"></select></label>
    <div id="keys" class="keys"></div>
    <p class="muted small">Saved after every key to <code id="file"></code>.</p>
  </div>
</div>
"""

TRY_BODY = """
<h1>Try a model</h1>
<div class="try-controls">
  <label>run <select id="run"></select></label>
  <label class="upload">photos <input type="file" id="photos" accept="image/*" multiple></label>
  <button id="webcam">webcam</button>
  <button id="csv" disabled>download CSV</button>
</div>
<div id="drop-zone" class="drop-zone">or drop photos here</div>
<video id="video" autoplay playsinline hidden></video>
<div id="sliders" class="sliders"></div>
<div class="buttons"><button id="save" disabled>save thresholds</button> <span id="save-status" class="muted"></span></div>
<div id="status" class="status" role="status"></div>
<div id="results"></div>
"""


def add_routes(app) -> None:
    """The pages: ``/``, ``/runs/{run}``, ``/label``, ``/try``."""
    from fastapi.responses import HTMLResponse

    from faces_keras.app.runs import confusion_matrices, find_runs, run_folder, run_summary

    config = app.state.config

    @app.get("/", response_class=HTMLResponse)
    def index():
        return runs_page([run_summary(n, f) for n, f in find_runs(config.runs).items()], config.runs)

    @app.get("/runs/{run}", response_class=HTMLResponse)
    def run(run: str):
        folder = run_folder(config.runs, run)
        return run_page(run, folder, run_summary(run, folder), confusion_matrices(folder))

    @app.get("/label", response_class=HTMLResponse)
    def label():
        if app.state.store is None:
            return page("Label", "<h1>Label faces</h1><p>Start the app with <code>--faces DIR</code> (and "
                                 "<code>--labels FILE</code>) to label a folder of faces.</p>")
        return page("Label", LABEL_BODY, "label.js")

    @app.get("/try", response_class=HTMLResponse)
    def try_page():
        return page("Try a model", TRY_BODY, "try.js")


__all__ = ["add_routes", "page", "run_page", "runs_page"]
