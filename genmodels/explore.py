"""Latent-space tools for the app, over the generator interface only.

- `pca`: principal axes of a set of vectors (used for the VAE's 2-D map of encoded images).
- `principal_directions`: GANSpace (Härkönen et al. 2020, section 2): PCA of features the generator
  produces from prior samples, carried back to z by linear regression so that moving z along direction i
  moves the output along principal image axis i. The features here are the output images themselves, so
  every family works without knowing its layers.
- `labels_from_text`: "2026" -> class indices, for conditional models.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .sampling import generate, latents


def pca(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean [D], components [k, D] with unit rows, explained variance ratio [k]) of rows x [N, D].

    From the eigendecomposition of the smaller Gram matrix, X^T X [D, D] or X X^T [N, N] of the centred rows, whose
    eigenvalues are X's squared singular values: the same leading components as an SVD of X, in a fraction of its
    time (for 1,024 MNIST-sized samples, 0.1 s against 6 s: a first visit to the latent explorer waited on it).
    """
    x = x.double()
    mean = x.mean(0)
    xc = x - mean
    n, d = xc.shape
    var, vecs = torch.linalg.eigh(xc.T @ xc if d <= n else xc @ xc.T)   # ascending
    var, vecs = var.flip(0).clamp_min(0), vecs.flip(1)
    k = min(k, n, d)
    if d <= n:
        components = vecs[:, :k].T
    else:  # right singular vectors from the left ones: v_i = X^T u_i / s_i
        components = (xc.T @ vecs[:, :k] / var[:k].sqrt().clamp_min(1e-12)).T
    ratio = var / var.sum().clamp_min(1e-12)
    return mean.float(), components.float(), ratio[:k].float()


def project_2d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D coordinates of rows x [N, D]: x itself when D <= 2 (padded with zeros), else its first two principal axes."""
    if x.shape[1] >= 3:
        mean, components, ratio = pca(x, 2)
        return (x.float() - mean) @ components.T, ratio
    coords = torch.zeros(x.shape[0], 2)
    coords[:, : x.shape[1]] = x.float()
    return coords, torch.ones(2)


@dataclass
class Directions:
    vectors: torch.Tensor     # [k, latent_dim], unit rows in z space
    explained: torch.Tensor   # [k], share of the generated images' variance along each image-space axis


@torch.no_grad()
def principal_directions(model, k: int = 8, n_samples: int = 2048, seed: int = 0) -> Directions:
    """GANSpace directions in z for `model`, ordered by how much image variance they carry.

    Conditional models are sampled with their classes cycled, so the directions describe style shared by
    all classes rather than the class itself.
    """
    z = latents(model, n_samples, seed).cpu()
    labels = torch.arange(n_samples) % model.num_classes if model.num_classes else None
    images = generate(model, z.to(next(model.parameters()).device), labels).flatten(1)
    mean, components, explained = pca(images, k)
    coords = (images - mean) @ components.T                        # [n, k] principal image coordinates
    # Regress z on the coordinates (GANSpace eq. 2): row i of U is the z step that moves coordinate i by one.
    u = torch.linalg.lstsq(coords.double(), z.double()).solution.float()  # [k, latent_dim]
    return Directions(u / u.norm(dim=1, keepdim=True).clamp_min(1e-12), explained)


class LabelTextError(ValueError):
    """A label string names a class the model does not have."""


def labels_from_text(text: str, class_names: list[str], num_classes: int) -> list[int]:
    """Class indices from text: one per digit ("2026"), or comma-separated class names or indices ("Bag, Sneaker").

    Digits index classes directly (for MNIST the class named "7" is index 7); names match case-insensitively.
    """
    text = text.strip()
    if not text:
        return []
    names = {name.lower(): i for i, name in enumerate(class_names)}
    if "," in text or text.lower() in names:
        tokens = [t.strip() for t in text.split(",") if t.strip()]
    else:
        tokens = [c for c in text if not c.isspace()]
    labels, bad = [], []
    for token in tokens:
        if token.lower() in names:
            labels.append(names[token.lower()])
        elif token.isdigit() and int(token) < num_classes:
            labels.append(int(token))
        else:
            bad.append(token)
    if bad:
        known = ", ".join(f"{i}={n}" for i, n in enumerate(class_names)) if class_names else f"0-{num_classes - 1}"
        raise LabelTextError(f"not a class of this model: {', '.join(map(repr, bad))}. Classes: {known}")
    return labels
