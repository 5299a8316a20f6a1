"""``dlconcepts compare``: hand-written pieces against PyTorch's, trained side by side on MNIST.

For every activation × initialization, a custom MLP (our Linear, activation and
cross-entropy) and a built-in one (``torch.nn.Linear``, ``torch.nn.ReLU``...,
``F.cross_entropy``) start from the same seed and weights and take the same optimizer
steps on the same batches. The table shows how many steps gave bit-identical costs, the
largest cost difference over the steps, the largest weight difference at the end, and the
test accuracy of each.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dlconcepts import activations, data, init
from dlconcepts.train import (
    DTYPES,
    TrainConfig,
    build_model,
    build_optimizer,
    epoch_generator,
    evaluate,
    resolve_device,
    train_steps,
    write_json,
)


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


def compare_pair(
    cfg: TrainConfig, train_set: data.InMemoryDataset, test_set: data.InMemoryDataset
) -> PairResult:
    """Train ``cfg`` once with custom pieces and once with built-ins, in lockstep."""
    device = resolve_device(cfg.device)
    custom = build_model(dataclasses.replace(cfg, impl="custom"), device)
    builtin = build_model(dataclasses.replace(cfg, impl="torch"), device)
    for (name, a), b in zip(custom.state_dict().items(), builtin.state_dict().values()):
        assert torch.equal(a, b), f"{name}: the two models must start from the same weights"
    steps_per_epoch = train_set.num_batches(cfg.batch_size)
    if cfg.max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps)
    total = cfg.epochs * steps_per_epoch
    opt_c, sched_c = build_optimizer(cfg, custom, total)
    opt_t, sched_t = build_optimizer(cfg, builtin, total)
    steps = identical = 0
    max_cost = 0.0
    for epoch in range(1, cfg.epochs + 1):
        # two iterators over the same shuffled batches
        b_c = train_set.batches(cfg.batch_size, generator=epoch_generator(cfg.seed, epoch))
        b_t = train_set.batches(cfg.batch_size, generator=epoch_generator(cfg.seed, epoch))
        pairs = zip(
            train_steps(custom, b_c, opt_c, sched_c, "custom", epoch),
            train_steps(builtin, b_t, opt_t, sched_t, "torch", epoch),
        )
        for c, t in itertools.islice(pairs, steps_per_epoch):
            steps += 1
            identical += c == t
            max_cost = max(max_cost, abs(c - t))
    max_weight = max(
        float((a - b).abs().max())
        for a, b in zip(custom.state_dict().values(), builtin.state_dict().values())
    )
    accuracies = []
    for model, impl in ((custom, "custom"), (builtin, "torch")):
        _, preds = evaluate(model, test_set, impl)
        accuracies.append(float((preds == test_set.labels.cpu()).float().mean()))
    return PairResult(
        cfg.activation, cfg.init, cfg.dtype, steps, identical, max_cost, max_weight, *accuracies
    )


def format_table(rows: list[PairResult]) -> str:
    head = (
        "| activation | init | dtype | steps | identical steps | max abs Δcost | max abs Δweight "
        "| test acc custom | test acc torch |\n|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {r.activation} | {r.init} | {r.dtype} | {r.steps} | {r.identical_steps} | {r.max_cost_diff:.1e} "
        f"| {r.max_weight_diff:.1e} | {100 * r.accuracy_custom:.2f}% | {100 * r.accuracy_torch:.2f}% |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlconcepts compare",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--activations", default=",".join(activations.ACTIVATIONS), help="comma-separated"
    )
    p.add_argument("--inits", default=",".join(init.SCHEMES), help="comma-separated")
    p.add_argument("--dtypes", default="float32,float64", help="comma-separated: float32, float64")
    p.add_argument("--hidden", default="256,128", help="hidden layer sizes")
    p.add_argument("--epochs", type=int, default=1, help="epochs per model")
    p.add_argument("--batch-size", type=int, default=128, help="batch size")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="optimizer")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device")
    p.add_argument("--data-dir", default=None, help="data folder")
    p.add_argument("--limit-train", type=int, default=None, help="first N training examples")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument(
        "--dry-run", action="store_true", help="a few steps per pair on a small subset (for CI)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    acts, inits, dtypes = (s.split(",") for s in (args.activations, args.inits, args.dtypes))
    base = TrainConfig(
        hidden=tuple(int(h) for h in args.hidden.split(",")),
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule="constant",
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        max_steps=5 if args.dry_run else None,
        progress=False,
    )
    limit_train = 1000 if args.dry_run else args.limit_train
    device = resolve_device(base.device)
    rows = []
    grid = list(itertools.product(dtypes, acts, inits))
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise SystemExit(
                f"dlconcepts compare: dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}"
            )
    sets = {
        dtype: data.load_splits(
            base.dataset,
            data_dir=base.data_dir,
            device=device,
            dtype=DTYPES[dtype],
            limit_train=limit_train,
            limit_test=1000 if args.dry_run else None,
        )
        for dtype in dtypes
    }
    for dtype, act, scheme in tqdm(grid, desc="compare", unit="pair", file=sys.stderr):
        cfg = dataclasses.replace(base, activation=act, init=scheme, dtype=dtype)
        rows.append(compare_pair(cfg, *sets[dtype]))
    print(
        f"custom vs torch.nn, same seed, weights and batches; {args.optimizer} lr {args.lr}, "
        f"MLP 784-{args.hidden.replace(',', '-')}-10, {rows[0].steps} steps each, device {device}\n"
    )
    print(format_table(rows))
    if args.json:
        write_json(Path(args.json), [dataclasses.asdict(r) for r in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
