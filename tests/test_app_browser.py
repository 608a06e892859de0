"""The web app in a real browser: headless Chromium driven by Selenium, against ``faces-keras app`` in a subprocess.

Labels 10 real grid faces by key presses, reloads, undoes, kills the server with
SIGKILL between key presses, uploads the group photo to a tiny trained run and
moves a threshold slider. The screenshots in docs/app.md are taken here.
Skips, with the reason, without Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import os
import tempfile
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the app extra is not installed (pip install faces-keras[app])")
pytest.importorskip("selenium", reason="selenium is not installed (pip install faces-keras[app])")

from tests.conftest import ROOT, tiny_model  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); "
                f"found chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# docs/app.md's screenshots: taken on every run, written into docs/images only when asked
# (FACES_KERAS_SCREENSHOTS=docs/images), so a test run leaves the checkout as it was.
SHOTS = Path(os.environ.get("FACES_KERAS_SCREENSHOTS") or tempfile.gettempdir()) / (
    "" if os.environ.get("FACES_KERAS_SCREENSHOTS") else "faces-keras-app-screenshots")
LABELS = ["sex", "glasses", "hat", "beard", "smile"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``faces-keras app`` in a subprocess on a free port."""

    def __init__(self, *args: str):
        self.port = _free_port()
        env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
               "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"faces-keras-app-{self.port}.log", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "faces_keras", "app", "--port", str(self.port),
                                         *args], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"the app exited: {self.log.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the app did not start listening within 60 s")

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.log.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, data_dir):
    """A runs root holding one run trained 1 epoch on 120 prepared grid faces."""
    from faces_keras.data.prepare import PrepareConfig, prepare_dataset
    from faces_keras.labels import load_schema
    from faces_keras.training.config import TrainConfig
    from faces_keras.training.train import train

    work = tmp_path_factory.mktemp("app-browser-run")
    dataset = prepare_dataset(load_schema("grids"), data_dir / "grids" / "faces-labels.csv", work / "grids120",
                              config=PrepareConfig(limit=120))
    train(TrainConfig(dataset=str(dataset), model=tiny_model(), epochs=1, batch_size=32), work / "runs" / "tiny")
    return work / "runs"


def _truth(data_dir: Path, count: int) -> dict[str, list[str]]:
    lines = (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()[1:count + 1]
    return {line.split(";")[0]: line.split(";")[1:] for line in lines}


def _rows(path: Path) -> dict[str, list[str]]:
    """The labels file as the app wrote it: face -> the five codes and the drop cell."""
    lines = path.read_text().splitlines()
    assert lines[0] == "face_nr;sex;glasses;hat;beard;smile;drop"
    return {line.split(";")[0]: line.split(";")[1:] for line in lines[1:]}


def _open(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def _keys(driver, text: str) -> None:
    chain = ActionChains(driver)
    for key in text:
        chain.send_keys(key)
    chain.perform()


def _labelled(driver) -> int:
    return int(driver.find_element(By.ID, "progress").get_attribute("data-labelled") or 0)


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / name))


