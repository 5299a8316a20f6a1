"""Constant init keeps the hidden units identical, exactly; He init does not.

This is the one zero-init test on MNIST; the fast one, on random data, is in test_layers.py.
"""

import re

import pytest
import torch
from command_line import assert_refused, no_cuda

from dlconcepts import data, training
from dlconcepts.commands import symmetry
from dlconcepts.training import TrainConfig

CFG = TrainConfig(
    activation="sigmoid",
    hidden=(32, 16),
    batch_size=64,
    optimizer="sgd",
    lr=0.05,
    schedule="constant",
    device="cpu",
    progress=False,
)


def test_row_spread_and_distinct_rows() -> None:
    w = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.5, 4.0]])
    assert symmetry.row_spread(w) == 2.0  # |2 - 4| in the second column
    assert symmetry.distinct_rows(w) == 2
    assert symmetry.row_spread(w[:2]) == 0.0


def test_zero_init_units_stay_identical_on_mnist() -> None:
    subset = data.load_splits(limit_train=2000, limit_test=500)
    history = symmetry.run_symmetry(CFG, *subset, steps=40, every=20)
    assert [s.step for s in history["constant"]] == [0, 20, 40]
    for s in history["constant"]:
        assert s.weight_spread == 0.0  # exactly, not approximately
        assert s.distinct_units == [1, 1]
        assert s.grad_spread == 0.0
    # sigmoid(0) = 1/2: the gradients are not 0, the units all move, and together
    assert history["constant"][-1].grad_max > 0
    for s in history["he"]:
        assert s.weight_spread > 0
        assert s.distinct_units == [32, 16]
    assert history["constant"][-1].accuracy < history["he"][-1].accuracy


def test_dry_run_prints_table_and_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    assert symmetry.main(["--dry-run", "--activation", "tanh", "--constant", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| step | const 0.5: Δ rows of W |" in out
    assert "| 5 | 0 | 1 of 64 |" in out  # a row for each dry-run step
    assert "every weight = 0.5" in out and "same gradient" in out


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--steps", "0"], "'0'"),
        (["--every", "-5"], "'-5'"),
        (["--constant", "nan"], "'nan'"),
        (["--activation", "swish"], "'swish'"),
        (["--hidden", "64,0"], "'64,0'"),
        (["--batch-size", "0"], "'0'"),
        (["--lr", "0"], "'0'"),
        (["--lr", "1e39"], "'1e39'"),  # beyond float32
        (["--constant", "1e300"], "'1e300'"),  # beyond float32
        (["--hidden", "100000000"], "79,500,000,010 parameters in each of 2 models"),
        (["--seed", "1.5"], "'1.5'"),
        (["--limit-train", "0"], "'0'"),
        (["--limit-test", "100000"], "--limit-test: expected an int from 1 to 10000"),
        (["--steps", "100000000"], "--steps: expected an int from 1 to 10000, got"),
        (["--hidden", "100000000,1"], "--hidden: expected an MLP that fits in memory"),
        pytest.param(["--device", "cuda"], "'cuda'", marks=no_cuda),
        (["--device", "tpu"], "'tpu'"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(symmetry.main, argv, bad, capsys)


def test_a_diverging_run_is_an_error_not_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert symmetry.main(["--dry-run", "--lr", "1e30"]) == 1
    captured = capsys.readouterr()
    assert "| step |" not in captured.out  # no table of NaN weights
    assert re.fullmatch(
        r"error: the constant copy's cost is (nan|inf|-inf) at step \d+: "
        r"try a smaller --constant or --lr",
        captured.err.strip(),
    ), captured.err


def test_when_the_he_copy_diverges_the_hint_is_the_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """He init is fixed: a smaller --constant cannot help its copy."""

    def diverges(*args: object, **kwargs: object) -> None:
        raise training.TrainingDiverged("the he copy's cost is nan at step 2")

    monkeypatch.setattr(symmetry, "run_symmetry", diverges)
    assert symmetry.main(["--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: the he copy's cost is nan at step 2: try a smaller --lr", err
