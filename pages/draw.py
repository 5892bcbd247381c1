"""Draw: a digit drawn with the mouse or a finger, converted like an uploaded image, and on one screen what the
classifier reads, the VAE's reconstruction, each GAN's projection and the conditional models' redraws."""
import hashlib

import numpy as np
import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

from genmodels.data import DatasetUnavailable
from genmodels.metrics.image import mse, ssim
from genmodels.metrics.projection import project
from genmodels.registry import get_family
from genmodels.sampling import generate, latents
from genmodels.uploads import TooSmall, UploadError, decode, prepare_upload, to_mode
from pages.app.common import Entry, classifier, current, heldout, load, picture, run_page

CANVAS = 280            # px a side: ten screen pixels per pixel of a 28x28 digit
STROKE = 22             # px: MNIST's pen is about 2-3 of the 20 pixels a digit spans
STYLES = 10             # seeds per conditional redraw
UNSURE = 0.5            # below this top probability the classifier's reading is called unsure
INKY = 0.999            # a drawing with more ink than this share of the held-out images is called a scribble
# A drawing is projected while the visitor waits: from the best of CANDIDATES random codes, which start close enough
# to need few steps. Measured on 8 MNIST test digits through the five MNIST GANs (2 CPU threads): 60 steps so took
# 1.7 s a digit for SSIM 0.923 / MSE 0.0075, where 100 steps from random codes took 2.4 s for 0.912 / 0.0088.
PROJECTION_STEPS = 60
CANDIDATES = 256
SHOWN = 140             # px: each model's image and its caption (one line: the model, SSIM · MSE)


def clear() -> None:
    """A new key gives a new, empty canvas; the toolbar's bin empties the old one too."""
    st.session_state["draw_clears"] = st.session_state.get("draw_clears", 0) + 1


def drawing() -> bytes | None:
    """The canvas as PNG bytes, or None while nothing is drawn on it."""
    canvas = st_canvas(stroke_width=STROKE, stroke_color="#000000", background_color="#ffffff", height=CANVAS,
                       width=CANVAS, drawing_mode="freedraw", return_image_data=True,
                       key=f"draw_canvas_{st.session_state.get('draw_clears', 0)}")
    st.button("Clear the canvas", icon=":material/delete:", on_click=clear, key="draw_clear")
    if not (canvas.json_data or {}).get("objects"):
        return None
    return canvas.image_bytes


def ink_share(png: bytes) -> float:
    """The share of the canvas drawn over (dark), its transparent background counted as the white page."""
    return float((np.asarray(to_mode(decode(png)[0], "L")) < 128).mean())


@st.cache_data(max_entries=4, show_spinner=False)
def ink_limit(dataset: str, channels: int, size: int) -> float:
    """The share of pixels brighter than mid-grey that only 1 in 1,000 held-out images exceeds."""
    images = heldout(dataset, channels, size).images.float()
    return float(torch.quantile((images > 127.5).flatten(1).float().mean(1), INKY))


def reading(entry: Entry, device: str, image: torch.Tensor) -> int | None:
    """Show what the shipped classifier reads and how sure it is; returns the class, or None with no classifier."""
    net, why_not = classifier(entry.dataset, device)
    if net is None:
        st.info(f"No classifier reads the drawing here ({why_not}).")
        return None
    with torch.no_grad():
        probs = net(image.to(device)).softmax(1)[0].cpu()
    top = int(probs.argmax())
    names = entry.data_classes if len(entry.data_classes) == len(probs) else [str(i) for i in range(len(probs))]
    st.markdown(f"The classifier reads **{names[top]}**, {probs[top]:.0%} sure.")
    if probs[top] < UNSURE:
        st.warning(f"The classifier is unsure what this is: its best guess, {names[top]}, gets only "
                   f"{probs[top]:.0%}. A scribble, or a digit drawn very differently from the training set?")
    st.bar_chart({"class": names, "probability": probs.tolist()}, x="class", y="probability", height=200,
                 x_label="class", y_label="probability")
    return top


def scribble_note(dataset: str, image: torch.Tensor) -> None:
    """Warn when the drawing carries more ink than almost every real image of the dataset."""
    try:
        limit = ink_limit(dataset, image.shape[1], image.shape[-1])
    except DatasetUnavailable:  # without the held-out set there is nothing to compare with
        return
    if (image > 0).float().mean() > limit:
        st.warning(f"This looks like a scribble: more of it is ink than in {INKY:.1%} of the held-out images. "
                   "The models below still do their best with it.")


