r"""The initialization experiments that more than one command needs.

* :func:`run_study`: the activation × initialization grid, one training run per cell and
  seed (``dlconcepts study`` prints it, ``dlconcepts plot curves`` draws its histories).
* :func:`measure_signals`: what an untrained deep MLP does to one real batch, layer by layer
  (``dlconcepts signals`` prints it, ``dlconcepts plot signals`` draws it).

An initialization is given as the :class:`~dlconcepts.training.TrainConfig` keywords that
make it, under a name (``{"random-small": {"init": "random", "init_std": 0.01}}``); the
names are the commands' business. Why the numbers come out as they do is explained in
``dlconcepts/commands/study.py`` and ``dlconcepts/commands/signals.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from dlconcepts import activations, choices, data, training
from dlconcepts.layers import MLP
from dlconcepts.losses import cross_entropy

# name -> the TrainConfig (or MLP) keywords of that initialization
Inits = Mapping[str, Mapping[str, Any]]

# --- the activation × initialization grid ------------------------------------------------

# The study's recipe, the same for every cell (defined in choices, for the commands' --help)
STUDY = choices.STUDY


@dataclass
class Run:
    """One training run of the grid."""

    activation: str
    init: str  # the initialization's name, e.g. "random-small"
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
    base: training.TrainConfig,
    activation_names: Sequence[str],
    inits: Inits,
    seeds: Sequence[int],
    train_set: data.InMemoryDataset,
    test_set: data.InMemoryDataset,
    *,
    progress: bool = True,
) -> list[Run]:
    """Train ``base`` once per (activation, initialization, seed), in that order.

    A run whose cost becomes NaN or inf is kept, with ``diverged`` set, rather than stopping
    the grid: diverging is one of the results.
    """
    grid = list(itertools.product(activation_names, inits.items(), seeds))
    runs = []
    bar = tqdm(
        grid,
        desc="study",
        unit="run",
        file=sys.stderr,
        disable=not (progress and sys.stderr.isatty()),
    )
    for act, (name, options), seed in bar:
        bar.set_postfix_str(f"{act} + {name}, seed {seed}")
        cfg = dataclasses.replace(base, activation=act, seed=seed, **options)
        run = Run(act, name, seed)
        try:
            result = training.fit(cfg, train_set, test_set, log=lambda line: None)
        except training.TrainingDiverged as e:
            run.diverged = str(e).split(":")[0]  # "cost is nan at step 27 of epoch 1"
        else:
            run.history = [dataclasses.asdict(h) for h in result.history]
            assert result.test_predictions is not None
            run.predicted_classes = int(result.test_predictions.unique().numel())
        runs.append(run)
    return runs


# --- signals through a deep MLP at initialization ----------------------------------------

SIGNALS_BATCH = choices.SIGNALS_BATCH  # MNIST training images in the batch
SIGNALS_DRY_RUN_BATCH = choices.SIGNALS_DRY_RUN_BATCH
# the largest value of each f′: σ′(0) = 1/4, tanh′(0) = 1, relu′(x > 0) = 1
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
    init: Mapping[str, Any],
    x: Tensor,
    y: Tensor,
    *,
    depth: int = 10,
    width: int = 256,
    seed: int = 1,
) -> list[LayerStats]:
    """Per-layer statistics of one forward and backward pass of ``(x, y)`` at initialization.

    The MLP has ``depth`` hidden layers of ``width`` units, initialized by ``init``
    (MLP keywords, e.g. ``{"init": "he"}``) from ``seed``.
    """
    model = MLP(
        (x.shape[1], *[width] * depth, data.NUM_CLASSES),
        activation,
        generator=torch.Generator().manual_seed(seed),
        dtype=x.dtype,
        **init,
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
    derivative = activations.ACTIVATIONS[activation].derivative  # f' from the output a = f(z)
    stats = []
    for layer, (z, a) in enumerate(zip(pre, post), start=1):
        g = z.grad
        assert g is not None
        a = a.detach()
        flat = (derivative(a) < 0.01 * PEAK_DERIVATIVE[activation]).float().mean()
        stats.append(
            LayerStats(
                layer, float(a.mean()), float(a.std()), float(g.mean()), float(g.std()), float(flat)
            )
        )
    return stats


def measure_signals(
    batch: data.InMemoryDataset,
    activation_names: Sequence[str],
    inits: Inits,
    *,
    depth: int = 10,
    width: int = 256,
    seed: int = 1,
) -> dict[str, Any]:
    """:func:`measure` for every activation × initialization, with what was measured.

    Returns ``{"depth", "width", "batch", "seed", ..., "results": [{"activation", "init",
    "layers": [LayerStats as dicts]}, ...]}``: what ``signals.json`` holds.
    """
    results = [
        {
            "activation": act,
            "init": name,
            "layers": [
                dataclasses.asdict(s)
                for s in measure(
                    act, options, batch.images, batch.labels, depth=depth, width=width, seed=seed
                )
            ],
        }
        for act, (name, options) in itertools.product(activation_names, inits.items())
    ]
    return {
        "depth": depth,
        "width": width,
        "batch": len(batch),
        "seed": seed,
        "gradient": "dC/dz, z = the layer's pre-activation; C = mean cross-entropy of the batch",
        "flat": "share of units with f'(z) < 1% of the peak of f'",
        "results": results,
    }
