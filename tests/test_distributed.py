"""Data-parallel training (``dlconcepts.distributed``): 2 ranks follow 1 rank's trajectory.

The process group is started once for the module: one launch of 2 gloo processes on
localhost (a ``file://`` rendezvous in a temporary folder) trains every case and saves what
it got; the tests compare that with the same runs in this one process.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlconcepts import data, distributed, training
from dlconcepts.commands import train as train_command
from dlconcepts.training import TrainConfig

SMALL = TrainConfig(
    hidden=(32,),
    epochs=1,
    batch_size=100,
    max_steps=4,
    dtype="float64",
    device="cpu",
    schedule="constant",
    progress=False,
    seed=3,
)
CASES = {
    f"{impl}-{optimizer}": dataclasses.replace(SMALL, impl=impl, optimizer=optimizer, lr=lr)
    for impl in ("custom", "torch")
    for optimizer, lr in (("sgd", 0.05), ("adam", 1e-3))
}
CASES["float32"] = dataclasses.replace(SMALL, dtype="float32")


def splits(cfg: TrainConfig) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=1000, limit_test=500, dtype=training.DTYPES[cfg.dtype])


def quiet(cfg: TrainConfig) -> training.Result:
    return training.fit(cfg, *splits(cfg), log=lambda line: None)


def gloo_threads() -> list[str]:
    """The names of this process's gloo threads (Linux names its threads in /proc)."""
    tasks = Path("/proc/self/task")
    names = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
    return sorted(name for name in names if "gloo" in name)


def two_rank_runs(device: torch.device, folder: Path) -> None:
    """Every case, then a run that diverges and one that a later run resumes, on one group."""
    rank = distributed.current().rank
    for name, cfg in CASES.items():
        result = quiet(cfg)
        if rank == 0:
            torch.save(result.model.state_dict(), folder / f"{name}.pt")
            torch.save(result.test_losses, folder / f"{name}-losses.pt")
    train_set, test_set = splits(SMALL)
    train_set.images[7] = float("nan")  # in one rank's slice of one batch: the other's is fine
    try:
        training.fit(dataclasses.replace(SMALL, max_steps=None), train_set, test_set)
    except training.TrainingDiverged as e:
        (folder / f"diverged-{rank}.txt").write_text(str(e))
    quiet(dataclasses.replace(SMALL, out=str(folder / "resume"), max_steps=None))
    # the group's gloo threads end with it: left to the interpreter's exit, they can abort it
    while_in_group = gloo_threads()
    distributed.stop()
    (folder / f"threads-{rank}.json").write_text(json.dumps([while_in_group, gloo_threads()]))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ddp")
    distributed.launch(2, torch.device("cpu"), two_rank_runs, (folder,))
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_follow_one_rank(two_ranks: Path, name: str) -> None:
    one = quiet(CASES[name])
    two = torch.load(two_ranks / f"{name}.pt", weights_only=True)
    tolerance = 1e-9 if CASES[name].dtype == "float64" else 1e-5
    assert two.keys() == one.model.state_dict().keys()  # no DDP "module." prefix
    for key, value in one.model.state_dict().items():
        torch.testing.assert_close(two[key], value, atol=tolerance, rtol=0)
    losses = torch.load(two_ranks / f"{name}-losses.pt", weights_only=True)
    torch.testing.assert_close(losses, one.test_losses, atol=tolerance, rtol=0)


def test_a_nan_cost_stops_every_rank_at_the_same_step(two_ranks: Path) -> None:
    messages = {(two_ranks / f"diverged-{rank}.txt").read_text() for rank in (0, 1)}
    assert len(messages) == 1 and "at step" in messages.pop()


def test_resume_with_another_nproc_equals_the_uninterrupted_run(two_ranks: Path) -> None:
    out = two_ranks / "resume"
    metrics = training.json.loads((out / training.METRICS).read_text())
    assert (metrics["world_size"], metrics["backend"]) == (2, "gloo")
    longer = dataclasses.replace(SMALL, max_steps=None, epochs=2)
    lines: list[str] = []
    resumed = training.fit(
        dataclasses.replace(longer, out=str(out), resume=True), *splits(longer), log=lines.append
    )
    assert any("after epoch 1" in line for line in lines), lines  # resumed, not started over
    uninterrupted = quiet(longer)
    for key, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=1e-9, rtol=0)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("rank", [0, 1])
def test_leaving_the_group_ends_its_threads(two_ranks: Path, rank: int) -> None:
    while_in_group, after = json.loads((two_ranks / f"threads-{rank}.json").read_text())
    assert while_in_group, "the check must see the group's threads while it runs"
    assert after == [], f"threads left after destroy_process_group: {after}"


def test_every_batch_must_split_evenly() -> None:
    world = distributed.World(0, 2, "gloo")
    with pytest.raises(ValueError, match="batch_size: expected a multiple of the 2 processes"):
        distributed.check_even_split(1000, 99, world)
    with pytest.raises(ValueError, match=r"limit_train: .*last partial batch \(5 of 100\)"):
        distributed.check_even_split(1005, 100, world)
    distributed.check_even_split(1010, 100, world)  # a last batch of 10: 5 each


