"""One checkpoint of every family (train.fixtures.build_checkpoints: default architectures, seeded, untrained), for
the ONNX export and the in-browser explorer tests, built once per run."""
from __future__ import annotations

from pathlib import Path

import pytest

from train.fixtures import build_checkpoints


@pytest.fixture(scope="session")
def every_family(tmp_path_factory) -> Path:
    return build_checkpoints(tmp_path_factory.getbasetemp() / "every_family")
