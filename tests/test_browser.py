"""End to end: `streamlit run app.py` on a local port, driven by a real headless Chromium through Selenium.

Each page is opened, a widget is moved, and the test waits for the new image. Screenshots go to
$GENMODELS_SCREENSHOTS when set (docs/screenshots/ for the README), else to the test's tmp folder.

What AppTest cannot see is checked here, as drawn: the text the metrics grid paints on its canvas (recorded from
the canvas calls), whether its columns fit the window, what a zoo card says about its data, the Draw page's answer
to a dot (issue 27).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from app_fixtures import sweeps_dir, weights_dir  # noqa: F401  (fixtures)
from genmodels import checkpoint as ckpt
from pages.app.browser import (CHROMEDRIVER, CHROMIUM, chrome, free_port, image_sources, start_server, stop_server,
                               stroke, wait_for_images, wait_idle)
from train.fixtures import digit_png

# Each page's URL and a title it shows, as a visitor reads them.
PAGE_TITLES = {"": "Model zoo", "sample": "Sample", "latent": "Latent explorer",
               "conditional": "Conditional generation", "reconstruct": "Reconstruct", "draw": "Draw",
               "metrics": "Metrics and training", "sweeps": "Sweeps"}

if not (CHROMIUM and CHROMEDRIVER):
    message = "the browser test needs Debian's chromium and chromium-driver: run `make setup`"
    if os.environ.get("CI"):
        raise RuntimeError(message)  # in CI a missing browser is a broken setup, not a reason to skip
    pytest.skip(message, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


# Every text the page paints on a canvas, as it is painted: the metrics grid (glide-data-grid) draws its cells there,
# and what its DOM holds is the data, not what is shown.
RECORD_CANVAS_TEXT = """
window.canvasText = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  if (window.canvasText.length < 50000) window.canvasText.push(String(text));
  return fillText.call(this, text, ...rest);
};
"""


@pytest.fixture(scope="module")
def shown_weights(weights_dir, tmp_path_factory):  # noqa: F811
    """The fixture checkpoints, with every metric measured for the CGAN under the DCGAN's FID protocol (so one table
    holds each metric, the DCGAN's conditional accuracy among them: a cell that does not apply), and the DCGAN's data
    source recorded by its absolute path, as a run reading its data folder by one does."""
    weights = tmp_path_factory.mktemp("shown") / "weights"
    shutil.copytree(weights_dir, weights)
    ckpt.write_json(weights / "mnist-5k" / "cgan" / ckpt.METRICS, {"metrics": {
        "fid": {"value": 98.7, "protocol": "test protocol: 100 samples"},
        "kid": {"value": 0.0421, "protocol": "test protocol: KID"},
        "precision": {"value": 0.512, "protocol": "test protocol: k = 3"},
        "recall": {"value": 0.345, "protocol": "test protocol: k = 3"},
        "classifier_fid": {"value": 3.21, "protocol": "test protocol: classifier features"},
        "ssim": {"value": 0.432, "protocol": "test protocol: projection"},
        "mse": {"value": 0.0321, "protocol": "test protocol: projection"},
        "conditional_accuracy": {"value": 0.876, "protocol": "test protocol: classifier"},
        "nn_distance": {"value": 0.198, "protocol": "test protocol: nearest training image"}}})
    config = json.loads((weights / "mnist-5k" / "dcgan" / ckpt.CONFIG).read_text())
    config["data"]["source"] = f"MNIST IDX files in {Path.cwd().resolve() / 'data' / 'MNIST' / 'raw'}"
    ckpt.write_json(weights / "mnist-5k" / "dcgan" / ckpt.CONFIG, config)
    return weights


@pytest.fixture(scope="module")
def app_url(shown_weights, sweeps_dir, tmp_path_factory):  # noqa: F811
    port = free_port()
    proc = start_server(shown_weights, port, tmp_path_factory.mktemp("server") / "streamlit.log", sweeps=sweeps_dir)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"), height=1200)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CANVAS_TEXT})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("GENMODELS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def opened(driver, url: str, page: str, reuse: bool = False) -> None:
    """Open `page` by its URL: its title is the page's. Each page's test opens it this way, so every page is opened
    by its URL (a separate tour of all of them loaded each page twice, 5-8 CPU-s of Chromium a load). With `reuse`,
    a browser the test before left on this URL, having only read the page, is not sent there again."""
    if not (reuse and driver.current_url == url):
        driver.get(url)
    heading = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))[0].text
    assert heading.startswith(PAGE_TITLES[page]), (page, heading)


def open_page(driver, url: str, page: str, images: int = 1, reuse: bool = False) -> list[str]:
    opened(driver, url, page, reuse)
    wait_for_images(driver, images)
    wait_idle(driver)
    return image_sources(driver)


def main_area(driver):
    return driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]')


def page_text(driver) -> str:
    return main_area(driver).text




def type_and_wait(driver, selector: str, text: str, before: list[str], images: int = 1) -> None:
    """Replace the text of the main area's first `selector` input, press Enter, wait for new images."""
    element = main_area(driver).find_element(By.CSS_SELECTOR, selector)
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(text, Keys.ENTER)
    wait_for_images(driver, images, different_from=before)
    wait_idle(driver)


