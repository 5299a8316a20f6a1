"""torch.compile traces our Functions whole: one graph, no breaks, and the compiled backward is
our hand-written one.

``torch._dynamo`` (explain, reset) is PyTorch's private compiler API: the tests use it to look
at the graphs, the library never does. Compiling is slow on a small CPU, so the models are tiny
and only one test runs the real compiler (inductor); the others use the ``aot_eager`` backend,
which traces forward and backward graphs as inductor does but runs them without code
generation.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

from dlconcepts import activations, layers, losses


@pytest.fixture(autouse=True)
def _fresh_compiler() -> Iterator[None]:
    """Each test traces anew: a cached graph would hide a formula changed after it was traced."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


CONCEPTS = (activations, layers, losses)
FUNCTIONS = [
    obj
    for module in CONCEPTS
    for name, obj in vars(module).items()
    if inspect.isclass(obj)
    and issubclass(obj, torch.autograd.Function)
    and obj.__module__ == module.__name__
    and not name.startswith("_")
]


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_every_function_has_a_twin_that_only_drops_its_jvp(fn: type) -> None:
    twin = fn.traceable()
    assert twin.__bases__ == (fn,)
    assert twin.jvp is torch.autograd.Function.jvp and fn.jvp is not twin.jvp
    # nothing else of its own: the formulas are the parent's ("_backward_cls" is autograd's)
    assert set(vars(twin)) - {"__doc__", "__module__", "_backward_cls"} == {"jvp"}


def direct_applies(source: str) -> list[str]:
    """The calls ``SomeFunction.apply(...)`` of our Functions in ``source``."""
    names = {f.__name__ for f in FUNCTIONS}
    return [
        ast.unparse(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "apply"
        and ast.unparse(node.func.value).split(".")[-1] in names
    ]


@pytest.mark.parametrize("module", CONCEPTS, ids=lambda m: m.__name__)
def test_the_package_calls_its_functions_through_apply(module: object) -> None:
    # a direct Function.apply(...) would break a compiled graph: every call goes through
    # activations.apply, which picks the twin while compiling
    assert direct_applies(inspect.getsource(module)) == []  # type: ignore[arg-type]


def test_the_scan_sees_a_direct_apply() -> None:  # negative control
    source = "def f(x):\n    return activations.SigmoidFunction.apply(x) + fn.apply(x)\n"
    assert direct_applies(source) == ["activations.SigmoidFunction.apply(x)"]


def every_piece() -> nn.Sequential:
    """A tiny MLP of all our pieces: Linear and the three activations."""
    return nn.Sequential(
        layers.Linear(12, 8),
        activations.Sigmoid(),
        layers.Linear(8, 8),
        activations.Tanh(),
        layers.Linear(8, 8),
        activations.ReLU(),
        layers.Linear(8, 4),
    )


def batch() -> tuple[Tensor, Tensor, Tensor]:
    """Inputs, class indices and probabilities for ``every_piece``."""
    return torch.randn(16, 12), torch.randint(0, 4, (16,)), torch.rand(16, 4)


def all_losses(model: nn.Module) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """One training cost through all three losses, so one trace covers every Function."""

    def cost(x: Tensor, y: Tensor, t: Tensor) -> Tensor:
        z = model(x)
        return (
            losses.cross_entropy(z, y)
            + losses.binary_cross_entropy_with_logits(z, t)
            + losses.mse_loss(z, t)
        )

    return cost


def gradients(model: nn.Module, cost: Callable[..., Tensor], *inputs: Tensor) -> list[Tensor]:
    model.zero_grad()
    cost(*inputs).backward()
    return [p.grad.clone() for p in model.parameters()]


def test_one_graph_and_no_break_for_every_piece() -> None:
    cost = all_losses(every_piece())
    explained = torch._dynamo.explain(cost)(*batch())
    reasons = [b.reason for b in explained.break_reasons]
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), reasons


