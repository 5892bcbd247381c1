"""Train: start a short run from the browser and watch the model learn, then explore it on every other page.
The data is a named source, or the visitor's own images: an upload (a zip, or image files) that train.runs makes into
an image set (genmodels.image_sets), shown with its report and a preview grid before training.

A run is `python -m train` in a subprocess, managed by train.runs (a bounded number at once, the others
waiting, every input clamped on the server); the page reads what the trainer writes (train/live.py) and never
imports the trainer. While anything trains, only the watching fragment reruns, every REFRESH seconds.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from genmodels import checkpoint as ckpt
from genmodels import image_sets
from genmodels.data import DatasetUnavailable, load_data, to_float
from genmodels.metrics import METRICS
from genmodels.models import SHOWCASE
from genmodels.registry import family_names, get_family
from genmodels.sampling import png_bytes
from genmodels.uploads import FORMAT_NAMES
from pages.app.common import YOUR_RUNS, current, picture, run_page
from train import runs as rm
from train.live import MAX_FRAMES, film, frame_step

REFRESH = 2.0                  # seconds between live updates while anything trains or waits (the trainer writes
                               # every rm.LIVE_EVERY, or less often where that would slow it: train/live.py)
IDLE_REFRESH = 10.0            # seconds between looks while nothing does, so another visitor's new run shows up
VISITOR = "train_visitor"      # session_state: this browser session's id, the owner of its runs
NOTES = "train_notes"          # session_state: [(kind, words)], what the last action did or changed, shown once
ADOPTED = "train_adopted"      # session_state: how many runs have joined the sidebar's list, for their names
YOUR_IMAGES = "your images"    # the Dataset box's choice of an upload
UPLOADED = "train_uploaded"    # session_state: (the upload's file ids, its image set's digest), so reruns reuse it
PREVIEW = 32                   # images in the preview grid of an upload

log = logging.getLogger("genmodels.app")


def manager() -> rm.RunManager:
    """The runs folder's manager; all its state is on disk (and its children in train.runs), so it is cheap."""
    return rm.RunManager.from_env()


@st.cache_data(ttl=600, show_spinner=False)
def available_datasets() -> list[str]:
    """The named sources this machine has (their held-out split loads)."""
    found = []
    for name in rm.DATASETS:
        try:
            load_data(name, "test")
            found.append(name)
        except DatasetUnavailable:
            pass
    return found


def visitor() -> str:
    return st.session_state.setdefault(VISITOR, uuid.uuid4().hex)


def tell(kind: str, words: str) -> None:
    """Keep a note for the next time the runs are drawn (buttons act in callbacks, and a start reruns the page)."""
    st.session_state.setdefault(NOTES, []).append((kind, words))


def act(what, *args) -> None:
    """on_click of a run's buttons: do it, and keep what happened (or why not) to show once. A callback runs
    outside run_page, so nothing may escape it as a traceback."""
    try:
        said = what(visitor(), *args)
        if isinstance(said, str):
            tell("info", said[0].upper() + said[1:] + ".")
    except rm.RunRequestError as e:
        tell("error", str(e))
    except Exception as e:  # noqa: BLE001
        log.exception("train page action failed")
        tell("error", f"That did not work: {type(e).__name__}: {e}. The server log has the details.")


def show_notes() -> None:
    for kind, words in st.session_state.pop(NOTES, []):
        (st.error if kind == "error" else st.info)(words)


def adopt_finished(runs: list[rm.Run]) -> bool:
    """Put this visitor's ended runs that have a checkpoint into the sidebar's model list ("your run N"), and say
    which were removed to keep the runs folder under its cap; True when the list changed."""
    yours = st.session_state.setdefault(YOUR_RUNS, {})
    gone = [location for location in yours if not Path(location).is_dir()]
    for location in gone:
        tell("info", f"{yours.pop(location).capitalize()} was removed to make room for newer runs: the runs folder "
             "keeps under its size cap, and the oldest visitors' runs go first.")
    changed = bool(gone)
    for run in runs:
        if run.owner == visitor() and not run.active and run.checkpoint is not None and str(run.checkpoint) not in yours:
            count = st.session_state[ADOPTED] = st.session_state.get(ADOPTED, 0) + 1  # names are never reused
            yours[str(run.checkpoint)] = f"your run {count}"
            changed = True
    return changed


