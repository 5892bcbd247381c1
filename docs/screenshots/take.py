"""Retake the README's screenshots from the shipped weights: a real `streamlit run` and headless Chromium, as in
tests/test_browser.py (which asserts on few-step checkpoints; this only shows the shipped ones).

    .venv/bin/python docs/screenshots/take.py [--weights weights] [--sweeps runs/sweeps] [--out docs/screenshots]

The app opens on its first-visit model (MNIST's best by FID-10k).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages

from pages.app.browser import (FRAME, explorer_stats, image_sources, running_app, stroke, wait_drawn,  # noqa: E402
                               wait_for_images, wait_idle)
from pages.app.common import first_entry  # noqa: E402
from train.fixtures import digit_png  # noqa: E402

# A "2" as a hand draws it: the hook and the diagonal in one stroke, then the base.
TWO = [[(-60, -50), (-40, -85), (0, -100), (40, -85), (55, -50), (35, -10), (-10, 40), (-60, 85)],
       [(-60, 85), (0, 85), (65, 85)]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=REPO / "weights")
    ap.add_argument("--sweeps", type=Path, default=REPO / "runs" / "sweeps")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="screenshots_"))
    with running_app(args.weights.resolve(), tmp, sweeps=args.sweeps.resolve(), height=1100) as (url, driver):
        take(url, driver, tmp, args.out, args.weights)
    return 0


def take(url: str, driver, tmp: Path, out: Path, weights: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def main_area():
        return driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]')

    def wait_for(text: str, timeout: float = 300) -> None:
        WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: text in main_area().text)
        wait_idle(driver, timeout)

    def press(label: str) -> None:
        """Click the main area's button whose label starts with `label`; wait until its run has finished."""
        main_area().find_element(By.XPATH, f".//button[.//p[starts-with(text(), '{label}')]]").click()
        time.sleep(1)
        wait_idle(driver, 900)  # projections take minutes on a busy CPU

    def shot(name: str) -> None:
        ActionChains(driver).move_to_element(main_area().find_element(By.TAG_NAME, "h1")).perform()  # no tooltips
        time.sleep(0.5)  # plotly's and the grid's last frame
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), f"a traceback on {name}"
        if not driver.save_screenshot(str(out / f"{name}.png")):  # Selenium says False, it does not raise
            raise OSError(f"could not write {out / name}.png")
        print(f"wrote {out / name}.png")

    driver.get(url)
    wait_for_images(driver, 6, timeout=300)
    wait_idle(driver, 300)
    shot("1_model_zoo")

    driver.get(f"{url}/sample")
    wait_for_images(driver, 1, timeout=300)
    wait_idle(driver)
    shot("2_sample")

    driver.get(f"{url}/latent")
    opening = first_entry(weights)
    drawn = wait_drawn(driver, Path(opening.location).name)  # the in-browser explorer, once its canvas shows it
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, FRAME))
    try:
        driver.execute_script("document.getElementById('slider-0').focus();")
        ActionChains(driver).send_keys(*[Keys.ARROW_RIGHT] * 15).perform()
        driver.execute_script("document.activeElement.blur();")  # no focus ring in the shot
    finally:
        driver.switch_to.default_content()
    WebDriverWait(driver, 60).until(lambda d: explorer_stats(d)["commits"] >= drawn["commits"] + 15)
    wait_idle(driver)
    shot("3_latent_explorer")

    driver.get(f"{url}/conditional")
    wait_for("sees")
    shot("4_conditional")

    driver.get(f"{url}/reconstruct")
    wait_for("mean SSIM")
    point = WebDriverWait(driver, 120).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace:last-child path.point"))[3]
    before = image_sources(driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(driver).move_to_element(point).click().perform()
    wait_for_images(driver, 1, different_from=before)
    wait_idle(driver)
    shot("5_reconstruct_map")

    driver.get(f"{url}/reconstruct")
    wait_for("mean SSIM")
    main_area().find_element(By.XPATH, "//label[.//p[text()='Upload an image']]").click()
    upload = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, 'input[type="file"]'))
    png = tmp / "digit.png"
    png.write_bytes(digit_png())
    upload.send_keys(str(png))
    wait_for("Converted:")
    press("Project through")
    shot("6_reconstruct_upload")

    driver.get(f"{url}/draw")
    wait_for("Draw a digit in the box")
    for points in TWO:
        stroke(driver, points)
    wait_for("draws 2 in 10 styles")
    press("Project through the")
    shot("8_draw")

    driver.get(f"{url}/metrics")
    wait_for("FID per model")
    shot("7_metrics")

    driver.get(f"{url}/sweeps")  # the project's committed sweeps are always there, beside any in --sweeps
    wait_for("Best by")
    shot("9_sweeps")


if __name__ == "__main__":
    sys.exit(main())
