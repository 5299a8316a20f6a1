"""Loss vs cost: per-example losses (reduction='none'), their mean is the cost."""

import pytest
import torch
import torch.nn.functional as F

from dlconcepts.losses import TargetError, cross_entropy, mse_loss, softmax


def test_cost_is_the_mean_of_the_losses() -> None:
    logits = torch.randn(32, 10, dtype=torch.float64)
    target = torch.randint(0, 10, (32,))
    losses = cross_entropy(logits, target, reduction="none")
    assert losses.shape == (32,)  # one loss per example
    cost = cross_entropy(logits, target)
    assert cost.shape == ()
    torch.testing.assert_close(cost, losses.mean())
    torch.testing.assert_close(cross_entropy(logits, target, reduction="sum"), losses.sum())
    torch.testing.assert_close(losses, F.cross_entropy(logits, target, reduction="none"))


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_cross_entropy_is_stable_for_huge_logits(scale: float) -> None:
    logits = (torch.randn(16, 10, dtype=torch.float32) * scale).requires_grad_()
    target = torch.randint(0, 10, (16,))
    ours = cross_entropy(logits, target, reduction="none")
    theirs = F.cross_entropy(logits, target, reduction="none")
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, theirs)
    (g,) = torch.autograd.grad(ours.sum(), logits)
    (g2,) = torch.autograd.grad(theirs.sum(), logits)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g, g2)


def test_softmax_rows_sum_to_one_without_overflow() -> None:
    p = softmax(torch.tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))
    torch.testing.assert_close(p[0], torch.tensor([1.0, 0.0, 0.0]))


def test_single_example_and_empty_batch_like_torch() -> None:
    z, t = torch.randn(10), torch.tensor(3)
    torch.testing.assert_close(cross_entropy(z, t), F.cross_entropy(z, t))
    empty = cross_entropy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long), reduction="none")
    assert empty.shape == (0,)
    assert torch.isnan(cross_entropy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long)))


@pytest.mark.parametrize(
    "target, exc, words",
    [
        (torch.tensor([0, 10, 1]), TargetError, ["target", "10", "[0, 9]"]),
        (torch.tensor([0, -1, 1]), TargetError, ["-1", "[0, 9]"]),
        (torch.tensor([0.0, 1.0, 2.0]), ValueError, ["target dtype", "torch.float32", "int64"]),
        (torch.tensor([0, 1]), ValueError, ["target shape", "(2,)", "(3,)"]),
    ],
)
def test_bad_targets_give_clear_errors(target: torch.Tensor, exc: type, words: list[str]) -> None:
    with pytest.raises(exc) as err:
        cross_entropy(torch.randn(3, 10), target)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_out_of_range_is_also_an_index_error_like_torch() -> None:
    with pytest.raises(IndexError):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 3]))


def test_bad_reduction() -> None:
    with pytest.raises(
        ValueError, match="reduction: expected one of 'none', 'mean', 'sum', got 'avg'"
    ):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(torch.randn(2), torch.randn(2), reduction="avg")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_matches_torch(reduction: str) -> None:
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    ours, theirs = mse_loss(x, y, reduction), F.mse_loss(x, y, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    g = torch.ones_like(ours)
    for a, b in zip(torch.autograd.grad(ours, (x, y), g), torch.autograd.grad(theirs, (x, y), g)):
        torch.testing.assert_close(a, b)


def test_mse_shape_mismatch() -> None:
    with pytest.raises(
        ValueError, match=r"target shape: expected the input's shape \(5, 3\), got \(5,\)"
    ):
        mse_loss(torch.randn(5, 3), torch.randn(5))
