"""Sweeps: spec checking, trial expansion, real tiny trials on the MNIST subset through the one Trainer, failed
trials recorded, results table and chart, and resuming a killed sweep."""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from genmodels import checkpoint as ckpt
from interrupt import kill_after_step
from genmodels.config import ConfigError
from train import sweep
from train.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
TINY = """dataset = "mnist-5k"
model = "dcgan"
[fixed]
train.batch_size = 32
model.width = 16
model.d_width = 16
"""


def write_spec(folder: Path, text: str, name: str = "spec") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ('colour = "red"\n' + TINY, "unknown key 'colour'.*valid keys for SweepSpec: config, dataset, fixed, grid, mode, model, seed, trials"),
    ('model = "dcgan"', "missing dataset"),
    (TINY + "train.learning_rate = 1e-4", r"\[fixed\]: unknown key 'train.learning_rate'; valid keys for \[train\] of dcgan: batch_size, betas.* lr, lr_d, lr_decay"),
    (TINY + "[grid]\nmodel.activation = ['relu']", r"\[grid\]: unknown key 'model.activation'; valid keys for \[model\] of dcgan: .*g_activation"),
    (TINY + "[grid]\n'optim.lr' = [1]", "'optim.lr' is not SECTION.KEY with SECTION one of model, train, objective"),
    (TINY + "[grid]\ntrain.lr = {log_uniform = [1e-5, 1e-3]}", "ranges need mode = \"random\""),
    (TINY.replace('dcgan"', 'dcgan"\nmode = "random"\ntrials = 3') + "[grid]\ntrain.lr = {log_uniform = [0, 1e-3]}", "0 < lo < hi"),
    (TINY.replace('dcgan"', 'dcgan"\nmode = "random"'), "random mode needs trials = N"),
    (TINY.replace('dcgan"', 'dcgan"\nmode = "random"\ntrials = 5') + "[grid]\ntrain.lr = [1, 2]", "only 2 distinct combinations"),
    (TINY + "[grid]\ntrain.lr = []", "expected a non-empty list"),
    (TINY + "[grid]\nmodel.width = [8, 16]", r"model.width in both \[fixed\] and \[grid\]"),
    (TINY.replace('dcgan"', 'dcgan"\nmode = "bayes"'), "mode must be \"grid\" or \"random\""),
])
def test_bad_specs_raise_naming_what_is_valid(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        sweep.trials(sweep.read_spec(write_spec(tmp_path, text)))


def test_grid_is_every_combination_and_random_draws_are_seeded_distinct_and_in_range(tmp_path):
    grid = sweep.read_spec(write_spec(tmp_path, TINY + "[grid]\ntrain.lr = [1e-4, 2e-4]\n'train.optimizer' = ['adam', 'sgd']"))
    assert grid.fixed == {"train.batch_size": 32, "model.width": 16, "model.d_width": 16}
    assert sweep.trials(grid) == [{"train.lr": 1e-4, "train.optimizer": "adam"}, {"train.lr": 1e-4, "train.optimizer": "sgd"},
                                  {"train.lr": 2e-4, "train.optimizer": "adam"}, {"train.lr": 2e-4, "train.optimizer": "sgd"}]
    text = TINY.replace('dcgan"', 'dcgan"\nmode = "random"\ntrials = 20\nseed = 7') + \
        "[grid]\ntrain.lr = {log_uniform = [1e-5, 1e-3]}\nmodel.g_activation = ['relu', 'leaky_relu']"
    drawn = sweep.trials(sweep.read_spec(write_spec(tmp_path, text)))
    assert drawn == sweep.trials(sweep.read_spec(write_spec(tmp_path, text)))  # a re-run finds the same trials
    assert len({json.dumps(t) for t in drawn}) == 20
    lrs = [t["train.lr"] for t in drawn]
    assert all(1e-5 <= lr <= 1e-3 and float(f"{lr:.3g}") == lr for lr in lrs)
    assert min(lrs) < 1e-4 < max(lrs)  # log-uniform: about half the draws in each decade
    assert {t["model.g_activation"] for t in drawn} == {"relu", "leaky_relu"}
    other = sweep.trials(sweep.read_spec(write_spec(tmp_path, text.replace("seed = 7", "seed = 8"))))
    assert other != drawn


@pytest.mark.parametrize("spec", sorted((ROOT / "train" / "sweeps").glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_specs_give_valid_trial_configs(spec, capsys):
    assert sweep.main([str(spec), "--dry-run", "--out", "sweep"]) == 0
    commands = capsys.readouterr().out.splitlines()
    parsed = sweep.read_spec(spec)
    plan = sweep.trials(parsed)
    assert len(commands) == len(plan) >= 2  # a sweep compares settings: one trial would be a plain run
    for i, params in enumerate(plan):
        assert commands[i].startswith(f"trial-{i:03d}: python -m train {parsed.dataset} {parsed.model} --out sweep/trial-{i:03d} ")
        run = resolve_config(parsed.dataset, parsed.model, sweep.trial_overrides(parsed, params))  # values the config takes
        for key, value in params.items():
            section, _, name = key.partition(".")
            assert json.loads(json.dumps(getattr(getattr(run, section), name))) == value


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """Four real trials: one trains, one diverges (lr 1e30), two name an optimizer the trainer refuses."""
    folder = tmp_path_factory.mktemp("sweep")
    spec = write_spec(folder, TINY + "train.max_steps = 2\n[grid]\ntrain.optimizer = ['adam', 'rmsprop']\ntrain.lr = [2e-4, 1e30]",
                      name="tiny")
    return spec, folder / "out", sweep.run_sweep(spec, folder / "out")


def test_failed_trials_are_recorded_and_the_sweep_goes_on(finished_sweep):
    spec, out, results = finished_sweep
    assert json.loads((out / "results.json").read_text()) == results
    assert {k: results[k] for k in ("format", "version", "name", "dataset", "model", "mode", "keys")} == {
        "format": "genmodels-sweep", "version": 1, "name": "tiny", "dataset": "mnist-5k", "model": "dcgan", "mode": "grid",
        "keys": ["train.optimizer", "train.lr"]}
    rows = results["trials"]
    assert [(r["trial"], r["status"], r["overrides"]) for r in rows] == [
        ("trial-000", "finished", {"train.optimizer": "adam", "train.lr": 2e-4}),
        ("trial-001", "failed", {"train.optimizer": "adam", "train.lr": 1e30}),
        ("trial-002", "failed", {"train.optimizer": "rmsprop", "train.lr": 2e-4}),
        ("trial-003", "failed", {"train.optimizer": "rmsprop", "train.lr": 1e30})]
    assert rows[1]["error"].startswith("TrainingDiverged: the ") and "loss became" in rows[1]["error"]
    assert rows[2]["error"] == "ConfigError: train.optimizer must be 'adam' or 'sgd', got 'rmsprop'"
    done = rows[0]
    assert done["steps"] == 2 and done["error"] is None and done["metrics"] == {}
    assert set(done["final"]) == {"loss_d", "loss_g"} and done["final"]["loss_d"] > 0
    assert done["checkpoint"] == "trial-000/checkpoint"
    model = ckpt.load(out / done["checkpoint"])
    assert model.checkpoint["model"]["width"] == 16 and model.checkpoint["training"]["train"]["optimizer"] == "adam"
    assert done["wall_seconds"] == model.checkpoint["training"]["wall_seconds"]
    # Every setting, the config file's as well as the overrides, so the trial can be re-run after the config changes.
    run = resolve_config("mnist-5k", "dcgan", sweep.trial_overrides(sweep.read_spec(spec), done["overrides"]))
    assert done["config"] == json.loads(json.dumps({"model": model.checkpoint["model"], "train": asdict(run.train),
                                                    "objective": asdict(run.objective)}))
    assert [r["config"] for r in rows[1:]] == [None, None, None]  # failed before a checkpoint was written
    # The recorded command reproduces the trial with the ordinary CLI.
    assert done["command"] == model.checkpoint["training"]["command"] == (
        f"python -m train mnist-5k dcgan --out {out}/trial-000 --set train.batch_size=32 --set train.max_steps=2 "
        "--set model.width=16 --set model.d_width=16 --set 'train.optimizer=\"adam\"' --set train.lr=0.0002")
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["trial", "status", "train.optimizer", "train.lr", "epochs", "steps", "wall_seconds",
                              "final.loss_d", "final.loss_g", "error", "checkpoint", "command"]
    assert [(r["trial"], r["status"], r["train.lr"]) for r in table] == [
        ("trial-000", "finished", "0.0002"), ("trial-001", "failed", "1e+30"), ("trial-002", "failed", "0.0002"),
        ("trial-003", "failed", "1e+30")]
    assert float(table[0]["final.loss_g"]) == done["final"]["loss_g"]
    page = (out / "results.html").read_text()
    assert 'src="plotly.min.js"' in page and (out / "plotly.min.js").stat().st_size > 1_000_000


def test_rerun_skips_done_trials_and_picks_up_metrics_computed_later(finished_sweep):
    spec, out, results = finished_sweep
    weights = out / "trial-000" / "checkpoint" / "model.safetensors"
    before = {p: p.stat().st_mtime_ns for p in [weights, *out.glob("trial-*/trial.json")]}
    ckpt.write_json(out / "trial-000" / "checkpoint" / "metrics.json",
                    {"metrics": {"fid": {"value": 250.5, "protocol": "FID of 1000 samples"}}})
    again = sweep.run_sweep(spec, out)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing retrained, failed trials not retried
    assert again["trials"][0]["metrics"] == {"fid": 250.5}
    with open(out / "results.csv", newline="") as f:
        assert next(csv.DictReader(f))["metrics.fid"] == "250.5"
    figure = sweep.figure(again)
    panels = [(t.xaxis, t.yaxis, list(t.x), list(t.y)) for t in figure.data]
    assert panels[:2] == [("x", "y", ["adam"], [250.5]), ("x2", "y2", [2e-4], [250.5])]  # metrics first, per key
    assert len(panels) == 3 * 2  # fid, loss_d, loss_g against each of the two keys
    assert [a.text for a in figure.layout.annotations] == ["train.optimizer", "train.lr", "metrics.fid", "final.loss_d",
                                                           "final.loss_g"]
    changed = spec.read_text().replace("1e30", "1e-3")
    with pytest.raises(ConfigError, match="trial-001/trial.json was made with overrides .* use another --out"):
        sweep.run_sweep(write_spec(spec.parent, changed, name="tiny"), out)


def test_killed_sweep_resumes_its_interrupted_trial(tmp_path):
    spec = write_spec(tmp_path, TINY + "train.max_steps = 5\ntrain.checkpoint_minutes = 0\n[grid]\ntrain.lr = [2e-4]")
    out = tmp_path / "out"
    state = out / "trial-000" / "resume" / "state.json"  # checkpoint_minutes = 0: written after every step
    killed_at = kill_after_step([sys.executable, "-m", "train.sweep", str(spec), "--out", str(out)], ROOT, state, 2)
    assert 2 <= killed_at < 5
    assert json.loads((out / "trial-000" / "trial.json").read_text())["status"] == "running"
    results = sweep.run_sweep(spec, out)
    record = json.loads((out / "trial-000" / "trial.json").read_text())
    assert record["status"] == "finished" and record["resumed_from_step"] == killed_at
    assert [(r["status"], r["steps"]) for r in results["trials"]] == [("finished", 5)]
