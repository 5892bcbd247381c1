"""The seed recipes (CIFAR-10 at 32/64 px, image folders at 64 px) run end to end on small images made here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import checkpoint as ckpt
from genmodels.data import DatasetUnavailable, load_data
from genmodels.registry import get_family
from train.__main__ import main as train_main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "train" / "configs"


def class_image(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """An RGB image whose colour encodes its class, with noise: [size, size, 3] uint8."""
    base = np.array([(label * 25) % 256, (label * 70) % 256, 255 - label * 25], np.float64)
    return np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """A miniature CIFAR-10 in the binary format: 5 train batches and a test batch of 12 records each."""
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = []
        for j in range(12):
            label = j % 10
            planes = class_image(label, rng).transpose(2, 0, 1).reshape(-1)  # R plane, G plane, B plane
            records.append(np.concatenate([[label], planes]).astype(np.uint8))
        np.concatenate(records).tofile(folder / name)
    return root


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A flat folder of 80x60 'faces' (no classes), as anime-face folders come."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(1)
    for i in range(48):  # 46 train / 2 held out
        Image.fromarray(class_image(i % 10, rng, 80)[:60]).save(root / f"{i:03d}.jpg")
    return root


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    """A folder of two class subfolders, the labels a conditional recipe trains on."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(2)
    for i in range(40):  # 38 train / 2 held out, the fewest the recipes' per-epoch FID takes
        (root / f"class-{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(class_image(i % 2, rng, 70)).save(root / f"class-{i % 2}" / f"{i:03d}.png")
    return root


def test_cifar10_binary_reader(cifar_root):
    train, test = load_data("cifar10", "train", root=cifar_root), load_data("cifar10", "test", root=cifar_root)
    assert train.images.shape == (60, 3, 32, 32) and len(test) == 12
    assert train.labels[:12].tolist() == [j % 10 for j in range(12)]
    raw = np.fromfile(cifar_root / "cifar-10-batches-bin" / "test_batch.bin", np.uint8).reshape(-1, 3073)
    assert np.array_equal(test.images[5].numpy(), raw[5, 1:].reshape(3, 32, 32))
    assert test.class_names[3] == "cat"
    broken = cifar_root / "broken"
    (broken / "cifar-10-batches-bin").mkdir(parents=True)
    (broken / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(raw.tobytes()[:5000])
    with pytest.raises(DatasetUnavailable, match="truncated"):
        load_data("cifar10", "test", root=broken)


RECIPES = sorted(p.relative_to(CONFIGS) for p in CONFIGS.glob("cifar10/*.toml")) + \
    sorted(p.relative_to(CONFIGS) for p in CONFIGS.glob("folder/*.toml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=str)
def test_recipe_trains_and_checkpoints(recipe, cifar_root, faces, classes, tmp_path, capsys):
    family = recipe.stem.split("-")[0]
    folder = classes if get_family(family).conditional else faces
    dataset = "cifar10" if recipe.parts[0] == "cifar10" else f"folder:{folder}"
    out = tmp_path / "run"
    # The command line in this process (a new process per recipe spent more on starting PyTorch than on training)
    status = train_main([dataset, family, "--config", str(CONFIGS / recipe), "--data-root", str(cifar_root),
                         "--max-steps", "2", "--batch-size", "8", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    model = ckpt.load(out / "checkpoint")
    expected_size = 64 if recipe.stem.endswith("-64") or recipe.parts[0] == "folder" else 32
    assert model.image_shape == (3, expected_size, expected_size)
    assert model.checkpoint["training"]["config_file"].endswith(str(recipe))
    labels = torch.arange(2) if model.num_classes else None
    with torch.no_grad():
        assert model.generate(torch.randn(2, model.latent_dim), labels).shape == (2, 3, expected_size, expected_size)


def test_per_epoch_inception_fid_on_an_image_folder(faces, tmp_path, capsys):
    # 46 images, batch 8: an epoch is 5 steps; Inception FID of 4 samples against the 2 held-out faces. The command
    # line in this process, as above.
    out = tmp_path / "run"
    status = train_main([f"folder:{faces}", "dcgan", "--max-steps", "5", "--batch-size", "8", "--out", str(out),
                         "--set", "train.fid_samples=4", "--set", "model.width=8", "--set", "model.d_width=8"])
    assert status == 0, capsys.readouterr().err
    history = json.loads((out / "checkpoint" / "history.json").read_text())
    assert history["epochs"][0]["fid"] > 0 and history["best"]["metric"] == "fid"
    assert ckpt.load(out / "best").checkpoint["training"]["best"]["value"] == history["epochs"][0]["fid"]


def test_per_epoch_fid_refuses_a_held_out_split_too_small(tmp_path, capsys):
    rng = np.random.default_rng(2)
    for i in range(20):  # 5% held out: one image, and a covariance needs two
        Image.fromarray(class_image(i % 10, rng)).save(tmp_path / f"{i}.png")
    # main() in this process: an exception it let through would fail the test as a traceback would show
    assert train_main([f"folder:{tmp_path}", "vae", "--max-steps", "1", "--out", str(tmp_path / "run")]) == 1
    stderr = capsys.readouterr().err
    assert "per-epoch FID needs at least 2 held-out images" in stderr and "train.fid_every=0" in stderr
