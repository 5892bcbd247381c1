"""The FID a training run measures after each epoch, to draw its curve and keep its best epoch.

"classifier": the FID formula over the dataset's shipped classifier's features (seconds on a CPU), against the
training split, with the conditional accuracy of conditional models. The best epoch is chosen on the training images,
never on the test split, which is kept for the one number that ships (DESIGN.md: choose on validation, report on
test). "inception": Inception FID against up to n held-out images of the run's own data folder, their statistics
computed once per run.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..config import ConfigError
from ..data import ImageData, load_data
from ..sampling import eval_mode, sample
from . import features, frechet, suite


class EpochFID:
    def __init__(self, data: ImageData, image_shape: tuple[int, int, int], kind: str, n: int, device: str | torch.device):
        """Fails now, not after the first epoch, when the dataset has no classifier or too few held-out images."""
        self.data, self.image_shape, self.kind, self.n, self.device = data, image_shape, kind, n, str(device)
        self.name = "classifier_fid" if kind == "classifier" else "fid"
        if kind == "classifier":
            suite.cached_classifier(data.name, self.device)  # the one the epochs' measurements then use
        elif len(self.heldout) < 2:
            raise ConfigError(f"per-epoch FID needs at least 2 held-out images and {data.name} has "
                              f"{len(self.heldout)}: add images or set train.fid_every=0")

    def __call__(self, model: nn.Module) -> dict[str, float]:
        """{self.name: value} for the generator (in eval mode, restored), plus conditional_accuracy where measured."""
        if self.kind == "classifier":
            result = {self.name: suite.classifier_fid(model, self.data.name, n=self.n, ref_split="train")}
            if model.num_classes:
                result["conditional_accuracy"] = suite.label_accuracy(model, self.data.name, self.n)
            return result
        with eval_mode(model):
            fake = features.get_extractor(self.device)(sample(model, self.n, seed=0))
        return {self.name: frechet.fid_against_stats(fake, *self.heldout_stats)}

    @functools.cached_property
    def heldout(self) -> ImageData:
        """The held-out split, from the same data folder as the training split."""
        c, size = self.image_shape[0], self.image_shape[1]
        return load_data(self.data.name, "test", size, c, root=self.data.root)

    @functools.cached_property
    def heldout_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(self.n, len(self.heldout))
        images = self.heldout.images[features.subset(len(self.heldout), n)]
        return frechet.feature_stats(features.get_extractor(self.device)(images))
