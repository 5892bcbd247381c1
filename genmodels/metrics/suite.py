"""Every metric of a generator, each with the protocol it was measured under: what `genmodels.evaluate` runs.

Each function returns {name: {"value": float, "protocol": str, ...}} entries of the metrics.json schema.
"""
from __future__ import annotations

import functools
import time
from typing import Callable

import torch

from ..data import load_data, to_float
from ..sampling import eval_mode, sample
from . import image, memorisation, projection
from .classifier import load_classifier
from .features import InceptionExtractor, get_extractor, real_statistics, subset
from .frechet import feature_stats, fid_from_stats, kid

Progress = Callable[[int], None] | None


def model_dataset(model) -> str:
    """The dataset a checkpoint was trained on, from its config.json."""
    try:
        return model.checkpoint["data"]["dataset"]
    except (AttributeError, KeyError, TypeError):
        raise ValueError("the model does not say which dataset it was trained on (load it with genmodels.checkpoint.load)") from None


def entry(value: float, protocol: str, started: float, **extra) -> dict:
    return {"value": float(value), "protocol": protocol, **extra, "seconds": round(time.time() - started, 2)}


def generated(model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n seeded samples in [-1, 1] on the CPU; a conditional model's labels cycle through its classes."""
    labels = torch.arange(n) % model.num_classes if model.num_classes else None
    return sample(model, n, seed=seed, labels=labels), labels


def fid_kid(model, n: int = 1000, ref_split: str = "test", seed: int = 0, extractor: InceptionExtractor | None = None,
            progress: Progress = None, with_kid: bool = True) -> dict:
    """FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) of n samples against a whole real split.

    FID alone (with_kid=False) needs only the real split's mu and sigma, which the repository ships."""
    start = time.time()
    extractor = extractor or get_extractor(str(next(model.parameters()).device))
    dataset = model_dataset(model)
    c, size = model.image_shape[0], model.image_shape[1]
    real = real_statistics(dataset, ref_split, c, size, extractor=extractor, progress=progress, features=with_kid)
    fake = extractor(generated(model, n, seed)[0], progress)
    fid = fid_from_stats(*feature_stats(fake), real["mu"], real["sigma"])
    n_real = len(real["features"]) if "features" in real else int(real["n"])
    common = {"n": n, "n_real": n_real, "ref_split": ref_split, "seed": seed, "image_size": size,
              "feature_extractor": extractor.describe()}
    result = {"fid": entry(fid, f"FID (Heusel et al. 2017) of {n} samples against all {n_real} {dataset} "
                                f"{ref_split} images; depends on n, compare only at equal n", start, **common)}
    if with_kid:
        subset_size = min(1000, n, n_real)
        kid_mean, kid_std = kid(fake, real["features"], subset_size=subset_size, seed=seed)
        result["kid"] = entry(kid_mean, f"KID (Binkowski et al. 2018), unbiased MMD^2 with kernel (x.y/d + 1)^3, mean "
                                        f"of 100 subsets of {subset_size}", start, std=kid_std, **common)
    return result


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


@functools.cache
def cached_classifier(dataset: str, device: str):
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


@functools.cache
def real_classifier_stats(dataset: str, split: str, channels: int, image_size: int, device: str):
    data = load_data(dataset, split, image_size, channels)
    return feature_stats(cached_classifier(dataset, device).features(data.images))


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
    return fid_from_stats(*feature_stats(fake), *real_classifier_stats(dataset, ref_split, c, size, device))


def classifier_fid_entry(model, n: int = 1000, seed: int = 0, ref_split: str = "test") -> dict:
    start = time.time()
    dataset = model_dataset(model)
    value = classifier_fid(model, dataset, n, seed, ref_split)
    return {"classifier_fid": entry(value, f"Frechet distance (Heusel et al. 2017 formula) over the 128-d features of "
                                           f"the shipped {dataset} classifier, {n} samples against the whole "
                                           f"{ref_split} split; not comparable with Inception FID", start,
                                    n=n, ref_split=ref_split, seed=seed)}


__all__ = ["fid_kid", "reconstruction", "label_accuracy", "conditional_accuracy", "nn_distance", "classifier_fid",
           "classifier_fid_entry"]
