"""Every hand-written gradient, proven: the one registry ``dlconcepts.proofs.CASES`` drives
float64 gradcheck (with forward AD and batched gradients), gradgradcheck, and value and
gradient comparisons with PyTorch's built-in. A negative control shows the checks catch a
deliberately wrong backward."""

from typing import Any

import pytest
import torch

from dlconcepts import activations, layers, losses
from dlconcepts.commands import check
from dlconcepts.proofs import CASES, Case, case, check_backprop, check_case, grads

IDS = [c.name for c in CASES]


def make(c: Case, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    return c.inputs(dtype, device, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_gradcheck_with_forward_ad_and_batched_grad(c: Case, device: torch.device) -> None:
    args = make(c, torch.float64, device)
    assert torch.autograd.gradcheck(
        c.ours,
        args,
        check_forward_ad=True,
        check_batched_grad=True,
        check_batched_forward_grad=True,
    )


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_gradgradcheck(c: Case, device: torch.device) -> None:
    assert torch.autograd.gradgradcheck(c.ours, make(c, torch.float64, device))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_matches_builtin(c: Case, dtype: torch.dtype, tol: float, device: torch.device) -> None:
    args = make(c, dtype, device)
    ours, ours_grads = grads(c.ours, args)
    theirs, their_grads = grads(c.theirs, args)
    torch.testing.assert_close(
        ours, theirs, rtol=tol, atol=tol, msg=lambda m: f"{c.name} value, inputs {args}\n{m}"
    )
    for i, (got, expected) in enumerate(zip(ours_grads, their_grads)):
        torch.testing.assert_close(
            got, expected, rtol=tol, atol=tol, msg=lambda m, i=i: f"{c.name} grad {i}\n{m}"
        )


def test_check_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "FAIL" not in out
    for c in CASES:
        assert c.name in out


def test_manual_backprop_row_is_tight() -> None:
    assert check_backprop().grad_diff < 1e-10


# --- negative controls: a wrong backward must be caught -------------------------------


class WrongSigmoid(activations.SigmoidFunction):
    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y) * 1.01  # 1% off


class WrongLinear(layers.LinearFunction):
    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        gx, gw, gb = layers.LinearFunction.backward(ctx, grad_output)
        return (
            gx,
            gw,
            None if gb is None else gb / grad_output.reshape(-1, gb.shape[0]).shape[0],
        )  # mean, not sum


class WrongCrossEntropy(losses.CrossEntropyFunction):
    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, None]:
        logits, _ = ctx.saved_tensors
        return losses.softmax(logits) * grad_output.unsqueeze(-1), None  # forgot the one-hot


WRONG = [
    ("sigmoid", WrongSigmoid.apply),
    ("linear", WrongLinear.apply),
    ("cross_entropy (none)", WrongCrossEntropy.apply),
]


@pytest.mark.parametrize("name, wrong", WRONG, ids=[w[0] for w in WRONG])
def test_negative_control_wrong_backward_is_caught(name: str, wrong: Any) -> None:
    c = case(name)
    bad = Case(c.name, wrong, c.theirs, c.inputs)
    args = make(bad, torch.float64, torch.device("cpu"))
    assert not torch.autograd.gradcheck(bad.ours, args, raise_exception=False)
    row = check_case(bad)
    assert not row.ok and row.grad_diff > 1e-4
    # and the right one passes on the same inputs
    assert check_case(c).ok
