"""python -m train.sweep SPEC: train one model per point of a grid (or a random sample of it) and tabulate the results.

SPEC is a TOML file (examples in train/sweeps/):

    dataset = "mnist"          # as for `python -m train`
    model = "gan"              # a family name, as listed by `python -m train --list`
    mode = "grid"              # grid: every combination | random: `trials` draws, seeded by `seed`
    [fixed]                    # overrides applied to every trial
    train.epochs = 2
    [grid]                     # SECTION.KEY -> list of values; random mode also takes {log_uniform = [lo, hi]}
    train.lr = [1e-4, 2e-4]
    train.optimizer = ["adam", "sgd"]

Each trial is an ordinary run of the one Trainer in SWEEP_DIR/trial-NNN/ (checkpoint/, resume/, samples/ and
trial.json). A trial that fails (a NaN loss, a value the config refuses) is recorded with its message and the sweep
goes on. After every trial the sweep rewrites results.json, results.csv and results.html (a plotly chart) in
SWEEP_DIR. Running the same SPEC again skips finished and failed trials, resumes an interrupted one from its resume
state, and re-reads every trial's metrics.json, so metrics computed later (`python -m genmodels.evaluate
SWEEP_DIR/trial-000/checkpoint`) join the table.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import math
import random
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from genmodels import checkpoint as ckpt
from genmodels.config import ConfigError, from_dict
from genmodels.data import DatasetUnavailable, ImageData
from genmodels.registry import get_family

from .command import command_line, restore_ctrl_c, train_arguments
from .config import SECTIONS, TrainConfig, prepare
from .trainer import Trainer

FORMAT, VERSION = "genmodels-sweep", 1
RESULTS_JSON, RESULTS_CSV, RESULTS_HTML, TRIAL_JSON = "results.json", "results.csv", "results.html", "trial.json"
# The sweeps whose results the project ships (results.json and .csv copied from SWEEP_DIR): the evidence behind the
# configs in train/configs/, which the Sweeps page shows beside the sweeps run here.
SHIPPED_RESULTS = Path(__file__).parent / "sweeps" / "results"
RANGES = ("log_uniform", "uniform")  # random mode only: {log_uniform = [lo, hi]} or {uniform = [lo, hi]}


@dataclass(frozen=True)
class SweepSpec:
    dataset: str                                  # mnist | fashion-mnist | cifar10 | folder:PATH
    model: str                                    # model family
    mode: str = "grid"                            # grid | random
    trials: int = 0                               # random mode: number of trials
    seed: int = 0                                 # random mode: seed of the sampler (training seeds are train.seed)
    config: str = ""                              # config file (default train/configs/DATASET/MODEL.toml)
    fixed: dict = field(default_factory=dict)     # SECTION.KEY -> value, for every trial
    grid: dict = field(default_factory=dict)      # SECTION.KEY -> [values] (or a range, random mode)


def dotted(table: dict) -> dict[str, Any]:
    """{"train": {"lr": x}} (what TOML makes of `train.lr = x`) and {"train.lr": x} both become {"train.lr": x}."""
    out = {}
    for key, value in table.items():
        if key in SECTIONS and isinstance(value, dict):
            out.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            out[key] = value
    return out


def check_keys(keys, family_name: str, where: str) -> None:
    family = get_family(family_name)
    classes = {"model": family.config_cls, "train": TrainConfig, "objective": family.objective.Params}
    for key in keys:
        section, _, name = key.partition(".")
        if section not in classes:
            raise ConfigError(f"{where}: {key!r} is not SECTION.KEY with SECTION one of {', '.join(SECTIONS)}")
        valid = sorted(f.name for f in dataclasses.fields(classes[section]))
        if name not in valid:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys for [{section}] of {family_name}: {', '.join(valid)}")


def read_spec(path: Path) -> SweepSpec:
    try:
        values = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"sweep spec {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    missing = [k for k in ("dataset", "model") if k not in values]
    if missing:
        raise ConfigError(f"{path}: missing {' and '.join(missing)}")
    spec = from_dict(SweepSpec, values, where=str(path))
    spec = dataclasses.replace(spec, fixed=dotted(spec.fixed), grid=dotted(spec.grid))
    check_keys(spec.fixed, spec.model, f"{path} [fixed]")
    check_keys(spec.grid, spec.model, f"{path} [grid]")
    if both := sorted(set(spec.fixed) & set(spec.grid)):
        raise ConfigError(f"{path}: {', '.join(both)} in both [fixed] and [grid]; keep each key in one")
    if spec.mode not in ("grid", "random"):
        raise ConfigError(f"{path}: mode must be \"grid\" or \"random\", got {spec.mode!r}")
    if (spec.mode == "random") != (spec.trials > 0):
        raise ConfigError(f"{path}: random mode needs trials = N (N > 0); grid mode takes no trials")
    for key, values in spec.grid.items():
        if isinstance(values, dict):
            kind, bounds = next(iter(values.items())) if len(values) == 1 else (None, None)
            if kind not in RANGES or not (isinstance(bounds, list) and len(bounds) == 2 and bounds[0] < bounds[1]
                                          and (kind == "uniform" or bounds[0] > 0)):
                raise ConfigError(f"{path} [grid] {key}: a range is {{log_uniform = [lo, hi]}} with 0 < lo < hi "
                                  f"or {{uniform = [lo, hi]}} with lo < hi, got {values}")
            if spec.mode == "grid":
                raise ConfigError(f"{path} [grid] {key}: ranges need mode = \"random\"; grid mode takes lists")
        elif not isinstance(values, list) or not values:
            raise ConfigError(f"{path} [grid] {key}: expected a non-empty list of values, got {values!r}")
    return spec


def draw(values: list | dict, rng: random.Random) -> Any:
    if isinstance(values, list):
        return rng.choice(values)
    (kind, (lo, hi)), = values.items()
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if kind == "log_uniform" else rng.uniform(lo, hi)
    return float(f"{x:.3g}")  # three significant digits: readable in tables and in the recorded command


def trials(spec: SweepSpec) -> list[dict[str, Any]]:
    """The varied values of every trial, in a fixed order: re-reading the same spec gives the same trials."""
    keys = list(spec.grid)
    if spec.mode == "grid":
        return [dict(zip(keys, combo)) for combo in itertools.product(*spec.grid.values())]
    if all(isinstance(v, list) for v in spec.grid.values()):
        size = math.prod(len(v) for v in spec.grid.values())
        if spec.trials > size:
            raise ConfigError(f"random mode asks for {spec.trials} trials but [grid] has only {size} distinct "
                              "combinations: use mode = \"grid\" or fewer trials")
    rng, out, seen = random.Random(spec.seed), [], set()
    while len(out) < spec.trials:  # duplicates are redrawn: a repeated trial would teach nothing
        trial = {key: draw(spec.grid[key], rng) for key in keys}
        if (tag := json.dumps(trial, sort_keys=True)) not in seen:
            seen.add(tag)
            out.append(trial)
    return out


def toml_value(value: Any) -> str:
    """The TOML literal of a value, as `--set SECTION.KEY=VALUE` parses it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def trial_overrides(spec: SweepSpec, params: dict) -> list[str]:
    """The `--set` overrides of a trial: the fixed ones, then its own values."""
    return [f"{k}={toml_value(v)}" for k, v in {**spec.fixed, **params}.items()]


