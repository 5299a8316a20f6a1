"""Tests for dlconcepts.data and dlconcepts.data_files: the real shipped MNIST, batching, and
every way the files can fail.

Corruption tests work on copies under tmp_path; the repository's data/ is only ever read (and its
.gz files extracted in place, as any load does). There is no network here, so torchvision's
download is replaced with a stub where it matters.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST

from dlconcepts import data, data_files
from dlconcepts.data import DataError, InMemoryDataset

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
REPO_RAW = REPO_DATA / "MNIST" / "raw"
GZ_NAMES = [name for name, _ in MNIST.resources]
NAMES = [name.removesuffix(".gz") for name in GZ_NAMES]  # the extracted files
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _sums(table: str) -> dict[str, str]:
    """``{file name: sha256}`` from lines in sha256sum's format."""
    return {name: sha for sha, name in (line.split() for line in table.strip().splitlines())}


# the tables from data/README.md: the shipped .gz files (information only) and the decompressed
# IDX files, which are what every load checks
GZ_SHA256 = _sums("""
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  train-labels-idx1-ubyte.gz
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  t10k-labels-idx1-ubyte.gz
""")
CONTENT_SHA256 = _sums("""
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
""")
FASHION_CONTENT_SHA256 = _sums("""
c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888  train-images-idx3-ubyte
bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9  train-labels-idx1-ubyte
5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b  t10k-images-idx3-ubyte
0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34  t10k-labels-idx1-ubyte
""")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # a DLCONCEPTS_DATA set in the developer's shell must not change what these tests read
    monkeypatch.delenv("DLCONCEPTS_DATA", raising=False)


@pytest.fixture(scope="module")
def repo_raw() -> Path:
    """The repository's raw folder, its files extracted and verified."""
    return data.verify(data_dir=REPO_DATA)


@pytest.fixture(scope="module")
def splits(repo_raw: Path) -> tuple[InMemoryDataset, InMemoryDataset]:
    return data.load_splits("mnist", data_dir=REPO_DATA)


