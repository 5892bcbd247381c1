"""The Train page end to end: `streamlit run app.py` on a local port and two real headless Chromium sessions.

Both visitors start a run at once; only one trainer process may exist (one slot), and the visitor whose run the
server took second waits, watching the other's. The visitor whose run trains watches the fixed-seed grid change,
stops the run and opens it on the Sample page; the waiting run then starts by itself. (bench/train_page.py takes
the README's picture of the page.)
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from pages.app.browser import CHROMEDRIVER, CHROMIUM, WAIT, chrome, free_port, start_server, stop_server, wait_idle
from run_fixtures import trainer_processes, weights_without_models
from train import runs as rm

if not (CHROMIUM and CHROMEDRIVER):
    message = "the browser test needs Debian's chromium and chromium-driver: run `make setup`"
    if os.environ.get("CI"):
        raise RuntimeError(message)  # in CI a missing browser is a broken setup, not a reason to skip
    pytest.skip(message, allow_module_level=True)

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The app on a free port with its own runs folder and no shipped model: a visitor's run is the only one."""
    root = tmp_path / "runs"
    monkeypatch.setenv(rm.ROOT_ENV, str(root))
    port = free_port()
    proc = start_server(weights_without_models(tmp_path / "weights"), port, tmp_path / "streamlit.log")
    yield f"http://127.0.0.1:{port}", root
    stop_server(proc)
    for pid in trainer_processes(root):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def two_browsers(tmp_path):
    drivers = [chrome(tmp_path / f"profile-{i}", height=1300) for i in range(2)]
    for d in drivers:  # a starved CPU can keep chromedriver from answering within its default 120 s
        d.command_executor.client_config.timeout = 600
    yield drivers
    for d in drivers:
        d.quit()


def until(driver, condition, timeout: float = WAIT, every: float = 0.5):
    """WebDriverWait's until, failing with what the page shows and the state of every run."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=every).until(condition)
    except TimeoutException:
        runs = {r.id: (r.owner[:6], r.status, r.record.get("message")) for r in rm.RunManager.from_env().runs()}
        raise AssertionError(f"waited {timeout} s; the runs: {runs}; the page: {main_text(driver)!r}") from None


def main_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text


def button(driver, label: str):
    return driver.find_element(By.XPATH, f"//*[@data-testid='stMain']//button[.//p[normalize-space()='{label}']]")


def set_number(driver, label: str, value: int) -> None:
    field = driver.find_element(By.CSS_SELECTOR, f'[data-testid="stMain"] input[aria-label="{label}"]')
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.TAB)
    until(driver, lambda d: field.get_attribute("value") == str(value), 60)
    wait_idle(driver)


def tracebacks(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def grid_source(driver) -> str | None:
    """The source of the live grid (the page's first image), or None before the first."""
    images = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stImage"] img')
    return images[0].get_attribute("src") if images else None


def open_train_page(driver, url: str) -> None:
    driver.get(f"{url}/train")
    until(driver, lambda d: button(d, "Start training"))
    wait_idle(driver)
    set_number(driver, "Budget (seconds)", 600)  # long enough that it is still going when it is stopped
    driver.find_element(By.XPATH, "//*[@data-testid='stExpander']//summary").click()
    set_number(driver, "width", 8)


def test_two_visitors_one_slot_watch_stop_and_explore(server, two_browsers):
    url, root = server
    for driver in two_browsers:
        open_train_page(driver, url)
    for driver in two_browsers:  # at once: whichever the server takes first trains, the other waits for the slot
        button(driver, "Start training").click()
    waiter = until(two_browsers[0], lambda _: next(
        (d for d in two_browsers if "Waiting for a free slot" in main_text(d)), None))
    runner = next(d for d in two_browsers if d is not waiter)
    assert "another visitor's run" in main_text(waiter), "the waiting visitor watches the running one"

    most = 0
    seen: list[str] = []

    def watching(_) -> bool:
        nonlocal most
        most = max(most, len(trainer_processes(root)))
        src = grid_source(runner)
        if src and src not in seen:
            seen.append(src)
        return len(seen) >= 3  # the first grid, then two changes

    # Generous: on a starved CPU one rerun of the watching fragment has taken from 0.1 to 27 s.
    until(runner, watching, 2 * WAIT, every=0.2)
    assert "Waiting for a free slot" in main_text(waiter)
    assert most == 1 and len(trainer_processes(root)) == 1, "one slot: one trainer process"
    assert not tracebacks(runner) and not tracebacks(waiter)

    manager = rm.RunManager(root)
    mine = next(r for r in manager.runs() if r.status == "running")
    until(runner, lambda d: manager.get(mine.id).checkpoint)  # saved every 15 s
    button(runner, "Stop").click()
    until(runner, lambda d: "stopped" in main_text(d) and button(d, "Explore it (your run 1)"))
    # The slot is free: the waiting visitor's run starts by itself, and still only one trainer runs.
    until(waiter, lambda d: "Waiting for a free slot" not in main_text(d) and "running" in main_text(d))
    assert len(trainer_processes(root)) == 1

    button(runner, "Explore it (your run 1)").click()
    until(runner, lambda d: d.current_url.endswith("/sample")
          and d.find_element(By.CSS_SELECTOR, "h1").text == "Sample · DCGAN (your run 1)")  # the title names the run
    until(runner, lambda d: grid_source(d))
    chosen = [e.get_attribute("value") for e in runner.find_elements(
        By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"] input')]
    assert any("your run 1" in c for c in chosen), chosen

    button(waiter, "Stop").click()
    until(waiter, lambda d: "stopped" in main_text(d))
    deadline = time.monotonic() + 30
    while trainer_processes(root) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not trainer_processes(root) and not tracebacks(runner) and not tracebacks(waiter)
