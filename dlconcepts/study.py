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
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from dlconcepts import activations, data
from dlconcepts._checks import invalid, one_of
from dlconcepts.train import (
    OPTIMIZERS,
    TrainConfig,
    TrainingDiverged,
    resolve_device,
    train,
    write_json,
)

# grid name -> (dlconcepts.init scheme, std of the "random" scheme or None)
INITS: dict[str, tuple[str, float | None]] = {
    "zero": ("zero", None),
    "random-small": ("random", 0.01),
    "random-large": ("random", 1.0),
    "xavier": ("xavier", None),
    "he": ("he", None),
}
ACTIVATIONS: tuple[str, ...] = tuple(activations.ACTIVATIONS)
DEFAULT_OUT = Path("docs/results")


def init_options(name: str) -> dict[str, Any]:
    """The ``init`` and ``init_std`` of a grid name, for ``TrainConfig`` or ``MLP``."""
    if name not in INITS:
        raise one_of("init", name, list(INITS))
    scheme, std = INITS[name]
    return {"init": scheme} if std is None else {"init": scheme, "init_std": std}


@dataclass
class Run:
    """One training run of the grid."""

    activation: str
    init: str  # grid name, e.g. "random-small"
    seed: int
    history: list[dict[str, float]] = field(default_factory=list)  # EpochStats as dicts
    predicted_classes: int = 0  # distinct classes predicted on the test set at the end
    diverged: str | None = None  # the error, when the cost became NaN or inf

    @property
    def first_accuracy(self) -> float:
        return self.history[0]["test_accuracy"]

    @property
    def final_accuracy(self) -> float:
        return self.history[-1]["test_accuracy"]

    @property
    def final_cost(self) -> float:
        return self.history[-1]["test_cost"]

    @property
    def seconds(self) -> float:
        return sum(h["seconds"] for h in self.history)


def run_study(
    base: TrainConfig,
    activation_names: Sequence[str],
    init_names: Sequence[str],
    seeds: Sequence[int],
    train_set: data.InMemoryDataset,
    test_set: data.InMemoryDataset,
    *,
    progress: bool = True,
) -> list[Run]:
    """Train ``base`` once per (activation, init, seed) on the given datasets.

    A run whose cost becomes NaN or inf is kept, with ``diverged`` set, rather than stopping
    the grid: diverging is one of the results.
    """
    grid = list(itertools.product(activation_names, init_names, seeds))
    runs = []
    bar = tqdm(grid, desc="study", unit="run", file=sys.stderr, disable=not progress)
    for act, name, seed in bar:
        bar.set_postfix_str(f"{act} + {name}, seed {seed}")
        cfg = dataclasses.replace(
            base, activation=act, seed=seed, progress=False, **init_options(name)
        )
        run = Run(act, name, seed)
        try:
            result = train(cfg, train_set=train_set, test_set=test_set, log=lambda s: None)
        except TrainingDiverged as e:
            run.diverged = str(e).split(":")[0]  # "cost is nan at epoch 1, step 27"
        else:
            run.history = [dataclasses.asdict(h) for h in result.history]
            assert result.test_predictions is not None
            run.predicted_classes = int(result.test_predictions.unique().numel())
        runs.append(run)
    return runs


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    """``median [min–max]``, or the single value when there is one."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def _percent(v: float) -> str:
    return f"{100 * v:.2f}%"


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (activation, init): median, min and max over the seeds that finished."""
    rows = []
    keys = dict.fromkeys((r.activation, r.init) for r in runs)  # grid order, no duplicates
    for act, name in keys:
        group = [r for r in runs if (r.activation, r.init) == (act, name)]
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


def format_table(runs: list[Run], epochs: int) -> str:
    """The Markdown table of :func:`summarize`'s rows (values: median [min–max] over seeds)."""
    head = (
        f"| activation | init | test acc, epoch 1 | test acc, epoch {epochs} "
        f"| test cost, epoch {epochs} | classes predicted | train s |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for act, name in dict.fromkeys((r.activation, r.init) for r in runs):
        group = [r for r in runs if (r.activation, r.init) == (act, name)]
        done = [r for r in group if r.diverged is None]
        if not done:
            why = "; ".join(f"seed {r.seed}: {r.diverged}" for r in group)
            lines.append(f"| {act} | {name} | diverged ({why}) | – | – | – | – |")
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
        lines.append(f"| {act} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise invalid(name, text, "comma-separated ints like 1,2,3") from None
    if not values:
        raise invalid(name, text, "at least one int")
    return values


def parse_names(text: str, name: str, choices: Sequence[str]) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    for v in values:
        if v not in choices:
            raise one_of(name, v, list(choices))
    if not values:
        raise invalid(name, text, f"a comma-separated subset of {', '.join(choices)}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlconcepts study",
        description=__doc__.split("\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--activations", default=",".join(ACTIVATIONS), help="comma-separated")
    p.add_argument("--inits", default=",".join(INITS), help="comma-separated")
    p.add_argument("--seeds", default="1", help="comma-separated; several give median [min–max]")
    p.add_argument("--hidden", default="256,128", help="hidden layer sizes, comma-separated")
    p.add_argument("--epochs", type=int, default=5, help="epochs per run")
    p.add_argument("--batch-size", type=int, default=128, help="batch size")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="optimizer")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (constant)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device")
    p.add_argument("--data-dir", default=None, help="data folder")
    p.add_argument("--limit-train", type=int, default=None, help="first N training examples")
    p.add_argument("--limit-test", type=int, default=None, help="first N test examples")
    # SUPPRESS: tell "not given" apart from the default, so a --dry-run never overwrites the
    # committed results by accident
    p.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        help=f"folder for study.md and results.json (default: {DEFAULT_OUT}; "
        "with --dry-run nothing is written unless --out is given)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="1 epoch of 5 batches per run on 1000 examples (for CI)",
    )
    return p


def write_markdown(path: Path, table: str, meta: dict[str, Any]) -> None:
    cfg = meta["config"]
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
`dlconcepts/study.py`):

