"""Backpropagation by hand equals autograd; the multivariable chain rule adds the paths."""

import pytest
import torch
import torch.nn.functional as F

from dlconcepts import activations, layers, losses
from dlconcepts.backprop import chain_rule_paths, manual_gradients
from dlconcepts.layers import MLP


@pytest.mark.parametrize("sizes", [(784, 10), (30, 20, 10), (30, 16, 16, 16, 10)])
@pytest.mark.parametrize("act", list(activations.ACTIVATIONS))
def test_manual_gradients_equal_autograd(
    act: str, sizes: tuple[int, ...], device: torch.device
) -> None:
    gen = torch.Generator().manual_seed(0)
    model = MLP(sizes, act, "xavier", generator=gen, dtype=torch.float64, device=device)
    x = torch.randn(17, sizes[0], generator=gen, dtype=torch.float64).to(device)
    t = torch.randint(0, 10, (17,), generator=gen).to(device)
    manual = manual_gradients(model, x, t)
    auto = dict(
        zip(
            [n for n, _ in model.named_parameters()],
            torch.autograd.grad(F.cross_entropy(model(x), t), list(model.parameters())),
        )
    )
    assert list(manual) == list(auto)  # keyed like named_parameters, same order
    for name, expected in auto.items():
        got = manual[name]
        rel = float((got - expected).abs().max() / expected.abs().max())
        assert rel < 1e-10, f"{name}: relative error {rel:.2e}\ngot {got}\nexpected {expected}"


def test_manual_gradients_use_no_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("autograd was called")

    model = MLP((8, 6, 3))
    x, t = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    monkeypatch.setattr(torch.autograd, "grad", forbidden)
    monkeypatch.setattr(torch.autograd, "backward", forbidden)
    monkeypatch.setattr(torch.Tensor, "backward", forbidden)
    grads = manual_gradients(model, x, t)
    assert all(not g.requires_grad for g in grads.values())


def test_manual_gradients_catch_a_wrong_derivative(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: with tanh' = 1 - y instead of 1 - y², the comparison fails."""
    model = MLP((10, 8, 3), "tanh", generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, t = torch.randn(5, 10, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    auto = torch.autograd.grad(F.cross_entropy(model(x), t), model.hidden1.weight)[0]
    monkeypatch.setattr(activations.TanhFunction, "derivative", staticmethod(lambda y: 1 - y))
    wrong = manual_gradients(model, x, t)["hidden1.weight"]
    assert not torch.allclose(wrong, auto, rtol=1e-6)


def _autograd_and_manual(act: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    model = MLP((10, 8, 3), act, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, t = torch.randn(5, 10, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    auto = torch.autograd.grad(losses.cross_entropy(model(x), t), list(model.parameters()))
    return dict(zip([n for n, _ in model.named_parameters()], auto)), manual_gradients(model, x, t)


@pytest.mark.parametrize(
    "owner, name, wrong",
    [
        (
            activations.SigmoidFunction,
            "derivative",
            staticmethod(lambda y, f=activations.SigmoidFunction.derivative: f(y) * 1.01),
        ),
        (layers, "weight_grad", lambda g, x, f=layers.weight_grad: f(g, x) / 2),
        (losses, "cross_entropy_derivative", lambda z, t: losses.softmax(z)),  # no one-hot
    ],
    ids=["sigmoid derivative", "linear weight_grad", "cross-entropy derivative"],
)
def test_one_formula_serves_autograd_and_the_manual_backprop(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, wrong: object
) -> None:
    """Each derivative is written once: break it, and autograd's backward (through our
    Functions) and the manual backprop go wrong *together*, still agreeing with each other."""
    right, _ = _autograd_and_manual("sigmoid")
    monkeypatch.setattr(owner, name, wrong)
    auto, manual = _autograd_and_manual("sigmoid")
    for key in right:
        torch.testing.assert_close(manual[key], auto[key], rtol=1e-10, atol=1e-12)
    assert any(not torch.allclose(auto[k], right[k], rtol=1e-6) for k in right)


@pytest.mark.parametrize("x", [-2.0, 0.3, 1.5, 4.0])
def test_chain_rule_paths_add_up(x: float) -> None:
    r = chain_rule_paths(x)
    assert r.via_u != 0 and r.via_v != 0  # both paths contribute
    assert abs(r.total - r.autograd) < 1e-12
    assert abs(r.via_u - r.autograd) > 1e-3  # one path alone is not the derivative
    assert "sum of paths" in str(r)
