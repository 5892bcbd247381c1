"""Convolutional and MLP building blocks shared by the families.

The conv stacks follow Radford et al. 2016 (DCGAN): strided (transposed) 4x4 convolutions, batch norm
in the generator, LeakyReLU(0.2) in the discriminator. They start from a 7x7 map for 28x28 images and a
4x4 map for 32x32 and 64x64, and double the resolution per block; width doubles as resolution halves.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ConfigError
from .base import Generator, ModelConfig


def stack_geometry(image_size: int) -> tuple[int, int]:
    """(start size, number of 2x up/down-sampling blocks) for a square image."""
    start = 7 if image_size % 7 == 0 else 4
    blocks = math.log2(image_size / start)
    if blocks < 1 or not blocks.is_integer():
        raise ConfigError(f"image_size must be 28, 32, 64 or another 7*2^k / 4*2^k, got {image_size}")
    return start, int(blocks)


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # LayerNorm over (C, H, W): the critic normalisation Gulrajani et al. 2017 suggest
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'layer' or 'none', got {kind!r}")


def activation_layer(kind: str) -> nn.Module:
    if kind == "relu":  # Radford et al. 2016: ReLU in the generator, LeakyReLU in the discriminator
        return nn.ReLU(True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2, True)
    raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {kind!r}")


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights and N(1, 0.02) norm scales (Radford et al. 2016, section 4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvGenerator(Generator):
    """DCGAN generator; with num_classes > 0 a learned label embedding conditions z.

    label_input "concat" puts a embed_dim-d embedding beside z (Mirza & Osindero 2014); "multiply" scales z
    by a latent_dim-d embedding, so the network cannot use the label without z.
    """

    def __init__(self, config: ModelConfig, width: int = 64, embed_dim: int = 50, activation: str = "relu",
                 label_input: str = "concat"):
        super().__init__(config)
        if label_input not in ("concat", "multiply"):
            raise ValueError(f"label_input must be 'concat' or 'multiply', got {label_input!r}")
        start, blocks = stack_geometry(config.image_size)
        self.multiply = label_input == "multiply"
        embed_dim = config.latent_dim if self.multiply else embed_dim
        self.embed = nn.Embedding(config.num_classes, embed_dim) if config.num_classes else None
        ch = width * 2 ** (blocks - 1)
        in_dim = config.latent_dim + (embed_dim if config.num_classes and not self.multiply else 0)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, ch, start, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            activation_layer(activation),
        ]  # state size: (width * 2^(blocks-1)) x start x start
        for _ in range(blocks - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), activation_layer(activation)]
            ch //= 2  # state size: ch x (2 * previous) x (2 * previous)
        layers.append(nn.ConvTranspose2d(ch, config.channels, 4, 2, 1))  # state size: channels x size x size
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            y = self.embed(labels).to(z.dtype)
            z = z * y if self.multiply else torch.cat([z, y], dim=1)
        return self.net(z[:, :, None, None])


class ConvFeatures(nn.Module):
    """DCGAN discriminator trunk: image -> (width * 2^(blocks-1)) x start x start features."""

    def __init__(self, in_channels: int, image_size: int, width: int = 64, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        start, blocks = stack_geometry(image_size)
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no norm on the input block
        for _ in range(blocks - 1):
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2  # state size: ch x (previous / 2) x (previous / 2)
        self.net = nn.Sequential(*layers)
        self.out_channels = ch
        self.out_size = start

    def head(self, out_features: int) -> nn.Conv2d:
        """A conv over the whole final map: one score (or class logit) per image."""
        return nn.Conv2d(self.out_channels, out_features, self.out_size, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPGenerator(Generator):
    """Fully connected generator of Goodfellow et al. 2014, widened as in common MNIST recipes."""

    def __init__(self, config: ModelConfig, hidden: tuple[int, ...] = (256, 512, 1024)):
        super().__init__(config)
        dims = (config.latent_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Linear(dims[-1], math.prod(config.image_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, config: ModelConfig, hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3):
        super().__init__()
        dims = (math.prod(config.image_shape), *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True), nn.Dropout(dropout)]
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()  # unconditional: labels are accepted and ignored