def test_rank_slices_are_disjoint_and_cover_the_batch() -> None:
    x, y = torch.arange(12.0).reshape(6, 2), torch.arange(6)
    slices = [
        next(distributed.rank_slice([(x, y)], distributed.World(rank, 3))) for rank in range(3)
    ]
    assert torch.equal(torch.cat([s[0] for s in slices]), x)
    assert torch.equal(torch.cat([s[1] for s in slices]), y)


def fail_on_rank_1(device: torch.device, how: str) -> None:
    if distributed.current().rank == 1:
        if how == "raise":
            raise RuntimeError("boom")
        os.kill(os.getpid(), signal.SIGKILL)
    torch.distributed.barrier()  # rank 0 waits for a rank that never comes


@pytest.mark.parametrize(
    ("how", "message"),
    [("raise", "rank 1 raised RuntimeError: boom"), ("die", "rank 1 died (signal SIGKILL)")],
)
def test_a_failed_worker_ends_the_run_in_bounded_time(how: str, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(distributed.WorkerFailed) as failed:
        distributed.launch(2, torch.device("cpu"), fail_on_rank_1, (how,))
    assert str(failed.value) == message
    assert time.perf_counter() - t0 < 30


def stall_on_rank_1(device: torch.device) -> None:
    if distributed.current().rank == 1:
        time.sleep(60)  # alive, but never joins the all-reduce
    distributed.mean_over_ranks(torch.ones(1))


def test_a_stalled_peer_times_out_instead_of_hanging() -> None:
    t0 = time.perf_counter()
    with pytest.raises(distributed.WorkerFailed) as failed:
        distributed.launch(
            2, torch.device("cpu"), stall_on_rank_1, (), timeout=datetime.timedelta(seconds=2)
        )
    message = str(
        failed.value
    )  # rank 0 raised RuntimeError: [...gloo...] Timed out waiting 2000ms ...
    assert message.startswith("rank 0 raised") and "Timed out" in message, message
    assert 2 <= time.perf_counter() - t0 < 30


def test_cli_nproc_2_equals_one_process_and_refuses_an_uneven_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = dataclasses.replace(SMALL, hidden=(16,), optimizer="sgd", lr=0.05, max_steps=None)
    cfg = dataclasses.replace(cfg, limit_train=400, limit_test=100)  # the 1-process reference
    common = [sys.executable, "-m", "dlconcepts", "train", "--dtype", "float64", "--hidden", "16"]
    common += ["--epochs", "1", "--limit-train", "400", "--limit-test", "100", "--seed", "3"]
    common += ["--optimizer", "sgd", "--lr", "0.05", "--schedule", "constant", "--device", "cpu"]
    run = [*common, "--batch-size", "100", "--nproc", "2", "--out", str(tmp_path)]
    subprocess.run(run, check=True, timeout=120, capture_output=True)
    two = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)["model"]
    one = training.fit(cfg, *data.load_splits(limit_train=400, limit_test=100, dtype=torch.float64))
    for key, value in one.model.state_dict().items():
        torch.testing.assert_close(two[key], value, atol=1e-9, rtol=0)
    # the 2-process checkpoint, resumed for a second epoch in 1 process, as the CLI does it
    options = [*common[4:], "--batch-size", "100", "--out", str(tmp_path), "--resume"]
    options[options.index("--epochs") + 1] = "2"
    assert train_command.main([*options, "--nproc", "1"]) == 0
    assert "after epoch 1" in capsys.readouterr().out  # resumed, not started over
    resumed = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)["model"]
    splits = data.load_splits(limit_train=400, limit_test=100, dtype=torch.float64)
    uninterrupted = training.fit(dataclasses.replace(cfg, epochs=2), *splits)
    for key, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed[key], value, atol=1e-9, rtol=0)
    uneven = subprocess.run(
        [*common, "--batch-size", "99", "--nproc", "2"], capture_output=True, text=True, timeout=120
    )
    assert uneven.returncode == 1  # refused before any process starts: one line, no rank
    assert uneven.stderr.strip() == (
        "error: --batch-size: expected a multiple of the 2 processes (--nproc), got 99"
    )


def processes_in_group(group: int) -> list[int]:
    """The processes whose process group is ``group`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")
def test_ctrl_c_stops_every_worker_and_says_so_in_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "dlconcepts", "train", "--nproc", "2", "--hidden", "16"]
    command += ["--epochs", "100", "--limit-train", "2000", "--limit-test", "100"]
    command += ["--device", "cpu", "--out", str(tmp_path)]
    # a session of its own: Ctrl-C in a terminal signals the whole foreground group
    run = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    checkpoint = tmp_path / training.CHECKPOINT
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.poll() is None, "the run ended before it was interrupted"
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 130
    assert re.fullmatch(
        r"interrupted: the last checkpoint \(epoch \d+\) is kept in .+", stderr.strip()
    )
    deadline = time.monotonic() + 10
    while processes_in_group(run.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in_group(run.pid) == []
    assert "model" in torch.load(checkpoint, weights_only=True)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices for NCCL")
def test_nccl_two_gpus_follow_one(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CASES["custom-sgd"], device="cuda")
    distributed.launch(2, torch.device("cuda"), two_rank_runs, (tmp_path,))
    assert (tmp_path / "custom-sgd.pt").is_file() and quiet(cfg).history
