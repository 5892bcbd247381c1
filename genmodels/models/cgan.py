"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".

The label enters both networks: as an embedding concatenated to z in the generator, and as a learned
label map stacked onto the image as an extra channel in the discriminator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Checks
from ..objectives import NonSaturatingGAN
from ..registry import Family, register
from .blocks import ConvFeatures, ConvGenerator, init_dcgan_weights
from .dcgan import DCGANConfig


@dataclass(frozen=True)
class CGANConfig(DCGANConfig):
    num_classes: int = 10   # classes both networks are conditioned on
    embed_dim: int = 50     # size of the generator's label embedding

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        check.number("embed_dim", at_least=1, at_most=4096)


class ConditionalDiscriminator(nn.Module):
    def __init__(self, config: CGANConfig):
        super().__init__()
        self.image_size = config.image_size
        self.label_map = nn.Embedding(config.num_classes, config.image_size ** 2)
        self.features = ConvFeatures(config.channels + 1, config.image_size, config.d_width, config.d_norm)
        self.score = self.features.head(1)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = self.label_map(labels).view(-1, 1, self.image_size, self.image_size).to(x.dtype)
        return self.score(self.features(torch.cat([x, y], dim=1))).flatten()


register(Family(
    name="cgan",
    title="CGAN",
    paper="Mirza & Osindero 2014",
    arxiv="1411.1784",
    paper_title="Conditional Generative Adversarial Nets",
    summary="Both networks are told the class: ask for a 7 and you get a 7.",
    config_cls=CGANConfig,
    build_generator=lambda c: ConvGenerator(c, c.width, c.embed_dim, c.g_activation),
    build_discriminator=ConditionalDiscriminator,
    objective=NonSaturatingGAN,
))
