"""One place for each fact: a family is one file in genmodels/models/ (its loss in genmodels/losses.py), and
nothing else in the code names it. LSGAN is the proof: it was added that way."""
from __future__ import annotations

from pathlib import Path

from genmodels.registry import family_names, get_family

ROOT = Path(__file__).resolve().parents[1]
CODE = ("app.py", "genmodels", "train", "pages", "bench", "Makefile", "Dockerfile")
EXEMPT = ("genmodels/models/", "genmodels/losses.py", "train/configs/", "train/sweeps/")  # configs name families
TEXT = {".py", ".js", ".html", ".css", ".toml", ".json", ".sh", ".cfg", ""}


def code_files():
    for top in CODE:
        path = ROOT / top
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            shown = file.relative_to(ROOT).as_posix()
            if (file.is_file() and file.suffix in TEXT and "__pycache__" not in file.parts
                    and "node_modules" not in file.parts and not shown.startswith(EXEMPT)):
                yield shown, file


def test_lsgan_is_named_only_in_its_own_file_and_its_loss():
    assert "lsgan" in family_names() and get_family("lsgan").paper == "Mao et al. 2017"
    named = [shown for shown, file in code_files() if "lsgan" in file.read_text(errors="replace").lower()]
    assert named == [], f"LSGAN is named outside genmodels/models/lsgan.py and genmodels/losses.py: {named}"
