"""Checkpoints are folders: config.json + model.safetensors (+ metrics.json, history.json).

`load` rebuilds the model from config.json alone and loads the weights strictly. Every write goes to a
temporary file in the same folder first and is then renamed over the target, so a killed process never
leaves a half-written file. No pickles: tensors go to safetensors, everything else to JSON.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ConfigError, from_dict, to_dict
from .registry import get_family

FORMAT = "genmodels-checkpoint"
VERSION = 1
CONFIG, WEIGHTS, METRICS, HISTORY = "config.json", "model.safetensors", "metrics.json", "history.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or does not match its config; the message names the file."""


def atomic_write(path: str | Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path over `path`."""
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


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    # safetensors refuses shared or non-contiguous storage: give each tensor its own contiguous copy.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from None


def build_model(family_name: str, model_config: dict) -> nn.Module:
    family = get_family(family_name)
    return family.build_generator(from_dict(family.config_cls, model_config, where=f"{family_name} model config"))


def save(model: nn.Module, directory: str | Path, family: str, data: dict | None = None,
         training: dict | None = None) -> Path:
    """Write the generator (plus encoder, for a VAE) and the config that rebuilds it."""
    directory = Path(directory)
    config = {
        "format": FORMAT,
        "version": VERSION,
        "family": family,
        "model": to_dict(model.config),
        "data": data or {},
        "training": training or {},
    }
    save_tensors(directory / WEIGHTS, model.state_dict(), metadata={"format": FORMAT, "family": family})
    write_json(directory / CONFIG, config)
    return directory


def resolve(location: str | Path) -> Path:
    """A local checkpoint folder, or a model hub repo id fetched into (or read from) the local hub cache."""
    path = Path(location).expanduser()
    if path.exists() or not HUB_ID.match(str(location)):
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(location), allow_patterns=[CONFIG, WEIGHTS, METRICS, HISTORY, "*.png"]))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as e:
        raise CheckpointError(f"{location} is neither a local checkpoint folder nor a reachable model hub repo: {e}") from None


def read_config(location: str | Path) -> dict:
    path = resolve(location)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint folder (expected {CONFIG} and {WEIGHTS} inside)")
    config = read_json(path / CONFIG)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path / CONFIG} is not a genmodels checkpoint config (no \"format\": \"{FORMAT}\")")
    if config.get("version") != VERSION:
        raise CheckpointError(f"{path / CONFIG} has format version {config.get('version')}, this code reads {VERSION}")
    return config


def load(location: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from its checkpoint folder (or hub repo id), in eval mode on `device`.

    The returned model carries `.checkpoint` (the config.json dict) and `.checkpoint_dir`.
    """
    path = resolve(location)
    config = read_config(path)
    try:
        model = build_model(config["family"], config.get("model", {}))
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG} does not describe a buildable model: {e}") from None
    state = load_tensors(path / WEIGHTS)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path / WEIGHTS} does not match {path / CONFIG}: {e}") from None
    model.checkpoint = config
    model.checkpoint_dir = path
    return model.to(device).eval()


def read_optional_json(location: str | Path, name: str) -> Any | None:
    """metrics.json or history.json of a checkpoint, or None when it has none yet."""
    path = resolve(location) / name
    return read_json(path) if path.exists() else None
