"""Device and precision choice: CUDA, then MPS, then CPU; bf16 autocast on CPUs with bf16 instructions."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    if preferred and preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
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
