"""End to end: `streamlit run app.py` on a local port, driven by a real headless Chromium through Selenium.

Each page is opened, a widget is moved, and the test waits for the new image. Screenshots go to
$GENMODELS_SCREENSHOTS when set (docs/screenshots/ for the README), else to the test's tmp folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from app_fixtures import sweeps_dir, weights_dir  # noqa: F401  (fixtures)
from pages.app.browser import (CHROMEDRIVER, CHROMIUM, chrome, free_port, image_sources, running_app, start_server,
                               stop_server, stroke, wait_for_images, wait_idle)
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


@pytest.fixture(scope="module")
def app_url(weights_dir, sweeps_dir, tmp_path_factory):  # noqa: F811
    port = free_port()
    proc = start_server(weights_dir, port, tmp_path_factory.mktemp("server") / "streamlit.log", sweeps=sweeps_dir)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"), height=1200)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("GENMODELS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver, url: str, images: int = 1) -> list[str]:
    driver.get(url)
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


def test_first_request_to_a_sub_page_then_every_page(weights_dir, sweeps_dir, tmp_path):  # noqa: F811
    """A fresh server's first request goes to /sample. The entry script runs for it: the shared sidebar and the
    page menu in words are there, not a menu of file names without the sidebar. Then every page by its URL."""
    with running_app(weights_dir, tmp_path, sweeps=sweeps_dir) as (url, driver):
        open_page(driver, f"{url}/sample")
        sidebar = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text
        for label in ("Dataset", "Model", "Device", *PAGE_TITLES.values()):
            assert label in sidebar, (label, sidebar)
        assert "common" not in sidebar.split()
        assert len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"]')) == 2
        for page, title in PAGE_TITLES.items():
            driver.get(f"{url}/{page}")
            heading = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))[0].text
            assert heading.startswith(title), (page, heading)
            wait_idle(driver)
            finish(driver, tmp_path / f"first_{page or 'zoo'}.png")


def test_model_zoo(browser, app_url, shots):
    open_page(browser, app_url, images=3)
    text = page_text(browser)
    assert "Model zoo" in text and "DCGAN" in text and "VAE" in text and "CGAN" in text
    assert "123.4" in text, "the FID from metrics.json is on the DCGAN card"
    finish(browser, shots / "1_model_zoo.png")


def test_sample_new_seed_changes_the_grid(browser, app_url, shots):
    before = open_page(browser, f"{app_url}/sample")
    type_and_wait(browser, '[data-testid="stNumberInput"] input', "5", before)
    assert "seed 5" in page_text(browser)
    finish(browser, shots / "2_sample.png")


def test_latent_slider_updates_the_image(browser, app_url, shots):
    open_page(browser, f"{app_url}/latent")
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
    before = open_page(browser, f"{app_url}/conditional", images=4)
    assert "2 · sees" in page_text(browser), "each digit carries the classifier's verdict"
    type_and_wait(browser, '[data-testid="stTextInput"] input', "1984", before, images=4)
    assert "9 · sees" in page_text(browser)
    finish(browser, shots / "4_conditional.png")


def test_reconstruct_map_click_and_upload(browser, app_url, shots, tmp_path):
    open_page(browser, f"{app_url}/reconstruct", images=9)
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
    assert "VAE (mnist-5k/vae):" in text, "the VAE reconstructs the drawing"
    main_area(browser).find_element(By.XPATH, ".//button[.//p[starts-with(text(), 'Project through the')]]").click()
    text = wait_for_text(browser, "DCGAN (mnist-5k/dcgan):", timeout=300)
    assert "CGAN (mnist-5k/cgan):" in text, "every GAN projects the drawing"
    ActionChains(browser).move_to_element(main_area(browser).find_element(By.TAG_NAME, "h1")).perform()  # no tooltip
    finish(browser, shots / "8_draw.png")

    for y in range(-120, 130, 20):  # back and forth over the whole box
        stroke(browser, [(-125, y), (125, y + 10)])
    assert "looks like a scribble" in wait_for_text(browser, "looks like a scribble")
    finish(browser, tmp_path / "draw_scribble.png")

    main_area(browser).find_element(By.XPATH, ".//button[.//p[text()='Clear the canvas']]").click()
    text = wait_for_text(browser, "Draw a digit in the box: the models answer")
    assert "The classifier reads" not in text, "a cleared canvas shows no reading"
    finish(browser, tmp_path / "draw_cleared.png")


def test_metrics_page_draws_the_charts(browser, app_url, shots):
    browser.get(f"{app_url}/metrics")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    wait_for_images(browser, 2)
    wait_idle(browser)
    text = page_text(browser)
    assert "MNIST (mnist-5k) · test protocol: 100 samples" in text, "a table per dataset and FID protocol"
    assert "FID per model (lower is better)" in text and "123.4" in text, "the FID bar, labelled as people read it"
    assert "training history" in text and "Side by side" in text
    finish(browser, shots / "7_metrics.png")


def test_sweeps_page_shows_the_table_and_the_chart(browser, app_url, shots):
    browser.get(f"{app_url}/sweeps")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'))
    wait_idle(browser)
    text = page_text(browser)
    assert "Best by FID: trial-000" in text and "sweep lr: dcgan on mnist-5k, 1 finished, 1 failed" in text
    finish(browser, shots / "9_sweeps.png")
