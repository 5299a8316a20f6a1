"""The raw dataset files: where they live, and proof by SHA-256 that they are the real ones.

:func:`verify` proves the four raw files of a dataset are the real ones, by content: each
extracted IDX file must have the SHA-256, header and size we know for it, whatever gzip (if
any) carried it. A missing or different one is extracted again from its ``.gz``, whose
decompressed bytes are proven the same way before they replace it; without a ``.gz`` it is
refused. Anything wrong raises :class:`DataError` with the path, the expected and found sums
and how to fix it. :mod:`dlconcepts.data` reads nothing that has not passed here.

The files keep torchvision's layout, ``<data_dir>/MNIST/raw/``, so torchvision's own dataset
class reads them (this module looks at an IDX header only to report it). torchvision is
imported inside the functions that need it.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import math
import os
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dlconcepts._checks import invalid, one_of
from dlconcepts.names import DATASETS, IMAGE_SIDE, TEST_EXAMPLES, TRAIN_EXAMPLES

if TYPE_CHECKING:
    from torchvision.datasets import MNIST

__all__ = ["DataError", "dataset_class", "default_data_dir", "raw_folder", "verify"]

# Name of torchvision's dataset class, which is also the folder under the data directory.
_CLASS_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def _sums(table: str) -> dict[str, str]:
    """``{file name: sha256}`` from lines in sha256sum's format, as data/README.md lists them."""
    return {name: sha for sha, name in map(str.split, table.strip().splitlines())}


# SHA-256 of each file's decompressed IDX bytes: what torchvision reads, whichever gzip (if any)
# carried it. The MNIST sums are those of the original files, which the shipped .gz decompress
# to; the Fashion-MNIST sums were taken from Debian's dataset-fashion-mnist package, whose .gz
# (recompressed too) decompress to the publisher's files. data/README.md lists them.
_CONTENT_SHA256: dict[str, dict[str, str]] = {
    "mnist": _sums("""
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
"""),
    "fashion-mnist": _sums("""
c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888  train-images-idx3-ubyte
bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9  train-labels-idx1-ubyte
5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b  t10k-images-idx3-ubyte
0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34  t10k-labels-idx1-ubyte
"""),
}

# Number of examples per split; MNIST and Fashion-MNIST have the same layout.
_COUNTS = {"train": TRAIN_EXAMPLES, "t10k": TEST_EXAMPLES}

# IDX magic numbers: 0x08 (unsigned bytes) then the number of dimensions.
_IMAGES_MAGIC, _LABELS_MAGIC = 0x0803, 0x0801
_HEADER_BYTES = 16  # the longest header here: magic, count, rows, cols as big-endian uint32


class DataError(RuntimeError):
    """A dataset file is missing or is not the real one (checked by content)."""


@dataclass(frozen=True)
class _Content:
    """What identifies an IDX file: the SHA-256 of its bytes, its header and its size."""

    sha256: str
    header: tuple[int, ...]  # the magic number, then the size of each dimension
    size: int

    def __str__(self) -> str:
        if self.header:
            magic, *dims = self.header
            header = f"IDX magic {magic:#06x}, {'x'.join(map(str, dims))}"
        else:
            header = "no IDX header"
        return f"sha256 {self.sha256} ({header}, {self.size} bytes)"


def _expected(dataset: str, name: str) -> _Content:
    """The content of the raw file ``name`` (e.g. ``train-images-idx3-ubyte``) of ``dataset``."""
    split, kind = name.split("-")[:2]
    n = _COUNTS[split]
    header = (_IMAGES_MAGIC, n, IMAGE_SIDE, IMAGE_SIDE) if kind == "images" else (_LABELS_MAGIC, n)
    size = 4 * len(header) + math.prod(header[1:])  # uint32 header fields, then one byte each
    return _Content(_CONTENT_SHA256[dataset][name], header, size)


