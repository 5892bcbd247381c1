"""The Train page through streamlit.testing's AppTest, with real `python -m train` subprocesses: start a run of
a few steps, see its progress, stop it, resume it, see a crash in words, and find it in the sidebar's model list and on
the Sample page."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages.app.browser import WAIT
from run_fixtures import end_runs, trainer_processes, weights_without_models
from train import runs as rm

APP = str(Path(__file__).resolve().parents[1] / "pages" / "app" / "main.py")


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setattr(rm, "CHECKPOINT_MINUTES", 0.05)  # AppTest runs the page in this process: 3 s checkpoints
    monkeypatch.setenv(rm.ROOT_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights_without_models(tmp_path / "weights")))
    yield tmp_path / "runs"
    end_runs(rm.RunManager.from_env())


def checked(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def until(at: AppTest, what, timeout: float = WAIT):
    """Rerun the app (as the page's fragment would every 2 s) until what(at) holds; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what(checked(at.run()))
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"waited {timeout} s; the page says {[p.proto.text for p in at.get('progress')]}")


def status(at: AppTest) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


def step(at: AppTest) -> int:
    words = status(at).split("step ")
    return int(words[1].split()[0].replace(",", "")) if len(words) > 1 else -1


def buttons(at: AppTest) -> dict[str, object]:
    return {b.label: b for b in at.button}


def test_start_watch_stop_resume_crash_and_explore_a_run(runs_root):
    at = AppTest.from_file(APP, default_timeout=120)
    checked(at.run())
    checked(at.switch_page("../train_live.py").run())
    assert [t.value for t in at.title] == ["Train"] and any(i.value.startswith("Nothing is training right now.") for i in at.info)
    assert at.selectbox(key="train_dataset").value == "mnist"
    at.radio(key="train_budget").set_value("steps")
    checked(at.run())
    at.number_input(key="train_amount_steps").set_value(2000)
    at.number_input(key="train_set_model.width").set_value(8)
    buttons(at)["Start training"].click()
    # Before its first step the trainer loads PyTorch and the data, which takes seconds: said, with the time so far.
    assert re.match(r"starting, \d+ s so far: the trainer loads PyTorch", status(checked(at.run()))), status(at)

    # Watching: progress, images/s and the fixed-seed grid arrive while it trains.
    until(at, lambda at: step(at) >= 1 and "running" in status(at))
    assert at.get("image") and any(m.label == "images / s" and m.value != "–" for m in at.metric)
    assert at.get("plotly_chart"), "the loss curves"
    run = rm.RunManager.from_env().runs()[0]
    assert run.request["settings"] == {"model.width": 8} and len(trainer_processes(runs_root)) == 1
    until(at, lambda at: run.checkpoint)

    buttons(at)["Stop"].click()
    until(at, lambda at: "stopped" in status(at))
    assert not trainer_processes(runs_root), "ended by its pid"
    stopped_at = step(at)
    assert "Explore it (your run 1)" in buttons(at) and "Resume" in buttons(at)
    models = at.sidebar.selectbox(key="model")
    assert "DCGAN (your run 1)" in models.options, "a stopped run joins the sidebar's model list"

    buttons(at)["Resume"].click()
    until(at, lambda at: "running" in status(at) and step(at) > stopped_at)
    os.kill(rm.RunManager.from_env().get(run.id).job["pid"], signal.SIGKILL)  # a crash, not the page's stop
    until(at, lambda at: "failed" in status(at))
    said = [e.value for e in at.error]
    assert any(e.startswith("The run stopped: the process was ended by signal SIGKILL. Its last good checkpoint (step")
               for e in said), said
    assert not trainer_processes(runs_root) and "Film (GIF)" in [b.proto.label for b in at.get("download_button")]

    buttons(at)["Explore it (your run 1)"].click()
    checked(at.run())
    assert at.title[0].value == "Sample · DCGAN (your run 1)" and at.get("image"), "the Sample page draws from the run"
    assert at.sidebar.selectbox(key="model").value == "your run 1" and at.sidebar.selectbox(key="dataset").value == "mnist"
