"""Runs started for visitors of the app (train.runs) and what the trainer writes for watching them
(train.live): real `python -m train` subprocesses on MNIST with tiny widths, no mocks."""
from __future__ import annotations

import io
import os
import signal
import time

import pytest
from PIL import Image

from genmodels import checkpoint as ckpt
from genmodels.data import load_data
from pages.app.browser import wait_for
from run_fixtures import end_runs, trainer_processes
from train import live
from train import runs as rm
from train.config import resolve_config
from train.trainer import Trainer

TINY = {"model.width": 8}  # with batch 128 of the recipe: a step in well under a second on a loaded 2-core CPU


def tiny_run(budget: str = "steps", amount: float = 2000, **kw) -> rm.Request:
    return rm.Request("mnist", "dcgan", budget, amount, dict(TINY), threads=1, **kw)


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setattr(rm, "CHECKPOINT_MINUTES", 0.05)  # a checkpoint every 3 s: the tests need not wait for 15
    m = rm.RunManager(tmp_path / "runs", slots=1)
    yield m
    end_runs(m)  # never leave a trainer behind, whatever the test did


def step_of(run: rm.Run) -> int:
    lines = run.progress()
    return lines[-1]["step"] if lines else -1


# ---- the live log ---------------------------------------------------------------------------------------------


def test_trainer_writes_progress_lines_and_a_thinned_film_within_a_seconds_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "MAX_FRAMES", 6)
    data = load_data("mnist", "train")
    run = resolve_config("mnist", "dcgan", ["model.width=8", "model.d_width=8", "train.batch_size=16",
                                               "train.max_seconds=6", "train.live_every=0.3", "train.threads=1"])
    trainer = Trainer(run, data, tmp_path)
    start = time.perf_counter()
    trainer.fit()
    assert time.perf_counter() - start < 6 + 20, "the seconds budget ends the run (plus one save and grid)"
    lines = live.read_progress(tmp_path)
    steps = [line["step"] for line in lines]
    assert steps[0] == 0 and lines[0]["images_per_sec"] is None, "a first line as the process starts"
    assert steps == sorted(steps) and steps[-1] == trainer.progress.step > 0
    assert 6 <= trainer.progress.seconds < 30 and lines[-1]["seconds"] < 30, "the budget is training seconds"
    assert all("loss_d" in line and "loss_g" in line and line["images_per_sec"] > 0 for line in lines[1:])
    frames = live.frame_paths(tmp_path)
    assert 2 <= len(frames) <= 6 and live.frame_step(frames[0]) == 0 and live.frame_step(frames[-1]) == steps[-1]
    gif = Image.open(io.BytesIO(live.film(tmp_path, frame_ms=100, hold=3)))
    gif.seek(gif.n_frames - 1)
    assert gif.n_frames == len(frames) and gif.info["duration"] == 400, "the film: every grid, the last held"
    # A torn last line (the trainer appending while the page reads) is skipped, not an error.
    with open(tmp_path / live.LIVE / live.PROGRESS, "a") as f:
        f.write('{"step": 99, "los')
    assert live.read_progress(tmp_path) == lines


def test_a_slow_grid_makes_the_updates_rarer_not_a_larger_share_of_the_run(tmp_path):
    log = live.LiveLog(tmp_path, every=0.01)
    frame = Image.new("L", (8, 8))
    while not log.due():
        time.sleep(0.005)
    asked = time.perf_counter()
    time.sleep(0.1)  # drawing the grid on a starved CPU
    log.write(1, 0.0, 16, 1.0, frame)
    written = time.perf_counter()
    while not log.due():
        time.sleep(0.005)
    again = time.perf_counter()
    assert again - written >= (1 / live.SHARE - 1) * 0.1, "the updates come less often, not every 0.01 s"
    assert (written - asked) / (again - asked) < live.SHARE + 0.01, "and take at most their share of the time"


# ---- clamps: nothing typed into the page starts an unbounded job or reaches outside the runs folder ----------


@pytest.mark.parametrize("request_, note", [
    (tiny_run("steps", 10**12), "steps 1e+12 is outside the 1 to 20000 allowed here: using 20000"),
    (tiny_run("seconds", -30), "seconds -30 is outside the 5 to 1800 allowed here: using 5"),
    (tiny_run("seconds", float("inf")), "using 1800"),
    (rm.Request("mnist", "dcgan", settings={"train.lr": 5.0}), "learning rate 5 is outside the 1e-06 to 0.1"),
    (rm.Request("mnist", "dcgan", threads=10**6), "threads 1e+06 is outside the 1 to"),
])
def test_budgets_settings_and_threads_are_clamped_on_the_server(request_, note):
    clamped, notes = rm.clamp(request_)
    assert any(note in n for n in notes), notes
    least, most = rm.BUDGETS[clamped.budget]
    assert least <= clamped.amount <= most and 1 <= clamped.threads <= os.cpu_count()
    assert all(rm.SETTINGS[k].least <= v <= rm.SETTINGS[k].most for k, v in clamped.settings.items())


