"""``dlconcepts train``: train an MLP on MNIST with the hand-written pieces (or PyTorch's).

The main job: ``dlconcepts train`` with no options trains a 784-800-10 ReLU network with He
init and the hand-written Linear, ReLU and cross-entropy, and reports the per-epoch cost
and accuracy, then the per-example losses behind the final cost. ``--out DIR`` writes
``metrics.json`` and an atomically written checkpoint; ``--resume`` continues from it to
the same result as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from dlconcepts import activations, data, init
from dlconcepts._checks import invalid, one_of
from dlconcepts.layers import IMPLS, MLP
from dlconcepts.losses import cross_entropy

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "dlconcepts-checkpoint-1"
# settings that only say where or how fast to run: they may differ on --resume
RUNTIME_FIELDS = ("device", "data_dir", "download", "out", "resume", "progress", "compile")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the defaults are the main job)."""

    dataset: str = "mnist"
    activation: str = "relu"
    init: str = "he"
    init_std: float = 0.01  # the std of init="random"
    impl: str = "custom"
    hidden: tuple[int, ...] = (800,)
    epochs: int = 6
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # decoupled (AdamW-style for adam), pulls weights towards 0
    schedule: str = "cosine"  # learning rate: "cosine" decays to 0 over the run, "constant"
    seed: int = 1
    device: str = "auto"
    dtype: str = "float32"
    data_dir: str | None = None
    download: bool = False  # fetch the data with torchvision where it is missing (needs a network)
    out: str | None = None
    resume: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    max_steps: int | None = None  # stop each epoch after this many batches (--dry-run)
    progress: bool = True
    compile: bool = False  # torch.compile the model for the training steps (see the README)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        for name, choices in (
            ("dataset", data.DATASETS),
            ("activation", tuple(activations.ACTIVATIONS)),
            ("init", init.SCHEMES),
            ("impl", IMPLS),
            ("optimizer", OPTIMIZERS),
            ("schedule", ("cosine", "constant")),
            ("device", DEVICES),
            ("dtype", tuple(DTYPES)),
        ):
            if getattr(self, name) not in choices:
                raise one_of(name, getattr(self, name), choices)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise invalid(name, getattr(self, name), "a positive int")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise invalid("lr", self.lr, "a positive finite number")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (784, *self.hidden, 10)


# Tuned recipes (plain MLPs: no convolution, no data augmentation); figures in the README.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # the quickest way to 98% test accuracy here: one wide layer, bigger batches, higher lr
    "fast": {"hidden": (800,), "batch_size": 256, "lr": 2e-3, "epochs": 4},
    # beats the best plain MLPs of LeCun's MNIST table (1.53% error): two wide layers,
    # decoupled weight decay, cosine decay to 0
    "best": {"hidden": (800, 800), "epochs": 15, "weight_decay": 0.05},
}


@dataclass
class EpochStats:
    epoch: int
    train_cost: float
    test_cost: float
    test_accuracy: float
    seconds: float  # training time of this epoch (evaluation not included)


@dataclass
class Result:
    config: TrainConfig
    model: MLP
    history: list[EpochStats] = field(default_factory=list)
    test_losses: Tensor | None = None  # per-example losses on the test set, after training
    test_predictions: Tensor | None = None
    test_labels: Tensor | None = None

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")

    @property
    def train_seconds(self) -> float:
        return sum(h.seconds for h in self.history)


class TrainingDiverged(RuntimeError):
    """The cost became NaN or inf."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or from a different configuration."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise invalid(
            "device", name, "'cpu' or 'auto' on this machine: no CUDA device is available"
        )
    return torch.device(name)


def cost_fn(impl: str) -> Callable[..., Tensor]:
    """The hand-written cross-entropy for custom models, PyTorch's for built-in ones."""
    return cross_entropy if impl == "custom" else F.cross_entropy


def build_model(cfg: TrainConfig, device: torch.device) -> MLP:
    gen = torch.Generator().manual_seed(cfg.seed)
    model = MLP(
        cfg.sizes,
        cfg.activation,
        cfg.init,
        cfg.impl,
        init_std=cfg.init_std,
        generator=gen,
        dtype=DTYPES[cfg.dtype],
    )
    return model.to(device)


