"""Conditional generation: CGAN / ACGAN asked for classes by text, per cell, or as a class-by-seed grid."""
import streamlit as st
import torch

from genmodels.explore import LabelTextError, labels_from_text
from genmodels.sampling import generate, label_grid, latents
from pages.app.common import Entry, classifier, current, load, picture, run_page

CELLS = 8


def verdicts(dataset: str, device: str, images: torch.Tensor, asked: list[int], names: list[str]) -> list[str]:
    """Captions naming the class asked for and, when a classifier ships, the class it sees."""
    net, _ = classifier(dataset, device)
    if net is None:
        return [names[a] for a in asked]
    with torch.no_grad():
        seen = net.predict(images.to(device)).cpu().tolist()
    return [f"{names[a]} · sees {names[s]} {'✓' if s == a else '✗'}" for a, s in zip(asked, seen)]


def classifier_note(dataset: str, device: str) -> None:
    _, why_not = classifier(dataset, device)
    if why_not:
        st.info(f"No classifier verdicts ({why_not}). Captions show only the class asked for.")
    else:
        st.caption("Under each image: the class asked for, and what the shipped classifier sees (✓ when they agree).")


def row(entry: Entry, model, device: str, labels: list[int], seed: int, columns: list | None = None) -> None:
    """One image per label, captioned with the verdicts: in a row, or each in its own column of `columns`."""
    z = latents(model, len(labels), seed)
    images = generate(model, z, torch.tensor(labels))
    captions = verdicts(entry.dataset, device, images, labels, entry.class_names)
    pictures = [picture(im[None], nrow=1, width=112) for im in images]
    if columns is None:
        st.image(pictures, caption=captions, width=112)
        return
    for col, image, caption in zip(columns, pictures, captions):
        col.image(image, caption=caption, width="stretch")


def digit_classes(entry: Entry) -> bool:
    return entry.class_names == [str(i) for i in range(entry.num_classes)]


def from_text(entry: Entry, model, device: str) -> None:
    digits = digit_classes(entry)
    # By index where the classes are digits, else by name: the model's own first classes, whatever the dataset.
    text = st.text_input("Write with the model", "2026" if digits else ", ".join(entry.class_names[:3]), key="cond_text",
                         help="Digits pick classes by index (\"2026\"); or give class names separated by commas.")
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="cond_text_seed")
    try:
        labels = labels_from_text(text, entry.class_names, model.num_classes)
    except LabelTextError as e:  # shown here so the other tabs still render
        st.error(str(e))
        return
    if not labels:
        st.warning("Type at least one class.")
        return
    row(entry, model, device, labels[:32], int(seed))


def per_cell(entry: Entry, model, device: str) -> None:
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="cond_cell_seed")
    labels = []
    columns = st.columns(CELLS)
    for i, col in enumerate(columns):
        labels.append(col.selectbox(f"Cell {i + 1}", range(model.num_classes), index=i % model.num_classes,
                                    format_func=lambda c: entry.class_names[c], key=f"cond_cell_{i}"))
    row(entry, model, device, labels, int(seed), columns)  # each image under its selectbox


def class_by_seed(entry: Entry, model, device: str) -> None:
    c1, c2 = st.columns(2)
    per_class = c1.slider("Seeds per class", 1, 12, 8, key="cond_grid_n")
    seed = c2.number_input("First seed", 0, 2**31 - 1, 0, key="cond_grid_seed")
    # The same z in every row: a column shows one "style" drawn as every class.
    z = latents(model, per_class, int(seed)).repeat(model.num_classes, 1)
    labels = label_grid(model.num_classes, per_class)
    images = generate(model, z, labels)
    st.image(picture(images, nrow=per_class, width=560),
             caption="rows: " + ", ".join(entry.class_names) + " (top to bottom) · columns: one z each")
    net, _ = classifier(entry.dataset, device)
    if net is not None:
        with torch.no_grad():
            agree = (net.predict(images.to(device)).cpu() == labels).float().mean().item()
        st.metric("Classifier agrees with the asked class", f"{agree:.0%}")


def body() -> None:
    sel = current()
    st.title("Conditional generation")
    st.caption("CGAN and ACGAN take a class label next to z: the label says *what* to draw, z says *how*.")
    dataset = sel.entry.dataset if sel.entry else None
    conditional = [e for e in sel.usable(dataset) if e.num_classes]
    if not conditional:
        st.info(f"No conditional model (CGAN or ACGAN) for {dataset or 'any dataset'} yet. Train one with "
                "`python -m train mnist cgan` and copy its checkpoint folder into the weights folder.")
        return
    keys = [e.key for e in conditional]
    default = keys.index(sel.entry.key) if sel.entry.key in keys else 0
    by_key = {e.key: e for e in conditional}
    entry = by_key[st.selectbox("Conditional model", keys, index=default, format_func=lambda k: by_key[k].label,
                                key="cond_model")]
    model = load(entry, sel.device)
    classifier_note(entry.dataset, sel.device)
    text, cells, grid = st.tabs(["Write with digits" if digit_classes(entry) else "Write with class names",
                                 "A label per cell", "Class × seed grid"])
    with text:
        from_text(entry, model, sel.device)
    with cells:
        per_cell(entry, model, sel.device)
    with grid:
        class_by_seed(entry, model, sel.device)


run_page(body)
