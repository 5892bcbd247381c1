"""Generators as ONNX files, so that other runtimes draw what `generate` draws (the app's latent explorer runs
them in the browser with ONNX Runtime Web).

    path = onnx_file("weights/mnist/dcgan", cache_dir)   # exported once per version of the weights

The graph has the input `z` [N, latent_dim] float32 (standard-normal noise, as `generate` takes it), and
`labels` [N] int64 for conditional models; its output `images` [N, C, H, W] float32 in [-1, 1] is
`generate(z, labels)`. For a VAE with a fitted mixture prior that includes `code(z)`, the mapping of z into
the mixture. The exporter is PyTorch's own (`torch.onnx.export`, through torch.export), with three
replacements for operators that ONNX lacks or that ONNX Runtime does not run in float64 (`Replacements`).

`onnx_file` exports a checkpoint folder on demand and keeps the file under a name that carries the weights'
modification time: a checkpoint retrained in place is exported again, an unchanged one never twice. The ONNX
file is a derived copy of the weights, so it lives in a cache, never beside the checkpoint or in git.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import math
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt

OPSET = 20              # torch 2.14's default, pinned so that a torch upgrade does not change the files
FORMAT_VERSION = 2      # in the cache file names: a change to what `export` writes makes old files stale (2: float64 clamp bounds)
INPUTS, OUTPUT = ("z", "labels"), "images"


class ExportError(RuntimeError):
    """A generator could not be exported; the message says why."""


class Images(nn.Module):
    """`generate` as one graph: the generator's logits, then tanh. `generate` also checks its inputs, reading the
    label values, which torch.export cannot trace; ONNX Runtime checks shapes and types itself."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.model(z, labels).float())


# ---- float64 replacements for what the VAE's mixture prior uses ---------------------------------------------------
# `VAE.split_noise` runs its CDF arithmetic in float64 with ndtr, ndtri and searchsorted. ONNX has no searchsorted
# and no inverse normal CDF, and ONNX Runtime has no float64 Erf. These three are written with elementwise ops that
# it runs in float64, so the exported prior matches the server's to float64 precision (tests/test_onnx.py).

NDTR_STEP = 1 / 8                # spacing of the table of Phi below; |x - grid point| <= 1/16
NDTR_RANGE = (-40.0, 10.0)       # Phi(-40) and 1 - Phi(10) are 0 in float64: beyond, Phi is flat
NDTR_TERMS = 10                  # Taylor terms: the remainder is below 1e-17, absolute (torch's own ndtr: ~1e-16)


@functools.cache
def ndtr_table() -> list[float]:
    """Phi on the grid NDTR_RANGE by NDTR_STEP, from the standard library (Python floats: this runs while the
    graph is traced, where tensors would be symbolic)."""
    lo, hi = NDTR_RANGE
    return [0.5 * math.erfc(-(lo + i * NDTR_STEP) / math.sqrt(2)) for i in range(round((hi - lo) / NDTR_STEP) + 1)]


def ndtr64(x: torch.Tensor) -> torch.Tensor:
    """The standard normal CDF Phi(x), in float64, without Erf.

    Phi at the nearest point a of a 1/8 grid (a table computed with math.erfc at export time), plus the Taylor
    series of Phi around a: the n-th derivative of Phi is phi(a) times (-1)^(n-1) He_(n-1)(a), the probabilists'
    Hermite polynomials (He_0 = 1, He_1 = a, He_(n+1) = a He_n - n He_(n-1)). With |x - a| <= 1/16 the series
    converges fast, and it keeps relative precision in both tails.
    """
    lo, hi = NDTR_RANGE
    table = torch.tensor(ndtr_table(), dtype=torch.float64)
    x = x.clamp(lo, hi)
    index = torch.round((torch.where(x.isnan(), lo, x) - lo) / NDTR_STEP).long()  # NaN gives NaN (through h)
    a = lo + index.double() * NDTR_STEP
    h = x - a
    phi = torch.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    he_prev, he = torch.zeros_like(a), torch.ones_like(a)   # He_(-1) (unused: times 0), He_0
    term, total = torch.ones_like(a), torch.zeros_like(a)
    for n in range(NDTR_TERMS):
        term = term * h / (n + 1)                            # h^(n+1) / (n+1)!
        total = total + (-1) ** n * he * term
        he_prev, he = he, a * he - n * he_prev
    return table[index] + phi * total


def ndtri64(p: torch.Tensor) -> torch.Tensor:
    """The inverse of Phi in float64 for p in [0, 1]: Abramowitz & Stegun 26.2.23 (error < 4.5e-4) as the start,
    then Halley's method on Phi(y) = q in the lower tail (q = min(p, 1 - p)), which triples the correct digits
    per step: two steps reach the precision of ndtr64."""
    q = torch.minimum(p, 1 - p)
    t = torch.sqrt(-2 * torch.log(q))
    y = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t ** 3))
    for _ in range(2):
        u = (ndtr64(y) - q) * math.sqrt(2 * math.pi) * torch.exp(0.5 * y * y)   # (Phi(y) - q) / phi(y)
        y = y - u / (1 + 0.5 * y * u)
    y = torch.where(p < 0.5, y, -y)
    return torch.where(p <= 0, -math.inf, torch.where(p >= 1, math.inf, y)).to(p.dtype)


