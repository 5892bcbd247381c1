"""This app run for real and driven by a real browser: `streamlit run app.py` on a free local port and a headless
Chromium through Selenium, with the flags this machine needs. Shared by the browser tests (tests/test_browser*.py),
the benchmarks (bench/app_latency.py, bench/train_page.py) and the screenshot script (docs/screenshots/take.py);
the pages never import it. Selenium comes from tests/requirements.txt and is imported only where it is used.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT = 240  # seconds: generous, the CPU is shared with background training


def wait_for(what, timeout: float = WAIT, every: float = 0.5):
    """`what()` once it is truthy, polled every `every` seconds; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"waited {timeout} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(weights: Path, port: int, log_path: Path, threads: int | None = None, sweeps: Path | None = None):
    """`streamlit run app.py` on 127.0.0.1:port, returning once /_stcore/health answers."""
    import subprocess
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
    """Until Streamlit has finished the current script run: its status widget says "running" while busy, and the
    elements a run has not yet reached again are marked stale. The widget shows only after a delay, so on a loaded
    machine a run can be under way without it, its message written above the previous run's stale elements."""
    from selenium.webdriver.common.by import By

    time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"], [data-stale="true"]'):
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


# ---- the latent explorer's component (pages/components/explorer) in that browser -------------------------------------

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
