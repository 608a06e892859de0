"""The HTML report as a browser renders it: headless Chromium, the DOM after the page's script ran.

Counts the green (``.cell.right``) and red (``.cell.wrong``) cells per label
in the rendered page and checks them against the metrics table of the same
page (right = TP + TN, wrong = FP + FN) when every face is shown. Skipped
when no Chromium binary is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from faces_keras.reports.html import write_run_report
from tests.test_reports import build_grid_run, parse_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    if os.environ.get("CHROMIUM") and shutil.which(os.environ["CHROMIUM"]):
        return shutil.which(os.environ["CHROMIUM"])
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip(f"no Chromium binary found (looked for {', '.join(BROWSERS)}; "
                    "install the Debian package `chromium` or set CHROMIUM)")
    return binary


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    """The hand-built grid run's test report with every face (per_class=0)."""
    run = build_grid_run(tmp_path_factory.getbasetemp())
    return write_run_report(run, per_class=0, out=tmp_path_factory.mktemp("browser") / "report.html")


def test_rendered_green_and_red_cells_match_the_pages_metrics(chromium, full_report, tmp_path):
    dom = headless(chromium, tmp_path / "profile", "--dump-dom", full_report.as_uri()).stdout
    page = parse_report(dom)
    assert page.cells and page.metrics, "the rendered page has no prediction cells or metrics"
    counts = Counter((cell["label"], cell["status"]) for cell in page.cells)
    labels = sorted({label for label, _ in page.metrics})
    for label in labels:
        metric = {key: int(page.metrics[(label, key)]) for key in ("tp", "tn", "fp", "fn", "n")}
        assert counts[(label, "right")] == metric["tp"] + metric["tn"], label
        assert counts[(label, "wrong")] == metric["fp"] + metric["fn"], label
        assert page.confusion[label] == metric["n"]


def test_filters_run_in_the_browser(chromium, full_report, tmp_path):
    """With ``#errors`` in the address the script hides every face that has no wrong prediction."""
    static = full_report.read_text()
    errors = sum(1 for chunk in static.split("<figure ")[1:] if "cell wrong" in chunk.split("</figure>")[0])
    dom = headless(chromium, tmp_path / "profile", "--dump-dom", full_report.as_uri() + "#errors").stdout
    cards = [chunk.split(">", 1)[0] for chunk in dom.split('<figure class="card')[1:]]
    visible = [card for card in cards if "hidden" not in card]
    assert len(cards) == static.count('<figure class="card')
    assert len(visible) == errors
    assert f'<span id="shown">{errors}</span>' in dom
    assert 'class="filter active" href="#errors"' in dom


def test_screenshot_renders(chromium, full_report, tmp_path):
    shot = tmp_path / "report.png"
    headless(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
             full_report.as_uri())
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2000, 1280)
    # A blank page would be one colour; the report has faces, tables and green/red cells.
    assert len({tuple(p) for p in image[::20, ::20].reshape(-1, 3)}) > 50
