"""Every metric of a generator, each with the protocol it was measured under, and METRICS, the one registry of them:
what `genmodels.evaluate` runs, and how the app names, orders and writes each.

Each function returns {name: {"value": float, "protocol": str, ...}} entries of the metrics.json schema.
A new metric is one `Metric` below: its name, when it applies, how to compute it from an `Evaluation`, which way
is better, how a value is written and what it measures.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from ..data import load_data, to_float
from ..device import tensor_device
from ..files import save_tensors
from ..sampling import eval_mode, sample
from . import features as feature_extraction
from . import image, manifold, memorisation, projection
from .classifier import classifier_dir, load_classifier
from .features import InceptionExtractor, get_extractor, real_statistics, safe_name, subset
from .frechet import feature_stats, fid_against_stats, kid

Progress = Callable[[int], None] | None


def model_dataset(model) -> str:
    """The dataset a checkpoint was trained on, from its config.json."""
    if not getattr(model, "trained_on", None):
        raise ValueError("the model does not say which dataset it was trained on (load it with genmodels.checkpoint.load)")
    return model.trained_on


def entry(value: float, protocol: str, started: float, **extra) -> dict:
    return {"value": float(value), "protocol": protocol, **extra, "seconds": round(time.time() - started, 2)}


def generated(model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n seeded samples in [-1, 1] on the CPU; a conditional model's labels cycle through its classes."""
    labels = torch.arange(n) % model.num_classes if model.num_classes else None
    return sample(model, n, seed=seed, labels=labels), labels


def inception_features(model, n: int = 1000, ref_split: str = "test", seed: int = 0,
                       extractor: InceptionExtractor | None = None, progress: Progress = None,
                       real_features: bool = True, n_real: int | None = None) -> dict:
    """Inception features of n samples and the real split's statistics (with its features unless real_features is
    False: FID alone needs only mu and sigma, which the repository ships), with what every entry records of them.
    n_real: a fixed random n_real images of the split instead of all of it (a quick check, not a reportable FID)."""
    extractor = extractor or get_extractor(str(next(model.parameters()).device))
    dataset = model_dataset(model)
    c, size = model.image_shape[0], model.image_shape[1]
    real = real_statistics(dataset, ref_split, c, size, n_real, extractor=extractor, progress=progress,
                           features=real_features)
    fake = extractor(generated(model, n, seed)[0], progress)
    common = {"n": n, "n_real": len(real["features"]) if "features" in real else int(real["n"]), "ref_split": ref_split,
              "seed": seed, "image_size": size, "feature_extractor": extractor.describe(),
              **({"real_subset": True} if n_real is not None else {})}
    return {"fake": fake, "real": real, "dataset": dataset, "common": common}


def against(features: dict) -> str:
    """The real images a metric over `features` compared with, in words."""
    common = features["common"]
    return (f"{'a fixed random' if common.get('real_subset') else 'all'} {common['n_real']} {features['dataset']} "
            f"{common['ref_split']} images")


def fid_kid(features: dict, with_kid: bool = True) -> dict:
    """FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) over what inception_features extracted: n samples
    against a real split (all of it, unless inception_features was given n_real). FID alone (with_kid=False) needs
    only the real split's mu and sigma."""
    start = time.time()
    fake, real, common = features["fake"], features["real"], features["common"]
    n, n_real = common["n"], common["n_real"]
    fid = fid_against_stats(fake, real["mu"], real["sigma"])
    result = {"fid": entry(fid, f"FID (Heusel et al. 2017) of {n} samples against {against(features)}; depends "
                                "on n, compare only at equal n", start, **common)}
    if with_kid:
        subset_size = min(1000, n, n_real)
        kid_mean, kid_std = kid(fake, real["features"], subset_size=subset_size, seed=common["seed"])
        result["kid"] = entry(kid_mean, f"KID (Binkowski et al. 2018), unbiased MMD^2 with kernel (x.y/d + 1)^3, mean "
                                        f"of 100 subsets of {subset_size}", start, std=kid_std, **common)
    return result


