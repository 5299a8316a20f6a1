"""Training on real MNIST: it learns, it resumes exactly, it fails loudly and keeps what it had."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from dlconcepts import data, training
from dlconcepts.commands import train
from dlconcepts.training import CheckpointError, TrainConfig, TrainingDiverged

SMALL = TrainConfig(hidden=(64,), epochs=2, batch_size=64, lr=2e-3, progress=False, device="cpu")


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=4000, limit_test=1000)


def quiet(cfg: TrainConfig, subset, **kw) -> training.Result:
    return training.fit(cfg, *subset, **{"log": lambda line: None, **kw})


def test_custom_pieces_learn_mnist(subset) -> None:
    result = quiet(dataclasses.replace(SMALL, epochs=4), subset)
    assert result.test_accuracy >= 0.88, result.history  # chance is 0.1
    assert result.history[-1].test_cost < result.history[0].train_cost


def test_resume_reproduces_an_uninterrupted_run(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(SMALL, epochs=3, out=str(tmp_path / "full"))
    full = quiet(cfg, subset)

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/3"):
            raise KeyboardInterrupt

    cut = dataclasses.replace(cfg, out=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        quiet(cut, subset, log=interrupt_after_epoch_1)
    resumed = quiet(dataclasses.replace(cut, resume=True), subset)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h.test_accuracy for h in full.history] == [h.test_accuracy for h in resumed.history]
    metrics = json.loads((tmp_path / "cut" / training.METRICS).read_text())
    assert len(metrics["epochs"]) == 3 and metrics["test_accuracy"] == full.test_accuracy


def test_checkpoint_and_metrics_are_written_after_every_epoch(subset, tmp_path: Path) -> None:
    seen = []

    def read_outputs(line: str) -> None:  # fit logs an epoch after writing its files
        ckpt = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)
        metrics = json.loads((tmp_path / training.METRICS).read_text())
        seen.append((ckpt["epoch"], len(metrics["epochs"]), metrics["test_accuracy"]))

    result = quiet(dataclasses.replace(SMALL, out=str(tmp_path)), subset, log=read_outputs)
    assert seen == [(e.epoch, e.epoch, e.test_accuracy) for e in result.history]
    ckpt = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)
    assert "hidden1.weight" in ckpt["model"]
    metrics = json.loads((tmp_path / training.METRICS).read_text())
    for key in (
        "config",
        "epochs",
        "train_seconds",
        "torch_version",
        "device",
        "test_loss_vs_cost",
    ):
        assert key in metrics, key
    assert metrics["config"]["activation"] == "relu"


def test_bad_checkpoints_give_clear_errors(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(SMALL, epochs=1, out=str(tmp_path), resume=True)
    with pytest.raises(CheckpointError, match="no such file"):
        quiet(cfg, subset)
    quiet(dataclasses.replace(cfg, resume=False), subset)
    with pytest.raises(CheckpointError, match=r"hidden=\[64\].*hidden=\[32\]"):
        quiet(dataclasses.replace(cfg, hidden=(32,)), subset)
    path = tmp_path / training.CHECKPOINT
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
    path = tmp_path / training.CHECKPOINT
    model = training.build_model(SMALL)
    opt, sched = training.build_optimizer(SMALL, model, steps=10)
    training.save_checkpoint(path, SMALL, 1, model, opt, sched, history=[])

    def broken_save(obj, f) -> None:
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        training.save_checkpoint(path, SMALL, 2, model, opt, sched, history=[])
    assert training.read_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == [training.CHECKPOINT]  # no temp file left behind


def test_nan_cost_stops_before_the_update_and_keeps_last_checkpoint(subset, tmp_path: Path) -> None:
    poisoned = data.InMemoryDataset(subset[0].images.clone(), subset[0].labels)

    def poison_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/"):
            poisoned.images[:] = float("nan")

    cfg = dataclasses.replace(SMALL, out=str(tmp_path))
    with pytest.raises(TrainingDiverged, match=r"step 1 of epoch 2.*--lr"):
        quiet(cfg, (poisoned, subset[1]), log=poison_after_epoch_1)
    ckpt = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_cli_dry_run_writes_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--dry-run", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "cost (mean loss)" in out and "median loss" in out
    metrics = json.loads((tmp_path / training.METRICS).read_text())
    assert metrics["epochs"][0]["epoch"] == 1 and 0 <= metrics["test_accuracy"] <= 1


def test_preset_sets_defaults_and_options_still_win() -> None:
    fast = train.config_from_args(["--preset", "fast"])
    assert (fast.batch_size, fast.lr, fast.epochs) == (256, 2e-3, 4)
    best = train.config_from_args(["--preset", "best", "--epochs", "2"])
    assert best.hidden == (800, 800) and best.weight_decay == 0.05 and best.epochs == 2
    dry = train.config_from_args(["--dry-run", "--hidden", "32,16"])
    assert (dry.hidden, dry.epochs, dry.max_steps, dry.limit_test) == ((32, 16), 1, 5, 1000)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_training_matches_cpu(subset) -> None:
    cfg = dataclasses.replace(SMALL, epochs=1, dtype="float64")
    cpu_sets = tuple(data.InMemoryDataset(s.images.double(), s.labels) for s in subset)
    gpu_sets = tuple(data.InMemoryDataset(s.images.cuda(), s.labels.cuda()) for s in cpu_sets)
    cpu = quiet(cfg, cpu_sets)
    gpu = quiet(dataclasses.replace(cfg, device="cuda"), gpu_sets)
    assert abs(cpu.test_accuracy - gpu.test_accuracy) <= 0.002
