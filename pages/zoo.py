"""Model zoo: every checkpoint as a card with what it is, what it was trained on, and how well it does."""
from pathlib import PurePath

import streamlit as st
import torch
from PIL import Image

from genmodels import checkpoint as ckpt
from genmodels.hub import dataset_title
from genmodels.metrics import METRICS
from genmodels.registry import get_family
from genmodels.sampling import default_truncation, preview_grid
from genmodels.uploads import UploadError, decode
from pages.app.common import USER_ERRORS, Entry, current, load, log, no_models_message, params, run_page

CARD_METRICS = [m for m in METRICS.values() if m.card]
PER_ROW = 2   # metrics side by side on a card a third of the page wide (at 3, "Precision ↑" was cut to "Precisi…")


def preview(entry: Entry, model) -> tuple[Image.Image, str | None]:
    """The checkpoint's preview.png, or fresh samples when it has none or it cannot be read (with why)."""
    path, problem = ckpt.resolve(entry.location) / ckpt.PREVIEW, None
    if path.is_file():
        try:  # read as an upload is: a damaged or hostile file gives a message, not an exception
            return decode(path.read_bytes())[0], None
        except UploadError as e:
            problem = f"Its preview.png cannot be shown ({e}); these are fresh samples."
    return preview_grid(model), problem


def data_line(data: dict) -> str:
    """What a checkpoint was trained on, in words: the dataset and its size, never the folder it was read from on
    the machine that trained it (config.json keeps that, in data.source)."""
    dataset = data.get("dataset", "?")
    if dataset.startswith("folder:"):
        name = f"an image folder ({PurePath(dataset.split(':', 1)[1]).name})"
    else:
        # The key too where the title does not say it (MNIST for mnist-5k), not where it only capitalises it.
        name = dataset_title(dataset) + (f" (`{dataset}`)" if dataset_title(dataset).lower() != dataset else "")
    size = f" · {data['size']:,} training images" if isinstance(data.get("size"), int) else ""
    subset = " · **trained on a subset of the dataset**" if data.get("subset") else ""
    return f"**Data:** {name}{size}{subset}"


def card(entry: Entry, device: str) -> None:
    """One checkpoint's card, drawn in isolation: whatever its files make go wrong replaces this card with a
    message saying what, and the other cards are still drawn. A broken checkpoint shows no preview."""
    slot = st.empty()
    try:
        if entry.error:
            raise ckpt.CheckpointError(entry.error)
        card_body(entry, device, slot)
    except Exception as e:  # noqa: BLE001  (one malformed file costs one card, never the page)
        if not isinstance(e, USER_ERRORS):
            log.exception("the card of %s failed", entry.key)
        with slot.container(border=True):
            st.markdown(f"**{entry.key}**")
            st.error(f"This checkpoint cannot be used: {e}")


def card_body(entry: Entry, device: str, slot) -> None:
    family = get_family(entry.family)
    model = load(entry, device)
    image, problem = preview(entry, model)
    with slot.container(border=True):
        # The name first on its line: a line that wraps breaks at a space after it, not at its hyphen.
        st.markdown(f"### {family.title}\n`{entry.key}` · {family.paper}")
        st.image(image, width="stretch")
        if problem:
            st.warning(problem)
        st.caption(family.summary)
        training = entry.config.get("training", {})
        st.markdown(data_line(entry.config.get("data", {})))
        st.markdown(f"**Parameters:** {params(model):,} · latent {model.latent_dim} · "
                    f"{'conditional on ' + str(model.num_classes) + ' classes' if model.num_classes else 'unconditional'}")
        if (own := default_truncation(model)) != 1.0:
            st.markdown(f"**Sampling:** at truncation {own:g} (Brock et al. 2019), its preview and metrics too; the "
                        "Sample page's slider goes back to 1")
        if training:
            steps = training.get("steps")
            st.markdown(f"**Trained:** {training.get('epochs', 0):.3g} epochs, "
                        f"{f'{steps:,}' if isinstance(steps, int) else '?'} steps, "
                        f"{training.get('wall_seconds', 0) / 60:.1f} min on {training.get('device_name', training.get('device', '?'))}")
        metrics = (ckpt.read_optional_json(entry.location, ckpt.METRICS) or {}).get("metrics", {})
        for start in range(0, len(CARD_METRICS), PER_ROW):
            for col, metric in zip(st.columns(PER_ROW), CARD_METRICS[start:start + PER_ROW]):
                m = metrics.get(metric.name)
                col.metric(metric.header, metric.format(m["value"] if m else None),
                           help=m.get("protocol") if m else "Not measured for this checkpoint yet.")


def body() -> None:
    sel = current()
    st.title("Model zoo")
    st.markdown(
        "Classic image generators, one interface: each turns a random code **z** (and, for conditional "
        "models, a class label) into an image. Pick a model in the sidebar, then **Sample** it, walk its "
        "**Latent explorer**, ask a conditional model for digits, **Reconstruct** held-out images or your own "
        "photo, **Draw** a digit for every model to read and redraw, and compare their **Metrics**. SSIM and MSE "
        "measure how well held-out images are reproduced (↑ / ↓: higher / lower is better); FID compares the "
        "statistics of generated and real images (↓).")
    device_name = f"GPU ({torch.cuda.get_device_name()})" if sel.device == "cuda" else "CPU"
    st.caption(f"Running on **{device_name}**; switch the device in the sidebar.")
    if not sel.usable():
        no_models_message(sel)
        return
    per_row = 3
    dataset = sel.entry.dataset if sel.entry else None
    entries = sorted(sel.entries, key=lambda e: e.dataset != dataset)  # the sidebar's dataset first, in key order
    for start in range(0, len(entries), per_row):
        for col, entry in zip(st.columns(per_row), entries[start:start + per_row]):
            with col:
                card(entry, sel.device)


run_page(body)
