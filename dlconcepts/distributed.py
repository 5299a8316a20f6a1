"""Data-parallel training: the sum rule across processes, on PyTorch's own engine.

The cost of a batch is the mean of its per-example losses, so its gradient is a sum over
the examples (the multivariable chain rule: one weight reaches the cost through every
example)::

    ∂C/∂w = (1/B) Σ_examples ∂ℓ/∂w = (1/N) Σ_ranks [ (N/B) Σ_(examples of the rank) ∂ℓ/∂w ]

With N processes ("ranks") each taking an equal slice of B/N examples of every batch, the
bracket is each rank's own mean cost gradient, and ``DistributedDataParallel`` averages the
brackets with an all-reduce. The hand-written backward passes need no change: DDP hooks
each parameter's gradient accumulator, whoever computed the gradient.

This module holds the pieces :func:`training.fit` and ``dlconcepts train --nproc N`` need:
the process group (:func:`start`, :func:`stop`, :func:`current`), the rank's slice of every
batch (:func:`check_even_split`, :func:`rank_slice`), the mean over ranks
(:func:`mean_over_ranks`), and a local launcher that ends every worker when one fails
(:func:`launch`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from dlconcepts._checks import invalid

# torch.distributed.nn's functions take ``group=group.WORLD`` as a default, evaluated on
# import. Imported after a group starts (DDP imports it, through torch.compile's modules),
# those defaults keep the group alive past destroy_process_group, and its gloo threads can
# outlive the interpreter and abort it at exit (SIGABRT). Imported first, the defaults hold
# no group.
if dist.is_available():
    import torch.distributed.nn

# a collective that waits longer than this raises on every rank instead of hanging
TIMEOUT = datetime.timedelta(seconds=60)
# after one worker fails, how long the others get to exit before they are killed
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class World:
    """Which process this is among how many: rank 0 of 1, with no backend, without a group."""

    rank: int = 0
    size: int = 1
    backend: str | None = None


class WorkerFailed(RuntimeError):
    """A worker of :func:`launch` raised or died; the others were stopped."""


def current() -> World:
    """This process's place in the process group, or the single-process world."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
    return World()


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another ``env://`` launcher) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start(
    device: torch.device,
    init_method: str = "env://",
    rank: int | None = None,
    world_size: int | None = None,
    timeout: datetime.timedelta = TIMEOUT,
) -> torch.device:
    """Join the process group; returns the device this rank trains on (its own GPU). Only
    rank 0 prints: the others' standard output goes nowhere."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank or 0)))
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend_for(device),
        init_method=init_method,
        rank=-1 if rank is None else rank,
        world_size=-1 if world_size is None else world_size,
        timeout=timeout,
    )
    if dist.get_rank() > 0:
        sys.stdout = open(os.devnull, "w")  # for the life of the process
    return device


def stop() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_even_split(examples: int, batch_size: int, world: World) -> None:
    """Every batch, the last partial one too, must split into ``world.size`` equal slices:
    only then is the mean of the ranks' mean costs the mean cost of the whole batch."""
    if batch_size % world.size:
        raise invalid(
            "batch_size", batch_size, f"a multiple of the {world.size} processes (--nproc)"
        )
    last = examples % batch_size
    if last % world.size:
        raise invalid(
            "limit_train",
            examples,
            f"a number of examples whose last partial batch ({last} of {batch_size}) splits "
            f"evenly over the {world.size} processes",
        )


def rank_slice(
    batches: Iterable[tuple[Tensor, Tensor]], world: World
) -> Iterator[tuple[Tensor, Tensor]]:
    """This rank's slice of every global batch: rows ``rank·b/N`` to ``(rank+1)·b/N``.

    Every rank draws the same seeded shuffle, so the slices are disjoint and together
    cover the batch one process would have taken.
    """
    for x, y in batches:
        share = len(x) // world.size
        rows = slice(world.rank * share, (world.rank + 1) * share)
        yield x[rows], y[rows]


