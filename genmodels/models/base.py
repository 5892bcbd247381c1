"""The one generator interface every family implements, and the config fields they all share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import Checks


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 28    # square images, 28, 32 or 64 pixels a side
    channels: int = 1       # 1 (grayscale) or 3 (RGB)
    latent_dim: int = 100   # size of z
    num_classes: int = 0    # 0 = unconditional

    def __post_init__(self):
        # Bounds that keep any config, typed by anyone (a sidebar path, a hub repo), from asking for a network
        # that cannot exist or would not fit in memory; the checkpoint loader also bounds the total size.
        check = Checks(self, "model")
        check.number("image_size", at_least=4, at_most=256)
        check.choice("channels", (1, 3))
        check.number("latent_dim", at_least=1, at_most=4096)
        check.number("num_classes", at_least=0, at_most=1000)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)


class Generator(nn.Module):
    """Maps (z, labels) to images in [-1, 1].

    Subclasses implement `forward(z, labels)` returning pre-tanh "logits" in image space; `generate`
    squashes them. Keeping the logits lets the VAE use a numerically stable Bernoulli likelihood.
    """

    # Where a model loaded by genmodels.checkpoint.load came from; None for a model built in code (a trainer's).
    checkpoint: dict | None = None      # its config.json: family, model config, the data and the training run
    checkpoint_dir: Path | None = None  # the folder it was loaded from (metrics.json is written there)

    @property
    def trained_on(self) -> str | None:
        """The dataset its checkpoint says it was trained on."""
        return (self.checkpoint or {}).get("data", {}).get("dataset")

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.num_classes = config.num_classes
        self.image_shape = config.image_shape

    def check_inputs(self, z: torch.Tensor, labels: torch.Tensor | None) -> None:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [N, {self.latent_dim}], got {list(z.shape)}")
        if self.num_classes and labels is None:
            raise ValueError(f"this model is conditional on {self.num_classes} classes: pass labels")
        if labels is not None and self.num_classes:
            if labels.shape != (z.shape[0],):
                raise ValueError(f"labels must have shape [{z.shape[0]}], got {list(labels.shape)}")
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"labels must lie in [0, {self.num_classes - 1}]")

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1], shape [N, *image_shape]."""
        self.check_inputs(z, labels)
        return torch.tanh(self(z, labels if self.num_classes else None).float())

    def truncate(self, z: torch.Tensor, truncation: float) -> torch.Tensor:
        """Standard-normal z moved towards the mode of the prior: the "temperature" of Kingma & Dhariwal 2018."""
        return z * truncation
