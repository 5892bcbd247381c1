"""Convolutional VAE with batch norm: Kingma & Welling 2014, "Auto-Encoding Variational Bayes"."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Family, register
from .base import Generator, ModelConfig
from .blocks import ConvFeatures, ConvGenerator


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    latent_dim: int = 16   # size of the Gaussian code z
    width: int = 32        # decoder channels at full resolution; the encoder mirrors it


class VAE(Generator):
    """`generate(z)` decodes a prior sample; `encode` gives the posterior N(mu, exp(logvar))."""

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = ConvFeatures(config.channels, config.image_size, config.width, norm="batch")
        flat = self.encoder.out_channels * self.encoder.out_size ** 2
        self.to_posterior = nn.Linear(flat, 2 * config.latent_dim)  # -> (mu, logvar)
        self.decoder = ConvGenerator(ModelConfig(config.image_size, config.channels, config.latent_dim), config.width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"expected images of shape [N, {', '.join(map(str, self.image_shape))}], got {list(x.shape)}")
        mu, logvar = self.to_posterior(self.encoder(x).flatten(1)).chunk(2, dim=1)
        return mu.float(), logvar.float()

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, the reparameterisation trick (Kingma & Welling 2014, section 2.4)."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)


register(Family(
    name="vae",
    title="VAE",
    paper="Kingma & Welling 2014",
    config_cls=VAEConfig,
    build_generator=VAE,
    objective="elbo",
))
