r"""``dlconcepts study``: every activation × initialization, trained on MNIST, in one table.

The same 784-256-128-10 MLP is trained for every pair of hidden activation
{sigmoid, tanh, relu} and weight initialization

============== =====================================================================
name           weights (biases start at 0 in every case)
============== =====================================================================
zero           all 0
random-small   :math:`\mathcal{N}(0, 0.01^2)`
random-large   :math:`\mathcal{N}(0, 1)`
xavier         :math:`\mathcal{U}(-a, a)`, :math:`a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`
he             :math:`\mathcal{N}(0, g^2/\text{fan\_in})`
============== =====================================================================

(``g`` is the activation's gain, see :func:`dlconcepts.init.calculate_gain`), with the same
optimizer, batches and epochs, and the table reports the test accuracy after the first and
the last epoch, the final test cost and the training time: the median and [min–max] over
``--seeds``. What to expect, and why (the math is in :mod:`dlconcepts.init` and
:mod:`dlconcepts.activations`):

* **zero**: every hidden unit of a layer computes the same function of the input and so
  receives the same gradient; the units stay identical for ever (``dlconcepts symmetry``).
  With tanh and ReLU, :math:`f(0) = 0`: the output layer sees only zeros and every weight
  gradient is exactly 0, so only the output bias learns and the network predicts the most
  frequent class (the digit 1: 1135 of the 10,000 test digits, 11.35%). With sigmoid,
  :math:`\sigma(0) = 1/2`, so gradients do flow, but each hidden layer behaves as a single
  unit: the network is a 784-1-1-10 one in disguise.
* **random-small**: each layer multiplies the variance of its input by
  :math:`\text{fan\_in}\cdot\text{std}^2` (0.078 for the first layer, 0.026 and 0.013 for the
  next ones), so the signal and the gradients start tiny; learning starts late.
* **random-large**: the same factor is 128 to 784 per layer: sigmoid and tanh units saturate
  (:math:`f' \approx 0`) and ReLU activations and costs explode (the cost may overflow: the
  run is then reported as diverged).
* **xavier** and **he** keep the factor near 1: the signal neither vanishes nor explodes.

The optimizer is plain SGD with momentum 0.9, lr 0.05, batch 128 and a constant learning
rate, the same for every cell: the differences then come from the activation and the
initialization alone. (Adam divides every step by a running gradient scale, which hides part
of a badly scaled initialization; a decaying schedule would mix the schedule into the
comparison of the first-epoch accuracies.)

It writes ``study.md`` and ``results.json`` (every run's per-epoch history) into ``--out``,
``runs/study`` by default; ``--out docs/results`` regenerates the table the docs show.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import experiments, training


def _groups(runs: list[experiments.Run]) -> dict[tuple[str, str], list[experiments.Run]]:
    """The runs of each (activation, init), in grid order."""
    groups: dict[tuple[str, str], list[experiments.Run]] = {}
    for r in runs:
        groups.setdefault((r.activation, r.init), []).append(r)
    return groups


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    """``median [min–max]``, or the single value when there is one."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def _percent(v: float) -> str:
    return f"{100 * v:.2f}%"


def summarize(runs: list[experiments.Run]) -> list[dict[str, Any]]:
    """One row per (activation, init): median, min and max over the seeds that finished."""
    rows = []
    for (act, name), group in _groups(runs).items():
        done = [r for r in group if r.diverged is None]
        row: dict[str, Any] = {
            "activation": act,
            "init": name,
            "seeds": [r.seed for r in group],
            "diverged": [r.seed for r in group if r.diverged is not None],
        }
        for key in ("first_accuracy", "final_accuracy", "final_cost", "seconds"):
            values = [getattr(r, key) for r in done]
            row[key] = (
                {"median": statistics.median(values), "min": min(values), "max": max(values)}
                if values
                else None
            )
        row["predicted_classes"] = [r.predicted_classes for r in done]
        rows.append(row)
    return rows


def format_table(runs: list[experiments.Run], epochs: int) -> str:
    """The Markdown table of the grid (values: median [min–max] over seeds)."""
    header = (
        "activation",
        "init",
        "test acc, epoch 1",
        f"test acc, epoch {epochs}",
        f"test cost, epoch {epochs}",
        "classes predicted",
        "train s",
    )
    rows = []
    for (act, name), group in _groups(runs).items():
        done = [r for r in group if r.diverged is None]
        if not done:
            why = "; ".join(f"seed {r.seed}: {r.diverged}" for r in group)
            rows.append([act, name, f"diverged ({why})", "–", "–", "–", "–"])
            continue
        cells = [
            _spread([r.first_accuracy for r in done], _percent),
            _spread([r.final_accuracy for r in done], _percent),
            _spread([r.final_cost for r in done], lambda v: f"{v:.4f}"),
            _spread([float(r.predicted_classes) for r in done], lambda v: f"{v:g}"),
            _spread([r.seconds for r in done], lambda v: f"{v:.1f}"),
        ]
        if len(done) < len(group):
            cells[1] += f" ({len(group) - len(done)} of {len(group)} seeds diverged)"
        rows.append([act, name, *cells])
    return _common.markdown_table(header, rows, right=2)


