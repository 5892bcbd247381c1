"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", arXiv 2006.10738).

The same random transforms are applied to real and generated images, in the discriminator's step and in the
generator's, so D cannot tell them apart by the augmentation and G's gradient passes back through it (section 3.2).
Applying them to real images only would teach G to draw the augmented images. Every transform is a per-image random
draw from the global torch generator, which the trainer's resume state carries.

The three policies of the paper's section 3.3 with its ranges, for images in [-1, 1]:
- color: brightness + U(-0.5, 0.5), saturation x U(0, 2) (a no-op on one channel), contrast x U(0.5, 1.5);
- translation: a shift of up to 1/8 of the image size in each direction, filled with zeros;
- cutout: a zeroed square of half the image size, centred anywhere on the image (clipped at its edges).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); "" -> (); ValueError on an unknown name."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"names {', '.join(map(repr, unknown))}; the augmentations are {', '.join(POLICIES)}")
    return names


def color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    # Each output pixel reads (row - dy, col - dx) of the image; a one-pixel zero border stands for everything outside.
    rows = (torch.arange(h, device=x.device)[None, :, None] - dy + 1).clamp(0, h + 1).expand(n, h, w)
    cols = (torch.arange(w, device=x.device)[None, None, :] - dx + 1).clamp(0, w + 1).expand(n, h, w)
    padded = F.pad(x, (1, 1, 1, 1))
    index = (rows * (w + 2) + cols).flatten(1)[:, None, :].expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, index).view_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside)[:, None].to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """x [N, C, H, W] through the policy's transforms in the paper's order (color, translation, cutout)."""
    for name in POLICIES:
        if name in policy:
            x = TRANSFORMS[name](x)
    return x
