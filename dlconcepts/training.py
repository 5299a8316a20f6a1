"""Training: the loop, evaluation, and the checkpoints that make a run resumable.

The loop is the one every PyTorch example has (pytorch/examples' ``mnist/main.py``)::

    for x, y in batches:
        cost = cost_fn(model(x), y)      # forward: the mean of the per-example losses
        optimizer.zero_grad()
        cost.backward()                  # backpropagation through our hand-written backwards
        optimizer.step()

:func:`train_one_epoch` is exactly that, plus the guard that a NaN cost is never applied,
kept on the device: the loop never waits for the GPU (no ``.item()`` per step).
:func:`fit` wraps it: one :class:`TrainConfig` in, the model, per-epoch statistics and the
per-example test losses out; resume, checkpoints, ``metrics.json``, progress and logging
(:class:`Callback`) sit around the loop, not inside it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlconcepts import choices, data, distributed
from dlconcepts._checks import invalid, one_of
from dlconcepts.layers import MLP
from dlconcepts.losses import cross_entropy

# the names and defaults the commands offer live in the torch-free module choices
OPTIMIZERS = choices.OPTIMIZERS
SCHEDULES = choices.SCHEDULES
DEVICES = choices.DEVICES
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # keys: choices.DTYPES
TrainConfig = choices.TrainConfig
PRESETS = choices.PRESETS
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
CHECKPOINT_FORMAT = "dlconcepts-checkpoint-1"
# settings that only say where or how fast to run: they may differ on --resume
RUNTIME_FIELDS = ("device", "data_dir", "download", "out", "resume", "progress", "compile")


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
    """The cost became NaN or inf; the update that would have applied it was not made."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or from a different configuration, or an
    output folder that cannot hold one."""


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA where there is one, else the CPU; ``"cuda"`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise invalid(
            "device", name, "'cpu' or 'auto' on this machine: no CUDA device is available"
        )
    if name not in DEVICES:
        raise one_of("device", name, DEVICES)
    return torch.device(name)


def cost_fn(impl: str) -> Callable[..., Tensor]:
    """The hand-written cross-entropy for custom models, PyTorch's for built-in ones."""
    return cross_entropy if impl == "custom" else F.cross_entropy


def build_model(cfg: TrainConfig, device: torch.device | str = "cpu") -> MLP:
    """The MLP ``cfg`` describes, initialized from ``cfg.seed`` alone."""
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


