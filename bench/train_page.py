"""What a run started from the Train page shows, and what watching it costs the training.

    .venv/bin/python bench/train_page.py [--seconds 60] [--pairs 2] [--out docs/train]

1. The picture: a DCGAN on MNIST (its shipped recipe, the page's defaults) started from the Train page in headless
   Chromium with a budget of --seconds; the last fixed-seed grid and a screenshot of the page go to --out.
2. The refresh cost: the same run started --pairs times with the Train page open on it (a fragment rerun every
   2 s) and --pairs times with no page open, alternating; each run's training images/s from its progress lines
   (the lost share is the ratio of the two means), and the cores that the server, Chromium and the trainer used
   while it trained.
3. What the trainer pays for being watchable, open page or not: one progress line and fixed-seed grid (what it
   writes every 2 s for the page, or less often when that would take over 5% of its time), timed in this process
   on the shipped MNIST DCGAN (the recipe's network), as a share of the trainer's time.

Uses a real `streamlit run` (as tests/test_browser_train.py does) and real `python -m train` subprocesses.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's packages

from pages.app.browser import chrome, free_port, start_server, stop_server, wait_for, wait_idle  # noqa: E402
from train import live  # noqa: E402
from train import runs as rm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def training_rate(run: rm.Run) -> float:
    """Images per second of training time, from the first line after start-up to the last."""
    lines = [line for line in run.progress() if line["images_per_sec"] is not None]
    first, last = lines[0], lines[-1]
    return (last["images_seen"] - first["images_seen"]) / (last["seconds"] - first["seconds"])


def live_log_cost(checkpoint: Path, folder: Path, repeats: int = 10) -> float:
    """Median seconds of one live-log write as the trainer makes it: the preview grid of the generator, then the
    progress line and the PNG (train.live.LiveLog.write)."""
    import torch

    from genmodels import load
    from genmodels.sampling import preview_grid

    torch.set_num_threads(rm.default_threads())  # as a run started with the page's defaults
    model = load(checkpoint)
    log = live.LiveLog(folder, rm.LIVE_EVERY)
    times = []
    for step in range(repeats):
        start = time.perf_counter()
        log.write(step, 0.0, 0, 0.0, preview_grid(model))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def picture(url: str, manager: rm.RunManager, seconds: float, out: Path, profile: Path) -> dict:
    """A run of `seconds` from the page with its defaults (MNIST, DCGAN); its last grid, film and a screenshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome(profile, height=1700)  # tall enough for the grid and the curves
    try:
        driver.get(f"{url}/train")
        start = WebDriverWait(driver, 600).until(
            lambda d: d.find_element(By.XPATH, "//*[@data-testid='stMain']//button[.//p[text()='Start training']]"))
        wait_idle(driver, 600)
        field = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] input[aria-label="Budget (seconds)"]')
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(f"{seconds:g}", Keys.TAB)
        wait_idle(driver, 600)
        start.click()
        run = wait_for(lambda: manager.runs(), 120)[-1]
        wait_for(lambda: manager.get(run.id).status == "finished"
                   and "finished" in driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text, seconds + 900)
        wait_idle(driver, 600)
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / "train-page.png"))
    finally:
        driver.quit()
    run = manager.get(run.id)
    frames = run.frames()
    shutil.copy(frames[-1], out / f"dcgan-mnist-{seconds:g}s.png")
    last = run.progress()[-1]
    return {"steps": last["step"], "images_seen": last["images_seen"], "seconds": last["seconds"],
            "images_per_sec": training_rate(run), "frames": len(frames)}