def select_in_sidebar(run: rm.Run) -> None:
    """on_click of "Explore it": make the run the sidebar's model before the sidebar is drawn."""
    name = st.session_state.get(YOUR_RUNS, {}).get(str(run.checkpoint))
    if name is None:  # removed to keep the runs folder under its cap since the button was drawn
        tell("error", "That run no longer exists: the runs folder made room for newer ones.")
        return
    st.session_state["dataset"] = ckpt.read_config(run.checkpoint)["data"]["dataset"]  # an upload's is its folder
    st.session_state["model"] = name


# ---- setting a run up ------------------------------------------------------------------------------------------


def your_images() -> image_sets.ImageSet | None:
    """The upload's image set with its report and a preview grid, made once per upload; None until there is one."""
    limits = image_sets.LIMITS
    files = st.file_uploader(
        f"A .zip of images (one folder per class makes labels), or image files: {FORMAT_NAMES}",
        accept_multiple_files=True, key="train_upload", max_upload_size=limits.upload_bytes // 2**20,
        help=f"Each image is converted to RGB, resized and centre-cropped; {limits.describe()}. The same upload "
             "again is the same dataset.")
    if not files:
        st.info("Upload a zip of your photos, or a few image files: the model trains on them here, with an Inception "
                "FID against a held-out part of them after each epoch.")
        return None
    ids = [f.file_id for f in files]
    made = st.session_state.get(UPLOADED)
    image_set = rm.read_image_set(manager().root / rm.SETS / made[1]) if made and made[0] == ids else None
    if image_set is None:
        bar = st.progress(0.0, text="Reading the upload…")
        try:
            image_set = manager().add_upload(
                [(f.name, f.getvalue()) for f in files],
                progress=lambda done, total: bar.progress(done / total, text=f"Reading the upload: {done:,} of {total:,} files"))
        except image_sets.ImageSetError as e:
            bar.empty()
            st.error(f"{str(e)[0].upper()}{str(e)[1:]}.")
            return None
        bar.empty()
        st.session_state[UPLOADED] = (ids, image_set.digest)
    said = image_set.report.sentences()
    st.success(said[0])
    for line in said[1:]:
        st.warning(line)
    if not rm.upload_fid(image_set.report.used):
        st.info("Too few images for an FID: 5% of them are held out to measure it against, and it needs two. "
                "The run trains without one; upload 30 images or more to see it.")
    shown = image_sets.preview_images(image_set.folder, PREVIEW)
    st.image(picture(to_float(shown), nrow=8, width=560), output_format="PNG",
             caption=f"{len(shown)} of the {image_set.report.used:,} images, spread over the set, as the model sees them "
                     f"at {image_set.report.image_size} px")
    st.radio("Image size", image_sets.SIZES, index=0, horizontal=True, key="train_image_size",
             format_func=lambda size: f"{size} px",
             help="64 px is the reports' size and takes about four times the computation of 32 px per image.")
    return image_set