def test_label_ten_faces_by_keys_reload_undo_and_prepare_takes_the_file(browser, tmp_path, data_dir):
    from faces_keras.data.prepare import prepare_dataset
    from faces_keras.data.store import Dataset
    from faces_keras.labels import load_schema
    from faces_keras.labels.sources import load_labels

    grids = data_dir / "grids"
    labels = tmp_path / "labels.csv"
    truth = _truth(data_dir, 10)
    server = Server("--faces", str(grids), "--labels", str(labels))
    try:
        _open(browser, server.url + "/label")
        assert browser.find_element(By.ID, "face-id").get_attribute("data-id") == "1"
        assert "0 of 458 labelled" in browser.find_element(By.ID, "progress").text
        _keys(browser, "".join("".join(codes) for codes in truth.values()).lower())  # lower case works too
        WebDriverWait(browser, 30).until(lambda d: _labelled(d) == 10)
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "face-id").get_attribute("data-id") == "11")
        assert {k: v[:5] for k, v in _rows(labels).items()} == truth
        # undo: a value given to face 11, then Backspace takes it back, on disk too
        _keys(browser, "M")
        WebDriverWait(browser, 10).until(lambda d: "11" in _rows(labels))
        assert _rows(labels)["11"][0] == "M"
        _keys(browser, Keys.BACKSPACE)
        WebDriverWait(browser, 10).until(lambda d: "11" not in _rows(labels))
        # the file changes before the page redraws the face: wait for the redrawn element
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "unset" in d.find_element(By.CSS_SELECTOR, '.value[data-label="sex"] .code').get_attribute("class"))
        # drop face 11 with the Delete key; the page marks it and the file says Y
        _keys(browser, Keys.DELETE)
        WebDriverWait(browser, 10).until(lambda d: _rows(labels).get("11", [""] * 6)[5] == "Y")
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_element(By.ID, "dropped").is_displayed())
        _shot(browser, "app-label.png")
        # reload: the values are back and labelling goes on at the face it stopped at
        browser.refresh()
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        assert "11 of 458 labelled, 1 dropped" in browser.find_element(By.ID, "progress").text  # dropped: done
        assert browser.find_element(By.ID, "face-id").get_attribute("data-id") == "11"  # the face in the address
        _keys(browser, Keys.ARROW_LEFT)
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "face-id").get_attribute("data-id") == "10")
        shown = [browser.find_element(By.CSS_SELECTOR, f'.value[data-label="{n}"] .code').text for n in LABELS]
        assert shown == truth["10"]
        browser.get("about:blank")
        _open(browser, server.url + "/label")  # opened afresh: at the first face still to label
        assert browser.find_element(By.ID, "face-id").get_attribute("data-id") == "12"
    finally:
        server.stop()
    schema = load_schema("grids")
    loaded = load_labels(schema, labels)
    assert list(loaded["id"]) == [str(i) for i in range(1, 11)]  # face 11 is dropped
    prepared = Dataset.load(prepare_dataset(schema, labels, tmp_path / "prepared", photos=grids))
    assert sorted(prepared.faces["source_id"].astype(str), key=int) == [str(i) for i in range(1, 11)]


def test_kill_9_between_key_presses_leaves_a_valid_file_and_the_page_resumes(browser, tmp_path, data_dir):
    from faces_keras.labels import load_schema
    from faces_keras.labels.sources import load_labels

    grids = data_dir / "grids"
    labels = tmp_path / "labels.csv"
    truth = _truth(data_dir, 6)
    sequence = [(face, name, code) for face, codes in truth.items() for name, code in zip(LABELS, codes)]
    server = Server("--faces", str(grids), "--labels", str(labels))
    try:
        _open(browser, server.url + "/label")
        _keys(browser, "".join(code for _, _, code in sequence[:7]))  # face 1 and two labels of face 2
        WebDriverWait(browser, 20).until(lambda d: labels.is_file() and _rows(labels).get("2", [""] * 6)[1] != "")
        _keys(browser, "".join(code for _, _, code in sequence[7:]))  # a burst, killed while it is being saved
        time.sleep(0.15)
        server.kill9()
    finally:
        server.stop()
    rows = _rows(labels)  # whole: atomic renames leave the file before or after a keystroke
    given = [(face, name, rows[face][LABELS.index(name)]) for face, name, _ in sequence
             if face in rows and rows[face][LABELS.index(name)]]
    assert given == sequence[:len(given)] and len(given) >= 7  # a prefix of the keys, nothing else
    frame = load_labels(load_schema("grids"), labels)
    assert len(frame) == len(rows)
    server = Server("--faces", str(grids), "--labels", str(labels))  # the lock died with the killed server
    try:
        _open(browser, server.url + "/label")
        complete = sum(1 for codes in rows.values() if all(codes[:5]))
        assert browser.find_element(By.ID, "progress").get_attribute("data-labelled") == str(complete)
        _keys(browser, "".join(code for _, _, code in sequence[len(given):]))
        WebDriverWait(browser, 20).until(lambda d: _labelled(d) == 6)
    finally:
        server.stop()
    assert {k: v[:5] for k, v in _rows(labels).items()} == truth
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".labels.csv.lock"))
    assert left == ["labels.csv"]  # no temporary file of a killed save is left


