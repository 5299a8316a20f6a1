"""Training on real MNIST: it learns, it resumes exactly, it fails loudly and keeps what it had."""

import dataclasses
import itertools
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

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
    fast = train.parse_args(["--preset", "fast"])[0]
    assert (fast.batch_size, fast.lr, fast.epochs) == (256, 2e-3, 4)
    best = train.parse_args(["--preset", "best", "--epochs", "2"])[0]
    assert best.hidden == (800, 800) and best.weight_decay == 0.05 and best.epochs == 2
    dry = train.parse_args(["--dry-run", "--hidden", "32,16"])[0]
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


def test_a_nan_cost_is_never_applied_and_the_loop_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With plain SGD the weights after steps (good, NaN, good) are those after the good first
    step alone, and no step asks the device for a value (``.item()``, ``bool()``...)."""
    x, y = torch.randn(3, 8, 784), torch.randint(0, 10, (3, 8))
    x[1, 0, 0] = float("nan")

    def after(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
        cfg = dataclasses.replace(
            SMALL, hidden=(16,), optimizer="sgd", momentum=0.0, schedule="constant"
        )
        model = training.build_model(cfg)
        opt, sched = training.build_optimizer(cfg, model, steps=3)
        costs = training.train_one_epoch(model, batches, opt, sched, F.cross_entropy)
        return costs, model.state_dict()

    def waits(*args, **kwargs):
        raise AssertionError("the training loop waited for the device")

    _, one_step = after([(x[0], y[0])])
    with monkeypatch.context() as m:
        for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            m.setattr(torch.Tensor, name, waits)
        costs, three_steps = after(list(zip(x, y)))
    for name, value in one_step.items():
        assert torch.equal(value, three_steps[name]), name
    with pytest.raises(TrainingDiverged, match="cost is nan at step 2 of epoch 3"):
        training.checked_costs(costs, epoch=3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_no_device_sync_in_a_cuda_epoch(subset) -> None:
    model = training.build_model(SMALL, "cuda")
    opt, sched = training.build_optimizer(SMALL, model, steps=10)
    train_set = data.InMemoryDataset(subset[0].images.cuda(), subset[0].labels.cuda())
    batches = list(itertools.islice(train_set.batches(64), 10))
    torch.cuda.set_sync_debug_mode("error")
    try:
        costs = training.train_one_epoch(model, batches, opt, sched, F.cross_entropy)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert costs.shape == (10,) and costs.isfinite().all()


def test_resume_with_more_epochs_goes_on_along_the_longer_cosine(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(SMALL, hidden=(16,), epochs=1, out=str(tmp_path), max_steps=5)
    quiet(cfg, subset)
    assert torch.load(tmp_path / training.CHECKPOINT, weights_only=True)["optimizer"][
        "param_groups"
    ][0]["lr"] == pytest.approx(0, abs=1e-12)  # a finished cosine run ends at lr 0
    longer = quiet(dataclasses.replace(cfg, epochs=3, resume=True), subset)
    assert [h.epoch for h in longer.history] == [1, 2, 3]
    ckpt = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["scheduler"]["T_max"] == 15
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0, abs=1e-12)

    # from the resumed step on, the learning rate is the 3-epoch cosine's
    model = training.build_model(cfg)
    opt, sched = training.build_optimizer(cfg, model, steps=5)
    for _ in range(5):
        opt.step()
        sched.step()
    training.replan_schedule(sched, 15)
    expected = [SMALL.lr * (1 + math.cos(math.pi * s / 15)) / 2 for s in range(5, 15)]
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx(expected, rel=1e-9)

    with pytest.raises(CheckpointError, match=r"epochs: expected at least the 3 .* got 2"):
        quiet(dataclasses.replace(cfg, epochs=2, resume=True), subset)


def test_empty_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / training.CHECKPOINT).write_bytes(b"")
    assert train.main(["--dry-run", "--out", str(tmp_path), "--resume"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "empty file (0 bytes)" in err
    assert len(err.splitlines()) == 1
    assert (tmp_path / training.CHECKPOINT).read_bytes() == b""  # nothing overwritten


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody may write into: a read-only one, or (root writes anyway) sysfs."""
    if os.geteuid() == 0:
        return Path("/sys/fs/dlconcepts-test")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder / "run"


@pytest.mark.parametrize("kind", ["existing file", "read-only folder"])
def test_a_bad_out_fails_before_training(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "existing file":
        out = tmp_path / "notes.txt"
        out.write_text("keep me")
    else:
        out = unwritable_folder(tmp_path)
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("training started"))
    assert train.main(["--dry-run", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}: expected a folder") and len(err.splitlines()) == 1
    if kind == "existing file":
        assert out.read_text() == "keep me"
    # fit itself checks too, for callers of the library
    with pytest.raises(CheckpointError, match="expected a folder"):
        training.check_writable(out, "checkpoints")


@pytest.mark.parametrize("out", [True, False])
def test_ctrl_c_keeps_the_last_checkpoint_and_exits_130(
    out: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    epochs_started = []
    train_one_epoch = training.train_one_epoch

    def ctrl_c_in_epoch_2(*args, **kwargs):
        epochs_started.append(1)
        if len(epochs_started) == 2:
            raise KeyboardInterrupt
        return train_one_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "train_one_epoch", ctrl_c_in_epoch_2)
    argv = ["--hidden", "16", "--epochs", "2", "--limit-train", "256", "--limit-test", "100"]
    argv += ["--out", str(tmp_path)] if out else []
    assert train.main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if out:
        assert err.strip() == (
            f"interrupted: the last checkpoint (epoch 1) is kept in {tmp_path / 'checkpoint.pt'}"
        )
        assert training.read_checkpoint(tmp_path / training.CHECKPOINT)["epoch"] == 1
    else:
        assert err.strip().startswith("interrupted: no checkpoint was written")


def test_progress_bars_only_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train.main(["--dry-run", "--limit-train", "640", "--limit-test", "100"]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no bar at all