@pytest.mark.parametrize("request_, message", [
    (rm.Request("mnist", "dcgan", settings={"model.width": "../../etc/passwd"}), "width must be a number"),
    (rm.Request("mnist", "dcgan", settings={"train.lr": "nan"}), "learning rate must be a number"),
    (rm.Request("mnist", "dcgan", settings={"model.latent_dim": 10**400}), "z size must be .* about 401 digits"),
    (rm.Request("mnist", "dcgan", settings={"train.checkpoint_dir": 1}), "is not a setting of dcgan"),
    (rm.Request("mnist", "gan", settings={"model.width": 32}), "is not a setting of gan"),
    (rm.Request("folder:/etc", "dcgan"), "dataset must be one of"),
    (rm.Request("mnist-5k", "dcgan"), "dataset must be one of"),
    (rm.Request("mnist", "../train"), "model family must be one of"),
    (rm.Request("mnist", "dcgan", budget="epochs"), "counted in steps or seconds"),
    (rm.Request("mnist", "dcgan", amount=True), "seconds must be a number"),
    (rm.Request("mnist", "dcgan", device="cuda:7; rm -rf /"), "device must be one of"),
])
def test_what_no_bound_fixes_is_refused_in_words(request_, message, manager):
    with pytest.raises(rm.RunRequestError, match=message):
        manager.submit("visitor", request_)
    assert not manager.runs(), "nothing was queued or made"


def test_the_command_line_holds_only_clamped_values_and_the_run_folder_is_the_servers(manager):
    first, _ = manager.submit("a", tiny_run())  # takes the one slot, so the next stays queued as it was made
    run, _ = manager.submit("visitor", rm.Request("mnist", "dcgan", "steps", 10**9, {"train.lr": 1e-9}, threads=0))
    args = rm.train_args(run)
    assert args[args.index("--out") + 1] == str(manager.root / run.id) and run.folder.parent == manager.root
    assert "train.max_steps=20000" in args and "train.lr=1e-06" in args and "train.threads=1" in args
    assert args[:4] == ["-m", "train", "mnist", "dcgan"]


# ---- running, stopping, resuming, crashing ------------------------------------------------------------------


def test_stop_keeps_the_last_checkpoint_resume_goes_on_a_crash_keeps_it_and_it_is_measured(manager, monkeypatch):
    # The page's measurement but smaller and without classifier-FID, whose features of the 10,000 test images took
    # most of a minute on a loaded CPU (tests/test_metrics_models.py measures it); conditional accuracy stays, which an
    # unconditional model skips.
    monkeypatch.setattr(rm, "MEASURE_ARGS", ("--n", "100", "--n-projection", "4",
                                             "--only", "ssim,mse,nn_distance,conditional_accuracy"))
    run, _ = manager.submit("visitor", tiny_run())
    wait_for(lambda: manager.poll("visitor") and manager.get(run.id).checkpoint)  # saved every 3 s here
    saved = ckpt.read_config(manager.get(run.id).checkpoint)["training"]["steps"]
    assert "stopping" in manager.stop("visitor", run.id)
    pid = manager.get(run.id).job["pid"]
    stopped = wait_for(lambda: manager.poll("visitor") and manager.get(run.id).status == "stopped" and manager.get(run.id))
    assert not rm.alive(pid, stopped.folder) and not trainer_processes(manager.root)
    assert ckpt.load(stopped.checkpoint).checkpoint["training"]["steps"] >= saved, "the last checkpoint is kept"
    with pytest.raises(rm.RunRequestError, match="only the visitor who started"):
        manager.resume("someone else", run.id)
    manager.resume("visitor", run.id)
    resumed_from = ckpt.read_config(stopped.checkpoint)["training"]["steps"]
    # The resumed process's own start line, then steps past it: the first process may have logged a few steps past
    # its last checkpoint (a stop that had to end in SIGKILL on a loaded CPU), which the resumed process drops.
    wait_for(lambda: manager.poll("visitor") and step_of(manager.get(run.id)) > resumed_from + 2
             and sum(line["images_per_sec"] is None for line in manager.get(run.id).progress()) == 2)
    lines = manager.get(run.id).progress()
    starts = [line for line in lines if line["images_per_sec"] is None]
    assert [line["step"] for line in starts] == [0, resumed_from], "the resumed process goes on from the checkpoint"
    steps = [line["step"] for line in lines]
    assert steps == sorted(steps), "what the first process logged after its checkpoint is gone: one curve"
    assert all(live.frame_step(p) <= resumed_from or live.frame_step(p) in steps for p in manager.get(run.id).frames())
    os.kill(manager.get(run.id).job["pid"], signal.SIGKILL)  # not the page's stop: a crash
    failed = wait_for(lambda: manager.poll("visitor") and manager.get(run.id).status == "failed" and manager.get(run.id))
    assert failed.record["message"] == "the process was ended by signal SIGKILL"
    assert ckpt.load(failed.checkpoint).checkpoint["training"]["steps"] >= resumed_from, "its last good checkpoint"

    manager.measure("visitor", run.id)  # the page's button: python -m genmodels.evaluate, in the queue like training
    measured = wait_for(lambda: manager.poll("visitor") and not manager.get(run.id).active and manager.get(run.id))
    assert measured.record["measured"], measured.record["measure_error"]
    assert measured.status == "failed" and measured.record["message"] == failed.record["message"]
    metrics = ckpt.read_optional_json(measured.checkpoint, ckpt.METRICS)["metrics"]
    assert set(metrics) == {"ssim", "mse", "nn_distance"}


