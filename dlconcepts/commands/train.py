"""``dlconcepts train``: train an MLP on MNIST with the hand-written pieces (or PyTorch's).

The main job: ``dlconcepts train`` with no options trains a 784-800-10 ReLU network with He
init and the hand-written Linear, ReLU and cross-entropy, and reports the per-epoch cost
and accuracy, then the per-example losses behind the final cost. ``--out DIR`` writes
``metrics.json`` and a checkpoint after every epoch, both atomically; ``--resume``
continues from the checkpoint to the same result as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from dlconcepts import activations, data, init, training
from dlconcepts.commands import _common
from dlconcepts.layers import IMPLS


def preset_option() -> argparse.ArgumentParser:
    """``--preset`` alone: it is read first, because a preset sets the other defaults."""
    p = argparse.ArgumentParser(prog="dlconcepts train", add_help=False)
    p.add_argument(
        "--preset",
        choices=list(training.PRESETS),
        default="default",
        help="a tuned recipe; other options override it",
    )
    return p


def build_parser(preset: str = "default") -> argparse.ArgumentParser:
    """Every option of ``dlconcepts train``, with the defaults of ``preset``."""
    d = training.TrainConfig()
    p = _common.parser("train", __doc__, [_common.options(), preset_option()])
    p.add_argument("--dataset", choices=data.DATASETS, default=d.dataset, help="dataset")
    p.add_argument(
        "--activation",
        choices=list(activations.ACTIVATIONS),
        default=d.activation,
        help="hidden activation",
    )
    p.add_argument("--init", choices=init.SCHEMES, default=d.init, help="weight initialization")
    p.add_argument(
        "--init-std", type=_common.positive_float, default=d.init_std, help="std of --init random"
    )
    p.add_argument(
        "--impl", choices=IMPLS, default=d.impl, help="hand-written pieces or PyTorch's built-ins"
    )
    p.add_argument(
        "--momentum", type=_common.non_negative_float, default=d.momentum, help="SGD momentum"
    )
    p.add_argument(
        "--weight-decay",
        type=_common.non_negative_float,
        default=d.weight_decay,
        help="weight decay (AdamW-style with adam)",
    )
    p.add_argument(
        "--schedule", choices=training.SCHEDULES, default=d.schedule, help="learning-rate schedule"
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download missing data with torchvision (needs a network)",
    )
    p.add_argument("--out", default=None, help="folder for metrics.json and checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--limit-test",
        type=_common.positive_int,
        default=None,
        help="use only the first N test examples",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (slower here: see the README's benchmarks)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    # a preset replaces the defaults of the shared options too; options given still win
    p.set_defaults(**training.PRESETS[preset])
    return p


def config_from_args(argv: list[str] | None) -> training.TrainConfig:
    """The run ``argv`` asks for; a bad option exits with one line naming the bad value."""
    preset, _ = preset_option().parse_known_args(argv)
    parser = build_parser(preset.preset)
    args = vars(parser.parse_args(argv))
    dry_run = args.pop("dry_run")
    del args["preset"]
    args["progress"] = not args.pop("no_progress")
    try:
        cfg = training.TrainConfig(**args)
    except ValueError as e:  # what only a combination of options can get wrong (--resume)
        parser.error(str(e))
    if dry_run:
        cfg = dataclasses.replace(cfg, epochs=1, max_steps=5, limit_test=cfg.limit_test or 1000)
    return cfg


def progress_bar(batches: Iterable[Any], total: int, description: str) -> Iterable[Any]:
    """A progress bar over one epoch's batches, on stderr: piped output stays clean."""
    return tqdm(batches, total=total, desc=description, unit="batch", leave=False)


def print_summary(result: training.Result) -> None:
    """The final accuracy, then the per-example losses behind the final cost."""
    s = training.loss_summary(result)
    print(
        f"\nfinal test accuracy {100 * result.test_accuracy:.2f}% after "
        f"{result.train_seconds:.1f} s of training"
    )
    print("loss vs cost on the test set: the cost is the mean of the per-example losses")
    print(
        f"  cost (mean loss) {s['cost (mean loss)']:.4f}   median loss {s['median loss']:.4f}   "
        f"the worst 1% of examples carry {100 * s['fraction of cost from worst 1%']:.0f}% "
        "of the cost"
    )
    print(
        "  worst examples: "
        + ", ".join(
            f"#{w['index']} (label {w['label']}, predicted {w['predicted']}, loss {w['loss']:.1f})"
            for w in s["worst losses"]
        )
    )


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    device = _common.device(cfg.device)
    print(
        f"dlconcepts train: {cfg.impl} pieces, {cfg.activation} + {cfg.init} init, "
        f"MLP {'-'.join(map(str, cfg.sizes))}, {cfg.optimizer} lr {cfg.lr}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, device {device}, {torch.get_num_threads()} threads"
    )
    train_set, test_set = _common.splits_for(cfg, device)
    try:
        result = training.fit(
            cfg,
            train_set,
            test_set,
            log=lambda line: tqdm.write(line, file=sys.stdout),
            progress=progress_bar if cfg.progress else None,
        )
    except (training.TrainingDiverged, training.CheckpointError) as e:
        return _common.error(e)
    print_summary(result)
    if cfg.out:
        out = Path(cfg.out)
        print(f"wrote {out / training.METRICS} and {out / training.CHECKPOINT}")
    return 0
