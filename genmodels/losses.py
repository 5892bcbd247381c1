"""Losses as small pure functions. Each cites the paper and equation it implements.

Discriminator outputs are logits (no sigmoid in the networks), so the GAN losses use softplus, which is
the numerically stable form of log(sigmoid): -log(sigmoid(x)) = softplus(-x).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))): Goodfellow et al. 2014, eq. 1, the discriminator's side.

    real_target < 1 is one-sided label smoothing (Salimans et al. 2016, section 3.4): the real images' term becomes
    the cross-entropy against real_target, -t log D(x) - (1 - t) log(1 - D(x))."""
    real = F.softplus(-real_logits)
    if real_target != 1:  # untouched otherwise: bit for bit the plain loss, and no 0 * inf where a logit is huge
        real = real_target * real + (1 - real_target) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss of Goodfellow et al. 2014, section 3."""
    return F.softplus(-fake_logits).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)]: the critic's side of the Kantorovich-Rubinstein dual (Arjovsky et al. 2017, eq. 3)."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]: Arjovsky et al. 2017, Algorithm 1."""
    return -fake_scores.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     grad_scale: float = 1.0) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani et al. 2017, eq. 3).

    `critic` maps images to one score per image; conditional critics close over their labels. `grad_scale` is the
    fp16 gradient scaler's factor: this gradient is a backward pass through fp16 layers too, where small gradients
    flush to zero, so it is taken of the scaled scores and divided back before the norm, which must see the true
    gradient (PyTorch's AMP examples, "gradient penalty"). Where the scaled gradient overflows the penalty is
    infinite, as the scaler's own weight gradients would be: the trainer then skips the step and lowers the scale.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.float().sum() * grad_scale, x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) / grad_scale - 1) ** 2).mean()


def top_k(fake_scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest of the discriminator's scores for a batch of fakes: top-k training (Sinha et al. 2020,
    Algorithm 1) takes the generator's loss over these only, so a fake D already rejects sends it no gradient."""
    return fake_scores.flatten().topk(k).values


def auxiliary_classifier_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log P(C = c | X): the class log-likelihood L_C of Odena et al. 2017, eq. 2-3."""
    return F.cross_entropy(class_logits.float(), labels)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dims, mean over the batch.

    Closed form from Kingma & Welling 2014, appendix B: -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """-log p(x|z) summed over pixels, mean over the batch; images in [-1, 1], logits pre-tanh.

    "bce": Bernoulli likelihood on pixel intensities in [0, 1] (Kingma & Welling 2014, appendix C.1).
    Since (tanh(a) + 1) / 2 = sigmoid(2a), the Bernoulli logit of a pre-tanh output a is 2a.
    "mse": Gaussian likelihood with fixed unit variance, up to a constant (appendix C.2).
    """
    logits = logits.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(2 * logits, (target.float() + 1) / 2, reduction="none")
    elif kind == "mse":
        per_pixel = 0.5 * (torch.tanh(logits) - target.float()) ** 2
    else:
        raise ValueError(f"reconstruction must be 'bce' or 'mse', got {kind!r}")
    return per_pixel.flatten(1).sum(dim=1).mean()


def least_squares_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, real_target: float = 1.0,
                                     fake_target: float = 0.0) -> torch.Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]: Mao et al. 2017, eq. 2, the discriminator's side.

    Squares instead of the log loss keep the gradient alive for fakes that D already scores as real but that lie far
    from the data, where the sigmoid cross-entropy saturates (section 1, Figure 1)."""
    return 0.5 * (real_scores - real_target).pow(2).mean() + 0.5 * (fake_scores - fake_target).pow(2).mean()


def least_squares_generator_loss(fake_scores: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """1/2 E[(D(G(z)) - c)^2]: Mao et al. 2017, eq. 2, the generator's side."""
    return 0.5 * (fake_scores - target).pow(2).mean()
