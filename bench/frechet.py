"""Seconds per FID once the features exist: fid_against_stats's N x N path against fid_from_stats's two D x D
eigendecompositions, for N generated samples against a real split's statistics, in Inception's D = 2048.

    python bench/frechet.py [--ns 20 500 1000] [--real 10000]

The features are seeded Gaussians: the cost depends on N and D, not on what the vectors hold. Per-epoch FID uses
N = 500 by default (train.fid_samples), `train.ship --choose` the N it is given; `evaluate --n 10000` has N > D and
takes the D x D path either way. Prints both times, their ratio and the relative difference of the two values.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genmodels.metrics.frechet import feature_stats, fid_against_stats, fid_from_stats  # noqa: E402

D = 2048


def timed(fn) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", type=int, nargs="+", default=[20, 500, 1000])
    ap.add_argument("--real", type=int, default=10_000)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    mu, sigma = feature_stats(torch.randn(args.real, D, generator=g))
    print(f"D = {D}, real statistics of {args.real} vectors, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for n in args.ns:
        fake = torch.randn(n, D, generator=g) * 1.1 + 0.05
        full, t_full = timed(lambda: fid_from_stats(*feature_stats(fake), mu, sigma))
        fast, t_fast = timed(lambda: fid_against_stats(fake, mu, sigma))
        print(f"N = {n:5d}: fid_from_stats {t_full:7.2f} s, fid_against_stats {t_fast:7.3f} s = {t_full / t_fast:6.1f}x; "
              f"values {abs(fast - full) / full:.1e} apart")


if __name__ == "__main__":
    main()
