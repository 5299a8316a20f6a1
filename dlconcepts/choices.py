"""A training run's settings and the names the ``dlconcepts`` commands offer, without torch.

``dlconcepts COMMAND --help`` has to list every choice and default (the activations, the
optimizers, a preset's settings...). Were they read from the modules that define the
pieces, asking for help would import torch and take seconds; here they are plain strings
and numbers, and those modules re-export them (``training.OPTIMIZERS is
choices.OPTIMIZERS``), so the names are declared once.

This module holds the training configuration: :class:`TrainConfig`, the ``PRESETS``, the
``STUDY`` recipe and the optimizer, schedule, device and dtype names. The concepts' own
names (activations, initialization schemes, losses, datasets) are declared in
:mod:`dlconcepts.names`, which the concept modules import instead of this one; they are
re-exported here so that a command finds every choice in one place.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from dlconcepts._checks import invalid, one_of
from dlconcepts.names import (
    ACTIVATIONS,
    DATASETS,
    IMAGE_SIDE,
    IMPLS,
    LOSSES,
    NUM_CLASSES,
    NUM_FEATURES,
    SCHEMES,
    TEST_EXAMPLES,
    TRAIN_EXAMPLES,
)

__all__ = [
    "ACTIVATIONS",
    "ADAM_BETA1",
    "DATASETS",
    "DEVICES",
    "DTYPES",
    "FLOAT_MAX",
    "IMAGE_SIDE",
    "IMPLS",
    "LOSSES",
    "NUM_CLASSES",
    "NUM_FEATURES",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULES",
    "SCHEMES",
    "SIGNALS_BATCH",
    "SIGNALS_DRY_RUN_BATCH",
    "STUDY",
    "TEST_EXAMPLES",
    "TRAIN_EXAMPLES",
    "TrainConfig",
]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
# what --device cuda expects where there is no GPU: the argument's check and the library's say
# the same
NO_CUDA = "'cpu' or 'auto' on this machine: no CUDA device is available"
DTYPES: tuple[str, ...] = ("float32", "float64")  # training.DTYPES' keys
# the largest finite number of each dtype (torch.finfo(dtype).max, without importing torch)
FLOAT_MAX: dict[str, float] = {"float32": 3.4028234663852886e38, "float64": sys.float_info.max}
ADAM_BETA1 = 0.9  # torch's default: Adam's first step is lr / (1 - β₁), about 10·lr


@dataclass
class TrainConfig:
    """Everything that defines a training run (the defaults are the main job)."""

    dataset: str = "mnist"
    activation: str = "relu"
    init: str = "he"
    init_std: float = 0.01  # the std of init="random"
    impl: str = "custom"
    hidden: tuple[int, ...] = (800,)
    epochs: int = 6
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # decoupled (AdamW-style for adam), pulls weights towards 0
    schedule: str = "cosine"  # learning rate: "cosine" decays to 0 over the run, "constant"
    seed: int = 1
    device: str = "auto"
    dtype: str = "float32"
    data_dir: str | None = None
    download: bool = False  # fetch the data with torchvision where it is missing (needs a network)
    out: str | None = None
    resume: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    max_steps: int | None = None  # stop each epoch after this many batches (--dry-run)
    progress: bool = True
    compile: bool = False  # torch.compile the model for the training steps (docs/compiling.md)
    amp: bool = False  # autocast the training steps to 16 bits (training.precision_for)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        for name, choices in (
            ("dataset", DATASETS),
            ("activation", ACTIVATIONS),
            ("init", SCHEMES),
            ("impl", IMPLS),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("device", DEVICES),
            ("dtype", DTYPES),
        ):
            if getattr(self, name) not in choices:
                raise one_of(name, getattr(self, name), choices)
        if not self.hidden or any(_not_positive_int(h) for h in self.hidden):
            raise invalid("hidden", self.hidden, "one or more positive layer sizes")
        for name in ("epochs", "batch_size", "limit_train", "limit_test", "max_steps"):
            value = getattr(self, name)
            if (value is not None or name in ("epochs", "batch_size")) and _not_positive_int(value):
                raise invalid(name, value, "a positive int")
        for name, value, positive in (
            ("lr", self.lr, True),
            ("init_std", self.init_std, True),
            ("momentum", self.momentum, False),
            ("weight_decay", self.weight_decay, False),
        ):
            if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                raise invalid(name, value, f"a {'positive' if positive else 'non-negative'} number")
        self._check_representable()
        if self.resume and self.out is None:
            raise invalid("resume", True, "an out folder holding the checkpoint to resume from")
        if self.out == "":
            raise invalid("out", self.out, "a folder name (or no --out, to write nothing)")
        if self.amp and self.dtype != "float32":
            raise invalid("amp", self.amp, "dtype float32 (autocast leaves float64 alone)")

    def _check_representable(self) -> None:
        """The numbers the optimizer turns into the weights' dtype must fit in it: torch
        refuses to convert a step size beyond it (``value cannot be converted to type float
        without overflow``)."""
        largest = FLOAT_MAX[self.dtype]
        adam = self.optimizer == "adam"
        scale = max(1.0, self.lr)
        for name, value, step, limit, why in (
            # each step computed as torch computes it, rounding included
            (
                "lr",
                self.lr,
                self.lr / (1 - ADAM_BETA1),
                largest * (1 - ADAM_BETA1),
                "Adam's first step, 10·lr,",
            )
            if adam
            else ("lr", self.lr, self.lr, largest, ""),
            (
                "weight_decay",
                self.weight_decay,
                self.weight_decay * scale,
                largest / scale,
                "lr·it",
            ),
            ("momentum", self.momentum, self.momentum, largest, ""),
            ("init_std", self.init_std, self.init_std, largest, ""),
        ):
            if step > largest:
                said = f"so that {why} is a" if why and limit != largest else "the largest"
                raise invalid(name, value, f"at most {limit:.3g}, {said} {self.dtype} number")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (NUM_FEATURES, *self.hidden, NUM_CLASSES)


def _not_positive_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < 1


# Tuned recipes (plain MLPs: no convolution, no data augmentation); figures in docs/training.md.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # the quickest way to 98% test accuracy here: one wide layer, bigger batches, higher lr
    "fast": {"hidden": (800,), "batch_size": 256, "lr": 2e-3, "epochs": 4},
    # beats the best plain MLPs of LeCun's MNIST table (1.53% error): two wide layers,
    # decoupled weight decay, cosine decay to 0
    "best": {"hidden": (800, 800), "epochs": 15, "weight_decay": 0.05},
}

# The study's recipe (experiments.STUDY), the same for every cell so that the differences
# come from the activation and the initialization alone: plain SGD with momentum at a
# constant rate.
STUDY = TrainConfig(
    hidden=(256, 128),
    epochs=5,
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    schedule="constant",
    progress=False,
)
SIGNALS_BATCH = 512  # MNIST training images in the signals' batch (experiments.SIGNALS_BATCH)
SIGNALS_DRY_RUN_BATCH = 64
