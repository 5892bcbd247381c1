"""Projection: find the latent that makes a generator reproduce a given image (Karras et al. 2020, "Analyzing
and Improving the Image Quality of StyleGAN", appendix D; Abdal et al. 2019).

Used two ways: the GAN SSIM/MSE protocol (how closely can the model reproduce held-out real images?)
and "find my image in this model" in the app.

Differences from StyleGAN2's projector, which optimises w with an LPIPS loss and noise regularisation:
our generators have a plain z and no noise inputs, and they are 28-64 px, where a pixel loss is what the
reported SSIM/MSE measure. So z is optimised by Adam on the per-image pixel MSE, with the projector's
learning-rate schedule (5% warm-up, cosine ramp-down over the last 25%). A few random restarts per image
run as one batch and the best is kept, which matters more for small GANs than any loss term; for the VAE
one restart starts at the encoder mean. Where time matters more than the protocol (the app's Draw page),
`candidates` starts the restarts from the best of that many seeded draws, scored in one forward pass: a
start already near the image needs far fewer steps.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..sampling import eval_mode

LR_RAMPUP, LR_RAMPDOWN = 0.05, 0.25   # fractions of the run (Karras et al. 2020, projector.py)
PROTOCOL = ("projection: Adam on z (lr {lr}, {steps} steps, StyleGAN2 projector lr schedule) minimising pixel MSE, "
            "best of {restarts} restarts from seeded N(0, I); conditional models get the true label")


def lr_schedule(t: float) -> float:
    """The learning-rate factor at fraction t of the run, as in StyleGAN2's projector."""
    ramp = min(1.0, (1.0 - t) / LR_RAMPDOWN)
    return (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / LR_RAMPUP)


def initial_latents(model, targets: torch.Tensor, restarts: int, seed: int, labels: torch.Tensor | None = None,
                    candidates: int = 0) -> torch.Tensor:
    """[restarts * N, latent_dim]: seeded prior draws, or with `candidates` the `restarts` draws of that many whose
    images are closest to each target (labels: each target's class, for a conditional model); for a VAE the first
    restart is the encoder mean."""
    n = targets.shape[0]
    draws = max(restarts, candidates)
    z = torch.randn(draws * n, model.latent_dim, generator=torch.Generator().manual_seed(seed)).to(targets.device)
    if candidates:
        with torch.no_grad():
            images = model.generate(z, None if labels is None else labels.repeat(draws))
            loss = (images - targets.repeat(draws, 1, 1, 1)).square().flatten(1).mean(1).view(draws, n)
        best = loss.topk(restarts, dim=0, largest=False).indices            # [restarts, N]: draw index per target
        z = z.view(draws, n, -1)[best, torch.arange(n, device=z.device)].reshape(restarts * n, -1)
    else:
        z = z[: restarts * n]
    if hasattr(model, "encode"):
        with torch.no_grad():
            z[:n] = model.noise(model.encode(targets)[0])
    return z


def project(model, targets: torch.Tensor, labels: torch.Tensor | None = None, steps: int = 200, lr: float = 0.05,
            seed: int = 0, restarts: int = 4, callback: Callable[[int, int, float], None] | None = None,
            candidates: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimise z so that model.generate(z, labels) reproduces `targets` ([N, C, H, W] in [-1, 1]).

    Returns (z [N, latent_dim], images [N, C, H, W]) on the model's device: for each target, the latent with
    the lowest pixel MSE seen over all restarts and steps, and its image. A conditional model needs labels
    (the class each target should be reproduced as). callback(step, steps, mean_loss) is called every step.
    With `candidates`, the restarts start from the best of that many draws (see initial_latents).
    """
    device = next(model.parameters()).device
    targets = targets.to(device, torch.float32)
    if targets.ndim != 4 or tuple(targets.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"targets must be [N, {', '.join(map(str, model.image_shape))}], got {list(targets.shape)}")
    if model.num_classes:
        if labels is None:
            raise ValueError("this model is conditional: pass the label each target should be projected with")
        labels = torch.as_tensor(labels, dtype=torch.long, device=device)
    else:
        labels = None
    n = targets.shape[0]
    # batch norm on running statistics: each image's projection is independent of the batch
    with eval_mode(model):
        z = initial_latents(model, targets, restarts, seed, labels, candidates).requires_grad_(True)
        labels = None if labels is None else labels.repeat(restarts)
        goal = targets.repeat(restarts, 1, 1, 1)
        opt = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999))
        best_loss = torch.full((restarts * n,), math.inf, device=device)
        best_z = z.detach().clone()
        with torch.enable_grad():
            for step in range(steps + 1):
                loss = (model.generate(z, labels) - goal).square().flatten(1).mean(1)
                better = loss.detach() < best_loss
                best_loss = torch.where(better, loss.detach(), best_loss)
                best_z[better] = z.detach()[better]
                if callback is not None:
                    callback(step, steps, float(loss.detach().mean()))
                if step == steps:  # the last forward pass only scores the final z
                    break
                for group in opt.param_groups:
                    group["lr"] = lr * lr_schedule(step / steps)
                # Only z's gradient is needed: autograd.grad skips the generator's weight gradients.
                (z.grad,) = torch.autograd.grad(loss.sum(), [z])
                opt.step()
        pick = best_loss.view(restarts, n).argmin(0) * n + torch.arange(n, device=device)
        z_best = best_z[pick]
        with torch.no_grad():
            images = model.generate(z_best, None if labels is None else labels[:n])
    return z_best, images