def copy_raw(root: Path, folder: str = "MNIST", *, extracted: bool = False) -> Path:
    """Copy the shipped .gz files to ``root/<folder>/raw`` and return that folder; with
    ``extracted``, the extracted files too (which needs the ``repo_raw`` fixture)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name in (GZ_NAMES + NAMES) if extracted else GZ_NAMES:
        shutil.copyfile(REPO_RAW / name, raw / name)
    return raw


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    return copy_raw(tmp_path)


@pytest.fixture
def full_copy(tmp_path: Path, repo_raw: Path) -> Path:
    """A copy of the raw folder as after a first load: the .gz and the extracted files."""
    return copy_raw(tmp_path, extracted=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loads_the_real_data(raw: Path, splits: tuple[InMemoryDataset, InMemoryDataset]) -> None:
    """``raw`` verifies, its four extracted files are the real ones, and the test split loads."""
    data.verify(data_dir=raw.parent.parent)
    for name, sha in CONTENT_SHA256.items():
        assert _sha256(raw / name) == sha
    test = data.load(train=False, data_dir=raw.parent.parent)
    assert torch.equal(test.images, splits[1].images) and torch.equal(test.labels, splits[1].labels)


# --- the real data ---------------------------------------------------------------------------


def test_shipped_files_match_the_tables(repo_raw: Path) -> None:
    for name, sha in GZ_SHA256.items():
        assert _sha256(REPO_RAW / name) == sha
    for name, sha in CONTENT_SHA256.items():
        assert _sha256(repo_raw / name) == sha  # what verify extracted and proved


def test_real_mnist_sizes_labels_and_normalization(splits) -> None:
    train, test = splits
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.labels.bincount().tolist() == TRAIN_LABEL_COUNTS
    assert test.labels.bincount().sum() == 10_000
    assert abs(train.images.mean().item()) < 1e-3
    assert abs(train.images.std().item() - 1.0) < 1e-3
    # the extremes are the normalized values of pixel 0 and pixel 255
    assert train.images.min().item() == pytest.approx((0 - 0.1307) / 0.3081, abs=1e-5)
    assert train.images.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)


def test_load_on_device_with_limit_and_dtype(splits, device: torch.device) -> None:
    train, _ = splits
    small = data.load(train=True, device=device, limit=1000)
    assert len(small) == 1000 and small.device.type == device.type
    assert small.labels.device.type == device.type
    torch.testing.assert_close(small.images.cpu(), train.images[:1000])
    assert torch.equal(small.labels.cpu(), train.labels[:1000])
    double = data.load(train=False, device=device, dtype=torch.float64, limit=10)
    assert double.images.dtype == torch.float64


def test_torchvision_loader_agrees_with_in_memory(splits) -> None:
    _, test = splits
    loader = data.torchvision_loader(batch_size=128, train=False)  # no shuffle for the test set
    images, labels = next(iter(loader))
    assert images.shape == (128, 1, 28, 28)
    torch.testing.assert_close(images.reshape(128, 784), test.images[:128])
    assert torch.equal(labels, test.labels[:128])


# --- batching --------------------------------------------------------------------------------


def _indexed(n: int, device: torch.device) -> InMemoryDataset:
    # example i has label i and image row i, so batches show exactly which examples they hold
    images = torch.arange(n, dtype=torch.float32, device=device).unsqueeze(1).repeat(1, 3)
    return InMemoryDataset(images=images, labels=torch.arange(n, device=device))


def test_batches_cover_every_index_once(device: torch.device) -> None:
    ds = _indexed(1000, device)
    batches = list(ds.batches(128, generator=torch.Generator().manual_seed(1)))
    assert len(batches) == ds.num_batches(128) == 8
    assert [len(y) for _, y in batches] == [128] * 7 + [104]  # last partial batch included
    seen = torch.cat([y for _, y in batches])
    assert seen.device.type == device.type
    assert torch.equal(seen.sort().values.cpu(), torch.arange(1000))
    assert not torch.equal(seen.cpu(), torch.arange(1000))  # shuffled
    for x, y in batches:
        assert torch.equal(x[:, 0].long(), y)  # images and labels stay paired


def test_batches_seeded_and_identical_across_devices(device: torch.device) -> None:
    def order(ds: InMemoryDataset, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat([y.cpu() for _, y in ds.batches(100, generator=gen)])

    ds, on_cpu = _indexed(1000, device), _indexed(1000, torch.device("cpu"))
    assert torch.equal(order(ds, 7), order(ds, 7))
    assert torch.equal(order(ds, 7), order(on_cpu, 7))
    assert not torch.equal(order(ds, 7), order(ds, 8))
    # one generator drawn twice gives two different epochs
    gen = torch.Generator().manual_seed(7)
    first = torch.cat([y for _, y in ds.batches(100, generator=gen)])
    second = torch.cat([y for _, y in ds.batches(100, generator=gen)])
    assert not torch.equal(first, second)


def test_batches_without_shuffle_are_in_order() -> None:
    ds = _indexed(10, torch.device("cpu"))
    got = [y.tolist() for _, y in ds.batches(4, shuffle=False)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_batch_size(bad) -> None:
    ds = _indexed(10, torch.device("cpu"))
    with pytest.raises(ValueError, match="batch_size: expected a positive int"):
        next(ds.batches(bad))
    with pytest.raises(ValueError, match="batch_size: expected a positive int"):
        ds.num_batches(bad)


def test_bad_limit_and_mismatched_tensors() -> None:
    with pytest.raises(ValueError, match="limit: expected None or an int from 1 to 10000"):
        data.load(train=False, limit=0)
    with pytest.raises(ValueError, match="labels: expected shape"):
        InMemoryDataset(images=torch.zeros(3, 784), labels=torch.zeros(4, dtype=torch.int64))


# --- where the data lives --------------------------------------------------------------------


def test_unknown_dataset_lists_the_choices() -> None:
    message = "dataset: expected one of 'mnist', 'fashion-mnist', got 'cifar10'"
    for call in (lambda: data.load("cifar10", train=True), lambda: data.verify("cifar10")):
        with pytest.raises(ValueError, match=message):
            call()


def test_default_data_dir_from_another_working_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DLCONCEPTS_DATA"}
    code = "from dlconcepts.data import default_data_dir; print(default_data_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == REPO_DATA


def test_env_var_and_explicit_data_dir(
    tmp_path: Path, raw_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLCONCEPTS_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    assert data.verify() == raw_copy
    assert len(data.load(train=False, limit=5)) == 5
    # an explicit data_dir wins over the environment variable
    assert data.verify(data_dir=REPO_DATA) == REPO_RAW


def test_copy_is_verified_and_extracted(raw_copy: Path) -> None:
    assert data.verify(data_dir=raw_copy.parent.parent) == raw_copy
    for name, sha in CONTENT_SHA256.items():
        assert _sha256(raw_copy / name) == sha
    assert not [p for p in raw_copy.iterdir() if p.name.startswith(".extract-")]


# --- any gzip, or none ------------------------------------------------------------------------


def _python_gzip_level_1(extracted: Path, gz: Path) -> None:
    gz.write_bytes(gzip.compress(extracted.read_bytes(), compresslevel=1))


def _gzip_command(extracted: Path, gz: Path) -> None:
    # another implementation, which also stores the file name and time in the header
    with gz.open("wb") as out:
        subprocess.run(["gzip", "--fast", "--stdout", str(extracted)], stdout=out, check=True)


@pytest.mark.parametrize(
    "gzip_again",
    [
        _python_gzip_level_1,
        pytest.param(
            _gzip_command,
            marks=pytest.mark.skipif(shutil.which("gzip") is None, reason="no gzip command"),
        ),
    ],
)
def test_mnist_gzipped_again_loads(
    raw_copy: Path, repo_raw: Path, gzip_again: Callable[[Path, Path], None], splits
) -> None:
    for name, gz_name in zip(NAMES, GZ_NAMES):
        gzip_again(repo_raw / name, raw_copy / gz_name)
        assert _sha256(raw_copy / gz_name) != GZ_SHA256[gz_name]  # other .gz, same content
    _loads_the_real_data(raw_copy, splits)


def test_extracted_files_alone_load(full_copy: Path, splits) -> None:
    for name in GZ_NAMES:
        (full_copy / name).unlink()
    _loads_the_real_data(full_copy, splits)


# --- corrupt, missing and wrong files --------------------------------------------------------


def _expect_error(raw: Path, path: Path, *fragments: str, dataset: str = "mnist") -> str:
    with pytest.raises(DataError) as info:
        data.verify(dataset, raw.parent.parent)
    message = str(info.value)
    for fragment in (str(path), *fragments):
        assert fragment in message, message
    return message


def _flip_pixel(blob: bytearray) -> None:
    blob[16 + 1000 * 784 + 14 * 28 + 14] ^= 0xFF  # the centre pixel of image 1000


def _label_4_to_5(blob: bytearray) -> None:
    blob[blob.index(4, 8)] = 5  # the first label 4, after the 8-byte header


SAME_SIZE_CORRUPTIONS = [
    pytest.param("train-images-idx3-ubyte", _flip_pixel, id="flipped-pixel"),
    pytest.param("train-labels-idx1-ubyte", _label_4_to_5, id="label-4-to-5"),
]


def _corrupt(path: Path, change: Callable[[bytearray], None]) -> str:
    """Change ``path`` in place, keeping its size and times (as ``touch -r`` would); return
    the SHA-256 of the corrupt bytes."""
    stat = path.stat()
    blob = bytearray(path.read_bytes())
    change(blob)
    path.write_bytes(blob)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    return hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize(("name", "change"), SAME_SIZE_CORRUPTIONS)
def test_same_size_corruption_is_extracted_again_from_the_gz(
    full_copy: Path, name: str, change: Callable[[bytearray], None], splits
) -> None:
    _corrupt(full_copy / name, change)
    train = data.load(train=True, data_dir=full_copy.parent.parent, limit=1001)
    assert _sha256(full_copy / name) == CONTENT_SHA256[name]
    assert torch.equal(train.images, splits[0].images[:1001])
    assert torch.equal(train.labels, splits[0].labels[:1001])


@pytest.mark.parametrize(("name", "change"), SAME_SIZE_CORRUPTIONS)
def test_same_size_corruption_without_gz_is_refused(
    full_copy: Path, name: str, change: Callable[[bytearray], None]
) -> None:
    for gz_name in GZ_NAMES:
        (full_copy / gz_name).unlink()
    target = full_copy / name
    found = _corrupt(target, change)
    with pytest.raises(DataError) as info:
        data.load_splits(data_dir=full_copy.parent.parent)
    message = str(info.value)
    # one error: the file, the expected and found sums, and how to fix it
    assert message.startswith(f"{target}: expected sha256 {CONTENT_SHA256[name]} ("), message
    assert f"got 'sha256 {found} (" in message, message
    assert f"no {name}.gz to extract it again" in message, message
    fix = message.split("\n")[1]
    assert fix.startswith("  to fix: the file is corrupt; delete it, then clone the repository"), (
        fix
    )


def test_truncated_gz(raw_copy: Path) -> None:
    gz = raw_copy / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100_000])
    sha = CONTENT_SHA256["train-images-idx3-ubyte"]
    _expect_error(raw_copy, gz, sha, "EOFError", "delete it", "copy")


def test_flipped_byte_in_gz(raw_copy: Path) -> None:
    gz = raw_copy / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(gz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    gz.write_bytes(bytes(blob))
    sha = CONTENT_SHA256["t10k-labels-idx1-ubyte"]
    _expect_error(raw_copy, gz, sha, "clone the repository", "data/MNIST/raw/", f"into {raw_copy}")


def test_torchvision_legacy_cache_is_refused(raw_copy: Path) -> None:
    # torchvision would read these tensors instead of the verified raw files
    processed = raw_copy.parent / "processed"
    processed.mkdir()
    for name in ("training.pt", "test.pt"):
        (processed / name).write_bytes(b"")
    _expect_error(raw_copy, processed, "training.pt and test.pt", f"delete {processed}")


def test_missing_file_offline(raw_copy: Path) -> None:
    gz = raw_copy / "train-labels-idx1-ubyte.gz"
    gz.unlink()
    _expect_error(
        raw_copy, gz, "the file train-labels-idx1-ubyte.gz", "no such file", "--download",
        "DLCONCEPTS_DATA", "--data-dir",
    )  # fmt: skip


def test_an_installed_package_says_what_a_user_can_do_without_the_data(tmp_path: Path) -> None:
    # installed from a wheel, the package has no data/ beside it: it looks in ~/.cache, and the
    # error lists what the user can do from there (clone, --data-dir, --download), nothing more
    site, home = tmp_path / "site-packages", tmp_path / "home"
    package = Path(data.__file__).parent
    shutil.copytree(package, site / "dlconcepts", ignore=shutil.ignore_patterns("__pycache__"))
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DLCONCEPTS_DATA"}
    env |= {"PYTHONPATH": str(site), "HOME": str(home)}
    code = (
        "from dlconcepts import data\ntry:\n data.verify()\nexcept data.DataError as e:\n print(e)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    raw = home / ".cache" / "dlconcepts" / "data" / "MNIST" / "raw"
    assert out.stdout.splitlines() == [
        f"{raw}/train-images-idx3-ubyte.gz: expected the file train-images-idx3-ubyte.gz, "
        "got 'no such file'",
        "  to fix: clone the repository, which ships the four files in data/MNIST/raw/, and pass "
        f"--data-dir CLONE/data (or copy the four .gz files into {raw}); or pass --data-dir "
        "(or set DLCONCEPTS_DATA) to a folder whose MNIST/raw/ holds the four files; or run "
        "with --download to fetch them with torchvision (needs a network)",
    ], out.stdout


def test_wrong_size_extracted_file_without_gz(full_copy: Path) -> None:
    (full_copy / "t10k-images-idx3-ubyte.gz").unlink()
    target = full_copy / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-784])  # one image short, header unchanged
    _expect_error(full_copy, target, f"{16 + 10_000 * 784} bytes", f"{16 + 9_999 * 784} bytes")


def test_wrong_extracted_file_is_extracted_again_from_gz(full_copy: Path) -> None:
    target = full_copy / "train-labels-idx1-ubyte"
    target.write_bytes(b"partial")
    data.verify(data_dir=full_copy.parent.parent)
    assert _sha256(target) == CONTENT_SHA256[target.name]
    assert not [p for p in full_copy.iterdir() if p.name.startswith(".extract-")]


# --- download (there is no network here: torchvision's download is stubbed) ------------------

# what torchvision raises offline: one line per mirror tried
OFFLINE = (
    "Error downloading train-images-idx3-ubyte.gz:\n"
    "Tried https://example.invalid/, got:\n<urlopen error [Errno -2] Name or service not known>\n"
)


def _offline(self: MNIST) -> None:
    os.makedirs(self.raw_folder, exist_ok=True)  # as torchvision does before downloading
    raise RuntimeError(OFFLINE)


def test_download_offline_says_where_to_put_the_files(
    raw_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MNIST, "download", _offline)
    for name in GZ_NAMES:
        (raw_copy / name).unlink()
    with pytest.raises(DataError) as info:
        data.verify(data_dir=raw_copy.parent.parent, download=True)
    message = str(info.value)
    for fragment in ("download failed", "Name or service", f"into {raw_copy}", "clone the"):
        assert fragment in message, message
    assert "run with --download" not in message  # it just failed; don't suggest it again
    # torchvision's lines joined into one, shown without a literal backslash-n
    assert "\\n" not in message and message.count("\n") == 1, message
    assert raw_copy.is_dir()  # it was there before: kept


def test_download_offline_leaves_no_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MNIST, "download", _offline)  # FashionMNIST inherits it
    with pytest.raises(DataError, match="download failed"):
        data.verify("fashion-mnist", tmp_path / "data", download=True)
    assert list(tmp_path.iterdir()) == []


def test_download_result_is_verified(
    raw_copy: Path, repo_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_download(self: MNIST) -> None:  # the four .gz and their extracted files
        for name in GZ_NAMES + NAMES:
            shutil.copyfile(repo_raw / name, Path(self.raw_folder) / name)

    monkeypatch.setattr(MNIST, "download", fake_download)
    (raw_copy / "t10k-images-idx3-ubyte.gz").unlink()
    assert data.verify(data_dir=raw_copy.parent.parent, download=True) == raw_copy
    assert _sha256(raw_copy / "t10k-images-idx3-ubyte") == CONTENT_SHA256["t10k-images-idx3-ubyte"]


# --- Fashion-MNIST (not shipped: proven by its content sums all the same) ---------------------


def test_fashion_mnist_is_checked_against_its_sums(tmp_path: Path) -> None:
    # A tiny stand-in: a well-formed IDX file of 10,000 labels, but not Fashion-MNIST's.
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    assert data.raw_folder("fashion-mnist", tmp_path) == raw
    target = raw / "t10k-labels-idx1-ubyte"
    stand_in = (0x0801).to_bytes(4, "big") + (10_000).to_bytes(4, "big") + bytes(range(10)) * 1000
    target.write_bytes(stand_in)
    found = hashlib.sha256(stand_in).hexdigest()
    expected = FASHION_CONTENT_SHA256[target.name]
    header = "IDX magic 0x0801, 10000, 10008 bytes"
    _expect_error(raw, target, expected, found, header, dataset="fashion-mnist")
    # the same bytes as a .gz: the decompressed content is what is refused
    (raw / f"{target.name}.gz").write_bytes(gzip.compress(stand_in))
    gz = raw / f"{target.name}.gz"
    _expect_error(raw, gz, expected, found, "once decompressed", dataset="fashion-mnist")
    assert target.read_bytes() == stand_in  # not replaced by unproven bytes


def test_fashion_mnist_loads_with_its_own_normalization(
    tmp_path: Path, repo_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the MNIST files stand in for Fashion-MNIST's, their sums listed as Fashion-MNIST's
    copy_raw(tmp_path, "FashionMNIST", extracted=True)
    monkeypatch.setitem(data_files._CONTENT_SHA256, "fashion-mnist", CONTENT_SHA256)
    small = data.load("fashion-mnist", train=False, data_dir=tmp_path, limit=100)
    assert small.images.min().item() == pytest.approx((0 - 0.2860) / 0.3530, abs=1e-5)


def test_fashion_mnist_missing_offers_download(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    with pytest.raises(DataError) as info:
        data.verify("fashion-mnist", tmp_path)
    message = str(info.value)
    assert str(raw / "train-images-idx3-ubyte.gz") in message
    assert "--download" in message and "Debian" in message and "DLCONCEPTS_DATA" in message