def build_optimizer(
    cfg: TrainConfig, model: nn.Module, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimizer and the per-step learning-rate schedule over ``steps`` steps."""
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":
        opt = (
            torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            if cfg.weight_decay
            else torch.optim.Adam(model.parameters(), lr=cfg.lr)
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    sched: torch.optim.lr_scheduler.LRScheduler
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Each epoch's shuffle depends only on (seed, epoch): a resumed run sees the same batches."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def train_one_epoch(
    model: Callable[[Tensor], Tensor],
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cost_fn: Callable[[Tensor, Tensor], Tensor],
    reduce_cost: Callable[[Tensor], Tensor] = distributed.mean_over_ranks,
) -> Tensor:
    """One pass of gradient descent over ``batches``; returns every step's cost, on the device.

    With several processes each one's cost is the mean over its slice of the batch, and
    ``reduce_cost`` (the mean over the ranks) makes it the whole batch's cost, the same on
    every rank: a NaN anywhere stops every rank at the same step.

    Nothing here waits for the device (no ``.item()``): from the first NaN or infinite cost
    on, every gradient is zeroed on the device before the optimizer sees it
    (:func:`zero_grads_unless`), so no non-finite value reaches the weights, and the caller
    finds the bad step in the returned costs (:func:`mean_cost`).
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    costs, finite = [], torch.tensor(True, device=params[0].device)
    for x, y in batches:
        cost = cost_fn(model(x), y)  # the mean loss of this batch
        optimizer.zero_grad(set_to_none=True)
        cost.backward()  # every parameter's .grad = ∂cost/∂parameter
        batch_cost = reduce_cost(cost.detach())
        finite = finite & batch_cost.isfinite()  # every cost so far is finite
        zero_grads_unless(finite, params)
        optimizer.step()
        scheduler.step()
        costs.append(batch_cost)
    return torch.stack(costs)


def zero_grads_unless(ok: Tensor, params: Sequence[Tensor]) -> None:
    """Every gradient becomes 0 where the boolean tensor ``ok`` is false, on the device:
    ``masked_fill_`` instead of ``if not ok.item()``, which would wait for a GPU each step.

    A zero gradient moves nothing with plain SGD; with momentum or Adam the weights coast on
    the (finite) momentum of earlier steps until the run stops at the end of the epoch.
    """
    stop = ~ok
    for p in params:
        if p.grad is not None:
            p.grad.masked_fill_(stop, 0)


def mean_cost(step_costs: list[float]) -> float:
    """The mean of one epoch's step costs; :class:`TrainingDiverged` names the first step whose
    cost was not finite (:func:`train_one_epoch` applied neither it nor any update after it)."""
    for step, value in enumerate(step_costs, start=1):
        if not math.isfinite(value):
            raise TrainingDiverged(f"cost is {value} at step {step}")
    return sum(step_costs) / len(step_costs)


@torch.no_grad()
def evaluate(
    model: Callable[[Tensor], Tensor],
    dataset: data.InMemoryDataset,
    cost_fn: Callable[..., Tensor],
    chunk: int = 10_000,
) -> tuple[Tensor, Tensor]:
    """Per-example losses (float32, CPU) and predicted classes over a whole dataset."""
    losses, predictions = [], []
    for start in range(0, len(dataset), chunk):
        logits = model(dataset.images[start : start + chunk])
        labels = dataset.labels[start : start + chunk]
        losses.append(cost_fn(logits, labels, reduction="none"))
        predictions.append(logits.argmax(dim=1))
    return torch.cat(losses).float().cpu(), torch.cat(predictions).cpu()


# --- checkpoints and JSON, written atomically ------------------------------------------------


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


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    return d


def save_checkpoint(
    path: Path,
    cfg: TrainConfig,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[EpochStats],
) -> None:
    """Everything a resumed run needs, loadable with ``torch.load(weights_only=True)``."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config_dict(cfg),
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": [dataclasses.asdict(h) for h in history],
    }
    atomic_write(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A dlconcepts checkpoint as a dict; :class:`CheckpointError` for anything else."""
    if not path.is_file():
        raise CheckpointError(f"{path}: expected a dlconcepts checkpoint, found no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path}: expected a dlconcepts checkpoint, got an empty file (0 bytes); "
            "delete it to start over, or restore it from a backup"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path}: expected a dlconcepts checkpoint readable by torch.load(weights_only=True), "
            f"got an unreadable file ({type(e).__name__}: {first_line}); "
            "delete it to start over, or restore it from a backup"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected format {CHECKPOINT_FORMAT!r}, got {found!r}")
    return ckpt


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """:func:`read_checkpoint`, then check it was written by a run of the same ``cfg``.

    Only ``epochs`` may differ, to extend (or cut short) a run: never below the epochs the
    checkpoint has already trained.
    """
    ckpt = read_checkpoint(path)
    want = config_dict(cfg)
    for key, value in ckpt["config"].items():
        if key not in (*RUNTIME_FIELDS, "epochs") and want.get(key) != value:
            raise CheckpointError(
                f"{path}: checkpoint was trained with {key}={value!r}, but this run asks for "
                f"{key}={want.get(key)!r}; resume with the same options or use another --out"
            )
    if cfg.epochs < ckpt["epoch"]:
        raise CheckpointError(
            f"{path}: epochs: expected at least the {ckpt['epoch']} the checkpoint has already "
            f"trained, got {cfg.epochs}"
        )
    return ckpt


def replan_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> None:
    """Resuming with another ``--epochs``: from the next step on, the cosine schedule is the one
    of a run planned for ``steps`` steps from the start (lr = base·(1 + cos(π·step/steps))/2),
    so a finished run extended from lr 0 warms back up to that curve. Constant stays constant.
    """
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = steps
        done = scheduler.last_epoch
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * (1 + math.cos(math.pi * done / steps)) / 2


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and write a file in it, so a bad ``--out`` fails before training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        found = "an existing file" if folder.is_file() else f"{e.strerror or e} there"
        raise CheckpointError(
            f"{folder}: expected a folder to write {what} into, got {found}"
        ) from None


def model_from_checkpoint(path: Path) -> tuple[MLP, TrainConfig]:
    """The trained model a checkpoint holds (on the CPU) and the config that made it."""
    ckpt = read_checkpoint(path)
    try:
        cfg = TrainConfig(**{**ckpt["config"], "hidden": tuple(ckpt["config"]["hidden"])})
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])
    except (TypeError, KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: expected a model checkpoint of this dlconcepts version, got one that does "
            f"not fit ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})"
        ) from e
    return model, cfg


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class Loop:
    """The run :func:`fit` is running, as a :class:`Callback` sees it."""

    model: MLP
    optimizer: torch.optim.Optimizer
    test_set: data.InMemoryDataset
    cost_fn: Callable[..., Tensor]
    steps_per_epoch: int
    start_epoch: int  # > 1 on --resume

    def global_step(self, epoch: int, step: int = 0) -> int:
        """Steps since the run began, counting a resumed run's earlier epochs too."""
        return (epoch - 1) * self.steps_per_epoch + step


