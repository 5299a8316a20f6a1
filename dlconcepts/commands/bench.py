"""``dlconcepts bench``: hand-written pieces against PyTorch's built-ins, side by side.

All figures come from one process, and what is compared is timed in alternating rounds, so
a shared machine's drift falls on both sides; ratios (ours / built-in) are what to read.
Each time is a median over repeats, with the min–max range.

- activations: forward + backward of each hand-written activation against the built-in, at
  1x1 (the fixed cost of a call) up to 4096², with the achieved memory bandwidth against a
  plain copy and, for tanh, the cost of the ``expm1`` pass its accuracy needs,
- memory: bytes saved for the backward by one training step, custom against built-in,
- epoch: one training epoch of a 784-256-128-10 MLP, custom pieces against built-in, and
  what each kind of hand-written piece adds to one forward+backward,
- pipeline: one epoch with the in-memory batches against DataLoader + ToTensor,
- time-to-98: training seconds until the test accuracy first reaches 98%,
- data-parallel: one epoch in 1 process and in 2 (``train --nproc 2``), and the share of
  the 2-process epoch spent in the gradients' all-reduce.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import activations, data, distributed, layers, losses, training

SECTIONS = ("activations", "memory", "epoch", "pipeline", "time-to-98", "data-parallel")
# 1x1: no arithmetic to speak of, so the time is the fixed cost of one call
SHAPES = ((1, 1), (64, 256), (256, 1024), (4096, 4096))


@dataclasses.dataclass
class Timing:
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{format_seconds(self.median)} [{format_seconds(self.low)}–{format_seconds(self.high)}]"


def format_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _timing(times: list[float]) -> Timing:
    return Timing(statistics.median(times), min(times), max(times))


def time_interleaved(fns: list[Callable[[], Any]], budget: float, rounds: int = 5) -> list[Timing]:
    """Per-call times of each statement, measured in alternating rounds, so a shared
    machine's drift falls on all of them alike. Each round times one block of calls, as many
    as fill its share of ``budget``, and waits for a GPU before stopping the clock.

    (``torch.utils.benchmark`` would do the same, but importing it imports
    ``torch.utils.cpp_extension``, which warns about ``CUDA_HOME`` on every CPU-only machine.)
    """
    share = budget / rounds / len(fns)
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else lambda: None
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()  # one call, also a warm-up, tells how many fill the share
            sync()
            number = max(1, int(share / (time.perf_counter() - t0)))
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            sync()
            out.append((time.perf_counter() - t0) / number)
    return [_timing(t) for t in times]


def fwd_bwd(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, g: torch.Tensor
) -> Callable[[], Any]:
    """One forward and backward of ``f`` at ``x``; ``autograd.grad`` so no ``.grad`` accumulates."""
    return lambda: torch.autograd.grad(f(x), x, g)


def bench_activations(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """Each activation against the built-in, and per shape two reference points: a plain copy
    (the memory bandwidth) and, for tanh, the ``expm1`` pass its accuracy near 0 needs."""
    rows = []
    for shape in SHAPES[:2] if quick else SHAPES:
        x = (torch.randn(shape, device=device) * 3).requires_grad_()
        g = torch.randn(shape, device=device)
        out = torch.empty_like(x)
        # large shapes take ~0.1 s a call: fewer repeats are enough for a stable median
        budget = 0.05 if quick else (3.0 if shape[0] >= 4096 else 1.0)
        rounds = 1 if quick else 5
        xd = x.detach()
        copy, expm1, tanh_fwd = time_interleaved(
            [
                functools.partial(out.copy_, xd),
                functools.partial(torch.expm1, xd, out=out),
                functools.partial(torch.tanh, xd, out=out),
            ],
            budget,
            rounds,
        )
        copy_gbs = 2 * x.numel() * x.element_size() / copy.median / 1e9  # read + write
        for name in activations.ACTIVATIONS:
            # theirs: torch.sigmoid, torch.tanh or torch.relu
            ours_fn, theirs_fn = activations.get(name).apply, getattr(torch, name)
            ours, theirs = time_interleaved(
                [fwd_bwd(ours_fn, x, g), fwd_bwd(theirs_fn, x, g)], 2 * budget, rounds
            )
            # forward reads x, writes y; backward reads g and y, writes the gradient
            moved = 5 * x.numel() * x.element_size()
            rows.append(
                {
                    "activation": name,
                    "shape": "x".join(map(str, shape)),
                    "ours": ours,
                    "builtin": theirs,
                    "ratio": ours.median / theirs.median,
                    "ours_gbs": moved / ours.median / 1e9,
                    "builtin_gbs": moved / theirs.median / 1e9,
                    "copy_gbs": copy_gbs,
                    "expm1_vs_tanh": expm1.median / tanh_fwd.median,
                }
            )
    return rows


def saved_bytes(model: torch.nn.Module, impl: str, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes that autograd keeps for the backward of one training step (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        cost = training.cost_fn(impl)(model(x), y)
    cost.backward()
    return sum(seen.values())


def bench_memory(train_set: data.InMemoryDataset, device: torch.device) -> dict[str, Any]:
    x, y = train_set.images[:128].clone(), train_set.labels[:128].clone()  # not views of the set
    out = {}
    for impl in ("custom", "torch"):
        model = training.build_model(training.TrainConfig(hidden=(256, 128), impl=impl), device)
        out[impl] = saved_bytes(model, impl, x, y)
    return {
        "custom_bytes": out["custom"],
        "builtin_bytes": out["torch"],
        "ratio": out["custom"] / out["torch"],
    }


def time_epoch(
    cfg: training.TrainConfig, train_set: data.InMemoryDataset, device: torch.device
) -> float:
    model = training.build_model(cfg, device)
    steps = train_set.num_batches(cfg.batch_size)
    opt, sched = training.build_optimizer(cfg, model, steps)
    batches = train_set.batches(cfg.batch_size, generator=training.epoch_generator(cfg.seed, 1))
    t0 = time.perf_counter()
    costs = training.train_one_epoch(model, batches, opt, sched, training.cost_fn(cfg.impl))
    training.checked_costs(costs)  # the loop's contract; waits for the device, too
    return time.perf_counter() - t0


def bench_epoch(
    train_set: data.InMemoryDataset, device: torch.device, repeats: int
) -> dict[str, Any]:
    cfg = training.TrainConfig(hidden=(256, 128), optimizer="sgd", lr=0.05, device=str(device.type))
    runs = {impl: dataclasses.replace(cfg, impl=impl) for impl in ("custom", "torch")}
    times: dict[str, list[float]] = {impl: [] for impl in runs}
    for run in runs.values():
        time_epoch(run, train_set, device)  # warm-up: first-touch allocations, thread pool
    for _ in range(repeats):  # alternating, so drift on a shared machine falls on both alike
        for impl, run in runs.items():
            times[impl].append(time_epoch(run, train_set, device))
    custom, builtin = _timing(times["custom"]), _timing(times["torch"])
    return {"custom": custom, "builtin": builtin, "ratio": custom.median / builtin.median}


def bench_step_parts(
    train_set: data.InMemoryDataset, device: torch.device, quick: bool
) -> dict[str, Timing]:
    """What each kind of hand-written piece adds to one forward+backward of 784-256-128-10
    (ReLU) at batch 128: the built-in model with one kind of piece swapped for ours at a time."""
    x, y = train_set.images[:128], train_set.labels[:128]

    def step(
        linear: type[torch.nn.Module], act: type[torch.nn.Module], cost: Callable[..., Any]
    ) -> Any:
        model = torch.nn.Sequential(
            linear(784, 256), act(), linear(256, 128), act(), linear(128, 10)
        ).to(device)
        params = list(model.parameters())
        return lambda: torch.autograd.grad(cost(model(x), y), params)

    variants = {
        "built-in": step(torch.nn.Linear, torch.nn.ReLU, torch.nn.functional.cross_entropy),
        "our Linear": step(layers.Linear, torch.nn.ReLU, torch.nn.functional.cross_entropy),
        "our ReLU": step(torch.nn.Linear, activations.ReLU, torch.nn.functional.cross_entropy),
        "our cross-entropy": step(torch.nn.Linear, torch.nn.ReLU, losses.cross_entropy),
        "all ours": step(layers.Linear, activations.ReLU, losses.cross_entropy),
    }
    timings = time_interleaved(list(variants.values()), *((0.1, 1) if quick else (10.0, 5)))
    return dict(zip(variants, timings))


def bench_pipeline(
    train_set: data.InMemoryDataset, device: torch.device, limit: int | None
) -> dict[str, Any]:
    """One epoch of the same model and optimizer, fed by each pipeline."""
    cfg = training.TrainConfig(hidden=(256, 128), optimizer="sgd", lr=0.05, device=str(device.type))
    loader = data.torchvision_loader("mnist", batch_size=cfg.batch_size, train=True)

    def run(batches: Any) -> float:
        model = training.build_model(cfg, device)
        opt, sched = training.build_optimizer(cfg, model, train_set.num_batches(cfg.batch_size))
        t0 = time.perf_counter()
        costs = training.train_one_epoch(
            model, itertools.islice(batches, limit), opt, sched, training.cost_fn(cfg.impl)
        )
        training.checked_costs(costs)  # the loop's contract; waits for the device, too
        return time.perf_counter() - t0

    gen = training.epoch_generator(cfg.seed, 1)
    in_memory = run(train_set.batches(cfg.batch_size, generator=gen))
    dataloader = run((x.to(device).flatten(1), y.to(device)) for x, y in loader)
    return {"in_memory_s": in_memory, "dataloader_s": dataloader, "speedup": dataloader / in_memory}


def bench_time_to_98(device: torch.device, preset: str, sets: tuple) -> dict[str, Any]:
    out = {}
    for impl in ("custom", "torch"):
        cfg = dataclasses.replace(
            training.TrainConfig(**choices.PRESETS[preset]),
            impl=impl,
            device=device.type,
            progress=False,
        )
        result = training.fit(cfg, *sets, log=lambda s: None)
        elapsed, reached = 0.0, None
        for h in result.history:
            elapsed += h.seconds
            if reached is None and h.test_accuracy >= 0.98:
                reached = elapsed
        out[impl] = {
            "seconds_to_98": reached,
            "final_accuracy": result.test_accuracy,
            "train_seconds": result.train_seconds,
        }
    return out


def data_parallel_epoch(device: torch.device, cfg: training.TrainConfig, folder: Path) -> None:
    """One rank of :func:`bench_data_parallel`: one epoch of ``cfg``, then the time of one
    all-reduce of every gradient, times the epoch's steps; rank 0 writes both to ``folder``."""
    train_set, test_set = _common.splits_for(cfg, device)
    result = training.fit(cfg, train_set, test_set, log=lambda line: None)
    size = sum(p.numel() for p in result.model.parameters())
    gradients = torch.zeros(size, dtype=training.DTYPES[cfg.dtype], device=device)
    repeats = 20
    distributed.mean_over_ranks(gradients)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        distributed.mean_over_ranks(gradients)
    steps = train_set.num_batches(cfg.batch_size)
    if distributed.current().rank == 0:
        communication = (time.perf_counter() - t0) / repeats * steps
        seconds = {"seconds": result.train_seconds, "communication_s": communication}
        (folder / "data-parallel.json").write_text(json.dumps(seconds))


