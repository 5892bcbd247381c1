"""The latent explorer page through AppTest, which runs no browser (so the component answers only where the test
says it does): by default the page hands the in-browser explorer its data, and the server's sliders and image stand in
until the browser says it holds the model, then the browser's are the only ones; a server without ONNX Runtime Web, or
an export that fails, falls back to the server's sliders with a note; the interpolation runs between the explorer's
start and edited codes."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

import pages.components.explorer as explorer
from explorer_fixtures import every_family  # noqa: F401  (fixture)
from train.fixtures import DATASET
from genmodels.export import ExportError

APP = str(Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py")


def component_args(at: AppTest) -> dict:
    (component,) = at.get("component_instance")
    return json.loads(component.proto.json_args)


def test_in_browser_by_default_else_the_servers_sliders_with_a_note(monkeypatch, every_family, tmp_path):  # noqa: F811
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(every_family))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("../latent.py").run()
    assert not at.exception and not at.error
    args = component_args(at)
    assert args["model"] is None, "nothing is exported before a browser says it can run the result"
    assert args["names"][0].startswith("PC1 · ") and len(args["directions"]) == len(args["values"]) == 6
    assert len(args["z"]) == len(args["directions"][0]) == 100 and args["shape"] == [1, 28, 28]
    # A first visit is usable at once: the server's sliders and image, while the browser loads the model unseen.
    assert not args["show"] and [s.key for s in at.slider] == [f"pc_{i}" for i in range(6)] + ["interp_steps"]
    assert "start · after the sliders" in [c for im in at.get("image") for c in im.captions]
    assert "Download this image (PNG)" in [b.proto.label for b in at.get("download_button")]
    at.slider(key="pc_0").set_value(1.5).run()
    with monkeypatch.context() as patch:  # exports made, as a browser that said its runtime is ready gets them
        patch.setattr(explorer, "model_address", lambda location, mtime, start: f"models/{Path(location).name}.onnx")
        at.run()
        assert component_args(at)["model"] == "models/dcgan.onnx" and at.slider(key="pc_0"), "still the server's"
        at.session_state["latent_browser_loaded"] = "models/dcgan.onnx"  # as the component says once it holds it
        at.run()
        args = component_args(at)
        assert args["show"] and [s.key for s in at.slider] == ["interp_steps"], "the explorer's sliders are the browser's"
        assert args["values"][0] == 1.5, "the browser starts where the server's sliders stood"

        at.sidebar.selectbox(key="model").set_value(f"{DATASET}/cgan").run()
        args = component_args(at)
        assert args["inputs"] == ["z", "labels"] and args["classes"] == [str(c) for c in range(10)]
        assert not args["show"] and at.selectbox(key="latent_label"), "the server's again, until the browser holds it"
        at.session_state["latent_browser_loaded"] = "models/cgan.onnx"
        at.run()
        assert "latent_label" not in [s.key for s in at.selectbox], "the class picker is inside the component"

    at.radio(key="interp_source").set_value("The explorer's start and edited codes").run()
    assert any("from A to B" in c for im in at.get("image") for c in im.captions) and not at.exception

    with monkeypatch.context() as patch:
        patch.setattr(explorer, "VENDOR", tmp_path)  # a server whose setup never fetched ONNX Runtime Web
        at.run()
        note = " ".join(i.value for i in at.info)
        assert "The server draws the images" in note and "no copy of ONNX Runtime Web" in note and "make setup" in note
        assert not at.get("component_instance") and at.slider(key="pc_0") and at.selectbox(key="latent_label")

    def fails(location, cache_dir):
        raise ExportError("an operator ONNX has no counterpart for")

    monkeypatch.setattr(explorer, "onnx_file", fails)
    monkeypatch.setattr(explorer, "_EXPORTS", {})  # none made before, none left behind for other tests
    at.toggle(key="latent_in_browser").set_value(False).run()
    at.toggle(key="latent_in_browser").set_value(True).run()
    assert not at.info, "turning the toggle off and on tries the browser again"
    at.session_state["latent_browser_ready"] = True  # as the component says once ONNX Runtime Web has loaded
    at.run()
    note = " ".join(i.value for i in at.info)
    assert "could not be exported for the browser: an operator ONNX has no counterpart for" in note
    assert not at.get("component_instance") and at.slider(key="pc_0") and not at.exception
