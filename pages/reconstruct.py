"""Reconstruct: held-out or uploaded images through the VAE (encode, decode) and a GAN (projection), scored by
SSIM and MSE; and the VAE's 2-D map of the held-out set, where clicking a point decodes it."""
import hashlib
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative
import streamlit as st
import torch

from genmodels.data import DatasetUnavailable
from genmodels.explore import project_2d
from genmodels.metrics.image import mse, ssim
from genmodels.metrics.projection import project
from genmodels.registry import get_family
from genmodels.uploads import FORMAT_NAMES, MAX_BYTES, UploadError, prepare_upload
from pages.app.common import Entry, current, heldout, load, picture, run_page

N_SHOWN = 8
MAP_POINTS = 1000   # few enough for an SVG scatter, whose points can be clicked
# Ten saturated colours that all stand out on white (the theme's tenth, a light grey, hid class 9's points).
CLASS_COLOURS = qualitative.D3


def scored(label: str, targets: torch.Tensor, outputs: torch.Tensor) -> None:
    """A row of outputs, each captioned with its SSIM and MSE against its target."""
    s, m = ssim(outputs, targets).tolist(), mse(outputs, targets).tolist()
    st.markdown(f"**{label}** · mean SSIM {sum(s) / len(s):.3f}, mean MSE {sum(m) / len(m):.4f} "
                "(under each image: SSIM · MSE)")
    st.image([picture(o[None], nrow=1, width=96) for o in outputs],
             caption=[f"{a:.2f} · {b:.3f}" for a, b in zip(s, m)], width=96)