def timed_run(url: str, manager: rm.RunManager, server: psutil.Process, seconds: float, watched: bool,
              profile: Path) -> dict:
    """One run of `seconds`, with or without the Train page open on it: training images/s and CPU seconds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run, _ = manager.submit("bench", rm.Request("mnist", "dcgan", "seconds", seconds))  # the page's default threads
    driver = None
    if watched:  # another visitor's running run: the page shows it live, as its owner's page would
        driver = chrome(profile, height=1300)
        driver.get(f"{url}/train")
        WebDriverWait(driver, 600).until(lambda d: "another visitor's run" in d.find_element(
            By.CSS_SELECTOR, '[data-testid="stMain"]').text)
    try:
        # The window starts at the trainer's first progress line after start-up (its first interval's end).
        wait_for(lambda: manager.poll("bench") and len(manager.get(run.id).progress()) >= 2, 900)
        trainer = psutil.Process(manager.get(run.id).job["pid"])
        # This page's Chromium only (other browsers on the machine are not the page's cost).
        browser = psutil.Process(driver.service.process.pid).children(recursive=True) if driver else []
        before = {"trainer": cpu_seconds([trainer]), "server": cpu_seconds([server]), "browser": cpu_seconds(browser)}
        trainer_cpu = before["trainer"]
        while manager.get(run.id).active:  # the trainer's CPU time can only be read while it lives
            trainer_cpu = max(trainer_cpu, cpu_seconds([trainer]))
            manager.poll("bench")
            time.sleep(0.5)
        after = {"trainer": trainer_cpu, "server": cpu_seconds([server]), "browser": cpu_seconds(browser)}
    finally:
        if driver is not None:
            driver.quit()
    done = manager.get(run.id)
    lines = [line for line in done.progress() if line["images_per_sec"] is not None]
    return {"watched": watched, "images_per_sec": training_rate(done), "window_s": lines[-1]["seconds"] - lines[0]["seconds"],
            "cpu": {k: after[k] - before[k] for k in before}, "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="budget of each run")
    ap.add_argument("--pairs", type=int, default=2, help="watched/unwatched pairs for the refresh cost (0: none)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "train", help="where the picture and screenshot go")
    ap.add_argument("--skip-picture", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="train_page_bench_"))
    os.environ[rm.ROOT_ENV] = str(tmp / "runs")
    manager = rm.RunManager(tmp / "runs")
    port = free_port()
    proc = start_server(REPO / "weights", port, tmp / "streamlit.log")
    url = f"http://127.0.0.1:{port}"
    try:
        if not args.skip_picture:
            shown = picture(url, manager, args.seconds, args.out, tmp / "profile-picture")
            print(f"picture: {shown['steps']} steps, {shown['images_seen']:,} images in {shown['seconds']:.0f} s of "
                  f"training ({shown['images_per_sec']:.0f} img/s), {shown['frames']} frames -> {args.out}", flush=True)
        write = live_log_cost(REPO / "weights" / "mnist" / "dcgan", tmp / "live-cost")
        every = max(rm.LIVE_EVERY, write / live.SHARE)  # train.live.LiveLog.due
        print(f"live log: {write * 1000:.0f} ms per line and grid, so one every {every:.1f} s: {write / every:.1%} "
              f"of the trainer's time; load average {os.getloadavg()[0]:.1f}", flush=True)
        results = []
        for i in range(args.pairs):
            for watched in ((True, False) if i % 2 == 0 else (False, True)):
                r = timed_run(url, manager, psutil.Process(proc.pid), args.seconds, watched, tmp / f"profile-{i}-{watched}")
                results.append(r)
                print(f"{'watched  ' if watched else 'unwatched'} {r['images_per_sec']:7.1f} img/s over {r['window_s']:.0f} s; "
                      f"CPU s: trainer {r['cpu']['trainer']:.1f}, server {r['cpu']['server']:.1f}, "
                      f"browser {r['cpu']['browser']:.1f}; load average {r['load']:.1f}", flush=True)
        if results:
            w = [r["images_per_sec"] for r in results if r["watched"]]
            u = [r["images_per_sec"] for r in results if not r["watched"]]
            print(f"\nthroughput watched {statistics.mean(w):.1f} img/s, unwatched {statistics.mean(u):.1f} img/s: "
                  f"{1 - statistics.mean(w) / statistics.mean(u):+.1%} lost while watching")

            def cores(who: str, watched: bool) -> float:
                return statistics.mean(r["cpu"][who] / r["window_s"] for r in results if r["watched"] == watched)

            print(f"cores used while watched (unwatched): server {cores('server', True):.3f} "
                  f"({cores('server', False):.3f}), browser {cores('browser', True):.3f}, "
                  f"trainer {cores('trainer', True):.3f} ({cores('trainer', False):.3f}) of {os.cpu_count()}")
    finally:
        stop_server(proc)
        for run in manager.runs():
            if run.active and run.job.get("pid") and rm.alive(run.job["pid"], run.folder):
                os.kill(run.job["pid"], 9)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
