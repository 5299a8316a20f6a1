r"""``dlconcepts signals``: what a deep MLP does to a real batch at initialization, layer by layer.

One MNIST batch goes forward through an untrained MLP with ``--depth`` hidden layers of
``--width`` units (784-256-...-256-10), and the cost goes back. For every hidden layer ``l``
with pre-activation :math:`z_l = a_{l-1} W_l^\top + b_l` and activation :math:`a_l = f(z_l)`
we record

* the mean and std of the **activations** :math:`a_l` (over the batch and the units),
* the mean and std of the **gradients** :math:`\partial C / \partial z_l`, the gradient of the
  cost with respect to the layer's pre-activation. It is what the layer's weights learn
  from (:math:`\partial C / \partial W_l = (\partial C / \partial z_l)^\top a_{l-1}`), and
  what backpropagation carries to the layer below. The cost is the batch mean, so these
  gradients carry a factor 1/B; only their change from layer to layer matters here.
* the share of units with :math:`f'(z_l)` below 1% of its peak: *saturated* sigmoid or tanh
  units, or *inactive* ReLUs (about half of them is normal for ReLU).

Why the numbers move: with independent weights of variance :math:`s^2`,
:math:`\operatorname{Var}(z_l) \approx \text{fan\_in}\, s^2\, \mathbb{E}[a_{l-1}^2]` going
forward, and the gradient's variance picks up :math:`\text{fan\_out}\, s^2\, \mathbb{E}[f'(z)^2]`
per layer going back. Over ten layers any factor other than about 1 is raised to the tenth
power: small random weights make the signal (tanh, ReLU) and the gradient vanish, large ones
saturate sigmoid and tanh and make ReLU explode; Xavier (tanh) and He (ReLU) choose
:math:`s` so the factor is 1. Sigmoid is not zero-centred and :math:`\sigma' \le 1/4`, so no
init keeps its gradients from shrinking. With zero init every activation of a layer is the
same number (std 0) and every gradient is 0: the output layer's zero weights stop them.

It writes ``signals.md``, ``signals.json`` and ``signals.png`` into ``--out``,
``runs/signals`` by default; ``--out docs/results --img docs/img`` regenerates the docs'.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from typing import Any

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import data, experiments, figures, training


def shown_layers(depth: int) -> list[int]:
    """The layers of the compact table: first, middle, last (1, 5, 10 for depth 10)."""
    return sorted({1, max(1, depth // 2), depth})


# The deepest MLP the command builds: the effects it shows grow layer by layer and are plain
# within tens of layers (a poor init overflows float32 well before 100); a deeper one only
# takes longer, and fills the full table with depth rows per combination.
MAX_DEPTH = 100


def verdict(activation: str, layers: list[dict[str, Any]]) -> str:
    """A one-word reading of a row: overflowed, zero, vanishing, exploding, saturated or
    stable. A NaN compares false with every bound, so it is looked for first: a row with an
    inf or a NaN anywhere overflowed float32, whatever its other numbers say."""
    if any(not math.isfinite(s[key]) for s in layers for key in ("act_std", "grad_std")):
        return "overflowed (inf/nan)"
    first, last = layers[0], layers[-1]
    if last["act_std"] == 0 and last["grad_std"] == 0:
        return "zero: all units equal, no gradient"
    act_ratio = last["act_std"] / first["act_std"] if first["act_std"] else math.inf
    grad_ratio = first["grad_std"] / last["grad_std"] if last["grad_std"] else math.inf
    words = []
    if activation != "relu" and last["flat"] > 0.5:
        words.append("saturated")
    if act_ratio > 100 or grad_ratio > 100:
        words.append("exploding")
    if act_ratio < 0.01:
        words.append("signal vanishes")
    if grad_ratio < 0.01:
        words.append("gradient vanishes")
    return ", ".join(words) or "stable"


def _num(v: float) -> str:
    return "0" if v == 0 else f"{v:.2g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


def format_table(results: list[dict[str, Any]], depth: int) -> str:
    """The compact Markdown table: std of a and of dC/dz at the first, middle and last layer."""
    show = shown_layers(depth)
    header = [
        "activation",
        "init",
        *(f"std a, L{i}" for i in show),
        *(f"std ∂C/∂z, L{i}" for i in show),
        f"f′≈0, L{depth}",
        "reading",
    ]
    rows = []
    for r in results:
        by_layer = {s["layer"]: s for s in r["layers"]}
        rows.append(
            [
                r["activation"],
                r["init"],
                *(_num(by_layer[i]["act_std"]) for i in show),
                *(_num(by_layer[i]["grad_std"]) for i in show),
                f"{100 * by_layer[depth]['flat']:.0f}%",
                verdict(r["activation"], r["layers"]),
            ]
        )
    return _common.markdown_table(header, rows, right=2)


def format_full_table(results: list[dict[str, Any]]) -> str:
    """Every layer of every combination: mean and std of a and of dC/dz, share with f' ≈ 0."""
    header = ["activation", "init", "layer", "mean a", "std a", "mean ∂C/∂z", "std ∂C/∂z", "f′≈0"]
    rows = [
        [
            r["activation"],
            r["init"],
            s["layer"],
            *(_num(s[key]) for key in ("act_mean", "act_std", "grad_mean", "grad_std")),
            f"{100 * s['flat']:.0f}%",
        ]
        for r in results
        for s in r["layers"]
    ]
    return _common.markdown_table(header, rows, right=2)


