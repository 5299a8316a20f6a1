"""The shared fast binding of ``forward``'s arguments: same answers as inspect's own."""

import inspect

import pytest
import torch

from dlconcepts._function import fast_apply
from dlconcepts.layers import LinearFunction


def test_positional_bind_matches_inspect() -> None:
    fast = inspect.signature(LinearFunction.forward)
    plain = inspect.Signature(list(fast.parameters.values()))
    args = (torch.ones(2, 3), torch.ones(4, 3), None)
    got, expected = fast.bind(*args), plain.bind(*args)
    got.apply_defaults()
    expected.apply_defaults()
    assert got.args == expected.args and got.kwargs == expected.kwargs == {}
    assert dict(got.arguments) == dict(expected.arguments)


def test_other_calls_take_the_general_path() -> None:
    sig = inspect.signature(LinearFunction.forward)
    bound = sig.bind(1, 2, bias=3)
    assert bound.args == (1, 2, 3)
    with pytest.raises(TypeError):
        sig.bind(1)  # missing arguments are still an error


def test_a_function_with_defaults_still_gets_them() -> None:
    @fast_apply
    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(x: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
            return x * factor

        @staticmethod
        def setup_context(ctx, inputs, output) -> None:
            ctx.factor = inputs[1]

        @staticmethod
        def backward(ctx, g: torch.Tensor):
            return g * ctx.factor, None

    x = torch.ones(3, requires_grad=True)
    assert torch.equal(Scale.apply(x), torch.full((3,), 2.0))
    assert torch.equal(Scale.apply(x, 3.0), torch.full((3,), 3.0))
