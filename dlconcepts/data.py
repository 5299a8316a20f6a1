"""MNIST and Fashion-MNIST as verified, normalized tensors that live on the training device.

The pipeline has three steps, each done once:

1. :func:`verify` proves the four raw files of a dataset are the real ones. A ``.gz`` is
   accepted if its SHA-256 is one we ship (the recompressed MNIST copy in ``data/MNIST/raw/``)
   or if its MD5 is the one torchvision checks after its own download (the original files).
   It is then extracted with torchvision's own ``extract_archive``, and the extracted file is
   checked for its known size. Anything wrong raises :class:`DataError` with the path, what was
   expected, what was found and how to fix it.
2. :func:`load` reads the files through torchvision's own dataset class (no hand-written IDX
   parser), checks shapes, counts and label range (torchvision accepts wrong ones), normalizes,
   flattens to ``(N, 784)`` and moves everything to the device in one copy.
3. :meth:`InMemoryDataset.batches` slices shuffled batches straight out of those tensors. There
   is no per-sample PIL transform and no ``DataLoader`` in the training path: on MNIST that
   conventional pipeline (kept as :func:`torchvision_loader` for the benchmark) spends far more
   time building batches than a small MLP spends learning from them.

torchvision is imported inside the functions that need it, so commands that never touch the
data do not pay for importing it.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dlconcepts._checks import invalid, one_of

if TYPE_CHECKING:
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST

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

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist")
IMAGE_SIDE = 28
NUM_FEATURES = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

# Mean and standard deviation of the training pixels scaled to [0, 1]; normalizing with them
# puts the inputs at mean 0, std 1, which is what the initializations in this project assume.
MEAN_STD: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}

# Name of torchvision's dataset class, which is also the folder under the data directory.
_CLASS_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

# SHA-256 of the .gz files we ship. They were recompressed, so torchvision's MD5 (of the
# original downloads) does not match them; this table is what proves them instead. Fashion-MNIST
# is not shipped: the only sum we know for it is torchvision's MD5.
_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        name: sha
        for sha, name in map(
            str.split,
            """
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  train-labels-idx1-ubyte.gz
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  t10k-labels-idx1-ubyte.gz
""".strip().splitlines(),
        )
    },
    "fashion-mnist": {},
}

# Number of examples per split; MNIST and Fashion-MNIST have the same layout.
_COUNTS = {"train": 60_000, "t10k": 10_000}

# Exact size of each extracted IDX file: a 16-byte header (magic, count, rows, cols) plus one
# byte per pixel for images, an 8-byte header (magic, count) plus one byte per label for labels.
# A size check catches a truncated or half-written extraction without re-reading the file.
_SIZES: dict[str, int] = {}
for _split, _n in _COUNTS.items():
    _SIZES[f"{_split}-images-idx3-ubyte"] = 16 + _n * NUM_FEATURES
    _SIZES[f"{_split}-labels-idx1-ubyte"] = 8 + _n


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or the wrong size, or the loaded data is malformed."""


def _error(path: Path | str, found: object, expected: str, fix: str) -> DataError:
    """Build a DataError in the project's style plus a line that says how to fix it."""
    message = str(invalid(str(path), found, expected))
    return DataError(f"{message}\n  to fix: {fix}")


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise one_of("dataset", dataset, DATASETS)
    return dataset


def _dataset_class(dataset: str) -> type[MNIST]:
    from torchvision.datasets import MNIST, FashionMNIST

    return {"mnist": MNIST, "fashion-mnist": FashionMNIST}[_check_dataset(dataset)]


def default_data_dir() -> Path:
    """Where datasets live when no ``data_dir`` is given.

    In order: the ``DLCONCEPTS_DATA`` environment variable; the repository's ``data/`` folder
    (found next to this package, so an editable install works from any working directory);
    ``~/.cache/dlconcepts/data``.
    """
    env = os.environ.get("DLCONCEPTS_DATA")
    if env:
        return Path(env).expanduser()
    repo_data = Path(__file__).resolve().parent.parent / "data"
    if repo_data.is_dir():
        return repo_data
    return Path.home() / ".cache" / "dlconcepts" / "data"


