"""``dlconcepts train``: train an MLP on MNIST with the hand-written pieces (or PyTorch's).

The main job: ``dlconcepts train`` with no options trains a 784-800-10 ReLU network with He
init and the hand-written Linear, ReLU and cross-entropy, and reports the per-epoch cost
and accuracy, then the per-example losses behind the final cost. ``--out DIR`` writes
``metrics.json`` and a checkpoint after every epoch, both atomically; ``--resume``
continues from the checkpoint to the same result as an uninterrupted run, or, with a larger
``--epochs``, goes on (the cosine schedule is recomputed for the longer run: see
``training.replan_schedule``). Ctrl-C keeps the last checkpoint and exits with status 130.
``--tensorboard DIR`` logs the run for TensorBoard (the ``tensorboard`` extra).
``--nproc N`` trains data-parallel in N local processes (``dlconcepts.distributed``), as
does ``torchrun --nproc_per_node N -m dlconcepts train``; ``--batch-size`` stays the global
batch, and the run follows the one-process trajectory. ``--compile`` runs the training steps
through ``torch.compile(model, fullgraph=True)``, compiled before the first epoch (the time is
printed apart); ``--amp`` runs them in 16 bits under ``torch.autocast``.

Every check that can fail runs before the data is loaded or a process started: the options,
the ``--out`` folder, the memory the model needs, the processes the machine has.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch
    import tqdm

    from dlconcepts import distributed, testing, training


def preset_option() -> argparse.ArgumentParser:
    """``--preset`` alone: it is read first, because a preset sets the other defaults."""
    p = argparse.ArgumentParser(prog="dlconcepts train", add_help=False)
    p.add_argument(
        "--preset",
        choices=list(choices.PRESETS),
        default="default",
        help="a tuned recipe; other options override it",
    )
    return p


def build_parser(preset: str = "default") -> argparse.ArgumentParser:
    """Every option of ``dlconcepts train``, with the defaults of ``preset``."""
    d = choices.TrainConfig()
    shared = _common.options(
        "hidden",
        "epochs",
        "batch-size",
        "optimizer",
        "lr",
        "momentum",
        "impl",
        "seed",
        "device",
        "dtype",
        "data-dir",
        "limit-train",
        "limit-test",
        "no-progress",
        "dry-run",
    )
    p = _common.parser("train", __doc__, [shared, preset_option()])
    p.add_argument("--dataset", choices=choices.DATASETS, default=d.dataset, help="dataset")
    p.add_argument(
        "--activation",
        type=activation,
        default=d.activation,
        metavar="{sigmoid,tanh,relu} or FILE.py:NAME",
        help="hidden activation: a built-in, or your own autograd.Function (FILE.py:NAME or "
        "module:NAME), checked first against the built-in it computes",
    )
    p.add_argument("--init", choices=choices.SCHEMES, default=d.init, help="weight initialization")
    p.add_argument(
        "--init-std", type=_common.positive_float, default=d.init_std, help="std of --init random"
    )
    p.add_argument(
        "--weight-decay",
        type=_common.non_negative_float,
        default=d.weight_decay,
        help="weight decay (AdamW-style with adam)",
    )
    p.add_argument(
        "--schedule", choices=choices.SCHEDULES, default=d.schedule, help="learning-rate schedule"
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download missing data with torchvision (needs a network)",
    )
    p.add_argument("--out", default=None, help="folder for metrics.json and checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--nproc",
        type=_common.positive_int,
        default=1,
        metavar="N",
        help="train data-parallel in N local processes (gloo on CPU, NCCL on CUDA), at most "
        "one per CPU core or GPU; --batch-size is the global batch, split evenly over them",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile(model, fullgraph=True) for the training steps, compiled before "
        "epoch 1 (its time is printed apart)",
    )
    p.add_argument(
        "--amp",
        action="store_true",
        help="mixed precision: the training steps under torch.autocast, in bfloat16 on the "
        "CPU and on GPUs with bfloat16 units, in float16 with a gradient scaler on older GPUs; "
        "the weights stay float32",
    )
    p.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="log costs, accuracy, learning rate and per-layer histograms for TensorBoard "
        "(pip install 'dlconcepts[tensorboard]')",
    )
    p.add_argument(
        "--log-every",
        type=_common.positive_int,
        default=100,
        metavar="K",
        help="with --tensorboard: also log the costs, accuracy and learning rate every K steps",
    )
    # a preset replaces the defaults of the shared options too; options given still win
    p.set_defaults(**{k: _common.as_typed(v) for k, v in choices.PRESETS[preset].items()})
    return p


def activation(text: str) -> str:
    """``--activation``: a built-in's name, or ``FILE.py:NAME`` / ``module:NAME``."""
    if text in choices.ACTIVATIONS or ":" in text:
        return text
    listed = ", ".join(choices.ACTIVATIONS)
    raise argparse.ArgumentTypeError(f"expected one of {listed} or FILE.py:NAME, got {text!r}")