def searchsorted(sorted_sequence: torch.Tensor, values: torch.Tensor, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter: torch.Tensor | None = None) -> torch.Tensor:
    """torch.searchsorted for a 1-D sequence: the number of its entries below each value (at or below with right)."""
    if sorted_sequence.ndim != 1 or sorter is not None:
        raise ExportError("only searchsorted over one sorted 1-D sequence, without sorter, is exported")
    below = sorted_sequence <= values[..., None] if (right or side == "right") else sorted_sequence < values[..., None]
    return below.sum(-1).to(torch.int32 if out_int32 else torch.int64)


def clamp(x: torch.Tensor, min: float | torch.Tensor | None = None,  # noqa: A002  (torch.clamp's own names)
          max: float | torch.Tensor | None = None) -> torch.Tensor:  # noqa: A002
    """torch.clamp with Python-number bounds made tensors of x's dtype. The exporter writes a Python float as a float32
    constant: the prior's float64 clamp to 1 - 1e-12 became a clamp to 1.0, and Phi^-1 of it inf, which drew NaN
    images for z[:, 0] above 5.7."""
    def bound(b):
        return b if b is None or isinstance(b, torch.Tensor) else torch.tensor(b, dtype=x.dtype)
    return torch.clamp(x, bound(min), bound(max))


class Replacements(torch.overrides.TorchFunctionMode):
    """While tracing, calls to torch.special.ndtr, torch.special.ndtri, torch.searchsorted and clamp run the versions
    above."""

    REPLACE = {torch.special.ndtr: ndtr64, torch.special.ndtri: ndtri64, torch.searchsorted: searchsorted,
               torch.clamp: clamp, torch.Tensor.clamp: clamp}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.REPLACE.get(func, func)(*args, **(kwargs or {}))


# ---- export and cache ----------------------------------------------------------------------------------------------

def input_names(model: nn.Module) -> tuple[str, ...]:
    return INPUTS if model.num_classes else INPUTS[:1]


def export(model: nn.Module, path: str | Path) -> Path:
    """Write `model`'s generate as an ONNX file (atomically) at `path`; the batch size N is free. The graph is traced
    on the CPU from a copy, so a model on a GPU stays where it is and in the mode it was in."""
    model = copy.deepcopy(model).cpu().eval()
    names = input_names(model)
    args = (torch.zeros(2, model.latent_dim),) + ((torch.zeros(2, dtype=torch.long),) if model.num_classes else ())
    batch = torch.export.Dim("n")
    try:
        with torch.no_grad(), Replacements():
            program = torch.export.export(Images(model).eval(), args, dynamic_shapes=[{0: batch}] * len(args))
            onnx_program = torch.onnx.export(program, args, input_names=list(names), output_names=[OUTPUT],
                                             opset_version=OPSET, dynamo=True, optimize=True, verbose=False)
    except Exception as e:  # noqa: BLE001  (torch.export and the converter raise many types; the message names it)
        raise ExportError(f"could not export {type(model).__name__} to ONNX: {type(e).__name__}: {e}") from e
    ckpt.atomic_write(path, lambda tmp: onnx_program.save(tmp))
    return Path(path)


def cache_name(source: Path) -> tuple[str, str]:
    """(the part of a cache file's name that names checkpoint folder `source`: its name and a hash of its full path;
    the name of the export of its present weights)."""
    prefix = f"{source.name}-{hashlib.sha256(str(source).encode()).hexdigest()[:12]}"
    return prefix, f"{prefix}-{(source / ckpt.WEIGHTS).stat().st_mtime_ns}-v{FORMAT_VERSION}.onnx"


def onnx_file(location: str | Path, cache_dir: str | Path) -> Path:
    """The checkpoint's generator as an ONNX file in `cache_dir`, exported now unless this version of its weights
    (by modification time) was exported before. Beside the exports, PREFIX.json records which checkpoint folder a
    prefix stands for, so that exports of replaced weights and of checkpoints that are gone can be removed."""
    cache_dir = Path(cache_dir)
    source = ckpt.resolve(location).resolve()
    if not (source / ckpt.WEIGHTS).is_file():
        raise ckpt.CheckpointError(f"{source / ckpt.WEIGHTS} is missing")
    prefix, name = cache_name(source)
    path = cache_dir / name
    if not path.is_file():
        export(ckpt.load(source), path)
        ckpt.write_json(cache_dir / f"{prefix}.json", {"checkpoint": str(source)})
        prune(cache_dir)
    return path


def prune(cache_dir: Path) -> None:
    """Remove every export that is not of a recorded checkpoint's present weights."""
    for record in cache_dir.glob("*.json"):
        try:
            source = Path(ckpt.read_json(record)["checkpoint"])
            present = cache_name(source)[1]
        except (ckpt.CheckpointError, OSError, KeyError, TypeError):  # the checkpoint is gone (or the record broken)
            present = None
        for old in cache_dir.glob(f"{record.stem}-*.onnx"):
            if old.name != present:
                old.unlink(missing_ok=True)
        if present is None:
            record.unlink(missing_ok=True)
