"""Training: the loop, evaluation, and the checkpoints that make a run resumable.

The loop is the one every PyTorch example has (pytorch/examples' ``mnist/main.py``)::

    for x, y in batches:
        cost = cost_fn(model(x), y)      # forward: the mean of the per-example losses
        optimizer.zero_grad()
        cost.backward()                  # backpropagation through our hand-written backwards
        optimizer.step()

:func:`train_one_epoch` is exactly that, plus the guard that a NaN cost is never applied,
kept on the device: the loop never waits for the GPU (no ``.item()`` per step).
Every loop that trains (:func:`fit`, ``dlconcepts compare``, ``symmetry``, ``bench``) keeps
one contract: :func:`train_one_epoch`, then :func:`checked_costs`, the one wait for the device
per epoch, which raises :class:`TrainingDiverged` at the first cost that is not finite.
:func:`fit` wraps them: one :class:`TrainConfig` in, the model, per-epoch statistics and the
per-example test losses out; resume, checkpoints, ``metrics.json``, progress and logging
(:class:`Callback`) sit around the loop, not inside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import json
import math
import os
import re
import secrets
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
# the test set is evaluated in chunks of this many examples
EVAL_CHUNK = 10_000


@dataclass
class EpochStats:
    epoch: int
    train_cost: float
    test_cost: float
    test_accuracy: float
    seconds: float  # training time of this epoch (evaluation and compilation not included)


@dataclass
class Result:
    config: TrainConfig
    model: MLP
    history: list[EpochStats] = field(default_factory=list)
    test_losses: Tensor | None = None  # per-example losses on the test set, after training
    test_predictions: Tensor | None = None
    test_labels: Tensor | None = None
    compile_seconds: float | None = None  # --compile: the time to compile, before epoch 1
    precision: str = "full precision"  # Precision.describe() of the training steps

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
    output folder that cannot hold one (or holds another run's)."""


class NotEnoughMemory(MemoryError):
    """The model, its gradients, the optimizer's state and the activations would not fit."""


