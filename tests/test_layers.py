"""Three layers, each knowing only those below (docs/design.md): genmodels, the library, < train, the training
application, < pages/ and app.py, the UI. Read from the source with ast, so every import counts wherever it sits
(at the top, inside a function, under `if TYPE_CHECKING:`), and relative ones are resolved against their package."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = {"genmodels": 0, "train": 1, "pages": 2, "app": 2}  # top-level package or module: its layer, lowest first


def layer_files(root: Path) -> list[Path]:
    """Every .py file of the layers under `root`: a package's folder, or a module beside it (app.py)."""
    files = []
    for top in LAYERS:
        files += sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []
        files += [root / f"{top}.py"] if (root / f"{top}.py").is_file() else []
    return files


def imported_modules(tree: ast.Module, package: list[str]) -> list[tuple[int, str | None]]:
    """(line, absolute module name) of every import in `tree`, a file of `package` (its names, [] for a module at
    the top level); None for a relative import that climbs above the top level."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):
            # `from .` is this package, each further dot one package up (the language reference, 7.11).
            up = node.level - 1
            base = package[:len(package) - up] if up < len(package) else None
            found.append((node.lineno, ".".join(base + ([node.module] if node.module else [])) if base else None))
    return sorted(found, key=lambda item: item[0])  # ast.walk goes breadth first; report in line order


def upward_imports(root: Path) -> list[str]:
    """'FILE:LINE: ...' for every import in a layer's file under `root` that goes up a layer or above the top level."""
    problems = []
    for file in layer_files(root):
        shown = file.relative_to(root).as_posix()
        parts = file.relative_to(root).with_suffix("").parts
        here, package = parts[0], list(parts[:-1])
        for line, name in imported_modules(ast.parse(file.read_text(), filename=shown), package):
            if name is None:
                problems.append(f"{shown}:{line}: relative import above the top-level package")
            elif LAYERS.get(name.split(".")[0], -1) > LAYERS[here]:
                problems.append(f"{shown}:{line}: {here} imports {name}, a layer above it")
    return problems


def test_no_layer_imports_a_layer_above_it():
    assert layer_files(REPO), "no layer files found: the test would check nothing"
    problems = upward_imports(REPO)
    assert not problems, "imports that go up a layer (genmodels < train < pages, app.py):\n" + "\n".join(problems)


def test_the_checker_reports_what_goes_up(tmp_path):
    """The checker itself, on a tree written here: each kind of import that goes up is reported at its line, and
    none of those that go down or stay in their layer."""
    sources = {
        "genmodels/__init__.py": "",
        "genmodels/models/__init__.py": "from .. import sampling\n",
        "genmodels/models/dcgan.py": ("import torch\n"
                                      "from ..losses import bce\n"
                                      "from . import registry\n"
                                      "def launch():\n"
                                      "    import train.runs\n"            # line 5: inside a function
                                      "    return train.runs\n"),
        "genmodels/sampling.py": ("try:\n"
                                  "    from pages.app import common\n"     # line 2: nested, from-import
                                  "except ImportError:\n"
                                  "    pass\n"
                                  "from ... import outside\n"),         # line 5: climbs above the top level
        "train/__init__.py": "",
        "train/runs.py": "from genmodels import checkpoint\nfrom . import live\nimport app\n",  # line 3: app.py is UI
        "pages/sample.py": "from genmodels.sampling import grid\nfrom train.runs import Run\nimport pages.app.common\n",
        "app.py": "import streamlit as st\nfrom train import runs\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert upward_imports(tmp_path) == [
        "genmodels/models/dcgan.py:5: genmodels imports train.runs, a layer above it",
        "genmodels/sampling.py:2: genmodels imports pages.app, a layer above it",
        "genmodels/sampling.py:5: relative import above the top-level package",
        "train/runs.py:3: train imports app, a layer above it",
    ]
