"""Latent explorer: move z along raw dimensions or GANSpace principal directions; interpolate between two codes."""
import streamlit as st
import torch

from genmodels.explore import principal_directions
from genmodels.sampling import generate, gif_bytes, interpolate, latents
from pages.app.common import current, picture, require_model, run_page, stamp

N_DIRECTIONS = 6
SLIDER = dict(min_value=-3.0, max_value=3.0, value=0.0, step=0.1)


@st.cache_resource(max_entries=16, show_spinner="Finding principal directions (GANSpace)…")
def directions(location: str, device: str, mtime: float, _model):
    return principal_directions(_model, k=N_DIRECTIONS, n_samples=1024)


def reset_sliders() -> None:
    for key in list(st.session_state):
        if key.startswith(("pc_", "dim_")):
            st.session_state[key] = 0.0


def one(model, z: torch.Tensor, label: int | None) -> torch.Tensor:
    return generate(model, z, None if label is None else torch.full((z.shape[0],), label))


def sliders(model, entry, device) -> torch.Tensor:
    """The slider offsets as a step in z."""
    mode = st.radio("Directions", ["Principal directions (GANSpace)", "Raw dimensions of z"], horizontal=True,
                    key="latent_mode")
    step = torch.zeros(model.latent_dim)
    if mode.startswith("Principal"):
        st.caption("PCA of generated images, carried back to z (Härkönen et al. 2020): each slider moves z along "
                   "the direction that changes the image most, then the next most, and so on.")
        d = directions(entry.location, device, stamp(entry.location), model)
        for i, (vector, share) in enumerate(zip(d.vectors, d.explained)):
            step += st.slider(f"PC{i + 1} · {share:.0%} of image variance", key=f"pc_{i}", **SLIDER) * vector.cpu()
    else:
        dims = st.multiselect("Dimensions of z", list(range(model.latent_dim)), default=list(range(min(4, model.latent_dim))),
                              key="latent_dims", max_selections=8)
        if getattr(model, "prior_components", 0):
            st.caption(f"This VAE samples a Gaussian mixture fitted to its codes: z[0] also picks which of its "
                       f"{model.prior_components} components the code comes from, so moving z[0] jumps between them.")
        for d in dims:
            step[d] += st.slider(f"z[{d}]", key=f"dim_{d}", **SLIDER)
    st.button("Reset sliders", on_click=reset_sliders)
    return step


@st.fragment
def explorer(entry, model, device) -> None:
    """A fragment: moving a slider reruns only this part, not the sidebar or the interpolation below."""
    run_page(lambda: explorer_body(entry, model, device))


def explorer_body(entry, model, device) -> None:
    st.subheader("Move through the latent space")
    left, right = st.columns([3, 2])
    with left:
        seed = st.number_input("Seed of the starting code", 0, 2**31 - 1, 0, key="latent_seed")
        label = None
        if model.num_classes:
            label = st.selectbox("Class", range(model.num_classes), format_func=lambda i: entry.class_names[i],
                                 key="latent_label")
        step = sliders(model, entry, device)
    z = latents(model, 1, int(seed))
    images = one(model, torch.cat([z, z + step.to(z.device)]), label)
    with right:
        st.image(picture(images, nrow=2, width=440), caption="start · after the sliders")


def interpolation(entry, model) -> None:
    st.subheader("Interpolate between two codes")
    source = st.radio("Ends", ["Two seeds", "Two samples from a grid"], horizontal=True, key="interp_source")
    label = None
    cols = st.columns(4)
    if model.num_classes:
        label = cols[3].selectbox("Class", range(model.num_classes), format_func=lambda i: entry.class_names[i],
                                  key="interp_label")
    if source == "Two seeds":
        a = latents(model, 1, int(cols[0].number_input("Seed A", 0, 2**31 - 1, 1, key="interp_a")))[0]
        b = latents(model, 1, int(cols[1].number_input("Seed B", 0, 2**31 - 1, 2, key="interp_b")))[0]
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
    explorer(entry, model, sel.device)
    st.divider()
    interpolation(entry, model)


run_page(body)
