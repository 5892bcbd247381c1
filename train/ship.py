"""Copy a finished run's checkpoint into a weights folder the app reads.

    python -m train.ship RUN_DIR DEST [--final | --choose N] [--prior-components K] [--truncation PSI]

Ships RUN_DIR/best (the epoch with the lowest per-epoch FID) when the run kept one, else (or with --final)
RUN_DIR/checkpoint, the last epoch. With --choose N it ships the epoch of lowest Inception FID, N samples against N
training images, among the leading epochs the per-epoch FID screened (RUN_DIR/candidates/, kept with
train.keep_candidates), best/ and the last epoch: the fast per-epoch FID (a classifier's features) and Inception FID
disagree across models, and the test split is kept for the number that ships. config.json records the choice.
With --prior-components K a VAE ships with its mixture prior fitted again, with K components, to the encoder means
of its whole training split: the trainer refits the prior after every epoch, where a large K costs minutes an epoch.
With --truncation PSI the model's samples are drawn at truncation PSI (Brock et al. 2019) unless a user asks for
another: in the app, in its preview and in `genmodels.evaluate`, whose metrics record it. config.json keeps it in its
"sampling" table, with --chosen saying how PSI was chosen.

DEST gets its weights and config.json, written again by `genmodels.checkpoint.save` (the same tensors, with the
content hash that `load` checks, also for runs saved before checkpoints had one), the run's whole history.json (every
epoch, the best one marked) and a preview.png drawn from the shipped weights. A metrics.json already in DEST described
other weights, so it is removed: measure the new ones with `python -m genmodels.evaluate DEST`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from genmodels import checkpoint as ckpt
from genmodels.checkpoint import CheckpointError
from genmodels.config import ConfigError
from genmodels.data import DatasetUnavailable, load_data
from genmodels.device import pick_device
from genmodels.metrics.features import get_extractor
from genmodels.metrics.suite import fid_kid, inception_features
from genmodels.registry import get_family
from genmodels.sampling import preview_grid

MAX_WEIGHTS_BYTES = 10 * 2**20  # the shipped weights stay small enough for git and a Space


CHOICE_SEED = 1  # the choice's samples are not the ones the shipped FID (seed 0, test split) is measured on


def choose(run: Path, n: int, device: str | None = None) -> tuple[Path, dict]:
    """The leading epoch of lowest Inception FID (n samples against n training images), and the record of the choice."""
    device = str(pick_device(device))
    extractor, scores, folders = get_extractor(device), {}, {}
    for folder in [*sorted((run / ckpt.CANDIDATES).glob("epoch-*")), run / ckpt.BEST, run / ckpt.CHECKPOINT]:
        if not folder.is_dir():
            continue
        try:
            model = ckpt.load(folder, device)
        except CheckpointError as e:  # a candidate whose save was cut short by a kill: the others still count
            print(f"skipped {folder}: {e}", file=sys.stderr)
            continue
        epoch = model.checkpoint["training"]["epochs"]
        if epoch in scores:
            continue  # best/ and the last epoch are often also candidates
        features = inception_features(model, n, "train", CHOICE_SEED, extractor, real_features=False, n_real=n)
        scores[epoch] = fid_kid(features, with_kid=False)["fid"]["value"]
        folders[epoch] = folder
        print(f"epoch {epoch:g}: FID {scores[epoch]:.2f} ({n} samples against {n} training images)", file=sys.stderr)
    if not scores:
        raise CheckpointError(f"{run} has no loadable checkpoint to choose from")
    epoch = min(scores, key=scores.get)
    record = {"by": "fid", "n": n, "ref_split": "train", "seed": CHOICE_SEED, "epoch": epoch,
              "fid_by_epoch": {f"{e:g}": round(v, 3) for e, v in sorted(scores.items())},
              "protocol": extractor.describe()}
    return folders[epoch], record


def refit_prior(model, components: int):
    """A copy of the VAE `model` whose mixture prior has `components` components, fitted to the encoder means of the
    model's whole training split (Ghosh et al. 2020, section 4); every other tensor is the model's own."""
    if not getattr(model, "prior_components", 0):
        raise CheckpointError("--prior-components refits a VAE's mixture prior, and this checkpoint has none")
    try:
        config = dataclasses.replace(model.config, prior_components=components)
    except ConfigError as e:
        raise CheckpointError(str(e)) from e
    refit = get_family(model.checkpoint["family"]).build_generator(config)
    refit.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior_")}, strict=False)
    c, size = model.image_shape[0], model.image_shape[1]
    try:
        images = load_data(model.checkpoint["data"]["dataset"], "train", size, c).images
    except DatasetUnavailable as e:  # the codes to fit are the training split's: without it, nothing to ship
        raise CheckpointError(f"--prior-components needs the model's training split: {e}") from e
    refit.fit_prior_to(images)
    return refit


def ship(run: Path, dest: Path, final: bool = False, choose_n: int = 0, device: str | None = None,
         prior_components: int = 0, truncation: float = 1.0, chosen: str = "") -> Path:
    if problem := ckpt.truncation_problem(truncation):
        raise CheckpointError(f"--truncation {problem}")
    choice = None
    if choose_n:
        source, choice = choose(run, choose_n, device)
    else:
        source = run / ckpt.CHECKPOINT if final or not (run / ckpt.BEST).is_dir() else run / ckpt.BEST
    model = ckpt.load(source)  # refuses a checkpoint that does not load, before DEST is touched
    size = (source / ckpt.WEIGHTS).stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{source / ckpt.WEIGHTS} is {size / 2**20:.1f} MB, over the "
                              f"{MAX_WEIGHTS_BYTES // 2**20} MB shipped weights may take")
    path = run / ckpt.CHECKPOINT / ckpt.HISTORY
    history = ckpt.check_history(ckpt.read_json(path), path)
    config = model.checkpoint
    training = {**config.get("training", {}), **({"choice": choice} if choice else {})}
    if prior_components:
        model = refit_prior(model, prior_components)
        training["prior_refit"] = {"components": prior_components, "split": "train", "seed": 0}
    sampling = {"truncation": truncation, **({"chosen": chosen} if chosen else {})} if truncation != 1.0 else None
    ckpt.save(model, dest, config["family"], data=config.get("data"), training=training, sampling=sampling)
    ckpt.write_json(dest / ckpt.HISTORY, history)
    image = preview_grid(ckpt.load(dest))  # drawn as the app draws it, at the shipped truncation
    ckpt.atomic_write(dest / ckpt.PREVIEW, lambda tmp: image.save(tmp, format="PNG"))
    (dest / ckpt.METRICS).unlink(missing_ok=True)
    return source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder written by python -m train (holds checkpoint/, maybe best/)")
    ap.add_argument("dest", type=Path, help="weights folder to write, e.g. weights/fashion-mnist/dcgan")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--final", action="store_true", help="ship the last epoch even when the run kept a best one")
    how.add_argument("--choose", type=int, default=0, metavar="N",
                     help="ship the leading epoch of lowest Inception FID, N samples against N training images")
    ap.add_argument("--device", help="device for --choose (default: the best one here)")
    ap.add_argument("--prior-components", type=int, default=0, metavar="K",
                    help="a VAE: fit its mixture prior again with K components to the whole training split")
    ap.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                    help="draw the shipped model's samples at truncation PSI unless asked otherwise (default 1, none)")
    ap.add_argument("--chosen", default="", metavar="TEXT", help="how PSI was chosen, recorded beside it")
    args = ap.parse_args(argv)
    try:
        source = ship(args.run, args.dest, args.final, args.choose, args.device, args.prior_components,
                      args.truncation, args.chosen)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"shipped {source} to {args.dest}; measure it with: python -m genmodels.evaluate {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
