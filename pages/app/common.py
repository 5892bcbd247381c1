"""What every page shares: the checkpoint list, the sidebar's choice, cached loading, images and error handling.

The entry script (pages/app/main.py) draws the sidebar once per run with `sidebar()`; a page reads its choice
with `current()`. Everything here talks to models only through the generator interface and genmodels.checkpoint.
"""
from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

from genmodels import checkpoint as ckpt
from genmodels.config import WEIGHTS_ENV, ConfigError, shown_path, weights_root
from genmodels.data import DatasetUnavailable, load_data
from genmodels.device import devices
from genmodels.explore import LabelTextError, principal_directions
from genmodels.hub import dataset_title
from genmodels.metrics.classifier import load_classifier
from genmodels.models import SHOWCASE
from genmodels.registry import get_family
from genmodels.sampling import GRID_PADDING, grid
from genmodels.uploads import UploadError

log = logging.getLogger("genmodels.app")

SWEEPS_ENV = "GENMODELS_SWEEPS"
NOT_MODELS = {"classifier", "stats"}   # weights/<dataset>/ folders that hold helpers, not generators
FIRST_DATASET = "mnist"                 # what a first visit opens on, with its best model by FID-10k, when it ships
N_DIRECTIONS = 6                        # the latent explorer's principal-direction sliders
PUBLISHED_N = 10_000                    # samples of the FID that picks the opening model (DESIGN.md: compare at equal n)
SELECTION = "_selection"               # session_state key of the sidebar's choice in the current run
YOUR_RUNS = "your_runs"                # session_state: {checkpoint folder: "your run N"}, runs trained on the Train page
USER_ERRORS = (ckpt.CheckpointError, ConfigError, DatasetUnavailable, UploadError, LabelTextError)
# Torch threads of a page's run: all cores but one, as a trainer takes by default (train.runs.default_threads).
# With as many threads as cores, any other busy process (a trainer, another visitor's page) makes OpenMP's threads wait
# for each other: on this 2-core machine, beside a training run, the Draw page's projection through five GANs took
# 29-35 s on two threads and 2.6 s on one.
APP_THREADS = max(1, (os.cpu_count() or 1) - 1)
TRAIN_HINT = ("Train one (a minute on a laptop CPU) and copy its checkpoint folder in:\n\n"
              "```\npython -m train mnist dcgan --max-steps 300 --out runs/mnist/dcgan\n"
              "mkdir -p {root}/mnist && cp -r runs/mnist/dcgan/checkpoint {root}/mnist/dcgan\n```\n\n"
              "or add a model hub repo id in the sidebar.")


def freeze_heap() -> None:
    """Take what is alive now out of every later garbage collection. Streamlit collects all garbage after every script
    run (runner.postScriptGC), and once torch is imported a full collection walks some 400,000 long-lived objects:
    0.3 s of CPU on every rerun, each slider release included (AVX2 CPU, docs/benchmarks.md). Called once the server
    has started and after each ONNX export, whose first imports the exporter's modules; the garbage is collected
    first, so nothing that is already garbage is kept."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Entry:
    """One checkpoint the app knows about; `error` says why it cannot be used."""
    key: str                # "mnist/dcgan", or what was typed in the sidebar
    location: str           # local folder or hub repo id
    config: dict | None
    error: str | None = None

    @property
    def dataset(self) -> str:
        return (self.config or {}).get("data", {}).get("dataset") or "unknown"

    @property
    def family(self) -> str:
        return (self.config or {}).get("family", "?")

    @property
    def title(self) -> str:
        try:
            return get_family(self.family).title
        except ConfigError:
            return self.family

    @property
    def num_classes(self) -> int:
        return int((self.config or {}).get("model", {}).get("num_classes", 0))

    @property
    def data_classes(self) -> list[str]:
        """The class names of the data it was trained on, conditional model or not ([] when unlabelled)."""
        return (self.config or {}).get("data", {}).get("class_names") or []

    @property
    def class_names(self) -> list[str]:
        """The names of the classes a conditional model takes."""
        names = self.data_classes
        return names if len(names) == self.num_classes else [str(i) for i in range(self.num_classes)]

    @property
    def label(self) -> str:
        return f"{self.title} ({self.key})"

    @property
    def name(self) -> str:
        """The title, with the key where the title and the dataset do not say which checkpoint it is (a visitor's
        run, a folder or hub repo added in the sidebar): for page titles."""
        return self.title if self.key == f"{self.dataset}/{self.family}" else self.label


@dataclass
class Selection:
    entries: list[Entry]        # every checkpoint found, usable or not
    entry: Entry | None         # the sidebar's model; None when there is none
    device: str

    def usable(self, dataset: str | None = None) -> list[Entry]:
        return [e for e in self.entries if e.error is None and (dataset is None or e.dataset == dataset)]


def sweeps_root() -> Path:
    """Where `python -m train.sweep` writes by default: runs/sweeps/SPEC_NAME/results.json."""
    return Path(os.environ.get(SWEEPS_ENV, "runs/sweeps"))


def read_entry(key: str, location: str) -> Entry:
    try:  # config.json, metrics.json and history.json by their formats: what the pages read is sound
        return Entry(key, location, ckpt.check_folder(location))
    except USER_ERRORS as e:
        return Entry(key, location, None, str(e))


def discover(root: Path) -> list[Entry]:
    """weights/<dataset>/<model>/ folders; one without a config.json gets an entry that says so."""
    found = sorted(p for p in root.glob("*/*") if p.is_dir() and p.name not in NOT_MODELS and not p.name.startswith("."))
    return [read_entry(f"{p.parent.name}/{p.name}", str(p)) for p in found]


def stamp(location: str) -> float:
    """Modification time of the weights, so a checkpoint retrained in place is reloaded rather than served stale."""
    path = Path(location) / ckpt.WEIGHTS
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def cached_model(location: str, device: str, mtime: float):
    return ckpt.load(location, device)


def load(entry: Entry, device: str):
    """The entry's generator, loaded once per (checkpoint, device) for all sessions."""
    if entry.error:
        raise ckpt.CheckpointError(entry.error)
    return cached_model(entry.location, device, stamp(entry.location))


