"""Inception feature extraction, and real-data feature statistics computed once per dataset and split.

On a CPU, PyTorch's intra-op threading scales poorly for Inception (measured on this project's 2-core
EPYC: one process with two threads ran about as fast as one thread). So batches are spread over worker
threads that each run single-threaded ops: convolutions release the GIL, and the cores work in
parallel without a second process or a second copy of the weights.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

from ..checkpoint import CheckpointError, load_tensors, save_tensors
from ..config import weights_root
from ..data import load_data
from ..device import pick_device, tensor_device
from . import inception
from .frechet import feature_stats

CACHE_DIR = Path(os.environ.get("GENMODELS_CACHE", Path.home() / ".cache" / "genmodels")) / "stats"
PRECISIONS = ("fp32", "fp16")


class InceptionExtractor:
    """images (uint8, or floats in [-1, 1]; 1 or 3 channels; any size) -> [N, 2048] float32 features on the CPU.

    precision "fp16" (CUDA only) runs the network under fp16 autocast; bf16 is not offered: on CPUs
    without native bf16 it ran 5-20x slower than fp32 here, and it moved the features by 3.4%.
    """

    def __init__(self, device: str | torch.device | None = None, precision: str = "fp32", workers: int | None = None):
        self.device = pick_device(None if device is None else str(device))
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 Inception features need a CUDA device; use fp32 on the CPU")
        self.precision = precision
        cpu = self.device.type == "cpu"
        self.workers = workers or (min(2, os.cpu_count() or 1) if cpu else 1)
        self.batch_size = 8 if cpu else 200
        self.memory_format = torch.channels_last
        self.net = inception.InceptionV3().to(self.device, memory_format=self.memory_format)

    def describe(self) -> str:
        return f"{inception.PROTOCOL}; {self.precision} on {self.device.type}"

    @torch.inference_mode()
    def batch(self, images: torch.Tensor) -> torch.Tensor:
        x = inception.preprocess(images.to(self.device)).contiguous(memory_format=self.memory_format)
        with torch.autocast("cuda", torch.float16, enabled=self.precision == "fp16"):
            return self.net(x).float().cpu()

    def __call__(self, images: torch.Tensor, progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """Features of all images; progress(k) is called with the number of images each finished batch held."""
        if len(images) == 0:
            return torch.zeros(0, inception.DIM)

        def run(chunk: torch.Tensor) -> torch.Tensor:
            out = self.batch(chunk)
            if progress is not None:
                progress(len(chunk))
            return out

        chunks = images.split(self.batch_size)
        if self.workers == 1:
            return torch.cat([run(c) for c in chunks])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
                return torch.cat(list(pool.map(run, chunks)))
        finally:
            torch.set_num_threads(threads)


def get_extractor(device: str | torch.device | None = None, precision: str = "fp32") -> InceptionExtractor:
    """One extractor per (device, precision) and process, however the device is spelt (None: the default
    device): building it reads the 87 MB weight file."""
    return loaded_extractor(tensor_device(pick_device(device)), precision)


@functools.cache
def loaded_extractor(device: str, precision: str) -> InceptionExtractor:
    return InceptionExtractor(device, precision)


def safe_name(dataset: str) -> str:
    return dataset.replace("/", "_").replace(":", "_")


def cache_path(dataset: str, split: str, channels: int, image_size: int, n: int | None, precision: str) -> Path:
    """A cache file name that changes whenever the data or the feature protocol does."""
    key = hashlib.sha1(f"{inception.PROTOCOL}|{precision}".encode()).hexdigest()[:8]
    return CACHE_DIR / f"{safe_name(dataset)}-{split}-{channels}x{image_size}-n{n or 'all'}-inception-{key}.safetensors"


def shipped_path(dataset: str, split: str, channels: int, image_size: int, n: int | None, precision: str,
                 weights: str | Path | None = None) -> Path:
    """Where the weights folder (genmodels.config.weights_root) ships a split's FID statistics (mu and sigma,
    without the features): weights/DATASET/fid-stats-*.safetensors."""
    name = cache_path(dataset, split, channels, image_size, n, precision).name
    return weights_root(weights) / safe_name(dataset) / f"fid-stats-{name}"


def pack_statistics(mu: torch.Tensor, sigma: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """mu in float64 and the upper triangle of the symmetric sigma in float32: 8.4 MB for 2048-d features
    instead of 33.6 MB. The rounding moves an FID by under 1e-5 of its value (tested)."""
    rows, cols = torch.triu_indices(len(mu), len(mu))
    return {"mu": mu.double(), "sigma_upper": sigma[rows, cols].float(), "n": torch.tensor([n])}


def unpack_statistics(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    d = len(packed["mu"])
    rows, cols = torch.triu_indices(d, d)
    sigma = torch.zeros(d, d, dtype=torch.float64)
    sigma[rows, cols] = packed["sigma_upper"].double()
    sigma[cols, rows] = packed["sigma_upper"].double()
    return {"mu": packed["mu"].double(), "sigma": sigma, "n": packed["n"]}


def read_cached(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor] | None:
    """The tensors of a cache file, or None when there is none; a corrupt one is removed, to be recomputed, never
    trusted."""
    if path.is_file():
        try:
            return load_tensors(path, device)
        except CheckpointError:
            path.unlink(missing_ok=True)
    return None


def real_statistics(dataset: str, split: str, channels: int, image_size: int, n: int | None = None,
                    extractor: InceptionExtractor | None = None, progress: Callable[[int], None] | None = None,
                    features: bool = True) -> dict[str, torch.Tensor]:
    """{"features", "mu", "sigma"} of n images (all when None) of a real split, cached as safetensors.

    The cache lives outside the repository (GENMODELS_CACHE, default ~/.cache/genmodels/stats): the
    features of Fashion-MNIST's 10,000 test images are 80 MB, too big to ship, and take ~15 minutes on a
    2-core CPU once, then load in a second. With features=False (FID alone, no KID) the statistics the
    repository ships (`shipped_path`) serve when nothing is cached: {"mu", "sigma", "n"}. Images are
    fitted to the model's (channels, image_size) first, so real and generated images pass through the same resize.
    A cache folder that cannot be written (a read-only home in a container) costs the cache, never the result.
    """
    precision = extractor.precision if extractor is not None else "fp32"
    path = cache_path(dataset, split, channels, image_size, n, precision)
    if (cached := read_cached(path)) is not None:
        return cached
    shipped = shipped_path(dataset, split, channels, image_size, n, precision)
    if not features and shipped.is_file():
        return unpack_statistics(load_tensors(shipped))
    extractor = extractor or get_extractor()
    images = load_data(dataset, split, image_size, channels).images
    if n is not None:
        images = images[subset(len(images), n)]
    features = extractor(images, progress)
    mu, sigma = feature_stats(features)
    stats = {"features": features, "mu": mu, "sigma": sigma}
    with contextlib.suppress(OSError):
        save_tensors(path, stats, metadata={"dataset": dataset, "split": split, "n": str(len(images)),
                                            "protocol": extractor.describe()})
    return stats


def ship_statistics(dataset: str, split: str, channels: int = 1, image_size: int = 28, n: int | None = None) -> Path:
    """Write a split's FID statistics into the repository (computed, or from the cache)."""
    stats = real_statistics(dataset, split, channels, image_size, n)
    path = shipped_path(dataset, split, channels, image_size, n, "fp32")
    save_tensors(path, pack_statistics(stats["mu"], stats["sigma"], len(stats["features"])),
                 metadata={"dataset": dataset, "split": split, "n": str(len(stats["features"])),
                           "protocol": f"{inception.PROTOCOL}; fp32"})
    return path


def subset(size: int, n: int, seed: int = 0) -> torch.Tensor:
    """A fixed random choice of n of size items (some splits are sorted by class, so never the first n)."""
    if n > size:
        raise ValueError(f"asked for {n} images of a split that has {size}")
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m genmodels.metrics.features",
                                     description="Ship a real split's FID statistics under weights/DATASET/.")
    parser.add_argument("dataset")
    parser.add_argument("split", choices=("train", "test"))
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=28)
    args = parser.parse_args(argv)
    print(ship_statistics(args.dataset, args.split, args.channels, args.image_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
