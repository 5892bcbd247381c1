"""Training images/s of our trainer against a plain reference loop, in the same run.

The reference is written as pytorch/examples' dcgan/main.py writes it (fp32, contiguous tensors, separate
real and fake backward passes, discriminator weight gradients computed during the generator step), on
the same architecture and global batch, in this process. Our trainer is timed in this process and, on a
CPU with several cores, also as `torchrun --nproc-per-node 2` data parallelism (one thread per process).
Then the trainer in fp32 against bf16 autocast, on the same architecture, in this process: bf16 is native on CPUs
with AVX512-BF16 or AMX and emulated (slow) on AVX2-only ones, so the line names which this CPU has; the trainer's
`precision = "auto"` picks bf16 only where it is native.
Run: python bench/train_throughput.py [--iters N] [--precision-only]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genmodels.data import ImageData  # noqa: E402
from genmodels.device import cpu_has_native_bf16  # noqa: E402
from genmodels.registry import get_family  # noqa: E402
from train.config import resolve_config  # noqa: E402
from train.trainer import Trainer  # noqa: E402

CASES = {
    "28x28x1 DCGAN (MNIST config)": ("mnist", []),
    "64x64x3 DCGAN (PyTorch tutorial: z=100, ngf=ndf=64)": ("cifar10", ["model.image_size=64"]),
}


def synthetic_data(run, n: int) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, *run.model.image_shape), dtype=torch.uint8, generator=g)
    return ImageData(images, torch.zeros(n, dtype=torch.long), [], "synthetic", name="bench")


def timed(fn, iters: int, warmup: int = 3) -> float:
    """Iterations per second."""
    for i in range(warmup):
        fn(i)
    start = time.perf_counter()
    for i in range(iters):
        fn(i)
    return iters / (time.perf_counter() - start)


def reference_loop(run, data: ImageData, iters: int) -> float:
    """pytorch/examples dcgan/main.py's loop on our architecture; returns images/s."""
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
    rate = timed(lambda i: trainer.iteration(torch.arange(i * bs, (i + 1) * bs) % len(data), train_g=True), iters) * bs
    trainer.world.close()
    return rate


def ours_distributed(case: str, iters: int, procs: int) -> float:
    """Our trainer under torchrun with `procs` processes; returns global images/s."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port", "29533",
           __file__, "--worker", case, "--iters", str(iters)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"torchrun failed:\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])["images_per_sec"]


def case_setup(case: str, precision: str = "auto"):
    dataset, overrides = CASES[case]
    # Time training steps only, on the CPU: the comparison with the reference loop is a CPU one.
    run = resolve_config(dataset, "dcgan", [*overrides, "train.fid_every=0", "train.device='cpu'",
                                            f"train.precision='{precision}'"])
    return run, synthetic_data(run, run.train.batch_size * 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per 28x28 measurement (64x64 uses a quarter)")
    ap.add_argument("--precision-only", action="store_true", help="only the fp32 against bf16 comparison")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:  # one torchrun process of ours_distributed
        run, data = case_setup(args.worker)
        rate = ours(run, data, args.iters)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps({"images_per_sec": rate}), flush=True)
        return
    cores = os.cpu_count() or 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cores} cores, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"CPU bf16: {'native (AVX512-BF16 or AMX)' if cpu_has_native_bf16() else 'emulated (no AVX512-BF16, no AMX)'}")
    for case in CASES if not args.precision_only else ():
        run, data = case_setup(case)
        iters = args.iters if run.model.image_size <= 32 else max(2, args.iters // 4)
        ref = reference_loop(run, data, iters)
        single = ours(run, data, iters)
        parts = [f"reference {ref:.0f} img/s", f"trainer, 1 process {single:.0f} img/s ({single / ref:.2f}x)"]
        if not torch.cuda.is_available() and cores >= 2:
            spread = ours_distributed(case, iters, 2)
            parts.append(f"trainer, torchrun 2 processes {spread:.0f} img/s ({spread / ref:.2f}x)")
        print(f"{case}: " + "; ".join(parts), flush=True)
    for case in CASES:
        iters = args.iters if "28x28" in case else max(2, args.iters // 4)
        fp32 = ours(*case_setup(case, "fp32"), iters)
        bf16 = ours(*case_setup(case, "bf16"), iters)
        print(f"{case}, trainer, 1 process: fp32 {fp32:.0f} img/s, bf16 {bf16:.0f} img/s (bf16 {bf16 / fp32:.2f}x fp32)",
              flush=True)


if __name__ == "__main__":
    main()
