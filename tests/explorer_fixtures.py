"""One checkpoint of every family, for the ONNX export and the in-browser explorer tests: the families' default
architectures with their own seeded initialisation (what is compared is the export and the browser's drawing of it,
not training), saved as the trainer saves them. The VAE's mixture prior is fitted to codes of real MNIST digits, so
the exported prior mapping has distinct components to choose between.

Also what tests/test_browser_explorer.py and bench/app_latency.py share to drive the explorer in Chromium.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

DATASET = "mnist-5k"


@functools.cache
def build_checkpoints(root: Path) -> Path:
    """ROOT/mnist-5k/FAMILY/ for every registered family; returns the weights folder ROOT."""
    import torch

    from genmodels import checkpoint as ckpt
    from genmodels.data import load_data
    from genmodels.registry import family_names, get_family

    data = load_data(DATASET, "test")
    for i, name in enumerate(family_names()):
        family = get_family(name)
        torch.manual_seed(i)
        config = family.make_config({"num_classes": data.num_classes} if family.conditional else
                                    {"prior_components": 10} if name == "vae" else {})
        model = family.build_generator(config).eval()
        if name == "vae":
            model.fit_prior(model.encode_means(data.images[:500]))
        ckpt.save(model, root / DATASET / name, name,
                  data={"dataset": DATASET, "class_names": [str(c) for c in range(data.num_classes)]})
    return root


@pytest.fixture(scope="session")
def every_family(tmp_path_factory) -> Path:
    return build_checkpoints(tmp_path_factory.getbasetemp() / "every_family")


# ---- the explorer component in a Selenium-driven Chromium ----------------------------------------------------------

FRAME = 'iframe[title*="latent_explorer"]'


def in_explorer(driver, script: str, *args, timeout: float = 900):
    """Run `script` inside the component's iframe (same origin: its window and canvases are reachable)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.switch_to.frame(WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, FRAME)))
    try:
        return driver.execute_script(script, *args)
    finally:
        driver.switch_to.default_content()


def explorer_stats(driver) -> dict:
    """window.explorerStats of the component (frontend/explorer.js says what each field counts)."""
    return in_explorer(driver, "return window.explorerStats")


def wait_drawn(driver, name: str, timeout: float = 900) -> dict:
    """The component's stats once its canvas shows the export of checkpoint folder `name` (exports are named by it)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(d):
        stats = explorer_stats(d)
        assert stats["state"] != "error", stats["error"]
        return stats if re.match(rf"models/{re.escape(name)}-[0-9a-f]{{12}}-", stats["model"] or "") else False

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(drawn)


def choose_model(driver, key: str) -> None:
    """Pick the checkpoint `key` (e.g. "mnist-5k/gan") in the sidebar's model box, by typing it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"]')[1]
    box.click()
    field = box.find_element(By.TAG_NAME, "input")
    field.send_keys(key)
    field.send_keys(Keys.ENTER)
