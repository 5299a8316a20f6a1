r"""``dlconcepts plot WHAT``: draw the pictures under ``docs/img`` (needs the 'plot' extra).

========================= ==================================================================
WHAT                      picture
========================= ==================================================================
``activations``           ``activations.png``: sigmoid, tanh and ReLU and their derivatives,
                          computed by the hand-written Functions (f' through our backward)
``curves``                ``training_curves.png``: test cost and accuracy per epoch of the
                          ``dlconcepts study`` grid (read from its ``results.json``)
``signals``               ``signals.png``: std of the activations and gradients per layer of
                          a deep MLP at initialization (``dlconcepts signals``), log scale
``worst``                 ``worst_digits.png``: the test digits with the highest loss
``weights``               ``init_weights.png``: each initialization's weights against the
                          density its formula says they follow
``all``                   all of the above
========================= ==================================================================

matplotlib is optional (``pip install -e ".[plot]"``) and imported only inside the drawing
functions, so every other command works without it. Figures are drawn on the Agg canvas
directly (no ``pyplot``): no window, no global backend switch, the same PNG on every machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dlconcepts import activations, data
from dlconcepts import init as dl_init
from dlconcepts.layers import Linear
from dlconcepts.study import DEFAULT_OUT, INITS
from dlconcepts.train import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    DTYPES,
    CheckpointError,
    TrainConfig,
    build_model,
    evaluate,
    train,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FILES: dict[str, str] = {
    "activations": "activations.png",
    "curves": "training_curves.png",
    "signals": "signals.png",
    "worst": "worst_digits.png",
    "weights": "init_weights.png",
}
DEFAULT_IMG = Path("docs/img")
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


def _figure(**kwargs: Any) -> Figure:
    """A Figure on the Agg canvas; raises :class:`MissingExtra` without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingExtra(INSTALL_HINT) from e
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


def load_checkpoint_model(path: Path) -> tuple[torch.nn.Module, TrainConfig]:
    """The model of a ``dlconcepts train --out DIR`` run (``DIR`` or ``DIR/checkpoint.pt``)."""
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(
            f"{path}: expected a checkpoint, found none; make one with dlconcepts train --out DIR"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected format {CHECKPOINT_FORMAT!r}, got {found!r}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: v for k, v in ckpt["config"].items() if k in fields}
    cfg = TrainConfig(**{**config, "device": "cpu", "out": None, "resume": False})
    model = build_model(cfg, torch.device("cpu"))
    model.load_state_dict(ckpt["model"])
    return model, cfg


def worst_digits(
    path: Path,
    *,
    checkpoint: Path | None = None,
    epochs: int = 2,
    seed: int = 1,
    data_dir: str | None = None,
    dry_run: bool = False,
) -> Path:
    """Draw ``worst_digits.png`` for a checkpoint's model, or for one trained here."""
    if checkpoint is not None:
        model, cfg = load_checkpoint_model(checkpoint)
        test_set = data.load(cfg.dataset, train=False, data_dir=data_dir, dtype=DTYPES[cfg.dtype])
        losses, preds = evaluate(model, test_set, cfg.impl)
    else:
        # the main job's model (784-800-10, ReLU + He, Adam), trained briefly
        cfg = TrainConfig(
            epochs=1 if dry_run else epochs,
            seed=seed,
            device="cpu",
            data_dir=data_dir,
            max_steps=20 if dry_run else None,
            progress=False,
        )
        train_set, test_set = data.load_splits(
            cfg.dataset, data_dir=data_dir, limit_train=2000 if dry_run else None
        )
        result = train(cfg, train_set=train_set, test_set=test_set)
        assert result.test_losses is not None and result.test_predictions is not None
        losses, preds = result.test_losses, result.test_predictions
    return plot_worst(
        test_set.images, test_set.labels.cpu(), preds, losses, path, dataset=cfg.dataset
    )


# --- init_weights.png -----------------------------------------------------------------------


