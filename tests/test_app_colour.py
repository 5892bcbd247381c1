"""A colour model on every page, through AppTest: few-step RGB checkpoints trained on an image folder of photo crops, as
a visitor's run on an upload is (app_fixtures.colour_weights: a VAE at 32 px and a DCGAN at 64 px on one folder, a CGAN
at 32 px on a class subfolder per photograph). What the pages serve is read back as the PNG a browser would get, and
must be in colour."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from app_fixtures import colour_weights  # noqa: F401  (fixture)
from genmodels import checkpoint as ckpt
from test_app import APP, texts
from train.fetch_photos import photograph

@pytest.fixture
def served(monkeypatch) -> dict[str, bytes]:
    """Every file the pages hand Streamlit's media store, by the URL the page's element points at: what a browser
    would download."""
    files: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        file_id = store(self, path_or_data, mimetype, kind, filename)
        files[self.get_url(file_id)] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return files


def images(at: AppTest, served: dict[str, bytes]) -> list[np.ndarray]:
    """The page's images as the browser gets them, RGB arrays."""
    return [np.asarray(Image.open(io.BytesIO(served[url])).convert("RGB")).astype(int)
            for element in at.get("image") for url in element.value]


def in_colour(image: np.ndarray) -> bool:
    """The channels differ (a grey image has R = G = B everywhere): even an untrained generator's noise is coloured."""
    return np.abs(image[..., 0] - image[..., 1]).mean() + np.abs(image[..., 1] - image[..., 2]).mean() > 2


