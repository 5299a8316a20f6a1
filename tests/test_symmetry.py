"""Constant init keeps the hidden units identical, exactly; He init does not."""

import dataclasses

import pytest
import torch

from dlconcepts import data, symmetry
from dlconcepts.train import TrainConfig

CFG = TrainConfig(
    activation="sigmoid",
    hidden=(32,),
    batch_size=64,
    optimizer="sgd",
    lr=0.05,
    schedule="constant",
    device="cpu",
    progress=False,
)


@pytest.fixture(scope="module")
def subset() -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    return data.load_splits(limit_train=2000, limit_test=500)


def test_row_spread_and_distinct_rows() -> None:
    w = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.5, 4.0]])
    assert symmetry.row_spread(w) == 2.0  # |2 - 4| in the second column
    assert symmetry.distinct_rows(w) == 2
    assert symmetry.row_spread(w[:2]) == 0.0


@pytest.mark.parametrize("constant", [0.0, 0.5])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_constant_init_stays_symmetric(subset, act: str, constant: float) -> None:
    cfg = dataclasses.replace(CFG, activation=act, hidden=(32, 16))
    history = symmetry.run_symmetry(cfg, *subset, constant=constant, steps=60, every=20)
    assert [s.step for s in history["constant"]] == [0, 20, 40, 60]
    for s in history["constant"]:
        assert s.weight_spread == 0.0  # exactly, not approximately
        assert s.distinct_units == [1, 1]
        assert s.grad_spread == 0.0
    for s in history["he"]:
        assert s.weight_spread > 0
        assert s.distinct_units == [32, 16]


def test_sigmoid_zero_gradients_are_nonzero_but_equal(subset) -> None:
    history = symmetry.run_symmetry(CFG, *subset, steps=40, every=20)
    last = history["constant"][-1]
    assert last.grad_max > 0 and last.grad_spread == 0.0
    assert last.accuracy < history["he"][-1].accuracy


def test_relu_zero_gradients_are_exactly_zero(subset) -> None:
    cfg = dataclasses.replace(CFG, activation="relu")
    history = symmetry.run_symmetry(cfg, *subset, steps=20, every=20)
    assert history["constant"][-1].grad_max == 0.0
    assert history["constant"][-1].weight_spread == 0.0


def test_dry_run_prints_table_and_explanation(capsys) -> None:
    assert symmetry.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "| 20 | 0 | 1 of 64 | 0 |" in out
    assert "same gradient" in out and "not 0" in out
    assert symmetry.main(["--dry-run", "--activation", "relu", "--constant", "0"]) == 0
    assert "exactly 0 as well" in capsys.readouterr().out
