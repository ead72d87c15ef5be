"""The lesion checker as a local Voila web app, driven in headless Chromium: upload an image, read the top 3.

Needs Debian's chromium and chromium-driver (``.ci/run`` installs them); skipped where they are absent.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skinlib import data
from tests.conftest import jpeg_bytes

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with open(log, "w") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", str(ROOT / "notebooks" / "05_Lesion_Checker.ipynb"), "--no-browser",
             f"--port={port}", "--Voila.ip=127.0.0.1"], stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "SKINLIB_SMOKE": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()  # Listening: Voila is up.
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"Voila did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


CAPTURE_FILE_INPUT = """
HTMLInputElement.prototype.click = (function (original) {
  return function () {
    if (this.type !== "file") { return original.call(this); }
    this.id = "captured-file-input";           // The widget's own input, put in the page instead of a dialog.
    this.style.display = "block";
    document.body.appendChild(this);
  };
})(HTMLInputElement.prototype.click);
"""


def _upload(driver, path):
    """Press the widget's upload button and give its file input the file, as a person choosing it would."""
    from selenium.webdriver.common.by import By

    for old in driver.find_elements(By.ID, "captured-file-input"):
        driver.execute_script("arguments[0].remove();", old)
    driver.execute_script(CAPTURE_FILE_INPUT)
    driver.find_element(By.CSS_SELECTOR, ".widget-upload").click()
    field = _wait_for(driver, lambda d: d.find_elements(By.ID, "captured-file-input"), timeout=10)[0]
    field.send_keys(str(path))


def _wait_for(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))


@pytest.fixture(scope="module")
def page(voila_url, browser):
    """The app, opened once for the tests below: Voila runs the whole notebook in a new kernel at every page load."""
    from selenium.webdriver.common.by import By

    browser.get(voila_url)
    _wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".widget-upload"))
    return browser


def _new_answer(page, before):
    """Wait for a top-3 list beyond the ``before`` already on the page, and return the newest."""
    from selenium.webdriver.common.by import By

    lists = _wait_for(page, lambda d: (found := d.find_elements(By.CSS_SELECTOR, "ol.top3")) and
                      len(found) > before and found)
    return lists[-1]


def test_upload_an_image_and_read_the_top3_from_the_page(page, tmp_path):
    from selenium.webdriver.common.by import By

    assert "Research use only" in page.find_element(By.TAG_NAME, "body").text
    before = len(page.find_elements(By.CSS_SELECTOR, "ol.top3"))  # The notebook's own example, and earlier answers.

    image = tmp_path / "my_lesion.jpg"
    image.write_bytes(jpeg_bytes(size=(200, 150), color=(150, 90, 70), seed=5))
    _upload(page, image)
    items = _new_answer(page, before).find_elements(By.TAG_NAME, "li")
    assert len(items) == 3
    codes = [item.text.split()[0] for item in items]
    assert set(codes) <= set(data.CLASSES) and len(set(codes)) == 3
    shares = [float(item.text.rsplit(" ", 1)[-1].rstrip("%")) for item in items]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.01
    assert "P(malignant" in page.find_element(By.TAG_NAME, "body").text


def test_a_bad_upload_shows_a_message_and_the_app_keeps_working(page, tmp_path):
    from selenium.webdriver.common.by import By

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not an image")
    _upload(page, broken)
    error = _wait_for(page, lambda d: d.find_elements(By.CSS_SELECTOR, "p.error"))
    assert "broken.jpg: not a recognised image" in error[0].text
    before = len(page.find_elements(By.CSS_SELECTOR, "ol.top3"))
    image = tmp_path / "after_the_error.jpg"  # The same page answers the next upload.
    image.write_bytes(jpeg_bytes(size=(200, 150), color=(170, 100, 80), seed=6))
    _upload(page, image)
    assert len(_new_answer(page, before).find_elements(By.TAG_NAME, "li")) == 3
