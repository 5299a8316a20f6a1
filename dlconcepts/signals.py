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
"""

from __future__ import annotations

import argparse
import itertools
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dlconcepts import data
from dlconcepts._checks import invalid
from dlconcepts.activations import ACTIVATIONS
from dlconcepts.layers import MLP
from dlconcepts.losses import cross_entropy
from dlconcepts.study import DEFAULT_OUT, INITS, init_options, parse_names
from dlconcepts.train import write_json

DEFAULT_IMG = Path("docs/img")
# the largest value of each f': sigmoid'(0) = 1/4, tanh'(0) = 1, relu'(x > 0) = 1
PEAK_DERIVATIVE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}


@dataclass
class LayerStats:
    layer: int  # 1 = the first hidden layer
    act_mean: float
    act_std: float
    grad_mean: float  # of dC/dz, z the layer's pre-activation
    grad_std: float
    flat: float  # share of units with f'(z) < 1% of its peak (saturated / inactive)


def measure(
    activation: str,
    init: str,
    x: Tensor,
    y: Tensor,
    *,
    depth: int = 10,
    width: int = 256,
    seed: int = 1,
) -> list[LayerStats]:
    """Per-layer statistics of one forward and backward pass of ``(x, y)`` at initialization.

    ``init`` is a grid name of :data:`dlconcepts.study.INITS` (e.g. ``"random-small"``).
    """
    if depth < 1 or width < 1:
        raise invalid("depth, width", (depth, width), "positive ints")
    model = MLP(
        (x.shape[1], *[width] * depth, data.NUM_CLASSES),
        activation,
        generator=torch.Generator().manual_seed(seed),
        dtype=x.dtype,
        **init_options(init),
    ).to(x.device)
    # Run the children one by one (hidden1, act1, ..., output) to keep every z and a;
    # retain_grad asks autograd to keep dC/dz of these intermediate tensors too.
    pre, post = [], []
    h = x
    for name, module in model.named_children():
        h = module(h)
        if name.startswith("hidden"):
            h.retain_grad()
            pre.append(h)
        elif name.startswith("act"):
            post.append(h)
    cross_entropy(h, y).backward()
    derivative = ACTIVATIONS[activation].derivative  # f' from the output a = f(z)
    stats = []
    for layer, (z, a) in enumerate(zip(pre, post), start=1):
        g = z.grad
        assert g is not None
        a = a.detach()
        flat = (derivative(a) < 0.01 * PEAK_DERIVATIVE[activation]).float().mean()
        stats.append(
            LayerStats(
                layer,
                float(a.mean()),
                float(a.std()),
                float(g.mean()),
                float(g.std()),
                float(flat),
            )
        )
    return stats


def run_signals(
    x: Tensor,
    y: Tensor,
    activation_names: Sequence[str] = tuple(ACTIVATIONS),
    init_names: Sequence[str] = tuple(INITS),
    *,
    depth: int = 10,
    width: int = 256,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """:func:`measure` for every activation × init: ``[{activation, init, layers}, ...]``."""
    return [
        {
            "activation": act,
            "init": name,
            "layers": [
                asdict(s) for s in measure(act, name, x, y, depth=depth, width=width, seed=seed)
            ],
        }
        for act, name in itertools.product(activation_names, init_names)
    ]


def shown_layers(depth: int) -> list[int]:
    """The layers of the compact table: first, middle, last (1, 5, 10 for depth 10)."""
    return sorted({1, max(1, depth // 2), depth})


def verdict(activation: str, layers: list[dict[str, Any]]) -> str:
    """A one-word reading of a row: zero, vanishing, exploding, saturated or stable."""
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
    head = (
        "| activation | init | "
        + " | ".join(f"std a, L{i}" for i in show)
        + " | "
        + " | ".join(f"std ∂C/∂z, L{i}" for i in show)
        + f" | f′≈0, L{depth} | reading |\n"
        + "|---|---|"
        + "---:|" * (2 * len(show) + 1)
        + "---|"
    )
    lines = [head]
    for r in results:
        by_layer = {s["layer"]: s for s in r["layers"]}
        cells = [_num(by_layer[i]["act_std"]) for i in show]
        cells += [_num(by_layer[i]["grad_std"]) for i in show]
        cells.append(f"{100 * by_layer[depth]['flat']:.0f}%")
        cells.append(verdict(r["activation"], r["layers"]))
        lines.append(f"| {r['activation']} | {r['init']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_full_table(results: list[dict[str, Any]]) -> str:
    """Every layer of every combination: mean and std of a and of dC/dz, share with f' ≈ 0."""
    lines = [
        "| activation | init | layer | mean a | std a | mean ∂C/∂z | std ∂C/∂z | f′≈0 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for s in r["layers"]:
            lines.append(
                f"| {r['activation']} | {r['init']} | {s['layer']} | {_num(s['act_mean'])} "
                f"| {_num(s['act_std'])} | {_num(s['grad_mean'])} | {_num(s['grad_std'])} "
                f"| {100 * s['flat']:.0f}% |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlconcepts signals",
        description=__doc__.split("\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--depth", type=int, default=10, help="number of hidden layers")
    p.add_argument("--width", type=int, default=256, help="units per hidden layer")
    p.add_argument("--batch", type=int, default=512, help="MNIST training examples in the batch")
    p.add_argument("--activations", default=",".join(ACTIVATIONS), help="comma-separated")
    p.add_argument("--inits", default=",".join(INITS), help="comma-separated")
    p.add_argument("--seed", type=int, default=1, help="seed of the weights")
    p.add_argument("--data-dir", default=None, help="data folder")
    p.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        help=f"folder for signals.md and signals.json (default: {DEFAULT_OUT}; "
        "with --dry-run nothing is written unless --out is given)",
    )
    p.add_argument(
        "--img",
        default=argparse.SUPPRESS,
        help=f"folder for signals.png (default: {DEFAULT_IMG}; with --dry-run: --out)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw signals.png")
    p.add_argument("--dry-run", action="store_true", help="a batch of 64 (for CI)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        acts = parse_names(args.activations, "activations", list(ACTIVATIONS))
        inits = parse_names(args.inits, "inits", list(INITS))
        for name in ("depth", "width", "batch"):
            if getattr(args, name) < 1:
                raise invalid(name, getattr(args, name), "a positive int")
    except ValueError as e:
        parser.error(str(e))
    batch = 64 if args.dry_run else args.batch
    out = getattr(args, "out", None if args.dry_run else str(DEFAULT_OUT))
    img = getattr(args, "img", out if args.dry_run else str(DEFAULT_IMG))
    try:
        # the first examples of the training set: a fixed, real batch
        ds = data.load("mnist", train=True, data_dir=args.data_dir, limit=batch)
    except (data.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results = run_signals(
        ds.images, ds.labels, acts, inits, depth=args.depth, width=args.width, seed=args.seed
    )
    table = format_table(results, args.depth)
    sizes = "-".join(map(str, (784, *[args.width] * args.depth, 10)))
    setup = (
        f"MLP {sizes} at initialization, one batch of {batch} MNIST training images, "
        f"weight seed {args.seed}; a = activation, ∂C/∂z = gradient of the cost w.r.t. the "
        "layer's pre-activation; f′≈0 = share of units with f′(z) < 1% of its peak"
    )
    print(f"dlconcepts signals: {setup}\n")
    print(table)
    if out is None:
        return 0
    command = "dlconcepts signals" + (" " + shlex.join(argv) if argv else "")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "signals.md").write_text(
        f"# Signals through a deep MLP at initialization\n\n"
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}).\n\n"
        f"{setup}. L1 is the first hidden layer, L{args.depth} the last. The math is in "
        "`dlconcepts/signals.py`; `signals.png` draws every layer.\n\n"
        f"{table}\n\n"
        "<details><summary>Every layer: mean and std of the activations and of the "
        "gradients</summary>\n\n"
        f"{format_full_table(results)}\n\n</details>\n"
    )
    payload = {
        "command": command,
        "depth": args.depth,
        "width": args.width,
        "batch": batch,
        "seed": args.seed,
        "gradient": "dC/dz, z = the layer's pre-activation; C = mean cross-entropy of the batch",
        "flat": "share of units with f'(z) < 1% of the peak of f'",
        "results": results,
    }
    write_json(out_dir / "signals.json", payload)
    print(f"\nwrote {out_dir / 'signals.md'} and {out_dir / 'signals.json'}")
    if not args.no_plot:
        from dlconcepts import plots  # matplotlib itself is imported only when drawing

        try:
            path = plots.plot_signals(payload, Path(img) / "signals.png")
        except plots.MissingExtra as e:
            print(f"signals.png not drawn: {e}")
        else:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
