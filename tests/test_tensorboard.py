"""``dlconcepts train --tensorboard DIR``: the event files hold the costs, accuracy, learning
rate and per-layer histograms at the run's global step, which a resumed run continues."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from dlconcepts import data, training
from dlconcepts.commands import train

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the tensorboard extra is not installed",
)

# 640 examples in batches of 64: 10 steps an epoch; step scalars every 4 steps
CFG = training.TrainConfig(hidden=(16,), epochs=2, batch_size=64, progress=False, device="cpu")
EVERY = 4


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=640, limit_test=200)


def run(cfg: training.TrainConfig, subset, folder: Path) -> None:
    log = train.TensorBoardLog(folder, EVERY)
    training.fit(cfg, *subset, log=lambda line: None, callbacks=[log])


def read(folder: Path) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(
        str(folder), size_guidance={"scalars": 0, "histograms": 0}
    )
    return events.Reload()


def steps(events: event_accumulator.EventAccumulator, kind: str, tag: str) -> list[int]:
    return [e.step for e in getattr(events, kind)(tag)]


def assert_two_epochs_logged(events: event_accumulator.EventAccumulator) -> None:
    for what in ("train_cost", "test_cost", "test_accuracy", "lr"):
        assert steps(events, "Scalars", f"epoch/{what}") == [10, 20], what
        assert steps(events, "Scalars", f"step/{what}") == [4, 8, 14, 18], what
    for tag in (
        "pre-activations/hidden1",
        "activations/act1",
        "pre-activations/output",
        "weights/hidden1.weight",
        "weights/output.bias",
        "gradients/hidden1.weight",
        "gradients/output.weight",
    ):
        assert steps(events, "Histograms", tag) == [0, 10, 20], tag
    accuracy = [e.value for e in events.Scalars("epoch/test_accuracy")]
    assert all(0 <= a <= 1 for a in accuracy)
    assert events.Scalars("epoch/lr")[-1].value == pytest.approx(0, abs=1e-9)  # cosine ends at 0


def test_event_file_holds_scalars_and_histograms(subset, tmp_path: Path) -> None:
    run(CFG, subset, tmp_path)
    assert_two_epochs_logged(read(tmp_path))


def test_resumed_run_continues_the_global_step(subset, tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, out=str(tmp_path / "out"))

    def interrupt_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise KeyboardInterrupt

    log = train.TensorBoardLog(tmp_path / "tb", EVERY)
    with pytest.raises(KeyboardInterrupt):
        training.fit(cfg, *subset, log=interrupt_after_epoch_1, callbacks=[log])
    run(dataclasses.replace(cfg, resume=True), subset, tmp_path / "tb")
    assert_two_epochs_logged(read(tmp_path / "tb"))


def test_cli_logs_a_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--dry-run", "--limit-train", "640", "--limit-test", "100", "--log-every", "2"]
    argv += ["--tensorboard", str(tmp_path)]
    assert train.main(argv) == 0
    events = read(tmp_path)
    assert steps(events, "Scalars", "step/test_cost") == [2, 4]
    assert steps(events, "Histograms", "weights/hidden1.weight") == [0, 5]


def test_without_tensorboard_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        train.main(["--dry-run", "--tensorboard", str(tmp_path)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --tensorboard:") and "pip install" in err
    assert len(err.splitlines()) == 1 and not any(tmp_path.iterdir())
