"""MNIST and Fashion-MNIST as normalized tensors on the training device, cut into batches.

A whole split fits in memory many times over (60,000 images of 784 pixels), so it is held
as two tensors on the device and batched by slicing:

1. :class:`InMemoryDataset` is the split: ``(N, 784)`` normalized images and ``(N,)``
   labels. :meth:`InMemoryDataset.batches` slices shuffled batches straight out of those
   tensors. There is no per-sample PIL transform and no ``DataLoader`` in the training path:
   on MNIST that conventional pipeline (kept as :func:`torchvision_loader` for the benchmark)
   spends far more time building batches than a small MLP spends learning from them.
2. :func:`load` and :func:`load_splits` build it, once per run: they verify the raw files
   (:func:`~dlconcepts.data_files.verify` proves them by SHA-256), read them through
   torchvision's own dataset class (no hand-written IDX parser), normalize, flatten to
   ``(N, 784)`` and move everything to the device in one copy.

torchvision is imported inside the functions that need it, so commands that never touch the
data do not pay for importing it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dlconcepts import names
from dlconcepts._checks import invalid
from dlconcepts.data_files import DataError, dataset_class, default_data_dir, raw_folder, verify

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

__all__ = [
    "DATASETS",
    "IMAGE_SIDE",
    "MEAN_STD",
    "NUM_CLASSES",
    "NUM_FEATURES",
    "DataError",
    "InMemoryDataset",
    "default_data_dir",
    "load",
    "load_splits",
    "raw_folder",
    "torchvision_loader",
    "verify",
]

DATASETS = names.DATASETS
IMAGE_SIDE = names.IMAGE_SIDE
NUM_FEATURES = names.NUM_FEATURES
NUM_CLASSES = names.NUM_CLASSES

# Mean and standard deviation of the training pixels scaled to [0, 1]; normalizing with them
# puts the inputs at mean 0, std 1, which is what the initializations in this project assume.
MEAN_STD: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}


@dataclass
class InMemoryDataset:
    """A whole split as two tensors on the training device, cut into batches by slicing.

    Built by :func:`load`; construct it directly only with already-prepared tensors.
    """

    images: Tensor  # (N, 784) float normalized, on device
    labels: Tensor  # (N,) int64 on device

    def __post_init__(self) -> None:
        if self.images.dim() != 2:
            raise invalid("images", tuple(self.images.shape), "a 2-d (N, features) tensor")
        n = self.images.shape[0]
        if tuple(self.labels.shape) != (n,):
            raise invalid("labels", tuple(self.labels.shape), f"shape ({n},) to match images")
        if self.labels.device != self.images.device:
            raise invalid("labels.device", str(self.labels.device), f"{self.images.device}")

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def num_batches(self, batch_size: int) -> int:
        """How many batches :meth:`batches` yields: the last, partial one included."""
        return math.ceil(len(self) / _check_batch_size(batch_size))

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(images, labels)`` batches covering every example exactly once.

        With ``shuffle`` the order is a fresh permutation per call, drawn on the CPU with
        ``generator`` (a CPU ``torch.Generator``; the global RNG when ``None``), so the same
        seed gives the same batches on every device. The last batch is smaller when
        ``batch_size`` does not divide ``len(self)``. Without ``shuffle`` batches are views.
        """
        _check_batch_size(batch_size)
        n = len(self)
        if not shuffle:
            for start in range(0, n, batch_size):
                yield (
                    self.images[start : start + batch_size],
                    self.labels[start : start + batch_size],
                )
            return
        if generator is not None and generator.device.type != "cpu":
            # a CUDA generator draws a different permutation from the same seed
            raise invalid("generator.device", str(generator.device), "'cpu'")
        # One permutation per epoch, moved to the device once; each batch is then a gather on
        # the device, with no host round trip and no per-sample Python work.
        order = torch.randperm(n, generator=generator).to(self.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield self.images[index], self.labels[index]


def _check_batch_size(batch_size: int) -> int:
    # bool is an int in Python, but batch_size=True is always a mistake
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise invalid("batch_size", batch_size, "a positive int")
    return batch_size


def _read(dataset: str, raw: Path, *, train: bool) -> tuple[Tensor, Tensor]:
    """Read one split of the verified files with torchvision's dataset class (its IDX reader):
    ``(N, 28, 28)`` uint8 images and ``(N,)`` int64 labels."""
    ds = dataset_class(dataset)(str(raw.parent.parent), train=train, download=False)
    return ds.data, ds.targets


def _check_limit(limit: int | None, n: int, name: str) -> int:
    if limit is None:
        return n
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= n:
        raise invalid(name, limit, f"None or an int from 1 to {n}")
    return limit


def _in_memory(
    dataset: str,
    images: Tensor,
    labels: Tensor,
    *,
    device: str | torch.device,
    dtype: torch.dtype,
    limit: int,
) -> InMemoryDataset:
    """Normalize, flatten and move one split to ``device`` in a single copy."""
    mean, std = MEAN_STD[dataset]
    # Copy the uint8 pixels (4x smaller than floats) and convert on the device. The arithmetic
    # runs in at least float32 so a half-precision ``dtype`` only rounds the final values.
    pixels = images[:limit].reshape(limit, NUM_FEATURES).to(device)
    work = torch.promote_types(dtype, torch.float32)
    x = pixels.to(work).div_(255.0).sub_(mean).div_(std).to(dtype)
    return InMemoryDataset(images=x, labels=labels[:limit].to(device))


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise invalid("dtype", dtype, "a floating-point torch.dtype")
    return dtype


def load(
    dataset: str = "mnist",
    *,
    train: bool,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    download: bool = False,
    limit: int | None = None,
) -> InMemoryDataset:
    """Verify, read and normalize one split into an :class:`InMemoryDataset` on ``device``.

    Images become ``(N, 784)`` tensors of ``(x / 255 - mean) / std`` in ``dtype``; labels are
    int64. ``limit`` keeps the first ``limit`` examples, for quick runs and tests.
    """
    _check_dtype(dtype)
    raw = verify(dataset, data_dir, download=download)
    images, labels = _read(dataset, raw, train=train)
    limit = _check_limit(limit, len(labels), "limit")
    return _in_memory(dataset, images, labels, device=device, dtype=dtype, limit=limit)


def load_splits(
    dataset: str = "mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    download: bool = False,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """The ``(train, test)`` splits, verified once; see :func:`load` for the arguments."""
    _check_dtype(dtype)
    raw = verify(dataset, data_dir, download=download)
    splits = []
    for train, limit, name in (
        (True, limit_train, "limit_train"),
        (False, limit_test, "limit_test"),
    ):
        images, labels = _read(dataset, raw, train=train)
        n = _check_limit(limit, len(labels), name)
        splits.append(_in_memory(dataset, images, labels, device=device, dtype=dtype, limit=n))
    return splits[0], splits[1]


def torchvision_loader(
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 128,
    train: bool = True,
) -> DataLoader:
    """The conventional pipeline over the same verified files, for the benchmark only.

    ``DataLoader`` + ``ToTensor`` + ``Normalize``: every example goes through a PIL image and
    two transforms, one at a time, in Python. The training code uses :func:`load` instead;
    this exists to measure what that choice saves. Batches are ``(B, 1, 28, 28)``.
    """
    from torch.utils.data import DataLoader
    from torchvision import transforms

    _check_batch_size(batch_size)
    raw = verify(dataset, data_dir)
    mean, std = MEAN_STD[dataset]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    ds = dataset_class(dataset)(str(raw.parent.parent), train=train, transform=transform)
    return DataLoader(ds, batch_size=batch_size, shuffle=train)