def setup() -> None:
    st.subheader("Start a run")
    datasets = [*available_datasets(), YOUR_IMAGES]
    if len(datasets) == 1:
        st.caption("No named dataset is on this machine (`make setup` fetches MNIST and Fashion-MNIST): train on your "
                   "own images.")
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
    dataset = c1.selectbox("Dataset", datasets, index=datasets.index("mnist") if "mnist" in datasets else 0,
                           key="train_dataset", format_func=lambda d: "Your images (upload)" if d == YOUR_IMAGES else d)
    families, recipe, image_size = family_names(), f"train/configs/{dataset}/", 0
    if dataset == YOUR_IMAGES:
        image_set = your_images()
        if image_set is None:
            return
        families, recipe = rm.upload_families(len(image_set.report.classes)), "train/configs/folder/"
        dataset, image_size = f"upload:{image_set.digest}", st.session_state["train_image_size"]
    if st.session_state.get("train_family") not in families:  # a conditional family, and an upload without labels
        st.session_state["train_family"] = SHOWCASE if SHOWCASE in families else families[0]
    family = c2.selectbox("Model family", families, key="train_family", format_func=lambda f: get_family(f).title)
    kind = c3.radio("Budget in", list(rm.BUDGETS), index=list(rm.BUDGETS).index(rm.DEFAULT_BUDGET[0]),
                    horizontal=True, key="train_budget")
    least, most = rm.BUDGETS[kind]
    amount = c4.number_input(f"Budget ({kind})", min_value=least, max_value=most, key=f"train_amount_{kind}",
                             value=rm.DEFAULT_BUDGET[1] if kind == rm.DEFAULT_BUDGET[0] else 300,
                             step=1 if kind == "steps" else 10,
                             help=f"The run stops after this many {kind}; at most {most:,} here.")
    with st.expander("Settings (blank: the recipe's value)"):
        st.caption(f"The recipe is `{recipe}{family}.toml`; these go to the trainer as `--set` and its config classes "
                   "check them.")
        cols = st.columns(4)
        settings = {}
        for col, s in zip(cols, rm.settings_for(family)):
            number = int if s.integer else float
            value = col.number_input(s.label, min_value=number(s.least), max_value=number(s.most), value=None,
                                     step=1 if s.integer else 1e-5, format=None if s.integer else "%g",
                                     placeholder="recipe", key=f"train_set_{s.key}",
                                     help=f"`{s.key}`, {s.least:g} to {s.most:g}")
            if value is not None:
                settings[s.key] = value
        threads = cols[3].number_input("CPU threads", min_value=1, max_value=os.cpu_count() or 1,
                                       value=rm.default_threads(), key="train_threads",
                                       help="By default all cores but one, which stays with this app.")
    if st.button("Start training", type="primary", icon=":material/play_arrow:"):
        request = rm.Request(dataset, family, kind, amount, settings, threads, current().device, image_size)
        try:
            run, notes = manager().submit(visitor(), request)
        except rm.RunRequestError as e:
            st.error(str(e))
            return
        for note in notes:
            tell("info", f"Changed: {note}.")
        st.session_state["train_run"] = run.id
        st.rerun()  # draw the page again, now watching the new run


# ---- watching -------------------------------------------------------------------------------------------------


def losses_figure(lines: list[dict], history: list[dict], fid_key: str) -> go.Figure:
    fig = go.Figure()
    names = list(dict.fromkeys(k for line in lines for k in line if k not in ckpt.BOOKKEEPING))
    for name in names:
        points = [(line["step"], line[name]) for line in lines if name in line]
        # A line needs two points: a single one (a run that logged once) is drawn as a marker.
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                 mode="lines" if len(points) > 1 else "markers", name=name))
    fids = [(e["step"], e[fid_key]) for e in history if fid_key in e]
    if fids:
        fig.add_trace(go.Scatter(x=[f[0] for f in fids], y=[f[1] for f in fids], mode="lines+markers",
                                 name=METRICS[fid_key].title, yaxis="y2", line=dict(dash="dot")))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), title=dict(text="Losses"),
                      xaxis=dict(title="step"), yaxis=dict(title="loss"), legend=dict(orientation="h", y=-0.2),
                      **({"yaxis2": dict(title=METRICS[fid_key].title, overlaying="y", side="right", showgrid=False)}
                         if fids else {}))
    return fig


@st.cache_data(max_entries=16, show_spinner=False)
def grid_png(path: str, mtime_ns: int) -> bytes:
    """A grid at twice its size with square pixels, so the digits stay crisp; encoded once, not at every refresh
    (`mtime_ns` is the cache key)."""
    im = Image.open(path)
    return png_bytes(im.resize((im.width * 2, im.height * 2), Image.NEAREST))


def latest_frame(frames: list[Path]) -> tuple[bytes, int] | None:
    """The newest grid still on disk (a resumed run removes those after its checkpoint) as PNG, and its step."""
    for path in reversed(frames):
        try:
            return grid_png(str(path), path.stat().st_mtime_ns), frame_step(path)
        except FileNotFoundError:
            continue
    return None


@st.cache_data(max_entries=8, show_spinner="Making the film…")
def cached_film(folder: str, frames: tuple[str, ...]) -> bytes:
    """The film of an ended run, made once for its frames (`frames` is the cache key)."""
    return film(folder)


