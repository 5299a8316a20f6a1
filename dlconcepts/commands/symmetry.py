r"""``dlconcepts symmetry``: with a constant init, the hidden units of a layer never become different.

Two copies of the same small MLP train on the same MNIST batches: one starts with every
weight equal to ``--constant`` (0 by default: zero init), the other from He init. Every
``--every`` steps the table shows, for the hidden layers,

* the largest difference between two hidden units' weight rows,
  :math:`\max_{i,j}\lVert W_{i\cdot} - W_{j\cdot}\rVert_\infty`, and the number of distinct rows,
* the same for the rows of the last weight gradient, and its largest entry,
* the test accuracy.

Why the constant copy stays at one distinct unit, exactly: if the rows of :math:`W_1` are
equal, every hidden unit computes the same :math:`a_i = f(w \cdot x + b)`. The units are
interchangeable, so they also receive the same gradient
:math:`\partial C/\partial W_{1,i\cdot} = \sum_{\text{batch}} \delta_i\, x` (the next layer's
weights from each of them are equal too, by the same argument), and the same update. Equal
before a step means equal after it: by induction, for ever. Floating point does not break
the tie either: each row is computed by the same operations on the same numbers, so it
rounds the same way. The layer is one unit repeated ``n`` times. Random init exists first of
all to make the units different.

With ReLU or tanh and zero init it is worse: :math:`f(0) = 0`, so the hidden layer outputs
zeros, the output layer's gradient is zero for its weights, and every hidden gradient is
exactly 0 (``relu'(0) = 0`` as well). With sigmoid, :math:`\sigma(0) = 1/2`: the gradients
are nonzero, the weights move, but every unit moves the same way. Sigmoid is the default
because it shows that the problem is the symmetry, not a zero gradient.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import data, layers, training


def row_spread(weight: torch.Tensor) -> float:
    """The largest difference between two rows: ``max over i, j, k of |W[i, k] - W[j, k]|``.

    For each column the largest pairwise difference is its max minus its min, so no pairs
    need to be formed.
    """
    return float((weight.amax(dim=0) - weight.amin(dim=0)).max())


def distinct_rows(weight: torch.Tensor) -> int:
    """How many different rows (hidden units) ``weight`` has, compared exactly."""
    return int(torch.unique(weight, dim=0).shape[0])


def hidden_layers(model: layers.MLP) -> list[torch.nn.Module]:
    return [layer for name, layer in model.linears() if name != "output"]


@dataclass
class Snapshot:
    """One row of the table, for one model."""

    step: int
    weight_spread: float  # max over hidden layers of row_spread(W)
    distinct_units: list[int]  # distinct_rows(W) of each hidden layer
    grad_spread: float  # max over hidden layers of row_spread(dC/dW) of the last step
    grad_max: float  # largest |dC/dW| entry of the hidden layers at the last step
    accuracy: float


def snapshot(
    model: layers.MLP,
    step: int,
    test_set: data.InMemoryDataset,
    cost_fn: Callable[..., torch.Tensor],
) -> Snapshot:
    layers = hidden_layers(model)
    grads = [layer.weight.grad for layer in layers if layer.weight.grad is not None]
    _, predictions = training.evaluate(model, test_set, cost_fn)
    return Snapshot(
        step,
        max(row_spread(layer.weight.detach()) for layer in layers),
        [distinct_rows(layer.weight.detach()) for layer in layers],
        max((row_spread(g) for g in grads), default=0.0),
        max((float(g.abs().max()) for g in grads), default=0.0),
        training.accuracy(predictions, test_set.labels),
    )


def constant_model(cfg: training.TrainConfig, value: float, device: torch.device) -> layers.MLP:
    """``cfg``'s MLP with every weight equal to ``value`` and every bias 0."""
    model = training.build_model(dataclasses.replace(cfg, init="zero"), device)
    with torch.no_grad():
        for _, layer in model.linears():
            layer.weight.fill_(value)
    return model


