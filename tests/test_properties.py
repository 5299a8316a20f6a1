"""Property-based tests (hypothesis) of every hand-written Function against PyTorch's built-in.

Random shapes, the four float dtypes, extreme magnitudes, ±0, ±inf and NaN. The value and the
gradient must agree with the built-in within a few ulps of the dtype (scaled by the size of
the values), and in float64 with central differences. Derandomised and time-boxed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlconcepts import activations, layers, losses

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
SPECIAL = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e30, -1e30, 1e-30, -1e-30]
FAST = settings(derandomize=True, deadline=None, max_examples=25, database=None)

Pair = tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]
ELEMENTWISE: dict[str, Pair] = {
    "sigmoid": (activations.sigmoid, torch.sigmoid),
    "tanh": (activations.tanh, torch.tanh),
    "relu": (activations.relu, torch.relu),
}


@st.composite
def tensors(draw: st.DrawFn, shape: tuple[int, ...], special: bool = True) -> torch.Tensor:
    """A float64 tensor: normal values at a random scale, some replaced by special ones."""
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e4]))
    seed = draw(st.integers(0, 2**31 - 1))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x * scale
    if special and x.numel():
        n = draw(st.integers(0, min(3, x.numel())))
        for _ in range(n):
            i = draw(st.integers(0, x.numel() - 1))
            x.view(-1)[i] = draw(st.sampled_from(SPECIAL))
    return x


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


def value_and_grad(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> list[torch.Tensor]:
    args = [a.detach().requires_grad_(a.is_floating_point()) for a in args]
    out = fn(*args)
    diff = [a for a in args if a.requires_grad]
    grads = torch.autograd.grad(out.sum(), diff, allow_unused=True)
    return [out.detach(), *grads]


def assert_agree(
    ours: list[torch.Tensor], theirs: list[torch.Tensor], n_ulps: float, scale: float = 1.0
) -> None:
    """Within ``n_ulps`` of the dtype, relative, and absolute near 0 (times ``scale``)."""
    eps = torch.finfo(ours[0].dtype).eps
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(
            a, b, equal_nan=True, rtol=n_ulps * eps, atol=n_ulps * eps * scale
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
@FAST
@given(data=st.data())
def test_activation_agrees_with_builtin(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
    ours, theirs = ELEMENTWISE[name]
    x = data.draw(tensors(data.draw(shapes))).to(dtype)
    got, expected = value_and_grad(ours, x), value_and_grad(theirs, x)
    if name == "relu":  # gradient at NaN: ours 0 by design (activations.ReLUFunction)
        got[1], expected[1] = got[1][~x.isnan()], expected[1][~x.isnan()]
    assert_agree(got, expected, 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@FAST
@given(data=st.data())
def test_linear_agrees_with_builtin(dtype: torch.dtype, data: st.DataObject) -> None:
    batch, n_in, n_out = (data.draw(st.integers(1, 4)) for _ in range(3))
    x = data.draw(tensors((batch, n_in), special=False)).to(dtype)
    w = data.draw(tensors((n_out, n_in), special=False)).to(dtype)
    b = data.draw(tensors((n_out,), special=False)).to(dtype)
    got, expected = value_and_grad(layers.linear, x, w, b), value_and_grad(F.linear, x, w, b)
    # a sum of n products: n roundings, relative to the size of the terms
    scale = max(float(x.abs().max() * w.abs().max() * n_in + b.abs().max()), 1.0)
    assert_agree(got, expected, 4 * n_in, scale)


LOSSES: dict[str, Pair] = {
    "cross_entropy": (losses.cross_entropy, F.cross_entropy),
    "mse": (losses.mse_loss, F.mse_loss),
    "bce": (losses.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
}


def loss_inputs(name: str, data: st.DataObject) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    z = data.draw(tensors((n, c)))
    if name == "cross_entropy":
        if data.draw(st.booleans()):  # class indices
            seed = data.draw(st.integers(0, 1000))
            return z, torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))
        return z, torch.softmax(data.draw(tensors((n, c), special=False)), -1)
    if name == "bce":
        return z, torch.sigmoid(data.draw(tensors((n, c), special=False)))
    return z, data.draw(tensors((n, c)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(LOSSES))
@FAST
@given(data=st.data())
def test_loss_agrees_with_builtin(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
    ours, theirs = LOSSES[name]
    z, t = loss_inputs(name, data)
    z, t = z.to(dtype), t.to(dtype) if t.is_floating_point() else t
    reduction = data.draw(st.sampled_from(["none", "sum", "mean"]))
    got = value_and_grad(lambda a, b: ours(a, b, reduction=reduction), z, t)
    expected = value_and_grad(lambda a, b: theirs(a, b, reduction=reduction), z, t)
    floats = [a for a in (z, t) if a.is_floating_point()]
    finite = all(a.isfinite().all() and a.abs().max() < 1e4 for a in floats)
    if not finite:  # at ±inf/NaN/huge, only "non-finite where torch is" is asked of a formula
        for a, e in zip(got, expected):
            assert (a.isfinite() == e.isfinite()).all() or not e.isfinite().all()
        return
    scale = max(float(z.abs().max()), 1.0) * z.shape[-1]
    assert_agree(got, expected, 8, scale)


# --- float64: every Function against central differences -----------------------------------

ALL: dict[str, Callable[..., torch.Tensor]] = {
    "sigmoid": activations.sigmoid,
    "tanh": activations.tanh,
    "relu": activations.relu,
    "linear": lambda x, w: layers.linear(x, w),
    "cross_entropy": lambda z, t: losses.cross_entropy(z, t, reduction="sum"),
    "mse": lambda x, y: losses.mse_loss(x, y, reduction="sum"),
    "bce": lambda z, t: losses.binary_cross_entropy_with_logits(z, t, reduction="sum"),
}


def central_difference(
    fn: Callable[..., torch.Tensor], args: list[torch.Tensor], i: int
) -> torch.Tensor:
    h = 1e-6
    grad = torch.zeros_like(args[i])
    for k in range(args[i].numel()):
        plus, minus = [a.clone() for a in args], [a.clone() for a in args]
        plus[i].view(-1)[k] += h
        minus[i].view(-1)[k] -= h
        grad.view(-1)[k] = (fn(*plus).sum() - fn(*minus).sum()) / (2 * h)
    return grad


@pytest.mark.parametrize("name", list(ALL))
@FAST
@given(data=st.data())
def test_gradient_equals_central_differences_in_float64(name: str, data: st.DataObject) -> None:
    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    x = data.draw(tensors((n, c), special=False)).clamp(-20, 20)
    if name == "relu":
        x = x + 0.1 * x.sign()  # keep away from the kink
    if name in ("sigmoid", "tanh", "relu"):
        args = [x]
    elif name == "cross_entropy":
        args = [x, torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(n * c))]
    elif name in ("bce",):
        args = [x, torch.sigmoid(data.draw(tensors((n, c), special=False)))]
    else:
        args = [
            x,
            data.draw(
                tensors(
                    (c if name == "mse" else 3, c) if name == "linear" else (n, c), special=False
                )
            ),
        ]
    fn = ALL[name]
    out, *grads = value_and_grad(fn, *args)
    # the differences' rounding error is about ε·|f| / h: scale by the size of the output
    atol = 1e-8 * max(1.0, float(out.abs().max()))
    for i, g in enumerate(grads):
        torch.testing.assert_close(g, central_difference(fn, args, i), rtol=1e-5, atol=atol)