* **zero**: all hidden units of a layer compute the same function and get the same gradient, \
so they stay identical (`dlconcepts symmetry` shows it step by step). With tanh and ReLU, \
f(0) = 0 and every weight gradient is exactly 0: only the output bias learns, and the model \
answers one digit for every image: the most frequent one, a 1 (11.35% of the test set), or \
another frequent one when the last batches tipped the bias (e.g. 10.10%, the share of 3s). With sigmoid, \
σ(0) = 1/2, so the weights do move, but each layer acts as one unit: a 784-1-1-10 network, \
far below every random init.
* **random-small** N(0, 0.01²): each layer multiplies the signal's variance by \
fan_in·0.01² (0.078, 0.026, 0.013 for 784-256-128-10), so signals and gradients start tiny. With only two \
hidden layers SGD recovers; the slow start shows with sigmoid, whose σ' ≤ 1/4 shrinks the \
gradient further (`dlconcepts signals` shows what ten layers do).
* **random-large** N(0, 1): the factor is 128 to 784 per layer: sigmoid and tanh units \
saturate (f' ≈ 0) and stay far behind; ReLU activations explode and the cost becomes NaN \
within the first epoch (reported as diverged: no numbers).
* **xavier** and **he** keep that factor near 1: the best or near-best accuracy after one \
epoch and at the end, for every activation.

Per-epoch histories of every run are in `results.json` (`dlconcepts plot curves` draws them).
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        acts = parse_names(args.activations, "activations", ACTIVATIONS)
        inits = parse_names(args.inits, "inits", list(INITS))
        seeds = parse_ints(args.seeds, "seeds")
        hidden = parse_ints(args.hidden, "hidden")
        base = TrainConfig(
            hidden=hidden,
            epochs=1 if args.dry_run else args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            momentum=args.momentum,
            schedule="constant",
            device=args.device,
            data_dir=args.data_dir,
            max_steps=5 if args.dry_run else None,
            progress=False,
        )
        device = resolve_device(base.device)
    except ValueError as e:
        parser.error(str(e))
    out = getattr(args, "out", None if args.dry_run else str(DEFAULT_OUT))
    limit_train = 1000 if args.dry_run else args.limit_train
    limit_test = 1000 if args.dry_run else args.limit_test
    try:
        train_set, test_set = data.load_splits(
            base.dataset,
            data_dir=base.data_dir,
            device=device,
            limit_train=limit_train,
            limit_test=limit_test,
        )
    except (data.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"dlconcepts study: {len(acts)} activations x {len(inits)} inits x {len(seeds)} seeds, "
        f"MLP {'-'.join(map(str, base.sizes))}, {base.optimizer} lr {base.lr}, "
        f"{base.epochs} epochs on {len(train_set):,} examples, device {device}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    t0 = time.perf_counter()
    runs = run_study(base, acts, inits, seeds, train_set, test_set, progress=not args.no_progress)
    table = format_table(runs, base.epochs)
    print()
    print(table)
    if out is None:
        return 0
    config = dataclasses.asdict(base)
    config["hidden"] = list(base.hidden)
    meta = {
        "command": "dlconcepts study" + (" " + shlex.join(argv) if argv else ""),
        "date": time.strftime("%Y-%m-%d"),
        "torch_version": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "wall_seconds": time.perf_counter() - t0,
        "train_examples": len(train_set),
        "test_examples": len(test_set),
        "seeds": list(seeds),
        "inits": {name: {"scheme": s, "std": std} for name, (s, std) in INITS.items()},
        "config": config,
    }
    out_dir = Path(out)
    write_markdown(out_dir / "study.md", table, meta)
    write_json(
        out_dir / "results.json",
        {
            **meta,
            "summary": summarize(runs),
            "runs": [dataclasses.asdict(r) for r in runs],
        },
    )
    print(f"\nwrote {out_dir / 'study.md'} and {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