def trial_command(spec: SweepSpec, folder: Path, overrides: list[str]) -> str:
    """The `python -m train` command that reproduces a trial on its own."""
    return command_line(train_arguments(spec.dataset, spec.model, out=folder, config=spec.config, overrides=overrides))


def trial_name(index: int) -> str:
    return f"trial-{index:03d}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_trial(spec: SweepSpec, name: str, folder: Path, params: dict, data: ImageData | None,
              data_root: Path | None, download: bool) -> ImageData | None:
    """Train one trial (resuming it when its folder holds resume state); returns the data for the next trial."""
    overrides = trial_overrides(spec, params)
    record = {"trial": name, "overrides": params, "command": trial_command(spec, folder, overrides),
              "status": "running", "started_at": now()}
    ckpt.write_json(folder / TRIAL_JSON, record)
    started = time.perf_counter()
    try:
        run, data = prepare(spec.dataset, spec.model, overrides, Path(spec.config) if spec.config else None,
                            data_root, download, data)
        trainer = Trainer(run, data, folder, command=record["command"])
        if trainer.resume():
            record["resumed_from_step"] = trainer.progress.step
            ckpt.write_json(folder / TRIAL_JSON, record)
            print(f"{name}: resuming from step {trainer.progress.step}", file=sys.stderr, flush=True)
        trainer.fit()
        record["status"] = "finished"
    except DatasetUnavailable:
        raise  # every trial would fail the same way: stop the sweep with the message that says how to get the data
    except Exception as e:  # one bad trial (NaN loss, refused value, shape error) must not end a long sweep
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
        print(f"{name} failed: {record['error']}", file=sys.stderr, flush=True)
    record.update(finished_at=now(), seconds=round(time.perf_counter() - started, 1))
    ckpt.write_json(folder / TRIAL_JSON, record)
    return data


