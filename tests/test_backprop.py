"""Backpropagation by hand equals autograd; the multivariable chain rule adds the paths."""

import pytest
import torch
import torch.nn.functional as F

from dlconcepts import activations, backprop, layers, losses
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


def _target(output_activation: str | None, loss: str, batch: int, gen: torch.Generator):
    if (output_activation, loss) == (None, "cross-entropy"):
        return torch.randint(0, 3, (batch,), generator=gen)
    if loss == "cross-entropy":  # binary cross-entropy: probabilities in [0, 1]
        return torch.rand(batch, 3, generator=gen, dtype=torch.float64)
    return torch.randn(batch, 3, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("loss", backprop.LOSSES)
@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("act", list(activations.ACTIVATIONS))
def test_every_output_and_loss_agree_manual_autograd_numerical(
    act: str, output_activation: str | None, loss: str
) -> None:
    """The three opinions on ∂C/∂θ: by hand (no autograd), autograd through our Functions,
    and central differences (no chain rule at all)."""
    gen = torch.Generator().manual_seed(1)
    model = MLP((4, 5, 3), act, "xavier", generator=gen, dtype=torch.float64)
    x = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    t = _target(output_activation, loss, 6, gen)
    options = {"output_activation": output_activation, "loss": loss}
    manual = manual_gradients(model, x, t, **options)
    cost = backprop.cost(model, x, t, **options)
    auto = dict(zip(manual, torch.autograd.grad(cost, list(model.parameters()))))
    numerical = backprop.numerical_gradients(model, lambda: backprop.cost(model, x, t, **options))
    assert list(manual) == [n for n, _ in model.named_parameters()]
    for name, expected in auto.items():
        scale = float(expected.abs().max())
        assert float((manual[name] - expected).abs().max()) <= 1e-12 * scale, name
        assert float((numerical[name] - expected).abs().max()) <= 1e-8 * max(scale, 1.0), name


def test_the_output_delta_is_the_cost_gradient_at_the_logits() -> None:
    """δ_L from the table equals autograd's ∂C/∂z_L, and each δ below is (δ W) ⊙ f′(z)."""
    gen = torch.Generator().manual_seed(2)
    model = MLP((2, 2, 2), "sigmoid", "xavier", generator=gen, dtype=torch.float64)
    x = torch.tensor([[0.05, 0.10]], dtype=torch.float64)
    t = torch.tensor([[0.01, 0.99]], dtype=torch.float64)
    tape, _ = backprop.manual_backprop(
        model, x, t, output_activation="sigmoid", loss="squared-error"
    )
    z = tape[-1].z.clone().requires_grad_()
    (dz,) = torch.autograd.grad(backprop.OUTPUTS["sigmoid", "squared-error"].total(z, t), z)
    torch.testing.assert_close(tape[-1].delta, dz, rtol=1e-12, atol=0)
    h = tape[0]
    expected = (tape[1].delta @ model.output.weight) * h.a * (1 - h.a)
    torch.testing.assert_close(h.delta, expected, rtol=1e-12, atol=0)


def test_the_classic_worked_example() -> None:
    """Mazur's "A Step by Step Backpropagation Example" (2-2-2 sigmoid, squared error,
    lr 0.5): its cost 0.298371109 and its updated weights w5 = 0.35891648, w1 = 0.149780716."""
    model = MLP((2, 2, 2), "sigmoid", dtype=torch.float64)
    with torch.no_grad():
        model.hidden1.weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]]))
        model.hidden1.bias.fill_(0.35)
        model.output.weight.copy_(torch.tensor([[0.40, 0.45], [0.50, 0.55]]))
        model.output.bias.fill_(0.60)
    x = torch.tensor([[0.05, 0.10]], dtype=torch.float64)
    t = torch.tensor([[0.01, 0.99]], dtype=torch.float64)
    options = {"output_activation": "sigmoid", "loss": "squared-error"}
    assert backprop.cost(model, x, t, **options).item() == pytest.approx(0.298371109, abs=1e-9)
    grads = manual_gradients(model, x, t, **options)
    w5 = model.output.weight[0, 0] - 0.5 * grads["output.weight"][0, 0]
    w1 = model.hidden1.weight[0, 0] - 0.5 * grads["hidden1.weight"][0, 0]
    assert w5.item() == pytest.approx(0.35891648, abs=1e-8)
    # the post rounds its intermediate values to 9 digits, which moves w1 by 6e-9
    assert w1.item() == pytest.approx(0.149780716, abs=1e-8)


def test_a_bad_output_or_loss_is_named() -> None:
    model, x, t = MLP((2, 2)), torch.randn(1, 2), torch.tensor([0])
    with pytest.raises(ValueError, match=r"output_activation: expected .*'tanh'"):
        manual_gradients(model, x, t, output_activation="tanh")
    with pytest.raises(ValueError, match=r"loss: expected .*'hinge'"):
        manual_gradients(model, x, t, loss="hinge")


@pytest.mark.parametrize("x", [-2.0, 0.3, 1.5, 4.0])
def test_chain_rule_paths_add_up(x: float) -> None:
    r = chain_rule_paths(x)
    assert r.via_u != 0 and r.via_v != 0  # both paths contribute
    assert abs(r.total - r.autograd) < 1e-12
    assert abs(r.via_u - r.autograd) > 1e-3  # one path alone is not the derivative
    assert "sum of paths" in str(r)
