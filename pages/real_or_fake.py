"""Real or fake? One image at a time, half held-out real images and half from the sidebar dataset's models; the
person answers with the buttons or ← and →, learns after each answer what it was, and after a round of 20 sees
their score and the models that fooled them. Every answer is a vote (genmodels.votes), and the votes give each
model its human score, HYPE∞, on the Metrics page."""
import random
import time
import uuid

import streamlit as st

from genmodels import checkpoint as ckpt
from genmodels import votes
from genmodels.data import DatasetUnavailable
from genmodels.hub import dataset_title
from pages.app.common import USER_ERRORS, Entry, current, heldout, load, log, no_models_message, picture, run_page

ROUND = "rof_round"          # session_state: the round being played (a dict: Streamlit reruns redefine page classes)
PENDING = "rof_pending"      # session_state: answers not stored yet (the database was busy, full or unavailable)
SESSION = "rof_session"      # session_state: this browser session's anonymous id
WIDTH = 256                  # pixels an image is shown at


def contenders(entries: list[Entry], device: str) -> tuple[list[Entry], list[str]]:
    """The models that play: those whose config.json records the weights' content hash (so their votes are kept apart
    from any retrained successor's) and that load; and why each of the others that has a hash cannot play."""
    playing, broken = [], []
    for e in entries:
        if (e.config or {}).get(ckpt.HASH):
            try:
                load(e, device)  # cached: a model loads once for all sessions
                playing.append(e)
            except USER_ERRORS as error:  # one broken checkpoint leaves the game, not the page
                broken.append(f"{e.key} ({error})")
    return playing, broken


def new_round(dataset: str, models: list[Entry], heldout_size: int) -> None:
    st.session_state[ROUND] = {
        "dataset": dataset, "models": sorted(e.key for e in models), "answers": [], "shown": None, "shown_at": 0.0,
        "trials": votes.plan_round([(e.key, e.config[ckpt.HASH]) for e in models], heldout_size, random.Random())}


def answer(index: int, choice: str) -> None:
    """on_click of the answer buttons: the answer to image `index`, queued as a vote. A second key press that
    arrives before the next image was shown names an image already answered, and is ignored."""
    r = st.session_state[ROUND]
    if index != len(r["answers"]) or r["shown"] != index:
        return
    r["answers"].append(choice)
    trial = r["trials"][index]
    ms = round(1000 * (time.monotonic() - r["shown_at"]))  # from the image's drawing on the server to the answer
    st.session_state[PENDING].append(votes.Vote.of(trial, st.session_state[SESSION], r["dataset"], choice, ms))


def store_pending(store: votes.VoteStore) -> str | None:
    """Store the queued votes, oldest first; why the rest must wait, or None when all are stored (or when there
    were none and the database can take votes)."""
    pending = st.session_state[PENDING]
    if not pending:
        return store.problem()
    while pending:
        try:
            store.record(pending[0])
        except votes.VoteRefused as e:  # the page made a vote the schema refuses: say so, and never retry it
            log.error("%s", e)
            st.error(f"An answer was not stored: {e}")
        except votes.VotesUnavailable as e:
            return str(e)
        pending.pop(0)
    return None


def source(trial: votes.Trial, by_key: dict[str, Entry]) -> str:
    if trial.truth == "real":
        return f"real: image #{trial.real_index} of the held-out test split"
    return f"fake: made by {by_key[trial.model_key].label} from seed {trial.seed} of its pool"


def right(r: dict) -> int:
    return sum(a == t.truth for a, t in zip(r["answers"], r["trials"]))


def feedback(r: dict, by_key: dict[str, Entry]) -> None:
    """What the last answer was."""
    done = len(r["answers"])
    trial, said = r["trials"][done - 1], r["answers"][done - 1]
    if said == trial.truth:
        st.success(f"**Right.** Image {done} was {source(trial, by_key)}.")
    else:
        st.error(f"**{'Fooled' if trial.truth == 'fake' else 'Wrong'}.** Image {done} was {source(trial, by_key)}.")


def image_of(trial: votes.Trial, entry: Entry, device: str):
    model = load(entry, device)
    if trial.truth == "fake":
        return votes.pool_image(model, trial.seed)
    return heldout(entry.dataset, *model.image_shape[:2]).batch([trial.real_index])[0]


def play(r: dict, by_key: dict[str, Entry], device: str) -> None:
    index = len(r["answers"])
    trial = r["trials"][index]
    left, side = st.columns([1, 1])
    with left:
        st.markdown(f"**Image {index + 1} of {len(r['trials'])}**")
        st.image(picture(image_of(trial, by_key[trial.model_key], device), nrow=1, width=WIDTH))
        if r["shown"] != index:
            r["shown"], r["shown_at"] = index, time.monotonic()
        real, fake = st.columns(2)
        # Streamlit draws each shortcut's key on its button.
        real.button("Real", key=f"rof_real_{index}", shortcut="Left", on_click=answer, args=(index, "real"),
                    width="stretch")
        fake.button("Fake", key=f"rof_fake_{index}", shortcut="Right", on_click=answer, args=(index, "fake"),
                    width="stretch")
    with side:
        if index:
            feedback(r, by_key)
            st.markdown(f"**Score so far: {right(r)} of {index} right**")
        else:
            st.info("Is this image real, or did a model make it? Press **←** for real, **→** for fake.")
        st.progress(index / len(r["trials"]))


