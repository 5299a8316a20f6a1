"""Training on real MNIST: it learns, it resumes exactly, it fails loudly and keeps what it had."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from dlconcepts import data, train
from dlconcepts.train import CheckpointError, TrainConfig, TrainingDiverged

SMALL = TrainConfig(hidden=(64,), epochs=2, batch_size=64, lr=2e-3, progress=False, device="cpu")


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=4000, limit_test=1000)


def quiet(cfg: TrainConfig, subset, **kw) -> train.Result:
    return train.train(cfg, train_set=subset[0], test_set=subset[1], log=lambda s: None, **kw)


def test_custom_pieces_learn_mnist(subset) -> None:
    result = quiet(dataclasses.replace(SMALL, epochs=4), subset)
    assert result.test_accuracy >= 0.90, result.history
    assert result.history[-1].test_cost < result.history[0].train_cost


def test_zero_init_is_stuck_at_chance_while_he_and_xavier_learn(subset) -> None:
    sgd = dataclasses.replace(SMALL, optimizer="sgd", lr=0.1)
    zero = quiet(dataclasses.replace(sgd, init="zero"), subset)
    assert zero.test_accuracy < 0.2  # only the output bias learns: the most frequent class
    assert len(set(zero.test_predictions.tolist())) == 1
    for scheme in ("he", "xavier"):
        assert quiet(dataclasses.replace(sgd, init=scheme), subset).test_accuracy > 0.85, scheme


def test_resume_reproduces_an_uninterrupted_run(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(SMALL, epochs=3, out=str(tmp_path / "full"))
    full = quiet(cfg, subset)

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/3"):
            raise KeyboardInterrupt

    cut = dataclasses.replace(cfg, out=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        train.train(cut, train_set=subset[0], test_set=subset[1], log=interrupt_after_epoch_1)
    resumed = quiet(dataclasses.replace(cut, resume=True), subset)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h.test_accuracy for h in full.history] == [h.test_accuracy for h in resumed.history]
    metrics = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 3 and metrics["test_accuracy"] == full.test_accuracy


def test_checkpoint_loads_with_weights_only(subset, tmp_path: Path) -> None:
    quiet(dataclasses.replace(SMALL, epochs=1, out=str(tmp_path)), subset)
    ckpt = torch.load(tmp_path / train.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 1 and "hidden1.weight" in ckpt["model"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "config",
        "epochs",
        "test_accuracy",
        "train_seconds",
        "torch_version",
        "device",
        "test_loss_vs_cost",
    ):
        assert key in metrics, key
    assert metrics["config"]["activation"] == "relu"


def test_bad_checkpoints_give_clear_errors(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(SMALL, epochs=1, out=str(tmp_path), resume=True)
    with pytest.raises(CheckpointError, match="found none"):
        quiet(cfg, subset)
    quiet(dataclasses.replace(cfg, resume=False), subset)
    with pytest.raises(CheckpointError, match=r"hidden=\[64\].*hidden=\[32\]"):
        quiet(dataclasses.replace(cfg, hidden=(32,)), subset)
    path = tmp_path / train.CHECKPOINT
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError) as err:
        quiet(cfg, subset)
    assert str(path) in str(err.value) and "unreadable" in str(err.value)
    torch.save({"weights": torch.zeros(1)}, path)  # some other file
    with pytest.raises(CheckpointError, match="expected format"):
        quiet(cfg, subset)


def test_interrupted_save_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ck.pt"
    train.save_checkpoint(path, {"v": torch.ones(3)})

    def broken_save(obj, f) -> None:
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, {"v": torch.zeros(3)})
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temp file left behind


def test_nan_cost_stops_with_epoch_and_step_and_keeps_last_checkpoint(
    subset, tmp_path: Path
) -> None:
    poisoned = data.InMemoryDataset(subset[0].images.clone(), subset[0].labels)

    def poison_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/"):
            poisoned.images[:] = float("nan")

    cfg = dataclasses.replace(SMALL, out=str(tmp_path))
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1.*--lr"):
        train.train(cfg, train_set=poisoned, test_set=subset[1], log=poison_after_epoch_1)
    ckpt = torch.load(tmp_path / train.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_cli_dry_run_writes_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--dry-run", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "cost (mean loss)" in out and "median loss" in out
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"][0]["epoch"] == 1


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--activation", "gelu"], ["--activation", "gelu"]),
        (["--hidden", "256,x"], ["--hidden", "256,x"]),
        (["--epochs", "0"], ["epochs", "0"]),
    ],
)
def test_cli_rejects_bad_options(argv, words, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.main(argv)
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--device", "cuda", "--dry-run"]) == 2
    assert "device: expected 'cpu' or 'auto'" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_training_matches_cpu(subset) -> None:
    cpu = quiet(dataclasses.replace(SMALL, epochs=1, dtype="float64"), subset)
    gpu_sets = tuple(
        data.InMemoryDataset(s.images.cuda().double(), s.labels.cuda()) for s in subset
    )
    cfg = dataclasses.replace(SMALL, epochs=1, dtype="float64", device="cuda")
    gpu = train.train(cfg, train_set=gpu_sets[0], test_set=gpu_sets[1], log=lambda s: None)
    assert abs(cpu.test_accuracy - gpu.test_accuracy) <= 0.002
