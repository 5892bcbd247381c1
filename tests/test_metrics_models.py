"""The metrics that run a model or a classifier: the shipped classifiers' accuracy, projection into a generator's
latent space, and the evaluate command on a briefly trained VAE. Apart from tests/test_metrics.py (Inception features
and FID against their references), so that the two heavy halves run on different pytest-xdist workers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.config import WEIGHTS_ENV
from genmodels.data import load_data, to_float
from genmodels.device import pick_device
from genmodels.metrics import feature_stats, load_classifier, mse, project, ssim
from genmodels.metrics import features as feat
from genmodels.metrics import suite
from genmodels.metrics.classifier import accuracy
from genmodels.metrics.projection import initial_latents
from train.__main__ import main as train_main

REPO = Path(__file__).resolve().parents[1]


# ---- classifiers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, floor", [
    ("mnist", 0.993),
    ("fashion-mnist", 0.90),
])
def test_shipped_classifier_accuracy_on_heldout_data(dataset, floor):
    clf = load_classifier(dataset)
    test = load_data(dataset, "test")
    acc = accuracy(clf, test.images, test.labels)
    assert acc > floor
    assert acc == pytest.approx(clf.metrics["accuracy"]["value"], abs=1e-6)  # the recorded number is this one
    assert clf.features(to_float(test.images[:3])).shape == (3, clf.feature_dim)


def test_a_device_spelt_two_ways_loads_the_networks_once():
    """The trainer names its device ("cuda"), the measurements read it off a model's parameters ("cuda:0"):
    both spellings must reach one cached network, not two. On the CPU the two spellings are "cpu:0" and "cpu"."""
    assert suite.cached_classifier("mnist", "cpu:0") is suite.cached_classifier("mnist", torch.device("cpu"))
    assert feat.get_extractor(torch.device("cpu", 0)) is feat.get_extractor("cpu")
    assert feat.get_extractor() is feat.get_extractor(str(pick_device()))  # None: the default device


def test_classifier_statistics_are_computed_once_per_machine(tmp_path, monkeypatch):
    """classifier-FID's real statistics go to the cache folder: another process reads them back exactly without running
    the classifier, a corrupt file is recomputed, and other classifier weights have a file of their own."""
    monkeypatch.setattr(feat, "CACHE_DIR", tmp_path / "stats")
    compute = suite.real_classifier_stats.__wrapped__  # the per-process cache stands aside: as a new process
    images = load_data("mnist-5k", "test").images
    expected = feature_stats(load_classifier("mnist").features(images[feat.subset(len(images), len(images))]))
    first = compute("mnist-5k", "test", 1, 28, "cpu")
    assert all(torch.allclose(a, b) for a, b in zip(first, expected))
    [path] = (tmp_path / "stats").iterdir()
    with monkeypatch.context() as patch:
        patch.setattr(suite, "cached_classifier", lambda *args: pytest.fail("the classifier ran again"))
        again = compute("mnist-5k", "test", 1, 28, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(first, again))

    path.write_bytes(b"not safetensors")
    assert all(torch.equal(a, b) for a, b in zip(first, compute("mnist-5k", "test", 1, 28, "cpu")))

    other = tmp_path / "weights" / "mnist" / "classifier"
    shutil.copytree(REPO / "weights" / "mnist" / "classifier", other)
    tensors = ckpt.load_tensors(other / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.01
    save_file(tensors, other / "model.safetensors")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    assert suite.classifier_stats_path("mnist-5k", "test", 1, 28) != path


def test_missing_classifier_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="python -m genmodels.metrics.classifier train"):
        load_classifier("mnist", root=tmp_path)


# ---- projection and the evaluate command ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    """A briefly trained MNIST VAE: its decoder is a trained generator with no encoder, as a GAN's is."""
    out = tmp_path_factory.mktemp("vae")
    # The command line in this process: a process of its own spent ~6 CPU-s importing PyTorch and torch._dynamo
    assert train_main(["mnist-5k", "vae", "--max-steps", "60", "--batch-size", "64", "--out", str(out)]) == 0
    return out / "checkpoint"


def test_projection_gets_closer_than_random_latents(trained_vae):
    vae = ckpt.load(trained_vae)
    generator = vae.decoder  # the GAN path: z starts from the prior only
    targets = to_float(load_data("mnist-5k", "test").images[feat.subset(500, 6, seed=2)])
    z, images = project(generator, targets, steps=60, restarts=2)
    assert z.shape == (6, generator.latent_dim)
    with torch.no_grad():
        assert torch.allclose(images, generator.generate(z), atol=1e-5)
        random = generator.generate(torch.randn(6, generator.latent_dim, generator=torch.Generator().manual_seed(0)))
        reconstruction = vae.decode(vae.encode(targets)[0])
    assert mse(images, targets).mean() < 0.5 * mse(random, targets).mean()
    assert ssim(images, targets).mean() > ssim(random, targets).mean() + 0.2
    # the VAE path starts one restart at the encoder mean and keeps the best latent seen: never worse than it
    _, refined = project(vae, targets, steps=30, restarts=1)
    assert torch.all(mse(refined, targets) <= mse(reconstruction, targets) + 1e-6)


