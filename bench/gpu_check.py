"""Does the GPU path work? One command, one process, a few minutes on one GPU: every registered family trained,
checkpointed, sampled, explored, exported, measured and served on one device.

    make gpu-check                                   # python bench/gpu_check.py: cuda, the sizes below
    python bench/gpu_check.py --device cuda:1
    python bench/gpu_check.py --device cpu --steps 2 --batch-size 16 --fid-n 4 --n-real 4 --projection-steps 2
                                                     # its plumbing, in seconds (tests/test_gpu_check.py)

For each family of genmodels.registry, on mnist-5k:
  train    --steps iterations of train.trainer.Trainer at the trainer's default precision for the device
  reload   the checkpoint it wrote, loaded onto the device: the same weights, drawing the same images; and the
           run resumed: its optimisers' state where a fresh run keeps it
  sample   64 images, timed between device synchronisations (median of 5 after a warm-up)
  explore  GANSpace directions and projection (VAE: reconstruction) with their inputs on the device
  export   genmodels.export to ONNX; ONNX Runtime draws what torch draws, and the model stays on the device
  fid      the metrics suite's FID of --fid-n samples, its Inception network on the device
  pages    every page of the app (pages/app/main.py's navigation) through AppTest, with the device picked in the
           sidebar and the family's checkpoint in its model box
then prints one table, family x (train img/s, sample ms, FID, pages OK), and every failure on a line of its own that
names the family, the step and the error. Exit status 1 when anything failed; a device this machine lacks is one
`error:` line and exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from genmodels import checkpoint as ckpt  # noqa: E402
from genmodels.config import WEIGHTS_ENV, ConfigError  # noqa: E402
from genmodels.data import load_data  # noqa: E402
from genmodels.device import autocast_dtype, pick_device, synchronize, tensor_device  # noqa: E402
from genmodels.explore import principal_directions  # noqa: E402
from genmodels.export import export, input_names  # noqa: E402
from genmodels.metrics.classifier import classifier_dir  # noqa: E402
from genmodels.metrics.projection import project  # noqa: E402
from genmodels.metrics.suite import METRICS, Evaluation  # noqa: E402
from genmodels.registry import family_names, get_family  # noqa: E402
from genmodels.sampling import eval_mode, generate, latents, sample  # noqa: E402
from train.config import prepare  # noqa: E402
from train.trainer import Trainer  # noqa: E402

DATASET = "mnist-5k"
APP = ROOT / "pages" / "app" / "main.py"
# Images in [-1, 1] drawn twice on one device must agree to this: CUDA runs fp32 convolutions in TF32 by default, and
# a checkpoint reloads in the contiguous memory format where training used channels_last, so the kernels differ.
TOLERANCE = 1e-2
SAMPLE_BATCH, SAMPLE_REPEATS = 64, 5


class CheckFailed(AssertionError):
    """A step ran but did not do what it should; the message says what."""


@dataclass
class Row:
    family: str
    train_rate: float | None = None   # images/s
    sample_ms: float | None = None
    fid: float | None = None
    pages: str = "–"
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python bench/gpu_check.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | mps | cpu (default cuda)")
    ap.add_argument("--steps", type=int, default=300, help="training iterations per family")
    ap.add_argument("--batch-size", type=int, default=0, help="training batch (0: each family's config)")
    ap.add_argument("--fid-n", type=int, default=1000, help="samples per FID")
    ap.add_argument("--n-real", type=int, default=0, help="real test images FID compares with (0: all 500)")
    ap.add_argument("--projection-steps", type=int, default=50, help="Adam steps of the projection check")
    ap.add_argument("--families", default="", help="comma-separated subset of the registry (default: every family)")
    ap.add_argument("--out", type=Path, help="folder for the runs, checkpoints and exports (default: a temporary one)")
    return ap.parse_args(argv)


def thousands(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def step(row: Row, name: str, fn, *args):
    """Run one check step; a failure is recorded against the family and step, and None returned."""
    start = time.perf_counter()
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001  (any error is a failure to report, and the other families still run)
        where = traceback.extract_tb(e.__traceback__)[-1]
        said, at = (str(e).strip().splitlines() or [""])[0], f"{Path(where.filename).name}:{where.lineno}"
        row.failures.append(f"{row.family} {name}: {type(e).__name__}: {said} ({at})")
        return None
    finally:
        row.seconds[name] = time.perf_counter() - start


def on(device: torch.device, what: str, tensor: torch.Tensor) -> None:
    """That `tensor` lies on `device`, named as tensors name it (cuda:0, not cuda)."""
    if tensor.device != device:
        raise CheckFailed(f"{what} is on {tensor.device}, not on {device}")


def finite(what: str, tensor: torch.Tensor) -> None:
    if not bool(torch.isfinite(tensor).all()):
        raise CheckFailed(f"{what} holds NaN or infinite values")


# ---- the library steps ---------------------------------------------------------------------------------------------

def train(row: Row, args, data, device: torch.device, out: Path):
    overrides = [f"train.max_steps={args.steps}", f"train.device='{args.device}'", "train.live_every=0",
                 *([f"train.batch_size={args.batch_size}"] if args.batch_size else [])]
    run, data = prepare(DATASET, row.family, overrides, data=data)
    with open(out / "train.log", "w") as log, contextlib.redirect_stderr(log):  # epoch lines and bars, kept apart
        trainer = Trainer(run, data, out / "run", command=f"bench/gpu_check.py {row.family}")
        if tensor_device(trainer.device) != str(device):
            raise CheckFailed(f"the trainer picked {trainer.device} for --device {args.device}")
        path = trainer.fit()
    rates = [entry["images_per_sec"] for entry in trainer.history]
    row.train_rate = statistics.median(rates)
    on(device, "the trained generator", next(trainer.shipped.parameters()))
    return trainer, path


def reload(row: Row, trainer, path: Path, device: torch.device):
    """The checkpoint onto the device, and the run's resume state into a new trainer."""
    model = ckpt.load(path, device)
    on(device, "the reloaded generator", next(model.parameters()))
    saved, trained = model.state_dict(), trainer.shipped.state_dict()
    if changed := [k for k in trained if not torch.equal(saved[k].cpu(), trained[k].cpu())]:
        raise CheckFailed(f"the reloaded weights differ from the trained ones in {', '.join(changed[:3])}")
    with eval_mode(trainer.shipped):
        want = sample(trainer.shipped, 16, seed=3)
    got = sample(model, 16, seed=3)
    if (difference := (got - want).abs().max()) > TOLERANCE:
        raise CheckFailed(f"the reloaded generator draws other images (max |difference| {difference:.3g})")
    resumed = Trainer(trainer.run, trainer.data, trainer.out)
    if not resumed.resume():
        raise CheckFailed("the run left no resume state")
    for name, opt in (("generator", resumed.opt_g), ("discriminator", resumed.opt_d)):
        for state in opt.state.values() if opt is not None else ():
            if "step" in state and state["step"].device.type != "cpu":
                raise CheckFailed(f"the resumed {name} optimiser counts its steps on {state['step'].device}, where a "
                                  "fresh one counts on the CPU")
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    on(device, f"the resumed {name} optimiser's {key}", state[key])
    return model