def parse_args(
    argv: list[str] | None,
) -> tuple[training.TrainConfig, Path | None, int, int, str | None]:
    """The run ``argv`` asks for, where and how often to log it for TensorBoard, in how
    many processes, and the learner's own activation (``--activation FILE.py:NAME``, run in
    place of the built-in it computes, after its checks: one warning line if any fails); a
    bad option exits with one line naming the bad value."""
    preset, _ = preset_option().parse_known_args(argv)
    parser = build_parser(preset.preset)
    args = vars(parser.parse_args(argv))
    dry_run = args.pop("dry_run")
    tensorboard, log_every = args.pop("tensorboard"), args.pop("log_every")
    nproc = args.pop("nproc")
    del args["preset"]
    _common.warn_unused(argparse.Namespace(typed=args.pop("typed", ())), args["optimizer"])
    yours = args["activation"] if ":" in args["activation"] else None
    if yours is not None:
        try:
            _, args["activation"], warning = testing.check_activation(yours)
        except (ValueError, TypeError) as e:
            parser.error(str(e))
        if warning:
            print(warning, file=sys.stderr)
    args["progress"] = not args.pop("no_progress")
    try:
        cfg = training.TrainConfig(**args)
    except ValueError as e:  # what only a combination of options can get wrong (--resume)
        parser.error(_common.as_option(e))
    if dry_run:
        cfg = _common.dry_run(cfg)
    return cfg, tensorboard, log_every, nproc, yours


class TensorBoardLog:
    """``--tensorboard DIR``: the run as TensorBoard shows it, at the run's global step (which
    a resumed run continues; what an interrupted run logged after its checkpoint is dropped).
    A :class:`training.Callback` by its four methods, not by subclassing: a base class would
    import the library, and torch, as soon as ``dlconcepts train --help`` loads this module.

    - every ``every`` steps: ``step/test_cost``, ``step/test_accuracy``, ``step/lr`` and
      ``step/train_cost`` (the mean over those ``every`` steps);
    - after every epoch: the same as ``epoch/...``, the epoch's means;
    - at the start and after every epoch, per layer, on one fixed test batch: histograms of
      ``pre-activations/hidden1`` (what goes into the activation), ``activations/act1``,
      ``weights/hidden1.weight`` and ``gradients/hidden1.weight``. Vanishing and exploding
      signals, live: compare ``--activation sigmoid --init random`` with the defaults.
    """

    def __init__(self, folder: Path, every: int, batch_size: int = 256) -> None:
        self.folder, self.every, self.batch_size = folder, every, batch_size

    def start(self, loop: training.Loop) -> None:
        from torch.utils.tensorboard import SummaryWriter  # the optional extra

        self.loop = loop
        first_step = loop.global_step(loop.start_epoch, 1)
        self.writer = SummaryWriter(str(self.folder), purge_step=first_step)
        if loop.start_epoch == 1:
            self.histograms(0)

    def after_step(self, epoch: int, step: int) -> None:
        if step % self.every == 0:
            self.step_scalars(self.loop.global_step(epoch, step))

    def after_epoch(self, stats: training.EpochStats, step_costs: list[float]) -> None:
        at = self.loop.global_step(stats.epoch + 1)
        for end in range(self.every, len(step_costs) + 1, self.every):
            window = step_costs[end - self.every : end]
            at_end = self.loop.global_step(stats.epoch, end)
            self.writer.add_scalar("step/train_cost", sum(window) / len(window), at_end)
        self.writer.add_scalar("epoch/train_cost", stats.train_cost, at)
        self.writer.add_scalar("epoch/test_cost", stats.test_cost, at)
        self.writer.add_scalar("epoch/test_accuracy", stats.test_accuracy, at)
        self.writer.add_scalar("epoch/lr", self.loop.optimizer.param_groups[0]["lr"], at)
        self.histograms(at)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def step_scalars(self, at: int) -> None:
        """The test cost and accuracy now, mid-epoch, and the learning rate."""
        loop = self.loop
        losses, predictions = training.evaluate(loop.model, loop.test_set, loop.cost_fn)
        accuracy = training.accuracy(predictions, loop.test_set.labels)
        self.writer.add_scalar("step/test_cost", losses.mean(), at)
        self.writer.add_scalar("step/test_accuracy", accuracy, at)
        self.writer.add_scalar("step/lr", loop.optimizer.param_groups[0]["lr"], at)

    def histograms(self, at: int) -> None:
        """Every child's output (forward hooks) and every parameter's value and gradient, on
        the first ``batch_size`` test examples; the training gradients are left alone."""
        model, test = self.loop.model, self.loop.test_set
        outputs: dict[str, torch.Tensor] = {}
        hooks = [
            child.register_forward_hook(
                lambda _module, _input, output, name=name: outputs.update({name: output})
            )
            for name, child in model.named_children()
        ]
        try:
            x, y = test.images[: self.batch_size], test.labels[: self.batch_size]
            cost = self.loop.cost_fn(model(x), y)
        finally:
            for hook in hooks:
                hook.remove()
        names, params = zip(*model.named_parameters())
        gradients = torch.autograd.grad(cost, params)
        for name, output in outputs.items():
            kind = "activations" if name.startswith("act") else "pre-activations"
            self.writer.add_histogram(f"{kind}/{name}", output.detach().float(), at)
        for name, param, gradient in zip(names, params, gradients):
            self.writer.add_histogram(f"weights/{name}", param.detach().float(), at)
            self.writer.add_histogram(f"gradients/{name}", gradient.float(), at)