def test_projection_from_the_best_candidates_gets_closer_in_few_steps(trained_vae):
    # The Draw page's fast projection: restarts that start from the best of 256 draws, after 10 steps, are closer
    # than restarts from plain draws after the same 10 steps, and never farther than their own starts.
    generator = ckpt.load(trained_vae).decoder
    targets = to_float(load_data("mnist-5k", "test").images[feat.subset(500, 6, seed=2)])
    _, plain = project(generator, targets, steps=10, restarts=2)
    z, picked = project(generator, targets, steps=10, restarts=2, candidates=256)
    with torch.no_grad():
        assert torch.allclose(picked, generator.generate(z), atol=1e-5)
        starts = generator.generate(initial_latents(generator, targets, 2, 0, candidates=256)[:6])
    assert mse(picked, targets).mean() < mse(plain, targets).mean()
    assert torch.all(mse(picked, targets) <= mse(starts, targets) + 1e-6)


def test_projection_of_a_conditional_model_needs_labels():
    from genmodels.models.base import ModelConfig
    from genmodels.models.blocks import ConvGenerator

    cgan = ConvGenerator(ModelConfig(num_classes=10), width=8)
    with pytest.raises(ValueError, match="conditional"):
        project(cgan, torch.zeros(2, 1, 28, 28), steps=1)
    for candidates in (0, 16):
        z, images = project(cgan, torch.zeros(2, 1, 28, 28), labels=torch.tensor([3, 7]), steps=2, restarts=2,
                            candidates=candidates)
        assert images.shape == (2, 1, 28, 28) and torch.allclose(images, cgan.eval().generate(z, torch.tensor([3, 7])),
                                                                 atol=1e-5)


def test_evaluate_writes_metrics_json(trained_vae, tmp_path):
    import shutil

    from genmodels.evaluate import evaluate

    folder = tmp_path / "ckpt"
    shutil.copytree(trained_vae, folder)
    result = evaluate(folder, n=60, n_projection=4,
                      only=["ssim", "mse", "nn_distance", "classifier_fid"])
    written = json.loads((folder / "metrics.json").read_text())
    assert written == result
    assert set(written["metrics"]) == {"ssim", "mse", "nn_distance", "classifier_fid"}
    for entry in written["metrics"].values():
        assert isinstance(entry["value"], float) and entry["protocol"] and entry["seconds"] >= 0
    assert written["metrics"]["ssim"]["n"] == 4 and written["metrics"]["nn_distance"]["heldout_real"] > 0
    assert 0 < written["metrics"]["mse"]["value"] < 1
    assert written["metrics"]["ssim"]["device"] == "cpu"
    # a later partial run replaces what it recomputes and keeps every other measured metric
    again = evaluate(folder, n=30, only=["nn_distance"])
    kept = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert kept == again["metrics"] and set(kept) == set(written["metrics"])
    assert kept["nn_distance"]["n"] == 30 and kept["ssim"] == written["metrics"]["ssim"]


def test_evaluate_against_a_fixed_subset_of_the_training_split_says_so(trained_vae, tmp_path, capsys):
    import shutil

    from genmodels.evaluate import main

    folder = tmp_path / "ckpt"
    shutil.copytree(trained_vae, folder)
    assert main([str(folder), "--n", "20", "--ref", "train", "--n-real", "30", "--only", "fid,precision"]) == 0
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    for name in ("fid", "precision"):
        assert (metrics[name]["n"], metrics[name]["n_real"], metrics[name]["ref_split"]) == (20, 30, "train")
        assert metrics[name]["real_subset"] is True and "a fixed random 30 " in metrics[name]["protocol"]
    assert main([str(folder), "--n-real", "1"]) == 1
    assert "n_real must be at least 2" in capsys.readouterr().err


def test_evaluate_only_refuses_an_unknown_metric_and_lists_the_registry(capsys):
    from genmodels.evaluate import main
    from genmodels.metrics import METRICS

    assert main(["no-such-checkpoint", "--only", "fid,fd"]) == 1  # refused before anything is loaded
    error = capsys.readouterr().err
    assert error.startswith("error: unknown metric fd; the metrics are ") and all(name in error for name in METRICS)