def build_parser() -> argparse.ArgumentParser:
    s = choices.STUDY
    shared = _common.options(
        "hidden",
        "epochs",
        "batch-size",
        "optimizer",
        "lr",
        "momentum",
        "device",
        "data-dir",
        "limit-train",
        "limit-test",
        "no-progress",
        "dry-run",
        hidden=s.hidden,
        epochs=s.epochs,
        batch_size=s.batch_size,
        optimizer=s.optimizer,
        lr=s.lr,
        momentum=s.momentum,
    )
    p = _common.parser(
        "study",
        __doc__,
        [_common.grid_options(), shared, _common.out_option("study", "study.md and results.json")],
    )
    p.add_argument(
        "--seeds",
        type=_common.seed_list,
        default="1",
        help="comma-separated; several give median [min–max]",
    )
    return p


def write_markdown(path: Path, table: str, meta: dict[str, Any]) -> None:
    """``study.md``: how it was made, the table, and how to read it. What it says of the
    network is computed from the run's config; no result of one run is written into another's."""
    cfg = meta["config"]
    fans = [784, *cfg["hidden"]]  # each layer's fan_in
    text = f"""# Activation × initialization on MNIST

Made by `{meta["command"]}` ({meta["date"]}, torch {meta["torch_version"]}, \
{meta["device"]}, {meta["threads"]} threads, {meta["wall_seconds"]:.0f} s in all).

MLP {"-".join(map(str, (784, *cfg["hidden"], 10)))}, hand-written pieces; \
{cfg["optimizer"]} (momentum {cfg["momentum"]}) at a constant lr {cfg["lr"]}, batch \
{cfg["batch_size"]}, {cfg["epochs"]} epochs on {meta["train_examples"]:,} training examples, \
tested on {meta["test_examples"]:,}; seeds {", ".join(map(str, meta["seeds"]))}. \
Every cell: median [min–max] over the seeds. "classes predicted": how many different digits the \
final model predicts on the test set (1 = it answers the same digit for every image). \
"train s": training time, evaluation excluded (wall clock: on a shared machine its spread \
measures the load, not the method).

{table}

How to read it (the math is in `dlconcepts/init.py`, `dlconcepts/activations.py` and \
`dlconcepts/commands/study.py`):

* **zero**: all hidden units of a layer compute the same function and get the same gradient, \
so they stay identical (`dlconcepts symmetry` shows it step by step). With tanh and ReLU, \
f(0) = 0 and every weight gradient is exactly 0: only the output bias learns, and the model \
answers one digit for every image (1 class predicted), so its accuracy is that digit's share \
of the test set (for the most frequent, a 1, 11.35% of the full test set). With sigmoid, \
σ(0) = 1/2, so the weights do move, but each layer acts as one unit: a \
{"-".join(["784", *["1"] * len(cfg["hidden"]), "10"])} network in disguise.
* **random-small** N(0, 0.01²): each layer multiplies the signal's variance by \
fan_in·0.01² ({", ".join(f"{n * 1e-4:.2g}" for n in fans)} for this network), so signals and \
gradients start tiny and learning starts late; latest with sigmoid, whose σ′ ≤ 1/4 shrinks \
the gradient further (`dlconcepts signals` shows what ten layers do).
* **random-large** N(0, 1): the factor is fan_in itself ({", ".join(map(str, fans))}): \
sigmoid and tanh units saturate (f′ ≈ 0) and learn slowly; ReLU activations explode, and a \
run whose cost overflows is reported as diverged, with no numbers.
* **xavier** and **he** keep that factor near 1: the signal neither vanishes nor explodes.

Per-epoch histories of every run are in `results.json` (`dlconcepts plot curves` draws them).
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        base = _common.train_config(args, experiments.STUDY)
    except ValueError as e:  # Adam's first step (10·lr) beyond float32's range
        parser.error(str(e))
    device = _common.device(base.device)
    train_set, test_set = _common.splits_for(base, device)
    inits = {name: _common.INITS[name] for name in args.inits}
    print(
        f"dlconcepts study: {len(args.activations)} activations x {len(inits)} inits x "
        f"{len(args.seeds)} seeds, layers.MLP {'-'.join(map(str, base.sizes))}, {base.optimizer} "
        f"lr {base.lr}, {base.epochs} epochs on {len(train_set):,} examples, device {device}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    t0 = time.perf_counter()
    runs = experiments.run_study(
        base,
        args.activations,
        inits,
        args.seeds,
        train_set,
        test_set,
        progress=not args.no_progress,
    )
    table = format_table(runs, base.epochs)
    print()
    print(table)
    meta = {
        "command": "dlconcepts study" + (" " + shlex.join(argv) if argv else ""),
        "date": time.strftime("%Y-%m-%d"),
        "torch_version": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "wall_seconds": time.perf_counter() - t0,
        "train_examples": len(train_set),
        "test_examples": len(test_set),
        "seeds": list(args.seeds),
        "inits": inits,
        "config": training.config_dict(base),
    }
    markdown, results = args.out / "study.md", args.out / "results.json"
    write_markdown(markdown, table, meta)
    _common.write_json(
        results,
        {**meta, "summary": summarize(runs), "runs": [dataclasses.asdict(r) for r in runs]},
    )
    print(f"\nwrote {markdown} and {results}")
    return 0
