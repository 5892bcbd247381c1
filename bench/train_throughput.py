"""Training images/s of our trainer against a plain reference loop, in the same process.

The reference is written as pytorch/examples' dcgan/main.py writes it (fp32, contiguous tensors, separate
real and fake backward passes, discriminator weight gradients computed during the generator step), on
the same architecture and batch. Run: python bench/train_throughput.py [--iters N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genmodels.data import ImageData  # noqa: E402
from train.config import resolve_config  # noqa: E402
from train.trainer import Trainer  # noqa: E402

CASES = {
    "28x28x1 DCGAN (MNIST config)": ("mnist", []),
    "64x64x3 DCGAN (PyTorch tutorial: z=100, ngf=ndf=64)": ("cifar10", ["model.image_size=64", "model.width=64", "model.d_width=64"]),
}


def synthetic_data(run, n: int) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, *run.model.image_shape), dtype=torch.uint8, generator=g)
    return ImageData(images, torch.zeros(n, dtype=torch.long), [], "synthetic", name="bench")


def reference_loop(run, data: ImageData, iters: int) -> float:
    """pytorch/examples dcgan/main.py's loop on our architecture; returns images/s."""
    from genmodels.registry import get_family

    torch.manual_seed(0)
    family = get_family("dcgan")
    netG, netD = family.build_generator(run.model), family.build_discriminator(run.model)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bs = run.train.batch_size
    ones, zeros = torch.ones(bs), torch.zeros(bs)

    def one(i):
        real, _ = data.batch(torch.arange(i * bs, (i + 1) * bs) % len(data))
        netD.zero_grad()
        errD_real = F.binary_cross_entropy_with_logits(netD(real), ones)
        errD_real.backward()
        noise = torch.randn(bs, run.model.latent_dim)
        fake = torch.tanh(netG(noise))
        errD_fake = F.binary_cross_entropy_with_logits(netD(fake.detach()), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        errG = F.binary_cross_entropy_with_logits(netD(fake), ones)
        errG.backward()
        optG.step()

    return timed(one, iters) * bs


def ours(run, data: ImageData, iters: int) -> float:
    trainer = Trainer(run, data, "/tmp/genmodels-bench")
    bs = run.train.batch_size
    return timed(lambda i: trainer.iteration(torch.arange(i * bs, (i + 1) * bs) % len(data), train_g=True), iters) * bs


def timed(fn, iters: int, warmup: int = 3) -> float:
    for i in range(warmup):
        fn(i)
    start = time.perf_counter()
    for i in range(iters):
        fn(i)
    return iters / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per 28x28 measurement (64x64 uses a quarter)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for name, (dataset, overrides) in CASES.items():
        run = resolve_config(dataset, "dcgan", overrides)
        iters = args.iters if run.model.image_size <= 32 else max(2, args.iters // 4)
        data = synthetic_data(run, run.train.batch_size * 4)
        ref = reference_loop(run, data, iters)
        got = ours(run, data, iters)
        print(f"{name}: reference {ref:.0f} img/s, trainer {got:.0f} img/s, ratio {got / ref:.2f}x")


if __name__ == "__main__":
    main()