def finish(driver, screenshot: Path) -> None:
    """No traceback reached the page; then the screenshot."""
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "a traceback reached the page"
    assert "Traceback" not in page_text(driver)
    driver.save_screenshot(str(screenshot))


def move_first_slider(driver, steps: int) -> None:
    """Arrow keys on the page's first slider, as a keyboard user moves it (its range input is visually hidden)."""
    slider = main_area(driver).find_element(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"]')
    driver.execute_script("arguments[0].focus();", slider)
    ActionChains(driver).send_keys(*[Keys.ARROW_RIGHT] * steps).perform()


def test_first_request_to_a_sub_page_shows_the_shared_sidebar(browser, app_url):
    """The module's server is fresh here, this being its first test: its first request goes to /sample. The entry
    script runs for it: the shared sidebar and the page menu in words are there, not a menu of file names without
    the sidebar. Every page by its URL follows, one test a page, each of which checks the page's title
    (`opened`)."""
    open_page(browser, f"{app_url}/sample", "sample")
    sidebar = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text
    for label in ("Dataset", "Model", "Device", *PAGE_TITLES.values()):
        assert label in sidebar, (label, sidebar)
    assert "common" not in sidebar.split()
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"]')) == 2


def test_sample_new_seed_changes_the_grid(browser, app_url, shots):
    before = open_page(browser, f"{app_url}/sample", "sample", reuse=True)  # the sidebar test's load
    type_and_wait(browser, '[data-testid="stNumberInput"] input', "5", before)
    assert "seed 5" in page_text(browser)
    finish(browser, shots / "2_sample.png")


def test_model_zoo(browser, app_url, shots):
    open_page(browser, app_url, "", images=3)
    text = page_text(browser)
    assert "Model zoo" in text and "DCGAN" in text and "VAE" in text and "CGAN" in text
    assert "123.4" in text, "the FID from metrics.json is on the DCGAN card"
    # What a card says about its data names the dataset, never a folder of the machine that trained it.
    data = [line for line in text.splitlines() if line.startswith("Data:")]
    assert len(data) == 3 and all(line.startswith("Data: MNIST") for line in data), data
    assert not [line for line in data if re.search(r"(^|[\s(])/\w|data/MNIST", line)], data
    finish(browser, shots / "1_model_zoo.png")


def test_latent_slider_updates_the_image(browser, app_url, shots):
    open_page(browser, f"{app_url}/latent", "latent")
    # The server's sliders (tests/test_browser_explorer.py drags the in-browser ones).
    main_area(browser).find_element(By.XPATH, ".//label[.//p[text()='Redraw while dragging']]").click()
    WebDriverWait(browser, 60).until(lambda d: "PC1 · " in page_text(d))
    wait_idle(browser)
    before = image_sources(browser)
    move_first_slider(browser, 8)
    after = wait_for_images(browser, 1, different_from=before)
    assert after[0] != before[0], "the edited image changed"
    wait_idle(browser)
    finish(browser, shots / "3_latent_explorer.png")


def test_conditional_text_box_writes_digits(browser, app_url, shots):
    before = open_page(browser, f"{app_url}/conditional", "conditional", images=4)
    assert "2 · sees" in page_text(browser), "each digit carries the classifier's verdict"
    type_and_wait(browser, '[data-testid="stTextInput"] input', "1984", before, images=4)
    assert "9 · sees" in page_text(browser)
    finish(browser, shots / "4_conditional.png")


def test_reconstruct_map_click_and_upload(browser, app_url, shots, tmp_path):
    open_page(browser, f"{app_url}/reconstruct", "reconstruct", images=9)
    assert "mean SSIM" in page_text(browser)
    # A point of the last trace (class 9): plotly draws it above every other class, so no point of another
    # class can lie over it and take the click.
    point = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace:last-child path.point"))[0]
    before = image_sources(browser)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(browser).move_to_element(point).click().perform()
    wait_for_images(browser, 1, different_from=before)
    wait_idle(browser)
    assert "(9): original · decoded mean" in page_text(browser), "clicking a class-9 point decodes that image"
    finish(browser, shots / "5_reconstruct_map.png")

    option = main_area(browser).find_element(By.XPATH, "//label[.//p[text()='Upload an image']]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", option)
    option.click()
    upload = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, 'input[type="file"]'))
    png = tmp_path / "digit.png"
    png.write_bytes(digit_png())
    upload.send_keys(str(png))
    WebDriverWait(browser, 60).until(lambda d: "Converted:" in page_text(d))
    wait_idle(browser)
    assert "inverted" in page_text(browser)
    finish(browser, shots / "6_reconstruct_upload.png")


