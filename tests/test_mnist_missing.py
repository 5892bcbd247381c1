"""Without the official MNIST files, the CLI and the app say how to get them; nothing falls back to the subset."""
from __future__ import annotations

import shutil
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from genmodels import data as gdata
from train.__main__ import main as train_main

ROOT = Path(__file__).resolve().parents[1]


def test_training_on_missing_mnist_says_how_to_fetch_it(tmp_path, capsys):
    # The CLI's main() in this process: an exception it let through would fail the test as a traceback would show
    # (tests/test_train.py and tests/test_gpu_check.py run the real `python -m train`, to a checkpoint and to an error)
    assert train_main(["mnist", "dcgan", "--max-steps", "1", "--data-root", str(tmp_path / "empty"),
                       "--out", str(tmp_path / "run")]) == 1
    stderr = capsys.readouterr().err
    assert "make setup" in stderr and "python -m train.fetch_mnist" in stderr
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_reconstruct_page_on_missing_mnist_says_how_to_fetch_it(monkeypatch, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "weights" / "mnist" / "cgan", weights / "mnist" / "cgan")
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(weights))
    monkeypatch.setenv("GENMODELS_SWEEPS", str(tmp_path / "no-sweeps"))
    monkeypatch.setattr(gdata, "DATA_ROOT", tmp_path / "empty")
    st.cache_resource.clear()  # held-out sets loaded by earlier tests in this process would hide the missing files
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / "app" / "main.py"), default_timeout=120)  # what app.py serves
    at.run()
    at.switch_page("../reconstruct.py").run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "MNIST not found" in warnings and "make setup" in warnings
