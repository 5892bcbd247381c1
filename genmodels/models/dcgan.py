"""DCGAN: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional GANs"."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Checks
from ..objectives import NonSaturatingGAN
from ..registry import Family, register
from .base import ModelConfig
from .blocks import ConvFeatures, ConvGenerator, init_dcgan_weights, stack_geometry


@dataclass(frozen=True)
class DCGANConfig(ModelConfig):
    width: int = 64      # generator channels at full resolution (ngf); doubles per block down to the start map
    d_width: int = 64    # discriminator channels after its first block (ndf)
    d_norm: str = "batch"  # discriminator normalisation: batch | layer | none
    g_activation: str = "relu"  # generator activation: relu | leaky_relu

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        stack_geometry(self.image_size)
        check.number("width", at_least=1, at_most=1024)
        check.number("d_width", at_least=1, at_most=1024)
        check.choice("d_norm", ("batch", "layer", "none"))
        check.choice("g_activation", ("relu", "leaky_relu"))


class ConvDiscriminator(nn.Module):
    """Image -> one real/fake logit per image. Labels are accepted and ignored (unconditional)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.features = ConvFeatures(config.channels, config.image_size, config.d_width, config.d_norm)
        self.score = self.features.head(1)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(self.features(x)).flatten()


register(Family(
    name="dcgan",
    title="DCGAN",
    paper="Radford et al. 2016",
    arxiv="1511.06434",
    paper_title="Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
    summary="The GAN game with convolutional networks, the recipe that made GANs train reliably.",
    config_cls=DCGANConfig,
    build_generator=lambda c: ConvGenerator(c, c.width, activation=c.g_activation),
    build_discriminator=ConvDiscriminator,
    objective=NonSaturatingGAN,
))