def bench_data_parallel(device: torch.device, quick: bool) -> dict[str, Any]:
    """One epoch of the 784-256-128-10 MLP with 1 process and with 2 (each with half the
    threads), and the 2-process epoch's communication share."""
    cfg = training.TrainConfig(
        hidden=(256, 128),
        epochs=1,
        optimizer="sgd",
        lr=0.05,
        device=str(device.type),
        limit_train=2048 if quick else None,
        limit_test=1000,
        progress=False,
    )
    one = training.fit(cfg, *_common.splits_for(cfg, device), log=lambda line: None)
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"1": one.train_seconds}
    with tempfile.TemporaryDirectory() as folder:
        distributed.launch(2, device, data_parallel_epoch, (cfg, Path(folder)))
        two = json.loads((Path(folder) / "data-parallel.json").read_text())
    return {"1": one.train_seconds, "2": two["seconds"], "communication_s": two["communication_s"]}


def report(results: dict[str, Any]) -> str:
    lines = [f"machine: {results['machine']}", ""]
    if "activations" in results:
        rows = results["activations"]
        header = "activation,shape,ours,built-in,ratio,ours GB/s,built-in GB/s,copy GB/s"
        cells = [
            (
                r["activation"],
                r["shape"],
                r["ours"],
                r["builtin"],
                f"{r['ratio']:.2f}x",
                f"{r['ours_gbs']:.1f}",
                f"{r['builtin_gbs']:.1f}",
                f"{r['copy_gbs']:.1f}",
            )
            for r in rows
        ]
        lines += [
            "forward+backward, float32: median [min–max]; ratio = ours / built-in (lower is better)",
            "",
            _common.markdown_table(header.split(","), cells, right=2),
            "",
        ]
        fixed = {
            r["activation"]: r["ours"].median - r["builtin"].median
            for r in rows
            if r["shape"] == "1x1"
        }
        if fixed:
            lines += [
                "fixed cost per call at 1x1 (ours - built-in, forward+backward): "
                + ", ".join(f"{name} {format_seconds(t)}" for name, t in fixed.items()),
                "",
            ]
        expm1 = {r["shape"]: r["expm1_vs_tanh"] for r in rows}
        lines.append(
            "tanh's expm1 pass alone / built-in tanh forward: "
            + ", ".join(f"{shape} {ratio:.1f}x" for shape, ratio in expm1.items())
        )
        lines.append("")
    if "memory" in results:
        m = results["memory"]
        lines.append(
            f"saved for backward, one step of 784-256-128-10 at batch 128: custom {m['custom_bytes'] / 1024:.0f} KiB, "
            f"built-in {m['builtin_bytes'] / 1024:.0f} KiB (ratio {m['ratio']:.2f}x)"
        )
    if "epoch" in results:
        e = results["epoch"]
        lines.append(
            f"training epoch, 784-256-128-10, batch 128, SGD: custom {e['custom']}, built-in {e['builtin']} "
            f"(ratio {e['ratio']:.2f}x)"
        )
        parts = e["step_parts"]
        base = parts["built-in"].median
        lines.append(
            f"one forward+backward of it (ReLU, batch 128): built-in {parts['built-in']}; "
            + ", ".join(
                f"{name} {format_seconds(t.median - base)} more"
                for name, t in parts.items()
                if name != "built-in"
            )
        )
    if "pipeline" in results:
        p = results["pipeline"]
        lines.append(
            f"one epoch fed by in-memory batches {p['in_memory_s']:.2f} s vs DataLoader+ToTensor "
            f"{p['dataloader_s']:.2f} s ({p['speedup']:.1f}x faster)"
        )
    if "time-to-98" in results:
        for impl, r in results["time-to-98"].items():
            reached = "not reached" if r["seconds_to_98"] is None else f"{r['seconds_to_98']:.1f} s"
            lines.append(
                f"time to 98% test accuracy ({results['preset']} preset, {impl}): {reached} of training "
                f"(final {100 * r['final_accuracy']:.2f}% after {r['train_seconds']:.1f} s)"
            )
    if "data-parallel" in results:
        r = results["data-parallel"]
        two = (
            f"{r['2']:.2f} s with 2 ({100 * r['communication_s'] / r['2']:.0f}% of it in the "
            "gradients' all-reduce)"
            if "2" in r
            else "2 processes need 2 GPUs"
        )
        lines.append(
            f"data-parallel epoch (784-256-128-10, batch 128): {r['1']:.2f} s with 1, {two}"
        )
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Timing):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def build_parser() -> argparse.ArgumentParser:
    shared = _common.options("device", "dry-run", "json")
    p = _common.parser("bench", __doc__, [shared])
    p.add_argument(
        "--only",
        type=_common.name_list(SECTIONS),
        default=",".join(SECTIONS),
        help="comma-separated sections",
    )
    p.add_argument(
        "--repeats", type=_common.positive_int, default=3, help="repeats of each training epoch"
    )
    p.add_argument(
        "--preset",
        default="fast",
        choices=list(choices.PRESETS),
        help="train preset for time-to-98",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = _common.device(args.device)
    cpu = platform.processor() or platform.machine()
    machine = (
        f"{cpu}, {torch.get_num_threads()} threads"
        if device.type == "cpu"
        else torch.cuda.get_device_name(device)
    ) + f", torch {torch.__version__}"
    results: dict[str, Any] = {"machine": machine, "preset": args.preset}
    quick = args.dry_run  # tiny sizes and few repeats: it runs, but gives no figures to quote
    sets = _common.load_splits(
        device=device, limit_train=2048 if quick else None, limit_test=1000 if quick else None
    )
    if "activations" in args.only:
        results["activations"] = bench_activations(device, quick)
    if "memory" in args.only:
        results["memory"] = bench_memory(sets[0], device)
    if "epoch" in args.only:
        results["epoch"] = bench_epoch(sets[0], device, 1 if quick else args.repeats)
        results["epoch"]["step_parts"] = bench_step_parts(sets[0], device, quick)
    if "pipeline" in args.only:
        results["pipeline"] = bench_pipeline(sets[0], device, 5 if quick else None)
    if "time-to-98" in args.only and not quick:
        results["time-to-98"] = bench_time_to_98(device, args.preset, sets)
    if "data-parallel" in args.only:
        results["data-parallel"] = bench_data_parallel(device, quick)
    print(report(results))
    if args.json:
        _common.write_json(args.json, _jsonable(results))
    return 0
