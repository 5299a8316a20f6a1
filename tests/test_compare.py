"""Custom pieces and PyTorch's, trained in lockstep on real MNIST, follow the same trajectory."""

import dataclasses
import itertools

import pytest
import torch

from dlconcepts import activations, compare, data, init
from dlconcepts.train import TrainConfig, build_model, build_optimizer, epoch_generator, train_steps

PAIRS = list(itertools.product(activations.ACTIVATIONS, init.SCHEMES))
BASE = TrainConfig(
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act, scheme", PAIRS, ids=[f"{a}-{s}" for a, s in PAIRS])
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
        build_model(dataclasses.replace(cfg, impl=impl), torch.device("cpu"))
        for impl in ("custom", "torch")
    ]
    for model in models:
        opt, sched = build_optimizer(cfg, model, 20)
        batches = train_set.batches(64, generator=epoch_generator(cfg.seed, 1))
        for _ in train_steps(model, batches, opt, sched, "torch", 1):  # F.cross_entropy for both
            pass
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), f"{name}: max diff {(a - b).abs().max()}"


def test_compare_dry_run_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert compare.main(["--dry-run", "--dtypes", "float32"]) == 0
    out = capsys.readouterr().out
    assert out.count("| float32 |") == 12
    for act, scheme in PAIRS:
        assert f"| {act} | {scheme} |" in out
