"""Real checkpoints and sweeps for the app tests, built once per run: the few-step checkpoints of train.fixtures as a
session fixture, a real sweep folder, and a weights folder with broken checkpoints.

Test modules import `weights_dir`, `colour_weights` and `sweeps_dir`; the builds are cached per process so two modules
do not train twice.
"""
from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pytest

from train.fixtures import build_colour_weights, build_weights

# Nothing in the tests may reach the network: a hub id typed in the sidebar must fail locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAMILIES = ("vae", "dcgan", "cgan")  # an encoder, the first-visit GAN, a conditional GAN: every kind of page


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return build_weights(tmp_path_factory.getbasetemp() / "app_weights", FAMILIES)


# (family, image size): both sizes the colour recipes train at; the conditional one learns which photograph a crop is of.
COLOUR_MODELS = (("vae", 32), ("dcgan", 64), ("cgan", 32))


@pytest.fixture(scope="session")
def colour_weights(tmp_path_factory) -> Path:
    """A weights folder of colour checkpoints trained on an image folder of photo crops, as a visitor's run is."""
    return build_colour_weights(tmp_path_factory.getbasetemp() / "colour_weights", COLOUR_MODELS)


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
    return build_sweeps(tmp_path_factory.getbasetemp() / "app_sweeps")


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