def status_line(run: rm.Run, line: dict | None) -> str:
    kind, amount = run.budget
    if line is None:
        if run.status != "running":
            return run.status
        started = (run.job or {}).get("started_at")
        waited = f", {time.time() - started:.0f} s so far" if started else ""
        return (f"starting{waited}: the trainer loads PyTorch and the data and builds the model, which takes 10 to "
                "20 s on a busy CPU, before the first step…")
    # The budget is checked between steps, and the last line also counts the final save: a run of 5 s reads
    # 5 s of 5 s, not 6.
    seconds = min(line["seconds"], amount) if kind == "seconds" and not run.active else line["seconds"]
    spent = f"step {line['step']:,}" + (f" of {amount:,.0f}" if kind == "steps" else "")
    spent += f" · {seconds:.0f} s" + (f" of {amount:g} s" if kind == "seconds" else "")
    return f"{run.status} · {spent} · epoch {line['epoch']:.2f}"


def show_run(run: rm.Run, mine: bool) -> None:
    """One run: progress, the latest grid, the curves, and (for its owner) what can be done with it."""
    lines, frames, history = run.progress(), run.frames(), run.history()
    last = lines[-1] if lines else None
    st.markdown(f"**{run.title()}**" + ("" if mine else " · another visitor's run"))
    if run.status == "queued":
        ahead = [r.id for r in manager().queue()].index(run.id)
        st.info(f"Waiting for a free slot: {ahead} run{'s' if ahead != 1 else ''} ahead in the queue, and at most "
                f"{manager().slots} train{'s' if manager().slots == 1 else ''} at once. It starts by itself while this "
                "page stays open.")
    if run.status == "failed":
        kept = f" Its last good checkpoint (step {ckpt.read_config(run.checkpoint)['training']['steps']:,}) is kept." \
            if run.checkpoint else ""
        st.error(f"The run stopped: {run.record['message'].rstrip('.')}.{kept}")
    if run.record.get("measure_error"):
        st.warning(f"Measuring failed: {run.record['measure_error']}")
    st.progress(run.done_fraction(last), text=status_line(run, last))
    rates = [line["images_per_sec"] for line in lines[-5:] if line.get("images_per_sec")]
    fid = next((e[run.epoch_fid] for e in reversed(history) if run.epoch_fid in e), None)
    m1, m2, m3 = st.columns(3)
    m1.metric("images / s", f"{sum(rates) / len(rates):,.0f}" if rates else "–", help="over the last 10 s or so")
    m2.metric("images seen", f"{last['images_seen']:,}" if last else "–")
    m3.metric(f"{METRICS[run.epoch_fid].title} ↓", METRICS[run.epoch_fid].format(fid),
              help=METRICS[run.epoch_fid].what + (
                  f" Measured on {rm.FID_SAMPLES} samples against the upload's held-out images, after each epoch or "
                  f"each {rm.FID_EVERY_IMAGES:,} training images: a trend within this run, not a number to set beside "
                  "published FIDs." if run.epoch_fid == "fid" else " Measured at the end of each epoch."))
    left, right = st.columns([1, 1])
    shown = latest_frame(frames)
    with left:
        # PNG bytes at their own width: Streamlit neither resizes nor encodes them again (its "auto" is JPEG,
        # which blurs digits).
        if shown:
            st.image(shown[0], caption=f"step {shown[1]:,}: the same latent codes at every update",
                     output_format="PNG")
    with right:
        if lines:
            st.plotly_chart(losses_figure(lines, history, run.epoch_fid), key=f"losses_{run.id}")
    if mine:
        controls(run, frames)