def endless_batches(
    train_set: data.InMemoryDataset, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches, epoch after epoch; the same ``seed`` gives the same batches."""
    for epoch in itertools.count(1):
        yield from train_set.batches(batch_size, generator=training.epoch_generator(seed, epoch))


def run_symmetry(
    cfg: training.TrainConfig,
    train_set: data.InMemoryDataset,
    test_set: data.InMemoryDataset,
    *,
    constant: float = 0.0,
    steps: int = 300,
    every: int = 50,
) -> dict[str, list[Snapshot]]:
    """Train a constant-init and a He-init copy of ``cfg``'s MLP on the same batches.

    Returns ``{"constant": [...], "he": [...]}``, a :class:`Snapshot` at step 0 and every
    ``every`` steps up to ``steps``. Raises :class:`~dlconcepts.training.TrainingDiverged`,
    naming the copy and the step, when a cost becomes NaN or infinite (the training loop's
    contract: :func:`~dlconcepts.training.checked_costs`).
    """
    device = train_set.device
    models = {
        "constant": constant_model(cfg, constant, device),
        "he": training.build_model(dataclasses.replace(cfg, init="he"), device),
    }
    cost_fn = training.cost_fn(cfg.impl)
    history: dict[str, list[Snapshot]] = {}
    for name, model in models.items():
        optimizer, scheduler = training.build_optimizer(cfg, model, steps)
        batches = endless_batches(train_set, cfg.batch_size, cfg.seed)
        history[name] = [snapshot(model, 0, test_set, cost_fn)]
        done = 0
        while done < steps:
            chunk = min(every, steps - done)
            costs = training.train_one_epoch(
                model, itertools.islice(batches, chunk), optimizer, scheduler, cost_fn
            )
            try:
                training.checked_costs(costs, first_step=done + 1)
            except training.TrainingDiverged as e:
                raise training.TrainingDiverged(f"the {name} copy's {e}") from None
            done += chunk
            history[name].append(snapshot(model, done, test_set, cost_fn))
    return history


def _sci(v: float) -> str:
    return "0" if v == 0 else f"{v:.2e}"


def _units(distinct: list[int], hidden: tuple[int, ...]) -> str:
    return ", ".join(f"{d} of {n}" for d, n in zip(distinct, hidden))


def format_table(
    history: dict[str, list[Snapshot]], constant: float, hidden: tuple[int, ...]
) -> str:
    head = (
        f"| step | const {constant:g}: Δ rows of W | distinct units | Δ rows of ∂C/∂W "
        f"| max abs ∂C/∂W | test acc | he: Δ rows of W | distinct units | test acc |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for c, h in zip(history["constant"], history["he"]):
        lines.append(
            f"| {c.step} | {_sci(c.weight_spread)} | {_units(c.distinct_units, hidden)} "
            f"| {_sci(c.grad_spread) if c.step else '–'} | {_sci(c.grad_max) if c.step else '–'} "
            f"| {100 * c.accuracy:.2f}% | {_sci(h.weight_spread)} | {_units(h.distinct_units, hidden)} "
            f"| {100 * h.accuracy:.2f}% |"
        )
    return "\n".join(lines)


def explain(activation: str, constant: float, history: dict[str, list[Snapshot]]) -> str:
    """The paragraph printed under the table: what it showed, and why."""
    last = history["constant"][-1]
    init = "zero init" if constant == 0 else f"every weight = {constant:g}"
    lines = [
        f"With {init}, the hidden units' weight rows differ by at most {_sci(last.weight_spread)} "
        f"after {last.step} steps: {' and '.join(map(str, last.distinct_units))} distinct "
        "unit(s) per hidden layer. Every hidden unit "
        "computes the same function of the input, so every one gets the same gradient and takes "
        "the same step; identical before a step means identical after it. The layer is one unit "
        "copied, whatever its width. He init starts the units different, and they stay different.",
    ]
    if last.grad_max == 0 and constant != 0:
        lines.append(
            f"Here the hidden gradients are exactly 0 as well: with {init}, every hidden unit "
            "is switched off or saturated (f′ = 0) on these images, so no gradient reaches them."
        )
    elif last.grad_max == 0:
        lines.append(
            f"Here the hidden gradients are exactly 0 as well: {activation}(0) = 0, so the "
            "hidden layer outputs zeros, the output weights get no gradient and stay 0, and "
            "they pass none back (with ReLU, relu′(0) = 0 would block it anyway): only the "
            "output bias learns."
        )
    else:
        lines.append(
            f"The hidden gradients are not 0 (largest entry {_sci(last.grad_max)}): "
            f"the weights move, but the gradient's rows are identical (Δ rows "
            f"{_sci(last.grad_spread)}), so all units move together."
        )
    return "\n".join(lines)


# The most --steps: the symmetry shows in the first few hundred steps (it never breaks by
# itself); a few thousand more show it lasting, beyond that the run only takes longer.
MAX_STEPS = 10_000


def build_parser() -> argparse.ArgumentParser:
    shared = _common.options(
        "hidden",
        "batch-size",
        "lr",
        "seed",
        "device",
        "data-dir",
        "limit-train",
        "dry-run",
        "activation",
        "limit-test",
        hidden=(64,),
        batch_size=64,
        lr=0.05,
        limit_train=10_000,
        limit_test=2000,
        activation="sigmoid",
    )
    p = _common.parser("symmetry", __doc__, [shared])
    p.add_argument(
        "--constant",
        type=_common.finite_float,
        default=0.0,
        help="the value of every initial weight (0: zero init)",
    )
    p.add_argument(
        "--steps",
        type=_common.int_up_to(MAX_STEPS),
        default=300,
        help=f"SGD steps (momentum 0.9), at most {MAX_STEPS:,}",
    )
    p.add_argument(
        "--every", type=_common.positive_int, default=50, help="print a row every this many steps"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = _common.train_config(args, optimizer="sgd", schedule="constant", progress=False)
    except ValueError as e:  # an --lr beyond float32's range
        parser.error(_common.as_option(e))
    steps, every = args.steps, args.every
    if args.dry_run:  # a row after each of the dry run's few steps
        steps, every = cfg.max_steps, 1
    device = _common.device(cfg.device)
    try:  # the constant and the He copy
        training.check_memory(cfg, device, copies=2, of="models")
    except training.NotEnoughMemory as e:
        return _common.error(_common.as_option(e))
    train_set, test_set = _common.splits_for(cfg, device)
    try:
        history = run_symmetry(
            cfg, train_set, test_set, constant=args.constant, steps=steps, every=every
        )
    except training.TrainingDiverged as e:
        # He init is not the learner's to choose: only the rate can make its copy diverge
        hint = "--lr" if str(e).startswith("the he copy") else "--constant or --lr"
        return _common.error(f"{e}: try a smaller {hint}")
    print(
        f"dlconcepts symmetry: layers.MLP {'-'.join(map(str, cfg.sizes))}, {args.activation}, "
        f"every weight = {args.constant:g} vs He init; SGD lr {args.lr} momentum 0.9, batch "
        f"{args.batch_size}, {len(train_set):,} training / {len(test_set):,} test images. "
        "Δ rows = largest difference between two hidden units' rows (over the hidden layers); "
        "∂C/∂W: the hidden weights' gradient at the last step\n"
    )
    print(format_table(history, args.constant, cfg.hidden))
    print()
    print(explain(args.activation, args.constant, history))
    return 0
