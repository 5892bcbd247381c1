"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN manifolds in a feature space.

Each set's manifold is the union of balls around its points, each ball reaching that point's k-th nearest
neighbour in the same set (section 3, eq. 1-2). Precision: the share of generated samples inside the real manifold
(how many fakes look real). Recall: the share of real images inside the generated manifold (how much of the data
the model covers); a model that draws a few classes well has high precision and low recall.
"""
from __future__ import annotations

import torch

K = 3  # neighbours that set a ball's radius; the paper's choice (section 3, Figure 3)
PROTOCOL = ("improved {name} (Kynkäänniemi et al. 2019), k = {k} nearest-neighbour manifolds in the Inception "
            "pool3 features FID uses, Euclidean distance")


def knn_radii(features: torch.Tensor, k: int = K, chunk: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (the point itself excluded)."""
    x = features.double()
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(chunk)])


def inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Whether each point lies in at least one ball (centre, radius): eq. 1 of the paper."""
    c = centres.double()
    return torch.cat([(torch.cdist(p, c) <= radii[None]).any(dim=1) for p in points.double().split(chunk)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    """(precision, recall) of fake features [N, d] against real features [M, d] (eq. 2)."""
    precision = inside(fake, real, knn_radii(real, k)).double().mean()
    recall = inside(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)