def wait_for_text(driver, text: str, timeout: float = 60) -> str:
    """The page's text once `text` is in it and the run that wrote it has finished."""
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: text in page_text(d))
    except TimeoutException:
        raise AssertionError(f"{text!r} did not appear within {timeout} s; the page says:\n"
                             f"{page_text(driver)}") from None
    wait_idle(driver)
    return page_text(driver)


def test_draw_asks_for_a_larger_drawing_on_a_dot(browser, app_url):
    # A tap of the pen: fitted into the models' 20-pixel box, it was a solid disc, read as a "0, 90% sure".
    opened(browser, f"{app_url}/draw", "draw")
    wait_for_text(browser, "Draw a digit in the box")
    stroke(browser, [(0, 0), (1, 1)])
    text = wait_for_text(browser, "Draw it larger")
    assert "The classifier reads" not in text and "what the models see" not in text, text
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stImage"]')


def test_draw_a_one_then_scribble_then_clear(browser, app_url, shots, tmp_path):
    browser.get(f"{app_url}/draw")
    assert "Draw a digit in the box" in wait_for_text(browser, "Draw a digit in the box")
    # A "1" as people draw it: a short lead-in stroke, then the long downstroke.
    stroke(browser, [(-15, -80), (0, -95)])
    stroke(browser, [(0, -95)] + [(0, y) for y in range(-80, 100, 15)])
    # The redraws come last in a run: once they show the 1, the whole page is about the finished drawing.
    text = wait_for_text(browser, "CGAN (mnist-5k/cgan) draws 1 in 10 styles")
    assert "The classifier reads 1," in text, text
    assert "unsure" not in text and "scribble" not in text
    assert re.search(r"^VAE: \d\.\d\d · \d\.\d{3}$", text, re.M), "the VAE reconstructs the drawing"
    main_area(browser).find_element(By.XPATH, ".//button[.//p[starts-with(text(), 'Project through the')]]").click()
    # The projection says how far it is, GAN by GAN and step by step.
    progress = WebDriverWait(browser, 120, poll_frequency=0.05).until(lambda d: [e.text for e in d.find_elements(
        By.CSS_SELECTOR, '[data-testid="stProgress"]') if "GAN 1 of 2: step" in e.text])
    assert re.search(r"Projecting through \w+ \(mnist-5k/\w+\), GAN 1 of 2: step \d+ of 60", progress[0]), progress
    text = wait_for_text(browser, "\nDCGAN: ", timeout=300)
    assert re.search(r"^CGAN: \d\.\d\d · \d\.\d{3}$", text, re.M), "every GAN projects the drawing"
    ActionChains(browser).move_to_element(main_area(browser).find_element(By.TAG_NAME, "h1")).perform()  # no tooltip
    finish(browser, shots / "8_draw.png")

    for y in range(-120, 130, 40):  # back and forth over the whole box, with gaps
        stroke(browser, [(-125, y), (125, y + 10)])
    assert "looks like a scribble" in wait_for_text(browser, "looks like a scribble")
    finish(browser, tmp_path / "draw_scribble.png")
    for y in range(-100, 130, 40):  # and the gaps: ink over almost all of it, which no advice to draw more fixes
        stroke(browser, [(-125, y), (125, y + 10)])
    text = wait_for_text(browser, "The box is almost all ink: clear the canvas")
    assert "The classifier reads" not in text and "thicker or longer stroke" not in text, text

    main_area(browser).find_element(By.XPATH, ".//button[.//p[text()='Clear the canvas']]").click()
    text = wait_for_text(browser, "Draw a digit in the box: the models answer")
    assert "The classifier reads" not in text, "a cleared canvas shows no reading"
    finish(browser, tmp_path / "draw_cleared.png")


