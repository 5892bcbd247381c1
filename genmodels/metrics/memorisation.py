"""Memorisation check: how far each generated sample is from its nearest training image.

A generator that copies its training set puts samples much closer to training images than held-out real
images are; so the distance is reported next to that held-out baseline (the nearest-neighbour test of
e.g. Theis et al. 2016 and the StyleGAN/BigGAN papers' nearest-neighbour figures).
"""
from __future__ import annotations

import torch

PROTOCOL = ("root-mean-square pixel distance on [0, 1] from each generated sample to its nearest training image "
            "(exhaustive search), mean over samples; heldout_real: the same for held-out real images")


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, batch_size: int = 512
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance [N], index [N]) of each query's nearest reference image; images in [-1, 1] or uint8.

    The distance is the RMS pixel difference on a [0, 1] scale, i.e. sqrt of `image.mse`.
    """
    def flat(x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else (x.float() + 1) / 2
        return x.flatten(1)

    r = flat(reference)
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(f"queries {list(queries.shape[1:])} and reference {list(reference.shape[1:])} differ in shape")
    r_sq = r.square().sum(1)
    dists, indices = [], []
    for q in queries.split(batch_size):
        q = flat(q)
        # |q - r|^2 = |q|^2 + |r|^2 - 2 q.r: one matrix product per batch instead of N x M differences.
        d2 = q.square().sum(1, keepdim=True) + r_sq - 2 * q @ r.T
        d, i = d2.min(1)
        dists.append((d.clamp_min(0) / r.shape[1]).sqrt())
        indices.append(i)
    return torch.cat(dists), torch.cat(indices)
