"""The names of the concepts' choices, and MNIST's shape, in a module that imports no torch.

The concept modules take their registries' names from here (``init.SCHEMES is
names.SCHEMES``), and so do the commands, which list them in ``--help`` without importing
torch. A training run's settings (``TrainConfig``, the presets, the optimizers) are not
concept names: they live in :mod:`dlconcepts.choices`, which no concept module imports.
"""

from __future__ import annotations

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "IMAGE_SIDE",
    "IMPLS",
    "LOSSES",
    "NUM_CLASSES",
    "NUM_FEATURES",
    "SCHEMES",
    "TEST_EXAMPLES",
    "TRAIN_EXAMPLES",
]

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu")  # activations.ACTIVATIONS' keys
SCHEMES: tuple[str, ...] = ("zero", "random", "xavier", "he")  # init.SCHEMES
IMPLS: tuple[str, ...] = ("custom", "torch")  # layers.IMPLS
LOSSES: tuple[str, ...] = ("cross-entropy", "squared-error")  # backprop.LOSSES
DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")  # data.DATASETS
IMAGE_SIDE = 28  # MNIST and Fashion-MNIST images are IMAGE_SIDE x IMAGE_SIDE pixels
NUM_FEATURES = IMAGE_SIDE * IMAGE_SIDE  # one input per pixel
NUM_CLASSES = 10
TRAIN_EXAMPLES = 60_000  # examples in the training split (both datasets)
TEST_EXAMPLES = 10_000  # examples in the test split (both datasets)
