"""One checkpoint of every family, for the ONNX export and the in-browser explorer tests: the families' default
architectures with their own seeded initialisation (what is compared is the export and the browser's drawing of it,
not training), saved as the trainer saves them. The VAE's mixture prior is fitted to codes of real MNIST digits, so
the exported prior mapping has distinct components to choose between.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

DATASET = "mnist-5k"


@functools.cache
def build_checkpoints(root: Path) -> Path:
    """ROOT/mnist-5k/FAMILY/ for every registered family; returns the weights folder ROOT."""
    import torch

    from genmodels import checkpoint as ckpt
    from genmodels.data import load_data
    from genmodels.registry import family_names, get_family

    data = load_data(DATASET, "test")
    for i, name in enumerate(family_names()):
        family = get_family(name)
        torch.manual_seed(i)
        config = family.make_config({"num_classes": data.num_classes} if family.conditional else
                                    {"prior_components": 10} if name == "vae" else {})
        model = family.build_generator(config).eval()
        if name == "vae":
            model.fit_prior(model.encode_means(data.images[:500]))
        ckpt.save(model, root / DATASET / name, name,
                  data={"dataset": DATASET, "class_names": [str(c) for c in range(data.num_classes)]})
    return root


@pytest.fixture(scope="session")
def every_family(tmp_path_factory) -> Path:
    return build_checkpoints(tmp_path_factory.getbasetemp() / "every_family")
