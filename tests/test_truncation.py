"""A model shipped with a truncation (`train.ship --truncation`): its samples, preview and metrics are drawn there
unless another is asked for, and the files say so."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import checkpoint as ckpt
from genmodels.data import load_data
from genmodels.evaluate import evaluate
from genmodels.evaluate import main as evaluate_main
from genmodels.metrics.classifier import load_classifier
from genmodels.sampling import default_truncation, grid, sample
from train import ship
from train.config import resolve_config
from train.trainer import Trainer

PSI = 0.7


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder of a tiny conditional GAN (a few steps: the samples need only differ with z)."""
    folder = tmp_path_factory.mktemp("run")
    mnist = load_data("mnist-5k", "train")
    small = type(mnist)(mnist.images[:256], mnist.labels[:256], mnist.class_names, mnist.source, name="mnist")
    config = resolve_config("mnist-5k", "cgan", ["model.width=16", "model.d_width=16", "train.batch_size=32",
                                                 "train.max_steps=4"])
    Trainer(config, small, folder).fit()
    return folder


@pytest.fixture(scope="module")
def shipped(run, tmp_path_factory):
    dest = tmp_path_factory.mktemp("weights") / "cgan"
    ship.ship(run, dest, final=True, truncation=PSI, chosen="a test's choice")
    return dest


def test_a_model_shipped_with_a_truncation_draws_there_unless_asked(run, shipped):
    model = ckpt.load(shipped)
    assert model.checkpoint["sampling"] == {"truncation": PSI, "chosen": "a test's choice"}
    assert default_truncation(model) == PSI and default_truncation(ckpt.load(run / ckpt.CHECKPOINT)) == 1.0
    # the same tensors as the run's: only how they are sampled differs
    assert model.checkpoint[ckpt.HASH] == ckpt.load(run / ckpt.CHECKPOINT).checkpoint[ckpt.HASH]
    drawn = sample(model, 20, seed=3)
    assert torch.equal(drawn, sample(model, 20, seed=3, truncation=PSI))
    assert not torch.allclose(drawn, sample(model, 20, seed=3, truncation=1.0), atol=1e-3)
    # the preview too: the grid of 60 samples at PSI, each class down a column
    with torch.no_grad():
        z = torch.randn(60, model.latent_dim, generator=torch.Generator().manual_seed(1234)) * PSI
        expected = grid(model.generate(z, torch.arange(60) % 10), nrow=10)
    shown = np.asarray(Image.open(shipped / ckpt.PREVIEW).convert("L")).astype(int)
    assert np.abs(shown - np.asarray(expected.convert("L")).astype(int)).max() <= 1


def test_metrics_over_samples_are_drawn_at_the_shipped_truncation_and_say_so(shipped):
    result = evaluate(shipped, n=100, only=["conditional_accuracy", "ssim"], n_projection=4, projection_steps=2)
    accuracy, ssim = result["metrics"]["conditional_accuracy"], result["metrics"]["ssim"]
    # checked against the classifier's verdict on samples drawn here by hand at PSI
    labels = torch.arange(100) % 10
    images = sample(ckpt.load(shipped), 100, seed=0, labels=labels, truncation=PSI)
    assert accuracy["value"] == pytest.approx(float((load_classifier("mnist").predict(images) == labels).float().mean()))
    assert accuracy["truncation"] == PSI and f"truncation {PSI:g}" in accuracy["protocol"]
    assert "truncation" not in ssim and "truncation" not in ssim["protocol"], "a projection draws no samples"
    written = (shipped / ckpt.METRICS).read_bytes()
    assert json.loads(written)["metrics"]["conditional_accuracy"] == accuracy

    # another truncation is measured and printed, and leaves metrics.json as it is
    untruncated = evaluate(shipped, n=100, only=["conditional_accuracy"], truncation=1.0)["metrics"]
    images = sample(ckpt.load(shipped), 100, seed=0, labels=labels, truncation=1.0)
    assert untruncated["conditional_accuracy"]["value"] == pytest.approx(
        float((load_classifier("mnist").predict(images) == labels).float().mean()))
    assert "truncation" not in untruncated["conditional_accuracy"]
    assert set(untruncated) == {"conditional_accuracy"}, "no number measured at the shipped truncation mixed in"
    assert (shipped / ckpt.METRICS).read_bytes() == written


@pytest.mark.parametrize("value", [0, -0.5, 1.6, "0.7", None])
def test_a_truncation_out_of_range_is_refused_with_a_message(run, shipped, tmp_path, capsys, value):
    folder = tmp_path / "edited"
    folder.mkdir()
    for name in (ckpt.CONFIG, ckpt.WEIGHTS):
        (folder / name).write_bytes((shipped / name).read_bytes())
    config = json.loads((folder / ckpt.CONFIG).read_text())
    config["sampling"]["truncation"] = value
    (folder / ckpt.CONFIG).write_text(json.dumps(config))
    with pytest.raises(ckpt.CheckpointError, match='"truncation"'):
        ckpt.load(folder)
    if isinstance(value, (int, float)):
        assert ship.main([str(run), str(tmp_path / "not-written"), "--final", "--truncation", str(value)]) == 1
        assert "--truncation must lie in (0, 1.5]" in capsys.readouterr().err
        assert not (tmp_path / "not-written").exists()
        assert evaluate_main([str(shipped), "--truncation", str(value), "--only", "conditional_accuracy"]) == 1
        assert "truncation must lie in (0, 1.5]" in capsys.readouterr().err
