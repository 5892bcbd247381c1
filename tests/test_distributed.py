"""Data-parallel training for real: torchrun, two processes on the gloo backend, the real MNIST subset."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from genmodels import checkpoint as ckpt
from train.__main__ import main as train_main

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["mnist-5k", "dcgan", "--max-steps", "4", "--batch-size", "64", "--set", "model.width=16",
        "--set", "model.d_width=16", "--set", "train.ema_decay=0"]


def torchrun(procs: int, out: Path, port: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port", str(port),
           "-m", "train", *ARGS, "--out", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, capsys):
    # The one process is the command line in this process: without torchrun's WORLD_SIZE the trainer is a world of
    # one (train/distributed.py: setup), as under torchrun with one process, which cost two processes' imports more.
    assert train_main([*ARGS, "--out", str(tmp_path / "one")]) == 0, capsys.readouterr().err
    two = torchrun(2, tmp_path / "two", 29612)
    assert two.returncode == 0, two.stderr
    h1 = json.loads((tmp_path / "one/checkpoint/history.json").read_text())["epochs"][-1]
    h2 = json.loads((tmp_path / "two/checkpoint/history.json").read_text())["epochs"][-1]
    assert h1["images_seen"] == h2["images_seen"] == 256
    # Same data, same noise, gradients averaged over the global batch: only batch-norm statistics, taken per
    # process over half the batch, differ.
    for key in ("loss_d", "loss_g"):
        assert abs(h1[key] - h2[key]) <= 0.02 * abs(h1[key]), (key, h1[key], h2[key])
    g1, g2 = ckpt.load(tmp_path / "one/checkpoint"), ckpt.load(tmp_path / "two/checkpoint")
    params1, params2 = dict(g1.named_parameters()), dict(g2.named_parameters())
    diff = sum((params1[k] - params2[k]).abs().sum() for k in params1)
    assert diff < 0.05 * sum(p.abs().sum() for p in params1.values())
    # only rank 0 wrote: one log line per epoch, one checkpoint line, and it records the process count
    assert two.stdout.count("checkpoint:") == 1 and two.stderr.count("step=4") == 1
    assert g2.checkpoint["training"]["processes"] == 2
    with torch.no_grad():
        assert torch.isfinite(g2.generate(torch.randn(4, g2.latent_dim))).all()
