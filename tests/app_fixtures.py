"""Real checkpoints and sweeps for the app tests, built once per run: the few-step checkpoints of train.fixtures as a
session fixture, a real sweep folder, and a weights folder with broken checkpoints.

Test modules import `weights_dir`, `colour_weights` and `sweeps_dir`. Each is built once per test run: `built_once`
builds it in the first process that asks, and the other pytest-xdist workers of the run wait for it and reuse it.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock

from train.fixtures import build_colour_weights, build_weights

# Nothing in the tests may reach the network: a hub id typed in the sidebar must fail locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """build(folder) for the whole test run: in the run's own temporary folder, shared by its xdist workers, the first
    worker to ask builds under a file lock and records where the result is; the others wait, then read that record."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.getbasetemp() / name)
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder; each worker's basetemp is inside it
    record = shared / f"{name}.json"
    with FileLock(shared / f"{name}.lock"):
        if not record.exists():
            record.write_text(json.dumps(str(build(shared / name))))
    return Path(json.loads(record.read_text()))


FAMILIES = ("vae", "dcgan", "cgan")  # an encoder, the first-visit GAN, a conditional GAN: every kind of page


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "app_weights", lambda folder: build_weights(folder, FAMILIES))


# (family, image size): both sizes the colour recipes train at; the conditional one learns which photograph a crop is of.
COLOUR_MODELS = (("vae", 32), ("dcgan", 64), ("cgan", 32))


@pytest.fixture(scope="session")
def colour_weights(tmp_path_factory) -> Path:
    """A weights folder of colour checkpoints trained on an image folder of photo crops, as a visitor's run is."""
    return built_once(tmp_path_factory, "colour_weights", lambda folder: build_colour_weights(folder, COLOUR_MODELS))


# Two tiny trials: one trains, one diverges (lr 1e30) and is recorded as failed.
SWEEP_SPEC = """dataset = "mnist-5k"
model = "dcgan"
[fixed]
train.batch_size = 32
train.max_steps = 2
[grid]
train.lr = [2e-4, 1e30]
"""


@functools.cache
def build_sweeps(root: Path) -> Path:
    """A sweeps folder as `python -m train.sweep` leaves it, with one real sweep ("lr") whose finished trial has a
    FID measured after training (in the format the metrics job writes)."""
    from genmodels import checkpoint as ckpt
    from train import sweep

    root.mkdir(parents=True)
    spec = root / "lr.toml"
    spec.write_text(SWEEP_SPEC)
    out = root / "sweeps" / "lr"
    sweep.run_sweep(spec, out)
    ckpt.write_json(out / "trial-000" / "checkpoint" / ckpt.METRICS, {
        "metrics": {"fid": {"value": 250.5, "protocol": "test protocol: 100 samples"}}})
    sweep.run_sweep(spec, out)  # a sweep run again picks up metrics measured since
    return root / "sweeps"


@pytest.fixture(scope="session")
def sweeps_dir(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "app_sweeps", build_sweeps)


def broken_weights(weights: Path, root: Path) -> Path:
    """A copy of `weights` plus a truncated checkpoint and one whose weights do not match its config."""
    shutil.copytree(weights, root)
    truncated = root / "mnist-5k" / "truncated"
    shutil.copytree(weights / "mnist-5k" / "dcgan", truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    mismatched = root / "mnist-5k" / "mismatched"
    shutil.copytree(weights / "mnist-5k" / "vae", mismatched)
    shutil.copy(weights / "mnist-5k" / "dcgan" / "model.safetensors", mismatched / "model.safetensors")
    return root
