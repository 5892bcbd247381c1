"""Copy a finished run's checkpoint into a weights folder the app reads.

    python -m train.ship RUN_DIR DEST [--final]

Ships RUN_DIR/best (the epoch with the lowest per-epoch FID) when the run kept one, else (or with
--final) RUN_DIR/checkpoint, the last epoch. DEST gets its weights and config.json, written again by
`genmodels.checkpoint.save` (the same tensors, with the content hash that `load` checks, also for runs
saved before checkpoints had one), the run's whole history.json (every epoch, the best one marked) and a
preview.png drawn from the shipped weights. A metrics.json already in DEST described other weights, so it is removed: measure the new
ones with `python -m genmodels.evaluate DEST`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.sampling import preview_grid

MAX_WEIGHTS_BYTES = 10 * 2**20  # the shipped weights stay small enough for git and a Space


def ship(run: Path, dest: Path, final: bool = False) -> Path:
    source = run / "checkpoint" if final or not (run / "best").is_dir() else run / "best"
    model = ckpt.load(source)  # refuses a checkpoint that does not load, before DEST is touched
    size = (source / ckpt.WEIGHTS).stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{source / ckpt.WEIGHTS} is {size / 2**20:.1f} MB, over the "
                              f"{MAX_WEIGHTS_BYTES // 2**20} MB shipped weights may take")
    path = run / "checkpoint" / ckpt.HISTORY
    history = ckpt.check_history(ckpt.read_json(path), path)
    config = model.checkpoint
    ckpt.save(model, dest, config["family"], data=config.get("data"), training=config.get("training"))
    ckpt.write_json(dest / ckpt.HISTORY, history)
    image = preview_grid(model)
    ckpt.atomic_write(dest / "preview.png", lambda tmp: image.save(tmp, format="PNG"))
    (dest / ckpt.METRICS).unlink(missing_ok=True)
    return source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder written by python -m train (holds checkpoint/, maybe best/)")
    ap.add_argument("dest", type=Path, help="weights folder to write, e.g. weights/fashion-mnist/dcgan")
    ap.add_argument("--final", action="store_true", help="ship the last epoch even when the run kept a best one")
    args = ap.parse_args(argv)
    try:
        source = ship(args.run, args.dest, args.final)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"shipped {source} to {args.dest}; measure it with: python -m genmodels.evaluate {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