def precision_recall(features: dict, k: int = manifold.K) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) over the features FID extracted."""
    start = time.time()
    precision, recall = manifold.precision_recall(features["real"]["features"], features["fake"], k)
    common = features["common"]
    compared = f"; {common['n']} samples against {against(features)}"
    return {name: entry(value, manifold.PROTOCOL.format(name=name, k=k) + compared, start, k=k, **common)
            for name, value in (("precision", precision), ("recall", recall))}


def heldout_targets(dataset: str, shape: tuple[int, int, int], n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_data(dataset, "test", shape[1], shape[0])
    index = subset(len(data), min(n, len(data)), seed)
    return to_float(data.images[index]), data.labels[index]


def reconstruction(model, n: int = 100, seed: int = 0, steps: int = 200, restarts: int = 4,
                   progress: Progress = None) -> dict:
    """SSIM and MSE of n held-out real images against the model's best reproduction of them.

    VAE: decode(encoder mean). GANs: projection (Karras et al. 2020) with the true label for conditional
    models. Comparing random samples with random real images, as the seed projects did, measures nothing.
    """
    start = time.time()
    dataset = model_dataset(model)
    targets, labels = heldout_targets(dataset, model.image_shape, n, seed)
    device = next(model.parameters()).device
    if hasattr(model, "encode"):
        with torch.no_grad():
            images = model.decode(model.encode(targets.to(device))[0]).cpu()
        how = "VAE reconstruction decode(encoder mean)"
    else:
        out = []
        def tick(step: int, total: int, loss: float) -> None:
            if progress is not None and step:
                progress(1)

        for i in range(0, len(targets), 100):
            out.append(projection.project(model, targets[i:i + 100], labels[i:i + 100] if model.num_classes else None,
                                          steps=steps, seed=seed + i, restarts=restarts, callback=tick)[1].cpu())
        images = torch.cat(out)
        how = projection.PROTOCOL.format(lr=0.05, steps=steps, restarts=restarts)
    s, m = image.ssim(images, targets), image.mse(images, targets)
    common = {"n": len(targets), "ref_split": "test", "seed": seed, "image_size": model.image_shape[1]}
    return {
        "ssim": entry(s.mean(), f"{image.SSIM_PROTOCOL}; between held-out real images and their {how}", start,
                      std=float(s.std()), **common),
        "mse": entry(m.mean(), f"{image.MSE_PROTOCOL}; between held-out real images and their {how}", start,
                     std=float(m.std()), **common),
    }


def cached_classifier(dataset: str, device: str | torch.device):
    """The dataset's classifier, loaded once per process and device, however the device is spelt."""
    return loaded_classifier(dataset, tensor_device(device))


@functools.cache
def loaded_classifier(dataset: str, device: str):
    return load_classifier(dataset, device)


def label_accuracy(model, dataset: str, n: int = 1000, seed: int = 0) -> float:
    """Share of a conditional model's samples (eval mode, classes cycled) that the dataset's classifier
    assigns the class they were asked for."""
    with eval_mode(model):
        images, labels = generated(model, n, seed)
    clf = cached_classifier(dataset, str(next(model.parameters()).device))
    return float((clf.predict(images) == labels).float().mean())


def conditional_accuracy(model, n: int = 1000, seed: int = 0) -> dict:
    start = time.time()
    dataset = model_dataset(model)
    clf = cached_classifier(dataset, str(next(model.parameters()).device))
    acc = label_accuracy(model, dataset, n, seed)
    return {"conditional_accuracy": entry(
        acc, f"share of {n} samples (classes cycled) that the shipped {dataset} classifier (held-out accuracy "
             f"{clf.metrics['accuracy']['value']:.4f}) labels as the class asked for", start,
        n=n, seed=seed, classifier_accuracy=clf.metrics["accuracy"]["value"])}


def nn_distance(model, n: int = 1000, seed: int = 0) -> dict:
    """Mean distance from n samples to their nearest training images, beside the held-out real baseline."""
    start = time.time()
    dataset = model_dataset(model)
    c, size = model.image_shape[0], model.image_shape[1]
    train = load_data(dataset, "train", size, c).images
    held = load_data(dataset, "test", size, c).images
    d_fake = memorisation.nearest_neighbours(generated(model, n, seed)[0], train)[0]
    d_real = memorisation.nearest_neighbours(held[subset(len(held), min(n, len(held)), seed)], train)[0]
    return {"nn_distance": entry(d_fake.mean(), memorisation.PROTOCOL, start, n=n, ref_split="train", seed=seed,
                                 heldout_real=float(d_real.mean()), min=float(d_fake.min()))}


CLASSIFIER_REFERENCE_N = 10_000  # real images behind classifier-FID: a test split's size, a fixed subset of a training split


def classifier_stats_path(dataset: str, split: str, channels: int, image_size: int) -> Path:
    """Where the classifier's statistics of a real split are cached, beside the Inception statistics: a name that
    changes with the classifier's weights (their SHA-256) as well as with the data."""
    weights = classifier_dir(dataset) / "model.safetensors"
    key = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return (feature_extraction.CACHE_DIR / f"{safe_name(dataset)}-{split}-{channels}x{image_size}"
                                           f"-max{CLASSIFIER_REFERENCE_N}-classifier-{key}.safetensors")


