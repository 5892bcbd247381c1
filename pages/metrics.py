"""Metrics and training: every model's measured metrics, one table per dataset and FID protocol so that only
numbers measured the same way stand side by side, with a bar chart of FID and people's score (HYPE∞, from the Real
or fake? page's votes) beside it; each model's training curves; and a side-by-side comparison."""
import math
from collections import defaultdict

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from genmodels import checkpoint as ckpt
from genmodels import votes
from genmodels.hub import dataset_title
from genmodels.metrics import METRICS
from genmodels.sampling import sample
from pages.app.common import Entry, current, load, params, picture, run_page

EPOCH_FIDS = {"classifier_fid": "classifier-FID", "fid": "FID"}  # what the trainer may log per epoch
NO_FID = "no FID measured"
HYPE = "hype"  # the tables' column of people's score
Human = tuple[dict[str, votes.Score], str | None]  # (HYPE∞ by content hash, why the votes cannot be read)
HYPE_HELP = ("HYPE∞ (Zhou et al. 2019): the share of people's answers on the Real or fake? page that were wrong, on "
             "this model's images and the real images shown with them. 50% means people cannot tell it from real "
             "data. In brackets: the 95% bootstrap interval over people; n: the answers.")


def human_scores() -> Human:
    """Every voted model's HYPE∞ by content hash, and why the votes cannot be read (None when they can)."""
    try:
        return votes.VoteStore.from_env().scores(), None
    except votes.VotesUnavailable as e:
        return {}, str(e)


def hype_of(entry: Entry, human: Human) -> votes.Score | None:
    return human[0].get((entry.config or {}).get(ckpt.HASH))


def hype_text(entry: Entry, human: Human) -> str:
    score = hype_of(entry, human)
    return score.text() if score else "no votes yet"


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


def group_table(models: list[Entry], key: str, human: Human) -> None:
    """The group's metrics in two tables, so that each fits a laptop's window (one with every metric was cut off at
    1400 px): the headline numbers, those on the zoo cards, then the others."""
    measured = {e.key: metrics_of(e) for e in models}
    names = [n for n in METRICS if any(n in m for m in measured.values())]
    parts = [part for part in ([n for n in names if METRICS[n].card], [n for n in names if not METRICS[n].card]) if part]
    for i, part in enumerate(parts):
        if i:
            st.caption("More measurements of the same models:")
        metric_table(models, measured, part, f"{key}_{i}", human if i == 0 else ({}, None))


def metric_table(models: list[Entry], measured: dict[str, dict], names: list[str], key: str, human: Human) -> None:
    frame = pd.DataFrame([{"Model": e.title, "Checkpoint": e.key,
                           **{n: measured[e.key][n]["value"] if n in measured[e.key] else math.nan for n in names}}
                          for e in models])
    if any(hype_of(e, human) for e in models):  # people's score beside FID, once anyone has voted on this group
        where = frame.columns.get_loc("fid") + 1 if "fid" in names else 2
        frame.insert(where, HYPE, [hype_text(e, human) for e in models])
    # The Styler writes each value as a person reads it; the numbers underneath still sort as numbers.
    styled = frame.style.format({n: METRICS[n].format for n in names})
    config = {n: st.column_config.Column(METRICS[n].header, help=tooltip(n, measured)) for n in names}
    config["Model"] = st.column_config.Column(pinned=True)  # in view while a narrow window scrolls the table
    if HYPE in frame:
        config[HYPE] = st.column_config.Column("HYPE∞ ↑ (people)", help=HYPE_HELP)
    # The grid draws its own placeholder ("None") in a cell without a value, not the Styler's text: the dash that
    # Metric.format writes there.
    st.dataframe(styled, hide_index=True, column_config=config, key=f"metrics_{key}", placeholder="–")


def fid_bars(models: list[Entry], key: str) -> None:
    fids = sorted(((metrics_of(e)["fid"]["value"], e) for e in models), key=lambda pair: pair[0])
    fig = go.Figure(go.Bar(x=[v for v, _ in fids], y=[e.label for _, e in fids], orientation="h",
                           text=[METRICS["fid"].format(v) for v, _ in fids], textposition="outside",
                           marker_color="#4f46e5"))
    fig.update_layout(height=90 + 32 * len(fids), margin=dict(l=10, r=40, t=40, b=10),
                      title="FID per model (lower is better)", yaxis=dict(autorange="reversed"), xaxis_title="FID")
    st.plotly_chart(fig, key=f"fid_{key}")


