"""One place for each fact: a family is one file in genmodels/models/ (its loss in genmodels/losses.py), and
nothing else in the code names it. LSGAN is the proof: it was added that way."""
from __future__ import annotations

import subprocess
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