def summary(r: dict, by_key: dict[str, Entry], device: str) -> None:
    """The round's score, the models that fooled the person with the images that did, and the real images taken
    for fakes."""
    pairs = list(zip(r["trials"], r["answers"]))
    feedback(r, by_key)
    st.subheader(f"Your score: {right(r)} of {len(pairs)} right ({100 * right(r) / len(pairs):.0f}%)")
    st.caption("Guessing gets about half right. Your answers join everyone's in each model's human score (HYPE∞) on "
               "the Metrics page: the share of answers people get wrong, 50% when a model cannot be told from "
               "real images.")
    fooled: dict[str, list[votes.Trial]] = {}
    for t, a in pairs:
        if t.truth == "fake" and a == "real":
            fooled.setdefault(t.model_key, []).append(t)
    if fooled:
        st.markdown("**Models that fooled you**")
        for col, (key, trials) in zip(st.columns(len(by_key)), sorted(fooled.items(), key=lambda kv: -len(kv[1]))):
            shown = sum(t.truth == "fake" and t.model_key == key for t, _ in pairs)
            col.markdown(f"{by_key[key].title}: **{len(trials)} of {shown}**")
            col.caption(key)
            col.image([picture(image_of(t, by_key[key], device), nrow=1, width=96) for t in trials],
                      caption=[f"seed {t.seed}" for t in trials], width=96)
    else:
        st.markdown("**No model fooled you this round.**")
    doubted = [t for t, a in pairs if t.truth == "real" and a == "fake"]
    st.markdown(f"**Real images you took for fakes: {len(doubted)} of {sum(t.truth == 'real' for t, _ in pairs)}**")
    if doubted:
        st.image([picture(image_of(t, by_key[t.model_key], device), nrow=1, width=96) for t in doubted],
                 caption=[f"#{t.real_index}" for t in doubted], width=96)
    st.button("New round", key="rof_new", shortcut="Enter", type="primary", icon=":material/replay:",
              on_click=lambda: st.session_state.pop(ROUND))


def body() -> None:
    sel = current()
    st.title("Real or fake?")
    if sel.entry is None:
        no_models_message(sel)
        return
    dataset = sel.entry.dataset
    models, broken = contenders(sel.usable(dataset), sel.device)
    if broken:
        st.caption(f"Not in the game, as they cannot be loaded: {'; '.join(broken)}.")
    if not models:
        st.info(f"No model of {dataset} can play: the game needs checkpoints that load and record their weights' "
                f"content hash ({ckpt.HASH} in config.json), which keys the votes. Checkpoints saved by this "
                "project's trainer have one.")
        return
    by_key = {e.key: e for e in models}
    st.caption(f"Half of the images are real, held-out images of {dataset_title(dataset)} that no model was trained "
               f"on (the test split); half come from the {len(models)} models of this dataset, taking turns. Answer with the "
               "buttons or the keys ← (real) and → (fake); a round is 20 images. Your answers are stored anonymously: "
               "a random id for this browser tab, no IP address, no cookie.")
    st.session_state.setdefault(SESSION, uuid.uuid4().hex)
    st.session_state.setdefault(PENDING, [])
    problem = store_pending(votes.VoteStore.from_env())
    if problem:
        st.warning(f"**Voting is unavailable:** {problem}. You can still play: your answers wait in this browser "
                   f"session ({len(st.session_state[PENDING])} so far) and are stored as soon as the database can "
                   "take them.")
    r = st.session_state.get(ROUND)
    if r is None or r["dataset"] != dataset or r["models"] != sorted(by_key):
        try:
            reals = len(heldout(dataset, *load(models[0], sel.device).image_shape[:2]))
        except DatasetUnavailable as e:
            st.info(f"The game needs real held-out images of {dataset_title(dataset)}, and this server does not have "
                    f"them: {e}.")
            return
        if reals < votes.ROUND // 2:  # a visitor's small upload: 5% of 100 images is 5
            st.info(f"A round shows {votes.ROUND // 2} real held-out images, and {dataset_title(dataset)} holds out "
                    f"only {reals}: train on more images to play with its models.")
            return
        new_round(dataset, models, reals)
        r = st.session_state[ROUND]
    if len(r["answers"]) < len(r["trials"]):
        play(r, by_key, sel.device)
    else:
        summary(r, by_key, sel.device)


run_page(body)
