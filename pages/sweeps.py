"""Sweeps: the results of `python -m train.sweep` (SWEEP_DIR/results.json) as a table of trials and the sweep's
chart of every measured quantity against every varied setting."""
import math

import pandas as pd
import streamlit as st

from genmodels import checkpoint as ckpt
from genmodels.config import shown_path
from genmodels.metrics import METRICS
from pages.app.common import SWEEPS_ENV, run_page, sweeps_root
from train.sweep import RESULTS_JSON, SHIPPED_RESULTS, figure

EXAMPLE = "python -m train.sweep train/sweeps/mnist-dcgan-lr-optimizer.toml"


def trial_table(results: dict) -> None:
    """One row per trial: its settings, its scores, how far it got and its final losses."""
    trials = results["trials"]
    keys = results["keys"]
    # A setting stays a number where every trial's value is one (so it sorts); lists and names become text.
    numeric = {k for k in keys if all(type(t["overrides"][k]) in (int, float) for t in trials)}
    # The scores come right after the settings, the losses and bookkeeping last: a sweep of two settings had its
    # scores past the window's edge, where a person comparing trials had to scroll the table sideways to find them.
    losses = sorted(dict.fromkeys(k for t in trials for k in t["final"]), key=lambda k: k not in METRICS)
    metrics = [n for n in METRICS if any(n in t["metrics"] for t in trials)]
    frame = pd.DataFrame([{
        "trial": t["trial"], "status": t["status"],
        **{k: t["overrides"][k] if k in numeric else str(t["overrides"][k]) for k in keys},
        **{n: t["metrics"].get(n, math.nan) for n in metrics},
        **{f"final {k}": t["final"].get(k, math.nan) for k in losses},
        "epochs": t["epochs"], "steps": t["steps"],
        "minutes": t["wall_seconds"] / 60 if t["wall_seconds"] is not None else math.nan,
        # Only where a trial failed: an empty column took the last place in the window, cut off at its edge.
        **({"error": t["error"] or ""} if any(t["error"] for t in trials) else {})} for t in trials])
    # Values as a person reads them (a dash where a trial has none); the numbers underneath still sort.
    styled = frame.style.format({"epochs": "{:.3g}", "steps": "{:,.0f}", "minutes": "{:.1f}",
                                 **{k: "{:.4g}" for k in numeric},
                                 **{f"final {k}": METRICS[k].format if k in METRICS else "{:.4g}" for k in losses},
                                 **{n: METRICS[n].format for n in metrics}}, na_rep="–")
    config = {n: st.column_config.Column(METRICS[n].header, help=METRICS[n].what) for n in metrics}
    config |= {f"final {k}": st.column_config.Column(
        f"{METRICS[k].header if k in METRICS else k} (last epoch)",
        help="As the trainer logged it in its last epoch." + (f" {METRICS[k].what}" if k in METRICS else ""))
        for k in losses}
    config["trial"] = st.column_config.Column(pinned=True)  # in view while a narrow window scrolls the table
    # The grid draws its own placeholder ("None") in a cell without a value, not the Styler's na_rep: the dash.
    st.dataframe(styled, hide_index=True, column_config=config, key="sweep_table", placeholder="–")


def scores(trial: dict) -> dict[str, float]:
    """A trial's metrics: those measured after training (metrics.json) over those the trainer logged last epoch."""
    return {**{k: v for k, v in trial["final"].items() if k in METRICS}, **trial["metrics"]}


def best_trial(results: dict) -> None:
    """The best finished trial by the first metric with a direction that every finished trial has."""
    finished = [t for t in results["trials"] if t["status"] == "finished"]
    for metric in (m for m in METRICS.values() if m.better):
        if finished and all(metric.name in scores(t) for t in finished):
            pick = min if metric.better == "lower" else max
            best = pick(finished, key=lambda t: scores(t)[metric.name])
            settings = ", ".join(f"{k} = {v}" for k, v in best["overrides"].items())
            st.success(f"Best by {metric.title}: **{best['trial']}** ({settings}), "
                       f"{metric.title} {metric.format(scores(best)[metric.name])}.")
            return


def body() -> None:
    st.title("Sweeps")
    root = sweeps_root()
    found = sorted(root.glob(f"*/{RESULTS_JSON}"))
    if not found:
        st.info(f"No sweeps in `{shown_path(root)}` yet. Run one, for example\n\n```\n{EXAMPLE}\n```\n\nand its table and chart "
                f"appear here (set {SWEEPS_ENV} to read another folder). The project's own sweeps are listed below.")
    found += sorted(SHIPPED_RESULTS.glob(f"*/{RESULTS_JSON}"))
    if not found:
        return
    path = st.selectbox("Sweep", found, key="sweep", format_func=lambda p: p.parent.name + (
        " (shipped: the evidence behind train/configs/)" if p.is_relative_to(SHIPPED_RESULTS) else ""))
    results = ckpt.read_json(path)
    counts = {s: sum(t["status"] == s for t in results["trials"]) for s in ("finished", "failed")}
    st.caption(f"**{results['model']}** on **{results['dataset']}**, {results['mode']} over "
               f"{', '.join(results['keys']) or 'no keys'}: {len(results['trials'])} trials, {counts['finished']} "
               f"finished, {counts['failed']} failed; spec `{results['spec']}`, updated {results['updated_at']}. "
               f"Each trial reruns alone with the command in its trial.json.")
    best_trial(results)
    trial_table(results)
    st.plotly_chart(figure(results), key="sweep_figure")


run_page(body)