def mean_over_ranks(value: Tensor) -> Tensor:
    """The mean of ``value`` over every rank (itself with one process), on the device."""
    world = current()
    if world.size == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)  # a sum over the ranks, the same on every rank
    return total / world.size


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel: its gradients are averaged over the ranks."""
    device_ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


# --- a local launcher ------------------------------------------------------------------------


def _worker(
    rank: int,
    nproc: int,
    folder: str,
    device: torch.device,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: datetime.timedelta,
) -> None:
    """One rank of :func:`launch`: join the group, run ``fn(device, *args)``, leave the group.
    The first rank to raise writes why into ``folder`` (the others' errors are most likely
    its consequence: a lost peer); Ctrl-C ends a worker quietly (the launcher says it once)."""
    # each process's intra-op thread pool would use every core: N processes would run N times
    # as many threads as cores, all contending; a share each keeps one thread per core
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        rendezvous = f"file://{os.path.join(folder, 'rendezvous')}"
        device = start(device, rendezvous, rank, nproc, timeout)
        fn(device, *args)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        first_line = (str(e).splitlines() or [""])[0]
        with contextlib.suppress(FileExistsError), open(os.path.join(folder, "failure"), "x") as f:
            f.write(f"rank {rank} raised {type(e).__name__}: {first_line}")
        raise
    finally:
        with contextlib.suppress(Exception):
            stop()


def _cause(context: mp.ProcessContext, folder: str) -> str:
    """One line: which rank failed first, and why. A rank killed by a signal (other than the
    SIGTERM that stops the rest) comes first: the others failed for want of it."""
    for rank, process in enumerate(context.processes):
        code = process.exitcode
        if code is not None and code < 0 and -code != signal.SIGTERM:
            return f"rank {rank} died (signal {signal.Signals(-code).name})"
    failure = os.path.join(folder, "failure")
    if os.path.exists(failure):
        with open(failure) as f:
            return f.read()
    for rank, process in enumerate(context.processes):
        if process.exitcode:
            return f"rank {rank} died (exit code {process.exitcode})"
    return "a worker failed"


def _stop(processes: list[BaseProcess]) -> None:
    """After Ctrl-C: a terminal sends it to every worker too, so first give them
    :data:`GRACE_SECONDS` to leave the group and release what they hold (a worker killed at
    once leaks its semaphores); then SIGTERM the rest, and SIGKILL what still runs."""

    def join_all() -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))

    join_all()
    for stop_one in (BaseProcess.terminate, BaseProcess.kill):
        for process in processes:
            if process.is_alive():
                stop_one(process)
        join_all()


def launch(
    nproc: int,
    device: torch.device,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: datetime.timedelta = TIMEOUT,
) -> None:
    """Run ``fn(device, *args)`` in ``nproc`` new processes, joined through a ``file://``
    rendezvous in a temporary folder (no port to pick).

    When a worker raises or dies, the others are stopped (SIGTERM, then SIGKILL after
    :data:`GRACE_SECONDS`) and :class:`WorkerFailed` names the rank and the cause in one
    line; Ctrl-C stops every worker and raises ``KeyboardInterrupt`` here. A rank that waits
    in a collective longer than ``timeout`` for a peer that is alive but stuck raises.
    """
    with tempfile.TemporaryDirectory(prefix="dlconcepts-launch-") as folder:
        context = mp.start_processes(
            _worker,
            args=(nproc, folder, device, fn, args, timeout),
            nprocs=nproc,
            join=False,
            start_method="spawn",
        )
        try:
            while not context.join(grace_period=GRACE_SECONDS):
                pass
        except KeyboardInterrupt:
            _stop(context.processes)
            raise
        except mp.ProcessExitedException as e:
            if e.exit_code == 130:
                raise KeyboardInterrupt from None
            raise WorkerFailed(_cause(context, folder)) from None
        except mp.ProcessRaisedException:
            raise WorkerFailed(_cause(context, folder)) from None
