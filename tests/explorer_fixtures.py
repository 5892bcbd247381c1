"""One checkpoint of every family (train.fixtures.build_checkpoints: default architectures, seeded, untrained), for
the ONNX export and the in-browser explorer tests, built once per run (app_fixtures.built_once)."""
from __future__ import annotations

from pathlib import Path

import pytest

from app_fixtures import built_once
from train.fixtures import build_checkpoints


@pytest.fixture(scope="session")
def every_family(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "every_family", build_checkpoints)