def _idx_header(head: bytes) -> tuple[int, ...]:
    """The magic number and as many dimension sizes as ``head`` holds; () if it is too short."""
    if len(head) < 4:
        return ()
    ndim = min(head[3], (len(head) - 4) // 4)  # the magic's last byte counts the dimensions
    return struct.unpack_from(f">{1 + ndim}I", head)


def _content(src: BinaryIO, copy_to: BinaryIO | None = None) -> _Content:
    """Hash ``src`` to its end and read its IDX header, copying every byte to ``copy_to``."""
    sha256, size = hashlib.sha256(), 0
    buffer = memoryview(bytearray(1 << 20))  # reused: no new bytes object per chunk
    chunk = head = src.read(_HEADER_BYTES)
    while chunk:
        sha256.update(chunk)
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
        chunk = buffer[: src.readinto(buffer)]
    return _Content(sha256.hexdigest(), _idx_header(head), size)


def _error(path: Path | str, found: object, expected: str, fix: str) -> DataError:
    """Build a DataError in the project's style plus a line that says how to fix it."""
    message = str(invalid(str(path), found, expected))
    return DataError(f"{message}\n  to fix: {fix}")


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise one_of("dataset", dataset, DATASETS)
    return dataset


def dataset_class(dataset: str) -> type[MNIST]:
    """torchvision's class for ``dataset`` (``MNIST`` or ``FashionMNIST``): the IDX reader."""
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


def _fix_missing(dataset: str, raw: Path, *, offer_download: bool = True) -> str:
    """How to get the raw files in place, for a message about a missing or bad one: what a
    user can do with what they have (an installed package carries no data)."""
    if dataset == "mnist":
        get = (
            "clone the repository, which ships the four files in data/MNIST/raw/, and pass "
            f"--data-dir CLONE/data (or copy the four .gz files into {raw})"
        )
    else:
        get = (
            "copy the four .gz files (the publisher's, or Debian's dataset-fashion-mnist "
            f"package's /usr/share/datasets/fashion-mnist/) into {raw}"
        )
    ways = [
        get,
        f"pass --data-dir (or set DLCONCEPTS_DATA) to a folder whose {raw.parent.name}/raw/ "
        "holds the four files",
    ]
    if offer_download:
        ways.append("run with --download to fetch them with torchvision (needs a network)")
    return "; or ".join(ways)


def _extract(gz: Path, target: Path, expected: _Content, fix: str) -> None:
    """Decompress ``gz`` to ``target`` if its content is ``expected``; refuse it otherwise.

    The bytes are hashed as they are decompressed, into a private temporary folder, and moved
    to ``target`` only once proven: the final file appears complete and verified, or not at all
    (an interrupted run, or two test processes extracting at once, leave nothing half-written).
    """
    writable = (
        f"make {gz.parent} writable, or set DLCONCEPTS_DATA or pass --data-dir to a writable copy"
    )
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=gz.parent))
    except OSError as e:
        raise _error(gz.parent, str(e), "a writable folder to extract into", writable) from e
    try:
        with gzip.open(gz) as src, (tmp / target.name).open("wb") as dst:
            found = _content(src, copy_to=dst)
        if found != expected:
            raise _error(gz, f"{found} once decompressed", str(expected), fix)
        os.replace(tmp / target.name, target)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        expected_gz = f"a gzip file of {target.name}, {expected}"
        raise _error(gz, f"{type(e).__name__}: {e}", expected_gz, fix) from e
    except OSError as e:
        raise _error(
            gz.parent, str(e), f"a writable folder with room for {target.name}", writable
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _verify_file(dataset: str, raw: Path, name: str) -> bool:
    """Prove ``raw/name`` holds exactly the expected bytes, extracting it again from its ``.gz``
    when it is missing or wrong. False when neither the file nor its ``.gz`` is there."""
    target, gz = raw / name, raw / f"{name}.gz"
    expected = _expected(dataset, name)
    try:
        with target.open("rb") as f:
            found = _content(f)
    except FileNotFoundError:
        found = None
    if found == expected:
        return True
    fix = f"the file is corrupt; delete it, then {_fix_missing(dataset, raw)}"
    if gz.is_file():
        _extract(gz, target, expected, fix)
        return True
    if found is None:
        return False
    raise _error(target, f"{found} and no {gz.name} to extract it again", str(expected), fix)


def _missing(dataset: str, raw: Path) -> list[Path]:
    """Verify every file that is present; return the ``.gz`` paths of those that are not."""
    names = _CONTENT_SHA256[dataset]
    return [raw / f"{name}.gz" for name in names if not _verify_file(dataset, raw, name)]


def _refuse_legacy_cache(cls: type[MNIST], raw: Path) -> None:
    """torchvision reads ``processed/training.pt`` and ``test.pt`` instead of the raw files
    when both exist (the cache older torchvision versions wrote): those tensors are not
    verified, so refuse."""
    processed = raw.parent / "processed"
    if all((processed / name).is_file() for name in (cls.training_file, cls.test_file)):
        raise _error(
            processed,
            f"{cls.training_file} and {cls.test_file}, which torchvision reads instead of {raw}",
            "no legacy cache of unverified tensors",
            f"delete {processed}; the verified raw files hold the same data",
        )


def _download(dataset: str, raw: Path, first: Path) -> None:
    """Fetch the files with torchvision's own download; on failure, remove the folders it made."""
    cls = dataset_class(dataset)
    created = list(itertools.takewhile(lambda p: not p.exists(), (raw, *raw.parents)))
    try:
        cls(str(raw.parent.parent), train=True, download=True)
    except Exception as e:  # offline shows up as URLError, RuntimeError or a socket error
        for folder in created:  # innermost first; stop at the first that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        reason = " ".join(f"{type(e).__name__}: {e}".split())  # torchvision's spans many lines
        raise _error(
            first,
            f"no such file, and torchvision's download failed ({reason})",
            f"the file {first.name}",
            f"without a network, {_fix_missing(dataset, raw, offer_download=False)}",
        ) from e


def verify(
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> Path:
    """Make the four raw files of ``dataset`` present and proven by content; return the folder.

    Each extracted IDX file must have the SHA-256, header and size we know for it. One that is
    missing or different is extracted again from its ``.gz`` (compressed by any gzip), whose
    decompressed bytes must match in the same way; without a ``.gz`` a wrong file is refused.
    If files are missing, ``download=True`` fetches them with torchvision's own download, and
    what it wrote is proven the same way. Every failure raises :class:`DataError`.

    It runs on every load and hashes every byte: a cache keyed by size and modification time
    would miss a flipped pixel or a changed label, which keep both.
    """
    raw = raw_folder(dataset, data_dir)
    _refuse_legacy_cache(dataset_class(dataset), raw)
    missing = _missing(dataset, raw)
    if missing and download:
        _download(dataset, raw, missing[0])
        missing = _missing(dataset, raw)
        offer_download, found = False, "no such file after torchvision's download"
    else:
        offer_download, found = True, "no such file"
    if missing:
        fix = _fix_missing(dataset, raw, offer_download=offer_download)
        raise _error(missing[0], found, f"the file {missing[0].name}", fix)
    return raw
