"""python -m train DATASET MODEL [options]: train one model; `python -m train --list` shows what exists."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.config import ConfigError
from genmodels.data import DatasetUnavailable, dataset_names
from genmodels.device import pick_device
from genmodels.registry import family_names, get_family

from .command import command_line, restore_ctrl_c
from .config import config_file, prepare
from .outcome import ERROR, FINISHED, INTERRUPTED, clear_outcome, write_outcome
from .trainer import Trainer, TrainingDiverged


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    ap.add_argument("dataset", nargs="?", help="mnist | fashion-mnist | cifar10 | folder:PATH")
    ap.add_argument("model", nargs="?", help="model family: " + " | ".join(family_names()))
    ap.add_argument("--list", action="store_true", help="list datasets, model families and config files")
    ap.add_argument("--epochs", type=int, help="same as --set train.epochs=N")
    ap.add_argument("--max-steps", type=int, help="stop after N iterations in all (same as --set train.max_steps=N)")
    ap.add_argument("--batch-size", type=int, help="same as --set train.batch_size=N")
    ap.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (same as --set train.device=...)")
    ap.add_argument("--out", type=Path, help="run folder (default runs/DATASET/MODEL)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    ap.add_argument("--config", type=Path, help="config file (default train/configs/DATASET/MODEL.toml)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a config value, e.g. --set train.lr=1e-4 --set model.width=32")
    ap.add_argument("--data-root", type=Path, help="folder with downloaded datasets (default ./data or $GENMODELS_DATA)")
    ap.add_argument("--download", action="store_true", help="allow torchvision to download MNIST/Fashion-MNIST/CIFAR-10")
    return ap


def list_known() -> None:
    print("datasets:", ", ".join(dataset_names()))
    print("model families:")
    for name in family_names():
        f = get_family(name)
        print(f"  {name:8s} {f.title} ({f.paper}){', conditional' if f.conditional else ''}")
    print("configs:")
    for path in sorted(Path(__file__).parent.glob("configs/*/*.toml")):
        print(f"  {path.parent.name} {path.stem}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        list_known()
        return 0
    if not args.dataset or not args.model:
        parser().error("give DATASET and MODEL, or --list")
    overrides = list(args.overrides)
    for flag, key in (("epochs", "epochs"), ("max_steps", "max_steps"), ("batch_size", "batch_size"), ("device", "device")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"train.{key}={value if flag != 'device' else repr(value)}")
    out = args.out or Path("runs") / args.dataset.replace(":", "_").replace("/", "_") / args.model
    clear_outcome(out)
    try:
        if args.device:
            pick_device(args.device)  # a device this machine lacks stops the run here, before the data loads
        run, data = prepare(args.dataset, args.model, overrides, args.config, args.data_root, args.download)
        command = command_line(argv if argv is not None else sys.argv[1:])
        trainer = Trainer(run, data, out, command=command)
        if (out / ckpt.RESUME).exists() and not args.resume:
            raise CheckpointError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        if args.resume and not trainer.resume():
            print(f"nothing to resume in {out}; starting a new run", file=sys.stderr)
        if trainer.world.is_main:
            print(f"training {args.model} on {args.dataset} ({len(data)} images, {data.source}) on {trainer.device}"
                  f"{' x ' + str(trainer.world.size) + ' processes' if trainer.world.size > 1 else ''}"
                  f"{' with ' + str(trainer.dtype).replace('torch.', '') + ' autocast' if trainer.dtype else ''}; "
                  f"config {run.source_file or '(defaults: no ' + str(config_file(args.dataset, args.model)) + ')'}",
                  file=sys.stderr, flush=True)
        try:
            path = trainer.fit()
        finally:
            trainer.world.close()
    except (ConfigError, DatasetUnavailable, CheckpointError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        write_outcome(out, ERROR, message=str(e))
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: continue with --resume --out {out}", file=sys.stderr)
        write_outcome(out, INTERRUPTED)
        return 130
    if trainer.world.is_main:
        print(f"checkpoint: {path}")
        write_outcome(out, FINISHED, checkpoint=path)
    return 0


if __name__ == "__main__":
    restore_ctrl_c()
    sys.exit(main())