class Callback:
    """What runs around :func:`fit`'s loop without being part of it (logging, say).

    ``fit`` calls :meth:`start` once, :meth:`after_step` after every update (``fit`` is
    then between two steps: the model holds that update), :meth:`after_epoch` with the
    epoch's statistics and step costs, and :meth:`close` however the run ends.
    """

    def start(self, loop: Loop) -> None:
        pass

    def after_step(self, epoch: int, step: int) -> None:
        pass

    def after_epoch(self, stats: EpochStats, step_costs: list[float]) -> None:
        pass

    def close(self) -> None:
        pass


def _after_each_step(
    batches: Iterable[Any], epoch: int, callbacks: Sequence[Callback]
) -> Iterator[Any]:
    """``batches``, calling every callback's ``after_step`` once the loop is back for more."""
    for step, batch in enumerate(batches, start=1):
        yield batch
        for callback in callbacks:
            callback.after_step(epoch, step)


def fit(
    cfg: TrainConfig,
    train_set: data.InMemoryDataset,
    test_set: data.InMemoryDataset,
    *,
    log: Callable[[str], None] = print,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
    callbacks: Sequence[Callback] = (),
) -> Result:
    """Train the model ``cfg`` describes on ``train_set``, evaluating on ``test_set``.

    After every epoch it logs one line and, with ``cfg.out``, writes the checkpoint and
    ``metrics.json`` (atomically); ``cfg.out`` is checked before training starts.
    ``cfg.resume`` continues from that checkpoint to exactly the result of an uninterrupted
    run; with more ``epochs`` than the checkpoint's run, it goes on (:func:`replan_schedule`).
    ``progress(batches, total, description)`` may wrap each epoch's batches (a progress
    bar); ``callbacks`` see the run step by step (:class:`Callback`).
    """
    device = train_set.device
    world = distributed.current()
    distributed.check_even_split(len(train_set), cfg.batch_size, world)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, device)
    steps_per_epoch = train_set.num_batches(cfg.batch_size)
    if cfg.max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps)
    opt, sched = build_optimizer(cfg, model, cfg.epochs * steps_per_epoch)
    result = Result(cfg, model, test_labels=test_set.labels.cpu())
    out = Path(cfg.out) if cfg.out else None
    start_epoch = 1
    if cfg.resume:
        assert out is not None  # TrainConfig insists
        ckpt = load_checkpoint(out / CHECKPOINT, cfg)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if ckpt["config"]["epochs"] != cfg.epochs:
            replan_schedule(sched, cfg.epochs * steps_per_epoch)
        result.history = [EpochStats(**h) for h in ckpt["history"]]
        start_epoch = ckpt["epoch"] + 1
        log(f"resumed from {out / CHECKPOINT} after epoch {ckpt['epoch']}")
    if out is not None:
        check_writable(out, "checkpoints")
    writes = out is not None and world.rank == 0  # one process writes for all

    # wrapped in DDP or not, compiled or not, the stepper shares its parameters with ``model``
    stepper: Any = distributed.wrap(model, device) if world.size > 1 else model
    stepper = torch.compile(stepper) if cfg.compile else stepper
    loss = cost_fn(cfg.impl)
    loop = Loop(model, opt, test_set, loss, steps_per_epoch, start_epoch)
    for callback in callbacks:
        callback.start(loop)
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            shuffled = train_set.batches(
                cfg.batch_size, shuffle=True, generator=epoch_generator(cfg.seed, epoch)
            )
            mine = distributed.rank_slice(shuffled, world)  # all of it with one process
            batches = _after_each_step(itertools.islice(mine, steps_per_epoch), epoch, callbacks)
            if progress is not None:
                batches = progress(batches, steps_per_epoch, f"epoch {epoch}/{cfg.epochs}")
            t0 = time.perf_counter()
            step_costs = train_one_epoch(stepper, batches, opt, sched, loss).tolist()  # one wait
            seconds = time.perf_counter() - t0
            try:
                train_cost = mean_cost(step_costs)
            except TrainingDiverged as e:
                raise TrainingDiverged(
                    f"{e} of epoch {epoch}: training stopped, no update from it was applied. "
                    "Try a smaller --lr or another --init (e.g. xavier/he); the last checkpoint "
                    "is kept."
                ) from None
            losses, predictions = evaluate(model, test_set, loss)
            accuracy = float((predictions == result.test_labels).float().mean())
            stats = EpochStats(epoch, train_cost, float(losses.mean()), accuracy, seconds)
            result.history.append(stats)
            result.test_losses, result.test_predictions = losses, predictions
            if writes:
                save_checkpoint(out / CHECKPOINT, cfg, epoch, model, opt, sched, result.history)
                write_json(out / METRICS, metrics(result, device))
            for callback in callbacks:
                callback.after_epoch(stats, step_costs)
            log(
                f"epoch {epoch}/{cfg.epochs}  train cost {train_cost:.4f}  "
                f"test cost {stats.test_cost:.4f}  test accuracy {100 * accuracy:.2f}%  "
                f"{seconds:.1f} s"
            )
    finally:
        for callback in callbacks:
            callback.close()

    if result.test_losses is None:  # resumed a finished run: evaluate once for the summary
        result.test_losses, result.test_predictions = evaluate(model, test_set, loss)
        if writes:
            write_json(out / METRICS, metrics(result, device))
    return result


def loss_summary(result: Result, worst: int = 5) -> dict[str, Any]:
    """The per-example losses behind the cost: mean (= the cost), median, the worst ones."""
    losses, labels, predictions = result.test_losses, result.test_labels, result.test_predictions
    assert losses is not None and labels is not None and predictions is not None
    top = losses.topk(min(worst, len(losses)))
    return {
        "cost (mean loss)": float(losses.mean()),
        "median loss": float(losses.median()),
        "worst losses": [
            {
                "index": int(i),
                "loss": float(v),
                "label": int(labels[i]),
                "predicted": int(predictions[i]),
            }
            for v, i in zip(top.values, top.indices)
        ],
        "fraction of cost from worst 1%": float(
            losses.sort(descending=True).values[: max(1, len(losses) // 100)].sum() / losses.sum()
        ),
    }


def metrics(result: Result, device: torch.device) -> dict[str, Any]:
    """What ``metrics.json`` holds: the config, every epoch, the loss summary, the machine."""
    return {
        "config": config_dict(result.config),
        "epochs": [dataclasses.asdict(h) for h in result.history],
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.train_seconds,
        "test_loss_vs_cost": loss_summary(result),
        "torch_version": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "world_size": distributed.current().size,
        "backend": distributed.current().backend,
    }