def test_the_trainers_own_message_when_it_refuses_to_start(manager, tmp_path, monkeypatch):
    monkeypatch.setenv("GENMODELS_DATA", str(tmp_path / "no-data"))  # reaches the subprocess: no MNIST there
    run, _ = manager.submit("visitor", rm.Request("mnist", "dcgan", "steps", 5, threads=1))
    failed = wait_for(lambda: manager.poll("visitor") and manager.get(run.id).status == "failed" and manager.get(run.id))
    assert "MNIST" in failed.record["message"] and "Traceback" not in failed.record["message"]
    assert failed.checkpoint is None


# ---- a bounded number at once, the others waiting; a size cap ------------------------------------------------


def test_one_run_at_a_time_the_next_waits_and_starts_when_the_first_ends(manager):
    first, _ = manager.submit("a", tiny_run())
    second, _ = manager.submit("b", tiny_run())
    assert manager.get(first.id).status == "running" and manager.get(second.id).status == "queued"
    wait_for(lambda: manager.poll("a") and manager.poll("b") and step_of(manager.get(first.id)) >= 0)
    assert len(trainer_processes(manager.root)) == 1
    assert [r.id for r in manager.queue()] == [second.id]
    manager.stop("a", first.id)
    wait_for(lambda: manager.poll("a") and manager.poll("b") and manager.get(second.id).status == "running")
    assert manager.get(first.id).status == "stopped"
    assert trainer_processes(manager.root) == [manager.get(second.id).job["pid"]]
    manager.stop("b", second.id)
    wait_for(lambda: manager.poll("b") and not manager.get(second.id).active)


def test_a_waiting_run_whose_visitor_left_leaves_the_queue(manager, monkeypatch):
    monkeypatch.setattr(rm, "QUEUE_TIMEOUT", 0.5)
    first, _ = manager.submit("a", tiny_run())
    second, _ = manager.submit("b", tiny_run())
    time.sleep(1)
    manager.poll("a")  # only a's page is still open
    assert manager.get(second.id) is None, "a run that never trained leaves nothing behind"
    manager.stop("a", first.id)
    wait_for(lambda: manager.poll("a") and not manager.get(first.id).active)


def test_the_runs_folder_keeps_under_its_cap_removing_the_oldest_visitors_runs_first(tmp_path):
    manager = rm.RunManager(tmp_path / "runs", slots=1, cap_bytes=3_000)
    made = []
    for owner, created in (("old", 100.0), ("new", 200.0), ("old", 300.0), ("new", 50_000.0)):
        run_id = f"20260101-000000-{len(made):06x}"
        (manager.root / run_id).mkdir(parents=True)
        ckpt.write_json(manager.root / run_id / rm.RECORD, {"id": run_id, "owner": owner, "created": created,
                                                             "request": {}, "job": None, "outcome": "finished"})
        (manager.root / run_id / "model.safetensors").write_bytes(b"x" * 1000)
        made.append(run_id)
    removed = manager.make_room()
    assert removed == [made[0], made[2]], "both runs of the visitor who came first, oldest first"
    assert rm.folder_size(manager.root) <= 3_000 and [r.id for r in manager.runs()] == [made[1], made[3]]
