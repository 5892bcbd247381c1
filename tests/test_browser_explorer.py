"""The latent explorer in a real browser: `streamlit run app.py` on a checkpoint of every family (explorer_fixtures)
and headless Chromium with its network log on. A first visit is usable at once, with the server's sliders and image,
while the browser loads the model; ONNX Runtime Web then redraws the canvas while a slider is dragged, before it is
let go, in the page's font; every family's canvas equals the server's image of the same code; the release reaches
Python; a browser without WebAssembly, or one that cannot load the model, gets the server's sliders with a note; and
no request leaves the app's server.
"""
from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

from explorer_fixtures import every_family  # noqa: F401  (fixture)
from pages.app.browser import (CHROMEDRIVER, CHROMIUM, FRAME, chrome, choose_model, explorer_stats, free_port,
                               in_explorer, start_server, stop_server, wait_drawn, wait_idle)
from train.fixtures import DATASET

if not (CHROMIUM and CHROMEDRIVER):
    message = "the browser test needs Debian's chromium and chromium-driver: run `make setup`"
    if os.environ.get("CI"):
        raise RuntimeError(message)  # in CI a missing browser is a broken setup, not a reason to skip
    pytest.skip(message, allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from genmodels import checkpoint as ckpt  # noqa: E402
from genmodels.data import to_uint8  # noqa: E402
from genmodels.registry import family_names  # noqa: E402
from genmodels.sampling import generate  # noqa: E402

MAIN = '[data-testid="stMain"]'
LOADED = 900  # seconds: on this CPU, shared with training jobs, a first visit (with its export) took minutes
USABLE = 60   # seconds: a first visit's sliders and image, with the model loaded and its directions found on a fresh
              # server (bench/app_latency.py measures it on a quiet CPU)

# Run inside the component: records the edited canvas at every animation frame until the slider's release (its
# `change` event, which the component also answers by reporting to Python).
RECORDER = """
const canvas = document.getElementById('edited');
const slider = document.getElementById('slider-0');
window.seen = {shots: [], released: Infinity};
slider.addEventListener('change', () => { window.seen.released = performance.now(); }, {once: true});
(function look() {
  window.seen.shots.push({t: performance.now(), image: canvas.toDataURL()});
  if (window.seen.released === Infinity) requestAnimationFrame(look);
})();
"""


@pytest.fixture(scope="module")
def app_url(every_family, tmp_path_factory):  # noqa: F811
    port = free_port()
    server = start_server(every_family, port, tmp_path_factory.mktemp("server") / "streamlit.log")
    yield f"http://127.0.0.1:{port}"
    stop_server(server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"), height=1400, network_log=True)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def handed_over(driver, name: str) -> dict:
    """wait_drawn, and until the run that handed over to the browser has removed the server's sliders and image (the
    component draws before that run ends; the page's layout moves when it does)."""
    stats = wait_drawn(driver, name)
    WebDriverWait(driver, 60).until(
        lambda d: "start · after the sliders" not in d.find_element(By.CSS_SELECTOR, MAIN).text)
    wait_idle(driver)
    return stats


def click(driver, label: str) -> None:
    """Click the main area's toggle or radio option `label`, in the middle of the window (not under the app's toolbar,
    where a drag in the component can leave it scrolled)."""
    element = driver.find_element(By.XPATH, f"//*[@data-testid='stMain']//label[.//p[text()='{label}']]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def drawing(driver) -> tuple[dict, list[int]]:
    """The component's stats and the edited image's pixels as drawn (the canvas holds it at its own resolution: RGBA,
    row by row), read at one instant, so the canvas shows the code and class of stats["z"] and stats["label"]."""
    return in_explorer(driver, "const c = document.getElementById('edited');"
                               "return [window.explorerStats,"
                               "        Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];")


def server_image(every_family, family: str, z: list[float], label: int | None) -> torch.Tensor:  # noqa: F811
    """What the server draws for this code: the app's own path, generate() then to_uint8, as [H, W, C]."""
    model = ckpt.load(every_family / DATASET / family)
    labels = None if label is None or not model.num_classes else torch.tensor([label])
    return to_uint8(generate(model, torch.tensor([z]), labels))[0].permute(1, 2, 0)


def difference(pixels: list[int], image: torch.Tensor) -> int:
    """Max |canvas - server| in uint8 levels over every channel the model draws."""
    h, w, _ = image.shape
    canvas = torch.tensor(pixels, dtype=torch.int32).view(h, w, 4)[..., :3]
    return int((canvas - image.int().expand(h, w, 3)).abs().max())  # a gray image is drawn into all three


def test_a_first_visit_shows_sliders_and_an_image_before_the_browser_holds_the_model(browser, app_url):
    """The export of a model for the browser takes seconds to a minute, once per checkpoint: the first visitor gets the
    server's sliders and image meanwhile (issue 27: 16 s of "Preparing the generator…" with neither, 30 s for a
    WGAN-GP), and the browser takes over once it holds the model, its controls in the page's font."""
    started = time.monotonic()
    browser.get(f"{app_url}/latent")
    WebDriverWait(browser, USABLE, poll_frequency=0.1).until(
        lambda d: "PC1 · " in (text := d.find_element(By.CSS_SELECTOR, MAIN).text) and "start · after the sliders" in text)
    print(f"first visit: sliders and image after {time.monotonic() - started:.1f} s")
    assert explorer_stats(browser)["state"] != "ready", "usable before the browser held the model"
    handed_over(browser, "dcgan")
    print(f"the browser drew after {time.monotonic() - started:.1f} s, its export included")
    assert "PC1 · " not in browser.find_element(By.CSS_SELECTOR, MAIN).text, "the browser's sliders replace the server's"
    fonts = in_explorer(browser, "return [getComputedStyle(document.querySelector('label[for=slider-0]')).fontFamily,"
                                 "        [...document.fonts].some(f => f.family.replace(/\"/g, '') === 'Source Sans' "
                                 "                                      && f.status === 'loaded')]")
    assert fonts[0].startswith('"Source Sans"') and fonts[1], f"the explorer's labels are in the page's font: {fonts}"


def test_the_canvas_follows_a_drag_and_the_release_reaches_python(browser, app_url, every_family):  # noqa: F811
    # The first-visit test, which only read the page, leaves the browser on it: that load serves here too (a load of
    # this page, its runtime and model, costs Chromium and the server several CPU-s).
    if browser.current_url != f"{app_url}/latent":
        browser.get(f"{app_url}/latent")
    first = handed_over(browser, "dcgan")
    page_start = browser.execute_script("return performance.timeOrigin")
    print(f"first frame {first['firstFrameEpochMs'] - page_start:.0f} ms after the page load began")
    commits = first["commits"]
    frame = browser.find_element(By.CSS_SELECTOR, FRAME)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", frame)
    browser.switch_to.frame(frame)
    try:
        # The test's own eye on the canvas: its content at every animation frame, and the moment of the release.
        browser.execute_script(RECORDER)
        slider = browser.find_element(By.ID, "slider-0")
        width = slider.size["width"]
        drag = ActionChains(browser, duration=0).move_to_element_with_offset(slider, -width // 3, 0).click_and_hold()
        for _ in range(16):
            drag.move_by_offset(width // 30, 0).pause(0.1)
        drag.release().perform()
        after = WebDriverWait(browser, 60).until(
            lambda d: (s := d.execute_script("return window.explorerStats"))["commits"] > commits and s)
        seen = browser.execute_script("return window.seen")
        released = float(slider.get_attribute("value"))
    finally:
        browser.switch_to.default_content()
    before_release = [shot["image"] for shot in seen["shots"] if shot["t"] < seen["released"]]
    changes = sum(a != b for a, b in zip(before_release, before_release[1:]))
    print(f"during one drag (16 moves over ~1.6 s): the canvas changed {changes} times before the release")
    assert changes >= 5, "the canvas is redrawn while the slider moves, before it is let go"
    assert after["commits"] == commits + 1, "the release, and only it, is reported to Python"
    shown, pixels = drawing(browser)
    gap = difference(pixels, server_image(every_family, "dcgan", shown["z"], None))
    print(f"dcgan: canvas vs server, max difference {gap} (uint8 levels)")
    assert gap <= 1

    # The release reached Python: with the browser's drawing turned off, the server's sliders stand where the
    # browser's were let go, and the server draws the same image from them.
    wait_idle(browser)
    _, drawn = drawing(browser)
    click(browser, "Redraw while dragging")
    WebDriverWait(browser, LOADED).until(lambda d: "PC1 · " in d.find_element(By.CSS_SELECTOR, MAIN).text)
    wait_idle(browser)
    first = browser.find_element(By.CSS_SELECTOR, f'{MAIN} [data-testid="stSlider"] input[type="range"]')
    assert float(first.get_attribute("value")) == pytest.approx(released)
    src = browser.find_element(By.CSS_SELECTOR, '[data-testid="stImage"] img').get_attribute("src")
    with urllib.request.urlopen(src, timeout=60) as response:
        picture = torch.from_numpy(np.array(Image.open(io.BytesIO(response.read())).convert("L"))).int()
    # The server's picture: start and edited image side by side (make_grid, padding 2), each pixel enlarged 7 times.
    picture = picture[2 * 7::7, 32 * 7::7][:28, :28]
    canvas = torch.tensor(drawn, dtype=torch.int32).view(28, 28, 4)[..., 0]
    assert int((picture - canvas).abs().max()) <= 1, "the server's image of the released code is the canvas"
    click(browser, "Redraw while dragging")
    wait_drawn(browser, "dcgan")
    # Raw dimensions for the families that follow: no GANSpace directions to compute for each.
    click(browser, "Raw dimensions of z")
    WebDriverWait(browser, LOADED).until(lambda d: len(explorer_stats(d)["z"] or []) and in_explorer(
        d, "return document.querySelector('label[for=slider-0]').textContent") == "z[0]")


@pytest.mark.parametrize("family", [name for name in family_names() if name != "dcgan"])
def test_every_family_draws_what_the_server_draws(browser, app_url, every_family, family):  # noqa: F811
    """The dcgan is compared in the drag test; each other family: click a slider (raw dimensions of z, which the drag
    test chose last), and for conditional models pick another class inside the component, then compare the canvas
    with the server's image of the code it drew."""
    choose_model(browser, f"{DATASET}/{family}")
    before = handed_over(browser, family)
    conditional = bool(ckpt.read_config(every_family / DATASET / family)["model"].get("num_classes"))
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, FRAME))
    try:
        slider = browser.find_element(By.ID, "slider-1")
        # To the other side of zero: the sliders' values carry over from the family before (same keys, z[1]).
        side = -1 if float(slider.get_attribute("value")) > 0 else 1
        ActionChains(browser).move_to_element_with_offset(slider, side * slider.size["width"] // 4, 0).click().perform()
        if conditional:  # another class than the one shown (which carries over from the family before too)
            picker = Select(browser.find_element(By.ID, "class"))
            wanted = (int(picker.first_selected_option.get_attribute("value")) + 3) % 10
            picker.select_by_value(str(wanted))
    finally:
        browser.switch_to.default_content()
    reports = 1 + conditional  # the click's release, the class
    WebDriverWait(browser, 60).until(lambda d: (s := explorer_stats(d))["commits"] >= before["commits"] + reports
                                     and s["frames"] > before["frames"])
    shown, pixels = drawing(browser)
    label = shown["label"] if conditional else None
    if conditional:
        assert label == wanted, "the class picked inside the component is the one drawn"
    gap = difference(pixels, server_image(every_family, family, shown["z"], label))
    print(f"{family}: canvas vs server, max difference {gap} (uint8 levels)")
    assert gap <= 1


@pytest.mark.parametrize("broken", ["no WebAssembly", "model not loaded"])
def test_the_server_draws_with_a_note_where_the_browser_cannot(browser, app_url, broken):
    """A browser without WebAssembly (removed before any script of the page or its iframe runs), or one whose fetch
    of the ONNX file fails (blocked, as a dropped connection would fail it)."""
    if broken == "no WebAssembly":
        hook = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                       {"source": "delete globalThis.WebAssembly;"})
        why = "this browser has no WebAssembly"
        undo = ("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hook["identifier"]})
    else:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*.onnx"]})
        why = "this browser could not run the generator"
        undo = ("Network.setBlockedURLs", {"urls": []})
    try:
        browser.get(f"{app_url}/latent")
        note = WebDriverWait(browser, LOADED).until(lambda d: [e.text for e in d.find_elements(
            By.CSS_SELECTOR, f'{MAIN} [data-testid="stAlert"]') if why in e.text])
        print(f"{broken}: {note[0]}")
        assert "The server draws the images" in note[0]
        assert browser.find_elements(By.CSS_SELECTOR, f'{MAIN} [data-testid="stSlider"]')
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    finally:
        browser.execute_cdp_cmd(*undo)


def test_no_request_leaves_the_apps_server(browser, app_url):
    """Every request of this module's pages, iframes included, as Chromium's network log recorded it."""
    urls = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.add(message["params"]["url"])
    assert any(u.endswith("/vendor/ort-wasm-simd-threaded.wasm") for u in urls), "the log holds the iframe's requests"
    assert any(".onnx" in u for u in urls)
    # data:, blob: and chrome:// addresses are answered by the browser itself; whatever goes over the network goes
    # by http(s) or ws(s), and only to the app's server.
    server = urlsplit(app_url).netloc
    outside = sorted(u for u in urls
                     if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != server)
    assert not outside, outside
