"""Specification of the hand-written activations in ``dlconcepts.activations``.

Each hand-written activation must agree with PyTorch's own (``torch.sigmoid``, ``torch.tanh``,
``torch.relu``) in value and in gradient, to a few units in the last place (ulp), on PyTorch's
edge values and on random inputs, in every floating dtype; and behave like a well-mannered
``autograd.Function``: double backward, forward mode, ``torch.func``, vmap, no writes into
the incoming gradient. The generic float64 gradcheck over every function of the package lives
in ``test_gradcheck.py``; this file covers what is specific to activations.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from dlconcepts import activations as act

NAMES = ["sigmoid", "tanh", "relu"]
BUILTIN: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}
FUNCTIONAL: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": act.sigmoid,
    "tanh": act.tanh,
    "relu": act.relu,
}
FLOATS = [torch.float32, torch.float64]

# PyTorch's own edge values for unary ufuncs (torch/testing/_internal/opinfo), both signs.
_EDGE = [0.0, 1e-3, 1.0, 15.0, 20.0, 88.8, 501.0, 1000.0, 1e20, math.inf]
EDGE_VALUES = [s * v for v in _EDGE for s in (1.0, -1.0)] + [math.nan]


# --- comparison helpers: every failure names the inputs, what we got, what was expected ---


def ulp(t: Tensor) -> Tensor:
    """The spacing of ``t``'s dtype at ``|t|`` (one unit in the last place)."""
    inf = torch.tensor(math.inf, dtype=t.dtype, device=t.device)
    return torch.nextafter(t.abs(), inf) - t.abs()


def _report(what: str, bad: Tensor, x: Tensor, got: Tensor, expected: Tensor) -> str:
    idx = bad.flatten().nonzero().flatten()[:6]
    rows = [
        f"  x={x.flatten()[i].item()!r}: got {got.flatten()[i].item()!r}, "
        f"expected {expected.flatten()[i].item()!r}"
        for i in idx.tolist()
    ]
    return f"{what}: {int(bad.sum())} of {bad.numel()} elements differ\n" + "\n".join(rows)


def assert_values_close(
    got: Tensor, expected: Tensor, x: Tensor, ulps: float, what: str, zero_sign: bool = True
) -> None:
    """Equal NaN positions, exact infinities, equal signs of zero, else within ``ulps`` ulps.

    ``zero_sign=False`` skips the sign-of-zero check, for gradients: g * 0 is -0 for g < 0.

    Results below the smallest normal number only need to agree to that absolute size:
    subnormals carry fewer significant bits, and PyTorch's own sigmoid flushes them to 0.
    """
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    nan_diff = got.isnan() != expected.isnan()
    assert not nan_diff.any(), _report(f"{what} (NaN positions)", nan_diff, x, got, expected)
    both = ~expected.isnan()
    g, e = got[both], expected[both]
    inf_diff = (e.isinf() | g.isinf()) & (g != e)
    assert not inf_diff.any(), _report(f"{what} (infinities)", inf_diff, x[both], g, e)
    if zero_sign:
        signs = (e == 0) & (g == 0) & (e.signbit() != g.signbit())
        assert not signs.any(), _report(f"{what} (sign of zero)", signs, x[both], g, e)
    finite = e.isfinite() & g.isfinite()
    tiny = torch.finfo(e.dtype).tiny
    tol = (ulps * ulp(e)).clamp_min(tiny)
    far = finite & ((g.double() - e.double()).abs() > tol.double())
    assert not far.any(), _report(f"{what} (> {ulps} ulp)", far, x[both], g, e)


def assert_grads_close(got: Tensor, expected: Tensor, x: Tensor, g: Tensor, what: str) -> None:
    """Gradients agree to a few ulp *of the incoming gradient*.

    f' is computed from the rounded output y (sigma' = y (1 - y), tanh' = 1 - y^2), and near
    saturation 1 - y keeps only the bits of y that survived rounding, in our kernel as in
    PyTorch's. So the honest tolerance is absolute, a few eps times |g|, plus a few ulp.
    """
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    nan_diff = got.isnan() != expected.isnan()
    assert not nan_diff.any(), _report(f"{what} (NaN positions)", nan_diff, x, got, expected)
    eps = torch.finfo(expected.dtype).eps
    tol = 4 * eps * g.abs() + 4 * ulp(expected) + torch.finfo(expected.dtype).tiny
    ok = got.isnan() | ((got.double() - expected.double()).abs() <= tol.double())
    assert ok.all(), _report(what, ~ok, x, got, expected)