@st.cache_resource(max_entries=16, show_spinner="Finding principal directions (GANSpace)…")
def cached_directions(location: str, device: str, mtime: float, _model):
    return principal_directions(_model, k=N_DIRECTIONS, n_samples=1024)


def directions(entry: Entry, device: str, model):
    """The latent explorer's GANSpace directions of the entry's generator, found once per checkpoint for all sessions
    (here rather than in the page, whose functions Streamlit keys by the page's script: pages.app.warm fills it)."""
    return cached_directions(entry.location, device, stamp(entry.location), model)


@st.cache_resource(max_entries=4, show_spinner="Loading held-out images…")
def heldout(dataset: str, channels: int, size: int):
    """The held-out split of a dataset, fitted to a model's image shape."""
    return load_data(dataset, "test", size, channels)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_classifier(dataset: str, device: str, root: str, mtime: float):
    """(classifier, None), or (None, why not) when no classifier ships for this dataset."""
    try:
        return load_classifier(dataset, device, root=root), None
    except ckpt.CheckpointError as e:
        return None, str(e)


def classifier(dataset: str, device: str):
    """The dataset's shipped classifier from the app's weights folder: (classifier, None) or (None, why not)."""
    if dataset.startswith("folder:"):  # a visitor's images: no classifier knows their classes
        return None, "no classifier is trained for an image folder's classes"
    root = weights_root()
    return cached_classifier(dataset, device, str(root), stamp(str(root / dataset / "classifier")))


def add_location() -> None:
    """on_change of the sidebar's text box: remember a typed folder or hub repo id for this session."""
    typed = st.session_state.get("new_location", "").strip()
    extra = st.session_state.setdefault("extra_locations", [])
    if typed and typed not in extra:
        extra.append(typed)
    st.session_state["new_location"] = ""


def sidebar() -> Selection:
    """Draw the shared sidebar (dataset, model, device) and return its choice; the entry script calls this once."""
    torch.set_num_threads(APP_THREADS)  # each run is a thread of its own, which takes the count set last
    root = weights_root()
    entries = discover(root) + [read_entry(loc, loc) for loc in st.session_state.get("extra_locations", [])]
    # A run removed since (the runs folder keeps under a size cap) leaves the list; the Train page says so.
    entries += [read_entry(name, loc) for loc, name in st.session_state.get(YOUR_RUNS, {}).items() if Path(loc).is_dir()]
    usable = [e for e in entries if e.error is None]
    with st.sidebar:
        entry = None
        if usable:
            entry = pick_model(usable)
        options = devices()
        if st.session_state.get("device") not in options:
            st.session_state["device"] = options[0]
        device = st.radio("Device", options, key="device", horizontal=True,
                          help="GPU (cuda) when this machine has one, else CPU.")
        st.text_input("Add a checkpoint", key="new_location", on_change=add_location,
                      placeholder="folder path or hub repo id (user/name)",
                      help="A local checkpoint folder, or a model hub repo id; it is added for this session.")
        for e in entries:
            if e.error and e.location in st.session_state.get("extra_locations", []):
                st.error(f"Could not add {e.key}: {e.error}")
        # Relative to the app's folder where it lies inside it: the machine's own path means nothing in a screenshot.
        st.caption(f"Checkpoints from `{shown_path(root)}` (set {WEIGHTS_ENV} to change).")
    sel = Selection(entries, entry, device)
    st.session_state[SELECTION] = sel
    return sel


