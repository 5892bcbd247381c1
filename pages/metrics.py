"""Metrics and training: each model's training curves, one sortable table of all measured metrics, and a
side-by-side comparison."""
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from genmodels import checkpoint as ckpt
from genmodels.sampling import sample
from pages.app.common import Entry, current, load, params, picture, run_page

BOOKKEEPING = {"epoch", "step", "images_seen", "seconds", "images_per_sec"}
EPOCH_FIDS = {"classifier_fid": "classifier-FID", "fid": "FID"}  # what the trainer may log per epoch
METRIC_ORDER = ["fid", "kid", "classifier_fid", "ssim", "mse", "conditional_accuracy", "nn_distance"]


def metrics_of(entry: Entry) -> dict:
    return (ckpt.read_optional_json(entry.location, ckpt.METRICS) or {}).get("metrics", {})


def history_chart(entry: Entry) -> None:
    history = ckpt.read_optional_json(entry.location, ckpt.HISTORY) or {}
    epochs = history.get("epochs", [])
    if not epochs:
        st.info(f"{entry.key} has no history.json: it was not trained by this project's trainer.")
        return
    x = [e["epoch"] for e in epochs]
    scalars = sorted({k for e in epochs for k, v in e.items()
                      if k not in BOOKKEEPING | set(EPOCH_FIDS) and isinstance(v, (int, float))})
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


def tables(entries: list[Entry]) -> None:
    rows, protocols = [], []
    for e in entries:
        m = metrics_of(e)
        rows.append({"model": e.key, "family": e.title, "dataset": e.dataset,
                     **{name: m[name]["value"] for name in METRIC_ORDER if name in m}})
        protocols += [{"model": e.key, "metric": name, "value": v["value"], "protocol": v.get("protocol", "")}
                      for name, v in m.items()]
    if not protocols:
        st.info("No metrics.json in any checkpoint yet: metrics are measured after training "
                "(FID, KID, SSIM, MSE, conditional accuracy, nearest-neighbour distance).")
        return
    st.caption("Click a column header to sort. FID, KID, classifier-FID, MSE, nearest-neighbour distance: lower is "
               "better; SSIM and conditional accuracy: higher is better. Compare FIDs only at the same protocol.")
    st.dataframe(rows, hide_index=True, key="metrics_table")
    with st.expander("How each number was measured (protocols)"):
        st.dataframe(protocols, hide_index=True)


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
            for name, v in metrics_of(e).items():
                st.markdown(f"- {name}: **{v['value']:.4g}**")


def body() -> None:
    sel = current()
    st.title("Metrics and training")
    entries = sel.usable()
    if not entries:
        st.info("No models yet: see the Model zoo page.")
        return
    st.subheader("All models")
    tables(entries)
    st.subheader("Training history")
    keys = [e.key for e in entries]
    by_key = {e.key: e for e in entries}
    default = keys.index(sel.entry.key) if sel.entry and sel.entry.key in keys else 0
    history_chart(by_key[st.selectbox("Model", keys, index=default, format_func=lambda k: by_key[k].label,
                                      key="history_model")])
    st.subheader("Side by side")
    compare(entries, sel.device)


run_page(body)
