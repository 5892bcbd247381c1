"""One place for each fact: a family is one file in genmodels/models/ (its loss in genmodels/losses.py), and
nothing else in the code names it. LSGAN is the proof: it was added that way."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from genmodels.registry import family_names, get_family

ROOT = Path(__file__).resolve().parents[1]
CODE = ("app.py", "genmodels", "train", "pages", "bench", "Makefile", "Dockerfile")
EXEMPT = ("genmodels/models/", "genmodels/losses.py", "train/configs/", "train/sweeps/")  # configs name families
TEXT = {".py", ".js", ".html", ".css", ".toml", ".json", ".sh", ".cfg", ""}


def code_files():
    """The project's own files, as git tracks them: not what the app writes beside them (the explorer's ONNX
    exports, the fetched runtime), which carry the family in their names."""
    tracked = subprocess.run(["git", "ls-files", "--", *CODE], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for shown in tracked:
        file = ROOT / shown
        if file.is_file() and file.suffix in TEXT and not shown.startswith(EXEMPT):
            yield shown, file


def test_lsgan_is_named_only_in_its_own_file_and_its_loss():
    assert "lsgan" in family_names() and get_family("lsgan").paper == "Mao et al. 2017"
    named = [shown for shown, file in code_files() if "lsgan" in file.read_text(errors="replace").lower()]
    assert named == [], f"LSGAN is named outside genmodels/models/lsgan.py and genmodels/losses.py: {named}"


def test_no_code_outside_the_models_names_a_family():
    """The issue's bar, `grep '"vae"\\|"dcgan"\\|"cgan"' genmodels train pages app.py`, for every family: the
    pages, the trainer and the library ask the registry (summaries, encoders, the family a first visit opens on).
    Benchmarks, like tests, pick the families they measure. "gan" is left out: it is also the hub's kind tag."""
    names = [name for name in family_names() if name != "gan"]
    quoted = [f'"{name}"' for name in names] + [f"'{name}'" for name in names]
    named = [(shown, q) for shown, file in code_files() if not shown.startswith("bench/")
             for q in quoted if q in file.read_text(errors="replace")]
    assert named == [], f"family names outside genmodels/models/: {named}"


def test_the_library_runs_outside_the_repository_on_the_weights_folder_it_is_given(tmp_path):
    """genmodels computes no path from its own location: from a folder outside the repository, evaluate reads the
    classifier from GENMODELS_WEIGHTS, and says where it looked when that folder has none."""
    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "weights" / "mnist" / "cgan", weights / "mnist" / "cgan")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GENMODELS_DATA": str(ROOT / "data"), "GENMODELS_WEIGHTS": str(weights)}
    command = [sys.executable, "-m", "genmodels.evaluate", "weights/mnist/cgan", "--n", "200", "--only",
               "conditional_accuracy", "--device", "cpu"]
    without = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert without.returncode == 0, without.stderr
    skipped = json.loads((weights / "mnist" / "cgan" / "metrics.json").read_text())["skipped"]["classifier"]
    assert str(weights / "mnist" / "classifier") in skipped, "the classifier was looked for in the folder given"

    shutil.copytree(ROOT / "weights" / "mnist" / "classifier", weights / "mnist" / "classifier")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((weights / "mnist" / "cgan" / "metrics.json").read_text())
    assert result["checkpoint"] == "weights/mnist/cgan", "recorded relative to the folder it ran in"
    assert result["metrics"]["conditional_accuracy"]["value"] > 0.9