def _root(data_dir: str | os.PathLike[str] | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def raw_folder(dataset: str = "mnist", data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder with a dataset's raw files: ``<data_dir>/MNIST/raw`` (torchvision's layout)."""
    return _root(data_dir) / _CLASS_NAMES[_check_dataset(dataset)] / "raw"


def _hashes(path: Path) -> tuple[str, str]:
    """SHA-256 and MD5 of a file in one read (about 30 ms for all four MNIST files)."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)  # torchvision's checksum, not used for security
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _extract(gz: Path, target: Path) -> None:
    """Extract ``gz`` to ``target`` with torchvision's ``extract_archive``, atomically.

    torchvision writes straight to the final name, so an interrupted run (or two test processes
    extracting at once) could leave a half-written file. Extracting into a private temporary
    folder and renaming makes the final file appear complete or not at all.
    """
    from torchvision.datasets.utils import extract_archive

    fix = f"make {gz.parent} writable, or set DLCONCEPTS_DATA or pass --data-dir to a writable copy"
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=gz.parent))
    except OSError as e:
        raise _error(gz.parent, str(e), "a writable folder to extract into", fix) from e
    try:
        extract_archive(gz, tmp)
        os.replace(tmp / target.name, target)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise _error(
            gz, f"{type(e).__name__}: {e}", f"a gzip file that extracts to {target.name}", fix
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fix_missing(dataset: str, raw: Path, *, offer_download: bool = True) -> str:
    """How to get the raw files in place, for a message about a missing or bad one."""
    elsewhere = (
        f"set DLCONCEPTS_DATA or pass --data-dir to a folder that holds {raw.parent.name}/raw/"
    )
    if dataset == "mnist":
        fix = (
            f"copy the four .gz files from a fresh clone's data/MNIST/raw/ or the shared mnist "
            f"folder into {raw}; or {elsewhere}"
        )
    else:
        fix = f"copy the four original .gz files into {raw}; or {elsewhere}"
    if offer_download:
        fix += "; or, where online, run with --download to fetch them with torchvision"
    return fix


def _verify_files(dataset: str, raw: Path, md5s: dict[str, str]) -> list[Path]:
    """Check and extract every file that is present; return the .gz paths that are missing."""
    missing = []
    for gz_name, md5_expected in md5s.items():
        gz = raw / gz_name
        target = raw / gz_name.removesuffix(".gz")
        size_expected = _SIZES[target.name]
        if gz.is_file():
            sha_found, md5_found = _hashes(gz)
            sha_expected = _SHA256[dataset].get(gz_name)
            if sha_found != sha_expected and md5_found != md5_expected:
                sums = f"md5 {md5_expected} (torchvision's original download)"
                if sha_expected is not None:
                    sums = f"sha256 {sha_expected} (the shipped copy) or {sums}"
                raise _error(
                    gz,
                    f"sha256 {sha_found}, md5 {md5_found}, {gz.stat().st_size} bytes",
                    sums,
                    f"the file is corrupt or truncated; delete it, then "
                    f"{_fix_missing(dataset, raw)}",
                )
            # The .gz is proven; extract only when the extracted copy is absent or incomplete.
            if _size(target) != size_expected:
                _extract(gz, target)
                if _size(target) != size_expected:  # a proven .gz cannot do this; be sure anyway
                    raise _error(
                        target,
                        f"{_size(target)} bytes after extracting {gz_name}",
                        f"{size_expected} bytes",
                        f"delete both files, then {_fix_missing(dataset, raw)}",
                    )
            continue
        found = _size(target)
        if found == size_expected:
            continue  # extracted file without its .gz: the size is all we can check
        if found is not None:
            raise _error(
                target,
                f"{found} bytes and no {gz_name} to extract it again",
                f"{size_expected} bytes",
                f"delete it, then {_fix_missing(dataset, raw)}",
            )
        missing.append(gz)
    return missing


def verify(
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> Path:
    """Make the four raw files of ``dataset`` ready and proven; return the raw folder.

    For each file: a present ``.gz`` must match our SHA-256 or torchvision's MD5, and is
    extracted (with torchvision) when its extracted copy is missing or the wrong size; an
    extracted file without its ``.gz`` must have the exact known size. If files are missing,
    ``download=True`` fetches them with torchvision's own download into the same folder.
    Every failure raises :class:`DataError`. Cheap enough (~30 ms) to run on every load.
    """
    cls = _dataset_class(dataset)
    raw = raw_folder(dataset, data_dir)
    md5s = dict(cls.resources)
    missing = _verify_files(dataset, raw, md5s)
    if not missing:
        return raw
    first = missing[0]
    if not download:
        raise _error(first, "no such file", f"the file {first.name}", _fix_missing(dataset, raw))

    # torchvision's download skips everything when all four extracted files exist, whatever
    # their size; none of the missing ones can exist here (a wrong-size one raised above).
    try:
        cls(str(raw.parent.parent), train=True, download=True)
    except Exception as e:  # offline shows up as URLError, RuntimeError or a socket error
        raise _error(
            first,
            f"no such file, and torchvision's download failed ({type(e).__name__}: {e})",
            f"the file {first.name}",
            f"without a network, {_fix_missing(dataset, raw, offer_download=False)}",
        ) from e
    # Prove what the download wrote, exactly as if it had been copied in by hand.
    missing = _verify_files(dataset, raw, md5s)
    if missing:
        raise _error(
            missing[0],
            "no such file after torchvision's download",
            f"the file {missing[0].name}",
            _fix_missing(dataset, raw, offer_download=False),
        )
    return raw


def _read(dataset: str, raw: Path, *, train: bool) -> tuple[Tensor, Tensor]:
    """Read one split with torchvision's dataset class and check what it returns.

    torchvision's IDX reader trusts the headers: a file with the wrong count or shape loads
    without complaint, so the shape, count, dtype and label range are checked here.
    (If a legacy ``processed/training.pt`` exists torchvision reads that instead of the raw
    files; these checks then are the only proof, which is one more reason to keep them.)
    """
    split = "train" if train else "t10k"
    n = _COUNTS[split]
    images_file = raw / f"{split}-images-idx3-ubyte"
    labels_file = raw / f"{split}-labels-idx1-ubyte"
    fix = (
        f"delete the extracted files in {raw} (and any processed/ folder next to it) so they "
        f"are extracted again from the verified .gz files"
    )
    try:
        ds = _dataset_class(dataset)(str(raw.parent.parent), train=train, download=False)
    except Exception as e:  # torchvision raises AssertionError / RuntimeError on bad headers
        raise _error(raw, f"{type(e).__name__}: {e}", "IDX files torchvision can read", fix) from e
    images, labels = ds.data, ds.targets

    shape = (n, IMAGE_SIDE, IMAGE_SIDE)
    if tuple(images.shape) != shape or images.dtype != torch.uint8:
        found = f"shape {tuple(images.shape)}, {images.dtype}"
        raise _error(images_file, found, f"shape {shape}, torch.uint8", fix)
    if tuple(labels.shape) != (n,) or labels.dtype != torch.int64:
        found = f"shape {tuple(labels.shape)}, {labels.dtype}"
        raise _error(labels_file, found, f"shape ({n},), torch.int64", fix)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= NUM_CLASSES:
        found = f"labels from {low} to {high}"
        raise _error(labels_file, found, f"labels from 0 to {NUM_CLASSES - 1}", fix)
    return images, labels


def _check_batch_size(batch_size: int) -> int:
    # bool is an int in Python, but batch_size=True is always a mistake
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise invalid("batch_size", batch_size, "a positive int")
    return batch_size


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
    ds = _dataset_class(dataset)(str(raw.parent.parent), train=train, transform=transform)
    return DataLoader(ds, batch_size=batch_size, shuffle=train)