def collect(folder: Path, name: str, params: dict) -> dict:
    """One row of the results table from what is on disk in a trial folder."""
    record = ckpt.read_json(folder / TRIAL_JSON) if (folder / TRIAL_JSON).exists() else {"status": "pending"}
    checkpoint = folder / ckpt.CHECKPOINT
    history = (ckpt.read_optional_json(checkpoint, ckpt.HISTORY) or {}).get("epochs", [])
    last = history[-1] if history else {}
    config = ckpt.read_config(checkpoint) if (checkpoint / ckpt.CONFIG).exists() else {}
    training = config.get("training", {})
    metrics = (ckpt.read_optional_json(checkpoint, ckpt.METRICS) or {}).get("metrics", {})
    return {
        "trial": name,
        "status": record["status"],
        "overrides": params,
        "error": record.get("error"),
        "epochs": last.get("epoch"),
        "steps": last.get("step"),
        "wall_seconds": training.get("wall_seconds"),
        "final": {k: v for k, v in last.items() if k not in ckpt.BOOKKEEPING},
        "metrics": {k: m["value"] for k, m in metrics.items()},
        "checkpoint": f"{name}/{ckpt.CHECKPOINT}" if (checkpoint / ckpt.WEIGHTS).exists() else None,
        "command": record.get("command"),
        # Every setting the trial trained with, the config file's included: the overrides alone re-run differently
        # once train/configs/ moves on.
        "config": {"model": config["model"], **{k: training[k] for k in ("train", "objective")}} if config else None,
    }


def flat_row(row: dict) -> dict:
    """A results row as one CSV line: overrides under their dotted keys, then final.* losses and metrics.* values."""
    out = {"trial": row["trial"], "status": row["status"]}
    out.update({k: json.dumps(v) if isinstance(v, list) else v for k, v in row["overrides"].items()})
    out.update({k: row[k] for k in ("epochs", "steps", "wall_seconds")})
    out.update({f"final.{k}": v for k, v in row["final"].items()})
    out.update({f"metrics.{k}": v for k, v in row["metrics"].items()})
    out.update({k: row[k] for k in ("error", "checkpoint", "command")})
    return out


