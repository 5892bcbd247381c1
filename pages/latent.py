"""Latent explorer: move z along raw dimensions or GANSpace principal directions; interpolate between two codes.

The sliders run in the browser where they can: pages/components/explorer runs the generator, exported to ONNX, with
ONNX Runtime Web and redraws on every input event, while the hand moves. Otherwise (turned off, no runtime on this
server, or a browser that cannot run it, each said in a note) the server draws, after each release: st.slider
reports its value only then.
"""
import streamlit as st
import torch

from genmodels.explore import principal_directions
from genmodels.checkpoint import CheckpointError
from genmodels.export import ExportError
from genmodels.sampling import generate, gif_bytes, interpolate, latents, png_bytes
from pages.app.common import current, picture, require_model, run_page, stamp
from pages.components.explorer import explorer as browser_explorer
from pages.components.explorer import model_address, runtime_missing

N_DIRECTIONS = 6
SLIDER = dict(min_value=-3.0, max_value=3.0, value=0.0, step=0.1)
IN_BROWSER = "latent_in_browser"        # the toggle
BROWSER_READY = "latent_browser_ready"  # this session's browser has loaded ONNX Runtime Web: export for it
BROWSER_ERROR = "latent_browser_error"  # why the browser cannot draw (then the server does)
EXPLORER = "latent_explorer"            # the component
EDIT = "latent_edit"                    # the explorer's (start z, edited z, class), for the interpolation
EXPLORER_ENDS = "The explorer's start and edited codes"


@st.cache_resource(max_entries=16, show_spinner="Finding principal directions (GANSpace)…")
def directions(location: str, device: str, mtime: float, _model):
    return principal_directions(_model, k=N_DIRECTIONS, n_samples=1024)


def reset_sliders() -> None:
    for key in list(st.session_state):
        if key.startswith(("pc_", "dim_")):
            st.session_state[key] = 0.0


def one(model, z: torch.Tensor, label: int | None) -> torch.Tensor:
    return generate(model, z, None if label is None else torch.full((z.shape[0],), label))


def controls(model, entry, device) -> tuple[list[str], list[str], torch.Tensor]:
    """The sliders of the chosen directions: (names, session_state keys, unit vectors [k, latent_dim] on the CPU)."""
    mode = st.radio("Directions", ["Principal directions (GANSpace)", "Raw dimensions of z"], horizontal=True,
                    key="latent_mode")
    if mode.startswith("Principal"):
        st.caption("PCA of generated images, carried back to z (Härkönen et al. 2020): each slider moves z along "
                   "the direction that changes the image most, then the next most, and so on.")
        d = directions(entry.location, device, stamp(entry.location), model)
        names = [f"PC{i + 1} · {share:.0%} of image variance" for i, share in enumerate(d.explained.tolist())]
        return names, [f"pc_{i}" for i in range(len(names))], d.vectors.cpu()
    dims = st.multiselect("Dimensions of z", list(range(model.latent_dim)),
                          default=list(range(min(4, model.latent_dim))), key="latent_dims", max_selections=8)
    if getattr(model, "prior_components", 0):
        st.caption(f"This VAE samples a Gaussian mixture fitted to its codes: z[0] also picks which of its "
                   f"{model.prior_components} components the code comes from, so moving z[0] jumps between them.")
    return [f"z[{d}]" for d in dims], [f"dim_{d}" for d in dims], torch.eye(model.latent_dim)[dims]


def step_of(values: list[float], vectors: torch.Tensor) -> torch.Tensor:
    """The step in z of slider values along their directions, added up in float32 in slider order (as the browser
    adds them, so both draw the same code)."""
    step = torch.zeros(vectors.shape[1])
    for value, vector in zip(values, vectors):
        step += value * vector
    return step


def forget_browser_error() -> None:
    """Turning the toggle off and on tries the browser again."""
    st.session_state.pop(BROWSER_ERROR, None)


def heard_from_browser() -> None:
    """The component's on_change: its runtime has loaded (so the server exports the model for it), or it failed."""
    message = st.session_state.get(EXPLORER) or {}
    if message.get("error"):
        st.session_state[BROWSER_ERROR] = f"this browser could not run the generator ({message['error']})"
    else:
        st.session_state[BROWSER_READY] = True


def browser_plan(entry) -> tuple[str | None, str | None]:
    """(why the server draws instead, or None; the ONNX file for the browser, or None until the export is made). An
    export is started only for a browser that has said its runtime is ready; one already made is sent at once, which
    spares a first visit the round trip. An export that fails sends the session back to the server's sliders, with
    the reason."""
    why = runtime_missing() or st.session_state.get(BROWSER_ERROR)
    if why:
        return why, None
    try:
        ready = bool(st.session_state.get(BROWSER_READY))
        return None, model_address(entry.location, stamp(entry.location), start=ready)
    except (ExportError, CheckpointError) as e:
        st.session_state[BROWSER_ERROR] = f"the generator could not be exported for the browser: {e}"
        return st.session_state[BROWSER_ERROR], None


