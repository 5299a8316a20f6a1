"""The activation × init grid on real MNIST, its table, and the `dlconcepts study` command."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
from command_line import assert_refused, no_cuda

from dlconcepts import data, experiments
from dlconcepts.commands import _common, study
from dlconcepts.experiments import Run

SMALL = dataclasses.replace(experiments.STUDY, hidden=(64,), epochs=2, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=4000, limit_test=1000)


def inits(*names: str) -> dict[str, dict]:
    return {name: _common.INITS[name] for name in names}


def test_xavier_and_he_learn_in_grid_order(subset) -> None:
    runs = experiments.run_study(
        SMALL, ["tanh", "relu"], inits("xavier", "he"), [1], *subset, progress=False
    )
    assert [(r.activation, r.init) for r in runs] == [
        ("tanh", "xavier"),
        ("tanh", "he"),
        ("relu", "xavier"),
        ("relu", "he"),
    ]
    for run in runs:
        assert run.final_accuracy > 0.85, (run.activation, run.init, run.history)
        assert run.predicted_classes == 10
        assert [h["epoch"] for h in run.history] == [1, 2]


def test_a_diverging_run_is_kept_and_reported(subset) -> None:
    huge = dataclasses.replace(SMALL, lr=1e30, epochs=1)
    [run] = experiments.run_study(
        huge, ["relu"], inits("random-large"), [1], *subset, progress=False
    )
    assert run.diverged is not None and run.diverged.startswith("cost is")
    assert run.history == []
    assert "| relu | random-large | diverged (seed 1: cost is" in study.format_table([run], 1)


def test_table_gives_median_and_range_over_seeds() -> None:
    def run(seed: int, acc: float) -> Run:
        h = {"epoch": 1, "train_cost": 1.0, "test_cost": 0.5, "test_accuracy": acc, "seconds": 2}
        return Run("relu", "he", seed, [h], predicted_classes=10)

    runs = [run(1, 0.9), run(2, 0.95), run(3, 0.97)]
    assert "| relu | he | 95.00% [90.00%–97.00%] |" in study.format_table(runs, 1)
    [row] = study.summarize(runs)
    assert row["final_accuracy"] == {"median": 0.95, "min": 0.9, "max": 0.97}
    assert row["seeds"] == [1, 2, 3] and row["diverged"] == []


def test_dry_run_writes_into_runs_study_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--dry-run", "--no-progress", "--activations", "relu", "--inits", "zero,he"]
    assert study.main(argv) == 0
    out = capsys.readouterr().out
    assert "| relu | he |" in out
    assert "wrote runs/study/study.md and runs/study/results.json" in out
    folder = tmp_path / "runs" / "study"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "results.json",
        "study.md",
    ]
    assert (
        "`dlconcepts study --dry-run --no-progress --activations relu"
        in (folder / "study.md").read_text()
    )
    results = json.loads((folder / "results.json").read_text())
    assert len(results["runs"]) == 2 and len(results["summary"]) == 2
    first = results["runs"][0]
    assert first["history"][0]["epoch"] == 1 and math.isfinite(first["history"][0]["test_cost"])
    assert results["config"]["optimizer"] == "sgd" and results["config"]["momentum"] == 0.9


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--activations", "relu,swish"], "'swish'"),
        (["--inits", "zero,ones"], "'ones'"),
        (["--seeds", "1,x"], "'1,x'"),
        (["--hidden", "abc"], "'abc'"),
        (["--epochs", "0"], "'0'"),
        (["--batch-size", "-1"], "'-1'"),
        (["--optimizer", "rmsprop"], "'rmsprop'"),
        (["--lr", "nan"], "'nan'"),
        (["--momentum", "-1"], "'-1'"),
        (["--limit-train", "0"], "'0'"),
        (["--limit-test", "x"], "'x'"),
        (["--limit-train", "70000", "--inits", "he"], "70000"),  # more than the data holds
        (["--optimizer", "adam", "--lr", "1e38"], "1e+38"),  # Adam's first step is 10·lr
        pytest.param(["--device", "cuda"], "'cuda'", marks=no_cuda),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(study.main, argv, bad, capsys)


@pytest.mark.parametrize("flag", ["--out"])
def test_an_out_inside_a_file_is_refused_before_any_training(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(experiments, "run_study", no_training)
    (tmp_path / "file").write_text("")
    argv = ["--dry-run", flag, str(tmp_path / "file" / "study")]
    assert_refused(study.main, argv, "is a file, not a folder", capsys)


def test_the_reading_of_the_table_is_the_run_s_own(tmp_path: Path) -> None:
    """study.md says what its own network does: nothing measured by another run."""
    meta = {
        "command": "dlconcepts study --hidden 100",
        "date": "today",
        "torch_version": "x",
        "device": "cpu",
        "threads": 1,
        "wall_seconds": 1.0,
        "train_examples": 1000,
        "test_examples": 1000,
        "seeds": [1],
        "config": {**dataclasses.asdict(SMALL), "hidden": [100]},
    }
    study.write_markdown(tmp_path / "study.md", "| table |", meta)
    text = (tmp_path / "study.md").read_text()
    assert "784-1-10 network" in text and "fan_in itself (784, 100)" in text
    assert "0.078, 0.01 for this network" in text
    assert "256" not in text.split("| table |")[1]  # the default network's sizes are not there
