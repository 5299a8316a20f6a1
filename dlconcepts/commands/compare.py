"""``dlconcepts compare``: hand-written pieces against PyTorch's, trained side by side on MNIST.

For every activation × initialization, a custom MLP (our Linear, activation and
cross-entropy) and a built-in one (``torch.nn.Linear``, ``torch.nn.ReLU``...,
``torch.nn.functional.cross_entropy``) start from the same seed and weights and take the same optimizer
steps on the same batches. The table shows how many steps gave bit-identical costs, the
largest cost difference over the steps, the largest weight difference at the end, and the
test accuracy of each.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch
    import tqdm

    from dlconcepts import data, training


@dataclass
class PairResult:
    activation: str
    init: str
    dtype: str
    steps: int
    identical_steps: int  # steps whose costs were bit-identical
    max_cost_diff: float  # max over steps of |cost_custom − cost_torch|
    max_weight_diff: float  # max |w_custom − w_torch| over all parameters, at the end
    accuracy_custom: float
    accuracy_torch: float


@dataclass
class Side:
    """One of the two models, with its own optimizer, schedule and cost function."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    cost_fn: Callable[..., torch.Tensor]
    costs: list[float] = field(default_factory=list)  # the cost of every step so far

    def train_epoch(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], epoch: int) -> None:
        """One epoch over ``batches``, keeping each step's cost; the training loop's contract
        (:func:`training.checked_costs`): a cost that is not finite is an error."""
        costs = training.train_one_epoch(
            self.model, batches, self.optimizer, self.scheduler, self.cost_fn
        )
        self.costs += training.checked_costs(costs, epoch=epoch)

    def accuracy(self, test_set: data.InMemoryDataset) -> float:
        _, predictions = training.evaluate(self.model, test_set, self.cost_fn)
        return training.accuracy(predictions, test_set.labels)


def compare_pair(
    cfg: training.TrainConfig, train_set: data.InMemoryDataset, test_set: data.InMemoryDataset
) -> PairResult:
    """Train ``cfg`` once with custom pieces and once with built-ins, on the same batches;
    :class:`training.TrainingDiverged` if either cost stops being finite."""
    steps_per_epoch = training.steps_per_epoch(cfg, train_set)
    sides = []
    for impl in choices.IMPLS:
        model = training.build_model(dataclasses.replace(cfg, impl=impl), train_set.device)
        optimizer, scheduler = training.build_optimizer(cfg, model, cfg.epochs * steps_per_epoch)
        sides.append(Side(model, optimizer, scheduler, training.cost_fn(impl)))
    for epoch in range(1, cfg.epochs + 1):
        for side in sides:  # the shuffle depends only on (seed, epoch): the same batches
            generator = training.epoch_generator(cfg.seed, epoch)
            batches = train_set.batches(cfg.batch_size, generator=generator)
            side.train_epoch(itertools.islice(batches, steps_per_epoch), epoch)
    custom, builtin = sides
    steps = list(zip(custom.costs, builtin.costs))
    max_weight = max(
        float((a - b).abs().max())
        for a, b in zip(custom.model.state_dict().values(), builtin.model.state_dict().values())
    )
    return PairResult(
        cfg.activation,
        cfg.init,
        cfg.dtype,
        len(steps),
        sum(c == t for c, t in steps),
        max(abs(c - t) for c, t in steps),
        max_weight,
        custom.accuracy(test_set),
        builtin.accuracy(test_set),
    )


def format_table(rows: list[PairResult]) -> str:
    header = (
        "activation",
        "init",
        "dtype",
        "steps",
        "identical steps",
        "max abs Δcost",
        "max abs Δweight",
        "test acc custom",
        "test acc torch",
    )
    cells = [
        (
            r.activation,
            r.init,
            r.dtype,
            r.steps,
            r.identical_steps,
            f"{r.max_cost_diff:.1e}",
            f"{r.max_weight_diff:.1e}",
            f"{100 * r.accuracy_custom:.2f}%",
            f"{100 * r.accuracy_torch:.2f}%",
        )
        for r in rows
    ]
    return _common.markdown_table(header, cells, right=3)


def base_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> training.TrainConfig:
    """The run every pair shares (in the first of ``--dtypes``); what only a combination of
    options rules out (an ``--lr`` beyond one dtype's range) is refused as a bad option."""
    try:
        base = _common.train_config(args, schedule="constant", progress=False, dtype=args.dtypes[0])
        for dtype in args.dtypes[1:]:
            dataclasses.replace(base, dtype=dtype)
    except ValueError as e:
        parser.error(str(e))
    return base


def main(argv: list[str] | None = None) -> int:
    shared = _common.options(
        "hidden",
        "epochs",
        "batch-size",
        "optimizer",
        "lr",
        "seed",
        "device",
        "data-dir",
        "limit-train",
        "dry-run",
        "json",
        hidden=(256, 128),
        epochs=1,
        optimizer="sgd",
        lr=0.05,
    )
    parser = _common.parser("compare", __doc__, [shared])
    for flag, names in (
        ("--activations", choices.ACTIVATIONS),
        ("--inits", choices.SCHEMES),
        ("--dtypes", choices.DTYPES),
    ):
        parser.add_argument(
            flag, type=_common.name_list(names), default=",".join(names), help="comma-separated"
        )
    args = parser.parse_args(argv)
    base = base_config(args, parser)
    device = _common.device(base.device)
    try:  # the two models of a pair train side by side
        training.check_memory(base, device, copies=2, of="models")
    except training.NotEnoughMemory as e:
        return _common.error(e)
    sets = {
        dtype: _common.splits_for(dataclasses.replace(base, dtype=dtype), device)
        for dtype in args.dtypes
    }
    grid = list(itertools.product(args.dtypes, args.activations, args.inits))
    rows = []
    for dtype, act, scheme in tqdm.tqdm(
        grid, desc="compare", unit="pair", file=sys.stderr, disable=not sys.stderr.isatty()
    ):
        cfg = dataclasses.replace(base, activation=act, init=scheme, dtype=dtype)
        try:
            rows.append(compare_pair(cfg, *sets[dtype]))
        except training.TrainingDiverged as e:
            return _common.error(f"{act} + {scheme} init, {dtype}: {e}; try a smaller --lr")
    print(
        f"custom vs torch.nn, same seed, weights and batches; {base.optimizer} lr {base.lr}, "
        f"MLP {'-'.join(map(str, base.sizes))}, {rows[0].steps} steps each, device {device}\n"
    )
    print(format_table(rows))
    if args.json:
        _common.write_json(args.json, [dataclasses.asdict(r) for r in rows])
    return 0