def test_metrics_page_draws_the_charts(browser, app_url, shots):
    opened(browser, f"{app_url}/metrics", "metrics")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    wait_for_images(browser, 2)
    wait_idle(browser)
    text = page_text(browser)
    assert "MNIST (mnist-5k) · test protocol: 100 samples" in text, "a table per dataset and FID protocol"
    assert "FID per model (lower is better)" in text and "123.4" in text, "the FID bar, labelled as people read it"
    assert "training history" in text and "Side by side" in text
    finish(browser, shots / "7_metrics.png")


def test_metrics_grid_cells_read_as_numbers_or_a_dash_and_every_column_fits(browser, app_url):
    """The grid paints its cells on a canvas: what it paints there has no "None" or "nan" (the DCGAN's conditional
    accuracy does not apply: a dash), and in a 1400 px window every column of every table is in view, none past
    the edge behind a horizontal scroll."""
    assert browser.get_window_size()["width"] == 1400
    opened(browser, f"{app_url}/metrics", "metrics", reuse=True)  # the charts test's load
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'))
    wait_idle(browser)
    painted = set(WebDriverWait(browser, 30).until(
        lambda d: "123.4" in (seen := d.execute_script("return window.canvasText")) and "87.6%" in seen and seen))
    # The tables, found once the page has drawn them all: found at the first one, the full suite at load 3 missed one.
    grids = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
    assert not painted & {"None", "nan", "NaN"} and not [t for t in painted if re.search(r"\bNone\b|\bnan\b", t, re.I)]
    assert "–" in painted, "the cell that does not apply shows a dash"
    headers = set()
    for grid in grids:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", grid)
        # The grid writes its accessible header cells on a later frame once it is in view: in CI they were read
        # before that frame, and no header of any table was found.
        shown = WebDriverWait(browser, 30).until(lambda d: [
            th.get_attribute("textContent") for th in grid.find_elements(By.CSS_SELECTOR, '[role="columnheader"]')])
        view, content, right = browser.execute_script(
            "const s = arguments[0].querySelector('.dvn-scroller');"
            "return [s.clientWidth, s.scrollWidth, arguments[0].getBoundingClientRect().right];", grid)
        assert content <= view and right <= 1400, f"columns past the window's edge: {shown} ({content} > {view} px)"
        headers.update(shown)
    assert {"FID ↓", "Conditional accuracy ↑", "Nearest-neighbour distance"} <= headers, (headers, len(grids))


def test_sweeps_page_shows_the_table_and_the_chart(browser, app_url, shots):
    opened(browser, f"{app_url}/sweeps", "sweeps")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'))
    wait_idle(browser)
    text = page_text(browser)
    assert "Best by FID: trial-000" in text and "sweep lr: dcgan on mnist-5k, 1 finished, 1 failed" in text
    # The failed trial has no FID: its cell is painted as a dash, not as the grid's "None".
    painted = set(WebDriverWait(browser, 30).until(lambda d: "250.5" in (seen := d.execute_script(
        "return window.canvasText")) and seen))
    assert "None" not in painted and "–" in painted
    finish(browser, shots / "9_sweeps.png")