class CompileFailed(RuntimeError):
    """``torch.compile(model, fullgraph=True)`` could not compile the training step."""


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA where there is one, else the CPU; ``"cuda"`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise invalid("device", name, choices.NO_CUDA)
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


def steps_per_epoch(cfg: TrainConfig, train_set: data.InMemoryDataset) -> int:
    """The optimizer steps of one epoch: every batch, or the first ``cfg.max_steps``."""
    steps = train_set.num_batches(cfg.batch_size)
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Each epoch's shuffle depends only on (seed, epoch): a resumed run sees the same batches.

    The factor 100_003 is larger than any number of epochs, so two (seed, epoch) pairs never
    share a generator seed (with ``seed + epoch``, seed 1's epoch 2 would be seed 2's
    epoch 1: two seeds would train on the same shuffles, one epoch apart).
    """
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


@dataclass
class Precision:
    """The arithmetic of the training steps: the model's dtype throughout (``dtype`` None), or
    ``torch.autocast`` to a 16-bit type, with a gradient scaler for float16.

    float16's largest number is 65504 and its smallest normal one 6e-5: small gradients
    underflow to 0, so the scaler multiplies the cost by a large factor before the backward
    and divides the gradients by it before the step, skipping a step (and halving the factor)
    when a gradient overflowed. bfloat16 has float32's range, so it needs no scaler.
    """

    device_type: str
    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the forward pass and the cost run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, cost: Tensor) -> None:
        (cost if self.scaler is None else self.scaler.scale(cost)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer's step; with a scaler, the scaler's (skipped when a gradient is inf)."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def describe(self) -> str:
        if self.dtype is None:
            return "full precision"
        scaled = " with a gradient scaler" if self.scaler is not None else ""
        return f"{str(self.dtype).removeprefix('torch.')} autocast{scaled}"


def precision_for(amp: bool, device: torch.device) -> Precision:
    """``--amp``: bfloat16 autocast on the CPU and on GPUs with bfloat16 units (no scaler
    needed, and no wait for the GPU each step); float16 with a gradient scaler on older
    GPUs. Without ``amp``, the model's own dtype."""
    if not amp:
        return Precision(device.type)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return Precision("cuda", torch.float16, torch.amp.GradScaler("cuda"))
    return Precision(device.type, torch.bfloat16)


def train_one_epoch(
    model: Callable[[Tensor], Tensor],
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cost_fn: Callable[[Tensor, Tensor], Tensor],
    reduce_cost: Callable[[Tensor], Tensor] = distributed.mean_over_ranks,
    precision: Precision | None = None,
) -> Tensor:
    """One pass of gradient descent over ``batches``; returns every step's cost, on the device.

    With several processes each one's cost is the mean over its slice of the batch, and
    ``reduce_cost`` (the mean over the ranks) makes it the whole batch's cost, the same on
    every rank: a NaN anywhere stops every rank at the same step.

    Nothing here waits for the device (no ``.item()``): from the first NaN or infinite cost
    on, every gradient is zeroed on the device before the optimizer sees it
    (:func:`zero_grads_unless`), so no non-finite value reaches the weights, and the caller
    finds the bad step with :func:`checked_costs`. Only the cost counts: a float16 gradient
    scaler's own skipped steps (an overflowing gradient of a finite cost) are not divergence.
    """
    precision = precision or Precision("cpu")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    costs, finite = [], torch.tensor(True, device=params[0].device)
    for x, y in batches:
        with precision.autocast():
            cost = cost_fn(model(x), y)  # the mean loss of this batch
        optimizer.zero_grad(set_to_none=True)
        precision.backward(cost)  # every parameter's .grad = ∂cost/∂parameter
        # a 16-bit cost (autocast) is compared and averaged over the ranks in float32
        batch_cost = reduce_cost(cost.detach().to(torch.promote_types(cost.dtype, torch.float32)))
        finite = finite & batch_cost.isfinite()  # every cost so far is finite
        zero_grads_unless(finite, params)
        precision.step(optimizer)
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


def checked_costs(costs: Tensor, *, epoch: int | None = None, first_step: int = 1) -> list[float]:
    """The step costs :func:`train_one_epoch` returned, as floats: the one wait for the device.

    :class:`TrainingDiverged` names the first step whose cost was not finite (counting from
    ``first_step``): :func:`train_one_epoch` applied neither it nor any update after it.
    Every training loop checks its costs here.
    """
    values = costs.tolist()
    for step, value in enumerate(values, start=first_step):
        if not math.isfinite(value):
            of_epoch = f" of epoch {epoch}" if epoch is not None else ""
            raise TrainingDiverged(f"cost is {value} at step {step}{of_epoch}")
    return values


def accuracy(predictions: Tensor, labels: Tensor) -> float:
    """The share of ``predictions`` equal to ``labels``."""
    return float((predictions.cpu() == labels.cpu()).float().mean())


@torch.no_grad()
def evaluate(
    model: Callable[[Tensor], Tensor],
    dataset: data.InMemoryDataset,
    cost_fn: Callable[..., Tensor],
    chunk: int = EVAL_CHUNK,
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


def make_folder(folder: Path) -> None:
    """``mkdir -p folder``; a file on the way is :class:`NotADirectoryError` ("Not a
    directory"), where ``mkdir`` itself says "File exists"."""
    for part in (folder, *folder.parents):
        if part.is_dir():
            break
        if part.exists():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(part))
    folder.mkdir(parents=True, exist_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over the old one.

    An interrupt at any moment leaves either the previous file or the new one, never a
    half-written file (and no temp file behind). The file gets the permissions of any new
    file (0666 less the umask): the temp file is created with ``os.open``, which applies the
    umask, rather than ``tempfile.mkstemp``, which makes every file private (0600).
    """
    make_folder(path.parent)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # another name, then
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Everything a resumed run needs, loadable with ``torch.load(weights_only=True)``."""
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "config": config_dict(cfg),
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": [dataclasses.asdict(h) for h in history],
    }
    if scaler is not None:  # float16 --amp: the scale it has learned
        payload["scaler"] = scaler.state_dict()
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
        # torch's reason is a paragraph whose first sentence says enough; for a file it will
        # not unpickle, the sentence that counts is the unpickler's, further down
        unpickler = re.search(r"WeightsUnpickler error:\s*(.*)", str(e))
        reason = (unpickler[1] if unpickler else str(e).strip()).split("\n")[0].split(". ")[0]
        if reason.startswith("Unsupported global"):  # objects, as torch.save(model) writes
            raise CheckpointError(
                f"{path}: expected a dlconcepts checkpoint, got a file that "
                f"torch.load(weights_only=True) refuses ({reason})"
            ) from None
        raise CheckpointError(
            f"{path}: expected a dlconcepts checkpoint, got an unreadable file "
            f"({type(e).__name__}: {reason[:200]}); "
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


def check_writable(folder: Path, what: str, *, keep: bool = True) -> None:
    """Create ``folder`` and write a file in it, so that a bad output folder fails now, in
    one line, not after the work. With ``keep=False`` the folders it had to create are
    removed again (the first write creates them for good): a run that fails before it
    writes leaves no empty folder behind."""
    created = [] if keep else [part for part in (folder, *folder.parents) if not part.exists()]
    try:
        make_folder(folder)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        if folder.is_file():
            found = "an existing file"
        elif isinstance(e, NotADirectoryError):
            found = f"Not a directory ({e.filename} is a file)"
        else:
            found = f"{e.strerror or e} there"
        raise CheckpointError(
            f"{folder}: expected a folder to write {what} into, got {found}"
        ) from None
    finally:
        for part in created:  # deepest first
            with contextlib.suppress(OSError):
                part.rmdir()


def check_out(cfg: TrainConfig) -> None:
    """What ``cfg.out`` must be before a run starts: with ``cfg.resume``, a folder holding a
    checkpoint of the same configuration (read, never created); without, a folder that holds
    no other run's checkpoint (a new run would overwrite it) and can be written into."""
    if cfg.out is None:
        return
    out = Path(cfg.out)
    if cfg.resume:
        load_checkpoint(out / CHECKPOINT, cfg)
        check_writable(out, "checkpoints", keep=False)
    elif (out / CHECKPOINT).exists():
        raise CheckpointError(
            f"{out}: expected a folder without a checkpoint, got one holding another run's "
            f"{CHECKPOINT}; pass --resume to continue that run, or choose another --out"
        )
    else:
        check_writable(out, "checkpoints", keep=False)


# --- memory ----------------------------------------------------------------------------------


def parameter_count(sizes: Sequence[int]) -> int:
    """The weights and biases of an MLP with these layer sizes."""
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


def memory_needed(cfg: TrainConfig, eval_examples: int = EVAL_CHUNK) -> int:
    """Bytes a run of ``cfg`` needs besides the data, roughly: the weights, their gradients,
    the optimizer's state (Adam: two moments; SGD with momentum: one buffer) and the
    activations of a training batch or an evaluation chunk (each layer's output and what the
    backward keeps of it)."""
    itemsize = DTYPES[cfg.dtype].itemsize
    states = 2 if cfg.optimizer == "adam" else int(cfg.momentum > 0)
    weights = parameter_count(cfg.sizes) * itemsize * (2 + states)
    activations = 2 * max(cfg.batch_size, eval_examples) * sum(cfg.sizes) * itemsize
    return weights + activations


def memory_available(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (the GPU's, or the machine's), None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    known = [free for free in (_system_free(), _cgroup_free()) if free is not None]
    return min(known) if known else None


def _system_free() -> int | None:
    """What the machine can give without swapping (Linux's MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_free(folder: Path = Path("/sys/fs/cgroup")) -> int | None:
    """What this container may still use (cgroup v2), where it is capped below the machine:
    beyond it the out-of-memory killer ends the process, whatever the machine has free."""
    try:
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def check_memory(
    cfg: TrainConfig, device: torch.device, copies: int = 1, of: str = "processes"
) -> None:
    """:class:`NotEnoughMemory`, naming the size and the need, before a run that cannot fit
    allocates anything (an allocation that fails half-way may end in the system's
    out-of-memory killer, not an error). ``copies`` of the run (``of``: processes, models)
    share the device's memory."""
    available = memory_available(device)
    eval_examples = min(EVAL_CHUNK, cfg.limit_test or EVAL_CHUNK)
    needed = copies * memory_needed(cfg, eval_examples)
    if available is not None and needed > available:
        each = f" in each of {copies} {of}" if copies > 1 else ""
        raise NotEnoughMemory(
            f"hidden: expected an MLP that fits in memory, got {'-'.join(map(str, cfg.sizes))}: "
            f"{parameter_count(cfg.sizes):,} parameters{each}, about {needed / 1e9:,.1f} GB of "
            f"{cfg.dtype} weights, gradients, {cfg.optimizer} state and activations, where "
            f"{device.type} has {available / 1e9:,.1f} GB free"
        )


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
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    out: Path | None  # where the checkpoint and metrics.json go, if anywhere

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
    ``metrics.json`` (atomically); ``cfg.out`` is checked before training starts
    (:func:`check_out`). ``cfg.resume`` continues from that checkpoint to exactly the result
    of an uninterrupted run; with more ``epochs`` than the checkpoint's run, it goes on
    (:func:`replan_schedule`). ``progress(batches, total, description)`` may wrap each
    epoch's batches (a progress bar); ``callbacks`` see the run step by step
    (:class:`Callback`).
    """
    world = distributed.current()
    distributed.check_even_split(len(train_set), cfg.batch_size, world)
    check_memory(cfg, train_set.device)
    check_out(cfg)
    # Our pieces draw from generators of their own (build_model, epoch_generator); seeding
    # the global one as well makes anything else that draws randomness repeatable too.
    torch.manual_seed(cfg.seed)
    loop = start_loop(cfg, train_set, test_set)
    result = Result(
        cfg, loop.model, test_labels=test_set.labels.cpu(), precision=loop.precision.describe()
    )
    if cfg.resume:
        result.history = resume(loop, cfg, log)
    writes = loop.out is not None and world.rank == 0  # one process writes for all
    for callback in callbacks:  # first: a callback may change the model (its activations)
        callback.start(loop)
    try:
        stepper = training_model(loop.model, cfg, train_set.device, world)
        if cfg.compile:
            result.compile_seconds = compile_steps(stepper, loop, cfg, train_set, world)
            log(f"compiled the training step in {result.compile_seconds:.1f} s (before epoch 1)")
        for epoch in range(loop.start_epoch, cfg.epochs + 1):
            step_costs, seconds = run_epoch(
                stepper, loop, cfg, train_set, epoch, world, progress, callbacks
            )
            stats = finish_epoch(loop, result, epoch, step_costs, seconds, writes)
            for callback in callbacks:
                callback.after_epoch(stats, step_costs)
            log(
                f"epoch {epoch}/{cfg.epochs}  train cost {stats.train_cost:.4f}  "
                f"test cost {stats.test_cost:.4f}  test accuracy {100 * stats.test_accuracy:.2f}%"
                f"  {seconds:.1f} s"
            )
    finally:
        for callback in callbacks:
            callback.close()

    if result.test_losses is None:  # resumed a finished run: evaluate once for the summary
        result.test_losses, result.test_predictions = evaluate(loop.model, test_set, loop.cost_fn)
        if writes and loop.out is not None:
            write_json(loop.out / METRICS, metrics(result, train_set.device))
    return result


def start_loop(
    cfg: TrainConfig, train_set: data.InMemoryDataset, test_set: data.InMemoryDataset
) -> Loop:
    """A fresh run: the model from ``cfg.seed``, its optimizer and schedule, the precision."""
    device = train_set.device
    model = build_model(cfg, device)
    steps = steps_per_epoch(cfg, train_set)
    opt, sched = build_optimizer(cfg, model, cfg.epochs * steps)
    precision = precision_for(cfg.amp, device)
    out = Path(cfg.out) if cfg.out is not None else None
    return Loop(model, opt, test_set, cost_fn(cfg.impl), steps, 1, sched, precision, out)


def resume(loop: Loop, cfg: TrainConfig, log: Callable[[str], None]) -> list[EpochStats]:
    """Load ``cfg.out``'s checkpoint into ``loop``; returns the epochs it had trained."""
    assert loop.out is not None  # TrainConfig insists
    path = loop.out / CHECKPOINT
    ckpt = load_checkpoint(path, cfg)
    loop.model.load_state_dict(ckpt["model"])
    loop.optimizer.load_state_dict(ckpt["optimizer"])
    loop.scheduler.load_state_dict(ckpt["scheduler"])
    if loop.precision.scaler is not None and "scaler" in ckpt:
        loop.precision.scaler.load_state_dict(ckpt["scaler"])
    if ckpt["config"]["epochs"] != cfg.epochs:
        replan_schedule(loop.scheduler, cfg.epochs * loop.steps_per_epoch)
    loop.start_epoch = ckpt["epoch"] + 1
    log(f"resumed from {path} after epoch {ckpt['epoch']}")
    return [EpochStats(**h) for h in ckpt["history"]]


def training_model(
    model: MLP, cfg: TrainConfig, device: torch.device, world: distributed.World
) -> Callable[[Tensor], Tensor]:
    """What the training steps call: ``model``, in DistributedDataParallel with several
    processes, compiled with ``cfg.compile``; it shares its parameters with ``model``, which
    evaluation and checkpoints use."""
    # fullgraph: one graph for the whole forward, or an error, never a silent fallback to
    # eager pieces; dynamic=False: the full and the last, partial batch each get a graph of
    # their own shape (compile_steps compiles both before the first epoch)
    stepper: nn.Module = (
        torch.compile(model, fullgraph=True, dynamic=False) if cfg.compile else model
    )
    # compiled first, then wrapped: DDP's gradient hooks stay outside the compiled graph,
    # which one graph (fullgraph) could not hold
    return distributed.wrap(stepper, device) if world.size > 1 else stepper


def compile_steps(
    stepper: Callable[[Tensor], Tensor],
    loop: Loop,
    cfg: TrainConfig,
    train_set: data.InMemoryDataset,
    world: distributed.World,
) -> float:
    """Compile the forward and backward of every batch shape an epoch will see, before the
    first epoch, so its time is not counted in it; returns the seconds. Nothing is learned:
    the gradients are thrown away."""
    per_rank = cfg.batch_size // world.size
    shapes = [min(per_rank, len(train_set))]
    last = len(train_set) % cfg.batch_size // world.size
    if last and loop.steps_per_epoch == train_set.num_batches(cfg.batch_size):
        shapes.append(last)
    t0 = time.perf_counter()
    try:
        for rows in shapes:
            x, y = train_set.images[:rows], train_set.labels[:rows]
            with loop.precision.autocast():
                cost = loop.cost_fn(stepper(x), y)
            cost.backward()
    except RuntimeError as e:  # Dynamo's errors (a graph break under fullgraph=True) included
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        raise CompileFailed(
            f"compile: expected a model torch.compile(fullgraph=True) can trace, got "
            f"{type(e).__name__}: {first_line}; train without --compile"
        ) from e
    loop.optimizer.zero_grad(set_to_none=True)
    if train_set.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_epoch(
    stepper: Callable[[Tensor], Tensor],
    loop: Loop,
    cfg: TrainConfig,
    train_set: data.InMemoryDataset,
    epoch: int,
    world: distributed.World,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None,
    callbacks: Sequence[Callback],
) -> tuple[list[float], float]:
    """One epoch's optimizer steps: its step costs (checked: :func:`checked_costs`) and
    seconds."""
    shuffled = train_set.batches(
        cfg.batch_size, shuffle=True, generator=epoch_generator(cfg.seed, epoch)
    )
    mine = distributed.rank_slice(shuffled, world)  # all of it with one process
    batches = _after_each_step(itertools.islice(mine, loop.steps_per_epoch), epoch, callbacks)
    if progress is not None:
        batches = progress(batches, loop.steps_per_epoch, f"epoch {epoch}/{cfg.epochs}")
    t0 = time.perf_counter()
    costs = train_one_epoch(
        stepper, batches, loop.optimizer, loop.scheduler, loop.cost_fn, precision=loop.precision
    )
    try:
        step_costs = checked_costs(costs, epoch=epoch)
    except TrainingDiverged as e:
        kept = "; the last checkpoint is kept" if loop.out is not None and epoch > 1 else ""
        raise TrainingDiverged(
            f"{e}: training stopped, no update from it was applied. Try a smaller --lr or "
            f"another --init (e.g. xavier/he){kept}."
        ) from None
    return step_costs, time.perf_counter() - t0


def finish_epoch(
    loop: Loop,
    result: Result,
    epoch: int,
    step_costs: list[float],
    seconds: float,
    writes: bool,
) -> EpochStats:
    """Evaluate on the test set, add the epoch to ``result`` and, if ``writes``, write the
    checkpoint and ``metrics.json``."""
    cfg = result.config
    losses, predictions = evaluate(loop.model, loop.test_set, loop.cost_fn)
    train_cost = sum(step_costs) / len(step_costs)
    stats = EpochStats(
        epoch,
        train_cost,
        float(losses.mean()),
        accuracy(predictions, loop.test_set.labels),
        seconds,
    )
    result.history.append(stats)
    result.test_losses, result.test_predictions = losses, predictions
    if writes:
        assert loop.out is not None
        save_checkpoint(
            loop.out / CHECKPOINT,
            cfg,
            epoch,
            loop.model,
            loop.optimizer,
            loop.scheduler,
            result.history,
            scaler=loop.precision.scaler,
        )
        write_json(loop.out / METRICS, metrics(result, loop.test_set.device))
    return stats


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
        "compile_seconds": result.compile_seconds,
        "precision": result.precision,
        "test_loss_vs_cost": loss_summary(result),
        "torch_version": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "world_size": distributed.current().size,
        "backend": distributed.current().backend,
    }