def value_and_grad(f: Callable[[Tensor], Tensor], x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    leaf = x.detach().clone().requires_grad_(True)
    y = f(leaf)
    (dx,) = torch.autograd.grad(y, leaf, g)
    return y.detach(), dx


def wide_random(n: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """Random signs and magnitudes spread log-uniformly over 10^-8 .. 10^3."""
    mag = torch.pow(10.0, torch.empty(n, dtype=torch.float64).uniform_(-8, 3))
    sign = torch.randint(0, 2, (n,), dtype=torch.float64) * 2 - 1
    return (sign * mag).to(dtype=dtype, device=device)


# --- registry, wrappers, input checks --------------------------------------------------------


def test_registry_maps_names_to_functions_modules_and_torch_references() -> None:
    assert list(act.ACTIVATIONS) == NAMES
    assert act.ACTIVATIONS == {
        "sigmoid": act.SigmoidFunction,
        "tanh": act.TanhFunction,
        "relu": act.ReLUFunction,
    }
    assert act.MODULES == {"sigmoid": act.Sigmoid, "tanh": act.Tanh, "relu": act.ReLU}
    assert act.TORCH_MODULES == {
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
    }
    for name in NAMES:
        fn = act.get(name)
        assert fn is act.ACTIVATIONS[name]
        assert issubclass(fn, torch.autograd.Function) and fn.generate_vmap_rule


def test_get_rejects_unknown_names_in_the_project_style() -> None:
    with pytest.raises(ValueError) as e:
        act.get("gelu")
    assert str(e.value) == "activation: expected one of 'sigmoid', 'tanh', 'relu', got 'gelu'"


@pytest.mark.parametrize("name", NAMES)
def test_modules_are_drop_ins_for_torch_modules(name: str) -> None:
    mine, theirs = act.MODULES[name](), act.TORCH_MODULES[name]()
    assert repr(mine) == repr(theirs) == f"{type(theirs).__name__}()"
    x = torch.randn(4, 5)
    assert_values_close(mine(x), theirs(x), x, 4, f"{name} module")
    # called by keyword, with torch's argument name
    assert_values_close(mine(input=x), theirs(input=x), x, 4, f"{name} module, input=")


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_the_project_error(name: str) -> None:
    f = FUNCTIONAL[name]
    with pytest.raises(TypeError, match=r"^x: expected a floating-point tensor, got torch\.int64$"):
        f(torch.arange(3))
    with pytest.raises(TypeError, match=r"^x: expected a torch\.Tensor, got 'list'$"):
        f([1.0, 2.0])


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_a_plain_static_function(name: str) -> None:
    # The manual-backprop code calls Fn.forward(x) directly, without autograd.
    x = torch.randn(3, 4)
    with torch.no_grad():
        y = act.ACTIVATIONS[name].forward(x)
    assert_values_close(y, BUILTIN[name](x), x, 4, f"{name}.forward")
    assert_values_close(act.ACTIVATIONS[name].apply(x=x), y, x, 0, f"{name}.apply(x=...)")


# --- values and gradients against the built-ins ----------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", NAMES)
def test_edge_values_match_builtin(name: str, dtype: torch.dtype, device: torch.device) -> None:
    x = torch.tensor(EDGE_VALUES, dtype=dtype, device=device)
    g = torch.linspace(-2.0, 3.0, x.numel(), dtype=dtype, device=device)
    y, dx = value_and_grad(FUNCTIONAL[name], x, g)
    y_ref, dx_ref = value_and_grad(BUILTIN[name], x, g)
    assert_values_close(y, y_ref, x, 4, f"{name} value, {dtype}")
    if name == "relu":
        # Documented difference: at NaN PyTorch lets g through, our 1[y > 0] gives 0.
        dx_ref = torch.where(x.isnan(), torch.zeros_like(dx_ref), dx_ref)
    assert_grads_close(dx, dx_ref, x, g, f"{name} gradient, {dtype}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_saturated_and_special_values_are_exact(dtype: torch.dtype) -> None:
    big = torch.tensor([-1000.0, 1000.0, -math.inf, math.inf, -1e20, 1e20], dtype=dtype)
    assert act.sigmoid(big).tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert act.tanh(big).tolist() == [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]
    zeros = torch.tensor([0.0, -0.0], dtype=dtype)
    assert act.sigmoid(zeros).tolist() == [0.5, 0.5]
    assert act.tanh(zeros).signbit().tolist() == [False, True]  # tanh(-0) = -0, as torch
    assert act.relu(zeros).signbit().tolist() == [False, True]  # relu(-0) = -0, as torch
    for f in FUNCTIONAL.values():
        assert f(torch.tensor([math.nan], dtype=dtype)).isnan().all()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", NAMES)
def test_random_wide_range_matches_builtin(name: str, dtype: torch.dtype) -> None:
    x = wide_random(20_000, dtype)
    g = torch.randn_like(x)
    y, dx = value_and_grad(FUNCTIONAL[name], x, g)
    y_ref, dx_ref = value_and_grad(BUILTIN[name], x, g)
    assert_values_close(y, y_ref, x, 4, f"{name} value, {dtype}")
    assert_grads_close(dx, dx_ref, x, g, f"{name} gradient, {dtype}")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_tiny_inputs_keep_full_relative_precision(name: str, dtype: torch.dtype) -> None:
    # tanh x ~ x near 0: formulas like 2 sigma(2x) - 1 return 0 or garbage here.
    lo = math.log10(torch.finfo(dtype).tiny) + 1
    mag = torch.logspace(lo, -1, 2000, dtype=torch.float64)
    x = torch.cat([mag, -mag]).to(dtype)
    y = FUNCTIONAL[name](x)
    assert_values_close(y, BUILTIN[name](x), x, 4, f"{name} near 0 vs built-in, {dtype}")
    # ... and against a reference computed in higher precision, where there is one
    if dtype == torch.float32:
        ref = BUILTIN[name](x.double()).float()
        assert_values_close(y, ref, x, 4, f"{name} near 0 vs float64 reference")


def test_tanh_of_a_subnormal_input_is_within_the_smallest_normal() -> None:
    # Documented limit: 2/expm1(2x) overflows for subnormal x, and tanh x comes out as +-0.
    x = torch.tensor([1e-40, -1e-40, 1e-45, -1e-45])
    y = act.tanh(x)
    assert ((y - x).abs() <= torch.finfo(torch.float32).tiny).all(), (x, y)
    assert y.signbit().tolist() == x.signbit().tolist()


@pytest.mark.parametrize("name", NAMES)
def test_empty_zero_dim_and_non_contiguous_inputs(name: str) -> None:
    f, ref = FUNCTIONAL[name], BUILTIN[name]
    for x in [
        torch.empty(0, 3),
        torch.tensor(0.37),
        torch.randn(7, 5).t(),  # transposed
        torch.randn(10, 12)[::2, 1::3],  # strided
        torch.randn(3, 1).expand(3, 4),  # stride 0
    ]:
        g = torch.randn(x.shape)
        y, dx = value_and_grad(f, x, g)
        y_ref, dx_ref = value_and_grad(ref, x, g)
        assert y.shape == x.shape and dx.shape == x.shape
        assert_values_close(y, y_ref, x, 4, f"{name} on shape {tuple(x.shape)}")
        assert_grads_close(dx, dx_ref, x, g, f"{name} gradient on shape {tuple(x.shape)}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_matches_builtin(name: str, dtype: torch.dtype) -> None:
    # Computed in float32 and rounded once, as PyTorch's CPU kernels do.
    x = torch.cat([torch.randn(4000) * 4, torch.tensor(EDGE_VALUES)]).to(dtype)
    g = torch.randn(x.shape).to(dtype)
    y, dx = value_and_grad(FUNCTIONAL[name], x, g)
    y_builtin, dx_builtin = value_and_grad(BUILTIN[name], x, g)
    assert y.dtype == dx.dtype == dtype
    # within the dtype's rounding of the exact value (a float64 reference) ...
    assert_values_close(y, BUILTIN[name](x.double()).to(dtype), x, 1, f"{name} vs float64")
    # ... and equal to the built-in's result, or one ulp from it
    assert_values_close(y, y_builtin, x, 1, f"{name} vs built-in, {dtype}")
    # The gradient, g * f'(y), is rounded once from float32: within an ulp of the value
    # computed in float64 from the same y. PyTorch's float16 sigmoid backward rounds an
    # intermediate as well, so it can sit 2 ulp away from that; we allow it that much.
    exact = g.double() * act.ACTIVATIONS[name].derivative(y.double())
    assert_values_close(dx, exact.to(dtype), x, 1, f"{name} grad vs float64", zero_sign=False)
    if name == "relu":
        dx_builtin = torch.where(x.isnan(), torch.zeros_like(dx_builtin), dx_builtin)
    assert_values_close(dx, dx_builtin, x, 2, f"{name} grad vs built-in, {dtype}", zero_sign=False)


# --- backward: derivative, kinks, manners ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_derivative_from_output_equals_autograd(name: str) -> None:
    x = torch.randn(500, dtype=torch.float64) * 3
    fn = act.ACTIVATIONS[name]
    d = fn.derivative(fn.forward(x))
    (expected,) = torch.autograd.grad(BUILTIN[name](x.requires_grad_()), x, torch.ones_like(x))
    assert d.dtype == x.dtype
    assert_grads_close(d, expected, x.detach(), torch.ones_like(x), f"{name}.derivative")


def test_relu_derivative_is_zero_at_zero_and_minus_zero() -> None:
    x = torch.tensor([0.0, -0.0, -1.0, 1e-30, 2.0], requires_grad=True)
    (dx,) = torch.autograd.grad(act.relu(x), x, torch.ones(5))
    assert dx.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    d = act.ReLUFunction.derivative(act.ReLUFunction.forward(x.detach()))
    assert d.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0] and d.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_grad_output_is_never_written(name: str) -> None:
    f = FUNCTIONAL[name]
    x = torch.randn(6, requires_grad=True)
    # an expanded grad_output: one element behind six views, an in-place write would hit all
    g = torch.ones(1).expand(6)
    f(x).backward(g)
    assert g.tolist() == [1.0] * 6
    expected = act.ACTIVATIONS[name].derivative(f(x).detach())
    assert_grads_close(x.grad, expected, x.detach(), g, f"{name} with expanded grad")
    # one grad_output shared between two branches: the second must see it unchanged
    x.grad = None
    shared = torch.full((6,), 0.5)
    z = x * 1.0
    (f(z) + f(z)).backward(shared)
    assert shared.tolist() == [0.5] * 6
    assert_grads_close(x.grad, expected, x.detach(), shared, f"{name} with a shared grad")


@pytest.mark.parametrize("name", NAMES)
def test_backward_keeps_only_the_output(name: str) -> None:
    x = torch.randn(5, requires_grad=True)
    y = FUNCTIONAL[name](x)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 1 and torch.equal(saved[0], y)


# --- higher order, forward mode, torch.func --------------------------------------------------


def _away_from_kink(n: int) -> Tensor:
    x = torch.randn(n, dtype=torch.float64)
    return (x + 0.1 * x.sign()).requires_grad_()  # relu is not differentiable at 0


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # torch's
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_forward_mode_and_batched(name: str) -> None:
    f = FUNCTIONAL[name]
    x = _away_from_kink(8)
    assert torch.autograd.gradcheck(
        f, x, check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True
    )
    assert torch.autograd.gradgradcheck(f, x, check_batched_grad=True, check_fwd_over_rev=True)


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_matches_builtin(name: str) -> None:
    # d/dx of sum f'(x) is f''(x) elementwise, taken through our backward's own graph
    def second(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        (d1,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), x)
        return d2

    x = _away_from_kink(50)
    torch.testing.assert_close(second(FUNCTIONAL[name], x), second(BUILTIN[name], x))


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_jvp_matches_builtin(name: str) -> None:
    import torch.autograd.forward_ad as fwad

    x = _away_from_kink(20).detach()
    t = torch.randn_like(x)
    with fwad.dual_level():
        out = fwad.unpack_dual(FUNCTIONAL[name](fwad.make_dual(x, t)))
        ref = fwad.unpack_dual(BUILTIN[name](fwad.make_dual(x, t)))
    torch.testing.assert_close(out.primal, ref.primal)
    torch.testing.assert_close(out.tangent, ref.tangent)


@pytest.mark.parametrize("name", NAMES)
def test_torch_func_transforms_match_builtin(name: str) -> None:
    f, ref = FUNCTIONAL[name], BUILTIN[name]
    x = _away_from_kink(6).detach()
    xs = _away_from_kink(12).detach().view(3, 4)
    t = torch.randn_like(x)
    close = torch.testing.assert_close
    close(torch.func.vmap(f)(xs), torch.func.vmap(ref)(xs))
    close(torch.func.jacrev(f)(x), torch.func.jacrev(ref)(x))
    close(torch.func.jacfwd(f)(x), torch.func.jacfwd(ref)(x))
    close(torch.func.jvp(f, (x,), (t,)), torch.func.jvp(ref, (x,), (t,)))
    close(torch.func.grad(lambda v: f(v).sum())(x), torch.func.grad(lambda v: ref(v).sum())(x))
    per_row = torch.func.vmap(torch.func.grad(lambda v: f(v).square().sum()))
    per_row_ref = torch.func.vmap(torch.func.grad(lambda v: ref(v).square().sum()))
    close(per_row(xs), per_row_ref(xs))


# --- negative control: the checks above do catch a wrong backward ---------------------------


class _SigmoidOffByOnePercent(act.SigmoidFunction):
    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y) * 1.01


class _TanhWithoutTheSquare(act.TanhFunction):
    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad_output * (1 - y)  # should be 1 - y**2


@pytest.mark.parametrize(
    ("wrong", "name"), [(_SigmoidOffByOnePercent, "sigmoid"), (_TanhWithoutTheSquare, "tanh")]
)
def test_a_wrong_backward_is_caught(wrong: type[torch.autograd.Function], name: str) -> None:
    x = _away_from_kink(8)
    assert not torch.autograd.gradcheck(wrong.apply, x, raise_exception=False)
    g = torch.randn(8, dtype=torch.float64)
    _, dx = value_and_grad(wrong.apply, x, g)
    _, dx_ref = value_and_grad(BUILTIN[name], x, g)
    with pytest.raises(AssertionError, match="gradient"):
        assert_grads_close(dx, dx_ref, x.detach(), g, f"wrong {name} gradient")


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_each_device(name: str, device: torch.device) -> None:
    x = wide_random(1000, torch.float32, device)
    g = torch.randn(x.shape, device=device)
    y, dx = value_and_grad(FUNCTIONAL[name], x, g)
    y_ref, dx_ref = value_and_grad(BUILTIN[name], x, g)
    assert y.device == dx.device == x.device
    assert_values_close(y, y_ref, x, 4, f"{name} on {device}")
    assert_grads_close(dx, dx_ref, x, g, f"{name} gradient on {device}")


# --- the rule: no built-in activation anywhere -----------------------------------------------

_FORBIDDEN = {
    *("sigmoid", "tanh", "relu", "expit", "threshold", "logsigmoid", "softplus", "hardtanh"),
    *("sigmoid_backward", "tanh_backward", "threshold_backward"),  # their hand-made kernels
}


def test_no_builtin_activation_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(50, dtype=torch.float64)
    t = torch.randn_like(x)
    expected = {n: (BUILTIN[n](x), torch.func.jvp(BUILTIN[n], (x,), (t,))[1]) for n in NAMES}

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a built-in activation was called")

    for owner, attr in [
        (torch, "sigmoid"),
        (torch, "tanh"),
        (torch, "relu"),
        (torch, "sigmoid_"),
        (torch, "tanh_"),
        (torch, "relu_"),
        (torch.nn.functional, "sigmoid"),
        (torch.nn.functional, "tanh"),
        (torch.nn.functional, "relu"),
        (torch.nn.functional, "threshold"),
        (torch.special, "expit"),
        (torch.Tensor, "sigmoid"),
        (torch.Tensor, "tanh"),
        (torch.Tensor, "relu"),
    ]:
        monkeypatch.setattr(owner, attr, boom)

    for name in NAMES:
        leaf = x.clone().requires_grad_()
        y = FUNCTIONAL[name](leaf)
        (dx,) = torch.autograd.grad(y, leaf, torch.ones_like(y), create_graph=True)
        dx.sum().backward()  # double backward
        tangent = torch.func.jvp(FUNCTIONAL[name], (x,), (t,))[1]
        torch.testing.assert_close(y.detach(), expected[name][0])
        torch.testing.assert_close(tangent, expected[name][1])


def test_source_calls_no_builtin_activation() -> None:
    tree = ast.parse(inspect.getsource(act))
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    bad = sorted({c for c in calls if c.rstrip("_") in _FORBIDDEN})
    assert not bad, f"activations.py calls built-in activations or their kernels: {bad}"