def build_optimizer(cfg: TrainConfig, model: MLP, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = (
            torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            if cfg.weight_decay
            else torch.optim.Adam(model.parameters(), lr=cfg.lr)
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.schedule == "cosine":
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # each epoch's shuffle depends only on (seed, epoch): a resumed run sees the same batches
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


@torch.no_grad()
def evaluate(
    model: MLP, dataset: data.InMemoryDataset, impl: str, chunk: int = 10_000
) -> tuple[Tensor, Tensor]:
    """Per-example losses and predicted classes over a whole dataset."""
    losses, preds = [], []
    for start in range(0, len(dataset), chunk):
        logits = model(dataset.images[start : start + chunk])
        losses.append(
            cost_fn(impl)(logits, dataset.labels[start : start + chunk], reduction="none")
        )
        preds.append(logits.argmax(dim=1))
    return torch.cat(losses).float().cpu(), torch.cat(preds).cpu()


def train_steps(
    model: Callable[[Tensor], Tensor],
    batches: Iterator[tuple[Tensor, Tensor]],
    opt: torch.optim.Optimizer,
    sched: Any,
    impl: str,
    epoch: int,
) -> Iterator[float]:
    """Run the optimizer over ``batches``, yielding each step's cost (as a float)."""
    loss = cost_fn(impl)
    for step, (x, y) in enumerate(batches, start=1):
        cost = loss(model(x), y)
        value = cost.item()
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"cost is {value} at epoch {epoch}, step {step}: training stopped before the update. "
                "Try a smaller --lr or another --init (e.g. xavier/he); the last checkpoint is kept."
            )
        opt.zero_grad(set_to_none=True)
        cost.backward()
        opt.step()
        sched.step()
        yield value


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    return d


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over the old one.

    An interrupt at any moment leaves either the previous file or the new one, never a
    half-written file (and no temp file behind).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(payload, f))


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check it belongs to ``cfg``."""
    if not path.is_file():
        raise CheckpointError(
            f"{path}: expected a checkpoint to resume from, found none; run without --resume first"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        raise CheckpointError(
            f"{path}: expected a dlconcepts checkpoint readable by torch.load(weights_only=True), "
            f"got an unreadable file ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "delete it to start over, or restore it from a backup"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected format {CHECKPOINT_FORMAT!r}, got {found!r}")
    want = _config_dict(cfg)
    for key, value in ckpt["config"].items():
        if key not in RUNTIME_FIELDS and want.get(key) != value:
            raise CheckpointError(
                f"{path}: checkpoint was trained with {key}={value!r}, but this run asks for "
                f"{key}={want.get(key)!r}; resume with the same options or use another --out"
            )
    return ckpt


def train(
    cfg: TrainConfig,
    *,
    train_set: data.InMemoryDataset | None = None,
    test_set: data.InMemoryDataset | None = None,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Train one model as ``cfg`` says; datasets may be passed in to reuse them across runs."""
    say = log or (lambda s: tqdm.write(s, file=sys.stdout))
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if train_set is None or test_set is None:
        train_set, test_set = data.load_splits(
            cfg.dataset,
            data_dir=cfg.data_dir,
            download=cfg.download,
            device=device,
            dtype=DTYPES[cfg.dtype],
            limit_train=cfg.limit_train,
            limit_test=cfg.limit_test,
        )
    model = build_model(cfg, device)
    steps_per_epoch = train_set.num_batches(cfg.batch_size)
    if cfg.max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps)
    opt, sched = build_optimizer(cfg, model, cfg.epochs * steps_per_epoch)
    result = Result(cfg, model, test_labels=test_set.labels.cpu())
    out = Path(cfg.out) if cfg.out else None
    start_epoch = 1
    if cfg.resume:
        if out is None:
            raise invalid("resume", True, "--out DIR, the folder holding the checkpoint")
        ckpt = load_checkpoint(out / CHECKPOINT, cfg)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        result.history = [EpochStats(**h) for h in ckpt["history"]]
        start_epoch = ckpt["epoch"] + 1
        say(f"resumed from {out / CHECKPOINT} after epoch {ckpt['epoch']}")

    # compiled or not, the module shares its parameters with ``model``: checkpoints, evaluation
    # and the optimizer see the same weights
    stepper: Any = torch.compile(model) if cfg.compile else model
    for epoch in range(start_epoch, cfg.epochs + 1):
        batches = train_set.batches(
            cfg.batch_size, shuffle=True, generator=epoch_generator(cfg.seed, epoch)
        )
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{cfg.epochs}",
            unit="batch",
            leave=False,
            disable=not cfg.progress,  # the bar goes to stderr: piped output stays clean
        )
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for value in train_steps(stepper, batches, opt, sched, cfg.impl, epoch):
            total, count = total + value, count + 1
            bar.update()
            if count % 20 == 0:
                bar.set_postfix(cost=f"{total / count:.4f}")
            if count == steps_per_epoch:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        bar.close()
        losses, preds = evaluate(model, test_set, cfg.impl)
        acc = float((preds == result.test_labels).float().mean())
        stats = EpochStats(epoch, total / count, float(losses.mean()), acc, seconds)
        result.history.append(stats)
        result.test_losses, result.test_predictions = losses, preds
        if out is not None:
            save_checkpoint(
                out / CHECKPOINT,
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": _config_dict(cfg),
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "history": [dataclasses.asdict(h) for h in result.history],
                },
            )
        say(
            f"epoch {epoch}/{cfg.epochs}  train cost {stats.train_cost:.4f}  test cost {stats.test_cost:.4f}"
            f"  test accuracy {100 * acc:.2f}%  {seconds:.1f} s"
        )

    if result.test_losses is None:  # resumed a finished run: evaluate once for the summary
        result.test_losses, result.test_predictions = evaluate(model, test_set, cfg.impl)
    if out is not None:
        write_json(out / "metrics.json", metrics(result, device))
    return result