def reproductions(models: list[Entry], device: str, image: torch.Tensor, label: int | None, key: str) -> None:
    """The VAE's reconstruction at once; each GAN's projection when asked (it takes seconds per model)."""
    vaes = [e for e in models if get_family(e.family).has_encoder]
    gans = [e for e in models if not get_family(e.family).has_encoder]
    shown: list[tuple[Entry, torch.Tensor]] = []
    for e in vaes:
        vae = load(e, device)
        with torch.no_grad():
            shown.append((e, vae.decode(vae.encode(image.to(device))[0]).cpu()))
    projected = st.session_state.get("draw_projections")
    if gans and st.button(f"Project through the {len(gans)} GAN{'s' * (len(gans) > 1)}", key="draw_project",
                          help=f"A GAN has no encoder: projection searches for the z whose image is closest "
                               f"({PROJECTION_STEPS} steps of Adam on z from the best of {CANDIDATES} random codes, "
                               "as StyleGAN2's projector does)."):
        bar = st.progress(0.0, text="Projecting…")
        outputs = {}
        for i, e in enumerate(gans):
            gan = load(e, device)
            labels = torch.tensor([label if label is not None else 0]) if gan.num_classes else None

            def tick(step: int, steps: int, loss: float, i: int = i, e: Entry = e) -> None:
                bar.progress((i * (steps + 1) + step + 1) / (len(gans) * (steps + 1)),
                             text=f"Projecting through {e.title} ({e.key}), GAN {i + 1} of {len(gans)}: "
                                  f"step {step} of {steps}")

            outputs[e.key] = project(gan, image.to(device), labels=labels, steps=PROJECTION_STEPS,
                                     candidates=CANDIDATES, callback=tick)[1].cpu()
        bar.empty()
        projected = st.session_state["draw_projections"] = (key, outputs)
    if projected and projected[0] == key:
        shown += [(e, projected[1][e.key]) for e in gans if e.key in projected[1]]
    elif gans:
        st.caption("Each GAN can also search for its closest image to the drawing: press the button.")
    if not shown:
        return
    st.markdown("**Reproduced by each model** (under each image: SSIM · MSE against the drawing, "
                "1 and 0 for a perfect copy)")
    cols = st.columns(max(len(shown), 4))
    for col, (e, out) in zip(cols, shown):
        col.image(picture(out, nrow=1, width=SHOWN), width=SHOWN,
                  caption=f"{e.name}: {ssim(out, image).item():.2f} · {mse(out, image).item():.3f}")


def redraws(models: list[Entry], device: str, label: int) -> None:
    """Each conditional model draws the class read from the drawing, once per seed."""
    for e in [m for m in models if m.num_classes]:
        model = load(e, device)
        images = generate(model, latents(model, STYLES, seed=0), torch.full((STYLES,), label))
        st.image(picture(images, nrow=STYLES, width=STYLES * 72),
                 caption=f"{e.title} ({e.key}) draws {e.class_names[label]} in {STYLES} styles: seeds 0-{STYLES - 1}")


def body() -> None:
    sel = current()
    st.title("Draw")
    if sel.entry is None:
        st.info("No models yet: see the Model zoo page.")
        return
    dataset = sel.entry.dataset
    if load(sel.entry, sel.device).image_shape[0] != 1:
        st.info(f"**Draw is for the grayscale models** (digits, clothes): they read one dark pen stroke on a blank "
                f"page. {sel.entry.name} draws colour images, which a sketch does not resemble: pick an MNIST or "
                "Fashion-MNIST model in the sidebar, or upload a photo on the Reconstruct page.")
        return
    models = sel.usable(dataset)
    digits = sel.entry.data_classes == [str(i) for i in range(10)]
    st.caption(f"Draw {'a digit' if digits else 'one of the classes of ' + dataset} in the box with the mouse or a "
               "finger. It is converted as an uploaded image would be, then read by the classifier, reconstructed "
               f"by the VAE, projected through the GANs and redrawn by the conditional models ({dataset} models).")
    st.space("small")  # room for the canvas's toolbar, which shows above it on hover, over what is there
    left, right = st.columns([1, 1])
    with left:
        png = drawing()
    if png is None:
        right.info(f"Draw {'a digit' if digits else 'something'} in the box: the models answer when you lift the pen.")
        return
    reference = load(models[0], sel.device)
    try:
        image = prepare_upload(png, reference.image_shape, dataset)
    except TooSmall:
        right.warning("**Draw it larger**, filling most of the box: a drawing this small would be blown up into a "
                      "blob to fill the frame the models read.")
        return
    except UploadError as e:
        right.info("The box is almost all ink: clear the canvas and draw one digit, with space around it."
                   if ink_share(png) > 0.5 else f"Nothing to read yet: {e}. Draw with a thicker or longer stroke.")
        return
    with right:
        st.image(picture(image.image, nrow=1, width=SHOWN), width=SHOWN, caption="what the models see")
        st.caption("Converted: " + "; ".join(image.notes) + ".")
        scribble_note(dataset, image.image)
        label = reading(models[0], sel.device, image.image)
    key = hashlib.sha1(png).hexdigest()
    reproductions(models, sel.device, image.image, label, key)
    if label is None:
        if any(m.num_classes for m in models):
            st.caption("The conditional models redraw the drawing's class once a classifier can read it.")
        return
    redraws(models, sel.device, label)


run_page(body)
