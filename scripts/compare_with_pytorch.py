#!/usr/bin/env python3
"""Train our MLP and torch.nn's side by side on MNIST, and print how far apart they drift.

Both start from the same weights, see the same batches and take the same SGD steps; the only
difference is who wrote the pieces: our ``Linear``, activation and cross-entropy (with their
hand-written backwards) against ``torch.nn.Linear``, the built-in activation and
``F.cross_entropy``. In float64 the costs agree to about 1e-15; in float32 to float rounding::

    python scripts/compare_with_pytorch.py --dtype float64
    python scripts/compare_with_pytorch.py --dry-run       # a quick check that it runs
"""

import argparse

import torch
import torch.nn.functional as F

from dlconcepts import activations, data, init, layers, losses


def main() -> None:
    parser = argparse.ArgumentParser(
        description="our MLP against torch.nn's, trained in lockstep on MNIST",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--activation", choices=list(activations.ACTIVATIONS), default="relu")
    parser.add_argument("--init", choices=init.SCHEMES, default="he", help="weight init")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128], help="layer sizes")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (SGD)")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--log-interval", type=int, default=50, help="steps between lines")
    parser.add_argument(
        "--dry-run", action="store_true", help="1000 examples only (8 steps), to check it runs"
    )
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    limit = 1000 if args.dry_run else None
    train_set, test_set = data.load_splits(
        device=args.device, dtype=dtype, limit_train=limit, limit_test=limit
    )

    sizes = (data.NUM_FEATURES, *args.hidden, data.NUM_CLASSES)
    ours = layers.MLP(sizes, args.activation, args.init, impl="custom", dtype=dtype)
    theirs = layers.MLP(sizes, args.activation, args.init, impl="torch", dtype=dtype)
    theirs.load_state_dict(ours.state_dict())  # the same weights: same state_dict keys
    runs = []  # (name, model, cost function, optimizer): only who wrote the pieces differs
    for name, model, cost_fn in (
        ("ours", ours, losses.cross_entropy),
        ("torch.nn", theirs, F.cross_entropy),
    ):
        model.to(args.device)
        runs.append((name, model, cost_fn, torch.optim.SGD(model.parameters(), lr=args.lr)))

    print(f"{'step':>5}  {'cost ours':>10}  {'cost torch.nn':>13}  {'|difference|':>12}")
    worst = 0.0
    shuffle = torch.Generator().manual_seed(args.seed)
    for step, (images, target) in enumerate(
        train_set.batches(args.batch_size, generator=shuffle), 1
    ):
        costs = []
        for _, model, cost_fn, optimizer in runs:
            cost = cost_fn(model(images), target)
            optimizer.zero_grad()
            cost.backward()
            optimizer.step()
            costs.append(cost.item())
        difference = abs(costs[0] - costs[1])
        worst = max(worst, difference)
        if step % args.log_interval == 0 or args.dry_run:
            print(f"{step:>5}  {costs[0]:>10.6f}  {costs[1]:>13.6f}  {difference:>12.1e}")

    weights = max(
        (a - b).abs().max().item() for a, b in zip(ours.parameters(), theirs.parameters())
    )
    print(f"\nlargest cost difference over {step} steps: {worst:.1e}")
    print(f"largest weight difference at the end: {weights:.1e}")
    with torch.no_grad():
        for name, model, _, _ in runs:
            predictions = model(test_set.images).argmax(dim=1)
            accuracy = (predictions == test_set.labels).double().mean().item()
            print(f"test accuracy, {name:<8}: {100 * accuracy:.2f}%")


if __name__ == "__main__":
    main()
