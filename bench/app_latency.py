"""How fast does the app answer? Cold start to the first sample grid, time per latent-slider move, and the
server's memory after 10 and after 200 reruns, against a bare `generate` call measured in the same run.

    .venv/bin/python bench/app_latency.py [--weights weights] [--moves 20] [--reruns 200]
                                          [--part server|explorer|first-visit|both]

The explorer part times the latent explorer: first, a first visit to a fresh server before any export is made, to the
first usable frame (the server's sliders and image, which stand in while the browser loads the model) and to the
browser's first frame; then its in-browser half (pages/components/explorer): the ONNX export per
family, the first frame on the canvas after a page load, and canvas redraws per second while a slider is dragged
(a Selenium drag of 60 pointer moves of one slider step, each taking 16 ms as a 60 Hz hand's would, counted by the
page itself), for every family at 28x28 and a 64x64 DCGAN (seeded, untrained checkpoints: the figures are speeds,
not quality).

Uses a real `streamlit run` and headless Chromium (as tests/test_browser.py does). Without mnist/dcgan in
--weights it trains short mnist-5k checkpoints into a temporary folder first. On a machine with a GPU the app
picks cuda by default, so the numbers are for the GPU there; the bare generate is timed on every device.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's packages

from genmodels import checkpoint as ckpt  # noqa: E402
from genmodels.export import onnx_file  # noqa: E402
from genmodels.registry import family_names, get_family  # noqa: E402
from genmodels.sampling import latents  # noqa: E402
from pages.app.browser import (FRAME, choose_model, chrome, explorer_stats, free_port, image_sources,  # noqa: E402
                               start_server, stop_server, wait_drawn, wait_for_images, wait_idle)
from pages.components.explorer import MODELS  # noqa: E402
from train.fixtures import DATASET, build_checkpoints, build_weights  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def bare_generate(model_dir: Path, device: str, repeats: int = 50) -> tuple[float, float]:
    """Median milliseconds of generate() for 1 image and for a 64-image grid."""
    model = ckpt.load(model_dir, device)
    times = {}
    for n in (1, 64):
        z = latents(model, n, seed=0)
        with torch.no_grad():
            model.generate(z)  # warm-up
            samples = []
            for _ in range(repeats):
                t = time.perf_counter()
                model.generate(z)
                if device == "cuda":
                    torch.cuda.synchronize()
                samples.append(time.perf_counter() - t)
        times[n] = statistics.median(samples) * 1000
    return times[1], times[64]


def slider_moves(driver, n: int, direction: str = "right") -> list[float]:
    """Seconds from a key press on the first slider to the new image in the page, n times."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    key = Keys.ARROW_RIGHT if direction == "right" else Keys.ARROW_LEFT
    slider = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]')
    driver.execute_script("arguments[0].focus();", slider)
    out = []
    for _ in range(n):
        before = image_sources(driver)
        t = time.perf_counter()
        ActionChains(driver).send_keys(key).perform()
        wait_for_images(driver, 1, different_from=before, timeout=30)
        out.append(time.perf_counter() - t)
    wait_idle(driver)
    return out