def tensorboard_log(folder: Path, every: int) -> TensorBoardLog:
    """The ``--tensorboard`` logger, checked before any training: tensorboard installed and
    ``folder`` writable, or one line saying what is wrong."""
    if importlib.util.find_spec("tensorboard") is None:
        raise SystemExit(
            _common.error(
                "--tensorboard: expected the tensorboard package, found it not installed; "
                "pip install 'dlconcepts[tensorboard]' (or pip install tensorboard)"
            )
        )
    training.check_writable(folder, "TensorBoard logs")
    return TensorBoardLog(folder, every)


def progress_bar(batches: Iterable[Any], total: int, description: str) -> Iterable[Any]:
    """A progress bar over one epoch's batches, on stderr: piped output stays clean."""
    return tqdm.tqdm(batches, total=total, desc=description, unit="batch", leave=False)


def print_summary(result: training.Result) -> None:
    """The final accuracy, then the per-example losses behind the final cost."""
    s = training.loss_summary(result)
    print(
        f"\nfinal test accuracy {100 * result.test_accuracy:.2f}% after "
        f"{result.train_seconds:.1f} s of training"
    )
    print("loss vs cost on the test set: the cost is the mean of the per-example losses")
    print(
        f"  cost (mean loss) {s['cost (mean loss)']:.4f}   median loss {s['median loss']:.4f}   "
        f"the worst 1% of examples carry {100 * s['fraction of cost from worst 1%']:.0f}% "
        "of the cost"
    )
    print(
        "  worst examples: "
        + ", ".join(
            f"#{w['index']} (label {w['label']}, predicted {w['predicted']}, loss {w['loss']:.1f})"
            for w in s["worst losses"]
        )
    )


def last_checkpoint(out: str | None) -> str:
    """What Ctrl-C leaves behind: the last checkpoint's epoch, or that there is none."""
    if out is None:
        return "no checkpoint was written (--out DIR keeps one after every epoch)"
    try:
        epoch = training.read_checkpoint(Path(out) / training.CHECKPOINT)["epoch"]
    except training.CheckpointError:
        return f"no checkpoint was written to {out} yet"
    return f"the last checkpoint (epoch {epoch}) is kept in {Path(out) / training.CHECKPOINT}"


def available_processes(device: torch.device) -> tuple[int, str]:
    """How many processes ``--nproc`` may start: one per GPU, or one per CPU core this
    process may run on (more only share the cores, each with its own copy of the data)."""
    if device.type == "cuda":
        return torch.cuda.device_count(), "CUDA devices"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1, "CPU cores"


