"""Sample: a seeded grid from the sidebar's model, with truncation, a new-seed button and a PNG download."""
import random

import streamlit as st

from genmodels.checkpoint import MAX_TRUNCATION
from genmodels.sampling import default_truncation, png_bytes, sample
from pages.app.common import current, picture, require_model, run_page

COUNTS = [1, 4, 8, 16, 32, 64]       # rows of 8
ROWS_OF_CLASSES = [1, 2, 3, 4, 6]    # a conditional model's grid: whole rows, one class per column


def counts(model) -> tuple[str, list[int], int]:
    """(the widget's key, the sample counts offered, the default). A conditional model's own key: a count kept in
    the session from another kind of model need not be one of its whole rows."""
    if model.num_classes:
        return f"sample_count_{model.num_classes}", [1] + [k * model.num_classes for k in ROWS_OF_CLASSES], \
            3 * model.num_classes
    return "sample_count", COUNTS, 32


def new_seed() -> None:
    st.session_state["sample_seed"] = random.randrange(100_000)


def body() -> None:
    sel = current()
    entry, model = require_model(sel)
    st.title(f"Sample · {entry.name}")
    st.caption("Each image is the generator's output for one random code z drawn from N(0, I) with this seed, at the "
               "truncation set below."
               + (" Conditional models cycle through the classes, one per image." if model.num_classes else ""))
    left, right = st.columns([1, 2])
    with left:
        seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="sample_seed")
        st.button("New seed", icon=":material/casino:", on_click=new_seed)
        key, options, default = counts(model)
        n = st.select_slider("Number of samples", options, value=default, key=key)
        own = default_truncation(model)
        # One key per model: each starts at the truncation it ships with, and keeps what the user set for it.
        truncation = st.slider("Truncation (temperature)", 0.0, MAX_TRUNCATION, own, 0.05,
                               key=f"sample_truncation_{entry.key}",
                               help="Scales z: below 1 trades variety for typical-looking images, above 1 the opposite."
                                    + (f" This model ships at {own:g}: its metrics were measured there." if own != 1
                                       else ""))
    images = sample(model, n, seed=int(seed), truncation=truncation)
    nrow = model.num_classes if model.num_classes and n >= model.num_classes else min(8, n)
    image = picture(images, nrow=nrow)
    with right:
        st.image(image, caption=f"{n} samples · seed {seed} · truncation {truncation:.2f}")
        st.download_button("Download grid (PNG)", png_bytes(image), file_name=f"{entry.key.replace('/', '_')}_seed{seed}.png",
                           mime="image/png")


run_page(body)