@pytest.mark.parametrize("activation", list(activations.ACTIVATIONS))
def test_the_mlp_with_cross_entropy_is_one_graph(activation: str) -> None:
    model = layers.MLP((784, 16, 10), activation)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    explained = torch._dynamo.explain(lambda x, y: losses.cross_entropy(model(x), y))(x, y)
    reasons = [b.reason for b in explained.break_reasons]
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), reasons


def test_a_function_with_its_jvp_breaks_the_graph() -> None:  # negative control
    # what the twins avoid: the Function a learner reads, called directly, has a jvp
    x = torch.randn(4, requires_grad=True)
    direct = torch._dynamo.explain(lambda x: activations.SigmoidFunction.apply(x) * 2)(x)
    assert direct.graph_break_count == 1
    through_apply = torch._dynamo.explain(lambda x: activations.sigmoid(x) * 2)(x)
    assert through_apply.graph_break_count == 0


def test_a_compiled_training_step_gives_eager_gradients() -> None:
    model = every_piece()
    cost, inputs = all_losses(model), batch()
    compiled = torch.compile(cost, fullgraph=True)  # inductor: generated, fused kernels
    torch.testing.assert_close(compiled(*inputs), cost(*inputs))
    got, expected = gradients(model, compiled, *inputs), gradients(model, cost, *inputs)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize(
    "owner, name, wrong",
    [
        (activations.SigmoidFunction, "derivative", lambda y: 2 * y * (1 - y)),
        (activations.TanhFunction, "derivative", lambda y: 1 - 2 * y * y),
        (activations.ReLUFunction, "derivative", lambda y: 3 * torch.sign(y)),
        (layers, "weight_grad", lambda g, x: 2 * layers._batch(g).t() @ layers._batch(x)),
        (losses, "cross_entropy_derivative", lambda z, t: losses.softmax(z)),
        (losses, "binary_cross_entropy_derivative", lambda z, t, p=None: torch.sigmoid(z)),
        (losses, "mse_derivative", lambda x, y: 3 * (x - y)),
    ],
    ids=["sigmoid", "tanh", "relu", "linear", "cross_entropy", "bce", "mse"],
)
def test_the_compiled_backward_runs_our_formula(
    owner: object, name: str, wrong: Callable[..., Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = every_piece()
    cost, inputs = all_losses(model), batch()
    right = gradients(model, cost, *inputs)
    monkeypatch.setattr(owner, name, staticmethod(wrong) if isinstance(owner, type) else wrong)
    changed = gradients(model, torch.compile(cost, fullgraph=True, backend="aot_eager"), *inputs)
    # the altered formula reaches the compiled gradients, exactly as it does the eager ones
    assert any(not torch.allclose(a, b) for a, b in zip(right, changed)), f"{name} not used"
    for g, e in zip(changed, gradients(model, cost, *inputs)):
        torch.testing.assert_close(g, e)


def test_a_bad_class_index_gives_nan_when_compiled_and_an_error_in_eager() -> None:
    z, bad = torch.randn(3, 4), torch.tensor([0, 7, 1])
    with pytest.raises(losses.TargetError, match="7"):
        losses.cross_entropy(z, bad)
    compiled = torch.compile(losses.cross_entropy, fullgraph=True, backend="aot_eager")
    assert torch.isnan(compiled(z, bad))  # read on the host, the value would break the graph
    torch.testing.assert_close(
        compiled(z, torch.tensor([0, 3, 1])), losses.cross_entropy(z, torch.tensor([0, 3, 1]))
    )


def test_forward_mode_ad_still_works_in_eager_mode_after_compiling() -> None:
    torch.compile(activations.sigmoid, fullgraph=True, backend="aot_eager")(torch.randn(3))
    x, t = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    _, tangent = torch.func.jvp(activations.sigmoid, (x,), (t,))
    y = torch.sigmoid(x)
    torch.testing.assert_close(tangent, t * y * (1 - y))
