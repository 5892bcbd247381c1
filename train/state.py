"""The trainer's resume state: what a run folder's resume/ holds beside the shippable checkpoint.

resume/ is one unit: each save's tensors go to a new file named for that save, and state.json, renamed into place
last, names that file with its content hash; only then are older tensor files removed. So state.json always names
complete tensors of its own save, whenever the process is killed.
"""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import torch
from torch import nn

from genmodels.files import (CheckpointError, content_hash, load_tensors, read_json, remove_temporaries, save_tensors,
                             write_json)

STATE = "state.json"
STATE_TENSORS = re.compile(r"state(-\d+-[0-9a-f]+)?\.safetensors")  # state.safetensors: runs saved before issue 17
Stateful = nn.Module | torch.optim.Optimizer


def flatten_state(objects: dict[str, Stateful | None]) -> tuple[dict[str, torch.Tensor], dict[str, list]]:
    """The tensors of modules and optimisers under "NAME." prefixes (an optimiser's per-parameter state as
    NAME.state.PARAM_ID.KEY), and each optimiser's param_groups, which are plain JSON."""
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, list] = {}
    for name, obj in objects.items():
        if obj is None:
            continue
        if isinstance(obj, torch.optim.Optimizer):
            state = obj.state_dict()
            groups[name] = state["param_groups"]
            for pid, values in state["state"].items():
                for key, value in values.items():
                    tensors[f"{name}.state.{pid}.{key}"] = torch.as_tensor(value)
        else:
            tensors.update({f"{name}.{k}": v for k, v in obj.state_dict().items()})
    return tensors, groups


def restore_state(objects: dict[str, Stateful | None], tensors: dict[str, torch.Tensor], groups: dict[str, list]) -> None:
    """Load what flatten_state gave back into the same objects (modules strictly)."""
    for name, obj in objects.items():
        if obj is None:
            continue
        prefix = f"{name}."
        part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if isinstance(obj, torch.optim.Optimizer):
            state: dict[int, dict] = {}
            for key, value in part.items():
                _, pid, field = key.split(".", 2)
                state.setdefault(int(pid), {})[field] = value
            obj.load_state_dict({"state": state, "param_groups": groups[name]})
        else:
            obj.load_state_dict(part, strict=True)


def save_training_state(folder: str | Path, step: int, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write a run's training state: `tensors` to a file of this save (a step can be saved twice: mid-epoch, then at
    the epoch's end), then state.json with `meta` and that file's name and content hash, then drop older files."""
    folder = Path(folder)
    name = f"state-{step:08d}-{uuid.uuid4().hex[:8]}.safetensors"
    save_tensors(folder / name, tensors)
    write_json(folder / STATE, {**meta, "tensors": name, "sha256": content_hash(tensors)})
    remove_unnamed_state(folder, name)


def load_training_state(folder: str | Path, device: str | torch.device = "cpu", tidy: bool = True
                        ) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, state.json) of the last complete save in `folder`, None when there is none. Damaged state is
    refused. With tidy (one process of a run, not every one), clears what a kill left behind: temporaries and
    tensor files state.json does not name."""
    folder = Path(folder)
    if not (folder / STATE).exists():
        return None
    meta = read_json(folder / STATE)
    name = meta.get("tensors", "state.safetensors") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not STATE_TENSORS.fullmatch(name):
        raise CheckpointError(f"{folder / STATE} names no tensor file of this run ({json.dumps(name)})")
    tensors = load_tensors(folder / name, device)
    if "sha256" in meta and content_hash(tensors) != meta["sha256"]:
        step = meta.get("progress", {}).get("step")
        raise CheckpointError(f"{folder / name} is damaged: it no longer matches the content hash {folder / STATE} "
                              f"recorded at step {step}. Start a new run in another --out.")
    if tidy:
        remove_temporaries(folder)
        remove_unnamed_state(folder, name)
    return tensors, meta


def remove_unnamed_state(folder: Path, name: str) -> None:
    """Delete the training-state tensor files other than `name`, the one state.json names."""
    for old in folder.iterdir():
        if old.name != name and STATE_TENSORS.fullmatch(old.name):
            old.unlink()