def figure(results: dict):
    """Every measured quantity (metrics first, then final losses) against every varied key, one panel each."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    rows = [r for r in results["trials"] if r["status"] == "finished"]
    measures = [f"metrics.{k}" for k in sorted({k for r in rows for k in r["metrics"]})]
    measures += [f"final.{k}" for k in dict.fromkeys(k for r in rows for k in r["final"])]
    keys = results["keys"] or ["trial"]
    palette = qualitative.Plotly  # one colour per trial, the same in every panel
    colour = {r["trial"]: palette[i % len(palette)] for i, r in enumerate(results["trials"])}
    fig = make_subplots(rows=max(1, len(measures)), cols=len(keys), shared_xaxes="columns",
                        column_titles=keys, row_titles=measures or None, vertical_spacing=0.04)
    for i, measure in enumerate(measures, 1):
        group, _, name = measure.partition(".")
        points = [r for r in rows if name in r[group]]
        for j, key in enumerate(keys, 1):
            x = [r["trial"] if key == "trial" else json.dumps(r["overrides"][key]) if isinstance(r["overrides"][key], list)
                 else r["overrides"][key] for r in points]
            hover = ["<br>".join([r["trial"], *(f"{k} = {v}" for k, v in r["overrides"].items())]) for r in points]
            fig.add_trace(go.Scatter(x=x, y=[r[group][name] for r in points], mode="markers", text=hover,
                                     hovertemplate="%{text}<br>" + measure + " = %{y:.4g}<extra></extra>",
                                     marker={"size": 9, "color": [colour[r["trial"]] for r in points]},
                                     showlegend=False), row=i, col=j)
            numbers = [v for v in x if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if numbers and len(numbers) == len(x) and min(numbers) > 0 and max(numbers) >= 10 * min(numbers):
                fig.update_xaxes(type="log", row=i, col=j)  # learning rates and the like span decades
    failed = sum(r["status"] == "failed" for r in results["trials"])
    fig.update_layout(title=f"sweep {results['name']}: {results['model']} on {results['dataset']}, {len(rows)} finished"
                            f"{f', {failed} failed' if failed else ''}",
                      height=220 + 260 * max(1, len(measures)), template="plotly_white")
    return fig


def write_results(out: Path, spec_path: Path, spec: SweepSpec, rows: list[dict]) -> dict:
    results = {"format": FORMAT, "version": VERSION, "name": spec_path.stem, "spec": str(spec_path),
               "dataset": spec.dataset, "model": spec.model, "mode": spec.mode, "seed": spec.seed,
               "fixed": spec.fixed, "grid": spec.grid, "keys": list(spec.grid), "updated_at": now(), "trials": rows}
    ckpt.write_json(out / RESULTS_JSON, results)
    lines = [flat_row(r) for r in rows]
    columns = list(dict.fromkeys(k for line in lines for k in line))

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(lines)

    ckpt.atomic_write(out / RESULTS_CSV, write_csv)
    # "directory": plotly.min.js is written once beside the chart, so the page opens offline.
    ckpt.atomic_write(out / RESULTS_HTML, lambda tmp: figure(results).write_html(tmp, include_plotlyjs="directory"))
    return results


def run_sweep(spec_path: Path, out: Path, data_root: Path | None = None, download: bool = False) -> dict:
    """Run every trial of the spec not yet finished or failed in `out`; returns the results.json dict."""
    spec = read_spec(spec_path)
    plan = trials(spec)
    out.mkdir(parents=True, exist_ok=True)
    names = [trial_name(i) for i in range(len(plan))]
    for name, params in zip(names, plan):  # a folder made by another spec must not be skipped or resumed as this one
        path = out / name / TRIAL_JSON
        if path.exists() and ckpt.read_json(path)["overrides"] != json.loads(json.dumps(params)):
            raise ConfigError(f"{path} was made with overrides {ckpt.read_json(path)['overrides']}, but {spec_path} "
                              f"now gives {params} for {name}: use another --out for a changed spec")
    data = None
    for i, (name, params) in enumerate(zip(names, plan)):
        folder = out / name
        status = ckpt.read_json(folder / TRIAL_JSON)["status"] if (folder / TRIAL_JSON).exists() else "pending"
        if status in ("finished", "failed"):
            print(f"{name} {status} earlier: skipped", file=sys.stderr)
            continue
        print(f"{name} ({i + 1}/{len(plan)}): {params}", file=sys.stderr, flush=True)
        data = run_trial(spec, name, folder, params, data, data_root, download)
        write_results(out, spec_path, spec, [collect(out / n, n, p) for n, p in zip(names, plan)])
    return write_results(out, spec_path, spec, [collect(out / n, n, p) for n, p in zip(names, plan)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", type=Path, help="sweep spec (TOML), e.g. train/sweeps/mnist-dcgan-lr-optimizer.toml")
    ap.add_argument("--out", type=Path, help="sweep folder (default runs/sweeps/SPEC_NAME)")
    ap.add_argument("--dry-run", action="store_true", help="check the spec and print the trials without training")
    ap.add_argument("--data-root", type=Path, help="folder with downloaded datasets (default ./data or $GENMODELS_DATA)")
    ap.add_argument("--download", action="store_true", help="allow torchvision to download MNIST/Fashion-MNIST/CIFAR-10")
    args = ap.parse_args(argv)
    out = args.out or Path("runs") / "sweeps" / args.spec.stem
    try:
        if args.dry_run:
            spec = read_spec(args.spec)
            for i, params in enumerate(trials(spec)):
                print(f"{trial_name(i)}: {trial_command(spec, out / trial_name(i), trial_overrides(spec, params))}")
            return 0
        results = run_sweep(args.spec, out, args.data_root, args.download)
    except (ConfigError, DatasetUnavailable, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume the sweep in {out}", file=sys.stderr)
        return 130
    counts = {s: sum(r["status"] == s for r in results["trials"]) for s in ("finished", "failed")}
    print(f"{counts['finished']} finished, {counts['failed']} failed; table: {out / RESULTS_CSV}, "
          f"chart: {out / RESULTS_HTML}")
    return 0


if __name__ == "__main__":
    restore_ctrl_c()
    sys.exit(main())
