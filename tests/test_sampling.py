"""Grids and checkpoint loading without torchvision or torch._dynamo: the same pixels and models, fewer imports."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels.data import to_uint8
from genmodels.models.vae import VAE
from genmodels.registry import get_family
from genmodels.sampling import grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, channels, nrow, padding", [(1, 1, 8, 2), (1, 3, 8, 2), (7, 1, 3, 2), (64, 1, 8, 2),
                                                         (10, 3, 10, 0), (5, 3, 8, 4)])
def test_grid_is_torchvision_make_grid(n, channels, nrow, padding):
    from torchvision.utils import make_grid

    images = torch.rand(n, channels, 6, 5, generator=torch.Generator().manual_seed(n)) * 2 - 1
    expected = make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=255).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(grid(images, nrow=nrow, padding=padding)), expected)
    scaled = np.asarray(grid(images, nrow=nrow, padding=padding, scale=3))
    assert np.array_equal(scaled, expected.repeat(3, axis=0).repeat(3, axis=1))


def test_a_fresh_vae_prior_is_the_standard_normal():
    family = get_family("vae")
    model = family.build_generator(family.make_config({"prior_components": 3, "latent_dim": 4}))
    assert isinstance(model, VAE)
    assert torch.equal(model.prior_scale_tril, torch.eye(4).expand(3, 4, 4))
    assert torch.equal(model.prior_means, torch.zeros(3, 4))


def test_a_model_built_for_training_is_still_initialised():
    """checkpoint.load skips the initialisers on the meta device; building a model for training still runs them."""
    family = get_family("cgan")
    a, b = (family.build_generator(family.make_config({"width": 8})) for _ in range(2))
    assert not torch.equal(a.embed.weight, b.embed.weight), "nn.Embedding's own normal_ ran"
    conv = next(m for m in a.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    assert 0.01 < float(conv.weight.detach().std()) < 0.03, "N(0, 0.02), Radford et al. 2016"


def test_loading_every_shipped_family_and_drawing_a_grid_imports_neither_torchvision_nor_dynamo():
    code = ("import sys, genmodels\nfrom pathlib import Path\nfrom genmodels.sampling import preview_grid\n"
            "for d in sorted(Path('weights').glob('mnist/*')):\n"
            "    if (d / 'model.safetensors').is_file() and d.name != 'classifier':\n"
            "        preview_grid(genmodels.load(d), 16)\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
