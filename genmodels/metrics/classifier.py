"""A small CNN per dataset, trained on the real training split: conditional accuracy and classifier FID.

Shipped as weights/<dataset>/classifier/{config.json, model.safetensors, metrics.json}. Train one with

    python -m genmodels.metrics.classifier train DATASET [--epochs E]

`features` (the 128-d penultimate layer) feeds a fast "classifier FID" for per-epoch training curves,
the same Frechet distance as FID over a cheaper, dataset-specific embedding (as in the "FID with a
domain classifier" practice of e.g. Lucic et al. 2018 for MNIST-like data). Its values are not
comparable with Inception FID.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointError, load_tensors, read_json, save_tensors, write_json
from ..config import weights_root
from ..data import load_data, parent_dataset

FORMAT = "genmodels-classifier"


def classifier_dir(dataset: str, root: str | Path | None = None) -> Path:
    """weights/DATASET/classifier, under `root` or genmodels.config.weights_root()."""
    return weights_root(root) / parent_dataset(dataset) / "classifier"


# Images per forward pass when measuring. A batch of 128 keeps the first stage's activations (128 x 32 x 28 x 28
# floats, 13 MB) near the CPU's caches, where 1,000 (100 MB) do not: 1.6-1.9x faster on one thread, 1.7-2.5x on two,
# on a 2-core AVX2 CPU (bench/classifier_batch.py).
BATCH = 128


@dataclass(frozen=True)
class ClassifierConfig:
    dataset: str
    num_classes: int = 10
    channels: int = 1       # input channels the network was trained on
    image_size: int = 28    # input size; other sizes are resized on the way in
    width: int = 32         # channels of the first stage; 2x and 4x in the next two


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Classifier(nn.Module):
    """Three conv stages (w, 2w, 4w channels) -> global average pool -> linear. Inputs in [-1, 1]."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            *conv_bn(config.channels, w), *conv_bn(w, w), nn.MaxPool2d(2),   # state size: w x 14 x 14
            *conv_bn(w, 2 * w), *conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),     # state size: 2w x 7 x 7
            *conv_bn(2 * w, 4 * w),                                          # state size: 4w x 7 x 7
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                           # state size: 4w
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(4 * w, config.num_classes)

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def fit_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (or uint8) at any size, matched to the classifier's channels and size."""
        x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
        x = x.to(next(self.parameters()).device)
        if x.shape[1] != self.config.channels:
            x = x.mean(1, keepdim=True) if self.config.channels == 1 else x.expand(-1, self.config.channels, -1, -1)
        size = self.config.image_size
        if tuple(x.shape[2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.dropout(self.body(self.fit_input(images))))

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
        """[N, feature_dim] penultimate features, on the CPU."""
        return torch.cat([self.body(self.fit_input(b)).cpu() for b in images.split(batch_size)]) \
            if len(images) else torch.zeros(0, self.feature_dim)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
        """[N] predicted labels, on the CPU."""
        return torch.cat([self(b).argmax(1).cpu() for b in images.split(batch_size)]) \
            if len(images) else torch.zeros(0, dtype=torch.long)


def load_classifier(dataset: str, device: str | torch.device = "cpu", root: str | Path | None = None) -> Classifier:
    """The shipped classifier of a dataset, in eval mode; CheckpointError when none has been trained."""
    directory = classifier_dir(dataset, root)
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"no classifier for {dataset!r} in {directory}: train one with "
                              f"`python -m genmodels.metrics.classifier train {dataset}`")
    config = read_json(directory / "config.json")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{directory / 'config.json'} is not a genmodels classifier config")
    try:
        model = Classifier(ClassifierConfig(**config["model"]))
        model.load_state_dict(load_tensors(directory / "model.safetensors"), strict=True)
    except (TypeError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{directory} does not hold a loadable classifier: {e}") from None
    model.metrics = read_json(directory / "metrics.json") if (directory / "metrics.json").is_file() else {}
    return model.to(device).eval()


@torch.no_grad()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model.predict(images) == labels.cpu()).float().mean())


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random translations of up to `shift` pixels (edge padded): the only augmentation digits and clothes tolerate."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + h, dx:dx + w]


def train(dataset: str, epochs: int = 10, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, width: int = 32,
          out: str | Path | None = None, log=print) -> Path:
    """Train on the real training split, measure accuracy on the held-out split, write the checkpoint."""
    torch.manual_seed(seed)
    start = time.time()
    train_data, test_data = load_data(dataset, "train"), load_data(dataset, "test")
    config = ClassifierConfig(dataset, train_data.num_classes, train_data.image_shape[0], train_data.image_shape[1], width)
    model = Classifier(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (len(train_data) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_data), generator=g)
        for index in order[: len(order) - len(order) % batch_size].split(batch_size):
            x, y = train_data.batch(index)
            loss = F.cross_entropy(model(augment(x, g)), y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, held-out accuracy "
            f"{accuracy(model, test_data.images, test_data.labels):.4f}")
    model.eval()
    directory = Path(out) if out else classifier_dir(dataset)
    save_tensors(directory / "model.safetensors", model.state_dict(), metadata={"format": FORMAT})
    write_json(directory / "config.json", {"format": FORMAT, "model": asdict(config),
                                           "data": train_data.describe()})
    write_json(directory / "metrics.json", {
        "accuracy": {"value": accuracy(model, test_data.images, test_data.labels),
                     "protocol": f"top-1 accuracy on the held-out split ({len(test_data)} images), "
                                 "trained on the training split only"},
        "train_accuracy": {"value": accuracy(model, train_data.images, train_data.labels),
                           "protocol": f"top-1 accuracy on the training split ({len(train_data)} images)"},
        "training": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                     "seconds": round(time.time() - start, 1)},
    })
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genmodels.metrics.classifier",
                                     description="Train the per-dataset classifier used for conditional accuracy and classifier FID.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train on the real training split and write weights/DATASET/classifier/")
    p.add_argument("dataset")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv stage")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", default=None, help="checkpoint folder (default weights/DATASET/classifier)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    directory = train(args.dataset, args.epochs, args.batch_size, args.lr, args.seed, args.width, args.out)
    print(f"wrote {directory}: held-out accuracy {read_json(directory / 'metrics.json')['accuracy']['value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
