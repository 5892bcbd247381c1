"""Your images on the Train page, through streamlit.testing's AppTest and a real `python -m train`: upload a zip of
photo crops in two class folders, read the report and see the preview, train a colour DCGAN at 32 px for a few steps
with an Inception FID after each, then use the run on the Sample, Latent explorer and Reconstruct pages."""
from __future__ import annotations

import dataclasses
import os
import re
import time

import pytest

from streamlit.testing.v1 import AppTest

from genmodels import checkpoint as ckpt

from test_image_sets import crops, zip_of
from test_train_page import APP, buttons, checked, runs_root, status, until  # noqa: F401  (runs_root: a fixture)
from train import runs as rm


def test_upload_preview_train_at_32_px_and_explore(runs_root, monkeypatch):
    monkeypatch.setattr(rm, "FID_SAMPLES", 4)        # AppTest runs the page in this process: a seconds-long FID
    monkeypatch.setattr(rm, "FID_EVERY_IMAGES", 1)   # after every epoch (one step: 38 images, one batch)
    photos = {kind: crops(kind, 20, seed=i) for i, kind in enumerate(("cats", "things"))}
    upload = zip_of([(f"mine/{kind}/{i}.jpg", d) for kind, ds in photos.items() for i, d in enumerate(ds)]
                    + [("mine/cats/notes.png", b"not a picture")])

    at = AppTest.from_file(APP, default_timeout=120)
    checked(at.run())
    checked(at.switch_page("../train_live.py").run())
    at.selectbox(key="train_dataset").set_value("your images")
    checked(at.run())
    assert any(i.value.startswith("Upload a zip of your photos") for i in at.info) and "Start training" not in buttons(at)
    at.file_uploader(key="train_upload").upload("mine.zip", upload, "application/zip")
    checked(at.run())
    assert [s.value for s in at.success] == ["40 images used in 2 classes (cats: 20, things: 20), each 64x64 RGB."]
    assert not any(i.value.startswith("Too few images for an FID") for i in at.info)
    assert [w.value for w in at.warning] == ["1 skipped as not an image in a format the app reads (PNG, JPEG, GIF, "
                                             "BMP, TIFF, WebP or PPM/PGM): mine/cats/notes.png."]
    assert [c[:19] for im in at.get("image") for c in im.captions] == ["32 of the 40 images"], "the preview grid"
    families = at.selectbox(key="train_family").options
    assert "CGAN" in " ".join(families) and "ACGAN" in " ".join(families), "labels: the conditional families apply"
    assert at.radio(key="train_image_size").value == 32

    at.radio(key="train_budget").set_value("steps")
    checked(at.run())
    at.number_input(key="train_amount_steps").set_value(2)
    at.number_input(key="train_set_model.width").set_value(8)
    buttons(at)["Start training"].click()
    checked(at.run())
    until(at, lambda at: "finished" in status(at))
    run = rm.RunManager.from_env().runs()[0]
    assert run.title().startswith("DCGAN on your images (") and run.title().endswith(", 32 px, 2 steps")
    assert [e["fid"] > 0 for e in run.history()] == [True, True], "an Inception FID after each epoch"
    assert any(m.label == "FID ↓" and m.value != "–" for m in at.metric)
    assert len(list((runs_root / rm.SETS).iterdir())) == 1

    buttons(at)["Explore it (your run 1)"].click()
    checked(at.run())
    assert at.title[0].value == "Sample · DCGAN (your run 1)" and at.get("image"), "the Sample page draws from the run"
    datasets = at.sidebar.selectbox(key="dataset")
    assert datasets.value == run.image_set.dataset
    assert datasets.options == [f"the image folder {run.image_set.digest}"], "named, never the server's path"
    for page in ("../latent.py", "../reconstruct.py"):
        checked(at.switch_page(page).run())
        assert not at.error, (page, [e.value for e in at.error])



def test_image_sets_count_towards_the_runs_folders_cap(tmp_path):
    """Over the cap, the image sets no run uses go first (least recently used first, none used in the last SET_GRACE
    seconds), then idle runs; a set that a remaining run trained on stays."""
    manager = rm.RunManager(tmp_path / "runs")
    files = [(f"{i}.png", d) for i, d in enumerate(crops("things", 4, fmt="PNG"))]
    old, used, fresh = (manager.add_upload(files[i:i + 2]) for i in range(3))
    run_id = "20260101-000000-000000"
    (manager.root / run_id).mkdir()
    ckpt.write_json(manager.root / run_id / rm.RECORD, {"id": run_id, "owner": "a", "created": 1.0, "job": None,
                                                        "request": {"dataset": f"upload:{used.digest}"},
                                                        "outcome": "finished"})
    long_ago = time.time() - 2 * rm.SET_GRACE
    for image_set in (old, used):
        os.utime(image_set.folder, (long_ago, long_ago))
    manager.cap_bytes = rm.folder_size(manager.root) - 1
    assert manager.make_room() == [old.digest], "the set no run uses, and not the one used a moment ago"
    manager.cap_bytes = 1
    assert manager.make_room() == [run_id], "then idle runs; the set a run trained on stays while the run does"
    assert manager.make_room() == [used.digest] and [p.name for p in (manager.root / rm.SETS).iterdir()] == [fresh.digest]


def test_an_uploads_run_is_checked_on_the_server_and_trains_on_the_servers_folder(tmp_path):
    manager = rm.RunManager(tmp_path / "runs")
    unlabelled = manager.add_upload([(f"{i}.png", d) for i, d in enumerate(crops("things", 40, fmt="PNG"))])
    name = f"upload:{unlabelled.digest}"
    for request, words in (
            (rm.Request("upload:../../etc", "dcgan", image_size=32), "dataset must be one of"),
            (rm.Request(f"folder:{unlabelled.folder}", "dcgan", image_size=32), "dataset must be one of"),
            (rm.Request(name, "dcgan", image_size=48), "image size of an upload must be one of 32, 64 px"),
            (rm.Request(name, "gan", image_size=32), "has no recipe for uploaded images"),
            (rm.Request("mnist", "dcgan", image_size=32), "a size is chosen for uploads only"),
            (rm.Request(name, "acgan", image_size=32), "needs images in two class folders or more"),
            (rm.Request(f"upload:{'0' * 16}", "dcgan", image_size=32), "that upload is no longer on the server")):
        with pytest.raises(rm.RunRequestError, match=re.escape(words)):
            manager.submit("a", request)
    assert manager.runs() == []

    request, _ = rm.clamp(rm.Request(name, "dcgan", "steps", 1, image_size=64))
    args = rm.train_args(rm.Run(manager.root / "20260101-000000-000000", {"request": dataclasses.asdict(request)}))
    assert args[2:4] == [f"folder:{manager.root / rm.SETS / unlabelled.digest}", "dcgan"]
    assert {"model.image_size=64", "train.fid_every=132", 'train.fid_features="inception"', "train.fid_samples=64"} \
        <= set(args), "an Inception FID each 5,000 training images (38 an epoch) against the 2 held out"
    assert set(rm.upload_families(2)) - set(rm.upload_families(0)) == {"cgan", "acgan"}
    assert rm.upload_fid(29) == [] and rm.upload_fid(30), "30 images hold out the 2 an FID needs; 29 hold out 1"
