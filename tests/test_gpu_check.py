"""bench/gpu_check.py, the one command that says whether the GPU path works, run here on the CPU at tiny sizes so that
its plumbing (train, reload, sample, explore, export, FID, every app page, the table, the failures it names) is proven
on every CI run; and what a GPU run would hit first, where the CPU can show it: a device the machine lacks, the
WGAN-GP penalty under fp16 gradient scaling, an export that moved the caller's model."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.device import available_devices

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402

# What the check points at its own folders while the app runs in its process.
CHECK_ENVIRONMENT = ("GENMODELS_WEIGHTS", "GENMODELS_SWEEPS", "GENMODELS_RUNS", "GENMODELS_VOTES")
TINY = "--device cpu --steps 2 --batch-size 16 --fid-n 4 --n-real 4 --projection-steps 2".split()


def rows(printed: str) -> dict[str, list[str]]:
    """The table's body: family -> its cells."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in printed.splitlines() if line.startswith("| ")]
    assert cells and cells[0] == ["family", "train img/s", "sample ms", "FID-4", "pages OK"], printed
    return {c[0]: c[1:] for c in cells[1:]}


def test_the_check_passes_on_the_cpu_and_prints_its_table(tmp_path, monkeypatch, capsys):
    from genmodels.metrics import features

    monkeypatch.setattr(features, "CACHE_DIR", tmp_path / "stats")  # the 4 real images' statistics stay here
    environment = {key: os.environ.get(key) for key in CHECK_ENVIRONMENT}
    # One family keeps this in seconds (an FID's 2048-d eigendecompositions alone take seconds on this CPU): a
    # conditional one, whose labels go through training, sampling, projection, the export and the conditional page.
    # One thread: on a 2-core machine busy with other work, LAPACK's two threads in those eigendecompositions wait on
    # each other (the test took 3x as long with two).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = gpu_check.main([*TINY, "--families", "cgan", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert status == 0 and "gpu check: passed" in printed and "FAILED" not in printed, printed
    table = rows(printed)
    assert list(table) == ["cgan"]
    pages = len(gpu_check.app_pages())
    assert pages >= 9, "every page of the app's navigation"
    for family, (rate, ms, fid, ok) in table.items():
        assert float(rate.replace(",", "")) > 0 and float(ms) > 0 and 0 < float(fid) < math.inf, printed
        assert ok == f"{pages}/{pages}", printed
    assert (tmp_path / "cgan" / "generator.onnx").stat().st_size > 0
    assert "trainer precision" in printed and "against 4 random mnist-5k test images" in printed
    assert {key: os.environ.get(key) for key in CHECK_ENVIRONMENT} == environment, "the check gives them back"


def test_each_failure_is_named_and_the_check_exits_non_zero(tmp_path, capsys):
    # A real failure: the trainer refuses a batch of one. Nothing after training runs, and the table says so.
    status = gpu_check.main([*TINY, "--batch-size", "1", "--families", "gan,dcgan", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 1 and "gpu check: 2 failures" in printed
    for family in ("gan", "dcgan"):
        assert f"FAILED {family} train: ConfigError: train.batch_size" in printed
        assert rows(printed)[family] == ["–", "–", "–", "–"]


@pytest.mark.skipif("cuda" in available_devices(), reason="this machine has a GPU")
def test_a_missing_gpu_is_one_error_line_naming_the_devices_here(tmp_path, capsys):
    said = f"error: device 'cuda' is not available on this machine; it has: {', '.join(available_devices())}"
    result = subprocess.run([sys.executable, "-m", "train", "mnist-5k", "dcgan", "--device", "cuda", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [said], result.stderr
    assert gpu_check.main([]) == 2, "the check's default device is cuda"
    assert capsys.readouterr().err.strip().splitlines() == [said]


@pytest.mark.parametrize("name", ["cuda", "cuda:7", "mps"])
def test_every_device_name_is_checked_against_the_machine(name):
    from genmodels.config import ConfigError
    from genmodels.device import pick_device

    if name in available_devices():
        assert str(pick_device(name)) == name
    else:
        with pytest.raises(ConfigError, match=rf"device '{name}' is not available on this machine; it has: .*cpu"):
            pick_device(name)
    assert pick_device("cpu:0") == torch.device("cpu:0"), "any spelling of a device the machine has"
    assert str(pick_device("auto")) in available_devices()


def test_the_gradient_penalty_sees_fp16_gradients_that_only_scaling_keeps():
    """A critic in fp16 whose hidden gradient (1e-8) flushes to zero unscaled; its input gradient (0.1 per pixel, norm
    3) is what the penalty must see. Scaled by 1024 and divided back, it does; unscaled, fp16 loses it."""
    from genmodels.losses import gradient_penalty

    d, h = 900, 1000
    a, b = torch.full((d, h), 1e4).half(), torch.full((h, 1), 1e-4).half()
    critic = lambda x: ((x.flatten(1).half() @ a @ b) * 1e-4).float().squeeze(1)  # noqa: E731
    real = fake = torch.full((2, 1, 30, 30), 1e-6)  # 30 x 30 = d pixels
    exact = (1000 * 1e4 * 1e-4 * 1e-4 * math.sqrt(d) - 1) ** 2  # ||grad|| = h * a * b * 1e-4 * sqrt(d) = 3: penalty 4
    assert gradient_penalty(critic, real, fake, grad_scale=1024.0).item() == pytest.approx(exact, rel=1e-2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(1.0), "unscaled, the gradient underflows to 0"


def test_an_overflowing_penalty_under_fp16_skips_the_step_and_lowers_the_scale(tmp_path):
    from genmodels.data import load_data
    from train.config import resolve_config
    from train.trainer import Trainer

    run = resolve_config("mnist-5k", "wgan_gp", ["train.precision='fp16'", "train.batch_size=16", "model.width=8",
                                                 "model.d_width=8", "train.fid_every=0"])
    trainer = Trainer(run, load_data("mnist-5k", "train"), tmp_path)
    trainer.scaler_d = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)  # past fp16's 65504: the penalty overflows
    index = torch.arange(16)
    assert trainer.iteration(index, train_g=False) == {}, "a skipped step logs nothing (no infinite loss in history)"
    assert trainer.scaler_d.get_scale() == 2.0 ** 23
    for _ in range(20):
        logs = trainer.iteration(index, train_g=False)
        if logs:
            break
    assert logs and all(math.isfinite(v) for v in logs.values()) and trainer.scaler_d.get_scale() < 2.0 ** 16


def test_export_leaves_the_model_where_and_as_it_was(tmp_path):
    from genmodels.export import export
    from genmodels.registry import get_family

    family = get_family("dcgan")
    model = family.build_generator(family.make_config({"width": 8})).train()
    export(model, tmp_path / "g.onnx")
    assert model.training, "the caller's model keeps its mode (the export traces an eval-mode copy)"
    assert (tmp_path / "g.onnx").stat().st_size > 0
