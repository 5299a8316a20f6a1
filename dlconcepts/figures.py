r"""The pictures of the docs (``docs/img``), drawn from what the experiments measured.

============================ ======================================================================
function                     picture
============================ ======================================================================
:func:`plot_activations`     sigmoid, tanh and ReLU and their derivatives, computed by the
                             hand-written Functions (f' through our backward)
:func:`plot_curves`          test cost and accuracy per epoch of the activation × initialization
                             grid (:func:`dlconcepts.experiments.run_study`)
:func:`plot_signals`         std of the activations and gradients per layer of a deep MLP at
                             initialization (:func:`dlconcepts.experiments.measure_signals`)
:func:`plot_worst`           the test digits with the highest loss
:func:`plot_init_weights`    each initialization's weights against the density its formula
                             says they follow
:func:`plot_learned_weights` a trained model's first-layer weights as 28×28 images, beside the
                             same units' initial weights
============================ ======================================================================

matplotlib is optional (``pip install -e ".[plot]"``) and imported only inside the drawing
functions, so everything else works without it. Figures are drawn on the Agg canvas directly
(no ``pyplot``): no window, no global backend switch, the same PNG on every machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dlconcepts import activations, data
from dlconcepts import init as dl_init
from dlconcepts.layers import MLP

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = (
    "matplotlib is not installed; the pictures need the 'plot' extra: pip install -e \".[plot]\""
)
# one colour per initialization, the same in every picture
INIT_COLORS = {
    "zero": "tab:gray",
    "random-small": "tab:blue",
    "random-large": "tab:red",
    "xavier": "tab:green",
    "he": "tab:purple",
}


class MissingExtra(RuntimeError):
    """matplotlib (the 'plot' extra) is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`MissingExtra` unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise MissingExtra(INSTALL_HINT) from e