def controls(run: rm.Run, frames: list[Path]) -> None:
    slot = iter(st.columns(4)).__next__  # the buttons side by side from the left, with no empty slot before one
    if run.status in ("queued", "running"):
        slot().button("Stop", icon=":material/stop:", key=f"stop_{run.id}", on_click=act, args=(manager().stop, run.id),
                      help="Ends the trainer by its process id; the run keeps its last checkpoint (saved every "
                           f"{rm.CHECKPOINT_MINUTES * 60:g} s).")
    if run.status == "stopped" and run.resumable:
        slot().button("Resume", icon=":material/play_arrow:", key=f"resume_{run.id}", on_click=act,
                      args=(manager().resume, run.id), help="Goes on from the last checkpoint up to the budget.")
    yours = st.session_state.get(YOUR_RUNS, {})
    if not run.active and str(run.checkpoint) in yours:
        if slot().button(f"Explore it ({yours[str(run.checkpoint)]})", icon=":material/casino:", key=f"explore_{run.id}",
                         on_click=select_in_sidebar, args=(run,)):
            st.switch_page("../sample.py")
        if not run.record.get("measured"):
            slot().button("Measure its metrics", icon=":material/monitoring:", key=f"measure_{run.id}", on_click=act,
                          args=(manager().measure, run.id), help="SSIM/MSE, nearest-neighbour distance, classifier-FID "
                          "and conditional accuracy on 500 samples; Inception FID takes minutes: "
                          f"`python -m genmodels.evaluate {run.checkpoint}`.")
    if len(frames) >= 2:
        slot().download_button("Film (GIF)", lambda: film(run.folder), file_name=f"{run.id}-film.gif", mime="image/gif",
                               icon=":material/movie:", key=f"film_{run.id}", on_click="ignore",
                               help="The fixed-seed grid over training, one frame per update (thinned to at most "
                                    f"{MAX_FRAMES} as a run grows).")
    if run.record.get("measured") and run.checkpoint is not None:
        measured = (ckpt.read_optional_json(run.checkpoint, ckpt.METRICS) or {}).get("metrics", {})
        cols = st.columns(max(1, len(measured)))
        for col, (name, m) in zip(cols, measured.items()):
            col.metric(METRICS[name].header, METRICS[name].format(m["value"]), help=m.get("protocol"))
    if not run.active and len(frames) >= 2:
        st.image(cached_film(str(run.folder), tuple(p.name for p in frames)),
                 caption="The film: the same latent codes from the first step to the last.",
                 width=420)


def watcher(polling: bool) -> None:
    """The fragment: reruns alone every REFRESH seconds while anything trains or waits, else every IDLE_REFRESH
    (body() sets run_every)."""
    run_page(lambda: watch(polling))


def watch(polling: bool) -> None:
    runs = manager().poll(visitor())
    # The refresh interval changes with a full rerun (run_every is fixed when the fragment is drawn), and a run
    # that joins the sidebar's model list needs the sidebar drawn again.
    if any(r.active for r in runs) != polling or adopt_finished(runs):
        st.rerun()
    show_notes()
    mine = [r for r in reversed(runs) if r.owner == visitor()]
    others = [r for r in runs if r.active and r.owner != visitor() and r.status != "queued"]
    if mine:
        ids = [r.id for r in mine]
        if st.session_state.get("train_run") not in ids:
            st.session_state["train_run"] = ids[0]
        by_id = {r.id: r for r in mine}
        # No status in the labels: the browser keeps a keyed selectbox's labels while the page stays open.
        chosen = st.selectbox("Your runs", ids, key="train_run", format_func=lambda i: f"{by_id[i].title()} · {i}")
        show_run(by_id[chosen], mine=True)
        if by_id[chosen].status != "queued":
            return
    for run in others:
        st.divider()
        show_run(run, mine=False)
    if not mine and not others:
        st.info("Nothing is training right now. Start a run above: its samples, losses and speed appear here as "
                "it learns.")


def body() -> None:
    st.title("Train")
    st.caption("Train a model here and watch it learn: the same latent codes drawn every couple of seconds, the "
               "losses (a GAN's two players fighting), and an FID after every epoch. Train on your own images too: "
               "upload a zip of them. A finished or stopped "
               "run joins the sidebar's model list as *your run* for this browser session, so every other page works "
               "on it. "
               f"Budgets are capped at {rm.BUDGETS['steps'][1]:,} steps or {rm.BUDGETS['seconds'][1] // 60} minutes; "
               f"at most {manager().slots} run{'s' if manager().slots > 1 else ''} at once, the others wait in turn.")
    setup()
    st.divider()
    polling = any(r.active for r in manager().poll(visitor()))
    st.fragment(run_every=REFRESH if polling else IDLE_REFRESH)(watcher)(polling)


run_page(body)
