"""Seconds for the shipped MNIST classifier's features of real test images, by batch size, against batches of 1,000
(what it used before) in the same process. The features behind classifier-FID, per-epoch FID and conditional accuracy
all go through `Classifier.features` / `predict`.

    python bench/classifier_batch.py [--n 2000] [--sizes 64 128 256 1000] [--threads 1 2]

Each size runs twice, interleaved with the others, and keeps its faster time; the features must agree with the
reference batch's to 1e-4.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genmodels.data import load_data  # noqa: E402
from genmodels.metrics.classifier import load_classifier  # noqa: E402

REFERENCE = 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, REFERENCE])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    clf = load_classifier("mnist")
    images = load_data("mnist", "test").images[: args.n]
    reference = clf.features(images, batch_size=REFERENCE)
    print(f"{args.n} MNIST test images, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        best = {}
        for _ in range(2):
            for size in args.sizes:
                start = time.perf_counter()
                got = clf.features(images, batch_size=size)
                best[size] = min(best.get(size, float("inf")), time.perf_counter() - start)
                assert (got - reference).abs().max() < 1e-4, size
        for size in args.sizes:
            print(f"{threads} thread(s), batch {size:5d}: {best[size]:6.2f} s, {best[REFERENCE] / best[size]:4.2f}x "
                  f"batch {REFERENCE}'s speed")


if __name__ == "__main__":
    main()
