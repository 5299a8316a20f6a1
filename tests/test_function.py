"""The shared ``Function.apply``: the eager twin where it can, PyTorch's own path elsewhere,
the same answers either way."""

from typing import Any

import torch

from dlconcepts import activations, layers
from dlconcepts._function import Function


def _fwd_bwd(apply: Any, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = apply(*leaves)
    grads = torch.autograd.grad(out, leaves, torch.ones_like(out))
    return (out.detach(), *grads)


def test_a_positional_eager_call_runs_the_twin_under_the_usual_name() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    y = activations.SigmoidFunction.apply(x)
    assert isinstance(y.grad_fn, activations.SigmoidFunction._eager._backward_cls)
    assert type(y.grad_fn).__name__ == "SigmoidFunctionBackward"


def test_keyword_calls_take_pytorchs_path_with_the_same_result() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    y = activations.TanhFunction.apply(x=x)
    assert isinstance(y.grad_fn, activations.TanhFunction._backward_cls)
    for got, expected in zip(
        _fwd_bwd(lambda t: activations.TanhFunction.apply(x=t), x),
        _fwd_bwd(activations.TanhFunction.apply, x),
    ):
        assert torch.equal(got, expected)


def test_transforms_take_pytorchs_path_with_the_same_result() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    w = torch.randn(2, 3, dtype=torch.float64)
    b = torch.randn(2, dtype=torch.float64)

    def f(w: torch.Tensor) -> torch.Tensor:
        return activations.ReLUFunction.apply(layers.LinearFunction.apply(x, w, b)).sum()

    eager = torch.autograd.grad(f(w.requires_grad_()), w)[0]
    assert torch.equal(torch.func.grad(f)(w.detach()), eager)
    rows = torch.func.vmap(activations.sigmoid)(x)
    assert torch.equal(rows, activations.sigmoid(x))


def test_a_subclass_gets_its_own_twin_with_its_own_backward() -> None:
    class Doubled(activations.ReLUFunction):
        @staticmethod
        def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
            return 2 * activations.ReLUFunction.backward(ctx, grad_output)

    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    (dx,) = torch.autograd.grad(Doubled.apply(x).sum(), x)
    assert dx.tolist() == [0.0, 2.0]
    assert Doubled._eager is not activations.ReLUFunction._eager


def test_a_function_with_defaults_still_gets_them() -> None:
    class Scale(Function):
        @staticmethod
        def forward(x: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
            return x * factor

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            ctx.factor = inputs[1]  # the default is bound, as with torch.autograd.Function

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
            return g * ctx.factor, None

    x = torch.ones(3, requires_grad=True)
    for args, factor in (((x,), 2.0), ((x, 3.0), 3.0)):
        (dx,) = torch.autograd.grad(Scale.apply(*args).sum(), x)
        assert torch.equal(dx, torch.full((3,), factor))


def test_torch_compile_runs_the_functions() -> None:
    # Dynamo cannot trace a Function with a custom jvp; it must run it, not fail on it, and
    # not trace into apply either (that breaks the graph again at every branch inside it).
    model = layers.MLP((6, 5, 3), "tanh", "xavier", generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 6)
    calls = 3  # two Linear and one Tanh
    assert torch._dynamo.explain(model)(x).graph_break_count <= calls
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager")
    assert torch.equal(compiled(x), model(x))
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
