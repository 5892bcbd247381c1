"""File primitives of checkpoints and run folders: atomic writes, JSON, safetensors tensors and their content hash.

Every write goes to a temporary file in the same folder first and is then renamed over the target, so a killed
process never leaves a half-written file; files that must change together (a checkpoint's weights and config) are
written into a temporary copy of their folder, which is then swapped in whole (`atomic_folder`). No pickles: tensors
go to safetensors, everything else to JSON. A file that is missing or unreadable is a CheckpointError that names it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or does not match its config; the message names the file."""


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call write(tmp_path), then rename tmp_path over `path`. Temporaries are named `.NAME.*.tmp`
    (see remove_temporaries)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_folder(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Change files of folder `path` together: copy its files into a temporary folder `.NAME.*.tmp` beside it, call
    write(tmp) to add or overwrite some, then swap the two folders in one step. A reader, or a process killed at any
    moment, sees the folder as it was or as it is after `write`, never one file of each (a checkpoint's weights
    with another save's config)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        if path.is_dir():
            for f in path.iterdir():
                if f.is_file() and not f.name.endswith(".tmp"):
                    shutil.copy2(f, tmp / f.name)
        write(tmp)
        if not path.exists():
            os.replace(tmp, path)
        elif not exchange(tmp, path):
            # no atomic swap here: for a moment `path` is missing (its readers say so), never mixed
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, aside / path.name)
            os.replace(tmp, path)
            tmp = aside
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after the swap: the folder as it was


RENAME_EXCHANGE = 2  # linux/fs.h
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically with Linux's renameat2(RENAME_EXCHANGE); False where the C library or
    the file system cannot."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd = -100  # AT_FDCWD: the paths are resolved as os.rename resolves them
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system or kernel has no exchange
        return False
    raise OSError(code, os.strerror(code), str(b))


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries a killed atomic_write or atomic_folder left in `folder` (never the files or folders
    they were to replace)."""
    stale = list(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for p in stale:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return stale


def write_json(path: str | Path, obj: Any) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(path, write)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order: what the weights are, not how a
    file lays them out, so re-saving the same tensors keeps the hash."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def not_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    # safetensors refuses shared or non-contiguous storage: give each tensor its own contiguous copy.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_tensors(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError):
        raise CheckpointError(f"{path} is not a readable safetensors file: it is truncated or corrupt") from None


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return read_tensors(path, device)[0]
