"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".

The label enters both networks: as an embedding concatenated to z in the generator, and in the discriminator either
as a learned label map stacked onto the image as an extra channel (the paper's input conditioning), or, with
`d_conditioning = "projection"`, as the inner product of a class embedding with the features its score reads (Miyato
& Koyama 2018, "cGANs with Projection Discriminator"), which scores how well the image matches its class by itself.
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
    d_conditioning: str = "channel"  # how D sees the label: channel (a label map stacked on the image) | projection

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        check.number("embed_dim", at_least=1, at_most=4096)
        check.choice("d_conditioning", ("channel", "projection"))


class ConditionalDiscriminator(nn.Module):
    def __init__(self, config: CGANConfig):
        super().__init__()
        self.image_size = config.image_size
        self.projection = config.d_conditioning == "projection"
        label_channels = 0 if self.projection else 1
        self.features = ConvFeatures(config.channels + label_channels, config.image_size, config.d_width, config.d_norm)
        self.score = self.features.head(1)
        if self.projection:
            # One vector per class over the flattened final map, the features the score's full-map conv reads, drawn
            # like that conv's weights so that both terms start at one scale.
            flat = self.features.out_channels * self.features.out_size ** 2
            self.class_embedding = nn.Embedding(config.num_classes, flat)
            nn.init.normal_(self.class_embedding.weight, 0.0, 0.02)
        else:
            self.label_map = nn.Embedding(config.num_classes, config.image_size ** 2)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.projection:
            h = self.features(x)
            # Miyato & Koyama 2018, eq. 3: f(x, y) = psi(phi(x)) + embed(y) . phi(x), with phi(x) the final map.
            match = (self.class_embedding(labels).to(h.dtype) * h.flatten(1)).sum(dim=1)
            return self.score(h).flatten() + match
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