def current() -> Selection:
    """The sidebar's choice in this run. The entry script runs before every page, so it has drawn the sidebar."""
    return st.session_state[SELECTION]


def first_dataset(usable: list[Entry]) -> str:
    datasets = {e.dataset for e in usable}
    return FIRST_DATASET if FIRST_DATASET in datasets else min(datasets)


def first_entry(root: Path) -> Entry | None:
    """What a first visit opens on among the checkpoints under `root` (as the sidebar picks it); None if none loads."""
    usable = [e for e in discover(root) if e.error is None]
    if not usable:
        return None
    dataset = first_dataset(usable)
    return opening_model([e for e in usable if e.dataset == dataset])


def pick_model(usable: list[Entry]) -> Entry:
    datasets = sorted({e.dataset for e in usable})
    if st.session_state.get("dataset") not in datasets:  # a first visit, or its checkpoints were removed since
        st.session_state["dataset"] = first_dataset(usable)
    # An image folder (a visitor's upload among them) by its name, never its place on the server.
    dataset = st.selectbox("Dataset", datasets, key="dataset",
                           format_func=lambda d: dataset_title(d) if d.startswith("folder:") else d)
    by_key = {e.key: e for e in usable if e.dataset == dataset}
    if st.session_state.get("model") not in by_key:
        st.session_state["model"] = opening_model(list(by_key.values())).key
    return by_key[st.selectbox("Model", list(by_key), key="model", format_func=lambda k: by_key[k].label)]


def published_fid(entry: Entry) -> float | None:
    """The FID a checkpoint's metrics.json holds at the published protocol (10,000 samples against the test split),
    the only FID comparable across models; None when it was not measured so (or the folder is not local)."""
    if not Path(entry.location).is_dir():
        return None
    try:
        fid = (ckpt.read_optional_json(entry.location, ckpt.METRICS) or {}).get("metrics", {}).get("fid", {})
    except ckpt.CheckpointError:
        return None
    return fid.get("value") if fid.get("n") == PUBLISHED_N and fid.get("ref_split") == "test" else None


def opening_model(entries: list[Entry]) -> Entry:
    """What a first visit shows for a dataset: its best model by FID-10k, so the app opens on its best samples;
    the showcase family where no model was measured so."""
    measured = [(fid, e.key, e) for e in entries if (fid := published_fid(e)) is not None]
    if measured:
        return min(measured)[2]
    return next((e for e in entries if e.family == SHOWCASE), entries[0])


def require_model(sel: Selection) -> tuple[Entry, object]:
    """The sidebar's model, loaded; stops the page with a message when there is none."""
    if sel.entry is None:
        no_models_message(sel)
        st.stop()
    return sel.entry, load(sel.entry, sel.device)


def no_models_message(sel: Selection) -> None:
    root = shown_path(weights_root())
    st.info(f"**No models yet.** No usable checkpoint was found in `{root}`.\n\n" + TRAIN_HINT.format(root=root))
    for e in sel.entries:
        if e.error:
            st.error(f"{e.key}: {e.error}")


def run_page(body) -> None:
    """Run a page body; errors become a message on the page, never a traceback, and other pages keep working."""
    try:
        body()
    except USER_ERRORS as e:
        st.error(str(e))
    except Exception as e:  # noqa: BLE001  (the page must survive anything a model or file throws)
        log.exception("page failed")
        st.error(f"Something went wrong on this page: {type(e).__name__}: {e}. "
                 "The other pages still work; the server log has the details.")


def picture(images: torch.Tensor, nrow: int = 8, width: int = 640):
    """A grid of images in [-1, 1], upscaled with square pixels to about `width`, so small digits stay crisp."""
    cols = max(1, min(nrow, images.shape[0]))
    natural = cols * (images.shape[-1] + GRID_PADDING) + GRID_PADDING
    return grid(images, nrow=nrow, scale=max(1, min(8, width // natural)))


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())