@functools.cache
def real_classifier_stats(dataset: str, split: str, channels: int, image_size: int, device: str):
    """mu and sigma of the classifier's features of up to CLASSIFIER_REFERENCE_N images of a real split, computed once
    per machine: 10,000 MNIST training images took 14 s of one AVX2 core, which every training run with per-epoch
    FID paid before its first step. A cache that cannot be read is recomputed; one that cannot be written is skipped."""
    path = classifier_stats_path(dataset, split, channels, image_size)
    if (cached := feature_extraction.read_cached(path, device)) is not None and {"mu", "sigma"} <= cached.keys():
        return cached["mu"], cached["sigma"]
    images = load_data(dataset, split, image_size, channels).images
    if len(images) > CLASSIFIER_REFERENCE_N:
        images = images[subset(len(images), CLASSIFIER_REFERENCE_N)]
    mu, sigma = feature_stats(cached_classifier(dataset, device).features(images))
    with contextlib.suppress(OSError):
        save_tensors(path, {"mu": mu, "sigma": sigma}, metadata={"dataset": dataset, "split": split,
                                                                 "n": str(len(images))})
    return mu, sigma


def classifier_fid(model, dataset: str | None = None, n: int = 1000, seed: int = 0, ref_split: str = "test") -> float:
    """Frechet distance in the dataset classifier's 128-d feature space: a fast FID for per-epoch curves.

    Seconds on a CPU for n = 1000 (Inception FID takes minutes); the real statistics are computed once
    per process. The model is put in eval mode for the samples and restored. Not comparable to FID.
    """
    dataset = dataset or model_dataset(model)
    device = str(next(model.parameters()).device)
    with eval_mode(model):
        images = generated(model, n, seed)[0]
    c, size = model.image_shape[0], model.image_shape[1]
    fake = cached_classifier(dataset, device).features(images)
    return fid_against_stats(fake, *real_classifier_stats(dataset, ref_split, c, size, device))


def classifier_fid_entry(model, n: int = 1000, seed: int = 0, ref_split: str = "test") -> dict:
    start = time.time()
    dataset = model_dataset(model)
    value = classifier_fid(model, dataset, n, seed, ref_split)
    return {"classifier_fid": entry(value, f"Frechet distance (Heusel et al. 2017 formula) over the 128-d features of "
                                           f"the shipped {dataset} classifier, {n} samples against the whole "
                                           f"{ref_split} split; not comparable with Inception FID", start,
                                    n=n, ref_split=ref_split, seed=seed)}


