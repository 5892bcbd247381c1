"""Sampling helpers over the generator interface: seeded latents, grids, interpolation, label grids."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from PIL import Image

from .data import to_uint8


@contextlib.contextmanager
def eval_mode(model):
    """Run a block with the model in eval mode (batch norm on running statistics), then restore its mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def default_truncation(model) -> float:
    """The truncation a checkpoint's samples are drawn at unless one is asked for: the "truncation" of config.json's
    "sampling" table (`train.ship --truncation`), else 1.0, none (a model built in code has no checkpoint)."""
    return float(((getattr(model, "checkpoint", None) or {}).get("sampling") or {}).get("truncation", 1.0))


def latents(model, n: int, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
    """n seeded standard-normal latents; truncation < 1 moves them towards the mode of the prior (`model.truncate`),
    the truncation trick of Brock et al. 2019. None: the model's own (`default_truncation`)."""
    truncation = default_truncation(model) if truncation is None else truncation
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return (z if truncation == 1.0 else model.truncate(z, truncation)).to(next(model.parameters()).device)


@torch.no_grad()
def generate(model, z: torch.Tensor, labels=None, batch_size: int = 500) -> torch.Tensor:
    """Images in [-1, 1] on the CPU, generated in batches."""
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.long, device=z.device)
    out = []
    for i in range(0, z.shape[0], batch_size):
        out.append(model.generate(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size]).cpu())
    return torch.cat(out) if out else torch.zeros(0, *model.image_shape)


def sample(model, n: int, seed: int = 0, labels=None, truncation: float | None = None) -> torch.Tensor:
    """n images from a seed; a conditional model without given labels cycles through its classes."""
    if model.num_classes and labels is None:
        labels = torch.arange(n) % model.num_classes
    return generate(model, latents(model, n, seed, truncation), labels)


PREVIEW_SEED = 1234


def preview_grid(model, n: int = 64, seed: int = PREVIEW_SEED) -> Image.Image:
    """A checkpoint's preview.png: about n seeded samples in eval mode, in whole rows of 8; a conditional model's
    classes cycle, so each column of the grid holds one class and each row all of them (60 for ten classes)."""
    per_row = model.num_classes or 8
    with eval_mode(model):
        images = sample(model, per_row * max(1, n // per_row), seed=seed)
    return grid(images, nrow=per_row)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), as White 2016 recommends for Gaussian latents.

    Nearly parallel vectors (sin(omega) ~ 0) fall back to lerp, where slerp's formula divides by ~0.
    """
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    safe = so.abs() > eps
    so = torch.where(safe, so, torch.ones_like(so))
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so
    return torch.where(safe, spherical, lerp(a, b, t))


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """steps latents from a to b inclusive ([latent_dim] each -> [steps, latent_dim])."""
    t = torch.linspace(0, 1, steps, device=a.device)[:, None]
    if method == "slerp":
        return slerp(a[None], b[None], t)
    if method == "lerp":
        return lerp(a[None], b[None], t)
    raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")


def label_grid(num_classes: int, per_class: int) -> torch.Tensor:
    """Labels for a class-by-seed grid: row c holds per_class samples of class c."""
    return torch.arange(num_classes).repeat_interleave(per_class)


GRID_PADDING = 2  # pixels of white around and between the images of a grid


def grid(images: torch.Tensor, nrow: int = 8, padding: int = GRID_PADDING, scale: int = 1) -> Image.Image:
    """An RGB PIL image of images in [-1, 1] laid out nrow per row on white padding: torchvision's make_grid layout,
    written here because importing torchvision imports torch._dynamo, 2.5 CPU-s of every process that draws a grid
    (AVX2 CPU); tests/test_sampling.py holds it to make_grid."""
    x = to_uint8(images).cpu().numpy()
    if x.shape[1] == 1:
        x = x.repeat(3, axis=1)
    n, channels, height, width = x.shape
    if n == 1:
        canvas = x[0]
    else:
        cols = min(nrow, n)
        rows = -(-n // cols)
        step_y, step_x = height + padding, width + padding
        canvas = np.full((channels, rows * step_y + padding, cols * step_x + padding), 255, dtype=np.uint8)
        for k in range(n):
            top, left = (k // cols) * step_y + padding, (k % cols) * step_x + padding
            canvas[:, top:top + height, left:left + width] = x[k]
    im = Image.fromarray(canvas.transpose(1, 2, 0).squeeze())
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return im


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[Image.Image], duration_ms: int = 80, bounce: bool = True) -> bytes:
    """An animated GIF that plays forward then back (bounce), or forward only and starts again."""
    buf = io.BytesIO()
    seq = frames + frames[-2:0:-1] if bounce else frames
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