def test_group_photo_gets_six_boxes_and_a_slider_changes_a_decision(browser, tiny_runs, tmp_path, data_dir):
    from faces_keras.thresholds import ThresholdResult

    runs = tmp_path / "runs"
    shutil.copytree(tiny_runs, runs)
    thresholds = runs / "tiny" / "thresholds.json"
    before = thresholds.read_text()
    server = Server("--runs", str(runs))
    try:
        browser.get(server.url + "/")  # server-rendered pages: no script to wait for
        assert browser.find_element(By.CSS_SELECTOR, '#runs a[href="/runs/tiny"]').text == "tiny"
        _shot(browser, "app-runs.png")
        _open(browser, server.url + "/try?run=tiny")
        browser.find_element(By.ID, "photos").send_keys(str(data_dir / "photos" / "group-6-faces.jpg"))
        WebDriverWait(browser, 180).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".box")) == 6)
        tags = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".box .tag")]
        assert [t.split(":")[0] for t in tags] == [str(i) for i in range(1, 7)]
        assert all(t.split(": ", 1)[1] for t in tags)
        cells = browser.find_elements(By.CSS_SELECTOR, 'table.faces td[data-label="smile"]')
        assert len(cells) == 6
        cell = cells[0]
        value = cell.get_attribute("data-value")
        p = float(cell.text.split("p=")[1].split()[0])
        t = float(cell.text.split("t=")[1].split()[0])
        assert value == ("yes" if p >= t else "no")
        target = round(p + 0.01, 2) if value == "yes" else max(0.0, round(p - 0.01, 2))
        slider = browser.find_element(By.ID, "t-smile")
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('input'));", slider, str(target))
        cell = browser.find_elements(By.CSS_SELECTOR, 'table.faces td[data-label="smile"]')[0]
        assert cell.get_attribute("data-value") == ("no" if value == "yes" else "yes")
        assert thresholds.read_text() == before  # moving a slider changes nothing on disk
        _shot(browser, "app-try.png")
        browser.find_element(By.ID, "save").click()
        WebDriverWait(browser, 20).until(lambda d: "old thresholds are kept" in d.find_element(By.ID, "save-status").text)
        kept = browser.find_element(By.ID, "save-status").text.rsplit(" ", 1)[1]
        assert (runs / "tiny" / kept).read_text() == before
        assert ThresholdResult.load(thresholds).thresholds["smile"] == pytest.approx(float(target))
        browser.get(server.url + "/runs/tiny")
        assert "Confusion matrices" in browser.page_source
    finally:
        server.stop()


def test_two_tabs_merge_different_faces_and_the_stale_one_is_told_not_overwritten(browser, tmp_path, data_dir):
    grids = data_dir / "grids"
    labels = tmp_path / "labels.csv"
    server = Server("--faces", str(grids), "--labels", str(labels))
    try:
        _open(browser, server.url + "/label#face=5")
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        _open(browser, server.url + "/label#face=5")
        second = browser.current_window_handle
        browser.switch_to.window(first)
        _keys(browser, "F")  # tab 1 sets face 5's sex
        WebDriverWait(browser, 10).until(lambda d: labels.is_file() and _rows(labels).get("5", [""] * 6)[0] == "F")
        browser.switch_to.window(second)  # tab 2 still shows face 5 without it
        _keys(browser, "M")
        WebDriverWait(browser, 10).until(lambda d: "changed in another tab" in d.find_element(By.ID, "status").text)
        assert _rows(labels)["5"][0] == "F"  # not overwritten
        shown = browser.find_element(By.CSS_SELECTOR, '.value[data-label="sex"] .code').text
        assert shown == "F"  # tab 2 now shows tab 1's value
        _keys(browser, Keys.ARROW_RIGHT + "M")  # a face tab 1 did not touch: saved, and both faces kept
        WebDriverWait(browser, 10).until(lambda d: _rows(labels).get("6", [""] * 6)[0] == "M")
        assert _rows(labels)["5"][0] == "F"
        browser.close()
        browser.switch_to.window(first)
    finally:
        server.stop()
