"""Custom pieces and PyTorch's, trained in lockstep on real MNIST, follow the same trajectory."""

import dataclasses
import re

import pytest
import torch
from command_line import assert_refused

from dlconcepts import data, training
from dlconcepts.commands import compare

BASE = training.TrainConfig(
    hidden=(32, 16),
    epochs=1,
    batch_size=64,
    optimizer="sgd",
    lr=0.05,
    schedule="constant",
    progress=False,
    device="cpu",
)


@pytest.fixture(scope="module")
def subsets() -> dict[str, tuple[data.InMemoryDataset, data.InMemoryDataset]]:
    return {
        name: data.load_splits(dtype=dtype, limit_train=1280, limit_test=500)
        for name, dtype in (("float32", torch.float32), ("float64", torch.float64))
    }


# float64: the two implementations agree to rounding of rounding; float32: to float rounding
TOLERANCE = {"float64": (1e-12, 1e-12), "float32": (1e-5, 1e-5)}


# a few pairs, each activation and each init at least once, in both dtypes
@pytest.mark.parametrize(
    "act, scheme, dtype",
    [
        ("relu", "he", "float32"),
        ("tanh", "xavier", "float32"),
        ("sigmoid", "random", "float64"),
        ("relu", "zero", "float64"),
    ],
)
def test_trajectories_agree(act: str, scheme: str, dtype: str, subsets) -> None:
    cfg = dataclasses.replace(BASE, activation=act, init=scheme, dtype=dtype)
    r = compare.compare_pair(cfg, *subsets[dtype])
    cost_tol, weight_tol = TOLERANCE[dtype]
    assert r.steps == 20
    assert r.max_cost_diff <= cost_tol, r
    assert r.max_weight_diff <= weight_tol, r
    assert abs(r.accuracy_custom - r.accuracy_torch) <= 0.002, r


def test_hand_written_linear_and_relu_match_bit_for_bit(subsets) -> None:
    """With the same cost function, custom Linear + ReLU train bit-identically to torch.nn's.

    (The full custom model differs by float rounding because our cross-entropy rounds
    differently from PyTorch's fused log_softmax + nll_loss kernels.)"""
    cfg = dataclasses.replace(BASE, activation="relu", init="he", dtype="float32")
    train_set = subsets["float32"][0]
    models = [
        training.build_model(dataclasses.replace(cfg, impl=impl)) for impl in ("custom", "torch")
    ]
    for model in models:
        opt, sched = training.build_optimizer(cfg, model, steps=20)
        batches = train_set.batches(64, generator=training.epoch_generator(cfg.seed, 1))
        # F.cross_entropy for both
        training.train_one_epoch(model, batches, opt, sched, training.cost_fn("torch"))
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), f"{name}: max diff {(a - b).abs().max()}"


def test_compare_dry_run_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--dry-run", "--dtypes", "float32", "--activations", "tanh,relu", "--inits", "zero,he"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert "784-256-128-10" in out and "5 steps each" in out
    assert out.count("| float32 |") == 4
    for act in ("tanh", "relu"):
        for scheme in ("zero", "he"):
            assert f"| {act} | {scheme} |" in out


def test_a_diverging_pair_is_an_error_not_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--dry-run", "--dtypes", "float32", "--activations", "relu", "--inits", "he"]
    assert compare.main([*argv, "--lr", "1e30"]) == 1
    captured = capsys.readouterr()
    assert "| relu |" not in captured.out  # no table of NaN costs
    assert re.fullmatch(
        r"error: relu \+ he init, float32: cost is (nan|inf|-inf) at step \d of epoch 1; "
        r"try a smaller --lr",
        captured.err.strip(),
    ), captured.err


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--lr", "1e39"], "'1e39'"),  # beyond float32
        (["--optimizer", "adam", "--lr", "1e38"], "1e+38"),  # Adam's first step is 10·lr
        (["--dtypes", "float64,float32", "--optimizer", "adam", "--lr", "1e38"], "1e+38"),
        (["--hidden", "100000000"], "79,500,000,010 parameters in each of 2 models"),
    ],
)
def test_a_number_beyond_the_dtype_is_refused(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(compare.main, ["--dry-run", *argv], bad, capsys)