def loss_summary(result: Result, worst: int = 5) -> dict[str, Any]:
    """The per-example losses behind the cost: mean (= the cost), median, the worst ones."""
    assert result.test_losses is not None and result.test_predictions is not None
    losses, labels = result.test_losses, result.test_labels
    assert labels is not None
    top = losses.topk(min(worst, len(losses)))
    return {
        "cost (mean loss)": float(losses.mean()),
        "median loss": float(losses.median()),
        "worst losses": [
            {
                "index": int(i),
                "loss": float(v),
                "label": int(labels[i]),
                "predicted": int(result.test_predictions[i]),
            }
            for v, i in zip(top.values, top.indices)
        ],
        "fraction of cost from worst 1%": float(
            losses.sort(descending=True).values[: max(1, len(losses) // 100)].sum() / losses.sum()
        ),
    }


def metrics(result: Result, device: torch.device) -> dict[str, Any]:
    return {
        "config": _config_dict(result.config),
        "epochs": [dataclasses.asdict(h) for h in result.history],
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.train_seconds,
        "test_loss_vs_cost": loss_summary(result),
        "torch_version": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
    }


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="dlconcepts train",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="default",
        help="a tuned recipe; other options override it",
    )
    p.add_argument("--dataset", choices=data.DATASETS, default=d.dataset, help="dataset")
    p.add_argument(
        "--activation",
        choices=list(activations.ACTIVATIONS),
        default=d.activation,
        help="hidden activation",
    )
    p.add_argument("--init", choices=init.SCHEMES, default=d.init, help="weight initialization")
    p.add_argument("--init-std", type=float, default=d.init_std, help="std of --init random")
    p.add_argument(
        "--impl", choices=IMPLS, default=d.impl, help="hand-written pieces or PyTorch's built-ins"
    )
    p.add_argument(
        "--hidden", default=",".join(map(str, d.hidden)), help="hidden layer sizes, comma-separated"
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help="weight decay (AdamW-style with adam)",
    )
    p.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default=d.schedule,
        help="learning-rate schedule",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--device", choices=DEVICES, default=d.device, help="device")
    p.add_argument("--dtype", choices=list(DTYPES), default=d.dtype, help="floating-point type")
    p.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $DLCONCEPTS_DATA or the repo's data/)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download missing data with torchvision (needs a network)",
    )
    p.add_argument("--out", default=None, help="folder for metrics.json and checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--limit-train", type=int, default=None, help="use only the first N training examples"
    )
    p.add_argument(
        "--limit-test", type=int, default=None, help="use only the first N test examples"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (slower here: see the README's benchmarks)",
    )
    p.add_argument("--dry-run", action="store_true", help="one epoch of a few batches (for CI)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(argv: list[str] | None) -> TrainConfig:
    parser = build_parser()
    preset, _ = parser.parse_known_args(argv)
    # a preset replaces the defaults; options given on the command line still win
    overrides = dict(PRESETS[preset.preset])
    if "hidden" in overrides:
        overrides["hidden"] = ",".join(map(str, overrides["hidden"]))
    parser.set_defaults(**overrides)
    args = vars(parser.parse_args(argv))
    try:
        hidden = tuple(int(h) for h in str(args.pop("hidden")).split(",") if h.strip())
    except ValueError:
        parser.error(f"--hidden: expected comma-separated ints like 256,128, got {argv!r}")
    dry_run = args.pop("dry_run")
    args.pop("preset")
    progress = not args.pop("no_progress")
    try:
        cfg = TrainConfig(**args, hidden=hidden, progress=progress)
    except ValueError as e:
        parser.error(str(e))
    if dry_run:
        cfg = dataclasses.replace(cfg, epochs=1, max_steps=5, limit_test=cfg.limit_test or 1000)
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = config_from_args(argv)
    try:
        device = resolve_device(cfg.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"dlconcepts train: {cfg.impl} pieces, {cfg.activation} + {cfg.init} init, "
        f"MLP {'-'.join(map(str, cfg.sizes))}, {cfg.optimizer} lr {cfg.lr}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, device {device}, {torch.get_num_threads()} threads"
    )
    try:
        result = train(cfg)
    except (TrainingDiverged, CheckpointError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    s = loss_summary(result)
    print(
        f"\nfinal test accuracy {100 * result.test_accuracy:.2f}% after {result.train_seconds:.1f} s of training"
    )
    print("loss vs cost on the test set: the cost is the mean of the per-example losses")
    print(
        f"  cost (mean loss) {s['cost (mean loss)']:.4f}   median loss {s['median loss']:.4f}   "
        f"the worst 1% of examples carry {100 * s['fraction of cost from worst 1%']:.0f}% of the cost"
    )
    print(
        "  worst examples: "
        + ", ".join(
            f"#{w['index']} (label {w['label']}, predicted {w['predicted']}, loss {w['loss']:.1f})"
            for w in s["worst losses"]
        )
    )
    if cfg.out:
        print(f"wrote {Path(cfg.out) / 'metrics.json'} and {Path(cfg.out) / CHECKPOINT}")
    return 0