def _figure(**kwargs: Any) -> Figure:
    """A Figure on the Agg canvas; raises :class:`MissingExtra` without matplotlib."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --- activations.png ------------------------------------------------------------------------


def plot_activations(path: Path) -> Path:
    r"""Each activation and its derivative, as our Functions compute them.

    The values come from ``Function.apply`` (forward); the derivatives from autograd, which
    calls our hand-written backward: :math:`\sigma' = \sigma(1-\sigma) \le 1/4`,
    :math:`\tanh' = 1 - \tanh^2 \le 1`, :math:`\operatorname{relu}' = \mathbb{1}[x > 0]`.
    """
    fig = _figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    notes = {
        "sigmoid": "σ′(x) = σ(x)(1 − σ(x)) ≤ 1/4:\nevery layer shrinks the gradient ≥ 4×",
        "tanh": "tanh′(x) = 1 − tanh²(x) ≤ 1:\nzero-centred, but saturates too",
        "relu": "relu′(x) = 1 for x > 0, 0 below:\nactive units pass gradients unchanged",
    }
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64, requires_grad=True)
    for ax, (name, fn) in zip(axes, activations.ACTIVATIONS.items()):
        y = fn.apply(x)
        (dy,) = torch.autograd.grad(y.sum(), x)  # d(sum f(x_i))/dx_i = f'(x_i), via our backward
        xs = x.detach().numpy()
        ax.plot(xs, y.detach().numpy(), lw=2.2, label=f"{name}(x)")
        ax.plot(xs, dy.numpy(), lw=2.2, ls="--", label=f"{name}′(x)")
        ax.axhline(0, color="black", lw=0.6)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(name, fontsize=13)
        ax.text(0.03, 0.97, notes[name], transform=ax.transAxes, va="top", fontsize=9.5)
        ax.set_xlabel("x")
        ax.set_ylim(-1.2, 2.0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle("The activations and their derivatives (hand-written forward and backward)")
    return _save(fig, path)


# --- training_curves.png --------------------------------------------------------------------


def plot_curves(results: dict[str, Any], path: Path) -> Path:
    """Test cost and accuracy per epoch of every study run: median over seeds, [min, max] shaded."""
    runs = results["runs"]
    acts = list(dict.fromkeys(r["activation"] for r in runs))
    inits = list(dict.fromkeys(r["init"] for r in runs))
    fig = _figure(figsize=(4.4 * len(acts), 7))
    axes = fig.subplots(2, len(acts), squeeze=False, sharex=True)
    for col, act in enumerate(acts):
        cost_ax, acc_ax = axes[0][col], axes[1][col]
        for name in inits:
            group = [r for r in runs if (r["activation"], r["init"]) == (act, name)]
            done = [r["history"] for r in group if r["diverged"] is None]
            color = INIT_COLORS.get(name)
            if not done:
                acc_ax.plot([], [], color=color, label=f"{name}: diverged")
                continue
            epochs = [h["epoch"] for h in done[0]]
            for ax, key, scale in ((cost_ax, "test_cost", 1), (acc_ax, "test_accuracy", 100)):
                per_epoch = [[scale * h[i][key] for h in done] for i in range(len(epochs))]
                ax.plot(
                    epochs,
                    [statistics.median(v) for v in per_epoch],
                    marker="o",
                    ms=3,
                    color=color,
                    label=name if ax is acc_ax else None,
                )
                if len(done) > 1:
                    lo, hi = [min(v) for v in per_epoch], [max(v) for v in per_epoch]
                    ax.fill_between(epochs, lo, hi, color=color, alpha=0.2, lw=0)
        cost_ax.set_yscale("log")
        cost_ax.set_title(act, fontsize=13)
        cost_ax.set_ylabel("test cost (mean loss, log scale)")
        acc_ax.set_ylabel("test accuracy (%)")
        acc_ax.set_ylim(0, 100)
        acc_ax.set_xlabel("epoch")
        for ax in (cost_ax, acc_ax):
            ax.grid(alpha=0.3, which="both")
        acc_ax.legend(fontsize=8.5, loc="center right")  # the empty band between the curves
    seeds = sorted({r["seed"] for r in runs})
    cfg = results.get("config", {})
    fig.suptitle(
        f"Activation × initialization on MNIST: MLP {'-'.join(map(str, (784, *cfg.get('hidden', []), 10)))}, "
        f"{cfg.get('optimizer', '?')} lr {cfg.get('lr', '?')}, "
        f"median of {len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
        + (" ([min, max] shaded)" if len(seeds) > 1 else "")
    )
    return _save(fig, path)


# --- signals.png ----------------------------------------------------------------------------


def plot_signals(payload: dict[str, Any], path: Path) -> Path:
    """Std of the activations and of dC/dz per layer, one panel per activation, log scale."""
    results = payload["results"]
    acts = list(dict.fromkeys(r["activation"] for r in results))
    fig = _figure(figsize=(10, 3.2 * len(acts)))
    from matplotlib.ticker import NullFormatter  # after _figure: matplotlib is there

    axes = fig.subplots(len(acts), 2, squeeze=False, sharex=True)
    for row, act in enumerate(acts):
        for col, (key, what) in enumerate(
            (("act_std", "std of activations a"), ("grad_std", "std of gradients ∂C/∂z"))
        ):
            ax = axes[row][col]
            for r in (r for r in results if r["activation"] == act):
                layers = [s["layer"] for s in r["layers"]]
                values = [s[key] for s in r["layers"]]
                color = INIT_COLORS.get(r["init"])
                if all(v == 0 for v in values):  # nothing to draw on a log scale
                    ax.plot([], [], color=color, label=f"{r['init']}: all 0")
                    continue
                ax.plot(layers, values, marker="o", ms=3, color=color, label=r["init"])
            ax.set_yscale("log")
            low, high = ax.get_ylim()
            if high / low > 100:  # several decades: label the decades only
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(range(1, payload["depth"] + 1))
            ax.set_title(f"{act}: {what}")
            ax.grid(alpha=0.3)
            if row == len(acts) - 1:
                ax.set_xlabel("hidden layer (1 = next to the input)")
            if col == 0:
                ax.legend(fontsize=8)
    fig.suptitle(
        f"A {payload['depth']}-layer MLP of width {payload['width']} at initialization, "
        f"one batch of {payload['batch']} MNIST images"
    )
    return _save(fig, path)


# --- worst_digits.png -----------------------------------------------------------------------


def plot_worst(
    images: Tensor,
    labels: Tensor,
    predictions: Tensor,
    losses: Tensor,
    path: Path,
    *,
    n: int = 16,
    dataset: str = "mnist",
) -> Path:
    """The ``n`` test digits with the highest per-example loss, with label and prediction.

    The cost is the mean of all the losses; these few examples carry a visible share of it.
    """
    n = min(n, len(losses))
    top = losses.topk(n)
    mean, std = data.MEAN_STD[dataset]
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig = _figure(figsize=(1.6 * cols, 2.0 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, loss, i in zip(axes.flat, top.values.tolist(), top.indices.tolist()):
        pixels = (images[i].float().cpu() * std + mean).reshape(data.IMAGE_SIDE, data.IMAGE_SIDE)
        ax.imshow(pixels.numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(
            f"label {int(labels[i])} → {int(predictions[i])}\nloss {loss:.1f}", fontsize=9.5
        )
    share = float(top.values.sum() / losses.sum())
    fig.suptitle(
        f"The {n} test digits with the highest loss, out of {len(losses):,}\n"
        f"cost = mean loss = {float(losses.mean()):.4f}, median loss {float(losses.median()):.2g}; "
        f"these {n} carry {100 * share:.0f}% of the cost"
    )
    return _save(fig, path)


# --- init_weights.png -----------------------------------------------------------------------


def plot_init_weights(
    path: Path,
    inits: Mapping[str, Mapping[str, Any]],
    *,
    fan_in: int = 784,
    fan_out: int = 256,
    seed: int = 1,
) -> Path:
    r"""Histograms of a fan_in × fan_out layer's initial weights against each formula's density.

    ``inits`` maps a name to MLP keywords (``{"init": "random", "init_std": 0.01}``).

    * random: :math:`\mathcal{N}(0, s^2)`, density :math:`e^{-w^2/2s^2}/(s\sqrt{2\pi})`
    * xavier: :math:`\mathcal{U}(-a, a)`, :math:`a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`,
      density :math:`1/2a` on :math:`[-a, a]` (gain :math:`g = 5/3` for tanh)
    * he: :math:`\mathcal{N}(0, g^2/\text{fan\_in})` (gain :math:`g = \sqrt 2` for ReLU)
    """
    # the activation each scheme is paired with in practice, for its gain
    paired = {"xavier": "tanh", "he": "relu"}
    fig = _figure(figsize=(3.4 * len(inits), 3.6))
    axes = fig.subplots(1, len(inits), squeeze=False)[0]
    for ax, (name, options) in zip(axes, inits.items()):
        scheme = options["init"]
        act = paired.get(scheme, "relu")  # the gain matters to xavier and he only
        # the output layer of a one-layer MLP: initialized exactly as the training runs are
        gen = torch.Generator().manual_seed(seed)
        layer = MLP((fan_in, fan_out), act, generator=gen, **options).output
        w = layer.weight.detach().flatten()
        color = INIT_COLORS.get(name)
        gain = dl_init.calculate_gain(act)
        if scheme == "zero":
            ax.bar([0.0], [1.0], width=0.05, color=color)
            ax.set_xlim(-1, 1)
            ax.set_yticks([])
            formula = f"all {w.numel():,} weights = 0"
        else:
            ax.hist(w.numpy(), bins=80, density=True, color=color, alpha=0.55, label="weights")
            if scheme == "xavier":
                a = gain * math.sqrt(6.0 / (fan_in + fan_out))
                ax.plot([-a, -a, a, a], [0, 1 / (2 * a), 1 / (2 * a), 0], "k-", lw=1.5)
                formula = f"U(−a, a), a = (5/3)·√(6/(fan_in+fan_out))\n= {a:.4f}"
                s = a / math.sqrt(3)
            else:
                s = options["init_std"] if scheme == "random" else gain / math.sqrt(fan_in)
                grid = torch.linspace(-4 * s, 4 * s, 400)
                pdf = torch.exp(-(grid**2) / (2 * s * s)) / (s * math.sqrt(2 * math.pi))
                ax.plot(grid.numpy(), pdf.numpy(), "k-", lw=1.5)
                formula = (
                    f"N(0, {s:g}²)"
                    if scheme == "random"
                    else f"N(0, 2/fan_in), std = √2/√{fan_in}\n= {s:.4f}"
                )
            formula += f"\nmeasured std {float(w.std()):.4g}, formula {s:.4g}"
            ax.set_yticks([])
        title = name + (f" ({act})" if scheme in paired else "")
        ax.set_title(f"{title}\n{formula}", fontsize=9.5)
        ax.set_xlabel("weight")
    fig.suptitle(
        f"Initial weights of a {fan_in}→{fan_out} layer (histogram) and the density of "
        "their formula (black)"
    )
    return _save(fig, path)


# --- learned_weights.png ----------------------------------------------------------------------


def plot_learned_weights(initial: Tensor, learned: Tensor, path: Path, *, n: int = 10) -> Path:
    """The first ``n`` hidden units' weights as 28×28 images: initial, learned, and the change.

    ``initial`` and ``learned`` are first-layer weight matrices (hidden, 784). Each unit's
    784 weights are one image: red where a bright pixel raises the unit's input z, blue where
    it lowers it. Initial and learned share the learned one's scale; the change, what
    training wrote into the weights, has its own.
    """
    n = min(n, learned.shape[0])
    fig = _figure(figsize=(1.5 * n, 5.4))
    axes = fig.subplots(3, n, squeeze=False)
    side = data.IMAGE_SIDE
    rows = (("initial", initial), ("learned", learned), ("change", learned - initial))
    for j in range(n):
        for row, (what, weights) in enumerate(rows):
            w = weights[j].float().cpu()
            scale = float((w if what == "change" else learned[j]).abs().max()) or 1.0
            ax = axes[row][j]
            ax.imshow(w.reshape(side, side).numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"unit {j}, {what}\nmax |w| {float(w.abs().max()):.2g}", fontsize=8)
    fig.suptitle(
        f"First-layer weights of {n} of {learned.shape[0]} hidden units: initial, learned, and "
        "learned − initial; red raises the unit's input, blue lowers it"
    )
    return _save(fig, path)
