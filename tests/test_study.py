"""The activation × init grid on real MNIST: zero init is stuck, Xavier and He learn."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from dlconcepts import data, study
from dlconcepts.train import TrainConfig

SMALL = TrainConfig(
    hidden=(64,),
    epochs=2,
    batch_size=64,
    optimizer="sgd",
    lr=0.05,
    schedule="constant",
    device="cpu",
    progress=False,
)


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=4000, limit_test=1000)


@pytest.fixture(scope="module")
def runs(subset) -> dict[tuple[str, str], study.Run]:
    grid = study.run_study(
        SMALL, ["sigmoid", "tanh", "relu"], ["zero", "xavier", "he"], [1], *subset, progress=False
    )
    return {(r.activation, r.init): r for r in grid}


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_zero_init_is_stuck_at_one_class(runs, act: str) -> None:
    run = runs[act, "zero"]
    # f(0) = 0: only the output bias learns, so every image gets the most frequent class
    assert run.final_accuracy < 0.2
    assert run.predicted_classes == 1


def test_sigmoid_zero_init_learns_far_less(runs) -> None:
    # sigmoid(0) = 1/2 lets gradients through, but every layer acts as a single unit
    assert runs["sigmoid", "zero"].final_accuracy < runs["sigmoid", "xavier"].final_accuracy - 0.2


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_xavier_and_he_learn(runs, act: str, scheme: str) -> None:
    run = runs[act, scheme]
    assert run.final_accuracy > 0.85, run.history
    assert run.predicted_classes == 10
    assert len(run.history) == SMALL.epochs


def test_init_options_map_grid_names() -> None:
    assert study.init_options("random-small") == {"init": "random", "init_std": 0.01}
    assert study.init_options("random-large") == {"init": "random", "init_std": 1.0}
    assert study.init_options("he") == {"init": "he"}
    with pytest.raises(ValueError, match="init: expected one of"):
        study.init_options("ones")


def test_a_diverging_run_is_kept_and_reported(subset) -> None:
    huge = dataclasses.replace(SMALL, lr=1e30, epochs=1)
    [run] = study.run_study(huge, ["relu"], ["random-large"], [1], *subset, progress=False)
    assert run.diverged is not None and run.diverged.startswith("cost is")
    assert run.history == []
    table = study.format_table([run], 1)
    assert "| relu | random-large | diverged (seed 1: cost is nan at epoch 1" in table


def test_table_gives_median_and_range_over_seeds() -> None:
    def run(seed: int, acc: float) -> study.Run:
        h = {"epoch": 1, "train_cost": 1.0, "test_cost": 0.5, "test_accuracy": acc, "seconds": 2}
        return study.Run("relu", "he", seed, [h], predicted_classes=10)

    table = study.format_table([run(1, 0.9), run(2, 0.95), run(3, 0.97)], 1)
    assert "| relu | he | 95.00% [90.00%–97.00%] |" in table
    [row] = study.summarize([run(1, 0.9), run(2, 0.95), run(3, 0.97)])
    assert row["final_accuracy"] == {"median": 0.95, "min": 0.9, "max": 0.97}
    assert row["seeds"] == [1, 2, 3] and row["diverged"] == []


def test_dry_run_writes_markdown_and_json(tmp_path: Path, capsys) -> None:
    assert (
        study.main(["--dry-run", "--no-progress", "--inits", "zero,he", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "| relu | he |" in out
    md = (tmp_path / "study.md").read_text()
    assert "`dlconcepts study --dry-run --no-progress --inits zero,he --out" in md
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == 6 and len(results["summary"]) == 6
    first = results["runs"][0]
    assert first["history"][0]["epoch"] == 1 and math.isfinite(first["history"][0]["test_cost"])
    assert results["config"]["optimizer"] == "sgd" and results["config"]["momentum"] == 0.9


def test_dry_run_without_out_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert study.main(["--dry-run", "--no-progress", "--activations", "relu", "--inits", "he"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_bad_options_name_the_value(capsys) -> None:
    with pytest.raises(SystemExit):
        study.main(["--inits", "zero,ones"])
    assert "inits: expected one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        study.main(["--seeds", "1,x"])
    assert "seeds: expected comma-separated ints" in capsys.readouterr().err