def draw(row: Row, model, device: torch.device) -> None:
    z = latents(model, SAMPLE_BATCH, seed=0)
    labels = torch.arange(SAMPLE_BATCH, device=device) % model.num_classes if model.num_classes else None
    times = []
    with torch.no_grad():
        for _ in range(1 + SAMPLE_REPEATS):  # the first call pays for kernel selection and allocation
            synchronize(device)
            start = time.perf_counter()
            images = model.generate(z, labels)
            synchronize(device)
            times.append(time.perf_counter() - start)
    on(device, "generated images", images)
    finite("generated images", images)
    if tuple(images.shape) != (SAMPLE_BATCH, *model.image_shape):
        raise CheckFailed(f"generate gave shape {list(images.shape)}")
    row.sample_ms = statistics.median(times[1:]) * 1000


def explore(row: Row, args, model, heldout, device: torch.device) -> None:
    directions = principal_directions(model, k=2, n_samples=64)
    finite("GANSpace directions", directions.vectors)
    images, labels = heldout.batch(torch.arange(4))
    if get_family(row.family).has_encoder:
        with torch.no_grad():
            out = model.decode(model.encode(images.to(device))[0])
    else:
        _, out = project(model, images, labels if model.num_classes else None, steps=args.projection_steps, restarts=2)
    on(device, "reproduced images", out)
    finite("reproduced images", out)