def browser_sliders(entry, model, address: str | None, z: torch.Tensor, names, keys,
                    vectors) -> tuple[torch.Tensor, int | None]:
    """The in-browser explorer; returns the edited code and class it last reported on a release (kept in the
    sliders' keys, so the server's sliders take over where it stopped), or those of the stored values."""
    label = int(st.session_state.get("latent_label", 0)) if model.num_classes else None
    values = [float(st.session_state.get(key, 0.0)) for key in keys]
    released = browser_explorer(
        model, source=entry.location, address=address, z=z[0].tolist(), names=names, directions=vectors.tolist(),
        values=values, classes=entry.class_names if model.num_classes else [], label=label or 0, slider=SLIDER,
        scale=max(1, 192 // model.image_shape[-1]), key=EXPLORER, on_change=heard_from_browser)
    if released is None:
        return z + step_of(values, vectors).to(z.device), label
    for key, value in zip(keys, released["values"]):
        st.session_state[key] = float(value)
    if model.num_classes:
        st.session_state["latent_label"] = label = int(released["label"])
    return torch.tensor([released["z"]], dtype=torch.float32, device=z.device), label


def explorer(entry, model, device) -> None:
    run_page(lambda: explorer_body(entry, model, device))


# A fragment: moving a slider reruns only this part, not the sidebar or the interpolation below.
explorer_fragment = st.fragment(explorer)


def explorer_body(entry, model, device) -> None:
    st.subheader("Move through the latent space")
    wanted = st.toggle("Redraw while dragging", value=True, key=IN_BROWSER, on_change=forget_browser_error,
                       help="Runs the generator in this browser (ONNX Runtime Web), so the image follows a slider "
                            "while you drag it. Off: the server draws the image when you let go.")
    why_not, address = browser_plan(entry) if wanted else (None, None)
    if why_not:
        st.info(f"The server draws the images, after each release: {why_not}. Turn *Redraw while dragging* off "
                "and on to try the browser again.")
    in_browser = wanted and not why_not
    left, right = st.columns([3, 2])
    with left:
        seed = st.number_input("Seed of the starting code", 0, 2**31 - 1, 0, key="latent_seed")
        label = None
        if model.num_classes and not in_browser:
            label = st.selectbox("Class", range(model.num_classes), format_func=lambda i: entry.class_names[i],
                                 key="latent_label")
        names, keys, vectors = controls(model, entry, device)
        if not in_browser:
            step = step_of([st.slider(name, key=key, **SLIDER) for name, key in zip(names, keys)], vectors)
            st.button("Reset sliders", on_click=reset_sliders)
    z = latents(model, 1, int(seed))
    if in_browser:
        edited, label = browser_sliders(entry, model, address, z, names, keys, vectors)
        image = one(model, edited, label)
    else:
        edited = z + step.to(z.device)
        images = one(model, torch.cat([z, edited]), label)
        image = images[1:]
        with right:
            st.image(picture(images, nrow=2, width=440), caption="start · after the sliders")
    st.session_state[EDIT] = (z[0].tolist(), edited[0].tolist(), label)
    st.download_button("Download this image (PNG)", png_bytes(picture(image, nrow=1, width=280)),
                       file_name=f"{entry.key.replace('/', '_')}_seed{int(seed)}_edited.png", mime="image/png")


def interpolation(entry, model) -> None:
    st.subheader("Interpolate between two codes")
    source = st.radio("Ends", ["Two seeds", "Two samples from a grid", EXPLORER_ENDS], horizontal=True,
                      key="interp_source")
    label = None
    cols = st.columns(4)
    if model.num_classes and source != EXPLORER_ENDS:
        label = cols[3].selectbox("Class", range(model.num_classes), format_func=lambda i: entry.class_names[i],
                                  key="interp_label")
    if source == "Two seeds":
        a = latents(model, 1, int(cols[0].number_input("Seed A", 0, 2**31 - 1, 1, key="interp_a")))[0]
        b = latents(model, 1, int(cols[1].number_input("Seed B", 0, 2**31 - 1, 2, key="interp_b")))[0]
    elif source == EXPLORER_ENDS:
        if EDIT not in st.session_state:
            st.info("The explorer above has no code yet.")
            return
        start, edited, label = st.session_state[EDIT]
        device = next(model.parameters()).device
        a, b = torch.tensor(start, device=device), torch.tensor(edited, device=device)
    else:
        seed = int(cols[0].number_input("Grid seed", 0, 2**31 - 1, 0, key="interp_grid_seed"))
        candidates = latents(model, 8, seed)
        st.image(picture(one(model, candidates, label), nrow=8), caption="samples 0-7, left to right")
        a = candidates[cols[1].selectbox("Sample A", range(8), index=0, key="interp_pick_a")]
        b = candidates[cols[2].selectbox("Sample B", range(8), index=7, key="interp_pick_b")]
    m1, m2 = st.columns(2)
    method = m1.radio("Method", ["slerp", "lerp"], horizontal=True, key="interp_method",
                      help="slerp follows the sphere where Gaussian codes live (White 2016); "
                           "lerp cuts through the middle, where codes are atypically short. Parallel codes fall back to lerp.")
    steps = m2.slider("Frames", 3, 24, 10, key="interp_steps")
    frames = one(model, interpolate(a, b, steps, method), label)
    st.image(picture(frames, nrow=steps, width=900), caption=f"{method} from A to B in {steps} frames")
    stills = [picture(f[None], nrow=1, width=160) for f in frames]
    gif = gif_bytes(stills)
    g1, g2 = st.columns([1, 3])
    g1.image(gif, caption="animated")
    g2.download_button("Download GIF", gif, file_name=f"{entry.key.replace('/', '_')}_{method}.gif", mime="image/gif")


def body() -> None:
    sel = current()
    entry, model = require_model(sel)
    st.title(f"Latent explorer · {entry.title}")
    # The interpolation drawing from the explorer's codes must follow every change there: then the explorer runs
    # with the whole page, not in its fragment.
    follows = st.session_state.get("interp_source") == EXPLORER_ENDS
    (explorer if follows else explorer_fragment)(entry, model, sel.device)
    st.divider()
    interpolation(entry, model)


run_page(body)
