"""Compute every metric that applies to a checkpoint and write metrics.json beside it.

    python -m genmodels.evaluate CHECKPOINT [--n N] [--ref train|test] [--n-real N] [--truncation PSI] [--json]

FID and KID for every model; SSIM and MSE of held-out images (VAE: reconstruction, GANs: projection);
nearest-training-image distance (memorisation); conditional accuracy for conditional models; classifier
FID where the dataset has a shipped classifier. Each value is stored with its protocol.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .checkpoint import CheckpointError
from .config import shown_path
from .device import pick_device
from .metrics.suite import METRICS, Evaluation
from .sampling import default_truncation


def evaluate(location: str | Path, n: int = 1000, ref_split: str = "test", seed: int = 0, device: str | None = None,
             n_projection: int = 100, projection_steps: int = 200, only: list[str] | None = None,
             write: bool = True, n_real: int | None = None, truncation: float | None = None) -> dict:
    """The metrics.json dict of a checkpoint (written beside it unless write=False): every registered metric that
    applies to the model, or those named in `only`. `n_real`: FID, KID, precision and recall against a fixed random
    n_real images of the split instead of all of it. Samples are drawn at the checkpoint's own truncation
    (config.json "sampling"), recorded in each metric that draws them when it is not 1; `truncation` draws them at
    another, and the result, which describes samples the app does not draw, is then not written."""
    start = time.time()
    wanted = set(only) if only else None
    if unknown := sorted((wanted or set()) - set(METRICS)):
        raise ValueError(f"unknown metric{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                         f"the metrics are {', '.join(METRICS)}")
    if n_real is not None and n_real < 2:
        raise ValueError(f"n_real must be at least 2 (a covariance needs two images), got {n_real}")
    if truncation is not None and (problem := ckpt.truncation_problem(truncation)):
        raise ValueError(f"truncation {problem}")
    dev = pick_device(device)
    model = ckpt.load(location, dev)
    other = truncation is not None and truncation != default_truncation(model)
    if other:
        write = False
        model.checkpoint = {**model.checkpoint, "sampling": {"truncation": truncation}}  # what every sample follows
    drawn_at = default_truncation(model)
    run = Evaluation(model, n, ref_split, seed, n_projection, projection_steps, wanted, bars=True, n_real=n_real)
    metrics: dict = {}
    skipped: dict = {}
    for metric in METRICS.values():
        if run.wants(metric.name) and metric.applies(model):
            try:
                metrics[metric.name] = metric.compute(run)
            except CheckpointError as e:  # a helper it needs does not ship for this dataset
                skipped[metric.needs or metric.name] = str(e)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
    for name, value in metrics.items():
        value.update(computed_at=now, device=device_name)
        if METRICS[name].draws and drawn_at != 1.0:
            value.update(protocol=f"{value['protocol']}; samples drawn at truncation {drawn_at:g} (Brock et al. "
                                  "2019)", truncation=drawn_at)
    if wanted is not None and not other:
        # a partial run updates the metrics it computed and keeps the others already measured (at the same truncation)
        previous = ckpt.read_optional_json(model.checkpoint_dir, ckpt.METRICS) or {}
        metrics = {**previous.get("metrics", {}), **metrics}
    result = {
        "checkpoint": shown_path(model.checkpoint_dir),
        "computed_at": now,
        "device": device_name,
        "seconds": round(time.time() - start, 1),
        "metrics": metrics,
    }
    if skipped:
        result["skipped"] = skipped
    if write:
        ckpt.write_json(Path(model.checkpoint_dir) / ckpt.METRICS, result)
    return result


def table(result: dict) -> str:
    rows = [("metric", "value", "n", "ref", "seconds")]
    for name, m in result["metrics"].items():
        value = f"{m['value']:.4f}" + (f" ± {m['std']:.4f}" if "std" in m else "")
        rows.append((name, value, str(m.get("n", "")), m.get("ref_split", ""), f"{m['seconds']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"\n{result['checkpoint']} on {result['device']}, {result['seconds']:.0f} s")
    lines += [f"{name}: {m['protocol']}" for name, m in result["metrics"].items()]
    lines += [f"skipped {k}: {v}" for k, v in result.get("skipped", {}).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genmodels.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors) or hub repo id")
    parser.add_argument("--n", type=int, default=1000, help="generated samples for FID/KID/accuracy/memorisation")
    parser.add_argument("--ref", choices=("train", "test"), default="test", help="real split FID/KID compare against")
    parser.add_argument("--n-real", type=int, default=None,
                        help="compare against a fixed random N images of the split, not all of it: a quick check "
                             "(--ref train is otherwise 60,000 Inception passes), not a reportable FID")
    parser.add_argument("--n-projection", type=int, default=100, help="held-out images reconstructed or projected")
    parser.add_argument("--projection-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--only", default=None, help=f"comma-separated metric names to compute: {', '.join(METRICS)}")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="draw the samples at truncation PSI instead of the checkpoint's own (1 = none); the "
                             "result is printed, metrics.json is left as it is")
    parser.add_argument("--json", action="store_true", help="print metrics.json instead of a table")
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.checkpoint, args.n, args.ref, args.seed, args.device, args.n_projection,
                          args.projection_steps, args.only.split(",") if args.only else None, n_real=args.n_real,
                          truncation=args.truncation)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
