"""Real checkpoints for the app tests: a few training steps each on the real MNIST subset, built once per run.

Test modules import `weights_dir`; the build is cached per process so two modules do not train twice.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
from pathlib import Path

import pytest

# Nothing in the tests may reach the network: a hub id typed in the sidebar must fail locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAMILIES = ("vae", "dcgan", "cgan")
STEPS = 6


@functools.cache
def build_weights(root: Path) -> Path:
    from genmodels import checkpoint as ckpt
    from genmodels.data import load_data
    from genmodels.metrics.classifier import classifier_dir
    from train.config import resolve_config
    from train.trainer import Trainer

    data = load_data("mnist-5k", "train")
    for family in FAMILIES:
        run = resolve_config("mnist-5k", family, [f"train.max_steps={STEPS}", "train.batch_size=32", "train.threads=2"],
                             num_classes=data.num_classes)
        out = Trainer(run, data, root / "runs" / family).fit()
        shutil.copytree(out, root / "weights" / "mnist-5k" / family)
    # A measured-metrics file in the format the metrics job writes, so the zoo and the table have numbers.
    ckpt.write_json(root / "weights" / "mnist-5k" / "dcgan" / ckpt.METRICS, {
        "checkpoint": "weights/mnist-5k/dcgan", "computed_at": "2026-01-01T00:00:00Z", "device": "cpu", "seconds": 1.0,
        "metrics": {"fid": {"value": 123.4, "protocol": "test protocol: 100 samples"},
                    "ssim": {"value": 0.321, "protocol": "test protocol: projection"},
                    "mse": {"value": 0.0456, "protocol": "test protocol: projection"}}})
    # The shipped MNIST classifier (the trainer above measures classifier-FID with it too): the conditional
    # page's verdicts and the Draw page's reading of a drawn digit are only meaningful from a trained one.
    shutil.copytree(classifier_dir("mnist-5k"), classifier_dir("mnist-5k", root / "weights"))
    return root / "weights"


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return build_weights(tmp_path_factory.getbasetemp() / "app_weights")


# Two tiny trials: one trains, one diverges (lr 1e30) and is recorded as failed.
SWEEP_SPEC = """dataset = "mnist-5k"
model = "dcgan"
[fixed]
train.batch_size = 32
train.max_steps = 2
[grid]
train.lr = [2e-4, 1e30]
"""


@functools.cache
def build_sweeps(root: Path) -> Path:
    """A sweeps folder as `python -m train.sweep` leaves it, with one real sweep ("lr") whose finished trial has a
    FID measured after training (in the format the metrics job writes)."""
    from genmodels import checkpoint as ckpt
    from train import sweep

    root.mkdir(parents=True)
    spec = root / "lr.toml"
    spec.write_text(SWEEP_SPEC)
    out = root / "sweeps" / "lr"
    sweep.run_sweep(spec, out)
    ckpt.write_json(out / "trial-000" / "checkpoint" / ckpt.METRICS, {
        "metrics": {"fid": {"value": 250.5, "protocol": "test protocol: 100 samples"}}})
    sweep.run_sweep(spec, out)  # a sweep run again picks up metrics measured since
    return root / "sweeps"


@pytest.fixture(scope="session")
def sweeps_dir(tmp_path_factory) -> Path:
    return build_sweeps(tmp_path_factory.getbasetemp() / "app_sweeps")


def broken_weights(weights: Path, root: Path) -> Path:
    """A copy of `weights` plus a truncated checkpoint and one whose weights do not match its config."""
    shutil.copytree(weights, root)
    truncated = root / "mnist-5k" / "truncated"
    shutil.copytree(weights / "mnist-5k" / "dcgan", truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    mismatched = root / "mnist-5k" / "mismatched"
    shutil.copytree(weights / "mnist-5k" / "vae", mismatched)
    shutil.copy(weights / "mnist-5k" / "dcgan" / "model.safetensors", mismatched / "model.safetensors")
    return root


def digit_png(size: int = 200) -> bytes:
    """A real held-out MNIST digit as a large RGB PNG, dark on light like a scanned drawing."""
    import numpy as np
    from PIL import Image

    from genmodels.data import load_data

    digit = load_data("mnist-5k", "test").images[0, 0].numpy()
    im = Image.fromarray(255 - digit).resize((size, size), Image.BICUBIC).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert np.asarray(im).mean() > 127  # light background, so the app has to invert it
    return buf.getvalue()


# ---- a real `streamlit run` and a real headless Chromium, for the browser test and bench/app_latency.py ----

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(weights: Path, port: int, log_path: Path, threads: int | None = None, sweeps: Path | None = None):
    """`streamlit run app.py` on 127.0.0.1:port, returning once /_stcore/health answers."""
    import subprocess
    import time
    import urllib.request

    env = {**os.environ, "GENMODELS_WEIGHTS": str(weights), "HF_HUB_OFFLINE": "1"}
    if sweeps:
        env["GENMODELS_SWEEPS"] = str(sweeps)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "streamlit"), "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not answer on port {port} within 60 s; see {log_path}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001  (a hung server is killed rather than left behind)
        proc.kill()


@contextlib.contextmanager
def running_app(weights: Path, folder: Path, sweeps: Path | None = None, width: int = 1400, height: int = 1000):
    """(url, driver): `streamlit run app.py` on a free local port and a fresh headless Chromium, both stopped after."""
    port = free_port()
    server = start_server(weights, port, folder / "streamlit.log", sweeps=sweeps)
    try:
        driver = chrome(folder / "profile", width, height)
        try:
            yield f"http://127.0.0.1:{port}", driver
        finally:
            driver.quit()
    finally:
        stop_server(server)


def chrome(profile: Path, width: int = 1400, height: int = 1000, network_log: bool = False):
    """Headless Chromium with the flags this machine needs and a fresh profile. With `network_log`, the DevTools
    network events of every frame are kept for `driver.get_log("performance")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_idle(driver, timeout: float = 60) -> None:
    """Until Streamlit has finished the current script run (its status widget says "running" while busy)."""
    import time

    from selenium.webdriver.common.by import By

    time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the app kept running for more than {timeout} s")


def image_sources(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [im.get_attribute("src") for im in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')]


def wait_for_images(driver, at_least: int = 1, different_from: list[str] | None = None, timeout: float = 60) -> list[str]:
    """The page's image sources once at least `at_least` are shown (and they differ from `different_from`)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        srcs = image_sources(d)
        return srcs if len(srcs) >= at_least and srcs != different_from else False

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(ready)


def drawing_surface(driver):
    """The canvas strokes are drawn on: fabric.js's upper canvas, inside the component's shadow root."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    host = WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('div')].find(e => e.shadowRoot && "
        "e.shadowRoot.querySelector('canvas.upper-canvas'))"))
    return host.shadow_root.find_element(By.CSS_SELECTOR, "canvas.upper-canvas")


def stroke(driver, points: list[tuple[int, int]]) -> None:
    """One pen stroke through `points` (pixels from the canvas centre): press, move through them, lift."""
    from selenium.webdriver.common.action_chains import ActionChains

    surface = drawing_surface(driver)
    ActionChains(driver).move_to_element(surface).perform()
    actions = ActionChains(driver).move_to_element_with_offset(surface, *points[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        actions.move_by_offset(x1 - x0, y1 - y0)
    actions.release().perform()