def server_sliders(driver) -> None:
    """Turn the explorer's in-browser drawing off: these figures are for the server's sliders."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.XPATH, "//label[.//p[text()='Redraw while dragging']]").click()
    main = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]')
    WebDriverWait(driver, 120).until(lambda d: "PC1 · " in main.text)
    wait_idle(driver)


def explorer_weights(root: Path) -> tuple[Path, list[str]]:
    """Every family at 28x28 and a 64x64 DCGAN, as checkpoint folders; returns the weights root and their names."""
    weights = build_checkpoints(root)
    family = get_family("dcgan")
    ckpt.save(family.build_generator(family.make_config({"image_size": 64})).eval(), weights / DATASET / "dcgan-64x64",
              "dcgan", data={"dataset": DATASET})
    return weights, family_names() + ["dcgan-64x64"]


def drag_rate(driver, moves: int = 60) -> tuple[float, int, int, float, float]:
    """Drag the first slider across with `moves` pointer moves of 16 ms each (60: one slider step each, -3 to 3 by
    0.1, so each move can be an input event). Returns (canvas redraws per second between the first and the last
    redraw of the drag, redraws, input events, seconds between the first and the last redraw, median ms of one
    session.run)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    before = explorer_stats(driver)
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, FRAME))
    try:
        slider = driver.find_element(By.ID, "slider-0")
        width = slider.size["width"]
        drag = ActionChains(driver, duration=16).move_to_element_with_offset(slider, -width // 2 + 2, 0)
        drag.click_and_hold()
        for _ in range(moves):
            drag.move_by_offset(max(1, (width - 4) // moves), 0)
        drag.release().perform()
    finally:
        driver.switch_to.default_content()
    after = explorer_stats(driver)
    times = after["frameTimes"][len(before["frameTimes"]):]
    runs = after["runMs"][len(before["runMs"]):]
    span = (times[-1] - times[0]) / 1000 if len(times) > 1 else float("nan")
    return ((len(times) - 1) / span, len(times), after["inputs"] - before["inputs"], span,
            statistics.median(runs) if runs else float("nan"))


def first_visit(weights: Path, tmp: Path) -> None:
    """Seconds from a page request to the latent explorer's first usable frame (the server's sliders and image, which
    stand in while the browser loads the model): for the first visitor of a fresh server with nothing exported for the
    browser (also to the browser's own first frame, its export made meanwhile), and for a second visitor; against the
    same fresh start's first Sample grid, the app's cold start, measured in this run."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(driver, *texts: str) -> bool:
        main = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"]')
        return bool(main) and all(t in main[0].text for t in texts)

    def visit(port: int, page: str, who: str, done, drawn: bool = False) -> None:
        driver = chrome(tmp / f"profile-{page}-{who.replace(' ', '-')}")
        try:
            started = time.perf_counter()
            driver.get(f"http://127.0.0.1:{port}/{page}")
            WebDriverWait(driver, 600, poll_frequency=0.05).until(done)
            print(f"  {who}: {time.perf_counter() - started:.1f} s")
            if drawn:
                wait_drawn(driver, "dcgan")
                print(f"  {who}, the browser's own first frame: {time.perf_counter() - started:.1f} s, its export "
                      "included")
        finally:
            driver.quit()

    explorer = lambda d: shown(d, "PC1 · ", "start · after the sliders")  # noqa: E731
    for round_ in ("latent", "sample"):
        port = free_port()
        server = start_server(weights, port, tmp / f"first-visit-{round_}.log")
        try:
            if round_ == "latent":
                print(f"latent explorer, first usable frame ({DATASET}/dcgan, nothing exported):")
                visit(port, "latent", "first visitor of a fresh server", explorer, drawn=True)
                visit(port, "latent", "second visitor", explorer)
            else:
                print("reference, the app's cold start:")
                visit(port, "sample", "first Sample grid of a fresh server", lambda d: d.find_elements(
                    By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stImage"] img'))
        finally:
            stop_server(server)


def explorer_figures(tmp: Path, first_only: bool = False) -> None:
    weights, names = explorer_weights(tmp / "explorer")
    first_visit(weights, tmp)
    if first_only:
        return
    for name in names:
        t = time.perf_counter()
        path = onnx_file(weights / DATASET / name, MODELS)  # the app's cache: the server below finds them there
        print(f"ONNX export of {name}: {time.perf_counter() - t:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
    port = free_port()
    server = start_server(weights, port, tmp / "explorer.log")
    try:
        # Fresh profiles (nothing of the page cached), exports made. The server's first visit also loads the model and
        # finds its GANSpace directions; later visitors find both cached.
        for visit in ("first visit to a fresh server", "second visitor", "third visitor"):
            driver = chrome(tmp / f"profile-{visit.replace(' ', '-')}")
            try:
                driver.get(f"http://127.0.0.1:{port}/latent")
                first = wait_drawn(driver, "dcgan")
                page = driver.execute_script("return performance.timeOrigin")
                print(f"first frame after page load, {visit} ({DATASET}/dcgan): "
                      f"{first['firstFrameEpochMs'] - page:.0f} ms")
            finally:
                driver.quit()
        driver = chrome(tmp / "profile-drag")
        try:
            driver.get(f"http://127.0.0.1:{port}/latent")
            wait_drawn(driver, "dcgan")
            for name in names:
                choose_model(driver, f"{DATASET}/{name}")
                wait_drawn(driver, name)
                wait_idle(driver)
                rate, frames, inputs, span, run_ms = drag_rate(driver)
                print(f"dragging, {name}: {rate:.0f} canvas redraws/s ({frames} redraws for {inputs} input events "
                      f"in {span:.2f} s; session.run median {run_ms:.1f} ms)")
        finally:
            driver.quit()
    finally:
        stop_server(server)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=Path("weights"), help="weights folder with mnist/dcgan")
    ap.add_argument("--moves", type=int, default=20, help="slider moves to time")
    ap.add_argument("--reruns", type=int, default=200, help="reruns for the memory check")
    ap.add_argument("--part", choices=["server", "explorer", "first-visit", "both"], default="both",
                    help="the server's figures, the explorer's, only the explorer's first visit, or both")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="app_latency_"))
    if args.part in ("explorer", "first-visit", "both"):
        explorer_figures(tmp, first_only=args.part == "first-visit")
        if args.part != "both":
            return 0
    weights = args.weights
    model_dir = weights / "mnist" / "dcgan"  # the app's first-visit model, which the pages below show
    if not (model_dir / "config.json").is_file():
        print(f"no {model_dir}: training short mnist-5k checkpoints in {tmp}", file=sys.stderr)
        weights = build_weights(tmp, ("vae", "dcgan", "cgan"))  # as the app tests: every kind of page
        model_dir = weights / "mnist-5k" / "dcgan"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"model {model_dir}; torch threads {torch.get_num_threads()}; devices {', '.join(devices)}")
    for device in devices:
        one, grid = bare_generate(model_dir, device)
        print(f"bare generate on {device}: {one:.2f} ms for 1 image, {grid:.2f} ms for 64")

    port = free_port()
    driver = chrome(tmp / "profile")
    started = time.perf_counter()
    server = start_server(weights, port, tmp / "streamlit.log")
    try:
        driver.get(f"http://127.0.0.1:{port}/sample")
        wait_for_images(driver, 1, timeout=120)
        cold = time.perf_counter() - started
        wait_idle(driver)
        print(f"cold start (launch `streamlit run` -> first sample grid in the browser): {cold:.1f} s")

        driver.get(f"http://127.0.0.1:{port}/latent")
        wait_for_images(driver, 1, timeout=120)
        server_sliders(driver)
        moves = slider_moves(driver, 10)
        after_10 = rss_mb(server.pid)
        moves += slider_moves(driver, max(0, args.moves - 10), "left")
        print(f"latent slider move -> new image ({len(moves)} moves, app on {devices[-1]}): "
              f"median {statistics.median(moves) * 1000:.0f} ms, max {max(moves) * 1000:.0f} ms")
        done, memory = len(moves), {10: after_10, len(moves): rss_mb(server.pid)}
        while done < args.reruns:
            # Alternate directions in chunks of 20 so the slider stays inside its range (-3..3, steps of 0.1).
            step = min(20, args.reruns - done)
            slider_moves(driver, step, "right" if (done // 20) % 2 else "left")
            done += step
            memory[done] = rss_mb(server.pid)
        print("server memory (MB) after N reruns: " + ", ".join(f"{n}: {mb:.0f}" for n, mb in memory.items()))
        print(f"growth from 10 to {done} reruns: {memory[done] - after_10:+.0f} MB")
    finally:
        driver.quit()
        stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