def export_onnx(row: Row, model, device: torch.device, out: Path) -> None:
    import onnxruntime  # here, as AppTest below: a device this machine lacks is said without loading them

    path = export(model, out / "generator.onnx")
    on(device, "the generator after its export", next(model.parameters()))
    z = torch.randn(8, model.latent_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % model.num_classes if model.num_classes else None
    feeds = dict(zip(input_names(model), (z.numpy(), None if labels is None else labels.numpy())))
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    want = generate(model, z.to(device), labels).numpy()
    if got.shape != want.shape:
        raise CheckFailed(f"ONNX Runtime draws images of shape {list(got.shape)}, torch {list(want.shape)}")
    if (difference := np.abs(got - want).max()) > TOLERANCE:
        raise CheckFailed(f"ONNX Runtime draws other images than torch (max |difference| {difference:.3g})")


def fid(row: Row, args, model, device: torch.device) -> None:
    measured = METRICS["fid"].compute(Evaluation(model, n=args.fid_n, wanted={"fid"}, n_real=args.n_real or None))
    if f"on {device.type}" not in measured["feature_extractor"]:
        raise CheckFailed(f"the Inception features ran elsewhere: {measured['feature_extractor']}")
    row.fid = measured["value"]


# ---- the app -------------------------------------------------------------------------------------------------------

def app_pages() -> list[str]:
    """The pages the app navigates to, as st.Page names them in its entry script."""
    return re.findall(r'st\.Page\("\.\./(\w+)\.py"', APP.read_text())


def serve(row: Row, device: torch.device, pages: list[str]) -> None:
    """Every page through AppTest with this device picked in the sidebar and this family's checkpoint chosen."""
    from streamlit.testing.v1 import AppTest

    def problems(at: AppTest) -> list[str]:
        return [str(e.value).splitlines()[0] for e in (*at.exception, *at.error)]

    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    if said := problems(at):
        raise CheckFailed(f"the app's first page: {said[0]}")
    offered = list(at.sidebar.radio(key="device").options)
    if device.type not in offered:
        raise CheckFailed(f"the sidebar offers the devices {', '.join(offered)}, not {device.type}")
    at.sidebar.radio(key="device").set_value(device.type).run()
    at.sidebar.selectbox(key="model").set_value(f"{DATASET}/{row.family}").run()
    ok, failed = 0, []
    for page in pages:
        at.switch_page(f"../{page}.py").run()
        if said := problems(at):
            failed.append(f"{page}: {said[0]}")
        elif at.session_state["device"] != device.type:
            failed.append(f"{page}: the sidebar's device became {at.session_state['device']}")
        else:
            ok += 1
    row.pages = f"{ok}/{len(pages)}"
    if failed:
        raise CheckFailed("; ".join(failed))


# ---- the whole check -----------------------------------------------------------------------------------------------

def describe(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    dtype = autocast_dtype(device)
    precision = str(dtype).replace("torch.", "") if dtype else "fp32"
    return f"{device} ({name}), torch {torch.__version__}, trainer precision {precision}"


def table(rows: list[Row], fid_n: int) -> str:
    """A Markdown table, numbers right-aligned; a dash where a step failed or did not run."""
    def shown(value: float | None, fmt: str) -> str:
        return "–" if value is None else fmt.format(value)

    header = ("family", "train img/s", "sample ms", f"FID-{thousands(fid_n)}", "pages OK")
    cells = [header] + [(r.family, shown(r.train_rate, "{:,.1f}"), shown(r.sample_ms, "{:.2f}"), shown(r.fid, "{:.1f}"),
                         r.pages) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))) + " |"
             for line in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        device = torch.device(tensor_device(pick_device(args.device)))  # as tensors name it: cuda:0
        names = [n.strip() for n in args.families.split(",") if n.strip()] or family_names()
        for name in names:
            get_family(name)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    classifier = classifier_dir(DATASET, os.environ.get(WEIGHTS_ENV) or ROOT / "weights")
    if not classifier.is_dir():
        print(f"error: no {DATASET} classifier in {classifier} (per-epoch FID and the app's verdicts need it)",
              file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    shutil.copytree(classifier, classifier_dir(DATASET, out / "weights"), dirs_exist_ok=True)
    with environment(out):
        return check(args, device, names, out)


@contextlib.contextmanager
def environment(out: Path):
    """What the trainer, and the app when AppTest runs it in this process, read: this check's checkpoints and
    classifier only, no model hub, no sweeps; the Train page's runs and the votes under `out`. The caller's values
    come back after."""
    from genmodels.votes import VOTES_ENV
    from pages.app.common import SWEEPS_ENV
    from train.runs import ROOT_ENV

    values = {WEIGHTS_ENV: str(out / "weights"), SWEEPS_ENV: str(out / "sweeps"), ROOT_ENV: str(out / "app-runs"),
              VOTES_ENV: str(out / "votes.sqlite3"), "HF_HUB_OFFLINE": "1"}
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def check(args, device: torch.device, names: list[str], out: Path) -> int:
    started = time.perf_counter()
    print(f"gpu check on {describe(device)}; {DATASET}, {args.steps} steps per family", flush=True)
    data, heldout = load_data(DATASET, "train"), load_data(DATASET, "test")
    rows = [Row(name) for name in names]
    served = [row for row in rows if one_family(row, args, data, heldout, device, out)]
    pages = app_pages()
    for row in served:
        step(row, "pages", serve, row, device, pages)
        print(f"  {row.family}: pages {row.pages}, {row.seconds['pages']:.1f} s", flush=True)
    failures = [f for row in rows for f in row.failures]
    real = f"{args.n_real} random" if args.n_real else "all"
    print(f"\n{table(rows, args.fid_n)}\n\nFID: {args.fid_n} samples against {real} {DATASET} test images, Inception "
          f"on the device; sample ms: {SAMPLE_BATCH} images; {len(pages)} pages; {time.perf_counter() - started:.0f} s")
    for failure in failures:
        print(f"FAILED {failure}")
    said = "passed" if not failures else f"{len(failures)} failure{'s' * (len(failures) > 1)}"
    print(f"gpu check: {said}", flush=True)
    return 1 if failures else 0


def one_family(row: Row, args, data, heldout, device: torch.device, out: Path) -> bool:
    """The library steps of one family; True when its checkpoint is in the weights folder for the app's pages."""
    folder = out / row.family
    folder.mkdir(parents=True, exist_ok=True)
    trained = step(row, "train", train, row, args, data, device, folder)
    model = step(row, "reload", reload, row, *trained, device) if trained else None
    if model is not None:
        shutil.copytree(trained[1], out / "weights" / DATASET / row.family, dirs_exist_ok=True)
        step(row, "sample", draw, row, model, device)
        step(row, "explore", explore, row, args, model, heldout, device)
        step(row, "export", export_onnx, row, model, device, folder)
        step(row, "fid", fid, row, args, model, device)
    print(f"  {row.family}: {'FAILED' if row.failures else 'ok'}; "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in row.seconds.items()), flush=True)
    return model is not None


if __name__ == "__main__":
    sys.exit(main())
