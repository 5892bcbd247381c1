"""The ONNX export: ONNX Runtime (Python, the same release as the browser's ONNX Runtime Web) draws what torch draws
for every family, the VAE's mixture prior included; the float64 replacements behind that prior match their
references; exports are cached by the weights' file time and pruned when the weights change or go."""
from __future__ import annotations

import math
import os
import shutil

import numpy as np
import onnxruntime
import pytest
import torch

from explorer_fixtures import every_family  # noqa: F401  (fixture)
from train.fixtures import DATASET
from genmodels import checkpoint as ckpt
from genmodels.export import input_names, ndtr64, ndtri64, onnx_file, prune, searchsorted
from genmodels.registry import family_names
from genmodels.sampling import generate
from pages.components.explorer import MODELS

TOLERANCE = 1e-5  # images in [-1, 1]; a uint8 pixel step is 2/255 = 7.8e-3


def test_float64_replacements_match_their_references():
    x = torch.linspace(-9, 9, 20001, dtype=torch.float64)
    reference = torch.tensor([0.5 * math.erfc(-v / math.sqrt(2)) for v in x.tolist()], dtype=torch.float64)
    error = (ndtr64(x) - reference).abs()
    assert error.max() < 3e-16  # one float64 step near 1
    # Relative, so the lower tail counts too: 3e-11 at x = -9, where Phi is 1e-19 (torch's own ndtr gives 0 there).
    assert (error / reference).max() < 1e-10
    p = torch.cat([torch.logspace(-12, -1, 2000, dtype=torch.float64), torch.linspace(0.1, 0.9, 2001, dtype=torch.float64),
                   1 - torch.logspace(-12, -1, 2000, dtype=torch.float64)])
    assert (ndtri64(p) - torch.special.ndtri(p)).abs().max() < 1e-12  # the range VAE.split_noise clamps to
    assert ndtri64(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist() == [-math.inf, math.inf]
    sorted_sequence, values = torch.tensor([0.1, 0.4, 0.4, 0.9]), torch.tensor([0.0, 0.1, 0.4, 0.5, 0.95])
    for right in (False, True):
        assert torch.equal(searchsorted(sorted_sequence, values, right=right),
                           torch.searchsorted(sorted_sequence, values, right=right))


@pytest.mark.parametrize("family", family_names())
def test_onnx_runtime_draws_what_torch_draws(every_family, family):  # noqa: F811
    location = every_family / DATASET / family
    # The app's cache: the browser tests' server finds these exports there, so each is made once per session.
    session = onnxruntime.InferenceSession(str(onnx_file(location, MODELS)))
    model = ckpt.load(location)
    z = torch.randn(256, model.latent_dim, generator=torch.Generator().manual_seed(0)) * 1.5
    z[:, 0] = torch.linspace(-7, 7, len(z))  # for the VAE: every mixture component and the tails of Phi
    labels = torch.arange(len(z)) % model.num_classes if model.num_classes else None
    feeds = dict(zip(input_names(model), (z.numpy(), None if labels is None else labels.numpy())))
    got = session.run(None, feeds)[0]
    want = generate(model, z, labels).numpy()
    assert got.shape == want.shape == (len(z), *model.image_shape)
    difference = np.abs(got - want).max()
    print(f"{family}: ONNX Runtime vs torch, max |difference| {difference:.2e} over {len(z)} images")
    assert difference < TOLERANCE


def test_exports_follow_the_weights_file_time(every_family, tmp_path):  # noqa: F811
    location = tmp_path / "gan"
    shutil.copytree(every_family / DATASET / "gan", location)
    cache = tmp_path / "cache"
    first = onnx_file(location, cache)
    made = first.stat().st_mtime_ns
    assert onnx_file(location, cache) == first and first.stat().st_mtime_ns == made, "an unchanged checkpoint is not exported again"
    weights = location / ckpt.WEIGHTS
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # retrained in place
    second = onnx_file(location, cache)
    assert second != first and second.is_file() and not first.exists(), "new weights, new export; the old one goes"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".onnx"]
    shutil.rmtree(location)
    prune(cache)
    assert not list(cache.iterdir()), "the exports of a checkpoint that is gone are removed"
