"""Every page of the Streamlit app through streamlit.testing's AppTest, on real checkpoints trained for a few steps."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from app_fixtures import broken_weights, sweeps_dir, weights_dir  # noqa: F401  (fixtures)
from genmodels import checkpoint as ckpt
from train.fixtures import digit_png
from train.sweep import SHIPPED_RESULTS

# The entry script app.py serves (st.App); AppTest runs it as `streamlit run app.py` would for every URL.
APP = str(Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py")
SCORE = re.compile(r"-?\d\.\d\d · \d\.\d{3}")  # "SSIM · MSE" under a reconstruction
MODEL_PAGES = ["zoo", "sample", "latent", "conditional", "reconstruct", "draw", "metrics"]
PAGES = MODEL_PAGES + ["sweeps"]


def open_app(monkeypatch, weights: Path, page: str = "zoo", sweeps: Path | None = None) -> AppTest:
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    # No sweeps unless a test brings some: the default runs/sweeps/ holds whatever this checkout has run.
    monkeypatch.setenv("GENMODELS_SWEEPS", str(sweeps or weights / "no-sweeps-here"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "zoo":
        at.switch_page(f"../{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything a person reads on the page, as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [c for im in at.get("image") for c in im.captions]
    return "\n".join(parts)


def image_urls(at: AppTest) -> list[str]:
    return [u for im in at.get("image") for u in im.value]


def table(at: AppTest, index: int = 0):
    """A st.dataframe as a person reads it: the values as displayed, under the headers as displayed."""
    proto = at.dataframe[index].proto
    shown = pa.ipc.open_stream(proto.arrow_data.styler.display_values).read_all().to_pandas()
    config = json.loads(proto.columns or "{}")
    return shown.rename(columns={c: config[c]["label"] for c in shown.columns if "label" in config.get(c, {})}), config


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
    # The data in words (never the folder it was read from on the machine that trained it), and that it is a subset.
    assert "**Data:** MNIST (`mnist-5k`) · 4,500 training images · **trained on a subset of the dataset**" in text
    assert len(image_urls(at)) >= 3, "a preview grid per card"
    values = [(m.label, m.value) for m in at.metric]
    assert {("FID ↓", "123.4"), ("SSIM ↑", "0.321"), ("MSE ↓", "0.0456")} <= set(values), values
    assert ("FID ↓", "–") in values, "a card without metrics.json shows a dash"
    # The cards show the registry's card metrics: precision and recall too, with no edit to the page.
    assert {"Precision ↑", "Recall ↑"} <= {label for label, _ in values}
    assert "ask for a 7 and you get a 7" in text, "each card carries its family's one-line summary"
    assert "Running on **CPU**" in text
    assert "Parameters:" in text


def test_empty_weights_folder_says_how_to_train(monkeypatch, tmp_path):
    for page in MODEL_PAGES:
        at = open_app(monkeypatch, tmp_path, page)
        assert "No models yet" in texts(at) or "No conditional model" in texts(at), page
    at = open_app(monkeypatch, tmp_path)
    assert "python -m train mnist dcgan" in texts(at)


def test_corrupt_and_mismatched_checkpoints_show_messages(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    weights = broken_weights(weights_dir, tmp_path / "weights")
    at = open_app(monkeypatch, weights)
    errors = "\n".join(e.value for e in at.error)
    assert "mnist-5k/truncated" in errors and "corrupt" in errors
    assert "mnist-5k/mismatched" in errors and "of weights" in errors and "config.json describes" in errors
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
    at.slider(key="sample_truncation_mnist-5k/dcgan").set_value(0.5).run()
    assert "truncation 0.50" in texts(at)
    before = image_urls(at)
    at.button[0].click().run()
    assert at.number_input(key="sample_seed").value != 7 and image_urls(at) != before
    assert at.get("download_button"), "the grid can be downloaded"
    select_model(at, "mnist-5k/vae")
    assert "Sample · VAE" in texts(at)
    # A conditional model's grid is whole rows, a class per column: 30 samples, then 60, never 32.
    select_model(at, "mnist-5k/cgan")
    counts = at.select_slider(key="sample_count_10")
    assert counts.options == ["1", "10", "20", "30", "40", "60"] and "30 samples" in texts(at)
    counts.set_value(60).run()
    assert "60 samples" in texts(at) and not at.exception


def test_a_model_shipped_with_a_truncation_is_sampled_there_and_says_so(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    weights = shutil.copytree(weights_dir, tmp_path / "weights")
    config = json.loads((weights / "mnist-5k" / "dcgan" / ckpt.CONFIG).read_text())
    (weights / "mnist-5k" / "dcgan" / ckpt.CONFIG).write_text(json.dumps({**config, "sampling": {"truncation": 0.85}}))
    at = open_app(monkeypatch, weights)
    assert "**Sampling:** at truncation 0.85" in texts(at), "the card says how its samples are drawn"
    at.switch_page("../sample.py").run()
    select_model(at, "mnist-5k/dcgan")
    slider = at.slider(key="sample_truncation_mnist-5k/dcgan")
    assert slider.value == 0.85 and "ships at 0.85" in slider.help and "truncation 0.85" in texts(at)
    shown = image_urls(at)
    slider.set_value(1.0).run()
    assert "truncation 1.00" in texts(at) and image_urls(at) != shown
    # a model without one starts at 1, whatever the last model's slider was left at
    select_model(at, "mnist-5k/vae")
    assert at.slider(key="sample_truncation_mnist-5k/vae").value == 1.0 and "truncation 1.00" in texts(at)


def test_latent_sliders_move_the_image(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "latent")
    # The server's sliders: AppTest runs no browser (tests/test_explorer_page.py has the in-browser explorer's page).
    at.toggle(key="latent_in_browser").set_value(False).run()
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


def test_metrics_page_groups_comparable_numbers_and_writes_them_for_people(monkeypatch, weights_dir,  # noqa: F811
                                                                           tmp_path):
    weights = tmp_path / "w"
    shutil.copytree(weights_dir, weights)
    # The VAE and the CGAN measured under one FID protocol, the DCGAN (the fixture's metrics.json) under another.
    fid = {"n": 1000, "n_real": 500, "ref_split": "test", "protocol": "FID of 1000 samples against all 500 test images"}
    for family, extra in (("vae", {}), ("cgan", {"conditional_accuracy": {"value": 0.912, "protocol": "classifier"},
                                                  "kid": {"value": 0.0123, "protocol": "KID, 100 subsets"}})):
        ckpt.write_json(weights / "mnist-5k" / family / ckpt.METRICS, {"metrics": {
            "fid": {"value": 30.25 if family == "vae" else 20.5, **fid}, **extra}})
    at = open_app(monkeypatch, weights, "metrics")
    headings = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert headings == ["#### MNIST (`mnist-5k`) · FID of 1,000 samples against 500 test images",
                        "#### MNIST (`mnist-5k`) · test protocol: 100 samples"], headings
    # Each group in two tables that fit a laptop's window: the zoo cards' metrics, then the others.
    shown, config = table(at, 0)
    more, _ = table(at, 1)
    assert list(shown.columns) == ["Model", "Checkpoint", "FID ↓"]
    assert list(more.columns) == ["Model", "Checkpoint", "KID ×10³ ↓", "Conditional accuracy ↑"]
    rows = shown.merge(more, on=["Model", "Checkpoint"]).set_index("Checkpoint")[
        ["FID ↓", "KID ×10³ ↓", "Conditional accuracy ↑"]]
    assert rows.loc["mnist-5k/cgan"].tolist() == ["20.5", "12.3", "91.2%"]
    assert rows.loc["mnist-5k/vae"].tolist() == ["30.2", "–", "–"], "a dash where a metric does not apply"
    assert at.dataframe[1].proto.placeholder == "–", "the browser's grid draws the dash too, not its own 'None'"
    assert "FID of 1000 samples against all 500 test images" in config["fid"]["help"], "the protocol in the tooltip"
    assert "Fréchet Inception Distance" in config["fid"]["help"]
    assert at.dataframe[0].value.set_index("Checkpoint").loc["mnist-5k/vae", "fid"] == pytest.approx(30.25), \
        "numbers stay numbers underneath, so the column sorts by value"
    dcgan, _ = table(at, 2)
    assert dcgan.set_index("Checkpoint").loc["mnist-5k/dcgan", ["FID ↓", "SSIM ↑", "MSE ↓"]].tolist() == [
        "123.4", "0.321", "0.0456"]
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][:2]
    assert [b["layout"]["title"]["text"] for b in bars] == ["FID per model (lower is better)"] * 2
    assert bars[0]["data"][0]["text"] == ["20.5", "30.2"], "one bar per model of the group, best first"
    assert "Not measured yet" not in texts(at), "every fixture model has a metrics.json now"
    assert "None" not in texts(at) and "nan" not in texts(at).lower()

    assert any(t.endswith("training history") for t in chart_titles(at))
    assert "steps," in texts(at) and "images/s" in texts(at)
    at.selectbox(key="history_model").set_value("mnist-5k/vae").run()
    assert "VAE (mnist-5k/vae): training history" in chart_titles(at)
    at.multiselect(key="compare_models").set_value(["mnist-5k/dcgan", "mnist-5k/cgan"]).run()
    assert "FID ↓: **123.4**" in texts(at) and "Conditional accuracy ↑: **91.2%**" in texts(at)


def test_metrics_page_lists_unmeasured_models(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "metrics")
    assert "Not measured yet: mnist-5k/cgan, mnist-5k/vae." in texts(at)
    assert len(at.dataframe) == 1, "one group table (FID, SSIM, MSE: all headline metrics); protocols in words"
    assert "- **FID** (mnist-5k/dcgan): test protocol: 100 samples" in texts(at)


def test_sweeps_page_shows_the_trials_and_the_chart(monkeypatch, weights_dir, sweeps_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "sweeps", sweeps=sweeps_dir)
    text = texts(at)
    assert "**dcgan** on **mnist-5k**, grid over train.lr: 2 trials, 1 finished, 1 failed" in text
    assert "Best by FID: **trial-000** (train.lr = 0.0002), FID 250.5." in text
    shown, config = table(at)
    rows = shown.set_index("trial")
    assert rows.loc["trial-000", ["status", "train.lr", "FID ↓"]].tolist() == ["finished", "0.0002", "250.5"]
    assert rows.loc["trial-001", "status"] == "failed" and rows.loc["trial-001", "FID ↓"] == "–"
    assert "loss" in rows.loc["trial-001", "error"].lower() or "nan" in rows.loc["trial-001", "error"].lower()
    assert "Fréchet Inception Distance" in config["fid"]["help"]
    assert chart_titles(at) == ["sweep lr: dcgan on mnist-5k, 1 finished, 1 failed"]


def test_sweeps_page_without_sweeps_and_with_a_broken_one(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "sweeps", sweeps=tmp_path / "sweeps")
    assert "No sweeps in" in texts(at) and "python -m train.sweep" in texts(at)
    # the project's own sweeps (train/sweeps/results/), the evidence behind its configs, are there all the same
    shipped = [p.parent.name for p in SHIPPED_RESULTS.glob("*/results.json")]
    assert shipped and [o.split(" ")[0] for o in at.selectbox(key="sweep").options] == sorted(shipped)
    first = json.loads((SHIPPED_RESULTS / sorted(shipped)[0] / "results.json").read_text())  # the one shown first
    assert not at.error and f"**{first['model']}** on **{first['dataset']}**" in texts(at) and at.dataframe
    # Its scores follow the settings, before the losses and bookkeeping: they had been past the window's edge.
    columns = list(table(at)[0].columns)
    scores = [c for c in columns if "↓" in c or "↑" in c]
    settings = 2 + len(first["keys"])
    assert scores and columns[settings:settings + len(scores)] == scores, columns
    assert columns[:settings] == ["trial", "status", *first["keys"]], columns
    # the default folder, inside the repository, is named as a path from its root, never by where this machine keeps it
    at = open_app(monkeypatch, weights_dir, "sweeps", sweeps=Path.cwd() / "runs" / "no-sweeps-yet")
    assert "No sweeps in `runs/no-sweeps-yet` yet" in texts(at) and str(Path.cwd()) not in texts(at)
    (tmp_path / "sweeps" / "cut").mkdir(parents=True)
    (tmp_path / "sweeps" / "cut" / "results.json").write_text('{"trials": [')
    at = open_app(monkeypatch, weights_dir, "sweeps", sweeps=tmp_path / "sweeps")
    assert any("results.json is not valid JSON" in e.value for e in at.error), [e.value for e in at.error]
    assert at.selectbox(key="sweep").options[0] == "cut", "another sweep can still be picked"


def test_draw_page_waits_for_a_drawing(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir, "draw")
    assert "Draw a digit in the box: the models answer when you lift the pen." in texts(at)
    assert not image_urls(at), "nothing to show before anything is drawn"
    at.button(key="draw_clear").click().run()
    assert "Draw a digit in the box: the models answer" in texts(at) and not at.exception


def test_sidebar_is_drawn_once_and_keeps_its_choice_across_pages(monkeypatch, weights_dir):  # noqa: F811
    at = open_app(monkeypatch, weights_dir)
    assert at.sidebar.selectbox(key="model").value == "mnist-5k/dcgan", "a first visit opens on the DCGAN"
    select_model(at, "mnist-5k/vae")
    for page in PAGES[1:]:
        at.switch_page(f"../{page}.py").run()
        assert len(at.sidebar.selectbox) == 2 and at.sidebar.selectbox(key="model").value == "mnist-5k/vae", page
    at.switch_page("../sample.py").run()
    assert "Sample · VAE" in texts(at)


def test_an_empty_weights_folder_inside_the_repository_is_named_from_its_root(monkeypatch):
    at = open_app(monkeypatch, Path.cwd() / "runs" / "no-weights-here")
    assert "No usable checkpoint was found in `runs/no-weights-here`" in texts(at)
    assert "mkdir -p runs/no-weights-here/mnist" in texts(at) and str(Path.cwd()) not in texts(at)


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
    folder = tmp_path / "w" / "mnist-5k" / "dcgan"
    shutil.copytree(weights_dir / "mnist-5k" / "dcgan", folder)
    logged = ckpt.read_json(folder / ckpt.HISTORY)["epochs"][-1]
    # Three epochs as the trainer logs them when it measures FID per epoch (classifier or Inception features).
    ckpt.write_json(folder / ckpt.HISTORY, {
        "epochs": [{**logged, "epoch": i + 1, metric: fid} for i, fid in enumerate([30.0, 12.5, 18.0])],
        "best": {"epoch": 2, "metric": metric, "value": 12.5}})
    at = open_app(monkeypatch, tmp_path / "w", "metrics")
    assert f"best {label} 12.50 at epoch 2" in texts(at)
    spec = next(s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
                if s["layout"]["title"]["text"].endswith("training history"))
    assert label in [trace.get("name") for trace in spec["data"]]
    assert "best epoch 2" in [trace.get("name") for trace in spec["data"]]


def test_the_sidebar_names_the_weights_folder_as_the_app_sees_it(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    """Weights inside the folder the app runs in are named relative to it: a screenshot or a shared Space shows
    `weights`, not the path of the machine it ran on."""
    weights = shutil.copytree(weights_dir, tmp_path / "weights")
    monkeypatch.chdir(tmp_path)
    captions = [c.value for c in open_app(monkeypatch, weights).sidebar.caption]
    assert any(c.startswith("Checkpoints from `weights`") for c in captions), captions
    assert not any(str(tmp_path) in c for c in captions), captions


def test_first_visit_opens_on_the_best_model_by_fid_10k(monkeypatch, weights_dir, tmp_path):  # noqa: F811
    """The sidebar starts on the dataset's lowest FID at 10,000 samples against the test split; an FID at another n
    (the fixture DCGAN's 100-sample one) or against another split is not comparable and does not count."""
    weights = shutil.copytree(weights_dir, tmp_path / "weights")
    assert open_app(monkeypatch, weights).sidebar.selectbox(key="model").value == "mnist-5k/dcgan"  # none measured so

    def measured(family: str, fid: float, n: int = 10_000, split: str = "test") -> None:
        ckpt.write_json(weights / "mnist-5k" / family / ckpt.METRICS, {"metrics": {"fid": {
            "value": fid, "protocol": "test protocol", "n": n, "ref_split": split}}})

    measured("vae", 30.0)
    measured("cgan", 12.0)
    measured("dcgan", 5.0, n=1000)
    assert open_app(monkeypatch, weights).sidebar.selectbox(key="model").value == "mnist-5k/cgan"
    measured("dcgan", 4.0, split="train")
    assert open_app(monkeypatch, weights).sidebar.selectbox(key="model").value == "mnist-5k/cgan"
