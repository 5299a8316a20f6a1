#!/usr/bin/env python3
"""Train an MLP on MNIST with the hand-written pieces: the training loop to copy.

Every piece but the optimizer is dlconcepts' own: the data as tensors already in memory
(``data.load_splits``), an MLP of our ``Linear`` and ``ReLU`` (``layers.MLP``) and our
cross-entropy (``losses.cross_entropy``), each with a backward written by hand. The shape is
that of pytorch/examples' ``mnist/main.py``::

    python scripts/train_mnist.py                 # 784-800-10, 3 epochs, about 98% accuracy
    python scripts/train_mnist.py --dry-run       # a quick check that it runs
"""

import argparse
import time

import torch

from dlconcepts import data, layers, losses


def train(
    args: argparse.Namespace,
    model: layers.MLP,
    train_set: data.InMemoryDataset,
    optimizer: torch.optim.Optimizer,
    epoch: int,
) -> None:
    model.train()
    num_batches = train_set.num_batches(args.batch_size)
    for batch_idx, (images, target) in enumerate(train_set.batches(args.batch_size), start=1):
        output = model(images)  # logits, one row of 10 per image
        cost = losses.cross_entropy(output, target)  # the mean of the per-example losses
        optimizer.zero_grad()
        cost.backward()  # our backwards fill every parameter's .grad
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(
                f"Train Epoch: {epoch} [batch {batch_idx}/{num_batches}]\tCost: {cost.item():.6f}"
            )


@torch.no_grad()
def test(model: layers.MLP, test_set: data.InMemoryDataset) -> float:
    model.eval()
    total_loss, correct = 0.0, 0
    for images, target in test_set.batches(1000, shuffle=False):
        output = model(images)
        total_loss += losses.cross_entropy(output, target, reduction="sum").item()
        correct += (output.argmax(dim=1) == target).sum().item()
    n = len(test_set)
    print(
        f"\nTest set: Average loss: {total_loss / n:.4f}, "
        f"Accuracy: {correct}/{n} ({100.0 * correct / n:.2f}%)\n"
    )
    return correct / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description="dlconcepts MNIST example: an MLP of hand-written pieces",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[800], help="hidden layer sizes")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--epochs", type=int, default=3, help="number of epochs to train")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (Adam)")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train"
    )
    parser.add_argument("--log-interval", type=int, default=100, help="batches between logs")
    parser.add_argument(
        "--dry-run", action="store_true", help="one epoch on 1000 examples, to check it runs"
    )
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dry_run:
        args.epochs, args.log_interval = 1, 1

    torch.manual_seed(args.seed)  # the weights and every epoch's shuffle
    limit = 1000 if args.dry_run else None
    train_set, test_set = data.load_splits(device=args.device, limit_train=limit, limit_test=limit)
    sizes = (data.NUM_FEATURES, *args.hidden, data.NUM_CLASSES)
    model = layers.MLP(sizes, activation="relu", init="he").to(args.device)
    print(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # the learning rate falls from --lr towards 0 along a half cosine, one step per epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train(args, model, train_set, optimizer, epoch)
        print(f"epoch {epoch} took {time.perf_counter() - start:.1f} s")
        test(model, test_set)
        scheduler.step()


if __name__ == "__main__":
    main()
