"""Metrics and training: every model's measured metrics, one table per dataset and FID protocol so that only
numbers measured the same way stand side by side, with a bar chart of FID; each model's training curves; and a
side-by-side comparison."""
import math
from collections import defaultdict

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from genmodels import checkpoint as ckpt
from genmodels.hub import dataset_title
from genmodels.metrics import METRICS
from genmodels.sampling import sample
from pages.app.common import Entry, current, load, params, picture, run_page

EPOCH_FIDS = {"classifier_fid": "classifier-FID", "fid": "FID"}  # what the trainer may log per epoch
NO_FID = "no FID measured"


def metrics_of(entry: Entry) -> dict:
    return (ckpt.read_optional_json(entry.location, ckpt.METRICS) or {}).get("metrics", {})


def fid_setup(fid: dict) -> str:
    """How a FID was measured, in words."""
    if {"n", "n_real", "ref_split"} <= fid.keys():
        return f"FID of {fid['n']:,} samples against {fid['n_real']:,} {fid['ref_split']} images"
    return fid.get("protocol") or "FID protocol not recorded"


def comparable(entries: list[Entry], first: str | None) -> list[list[Entry]]:
    """Measured models by dataset and FID protocol (the sidebar's dataset first): within a group every FID
    was measured the same way."""
    groups = defaultdict(list)
    for e in entries:
        m = metrics_of(e)
        if m:
            groups[(e.dataset != first, e.dataset, m["fid"].get("protocol", "") if "fid" in m else NO_FID)].append(e)
    return [groups[k] for k in sorted(groups)]


def tooltip(name: str, measured: dict[str, dict]) -> str:
    """What a column measures and the protocol (or protocols, with their models) behind its numbers."""
    by_protocol = defaultdict(list)
    for key, m in measured.items():
        if name in m:
            by_protocol[m[name].get("protocol") or "protocol not recorded"].append(key)
    if len(by_protocol) == 1:
        return f"{METRICS[name].what}\n\nMeasured as: {next(iter(by_protocol))}"
    return METRICS[name].what + "".join(f"\n\n{', '.join(keys)}: {protocol}" for protocol, keys in by_protocol.items())


def group_table(models: list[Entry], key: str) -> None:
    measured = {e.key: metrics_of(e) for e in models}
    names = [n for n in METRICS if any(n in m for m in measured.values())]
    frame = pd.DataFrame([{"Model": e.title, "Checkpoint": e.key,
                           **{n: measured[e.key][n]["value"] if n in measured[e.key] else math.nan for n in names}}
                          for e in models])
    # The Styler writes each value as a person reads it; the numbers underneath still sort as numbers.
    styled = frame.style.format({n: METRICS[n].format for n in names})
    config = {n: st.column_config.Column(METRICS[n].header, help=tooltip(n, measured)) for n in names}
    st.dataframe(styled, hide_index=True, column_config=config, key=f"metrics_{key}")


def fid_bars(models: list[Entry], key: str) -> None:
    fids = sorted(((metrics_of(e)["fid"]["value"], e) for e in models), key=lambda pair: pair[0])
    fig = go.Figure(go.Bar(x=[v for v, _ in fids], y=[e.label for _, e in fids], orientation="h",
                           text=[METRICS["fid"].format(v) for v, _ in fids], textposition="outside",
                           marker_color="#4f46e5"))
    fig.update_layout(height=90 + 32 * len(fids), margin=dict(l=10, r=40, t=40, b=10),
                      title="FID per model (lower is better)", yaxis=dict(autorange="reversed"), xaxis_title="FID")
    st.plotly_chart(fig, key=f"fid_{key}")


def tables(entries: list[Entry], first: str | None) -> None:
    groups = comparable(entries, first)
    if not groups:
        st.info("No metrics.json in any checkpoint yet: metrics are measured after training with "
                "`python -m genmodels.evaluate CHECKPOINT` (FID, KID, SSIM, MSE, conditional accuracy, "
                "nearest-neighbour distance).")
        return
    st.caption("↓ lower is better, ↑ higher is better; hover a column header for what it measures and how; a dash: "
               "does not apply to that model, or was not measured. FIDs depend on the number of samples and the "
               "reference images, so each table holds only models measured under one FID protocol.")
    for i, models in enumerate(groups):
        dataset, fid = models[0].dataset, metrics_of(models[0]).get("fid", {})
        st.markdown(f"#### {dataset_title(dataset)} (`{dataset}`) · {fid_setup(fid) if fid else NO_FID}")
        group_table(models, str(i))
        if fid:
            fid_bars(models, str(i))
    unmeasured = [e.key for e in entries if not metrics_of(e)]
    if unmeasured:
        st.caption(f"Not measured yet: {', '.join(unmeasured)}.")
    with st.expander("How each number was measured (protocols)"):
        st.dataframe([{"model": e.key, "metric": METRICS[name].title, "value": METRICS[name].format(v["value"]),
                       "protocol": v.get("protocol", "")}
                      for e in entries for name, v in metrics_of(e).items() if name in METRICS], hide_index=True)