def check_run(cfg: training.TrainConfig, nproc: int, device: torch.device) -> None:
    """Everything about the run that can be checked before the data is loaded and any
    process started: ``ValueError``, ``CheckpointError`` or ``NotEnoughMemory`` if not."""
    available, what = available_processes(device)
    if nproc > available:
        raise ValueError(f"--nproc: expected at most the {available} {what} here, got {nproc}")
    examples = min(cfg.limit_train or choices.TRAIN_EXAMPLES, choices.TRAIN_EXAMPLES)
    distributed.check_even_split(examples, cfg.batch_size, distributed.World(0, nproc))
    training.check_out(cfg)
    # processes on the CPU share its memory; on CUDA each has a GPU of its own
    training.check_memory(cfg, device, copies=nproc if device.type == "cpu" else 1)


def out_of_memory(e: RuntimeError) -> bool:
    """Whether ``e`` is an allocation that failed: CUDA's error type, or the CPU allocator's
    RuntimeError (which has no type of its own)."""
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)


def main(argv: list[str] | None = None) -> int:
    cfg, tensorboard, log_every, nproc, yours = parse_args(argv)
    device = _common.device(cfg.device)
    try:
        try:
            check_run(cfg, nproc, device)
        except ValueError as e:  # an option that only this machine or the data rules out
            return _common.error(_common.as_option(e))
        if nproc > 1:
            distributed.launch(nproc, device, train_rank, (cfg, tensorboard, log_every, yours))
            return 0
        if distributed.launched_by_torchrun():
            train_rank(distributed.start(device), cfg, tensorboard, log_every, yours)
            return 0
        return train(cfg, tensorboard, log_every, device, yours)
    except training.NotEnoughMemory as e:
        return _common.error(_common.as_option(e))
    except KeyboardInterrupt:
        print(f"\ninterrupted: {last_checkpoint(cfg.out)}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports Ctrl-C
    except (
        training.TrainingDiverged,
        training.CheckpointError,
        training.CompileFailed,
        distributed.WorkerFailed,
    ) as e:
        return _common.error(e)
    except Exception as e:
        if yours is not None and (where := testing.learner_error(e, yours)):
            return _common.error(where)  # your activation raised: where, not a traceback
        # the last resort, when the estimate of check_memory fell short
        if not (isinstance(e, RuntimeError) and out_of_memory(e)):
            raise
        first_line = (str(e).strip().splitlines() or [""])[0][:300]
        return _common.error(f"out of memory: {first_line}; try a smaller --hidden or --batch-size")
    finally:
        distributed.stop()


def train_rank(
    device: torch.device,
    cfg: training.TrainConfig,
    tensorboard: Path | None,
    log_every: int,
    yours: str | None = None,
) -> None:
    """One rank of a data-parallel run, in a process group already started."""
    train(cfg, tensorboard, log_every, device, yours)


def train(
    cfg: training.TrainConfig,
    tensorboard: Path | None,
    log_every: int,
    device: torch.device,
    yours: str | None = None,
) -> int:
    """The run ``cfg``, printed as it goes; every check on the options and outputs first;
    ``yours`` (``FILE.py:NAME``) in place of every hidden activation."""
    world = distributed.current()
    callbacks = [tensorboard_log(tensorboard, log_every)] if tensorboard and world.rank == 0 else []
    if yours is not None:  # first: the other callbacks see the model with it
        callbacks.insert(0, testing.UseActivation(yours))
    if cfg.compile:  # the compiler's C++ toolchain probe warns about CUDA even on a CPU run
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    print(
        f"dlconcepts train: {cfg.impl} pieces, {yours or cfg.activation} + {cfg.init} init, "
        f"MLP {'-'.join(map(str, cfg.sizes))}, {cfg.optimizer} lr {cfg.lr}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, device {device}, {torch.get_num_threads()} threads"
        + (f", {world.size} processes ({world.backend})" if world.size > 1 else "")
        + (f", {training.precision_for(True, device).describe()}" if cfg.amp else "")
        + (", compiled" if cfg.compile else "")
    )
    train_set, test_set = _common.splits_for(cfg, device)
    result = training.fit(
        cfg,
        train_set,
        test_set,
        log=lambda line: tqdm.tqdm.write(line, file=sys.stdout),
        progress=progress_bar if cfg.progress and sys.stderr.isatty() else None,
        callbacks=callbacks,
    )
    print_summary(result)
    if cfg.out:
        out = Path(cfg.out)
        print(f"wrote {out / training.METRICS} and {out / training.CHECKPOINT}")
    return 0
