"""Your images on the Train page in a real headless Chromium (`streamlit run app.py` on a local port): choose "Your
images", give the file input a zip of photo crops in two class folders, and see the report and the preview grid drawn;
the page's screenshot is kept beside the test's files."""
from __future__ import annotations

from pages.app.browser import chrome, wait_idle
from test_browser_train import button, main_text, server, tracebacks, until  # noqa: F401  (server: a fixture)
from test_image_sets import crops, zip_of

from selenium.webdriver.common.by import By  # noqa: E402  (test_browser_train skips the module without Chromium)
from selenium.webdriver.common.keys import Keys  # noqa: E402


def test_upload_a_zip_and_see_the_preview_grid(server, tmp_path):
    url, root = server
    photos = {kind: crops(kind, 20, seed=i) for i, kind in enumerate(("cats", "things"))}
    upload = tmp_path / "mine.zip"
    upload.write_bytes(zip_of([(f"mine/{kind}/{i}.jpg", d) for kind, ds in photos.items() for i, d in enumerate(ds)]))
    driver = chrome(tmp_path / "profile", height=1300)
    try:
        driver.get(f"{url}/train")
        until(driver, lambda d: button(d, "Start training"))
        wait_idle(driver)
        # The page can be mid-rerun at a busy moment, its dataset box not yet drawn (four workers at load 4 found none).
        box = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR,
                                                      '[data-testid="stMain"] [data-testid="stSelectbox"]'))[0]
        box.click()
        box.find_element(By.TAG_NAME, "input").send_keys("Your images", Keys.ENTER)
        until(driver, lambda d: "Upload a zip of your photos" in main_text(d))
        # The caption can be painted before the uploader's input: wait for the input itself (the full suite, at load
        # 3, found none at once).
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type="file"]')
              )[0].send_keys(str(upload))
        until(driver, lambda d: "40 images used in 2 classes (cats: 20, things: 20), each 64x64 RGB." in main_text(d))
        wait_idle(driver)
        grid = until(driver, lambda d: next((im for im in d.find_elements(
            By.CSS_SELECTOR, '[data-testid="stMain"] [data-testid="stImage"]')
            if "32 of the 40 images" in im.text), None))
        picture = grid.find_element(By.TAG_NAME, "img")
        # Drawn at its own size: 8 columns of 64 px with make_grid's 2 px padding, 4 rows.
        assert driver.execute_script("return [arguments[0].complete, arguments[0].naturalWidth, "
                                     "arguments[0].naturalHeight]", picture) == [True, 530, 266]
        assert picture.is_displayed() and picture.size["width"] == 530
        assert button(driver, "Start training").is_displayed() and not tracebacks(driver)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
        driver.save_screenshot(str(tmp_path / "train-your-images.png"))
    finally:
        driver.quit()
