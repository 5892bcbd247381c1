"""The latent explorer's in-browser half: a Streamlit component (v1, an iframe that the app's own server serves from
frontend/) that runs the exported generator with ONNX Runtime Web and redraws on every slider input event.

frontend/explorer.js describes the messages. frontend/vendor/ holds ONNX Runtime Web (fetched and verified by
fetch_ort.py in `make setup` and the Dockerfile; not in git), frontend/models/ the ONNX exports of the checkpoints
(genmodels.export, made on demand; not in git, not in the image). Everything the iframe loads comes from here.
"""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from genmodels.export import input_names, onnx_file
from pages.app.common import freeze_heap

from .fetch_ort import SHA256 as RUNTIME_FILES

FRONTEND = Path(__file__).resolve().parent / "frontend"
VENDOR = FRONTEND / "vendor"
MODELS = FRONTEND / "models"

_component = components.declare_component("latent_explorer", path=str(FRONTEND))


def runtime_missing() -> str | None:
    """Why this server cannot offer the in-browser explorer (its copy of ONNX Runtime Web is missing), or None."""
    missing = [name for name in RUNTIME_FILES if not (VENDOR / name).is_file()]
    if missing:
        return (f"this server has no copy of ONNX Runtime Web ({', '.join(missing)} missing from {VENDOR}; "
                "`make setup` fetches it)")
    return None


# Exports run one at a time in a thread of their own: a page waits at most QUICK seconds for one (an export found on
# disk is ready by then; a new one takes seconds to a minute), and one that a visitor leaves behind does not hold up
# the next page they open.
_EXPORTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-export")
_EXPORTS: dict[str, tuple[float, Future]] = {}  # checkpoint location -> (weights mtime, its export)
_LOCK = threading.Lock()
QUICK = 1.0


def model_address(location: str, mtime: float, start: bool = True) -> str | None:
    """The address of the checkpoint's ONNX export, relative to the component's page, or None while it is being made
    (started by the first call for this `mtime` of its weights, if `start`) or not started. A failed export raises
    its error."""
    with _LOCK:
        made_for, future = _EXPORTS.get(location, (None, None))
        if future is None or made_for != mtime:
            if not start:
                return None
            future = _EXPORTER.submit(export, location)
            _EXPORTS[location] = (mtime, future)
    wait([future], timeout=QUICK)
    return f"models/{future.result().name}" if future.done() else None


def export(location: str) -> Path:
    """The checkpoint's ONNX file, then the heap frozen: the first export imports the exporter's modules, which every
    later collection after a script run would otherwise walk."""
    path = onnx_file(location, MODELS)
    freeze_heap()
    return path


def identity(*parts) -> str:
    """A short fingerprint of what the component's controls are built from."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def explorer(model, *, source: str, address: str | None, show: bool, z: list[float], names: list[str],
             directions: list[list[float]], values: list[float], classes: list[str], label: int, slider: dict,
             scale: int, key: str, on_change) -> dict | None:
    """Draw the component for `model` (from checkpoint `source`): its controls when `show`, else a line saying it is
    loading the model out of sight while the server's sliders stand in. Returns its last report of a release,
    {values, label, z}, when it was made with these controls; else None. `on_change` hears every message."""
    ident = identity(source, z, names, directions, classes)
    # While the export is being made, the browser asks after it once a second. Streamlit sends a component its args
    # only when they change, so the answer echoes the count of the question: each one gets a reply to time the next.
    asked = (st.session_state.get(key) or {}).get("asked", 0) if address is None else 0
    value = _component(
        model=address, asked=asked, show=show, inputs=list(input_names(model)), shape=list(model.image_shape), z=z,
        names=names, directions=directions, values=values, classes=classes, label=label, lo=slider["min_value"],
        hi=slider["max_value"], step=slider["step"], scale=scale, identity=ident, key=key, default=None,
        on_change=on_change)
    if isinstance(value, dict) and value.get("identity") == ident and "z" in value:
        return value
    return None