def history_chart(entry: Entry) -> None:
    history = ckpt.read_optional_json(entry.location, ckpt.HISTORY) or {}
    epochs = history.get("epochs", [])
    if not epochs:
        st.info(f"{entry.key} has no history.json: it was not trained by this project's trainer.")
        return
    x = [e["epoch"] for e in epochs]
    scalars = sorted({k for e in epochs for k, v in e.items()
                      if k not in {*ckpt.BOOKKEEPING, *EPOCH_FIDS} and isinstance(v, (int, float))})
    key = (history.get("best") or {}).get("metric", "classifier_fid")
    label = EPOCH_FIDS.get(key, key)
    fid = [e.get(key) for e in epochs]
    has_fid = any(v is not None for v in fid)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name in scalars:
        fig.add_trace(go.Scatter(x=x, y=[e.get(name) for e in epochs], name=name, mode="lines+markers"))
    if has_fid:
        fig.add_trace(go.Scatter(x=x, y=fid, name=label, mode="lines+markers",
                                 line=dict(dash="dot", color="black")), secondary_y=True)
        best = min((v, ep) for v, ep in zip(fid, x) if v is not None)
        fig.add_trace(go.Scatter(x=[best[1]], y=[best[0]], name=f"best epoch {best[1]:g}", mode="markers",
                                 marker=dict(symbol="star", size=16, color="gold", line=dict(color="black", width=1))),
                      secondary_y=True)
        fig.add_vline(x=best[1], line_dash="dash", line_color="gray")
        fig.update_yaxes(title_text=f"{label} (lower is better)", secondary_y=True)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch", yaxis_title="loss",
                      title=f"{entry.label}: training history")
    st.plotly_chart(fig, key=f"history_{entry.key}")
    last = epochs[-1]
    st.caption(f"{last['step']} steps, {last['images_seen']:,} images in {last['seconds'] / 60:.1f} min "
               f"({last.get('images_per_sec', 0):.0f} images/s in the last epoch)"
               + (f"; best {label} {best[0]:.2f} at epoch {best[1]:g}" if has_fid else f"; no {label} was logged"))


def compare(entries: list[Entry], device: str) -> None:
    keys = [e.key for e in entries]
    by_key = {e.key: e for e in entries}
    chosen = st.multiselect("Models to compare", keys, default=keys[:3], format_func=lambda k: by_key[k].label,
                            key="compare_models", max_selections=4)
    seed = st.number_input("Seed for every model", 0, 2**31 - 1, 0, key="compare_seed")
    for col, key in zip(st.columns(max(1, len(chosen))), chosen):
        e = by_key[key]
        model = load(e, device)
        with col:
            st.markdown(f"**{e.label}**")
            st.image(picture(sample(model, 16, seed=int(seed)), nrow=4, width=280))
            training = e.config.get("training", {})
            st.caption(f"{params(model):,} parameters · {training.get('epochs', 0):.3g} epochs · "
                       f"{training.get('wall_seconds', 0) / 60:.1f} min on {training.get('device', '?')}")
            measured = metrics_of(e)
            for name in (n for n in METRICS if n in measured):
                st.markdown(f"- {METRICS[name].header}: **{METRICS[name].format(measured[name]['value'])}**")


def body() -> None:
    sel = current()
    st.title("Metrics and training")
    entries = sel.usable()
    if not entries:
        st.info("No models yet: see the Model zoo page.")
        return
    st.subheader("All models")
    tables(entries, sel.entry.dataset if sel.entry else None)
    st.subheader("Training history")
    keys = [e.key for e in entries]
    by_key = {e.key: e for e in entries}
    default = keys.index(sel.entry.key) if sel.entry and sel.entry.key in keys else 0
    history_chart(by_key[st.selectbox("Model", keys, index=default, format_func=lambda k: by_key[k].label,
                                      key="history_model")])
    st.subheader("Side by side")
    compare(entries, sel.device)


run_page(body)