def plot_init_weights(path: Path, *, fan_in: int = 784, fan_out: int = 256, seed: int = 1) -> Path:
    r"""Histograms of a fan_in × fan_out layer's initial weights against each formula's density.

    * random: :math:`\mathcal{N}(0, s^2)`, density :math:`e^{-w^2/2s^2}/(s\sqrt{2\pi})`
    * xavier: :math:`\mathcal{U}(-a, a)`, :math:`a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`,
      density :math:`1/2a` on :math:`[-a, a]` (gain :math:`g = 5/3` for tanh)
    * he: :math:`\mathcal{N}(0, g^2/\text{fan\_in})` (gain :math:`g = \sqrt 2` for ReLU)
    """
    # the activation each scheme is paired with in practice, for its gain
    nonlinearity = {"xavier": "tanh", "he": "relu"}
    fig = _figure(figsize=(3.4 * len(INITS), 3.6))
    axes = fig.subplots(1, len(INITS))
    for ax, (name, (scheme, std)) in zip(axes, INITS.items()):
        layer = Linear(fan_in, fan_out)
        act = nonlinearity.get(name, "linear")
        dl_init.initialize(
            layer,
            scheme,
            nonlinearity=act,
            std=std if std is not None else 0.01,
            generator=torch.Generator().manual_seed(seed),
        )
        w = layer.weight.detach().flatten()
        color = INIT_COLORS[name]
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
                s = std if scheme == "random" else gain / math.sqrt(fan_in)
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
        title = name + (f" ({act})" if name in nonlinearity else "")
        ax.set_title(f"{title}\n{formula}", fontsize=9.5)
        ax.set_xlabel("weight")
    fig.suptitle(
        f"Initial weights of a {fan_in}→{fan_out} layer (histogram) and the density of "
        "their formula (black)"
    )
    return _save(fig, path)


# --- command --------------------------------------------------------------------------------


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise MissingExtra(INSTALL_HINT) from e


def _signals_payload(results_dir: Path, data_dir: str | None, dry_run: bool) -> dict[str, Any]:
    """The signals study's numbers: its ``signals.json`` if there is one, else measured now."""
    saved = results_dir / "signals.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    from dlconcepts.signals import run_signals

    batch = 64 if dry_run else 512
    ds = data.load("mnist", train=True, data_dir=data_dir, limit=batch)
    return {
        "depth": 10,
        "width": 256,
        "batch": batch,
        "results": run_signals(ds.images, ds.labels),
    }


def draw(what: str, out: Path, args: argparse.Namespace) -> Path:
    """Draw one picture into ``out``; raises FileNotFoundError when its input is missing."""
    path = out / FILES[what]
    results_dir = Path(args.results)
    if what == "activations":
        return plot_activations(path)
    if what == "curves":
        saved = results_dir / "results.json"
        if not saved.is_file():
            raise FileNotFoundError(
                f"{saved}: expected the study's results, found none; make them with "
                f"`dlconcepts study --out {results_dir}` (about 2 minutes per seed on a laptop "
                "CPU; `--dry-run --out DIR` for a quick look), or pass --results DIR"
            )
        return plot_curves(json.loads(saved.read_text()), path)
    if what == "signals":
        return plot_signals(_signals_payload(results_dir, args.data_dir, args.dry_run), path)
    if what == "worst":
        checkpoint = Path(args.checkpoint) if args.checkpoint else None
        return worst_digits(
            path,
            checkpoint=checkpoint,
            epochs=args.epochs,
            seed=args.seed,
            data_dir=args.data_dir,
            dry_run=args.dry_run,
        )
    return plot_init_weights(path, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlconcepts plot",
        description=__doc__.split("\n")[0].replace("``", ""),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("what", choices=[*FILES, "all"], help="which picture")
    p.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        help=f"folder for the PNGs (default: {DEFAULT_IMG}; with --dry-run a new temporary folder)",
    )
    p.add_argument(
        "--results",
        default=str(DEFAULT_OUT),
        help="folder with the study's results.json and the signals' signals.json",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="worst: a `dlconcepts train --out DIR` folder (or its checkpoint.pt) to use "
        "instead of training a model here",
    )
    p.add_argument("--epochs", type=int, default=2, help="worst: epochs of the model trained here")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--data-dir", default=None, help="data folder")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="worst: 20 batches of training; signals: a batch of 64 if there is no signals.json",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        _require_matplotlib()
    except MissingExtra as e:
        print(f"dlconcepts plot: {e}", file=sys.stderr)
        return 1
    if hasattr(args, "out"):
        out = Path(args.out)
    elif args.dry_run:
        out = Path(tempfile.mkdtemp(prefix="dlconcepts-plots-"))
    else:
        out = DEFAULT_IMG
    failed = 0
    for what in FILES if args.what == "all" else [args.what]:
        try:
            path = draw(what, out, args)
        except (FileNotFoundError, CheckpointError, data.DataError) as e:
            print(f"dlconcepts plot {what}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
