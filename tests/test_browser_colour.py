"""The in-browser latent explorer on a colour model, in real Chromium: `streamlit run app.py` on the few-step RGB VAE
of app_fixtures.colour_weights (trained on an image folder of photo crops, as a visitor's run is). ONNX Runtime Web
draws its three channels, and the canvas equals the server's image of the same code in each of them."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from app_fixtures import colour_weights  # noqa: F401  (fixture)
from pages.app.browser import (CHROMEDRIVER, CHROMIUM, FRAME, chrome, explorer_stats, free_port, in_explorer,
                               start_server, stop_server, wait_drawn, wait_idle)

if not (CHROMIUM and CHROMEDRIVER):
    message = "the browser test needs Debian's chromium and chromium-driver: run `make setup`"
    if os.environ.get("CI"):
        raise RuntimeError(message)  # in CI a missing browser is a broken setup, not a reason to skip
    pytest.skip(message, allow_module_level=True)

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from genmodels import checkpoint as ckpt  # noqa: E402
from genmodels.data import to_uint8  # noqa: E402
from genmodels.sampling import generate  # noqa: E402


def test_the_browser_draws_a_colour_model_in_its_three_channels(colour_weights, tmp_path):  # noqa: F811
    weights = tmp_path / "weights"
    shutil.copytree(colour_weights / "photos" / "vae", weights / "photos" / "vae")  # the app opens on it
    port = free_port()
    server = start_server(weights, port, tmp_path / "streamlit.log")
    driver = chrome(tmp_path / "profile", height=1400)
    try:
        driver.get(f"http://127.0.0.1:{port}/latent")
        wait_drawn(driver, "vae")
        wait_idle(driver)  # the page's rerun after the hand-over would swallow a click on the slider under load
        before = explorer_stats(driver)
        driver.switch_to.frame(WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, FRAME)))
        try:
            # Keys, not a click at coordinates: under load the component's frame can still be settling its height,
            # and a click aimed at the slider then lands beside it (CI saw no commit after one).
            driver.find_element(By.ID, "slider-0").send_keys(*[Keys.ARROW_RIGHT] * 8)
        finally:
            driver.switch_to.default_content()
        try:
            WebDriverWait(driver, 60).until(lambda d: (s := explorer_stats(d))["commits"] > before["commits"]
                                            and s["frames"] > before["frames"])
        except TimeoutException:
            raise AssertionError(f"no redraw reported after the arrow keys: {explorer_stats(driver)}") from None
        shown, pixels = in_explorer(driver, "const c = document.getElementById('edited');"
                                            "return [window.explorerStats,"
                                            "        Array.from(c.getContext('2d').getImageData(0, 0, 32, 32).data)];")
    finally:
        driver.quit()
        stop_server(server)
    canvas = torch.tensor(pixels, dtype=torch.int32).view(32, 32, 4)[..., :3]
    model = ckpt.load(weights / "photos" / "vae")
    server_image = to_uint8(generate(model, torch.tensor([shown["z"]])))[0].permute(1, 2, 0).int()
    gap = int((canvas - server_image).abs().max())
    print(f"colour VAE: canvas vs server, max difference {gap} (uint8 levels) over the three channels")
    assert gap <= 1
    # Each channel its own: a canvas that drew one channel into all three would be grey.
    assert (canvas[..., 0] - canvas[..., 1]).abs().float().mean() > 2
