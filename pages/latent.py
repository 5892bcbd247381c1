"""Latent explorer: move z along raw dimensions or GANSpace principal directions; interpolate between two codes.

The sliders run in the browser where they can: pages/components/explorer runs the generator, exported to ONNX, with
ONNX Runtime Web and redraws on every input event, while the hand moves. Otherwise (turned off, no runtime on this
server, or a browser that cannot run it, each said in a note) the server draws, after each release: st.slider
reports its value only then. The server's sliders and image also stand in on a first visit, at once, while the
browser loads the model out of sight (an export per checkpoint, made once, takes seconds to a minute); the browser
takes over, where the sliders stand, once it says it holds the model.
"""
import streamlit as st
import torch

from genmodels.checkpoint import CheckpointError
from genmodels.export import ExportError
from genmodels.sampling import generate, gif_bytes, interpolate, latents, png_bytes
from pages.app.common import current, directions, picture, require_model, run_page, stamp
from pages.components.explorer import explorer as browser_explorer
from pages.components.explorer import model_address, runtime_missing

SLIDER = dict(min_value=-3.0, max_value=3.0, value=0.0, step=0.1)
IN_BROWSER = "latent_in_browser"        # the toggle
BROWSER_READY = "latent_browser_ready"  # this session's browser has loaded ONNX Runtime Web: export for it
BROWSER_ERROR = "latent_browser_error"  # why the browser cannot draw (then the server does)
BROWSER_LOADED = "latent_browser_loaded"  # the ONNX file this session's browser holds a session of (it draws that)
BROWSER_VALUES = "latent_browser_values"  # {slider or class key: value} where the browser's controls stand
EXPLORER = "latent_explorer"            # the component
EDIT = "latent_edit"                    # the explorer's (start z, edited z, class), for the interpolation
EXPLORER_ENDS = "The explorer's start and edited codes"


def reset_sliders() -> None:
    st.session_state.pop(BROWSER_VALUES, None)
    for key in list(st.session_state):
        if key.startswith(("pc_", "dim_")):
            st.session_state[key] = 0.0


def stored(key: str, default: float = 0.0) -> float:
    """A slider's (or the class's) value: where the browser's controls stand, else where the server's widget does."""
    return (st.session_state.get(BROWSER_VALUES) or {}).get(key, st.session_state.get(key, default))


def take_browser_values() -> None:
    """Set the server's sliders and class to where the browser's stand, in the run that draws them: a widget drawn
    again shows the value the page last gave it (a first visit's server sliders, before the browser took over) unless
    its key is set in the same run."""
    for key, value in st.session_state.pop(BROWSER_VALUES, {}).items():
        st.session_state[key] = value


def one(model, z: torch.Tensor, label: int | None) -> torch.Tensor:
    return generate(model, z, None if label is None else torch.full((z.shape[0],), label))


def controls(model, entry, device) -> tuple[list[str], list[str], torch.Tensor]:
    """The sliders of the chosen directions: (names, session_state keys, unit vectors [k, latent_dim] on the CPU)."""
    mode = st.radio("Directions", ["Principal directions (GANSpace)", "Raw dimensions of z"], horizontal=True,
                    key="latent_mode")
    if mode.startswith("Principal"):
        st.caption("PCA of generated images, carried back to z (Härkönen et al. 2020): each slider moves z along "
                   "the direction that changes the image most, then the next most, and so on.")
        d = directions(entry, device, model)
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
    """The component's on_change: its runtime has loaded (so the server exports the model for it), it holds a model
    (so it takes over from the server's sliders), or it failed."""
    message = st.session_state.get(EXPLORER) or {}
    if message.get("error"):
        st.session_state[BROWSER_ERROR] = f"this browser could not run the generator ({message['error']})"
    else:
        st.session_state[BROWSER_READY] = True
        if message.get("loaded"):
            st.session_state[BROWSER_LOADED] = message["loaded"]


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


def browser_sliders(entry, model, address: str | None, z: torch.Tensor, names, keys, vectors,
                    show: bool = True) -> tuple[torch.Tensor, int | None]:
    """The in-browser explorer; returns the edited code and class it last reported on a release (kept in
    BROWSER_VALUES, so the server's sliders take over where it stopped), or those of the stored values. Not `show`n,
    it loads the model out of sight while the server's sliders stand in, and the server's values are what count."""
    label = int(stored("latent_label", 0)) if model.num_classes else None
    values = [float(stored(key)) for key in keys]
    if show:  # from here on the browser's controls hold the values, starting where the server's stood
        kept = st.session_state.setdefault(BROWSER_VALUES, {})
        for key, value in zip(keys, values):
            kept.setdefault(key, value)
        if model.num_classes:
            kept.setdefault("latent_label", label)
    released = browser_explorer(
        model, source=entry.location, address=address, show=show, z=z[0].tolist(), names=names,
        directions=vectors.tolist(),
        values=values, classes=entry.class_names if model.num_classes else [], label=label or 0, slider=SLIDER,
        scale=max(1, 192 // model.image_shape[-1]), key=EXPLORER, on_change=heard_from_browser)
    if released is None or not show:
        return z + step_of(values, vectors).to(z.device), label
    kept.update((key, float(value)) for key, value in zip(keys, released["values"]))
    if model.num_classes:
        kept["latent_label"] = label = int(released["label"])
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
    # The browser draws once it holds this model; until then the server's sliders and image stand in.
    browser_draws = in_browser and address is not None and st.session_state.get(BROWSER_LOADED) == address
    if not browser_draws:
        take_browser_values()
    left, right = st.columns([3, 2])
    with left:
        seed = st.number_input("Seed of the starting code", 0, 2**31 - 1, 0, key="latent_seed")
        label = None
        if model.num_classes and not browser_draws:
            label = st.selectbox("Class", range(model.num_classes), format_func=lambda i: entry.class_names[i],
                                 key="latent_label")
        names, keys, vectors = controls(model, entry, device)
        if not browser_draws:
            step = step_of([st.slider(name, key=key, **SLIDER) for name, key in zip(names, keys)], vectors)
            st.button("Reset sliders", on_click=reset_sliders)
    z = latents(model, 1, int(seed))
    if browser_draws:
        edited, label = browser_sliders(entry, model, address, z, names, keys, vectors)
        image = one(model, edited, label)
    else:
        edited = z + step.to(z.device)
        images = one(model, torch.cat([z, edited]), label)
        image = images[1:]
        with right:
            st.image(picture(images, nrow=2, width=440), caption="start · after the sliders")
        if in_browser:  # in the same place as when it draws, so the page keeps its frame (and the model in it)
            browser_sliders(entry, model, address, z, names, keys, vectors, show=False)
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
    st.title(f"Latent explorer · {entry.name}")
    # The interpolation drawing from the explorer's codes must follow every change there: then the explorer runs
    # with the whole page, not in its fragment.
    follows = st.session_state.get("interp_source") == EXPLORER_ENDS
    (explorer if follows else explorer_fragment)(entry, model, sel.device)
    st.divider()
    interpolation(entry, model)


run_page(body)