def build_parser() -> argparse.ArgumentParser:
    shared = _common.options("seed", "data-dir", "dry-run", seed=1)
    out = _common.out_option("signals", "signals.md, signals.json and signals.png")
    p = _common.parser("signals", __doc__, [_common.grid_options(), shared, out])
    p.add_argument(
        "--depth",
        type=_common.int_up_to(MAX_DEPTH),
        default=10,
        help=f"hidden layers (at most {MAX_DEPTH})",
    )
    p.add_argument(
        "--width",
        type=_common.positive_int,
        default=256,
        help="units per hidden layer (refused where the MLP would not fit in memory)",
    )
    p.add_argument(
        "--batch",
        type=_common.int_up_to(choices.TRAIN_EXAMPLES),
        default=choices.SIGNALS_BATCH,
        help=f"MNIST training examples in the batch (default: {choices.SIGNALS_BATCH}; "
        f"{choices.SIGNALS_DRY_RUN_BATCH} with --dry-run)",
    )
    p.add_argument(
        "--img",
        type=_common.out_folder,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="folder for signals.png (default: --out)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw signals.png")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    batch_size = experiments.SIGNALS_DRY_RUN_BATCH if args.dry_run else args.batch
    # the MLP's weights, gradients and a batch's activations, as a training step has them
    mlp = choices.TrainConfig(
        hidden=(args.width,) * args.depth,
        batch_size=batch_size,
        limit_test=batch_size,
        optimizer="sgd",
        momentum=0,
    )
    try:  # before anything is allocated: the batch is loaded on the CPU, and measured there
        training.check_memory(mlp, torch.device("cpu"))
    except training.NotEnoughMemory as e:
        return _common.error(str(e).replace("hidden:", "--width:", 1))
    try:
        # the first examples of the training set: a fixed, real batch
        batch = data.load("mnist", train=True, data_dir=args.data_dir, limit=batch_size)
    except (data.DataError, ValueError) as e:
        return _common.error(e)
    payload = experiments.measure_signals(
        batch,
        args.activations,
        {name: _common.INITS[name] for name in args.inits},
        depth=args.depth,
        width=args.width,
        seed=args.seed,
    )
    table = format_table(payload["results"], args.depth)
    sizes = "-".join(map(str, (784, *[args.width] * args.depth, 10)))
    setup = (
        f"MLP {sizes} at initialization, one batch of {batch_size} MNIST training images, "
        f"weight seed {args.seed}; a = activation, ∂C/∂z = gradient of the cost w.r.t. the "
        "layer's pre-activation; f′≈0 = share of units with f′(z) < 1% of its peak"
    )
    print(f"dlconcepts signals: {setup}\n")
    print(table)
    command = "dlconcepts signals" + (" " + shlex.join(argv) if argv else "")
    markdown, results = args.out / "signals.md", args.out / "signals.json"
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(
        f"# Signals through a deep MLP at initialization\n\n"
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}).\n\n"
        f"{setup}. L1 is the first hidden layer, L{args.depth} the last. The math is in "
        "`dlconcepts/commands/signals.py`; `signals.png` draws every layer.\n\n"
        f"{table}\n\n"
        "<details><summary>Every layer: mean and std of the activations and of the "
        "gradients</summary>\n\n"
        f"{format_full_table(payload['results'])}\n\n</details>\n"
    )
    _common.write_json(results, {"command": command, **payload})
    print(f"\nwrote {markdown} and {results}")
    if not args.no_plot:
        try:
            path = figures.plot_signals(payload, getattr(args, "img", args.out) / "signals.png")
        except figures.MissingExtra as e:
            print(f"signals.png not drawn: {e}")
        else:
            print(f"wrote {path}")
    return 0
