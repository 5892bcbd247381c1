"""Every page of the Streamlit app through streamlit.testing's AppTest, on real checkpoints trained for a few steps."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_fixtures import broken_weights, digit_png, weights_dir  # noqa: F401  (weights_dir is a fixture)

# The entry script app.py serves (st.App); AppTest runs it as `streamlit run app.py` would for every URL.
APP = str(Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py")
SCORE = re.compile(r"-?\d\.\d\d · \d\.\d{3}")  # "SSIM · MSE" under a reconstruction
PAGES = ["zoo", "sample", "latent", "conditional", "reconstruct", "metrics"]


def open_app(monkeypatch, weights: Path, page: str = "zoo") -> AppTest:
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "zoo":
        at.switch_page(f"../{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything a person reads on the page, as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in (*at.error, *at.warning, *at.info)]
    parts += [c for im in at.get("image") for c in im.captions]
    return "\n".join(parts)


def image_urls(at: AppTest) -> list[str]:
    return [u for im in at.get("image") for u in im.value]


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def select_model(at: AppTest, key: str) -> AppTest:
    at.sidebar.selectbox(key="model").set_value(key).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_error(monkeypatch, weights_dir, page):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, page)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"


def test_zoo_shows_a_card_per_checkpoint(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir)
    text = texts(at)
    for title in ("VAE", "DCGAN", "CGAN"):
        assert f"### {title}" in text
    assert "5,000-digit real subset" in text, "the data source says it is a subset"
    assert len(image_urls(at)) >= 3, "a preview grid per card"
    values = {m.label: m.value for m in at.metric}
    assert values["FID"] in ("123.4", "n/a") and "123.4" in [m.value for m in at.metric]
    assert "0.321" in [m.value for m in at.metric] and "0.0456" in [m.value for m in at.metric]
    assert "Running on **CPU**" in text
    assert "Parameters:" in text


def test_empty_weights_folder_says_how_to_train(monkeypatch, tmp_path):
    for page in PAGES:
        at = open_app(monkeypatch, tmp_path, page)
        assert "No models yet" in texts(at) or "No conditional model" in texts(at), page
    at = open_app(monkeypatch, tmp_path)
    assert "python -m train mnist dcgan" in texts(at)


def test_corrupt_and_mismatched_checkpoints_show_messages(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    weights = broken_weights(weights_dir, tmp_path / "weights")
    at = open_app(monkeypatch, weights)
    errors = "\n".join(e.value for e in at.error)
    assert "mnist-5k/truncated" in errors and "corrupt" in errors
    assert "mnist-5k/mismatched" in errors and "does not match" in errors
    assert "### DCGAN" in texts(at), "the good checkpoints still show"
    at.switch_page("../sample.py").run()
    select_model(at, "mnist-5k/truncated")
    assert any("corrupt" in e.value for e in at.error)
    assert "Traceback" not in texts(at)
    select_model(at, "mnist-5k/dcgan")
    assert not at.error and image_urls(at), "the app keeps working after an error"


def test_sample_page_controls_change_the_grid(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "sample")
    first = image_urls(at)
    assert len(first) == 1 and "32 samples" in texts(at)
    at.number_input(key="sample_seed").set_value(7).run()
    assert image_urls(at) != first and "seed 7" in texts(at)
    at.select_slider(key="sample_count").set_value(8).run()
    assert "8 samples" in texts(at)
    at.slider(key="sample_truncation").set_value(0.5).run()
    assert "truncation 0.50" in texts(at)
    before = image_urls(at)
    at.button[0].click().run()
    assert at.number_input(key="sample_seed").value != 7 and image_urls(at) != before
    assert at.get("download_button"), "the grid can be downloaded"
    select_model(at, "mnist-5k/vae")
    assert "Sample · VAE" in texts(at)


def test_latent_sliders_move_the_image(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "latent")
    assert "PC1" in at.slider(key="pc_0").label and "% of image variance" in at.slider(key="pc_0").label
    before = image_urls(at)
    at.slider(key="pc_0").set_value(2.0).run()
    after = image_urls(at)
    assert after[0] != before[0], "moving a slider changes the edited image"
    at.radio(key="latent_mode").set_value("Raw dimensions of z").run()
    at.slider(key="dim_1").set_value(-1.5).run()
    assert image_urls(at)[0] != after[0]
    at.button[0].click().run()  # reset
    assert at.slider(key="dim_1").value == 0.0
    assert "z[0] also picks" not in texts(at)
    select_model(at, "mnist-5k/vae")  # its recipe samples a fitted mixture prior, which z[0] indexes
    assert "also picks which of its 10 components" in texts(at)
    at.radio(key="interp_method").set_value("lerp").run()
    at.slider(key="interp_steps").set_value(5).run()
    assert "lerp from A to B in 5 frames" in texts(at)
    at.radio(key="interp_source").set_value("Two samples from a grid").run()
    at.selectbox(key="interp_pick_b").set_value(3).run()
    assert "samples 0-7" in texts(at) and not at.exception
    assert any(b.proto.label == "Download GIF" for b in at.get("download_button"))


def test_conditional_page_writes_digits_and_takes_labels(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "conditional")
    captions = [c for im in at.get("image") for c in im.captions]
    assert [c[:1] for c in captions[:4]] == ["2", "0", "2", "6"], captions
    assert all(re.fullmatch(r"\d · sees \d [✓✗]", c) for c in captions[:4]), "the classifier's verdict per sample"
    at.text_input(key="cond_text").set_value("7 1").run()
    assert [c[:1] for im in at.get("image") for c in im.captions][:2] == ["7", "1"]
    at.text_input(key="cond_text").set_value("2x").run()
    assert any("not a class of this model: 'x'" in e.value for e in at.error)
    at.selectbox(key="cond_cell_0").set_value(9).run()
    cell_captions = [c for im in at.get("image") for c in im.captions if c]
    assert any(c.startswith("9 · sees") for c in cell_captions)
    at.slider(key="cond_grid_n").set_value(3).run()
    assert "rows: 0, 1, 2" in texts(at)
    assert at.metric[0].label == "Classifier agrees with the asked class" and at.metric[0].value.endswith("%")


def test_conditional_page_without_conditional_model(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    weights = tmp_path / "w"
    (weights / "mnist-5k").mkdir(parents=True)
    import shutil

    shutil.copytree(weights_dir / "mnist-5k" / "dcgan", weights / "mnist-5k" / "dcgan")
    at = open_app(monkeypatch, weights, "conditional")
    assert "No conditional model (CGAN or ACGAN)" in texts(at)


def test_reconstruct_heldout_upload_and_map(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "reconstruct")
    text = texts(at)
    assert "VAE (mnist-5k/vae)" in text and "mean SSIM" in text
    assert sum(bool(SCORE.fullmatch(c)) for im in at.get("image") for c in im.captions) == 8
    at.slider(key="rec_start").set_value(10).run()
    assert not at.exception
    at.number_input(key="rec_map_index").set_value(5).run()
    assert "#5 (" in texts(at)
    at.radio(key="rec_source").set_value("Upload an image").run()
    at.file_uploader(key="rec_upload").upload("digit.png", digit_png(), "image/png").run()
    text = texts(at)
    assert "inverted" in text and "centred by centre of mass" in text
    assert sum(bool(SCORE.fullmatch(c)) for im in at.get("image") for c in im.captions) == 1
    at.selectbox(key="rec_gan").set_value("mnist-5k/cgan").run()
    at.selectbox(key="rec_upload_class").set_value(0).run()  # a conditional GAN needs the upload's class
    at.slider(key="rec_steps").set_value(50).run()
    at.button(key="rec_project").click().run()
    assert "CGAN (mnist-5k/cgan): the closest image the generator can make" in texts(at)
    assert sum(bool(SCORE.fullmatch(c)) for im in at.get("image") for c in im.captions) == 2, "VAE and GAN scored"
    at.file_uploader(key="rec_upload").set_value(("notes.txt", b"not an image at all", "text/plain")).run()
    assert any("Cannot use notes.txt" in e.value and "not an image" in e.value for e in at.error)
    assert not at.exception


def test_metrics_page_table_history_and_comparison(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "metrics")
    table = at.dataframe[0].value
    assert set(table["model"]) == {"mnist-5k/vae", "mnist-5k/dcgan", "mnist-5k/cgan"}
    assert table.set_index("model").loc["mnist-5k/dcgan", "fid"] == pytest.approx(123.4)
    assert any(t.endswith("training history") for t in chart_titles(at))
    assert "steps," in texts(at) and "images/s" in texts(at)
    at.selectbox(key="history_model").set_value("mnist-5k/vae").run()
    assert "VAE (mnist-5k/vae): training history" in chart_titles(at)
    at.multiselect(key="compare_models").set_value(["mnist-5k/dcgan", "mnist-5k/cgan"]).run()
    assert "fid: **123.4**" in texts(at)


def test_sidebar_accepts_a_folder_and_rejects_a_bad_repo_id(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    at = open_app(monkeypatch, tmp_path)
    assert "No models yet" in texts(at)
    at.sidebar.text_input(key="new_location").set_value("nobody/no-such-model").run()
    assert any("Could not add nobody/no-such-model" in e.value for e in at.sidebar.error)
    at.sidebar.text_input(key="new_location").set_value(str(weights_dir / "mnist-5k" / "dcgan")).run()
    assert at.sidebar.selectbox(key="model").options, "the typed folder became a model"
    assert "### DCGAN" in texts(at)


@pytest.mark.parametrize("metric,label", [("classifier_fid", "classifier-FID"), ("fid", "FID")])
def test_history_marks_the_best_fid_epoch(metric, label, monkeypatch, weights_dir, tmp_path):  # noqa: F811
    import shutil

    from genmodels import checkpoint as ckpt

    folder = tmp_path / "w" / "mnist-5k" / "dcgan"
    shutil.copytree(weights_dir / "mnist-5k" / "dcgan", folder)
    logged = ckpt.read_json(folder / ckpt.HISTORY)["epochs"][-1]
    # Three epochs as the trainer logs them when it measures FID per epoch (classifier or Inception features).
    ckpt.write_json(folder / ckpt.HISTORY, {
        "epochs": [{**logged, "epoch": i + 1, metric: fid} for i, fid in enumerate([30.0, 12.5, 18.0])],
        "best": {"epoch": 2, "metric": metric, "value": 12.5}})
    at = open_app(monkeypatch, tmp_path / "w", "metrics")
    assert f"best {label} 12.50 at epoch 2" in texts(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert label in [trace.get("name") for trace in spec["data"]]
    assert "best epoch 2" in [trace.get("name") for trace in spec["data"]]
