"""Few-step checkpoints and a real digit to upload, for the tests, the benchmarks and the screenshot script.

Checkpoints made in seconds, not models to look at: a few training steps on the 5,000-digit MNIST subset
(`build_weights`, of the families its caller picks), on a folder of colour photo crops as a visitor's upload would be
(`build_colour_weights`), or every family's default architecture with its own seeded initialisation
(`build_checkpoints`), each saved as the trainer saves it. Each build is cached per process and arguments, so two
callers do not train twice.
"""
from __future__ import annotations

import functools
import io
import shutil
from pathlib import Path

DATASET = "mnist-5k"
STEPS = 6


@functools.cache
def build_weights(root: Path, families: tuple[str, ...]) -> Path:
    """ROOT/weights/mnist-5k/FAMILY/ for each of `families`, trained STEPS steps, and the shipped MNIST classifier;
    returns ROOT/weights. The family a first visit opens on (genmodels.models.SHOWCASE) gets a metrics.json."""
    from genmodels import checkpoint as ckpt
    from genmodels.data import load_data
    from genmodels.metrics.classifier import classifier_dir
    from genmodels.models import SHOWCASE
    from train.config import resolve_config
    from train.trainer import Trainer

    data = load_data(DATASET, "train")
    for family in families:
        run = resolve_config(DATASET, family, [f"train.max_steps={STEPS}", "train.batch_size=32", "train.threads=2"],
                             num_classes=data.num_classes)
        out = Trainer(run, data, root / "runs" / family).fit()
        shutil.copytree(out, root / "weights" / DATASET / family)
    # A measured-metrics file in the format the metrics job writes, so the zoo and the table have numbers.
    if SHOWCASE in families:
        ckpt.write_json(root / "weights" / DATASET / SHOWCASE / ckpt.METRICS, {
            "checkpoint": f"weights/{DATASET}/{SHOWCASE}", "computed_at": "2026-01-01T00:00:00Z", "device": "cpu",
            "seconds": 1.0,
            "metrics": {"fid": {"value": 123.4, "protocol": "test protocol: 100 samples"},
                        "ssim": {"value": 0.321, "protocol": "test protocol: projection"},
                        "mse": {"value": 0.0456, "protocol": "test protocol: projection"}}})
    # The shipped MNIST classifier (the trainer above measures classifier-FID with it too): the conditional
    # page's verdicts and the Draw page's reading of a drawn digit are only meaningful from a trained one.
    shutil.copytree(classifier_dir(DATASET), classifier_dir(DATASET, root / "weights"))
    return root / "weights"


# Crops of scikit-image's photographs in the colour checkpoints' image folder: 5% held out is 12, enough for a round of
# Real or fake (10) and a row of eight on Reconstruct.
COLOUR_CROPS = 240


@functools.cache
def build_colour_weights(root: Path, models: tuple[tuple[str, int], ...]) -> Path:
    """ROOT/weights/photos/FAMILY/ for each (family, image size) of models, trained STEPS steps on RGB crops of
    scikit-image's photographs (train.fetch_photos) in an image folder, `folder:PATH` as a visitor's upload is trained;
    a conditional family on the same crops in a class subfolder per photograph. Returns ROOT/weights."""
    from genmodels.data import load_data
    from genmodels.registry import get_family
    from train.config import resolve_config
    from train.fetch_photos import fetch
    from train.trainer import Trainer

    flat = fetch(root / "data", COLOUR_CROPS)
    by_photo = root / "data" / "by-photo"
    for crop in sorted(flat.glob("*.png")):  # astronaut-00000.png -> by-photo/astronaut/astronaut-00000.png
        (by_photo / crop.stem.rsplit("-", 1)[0]).mkdir(parents=True, exist_ok=True)
        shutil.copy(crop, by_photo / crop.stem.rsplit("-", 1)[0] / crop.name)
    for family, size in models:
        dataset = f"folder:{by_photo if get_family(family).conditional else flat}"
        data = load_data(dataset, "train", size, 3)
        # Narrow networks on one thread: what these exercise is three channels through every page, not quality. The
        # VAE's high learning rate moves its few steps' decoder off the mid-grey every generator starts at, so that
        # a page that lost the colour of its images shows it.
        narrow = ["model.width=16"] + (["train.lr=1e-2"] if get_family(family).has_encoder else ["model.d_width=16"])
        run = resolve_config(dataset, family, [f"model.image_size={size}", *narrow, f"train.max_steps={STEPS}",
                                               "train.batch_size=16", "train.fid_every=0", "train.threads=1"],
                             num_classes=data.num_classes)
        out = Trainer(run, data, root / "runs" / family).fit()
        shutil.copytree(out, root / "weights" / "photos" / family)
    return root / "weights"


@functools.cache
def build_checkpoints(root: Path) -> Path:
    """ROOT/mnist-5k/FAMILY/ for every registered family, untrained (what the ONNX export and the in-browser
    explorer are compared on is the export and the drawing, not training); returns the weights folder ROOT. The
    VAE's mixture prior is fitted to codes of real MNIST digits, so the exported prior mapping has distinct
    components to choose between."""
    import torch

    from genmodels import checkpoint as ckpt
    from genmodels.data import load_data
    from genmodels.registry import family_names, get_family

    data = load_data(DATASET, "test")
    for i, name in enumerate(family_names()):
        family = get_family(name)
        torch.manual_seed(i)
        config = family.make_config({"num_classes": data.num_classes} if family.conditional else
                                    {"prior_components": 10} if family.has_encoder else {})
        model = family.build_generator(config).eval()
        if family.has_encoder:
            model.fit_prior_to(data.images[:500])
        ckpt.save(model, root / DATASET / name, name,
                  data={"dataset": DATASET, "class_names": [str(c) for c in range(data.num_classes)]})
    return root


def digit_png(size: int = 200) -> bytes:
    """A real held-out MNIST digit as a large RGB PNG, dark on light like a scanned drawing."""
    import numpy as np
    from PIL import Image

    from genmodels.data import load_data

    digit = load_data(DATASET, "test").images[0, 0].numpy()
    im = Image.fromarray(255 - digit).resize((size, size), Image.BICUBIC).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert np.asarray(im).mean() > 127  # light background, so the app has to invert it
    return buf.getvalue()