class Evaluation:
    """One model's evaluation: its settings, and what several metrics share (the Inception features of FID and KID,
    the reproductions behind SSIM and MSE), computed once, when the first metric asks."""

    def __init__(self, model: nn.Module, n: int = 1000, ref_split: str = "test", seed: int = 0, n_projection: int = 100,
                 projection_steps: int = 200, wanted: set[str] | None = None, bars: bool = False,
                 n_real: int | None = None):
        self.model, self.n, self.ref_split, self.seed, self.n_real = model, n, ref_split, seed, n_real
        self.n_projection, self.projection_steps = n_projection, projection_steps
        self.wanted, self.bars = wanted, bars  # wanted: the metric names asked for (None: all)

    def wants(self, name: str) -> bool:
        return self.wanted is None or name in self.wanted

    def bar(self, desc: str, total: int | None = None, unit: str = "img") -> tqdm:
        return tqdm(desc=desc, total=total, unit=unit, file=sys.stderr, disable=not self.bars)

    @functools.cached_property
    def features(self) -> dict:
        """Inception features, extracted once for every metric over them; the real split's too where one wanted
        needs more than the shipped mu and sigma."""
        device = str(next(self.model.parameters()).device)
        with self.bar("Inception features") as bar:
            return inception_features(self.model, self.n, self.ref_split, self.seed, get_extractor(device),
                                      progress=bar.update, real_features=any(map(self.wants, REAL_FEATURES)),
                                      n_real=self.n_real)

    @functools.cached_property
    def inception(self) -> dict:
        return fid_kid(self.features, with_kid=self.wants("kid"))

    @functools.cached_property
    def manifolds(self) -> dict:
        return precision_recall(self.features)

    @functools.cached_property
    def reproduction(self) -> dict:
        steps = 0 if hasattr(self.model, "encode") else self.projection_steps * -(-self.n_projection // 100)
        with self.bar("reconstruction" if not steps else "projection", steps or None, "step") as bar:
            return reconstruction(self.model, self.n_projection, self.seed, self.projection_steps, progress=bar.update)


def always(model: nn.Module) -> bool:
    return True


@dataclass(frozen=True)
class Metric:
    """One metric, registered once: how it is computed and when it applies, how a person reads it."""
    name: str                  # key in metrics.json
    title: str                 # a column header in words
    better: str | None         # "lower", "higher", or None where neither is better
    fmt: str                   # str.format of one value
    what: str                  # one sentence on what it measures; each value's exact protocol is in metrics.json
    compute: Callable[[Evaluation], dict]   # -> its metrics.json entry {"value", "protocol", ...}
    applies: Callable[[nn.Module], bool] = always  # whether it means anything for this model
    scale: float = 1.0         # shown value = value x scale (KID is read x 1000)
    needs: str = ""            # what it cannot run without, named where evaluate reports it skipped
    card: bool = False         # shown on every Model zoo card, in this registry's order
    draws: bool = True         # computed over the model's samples, so it depends on the truncation they are drawn at

    @property
    def header(self) -> str:
        return self.title + {"lower": " ↓", "higher": " ↑"}.get(self.better, "")

    def format(self, value: float | None) -> str:
        """The value as a person reads it; a dash where the metric does not apply or was not measured."""
        return "–" if value is None or value != value else self.fmt.format(value * self.scale)


def conditional(model: nn.Module) -> bool:
    return bool(model.num_classes)


# In the order the app shows them.
METRICS = {m.name: m for m in (
    Metric("fid", "FID", "lower", "{:.1f}",
           "Fréchet Inception Distance between generated and real images (Heusel et al. 2017); "
           "it depends on the number of samples, so compare FIDs only at the same protocol.",
           compute=lambda ev: ev.inception["fid"], card=True),
    Metric("kid", "KID ×10³", "lower", "{:.1f}",
           "Kernel Inception Distance (Binkowski et al. 2018), unbiased, shown ×1000 as in the papers.",
           compute=lambda ev: ev.inception["kid"], scale=1e3),
    Metric("precision", "Precision", "higher", "{:.3f}",
           "Share of samples that fall inside the real images' k-nearest-neighbour manifold in Inception features "
           "(Kynkäänniemi et al. 2019, k = 3): how many samples look real.",
           compute=lambda ev: ev.manifolds["precision"], card=True),
    Metric("recall", "Recall", "higher", "{:.3f}",
           "Share of real images that fall inside the samples' k-nearest-neighbour manifold (Kynkäänniemi et al. "
           "2019, k = 3): how much of the data the model covers; low when it draws only some classes.",
           compute=lambda ev: ev.manifolds["recall"], card=True),
    Metric("classifier_fid", "Classifier-FID", "lower", "{:.2f}",
           "The FID formula over the features of the dataset's shipped classifier: fast, for training curves; "
           "not comparable with FID.",
           compute=lambda ev: classifier_fid_entry(ev.model, ev.n, ev.seed, ev.ref_split)["classifier_fid"],
           needs="classifier"),
    Metric("ssim", "SSIM", "higher", "{:.3f}",
           "Structural similarity between held-out real images and the model's reproduction of them (1 = identical).",
           compute=lambda ev: ev.reproduction["ssim"], card=True, draws=False),
    Metric("mse", "MSE", "lower", "{:.4f}",
           "Mean squared pixel error between held-out real images and the model's reproduction, pixels in [0, 1].",
           compute=lambda ev: ev.reproduction["mse"], card=True, draws=False),
    Metric("conditional_accuracy", "Conditional accuracy", "higher", "{:.1%}",
           "Share of samples that the dataset's classifier labels as the class the model was asked for.",
           compute=lambda ev: conditional_accuracy(ev.model, ev.n, ev.seed)["conditional_accuracy"],
           applies=conditional, needs="classifier"),
    Metric("nn_distance", "Nearest-neighbour distance", None, "{:.3f}",
           "RMS pixel distance from each sample to its nearest training image: well below the held-out real "
           "images' distance means the model copies its training set.",
           compute=lambda ev: nn_distance(ev.model, ev.n, ev.seed)["nn_distance"]),
)}
METRIC_NAMES = tuple(METRICS)
REAL_FEATURES = ("kid", "precision", "recall")  # metrics that need the real split's features, not only mu and sigma

__all__ = ["METRICS", "METRIC_NAMES", "Evaluation", "Metric", "inception_features", "fid_kid", "precision_recall", "reconstruction", "label_accuracy",
           "conditional_accuracy", "nn_distance", "classifier_fid", "classifier_fid_entry"]