def open_colour(monkeypatch, weights: Path, model: str, page: str) -> AppTest:
    """The app on `page` with the colour checkpoint `model` (photos/FAMILY) chosen in the sidebar."""
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    monkeypatch.setenv("GENMODELS_SWEEPS", str(weights / "no-sweeps-here"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="dataset").set_value(ckpt.read_config(weights / model)["data"]["dataset"]).run()
    at.sidebar.selectbox(key="model").set_value(model).run()
    if page != "zoo":
        at.switch_page(f"../{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_zoo_and_sample_show_colour_images(monkeypatch, colour_weights, served):  # noqa: F811
    at = open_colour(monkeypatch, colour_weights, "photos/dcgan", "zoo")
    text = texts(at)
    # The folder by its name, never its place on the machine that trained on it.
    assert "**Data:** an image folder (skimage-photos) · 228 training images" in text
    assert str(colour_weights.parent / "data") not in text
    previews = images(at, served)
    assert sorted(p.shape[:2] for p in previews) == [(274, 274), (274, 274), (530, 530)], "8 x 8 of 32, 32, 64 px"
    assert any(map(in_colour, previews)), "the VAE's preview is in colour"
    at.switch_page("../sample.py").run()
    at.select_slider(key="sample_count").set_value(4).run()
    assert not at.exception
    (grid,) = images(at, served)
    # Four 64x64 samples in a row with make_grid's padding of 2, enlarged with square pixels.
    scale = grid.shape[0] // (64 + 4)
    assert grid.shape[:2] == ((64 + 4) * scale, (4 * 66 + 2) * scale)
    at.sidebar.selectbox(key="model").set_value("photos/vae").run()
    assert in_colour(images(at, served)[0])


def test_latent_sliders_and_interpolation_in_colour(monkeypatch, colour_weights, served):  # noqa: F811
    at = open_colour(monkeypatch, colour_weights, "photos/vae", "latent")
    at.toggle(key="latent_in_browser").set_value(False).run()  # the server's sliders (the browser's: test_browser_colour)
    before = images(at, served)[0]
    at.slider(key="pc_0").set_value(2.5).run()
    assert not at.exception and not at.error
    after = images(at, served)[0]
    assert after.shape == before.shape and in_colour(after)
    half = after.shape[1] // 2  # start · after the sliders, served as JPEG
    assert np.abs(after[:, :half] - before[:, :half]).mean() < 1 < np.abs(after[:, half:] - before[:, half:]).mean(), \
        "the slider moves the edited image, not the start"
    at.radio(key="interp_method").set_value("lerp").run()
    at.slider(key="interp_steps").set_value(5).run()
    assert not at.exception and "lerp from A to B in 5 frames" in texts(at)
    assert in_colour(images(at, served)[1])


def test_reconstruct_an_uploaded_colour_photo(monkeypatch, colour_weights, served):  # noqa: F811
    at = open_colour(monkeypatch, colour_weights, "photos/vae", "reconstruct")
    assert "VAE (photos/vae): decode(encode(x))" in texts(at), "held-out images first"
    at.radio(key="rec_source").set_value("Upload an image").run()
    assert "Upload a photo" in texts(at)
    photo = io.BytesIO()
    Image.fromarray(photograph("coffee")).save(photo, format="JPEG")  # 600x400: cropped to the middle square
    at.file_uploader(key="rec_upload").upload("coffee.jpg", photo.getvalue(), "image/jpeg").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = texts(at)
    assert "converted to RGB, shorter side resized to 32 and centre-cropped" in text
    assert "**VAE (photos/vae): decode(encode(x)), the posterior mean** · mean SSIM" in text
    upload, reconstruction = images(at, served)[:2]
    assert in_colour(upload) and in_colour(reconstruction)
    # The DCGAN of the same folder draws 64x64 images: the upload is converted again at its size to be projected.
    at.selectbox(key="rec_gan").set_value("photos/dcgan").run()
    at.slider(key="rec_steps").set_value(50).run()
    at.button(key="rec_project").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "**DCGAN (photos/dcgan): the closest image the generator can make** · mean SSIM" in texts(at)


def test_conditional_page_names_a_colour_cgans_classes(monkeypatch, colour_weights):  # noqa: F811
    at = open_colour(monkeypatch, colour_weights, "photos/cgan", "conditional")
    # Its own first classes by name (the Fashion-MNIST example "0, 1, Bag" was an error here), and no classifier.
    assert at.text_input(key="cond_text").value == "astronaut, chelsea, coffee"
    assert "no classifier is trained for an image folder's classes" in texts(at)
    assert [c for im in at.get("image") for c in im.captions][:3] == ["astronaut", "chelsea", "coffee"]


def test_draw_is_for_the_grayscale_models(monkeypatch, colour_weights):  # noqa: F811
    at = open_colour(monkeypatch, colour_weights, "photos/dcgan", "draw")
    assert "Draw is for the grayscale models" in texts(at) and "DCGAN (photos/dcgan) draws colour images" in texts(at)
    assert not at.get("iframe") and not at.get("image"), "no canvas for a colour model"


def test_real_or_fake_plays_a_colour_round(monkeypatch, colour_weights, served, tmp_path):  # noqa: F811
    monkeypatch.setenv("GENMODELS_VOTES", str(tmp_path / "votes.db"))
    at = open_colour(monkeypatch, colour_weights, "photos/dcgan", "real_or_fake")
    assert "held-out images of the image folder skimage-photos" in texts(at)
    # Answer until an image turns out to be real (a round is half real, in random order): it was shown in colour.
    for index in range(20):
        shown = images(at, served)[0]
        at.button(key=f"rof_fake_{index}").click().run()
        assert not at.exception and f"Image {index + 2} of 20" in texts(at)
        if f"Image {index + 1} was real" in texts(at):
            break
    assert in_colour(shown)


def test_the_metrics_suite_measures_colour_models_and_the_page_shows_them(monkeypatch, colour_weights, tmp_path):  # noqa: F811
    """genmodels.evaluate on the 64 px colour DCGAN at a tiny n: Inception FID/KID and precision/recall against the
    folder's held-out crops, SSIM/MSE by projection, memorisation, and no classifier for a folder; on the 32 px VAE
    the reconstruction metrics (its Inception features would take as long again)."""
    from genmodels.evaluate import evaluate
    from genmodels.metrics import features

    monkeypatch.setattr(features, "CACHE_DIR", tmp_path / "stats")  # the real statistics of a test's folder
    weights = tmp_path / "weights"
    for family in ("vae", "dcgan"):
        shutil.copytree(colour_weights / "photos" / family, weights / "photos" / family)
    result = evaluate(weights / "photos" / "dcgan", n=8, n_projection=4, projection_steps=5)
    metrics = result["metrics"]
    assert {"fid", "kid", "precision", "recall", "ssim", "mse", "nn_distance"} == set(metrics)
    assert metrics["fid"]["n_real"] == 12 and metrics["fid"]["image_size"] == 64 and metrics["fid"]["value"] > 0
    assert 0 < metrics["mse"]["value"] < 1 and "projection" in metrics["ssim"]["protocol"]
    assert "classifier" in result["skipped"]
    vae = evaluate(weights / "photos" / "vae", n=8, n_projection=4, only=["ssim", "mse"])["metrics"]
    assert "decode(encoder mean)" in vae["ssim"]["protocol"] and 0 < vae["mse"]["value"] < 1
    at = open_colour(monkeypatch, weights, "photos/dcgan", "metrics")
    text = texts(at)
    assert "#### the image folder skimage-photos · FID of 8 samples against 12 test images" in text
    assert "#### the image folder skimage-photos · no FID measured" in text
    assert {key for table in at.dataframe for key in table.value["Checkpoint"]} == {"photos/dcgan", "photos/vae"}


def test_a_small_folder_holds_out_too_few_images_for_a_round_or_a_row(monkeypatch, tmp_path):
    """A visitor's upload of 40 photos holds out 2 (5%): Real or fake says a round needs 10, Reconstruct shows the 2."""
    from genmodels.registry import get_family
    from train.fetch_photos import fetch

    folder = fetch(tmp_path / "data", 40)
    family = get_family("dcgan")
    model = family.build_generator(family.make_config({"channels": 3, "image_size": 32, "width": 8}))
    ckpt.save(model, tmp_path / "weights" / "small" / "dcgan", "dcgan", data={"dataset": f"folder:{folder}"})
    monkeypatch.setenv("GENMODELS_VOTES", str(tmp_path / "votes.db"))
    at = open_colour(monkeypatch, tmp_path / "weights", "small/dcgan", "real_or_fake")
    assert "A round shows 10 real held-out images, and the image folder skimage-photos holds out only 2" in texts(at)
    at.switch_page("../reconstruct.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("image")[0].value) == 2, "the two held-out images"
    assert [s.key for s in at.slider] == ["rec_steps"], "both shown, so no slider to move through them"
