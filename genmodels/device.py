"""Device and precision choice: CUDA, then MPS, then CPU; bf16 autocast on CPUs with bf16 instructions."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from .config import ConfigError


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """The devices this machine can run tensors on, by the names `pick_device` takes."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return (["cuda"] if cuda else []) + cuda + (["mps"] if mps_available() else []) + ["cpu"]


def is_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    return device.type == "cpu" or (device.type == "mps" and mps_available())


def pick_device(preferred: str | None = None) -> torch.device:
    """The device named (cpu, cuda, cuda:N, mps), or the best one here for None or "auto". A device this machine
    lacks is a ConfigError that names those it has, here and now: torch would raise only at the first tensor moved
    there, with a message about drivers or build flags."""
    if preferred and preferred != "auto":
        here = ", ".join(available_devices())
        try:
            device = torch.device(preferred)
        except RuntimeError:
            raise ConfigError(f"{preferred!r} is not a device name; this machine has: {here}") from None
        if not is_available(device):
            raise ConfigError(f"device {preferred!r} is not available on this machine; it has: {here}")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def tensor_device(device: str | torch.device) -> str:
    """The name tensors on `device` report ("cuda" -> "cuda:0", "cpu:0" -> "cpu"): caches keyed by device
    then hold one entry whether the caller named the device or read it off a model's parameters."""
    return str(torch.empty(0, device=device).device)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for training; None means full fp32.

    "auto": bf16 on CPUs with native bf16 (AVX512-BF16 or AMX) and on CUDA GPUs that support it, fp16 (with
    a gradient scaler) on older GPUs, fp32 elsewhere. On an AVX2-only CPU oneDNN emulates bf16 and the
    convolutions of a 28x28 DCGAN ran 5-20x slower than fp32 (measured on this project's 2-core AMD EPYC).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device`: CUDA and MPS run kernels asynchronously, so a timer read without this
    measures how fast work was queued, not done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def devices() -> list[str]:
    """The devices the app offers (and its run manager accepts): the GPU where there is one, and the CPU."""
    return (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last speeds up convolutions on CPU (oneDNN) and on tensor-core GPUs."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


@functools.cache
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