def tables(entries: list[Entry], first: str | None, human: Human) -> None:
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
        # The key where it is a name; an image folder's is its place on the machine that trained on it.
        key = "" if dataset.startswith("folder:") else f" (`{dataset}`)"
        st.markdown(f"#### {dataset_title(dataset)}{key} · {fid_setup(fid) if fid else NO_FID}")
        group_table(models, str(i), human)
        if fid:
            fid_bars(models, str(i))
    unmeasured = [e.key for e in entries if not metrics_of(e)]
    if unmeasured:
        st.caption(f"Not measured yet: {', '.join(unmeasured)}.")
    with st.expander("How each number was measured (protocols)"):
        protocols(sorted(entries, key=lambda e: e.dataset != first))


def protocols(entries: list[Entry]) -> None:
    """Each metric's protocols in words, with the models measured so: a protocol is a sentence, which a table cell
    cut off."""
    for name, metric in METRICS.items():
        by_protocol = defaultdict(list)
        for e in entries:
            if name in (m := metrics_of(e)):
                by_protocol[m[name].get("protocol") or "protocol not recorded"].append(e.key)
        st.markdown("\n".join(f"- **{metric.title}** ({', '.join(keys)}): {protocol}"
                              for protocol, keys in by_protocol.items()))


def human_section(entries: list[Entry], human: Human) -> None:
    """Every voted model's HYPE∞ with the counts behind it, and the raw votes to download."""
    scores, problem = human
    if problem:
        st.warning(f"The votes cannot be read: {problem}. The other numbers on this page do not depend on them.")
        return
    st.caption(HYPE_HELP + " Votes are kept per content hash of the weights: a retrained model starts again.")
    voted = [(e, hype_of(e, human)) for e in entries if hype_of(e, human)]
    if not voted:
        st.info("No votes yet: answer a round on the Real or fake? page.")
        return
    st.dataframe([{"Model": e.title, "Checkpoint": e.key, "HYPE∞": f"{100 * s.value:.1f}%", "95% interval": s.interval,
                   "fakes judged real": f"{s.fakes_judged_real} of {s.fakes}",
                   "reals judged fake": f"{s.reals_judged_fake} of {s.reals}", "answers": s.answers,
                   "people": s.evaluators} for e, s in voted], hide_index=True, key="hype_counts")
    unvoted = [e.key for e in entries if not hype_of(e, human)]
    if unvoted:
        st.caption(f"No votes yet: {', '.join(unvoted)}.")
    st.download_button("Download the votes (CSV)", votes.VoteStore.from_env().csv_text, file_name="votes.csv",
                       mime="text/csv", icon=":material/download:", on_click="ignore")


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
        fig.update_yaxes(title_text=f"{label} ↓", secondary_y=True)  # the whole phrase was cut off at the top
        # Ticks of its own: by default the right axis puts its ticks on the left axis's grid lines (1.57, 3.56, ...).
        fig.update_yaxes(tickmode="auto", showgrid=False, secondary_y=True)
    # The legend below the plot: at its right, on a phone, it took half the chart's width.
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch", yaxis_title="loss",
                      title=f"{entry.label}: training history", legend=dict(orientation="h", y=-0.25))
    st.plotly_chart(fig, key=f"history_{entry.key}")
    last = epochs[-1]
    st.caption(f"{last['step']:,} steps, {last['images_seen']:,} images in {last['seconds'] / 60:.1f} min "
               f"({last.get('images_per_sec', 0):.0f} images/s in the last epoch)"
               + (f"; best {label} {best[0]:.2f} at epoch {best[1]:g}" if has_fid else f"; no {label} was logged"))


def compare(entries: list[Entry], device: str, dataset: str | None) -> None:
    """Up to four models' samples and numbers in columns; it opens on three of the sidebar's dataset."""
    keys = [e.key for e in sorted(entries, key=lambda e: e.dataset != dataset)]
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
    human = human_scores()
    tables(entries, sel.entry.dataset if sel.entry else None, human)
    st.subheader("Real or fake? People's score")
    human_section(entries, human)
    st.subheader("Training history")
    keys = [e.key for e in entries]
    by_key = {e.key: e for e in entries}
    default = keys.index(sel.entry.key) if sel.entry and sel.entry.key in keys else 0
    history_chart(by_key[st.selectbox("Model", keys, index=default, format_func=lambda k: by_key[k].label,
                                      key="history_model")])
    st.subheader("Side by side")
    compare(entries, sel.device, sel.entry.dataset if sel.entry else None)


run_page(body)
