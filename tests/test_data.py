"""Tests for dlconcepts.data: the real shipped MNIST, batching, and every way the files can fail.

Corruption tests work on copies under tmp_path; the repository's data/ is only ever read.
There is no network here, so torchvision's download is replaced with a stub where it matters.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST, FashionMNIST
from torchvision.datasets.utils import extract_archive

from dlconcepts import data
from dlconcepts.data import DataError, InMemoryDataset

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
REPO_RAW = REPO_DATA / "MNIST" / "raw"
GZ_NAMES = [name for name, _ in MNIST.resources]
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
# the table from data/README.md, in sha256sum's format
SHA256 = {
    name: sha
    for sha, name in (
        line.split()
        for line in """
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  train-labels-idx1-ubyte.gz
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  t10k-labels-idx1-ubyte.gz
""".strip().splitlines()
    )
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # a DLCONCEPTS_DATA set in the developer's shell must not change what these tests read
    monkeypatch.delenv("DLCONCEPTS_DATA", raising=False)


@pytest.fixture(scope="module")
def splits() -> tuple[InMemoryDataset, InMemoryDataset]:
    return data.load_splits("mnist")


def copy_gz(root: Path, folder: str = "MNIST") -> Path:
    """Copy the shipped .gz files to ``root/<folder>/raw`` and return that folder."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name in GZ_NAMES:
        shutil.copyfile(REPO_RAW / name, raw / name)
    return raw


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    return copy_gz(tmp_path)


def _numel(path: Path) -> int:
    return path.stat().st_size


# --- the real data ---------------------------------------------------------------------------


def test_shipped_files_match_the_table() -> None:
    for name, sha in SHA256.items():
        assert hashlib.sha256((REPO_RAW / name).read_bytes()).hexdigest() == sha


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
    assert _numel(raw_copy / "train-images-idx3-ubyte") == 16 + 60_000 * 784
    assert _numel(raw_copy / "t10k-labels-idx1-ubyte") == 8 + 10_000
    assert not [p for p in raw_copy.iterdir() if p.name.startswith(".extract-")]


# --- corrupt, missing and wrong files --------------------------------------------------------


def _expect_error(raw: Path, path: Path, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        data.verify(data_dir=raw.parent.parent)
    message = str(info.value)
    for fragment in (str(path), *fragments):
        assert fragment in message, message
    return message


def test_truncated_gz(raw_copy: Path) -> None:
    gz = raw_copy / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100_000])
    message = _expect_error(raw_copy, gz, SHA256[gz.name], "100000 bytes", "copy", "delete it")
    assert MNIST.resources[0][1] in message  # torchvision's MD5 is offered too


def test_flipped_byte(raw_copy: Path) -> None:
    gz = raw_copy / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(gz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    gz.write_bytes(bytes(blob))
    _expect_error(raw_copy, gz, SHA256[gz.name], "data/MNIST/raw/", "shared mnist folder")


def test_missing_file_offline(raw_copy: Path) -> None:
    gz = raw_copy / "train-labels-idx1-ubyte.gz"
    gz.unlink()
    _expect_error(
        raw_copy, gz, "the file train-labels-idx1-ubyte.gz", "no such file", "--download",
        "DLCONCEPTS_DATA", "--data-dir",
    )  # fmt: skip


def test_wrong_size_extracted_file_without_gz(raw_copy: Path) -> None:
    data.verify(data_dir=raw_copy.parent.parent)
    (raw_copy / "t10k-images-idx3-ubyte.gz").unlink()
    target = raw_copy / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-784])  # one image short
    _expect_error(raw_copy, target, f"{16 + 10_000 * 784} bytes", f"{16 + 9_999 * 784} bytes")


def test_wrong_size_extracted_file_is_re_extracted_from_gz(raw_copy: Path) -> None:
    data.verify(data_dir=raw_copy.parent.parent)
    target = raw_copy / "train-labels-idx1-ubyte"
    target.write_bytes(b"partial")
    data.verify(data_dir=raw_copy.parent.parent)
    assert _numel(target) == 8 + 60_000


def test_extracted_files_alone_are_accepted_by_size(raw_copy: Path) -> None:
    data.verify(data_dir=raw_copy.parent.parent)
    for name in GZ_NAMES:
        (raw_copy / name).unlink()
    assert len(data.load(train=False, data_dir=raw_copy.parent.parent)) == 10_000


def test_bad_labels_of_the_right_size_are_caught_on_load(raw_copy: Path) -> None:
    data.verify(data_dir=raw_copy.parent.parent)
    (raw_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    target = raw_copy / "t10k-labels-idx1-ubyte"
    blob = bytearray(target.read_bytes())
    blob[8] = 200  # first label
    target.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="labels from 0 to 9") as info:
        data.load(train=False, data_dir=raw_copy.parent.parent)
    assert str(target) in str(info.value)


# --- download (there is no network here: torchvision's download is stubbed) ------------------


def test_download_offline_says_where_to_put_the_files(
    raw_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(self: MNIST) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(MNIST, "download", offline)
    for name in GZ_NAMES:
        (raw_copy / name).unlink()
    with pytest.raises(DataError) as info:
        data.verify(data_dir=raw_copy.parent.parent, download=True)
    message = str(info.value)
    for fragment in ("download failed", "no network", f"into {raw_copy}", "shared mnist folder"):
        assert fragment in message, message
    assert "run with --download" not in message  # it just failed; don't suggest it again


def test_download_result_is_verified(raw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_download(self: MNIST) -> None:  # what torchvision does, minus the network
        for name in GZ_NAMES:
            shutil.copyfile(REPO_RAW / name, Path(self.raw_folder) / name)
            extract_archive(Path(self.raw_folder) / name)

    monkeypatch.setattr(MNIST, "download", fake_download)
    (raw_copy / "t10k-images-idx3-ubyte.gz").unlink()
    assert data.verify(data_dir=raw_copy.parent.parent, download=True) == raw_copy
    assert _numel(raw_copy / "t10k-images-idx3-ubyte") == 16 + 10_000 * 784


# --- Fashion-MNIST (not shipped: proven by torchvision's MD5 only) ---------------------------


def test_fashion_mnist_is_checked_against_torchvision_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in files (the MNIST ones) under FashionMNIST/raw: first rejected, naming
    # torchvision's MD5; then accepted once the MD5 table lists them, as for real downloads.
    raw = copy_gz(tmp_path, "FashionMNIST")
    assert data.raw_folder("fashion-mnist", tmp_path) == raw
    gz = raw / FashionMNIST.resources[0][0]
    with pytest.raises(DataError, match=FashionMNIST.resources[0][1]) as info:
        data.verify("fashion-mnist", tmp_path)
    assert str(gz) in str(info.value) and "shipped copy" not in str(info.value)

    md5s = [(name, hashlib.md5((raw / name).read_bytes()).hexdigest()) for name in GZ_NAMES]
    monkeypatch.setattr(FashionMNIST, "resources", md5s)
    small = data.load("fashion-mnist", train=False, data_dir=tmp_path, limit=100)
    # normalized with Fashion-MNIST's constants, not MNIST's
    assert small.images.min().item() == pytest.approx((0 - 0.2860) / 0.3530, abs=1e-5)


def test_fashion_mnist_missing_offers_download(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    with pytest.raises(DataError) as info:
        data.verify("fashion-mnist", tmp_path)
    message = str(info.value)
    assert str(raw / "train-images-idx3-ubyte.gz") in message
    assert "--download" in message and "DLCONCEPTS_DATA" in message
