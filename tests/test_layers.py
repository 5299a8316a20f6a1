"""Linear and MLP: drop-ins for torch.nn.Linear and an MLP built from torch.nn pieces."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlconcepts import activations, init
from dlconcepts.layers import MLP, Linear, linear
from dlconcepts.losses import cross_entropy


@pytest.mark.parametrize("features", [(5, 4), (0, 4), (5, 0)], ids=["5->4", "0->4", "5->0"])
@pytest.mark.parametrize("batch", [(), (3,), (2, 3), (0,), (2, 0)])
def test_linear_any_leading_dims(
    batch: tuple[int, ...], features: tuple[int, int], device: torch.device
) -> None:
    n_in, n_out = features  # empty layers too, as torch.nn.functional.linear allows
    x = torch.randn(*batch, n_in, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(n_out, n_in, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(n_out, dtype=torch.float64, device=device, requires_grad=True)
    got, expected = linear(x, w, b), F.linear(x, w, b)
    assert got.shape == expected.shape == (*batch, n_out)
    torch.testing.assert_close(got, expected)
    g = torch.randn_like(got)
    ours = torch.autograd.grad(got, (x, w, b), g)
    theirs = torch.autograd.grad(expected, (x, w, b), g)
    for a, e in zip(ours, theirs):
        torch.testing.assert_close(a, e)


def test_linear_needs_input_grad_skips_unneeded_work() -> None:
    x = torch.randn(3, 5)  # no grad: only the weight and bias gradients are computed
    w = torch.randn(4, 5, requires_grad=True)
    out = linear(x, w, torch.zeros(4))
    (gw,) = torch.autograd.grad(out.sum(), (w,))
    torch.testing.assert_close(gw, torch.ones(3, 4).t() @ x)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, words",
    [
        ((3, 6), (4, 5), (4,), ["(3, 6)", "(4, 5)"]),
        ((3, 5), (4, 5), (3,), ["(3,)", "(4, 5)"]),
        ((3, 5), (4, 5, 1), None, ["(4, 5, 1)"]),
        ((), (4, 5), None, ["()", "(4, 5)"]),
    ],
)
def test_linear_shape_mismatch_names_both_shapes(x_shape, w_shape, b_shape, words) -> None:
    b = None if b_shape is None else torch.zeros(b_shape)
    with pytest.raises(ValueError) as err:
        linear(torch.zeros(x_shape), torch.zeros(w_shape), b)
    for w in words:
        assert w in str(err.value), str(err.value)
    assert "expected" in str(err.value) and "got" in str(err.value)


def test_linear_module_is_a_drop_in_for_torch_linear() -> None:
    torch.manual_seed(3)
    ours = Linear(7, 3)
    torch.manual_seed(3)
    theirs = nn.Linear(7, 3)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k  # the same default init, bit for bit
    x = torch.randn(2, 7)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours(input=x), theirs(input=x))  # torch's argument name
    assert Linear(3, 2, bias=False).bias is None


def test_linear_module_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="in_features: expected a non-negative int, got -1"):
        Linear(-1, 3)


def test_mlp_layers_are_visible() -> None:
    model = MLP((784, 256, 128, 10))
    names = [n for n, _ in model.named_children()]
    assert names == ["hidden1", "act1", "hidden2", "act2", "output"]
    text = repr(model)
    assert (
        "sizes=(784, 256, 128, 10)" in text
        and "(output): Linear(in_features=128, out_features=10" in text
    )
    summary = model.summary()
    for word in ("input", "784 features", "hidden", "256", "output", "logits", "235,146"):
        assert word in summary, summary
    assert sum(p.numel() for p in model.parameters()) == 235_146


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"sizes": (784,)}, ["sizes", "(784,)"]),
        ({"sizes": (784, 0, 10)}, ["sizes"]),
        ({"sizes": (4, 2), "activation": "gelu"}, ["activation", "'gelu'", "'relu'"]),
        ({"sizes": (4, 2), "init": "orthogonal"}, ["init", "'orthogonal'", "'he'"]),
        ({"sizes": (4, 2), "impl": "jax"}, ["impl", "'jax'", "'torch'"]),
    ],
)
def test_mlp_bad_arguments(kwargs, words) -> None:
    with pytest.raises(ValueError) as err:
        MLP(**kwargs)
    for w in words:
        assert w in str(err.value), str(err.value)


PAIRS = list(itertools.product(activations.ACTIVATIONS, init.SCHEMES))


@pytest.mark.parametrize("act, scheme", PAIRS, ids=[f"{a}-{s}" for a, s in PAIRS])
def test_custom_mlp_equals_torch_mlp(act: str, scheme: str) -> None:
    sizes = (20, 16, 12, 10)
    custom = MLP(
        sizes,
        act,
        scheme,
        "custom",
        generator=torch.Generator().manual_seed(5),
        dtype=torch.float64,
    )
    builtin = MLP(
        sizes, act, scheme, "torch", generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    assert isinstance(builtin.hidden1, nn.Linear) and isinstance(
        builtin.act1, activations.TORCH_MODULES[act]
    )
    # the same seed gives the same weights ...
    for (k, a), (k2, b) in zip(custom.state_dict().items(), builtin.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    # ... and load_state_dict makes any two the same function
    other = MLP(sizes, act, "he", "torch", dtype=torch.float64)
    other.load_state_dict(custom.state_dict())
    x = torch.randn(9, 20, dtype=torch.float64)
    t = torch.randint(0, 10, (9,))
    for model in (builtin, other):
        torch.testing.assert_close(custom(x), model(x), rtol=1e-13, atol=1e-13)
        g1 = torch.autograd.grad(cross_entropy(custom(x), t), list(custom.parameters()))
        g2 = torch.autograd.grad(F.cross_entropy(model(x), t), list(model.parameters()))
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_mlp_accepts_images() -> None:
    model = MLP((784, 10))
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("act", list(activations.ACTIVATIONS))
def test_zero_init_keeps_hidden_units_identical(act: str) -> None:
    """Symmetry: with zero init every hidden unit gets the same gradient, so they never differ."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=gen)
    t = torch.randint(0, 4, (64,), generator=gen)

    def train(scheme: str) -> MLP:
        model = MLP((12, 8, 4), act, scheme, generator=torch.Generator().manual_seed(1))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(20):
            opt.zero_grad()
            cross_entropy(model(x), t).backward()
            opt.step()
        return model

    def spread(w: torch.Tensor) -> float:  # the largest difference between two units' weights
        return float((w.unsqueeze(0) - w.unsqueeze(1)).abs().max().detach())

    zero = train("zero")
    assert spread(zero.hidden1.weight) == 0.0
    assert spread(zero.output.weight.t()) == 0.0  # every hidden unit feeds the output alike
    assert spread(train("he").hidden1.weight) > 0.1