@dataclass(frozen=True)
class Inputs:
    """The images to reproduce, drawn at any model's size: a dataset's models may differ in it (32 and 64 px)."""
    key: str                          # names them, for the cached projection
    dataset: str
    labels: torch.Tensor | None       # None for an upload
    index: torch.Tensor | None = None  # held-out images: their indices in the held-out split
    upload: bytes | None = None       # an upload: the file

    def at(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """[N, C, S, S] in [-1, 1] for a model of this image shape, converted as its training data was."""
        if self.upload is not None:
            return prepare_upload(self.upload, shape, self.dataset).image
        return heldout(self.dataset, *shape[:2]).batch(self.index)[0]


def inputs(entry: Entry, model) -> Inputs | None:
    """The images the page reproduces, or None when there is nothing to show."""
    source = st.radio("Images", ["Held-out images", "Upload an image"], horizontal=True, key="rec_source")
    if source == "Upload an image":
        file = st.file_uploader(f"An image file: {FORMAT_NAMES}, up to {MAX_BYTES // 2**20} MB; it is converted like "
                                "the training data",
                                key="rec_upload")
        if file is None:
            st.info("Upload a photo or drawing: a digit on paper works for MNIST models."
                    if model.image_shape[0] == 1 else "Upload a photo: it is cropped to a square in the middle.")
            return None
        data = file.getvalue()
        try:
            prepared = prepare_upload(data, model.image_shape, entry.dataset)
        except UploadError as e:
            st.error(f"Cannot use {file.name}: {e}")
            return None
        st.caption("Converted: " + "; ".join(prepared.notes) + ".")
        return Inputs(hashlib.sha1(data).hexdigest(), entry.dataset, None, upload=data)
    data = heldout(entry.dataset, *model.image_shape[:2])
    if not len(data):  # a folder of one image holds none out
        st.info("This model's dataset holds out no images: upload one instead.")
        return None
    n = min(N_SHOWN, len(data))
    start = st.slider("Which held-out images", 0, len(data) - 1, 0, key="rec_start",
                      help="An offset into the held-out set; the images shown are spread across it, so across "
                           "classes.") if len(data) > n else 0
    index = (start + torch.arange(n) * (len(data) // n)) % len(data)
    return Inputs(f"heldout-{entry.dataset}-{start}", entry.dataset, data.labels[index], index=index)


def vae_section(vae_entry: Entry, device: str, images: torch.Tensor) -> None:
    vae = load(vae_entry, device)
    with torch.no_grad():
        mu, _ = vae.encode(images.to(device))
        recon = vae.decode(mu).cpu()
    scored(f"VAE ({vae_entry.key}): decode(encode(x)), the posterior mean", images, recon)


def gan_section(gan_entry: Entry, device: str, chosen: Inputs) -> None:
    gan = load(gan_entry, device)
    images, labels, key = chosen.at(gan.image_shape), chosen.labels, chosen.key
    if gan.num_classes and labels is None:  # an upload: the user says which class to look for
        label = st.selectbox("Class to project the upload as", range(gan.num_classes),
                             format_func=lambda i: gan_entry.class_names[i], key="rec_upload_class")
        labels = torch.full((images.shape[0],), label)
        key = f"{key}-class{label}"
    steps = st.slider("Projection steps", 50, 400, 200, 50, key="rec_steps")
    cache_key = ("projection", gan_entry.key, device, key, steps)
    if st.button(f"Project through {gan_entry.title}", key="rec_project"):
        bar = st.progress(0.0, text=f"Optimising z to reproduce each image ({steps} steps)…")
        _, out = project(gan, images.to(device), labels=labels if gan.num_classes else None, steps=steps,
                         callback=lambda i, n, loss: bar.progress(i / n, text=f"step {i}/{n}, pixel MSE {loss:.4f}"))
        bar.empty()
        st.session_state["rec_projection"] = (cache_key, out.detach().cpu())
    stored = st.session_state.get("rec_projection")
    if stored and stored[0] == cache_key:
        scored(f"{gan_entry.title} ({gan_entry.key}): the closest image the generator can make", images, stored[1])
    else:
        st.caption("A GAN has no encoder: projection searches for the z whose image is closest (as StyleGAN2's "
                   "projector does). Press the button to run it.")


def vae_map(vae_entry: Entry, device: str) -> None:
    st.subheader("The VAE's map of the held-out set")
    vae = load(vae_entry, device)
    data = heldout(vae_entry.dataset, *vae.image_shape[:2])
    n = min(MAP_POINTS, len(data))
    if n < 2:  # two principal axes need two points
        st.caption("Too few held-out images to draw a map.")
        return
    images, labels = data.batch(torch.arange(n))
    mu = vae.encode_means(images, batch_size=500)
    coords, share = project_2d(mu)
    axis = "z" if vae.latent_dim <= 2 else "PC"
    names = data.class_names or ["all"]
    fig = go.Figure()
    for c, name in enumerate(names):
        idx = (labels == c).nonzero().flatten()
        fig.add_trace(go.Scatter(x=coords[idx, 0].tolist(), y=coords[idx, 1].tolist(), mode="markers", name=name,
                                 customdata=idx.tolist(),
                                 marker=dict(size=6, opacity=0.8, color=CLASS_COLOURS[c % len(CLASS_COLOURS)])))
    # A top margin for the chart's toolbar, which otherwise sits over the legend's title.
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="class",
                      xaxis_title=f"{axis}1" + (f" ({share[0]:.0%} of variance)" if axis == "PC" else ""),
                      yaxis_title=f"{axis}2" + (f" ({share[1]:.0%} of variance)" if axis == "PC" else ""))
    left, right = st.columns([3, 1])
    with left:
        st.caption(f"Each point is one held-out image's posterior mean"
                   f"{', projected onto its two principal axes' if axis == 'PC' else ''}. Click a point to decode it.")
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="vae_map")
    points = event.selection.points if event else []
    clicked = points[0]["customdata"] if points else None
    clicked = clicked[0] if isinstance(clicked, list) else clicked
    # Only a new click moves the index, so typing an index still works while a point stays selected.
    if clicked is not None and clicked != st.session_state.get("rec_map_clicked"):
        st.session_state["rec_map_clicked"] = st.session_state["rec_map_index"] = int(clicked)
    with right:
        i = st.number_input("Held-out image", 0, n - 1, key="rec_map_index",
                            help="Set by clicking a point, or type an index.")
        with torch.no_grad():
            decoded = vae.decode(mu[i:i + 1].to(device)).cpu()
        st.image(picture(torch.cat([images[i:i + 1], decoded]), nrow=2, width=240),
                 caption=f"#{i} ({names[labels[i]] if data.class_names else 'unlabelled'}): original · decoded mean")


def body() -> None:
    sel = current()
    st.title("Reconstruct")
    st.caption("How well can each model reproduce an image it never saw? SSIM (1 = identical structure) and "
               "MSE (0 = identical pixels) are computed on images scaled to [0, 1].")
    if sel.entry is None:
        st.info("No models yet: see the Model zoo page.")
        return
    dataset = sel.entry.dataset
    models = sel.usable(dataset)
    vaes = [e for e in models if get_family(e.family).has_encoder]
    gans = [e for e in models if not get_family(e.family).has_encoder]
    reference = load(vaes[0] if vaes else sel.entry, sel.device)
    try:
        chosen = inputs(vaes[0] if vaes else sel.entry, reference)
    except DatasetUnavailable as e:
        st.warning(f"Held-out images are not available here ({e}); uploads still work.")
        chosen = None
    if chosen is not None:
        images = chosen.at(reference.image_shape)
        st.markdown("**Input**")
        st.image([picture(im[None], nrow=1, width=96) for im in images], width=96)
        if vaes:
            vae_section(vaes[0], sel.device, images)
        if gans:
            keys = [e.key for e in gans]
            by_key = {e.key: e for e in gans}
            default = keys.index(sel.entry.key) if sel.entry.key in keys else 0
            gan = by_key[st.selectbox("GAN to project through", keys, index=default,
                                      format_func=lambda k: by_key[k].label, key="rec_gan")]
            gan_section(gan, sel.device, chosen)
    if vaes:
        st.divider()
        try:
            vae_map(vaes[0], sel.device)
        except DatasetUnavailable:  # said above, where the held-out images were asked for
            st.caption("The VAE's map of the held-out set needs the held-out images.")


run_page(body)
