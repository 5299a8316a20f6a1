"""Training on real MNIST: it learns, it resumes exactly, it fails loudly and keeps what it had."""

import dataclasses
import itertools
import json
import math
import os
import re
import stat
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from command_line import assert_refused

from dlconcepts import choices, data, distributed, training
from dlconcepts.commands import _common, train
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


# --- the edges of `dlconcepts train`: one line, a non-zero exit, nothing lost -------------

TINY = ["--dry-run", "--no-progress", "--hidden", "16", "--limit-train", "256"]
TINY += ["--limit-test", "100"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_another_runs_out_folder_is_refused_without_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train.main([*TINY, "--out", str(tmp_path)]) == 0
    before = (tmp_path / training.CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert train.main([*TINY, "--out", str(tmp_path), "--seed", "2"]) == 1
    err = one_error_line(capsys)
    assert str(tmp_path) in err and "--resume" in err and "another --out" in err
    assert (tmp_path / training.CHECKPOINT).read_bytes() == before  # not overwritten
    with pytest.raises(CheckpointError, match=r"another run's checkpoint\.pt"):  # the library too
        training.fit(
            dataclasses.replace(SMALL, out=str(tmp_path)),
            *data.load_splits(limit_train=64, limit_test=10),
        )


def test_an_empty_out_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(train.main, [*TINY, "--out", ""], "--out: expected a folder name", capsys)


def test_a_failed_resume_creates_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run"
    assert train.main([*TINY, "--out", str(out), "--resume"]) == 1
    assert "no such file" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_before_its_first_checkpoint_creates_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run"
    assert train.main([*TINY, "--out", str(out), "--optimizer", "sgd", "--lr", "1e30"]) == 1
    assert "cost is" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_path_inside_a_file_is_not_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    out = tmp_path / "notes.txt" / "run"
    assert train.main([*TINY, "--out", str(out)]) == 1
    err = one_error_line(capsys)
    assert "Not a directory" in err and "File exists" not in err
    for path in (tmp_path / "notes.txt" / "x.json", tmp_path / "notes.txt" / "a" / "x.json"):
        with pytest.raises(NotADirectoryError, match="Not a directory"):  # mkdir: File exists
            training.write_json(path, {})
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_float_max_is_torchs() -> None:
    for name, dtype in training.DTYPES.items():
        assert choices.FLOAT_MAX[name] == torch.finfo(dtype).max, name


def test_the_library_bounds_numbers_by_the_runs_dtype() -> None:
    with pytest.raises(ValueError, match=r"lr: expected at most 1\.8e\+307, so that Adam's"):
        TrainConfig(dtype="float64", lr=1e308)
    TrainConfig(dtype="float64", optimizer="sgd", lr=1e308)  # a float64 number: it diverges
    with pytest.raises(ValueError, match=r"lr: expected at most 3\.4e\+38, the largest float32"):
        TrainConfig(optimizer="sgd", lr=1e39)


@pytest.mark.parametrize(
    "argv, bad",
    [
        # beyond float32: refused by the option itself, for either dtype
        (["--lr", "1e308"], "'1e308'"),
        (["--dtype", "float64", "--lr", "1e308"], "'1e308'"),
        (["--init", "random", "--init-std", "1e300"], "'1e300'"),
        (["--momentum", "1e300"], "'1e300'"),
        # within float32, but not what the optimizer makes of it
        (["--lr", "1e38"], "lr: expected at most 3.4e+37"),  # Adam's first step: 10·lr
        (["--lr", "2", "--weight-decay", "2e38"], "--weight-decay: expected at most 1.7e+38"),
        (["--amp", "--dtype", "float64"], "amp: expected dtype float32"),
    ],
)
def test_a_number_the_dtype_cannot_hold_is_refused_up_front(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(train.main, [*TINY, *argv], bad, capsys)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_largest_lr_allowed_is_one_torch_can_step_with(optimizer: str) -> None:
    """The largest lr TrainConfig takes converts in the first step (the cost then diverges:
    an error, not a crash); the next float up is refused, and torch would fail on it."""
    cfg = dataclasses.replace(SMALL, hidden=(4,), optimizer=optimizer)
    lr = choices.FLOAT_MAX["float32"] * (1 - choices.ADAM_BETA1 if optimizer == "adam" else 1)
    while True:
        try:
            cfg = dataclasses.replace(cfg, lr=lr)
            break
        except ValueError:
            lr = math.nextafter(lr, 0)
    with pytest.raises(ValueError, match="lr: expected at most"):
        dataclasses.replace(cfg, lr=math.nextafter(lr, math.inf))
    batch = (torch.randn(4, 784), torch.randint(0, 10, (4,)))
    for step_lr, fails in ((lr, False), (math.nextafter(lr, math.inf), True)):
        model = training.build_model(cfg)
        opt, sched = training.build_optimizer(cfg, model, steps=1)
        for group in opt.param_groups:
            group["lr"] = step_lr
        if fails:
            with pytest.raises(RuntimeError, match="overflow"):
                training.train_one_epoch(model, [batch], opt, sched, F.cross_entropy)
        else:
            training.train_one_epoch(model, [batch], opt, sched, F.cross_entropy)


def test_a_model_beyond_memory_is_refused_before_anything_is_allocated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_common, "load_splits", lambda **k: pytest.fail("data loaded"))
    assert train.main([*TINY, "--hidden", "100000000"]) == 1
    err = one_error_line(capsys)
    assert "784-100000000-10: 79,500,000,010 parameters" in err and "GB free" in err
    cfg = dataclasses.replace(SMALL, hidden=(100_000_000,))
    assert training.memory_needed(cfg) >= 79_500_000_010 * 4 * 4  # weights, grads, Adam's 2


def test_a_containers_memory_cap_counts(tmp_path: Path) -> None:
    assert training._cgroup_free(tmp_path) is None  # no cgroup v2 files: no cap known
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("400\n")
    assert training._cgroup_free(tmp_path) is None  # uncapped
    (tmp_path / "memory.max").write_text("1000\n")
    assert training._cgroup_free(tmp_path) == 600


def test_an_allocation_failure_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 318000000040 bytes. Error code 12\nmore lines"
        )

    monkeypatch.setattr(training, "fit", fail)
    assert train.main(TINY) == 1
    assert "error: out of memory: [enforce fail" in one_error_line(capsys)

    def bug(*args, **kwargs):
        raise RuntimeError("a bug stays a traceback")

    monkeypatch.setattr(training, "fit", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        train.main(TINY)


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--nproc", "64"], "--nproc: expected at most the 2 CPU cores here, got 64"),
        (["--nproc", "2", "--batch-size", "99"], "--batch-size: expected a multiple of the 2"),
        (
            ["--nproc", "2", "--batch-size", "100", "--limit-train", "905"],
            "last partial batch (5 of 100)",
        ),
    ],
)
def test_nproc_is_checked_before_any_process_starts(
    argv: list[str], bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(train, "available_processes", lambda device: (2, "CPU cores"))
    monkeypatch.setattr(distributed, "launch", lambda *a: pytest.fail("processes started"))
    monkeypatch.setattr(_common, "load_splits", lambda **k: pytest.fail("data loaded"))
    assert train.main([*TINY, *argv]) == 1
    assert bad in one_error_line(capsys)


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert train.main([*TINY, "--out", str(tmp_path / "run")]) == 0
        _common.write_json(tmp_path / "rows.json", [1])
        os.umask(0o077)
        _common.write_json(tmp_path / "private.json", [1])
    finally:
        os.umask(old)
    for name in ("run/metrics.json", "run/checkpoint.pt", "rows.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


# --- mixed precision and compilation ---------------------------------------------------


@pytest.mark.parametrize("impl", ["torch", "custom"])
def test_amp_trains_records_and_resumes(
    impl: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--no-progress", "--hidden", "16", "--limit-train", "256", "--limit-test", "100"]
    argv += ["--impl", impl, "--epochs", "1", "--out", str(tmp_path)]
    assert train.main([*argv, "--amp"]) == 0
    assert "bfloat16 autocast" in capsys.readouterr().out
    metrics = json.loads((tmp_path / training.METRICS).read_text())
    assert metrics["config"]["amp"] is True and metrics["precision"] == "bfloat16 autocast"
    assert train.main([*argv, "--amp", "--epochs", "2", "--resume"]) == 0
    assert "after epoch 1" in capsys.readouterr().out
    assert training.read_checkpoint(tmp_path / training.CHECKPOINT)["epoch"] == 2
    assert train.main([*argv, "--epochs", "3", "--resume"]) == 1  # in another precision
    assert "amp=True" in one_error_line(capsys)


@pytest.mark.parametrize("impl", ["torch", "custom"])
def test_amp_keeps_the_trajectory_close_to_float32(impl: str, subset) -> None:
    cfg = dataclasses.replace(SMALL, impl=impl, epochs=1, max_steps=30)
    full, amp = quiet(cfg, subset), quiet(dataclasses.replace(cfg, amp=True), subset)
    assert amp.history[0].train_cost == pytest.approx(full.history[0].train_cost, rel=0.05)
    assert abs(amp.test_accuracy - full.test_accuracy) <= 0.02


# the scheduler steps on a step the scaler skipped, as it should: the schedule counts steps
@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler\.step\(\)`:UserWarning")
def test_the_nan_guard_leaves_the_gradient_scalers_skipped_steps_alone() -> None:
    """A float16 gradient scaler skips a step whose gradient overflowed (the cost was
    finite): that is no divergence. A cost that is not finite still is."""

    def finite_cost_bad_gradient(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # + √0 = + 0, whose gradient is inf·0 = nan: what an overflow looks like to the scaler
        return F.cross_entropy(logits, y) + (logits[0, 0] * 0).sqrt()

    cfg = dataclasses.replace(SMALL, hidden=(8,), optimizer="sgd", momentum=0.0)
    model = training.build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt, sched = training.build_optimizer(cfg, model, steps=2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    precision = training.Precision("cpu", scaler=scaler)
    batch = (torch.randn(8, 784), torch.randint(0, 10, (8,)))
    costs = training.train_one_epoch(
        model, [batch], opt, sched, finite_cost_bad_gradient, precision=precision
    )
    assert training.checked_costs(costs)  # finite: no TrainingDiverged
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name  # the scaler skipped the step...
    assert scaler.get_scale() == 512.0  # ...and halved its scale
    nan_batch = (torch.full((8, 784), float("nan")), batch[1])
    costs = training.train_one_epoch(
        model, [nan_batch], opt, sched, F.cross_entropy, precision=precision
    )
    with pytest.raises(TrainingDiverged, match="cost is nan at step 1"):
        training.checked_costs(costs)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["torch", "custom"])
def test_compile_gives_the_eager_result_and_times_the_compilation_apart(
    impl: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*TINY, "--impl", impl, "--optimizer", "sgd", "--lr", "0.05"]
    assert train.main([*argv, "--out", str(tmp_path / "eager")]) == 0
    assert train.main([*argv, "--out", str(tmp_path / "compiled"), "--compile"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"compiled the training step in \d+\.\d s \(before epoch 1\)", out), out
    eager, compiled = (
        json.loads((tmp_path / name / training.METRICS).read_text())
        for name in ("eager", "compiled")
    )
    assert compiled["compile_seconds"] > 0 and eager["compile_seconds"] is None
    assert compiled["epochs"][0]["train_cost"] == pytest.approx(
        eager["epochs"][0]["train_cost"], rel=1e-4
    )
    assert abs(compiled["test_accuracy"] - eager["test_accuracy"]) <= 0.01


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler\.step\(\)`:UserWarning")
def test_a_gradient_scalers_state_is_checkpointed_and_resumed(
    subset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """float16 --amp (older GPUs) keeps the scale the scaler has learned across a resume:
    here the same path on the CPU, with float16 autocast and a CPU scaler."""

    def float16_with_a_scaler(amp: bool, device: torch.device) -> training.Precision:
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20, growth_interval=3)
        return (
            training.Precision("cpu", torch.float16, scaler) if amp else training.Precision("cpu")
        )

    monkeypatch.setattr(training, "precision_for", float16_with_a_scaler)
    cfg = dataclasses.replace(SMALL, impl="torch", amp=True, epochs=2, max_steps=4)
    full = quiet(dataclasses.replace(cfg, out=str(tmp_path / "full")), subset)
    cut = dataclasses.replace(cfg, out=str(tmp_path / "cut"))

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quiet(cut, subset, log=interrupt_after_epoch_1)
    scale = training.read_checkpoint(tmp_path / "cut" / training.CHECKPOINT)["scaler"]["scale"]
    assert scale != 2.0**20  # it grew (or backed off): there is state to keep
    resumed = quiet(dataclasses.replace(cut, resume=True), subset)
    assert [h.epoch for h in resumed.history] == [1, 2]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    ends = [
        training.read_checkpoint(tmp_path / run / training.CHECKPOINT)["scaler"]
        for run in ("full", "cut")
    ]
    assert ends[0] == ends[1]
