"""PyTorch's own test inputs through our drop-ins: the OpInfo database (``op_db``) that
PyTorch's test-suite runs every operator against, here for the six hand-written ones.

For each OpInfo reference input (shapes, scalars, empty tensors, K-d cross-entropy, class
weights, ...) in float16, bfloat16, float32 and float64, ours is called with the sample's own
args and kwargs and compared with PyTorch's, forward and backward, within the OpInfo's own
tolerances where it declares them for every test (else ``torch.testing``'s defaults).

``torch.testing._internal`` is PyTorch's private test machinery (it needs the ``expecttest``
package): if it moves or fails to import, the whole file is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from dlconcepts import activations, layers, losses

try:
    from torch.testing._internal.common_device_type import precisionOverride, toleranceOverride
    from torch.testing._internal.common_methods_invocations import op_db
except Exception as exc:  # moved, renamed, or expecttest missing
    pytest.skip(f"PyTorch's OpInfo database is unavailable: {exc!r}", allow_module_level=True)

OURS: dict[str, Callable[..., torch.Tensor]] = {
    "sigmoid": activations.sigmoid,
    "tanh": activations.tanh,
    "nn.functional.relu": activations.relu,
    "nn.functional.linear": layers.linear,
    "nn.functional.cross_entropy": losses.cross_entropy,
    "nn.functional.mse_loss": losses.mse_loss,
}
OPS = {op.name: op for op in op_db if op.name in OURS and not op.variant_test_name}
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def test_every_op_is_in_op_db() -> None:
    assert set(OPS) == set(OURS)


HALF = (torch.float16, torch.bfloat16)
# the ops computed in float32 and rounded once in half precision (the losses)
EXACT = ["nn.functional.cross_entropy", "nn.functional.mse_loss"]
# Gradients are compared on samples up to this size; the reference-numerics tensors of the
# elementwise ops (~3 million values each) are compared forward only, to keep this file fast.
GRAD_NUMEL = 1 << 16


def tolerance(op: Any, dtype: torch.dtype) -> dict[str, float]:
    """The op's own (atol, rtol) for ``dtype`` from decorators that apply to all its tests."""
    for decorator in op.decorators:
        if isinstance(decorator, toleranceOverride) and dtype in decorator.d:
            return {"atol": decorator.d[dtype].atol, "rtol": decorator.d[dtype].rtol}
        if isinstance(decorator, precisionOverride) and dtype in decorator.d:
            return {"atol": decorator.d[dtype], "rtol": 0.0}
    return {}  # torch.testing's defaults


def grad_tolerance(op: Any, dtype: torch.dtype) -> dict[str, float]:
    """As :func:`tolerance`, but 3 ulps for the losses in half precision.

    Ours compute in float32 and round once (checked against the exact value below); PyTorch's
    round some steps to half precision (mse_loss the difference before squaring it, the
    weighted cross-entropy the per-example losses), up to 2 ulps from the exact value.
    """
    if op.name in EXACT and dtype in HALF:
        eps = torch.finfo(dtype).eps
        return {"atol": 3 * eps, "rtol": 3 * eps}
    return tolerance(op, dtype)


def unsupported(name: str, sample: Any) -> str | None:
    """Why a sample uses something we documentedly don't support, or None."""
    if name == "nn.functional.relu" and sample.input.isnan().any():
        # activations.ReLUFunction: gradient 0 at NaN, where torch passes the gradient through
        return "relu's gradient at NaN is 0 by design"
    return None


def samples(name: str, dtype: torch.dtype) -> Iterator[Any]:
    yield from OPS[name].reference_inputs("cpu", dtype, requires_grad=True)


def differentiable(sample: Any) -> list[torch.Tensor]:
    tensors = [sample.input, *sample.args, *sample.kwargs.values()]
    return [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(OURS))
def test_reference_inputs_match_torch(name: str, dtype: torch.dtype) -> None:
    op, ours = OPS[name], OURS[name]
    tol = grad_tol = grad_tolerance(op, dtype)
    checked = 0
    for i, sample in enumerate(samples(name, dtype)):
        if unsupported(name, sample):
            continue
        what = f"{name} {dtype} sample {i}: {sample.summary() if hasattr(sample, 'summary') else sample}"
        got = ours(sample.input, *sample.args, **sample.kwargs)
        expected = op(sample.input, *sample.args, **sample.kwargs)
        torch.testing.assert_close(
            got, expected, equal_nan=True, **tol, msg=lambda m, what=what: f"{what}\n{m}"
        )
        inputs = differentiable(sample)
        if inputs and 0 < sample.input.numel() <= GRAD_NUMEL:
            v = torch.randn(expected.shape, generator=torch.Generator().manual_seed(i)).to(dtype)
            got_grads = torch.autograd.grad((got * v).sum(), inputs, allow_unused=True)
            expected_grads = torch.autograd.grad((expected * v).sum(), inputs, allow_unused=True)
            for k, (g, e) in enumerate(zip(got_grads, expected_grads)):
                torch.testing.assert_close(
                    g,
                    e,
                    equal_nan=True,
                    **grad_tol,
                    msg=lambda m, k=k, w=what: f"{w} grad {k}\n{m}",
                )
        checked += 1
    assert checked, f"no sample of {name} was compared"


# --- half precision: computed in float32, rounded once ---------------------------------------

# The losses widen float16 and bfloat16 to float32 and round the result (and each gradient)
# once, so they agree with the exact value, torch's float64 result rounded to the dtype, to
# within the rounding itself. A formula that rounds after each step, as multiplying the
# weights or subtracting the one-hot in half precision do, is several ulps off and fails here.


def exact_tolerance(dtype: torch.dtype) -> dict[str, float]:
    """One ulp relative (the final rounding and float32's own error), and an absolute 1e-5,
    well below the gradients near 0 that a half-precision subtraction of a one-hot rounds
    to 0 (bfloat16 grad −8.9e-5 in the (2, 3, 1, 2) sample)."""
    return {"atol": 1e-5, "rtol": torch.finfo(dtype).eps}


def widen(t: Any) -> Any:
    """A float tensor as a float64 leaf (exactly, keeping requires_grad); anything else as is."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        return t
    return t.detach().double().requires_grad_(t.requires_grad)


def assert_exact(
    ours: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    call: tuple[torch.Tensor, list[Any], dict[str, Any]],
    dtype: torch.dtype,
    seed: int,
    what: str,
) -> None:
    """``ours(*call)`` and its gradients in ``dtype`` are ``reference`` computed in float64 on
    the same values, rounded to ``dtype``, within :func:`exact_tolerance`."""
    input, args, kwargs = call
    tol = exact_tolerance(dtype)
    got = ours(input, *args, **kwargs)
    wide_input, wide_args = widen(input), [widen(a) for a in args]
    wide_kwargs = {k: widen(v) for k, v in kwargs.items()}
    exact = reference(wide_input, *wide_args, **wide_kwargs)
    torch.testing.assert_close(
        got, exact.to(dtype), equal_nan=True, **tol, msg=lambda m: f"{what}\n{m}"
    )
    pairs = [
        (t, w)
        for t, w in zip(
            [input, *args, *kwargs.values()], [wide_input, *wide_args, *wide_kwargs.values()]
        )
        if isinstance(t, torch.Tensor) and t.requires_grad
    ]
    if not pairs or not 0 < input.numel() <= GRAD_NUMEL:
        return
    v = torch.randn(got.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    got_grads = torch.autograd.grad((got * v).sum(), [t for t, _ in pairs], allow_unused=True)
    exact_grads = torch.autograd.grad(
        (exact * v.double()).sum(), [w for _, w in pairs], allow_unused=True
    )
    for k, (g, e) in enumerate(zip(got_grads, exact_grads)):
        torch.testing.assert_close(
            g,
            None if e is None else e.to(dtype),
            equal_nan=True,
            **tol,
            msg=lambda m, k=k: f"{what} grad {k} (exact: float64, rounded once)\n{m}",
        )


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("name", EXACT)
def test_half_precision_is_the_exact_value_rounded_once(name: str, dtype: torch.dtype) -> None:
    checked = 0
    for i, sample in enumerate(samples(name, dtype)):
        what = f"{name} {dtype} sample {i}: {sample.summary() if hasattr(sample, 'summary') else sample}"
        call = (sample.input, list(sample.args), dict(sample.kwargs))
        assert_exact(OURS[name], OPS[name], call, dtype, i, what)
        checked += 1
    assert checked, f"no sample of {name} was compared"


# PyTorch's ModuleInfo samples (module_db) of the loss modules: the constructor's options
# (class weights, ignore_index, label smoothing, reductions) on K-d and probability targets.
MODULE_LOSSES: dict[type, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    torch.nn.CrossEntropyLoss: (losses.cross_entropy, torch.nn.functional.cross_entropy),
    torch.nn.MSELoss: (losses.mse_loss, torch.nn.functional.mse_loss),
}


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("module", MODULE_LOSSES, ids=lambda m: m.__name__)
def test_half_precision_module_samples_are_exact(module: type, dtype: torch.dtype) -> None:
    from torch.testing._internal.common_modules import module_db

    (info,) = [m for m in module_db if m.module_cls is module]
    ours, theirs = MODULE_LOSSES[module]
    inputs = info.module_inputs_func(
        info, device="cpu", dtype=dtype, requires_grad=True, training=True
    )
    for i, sample in enumerate(inputs):
        kwargs = {**sample.constructor_input.kwargs, **sample.forward_input.kwargs}
        (input, *args) = sample.forward_input.args
        what = f"{module.__name__} {dtype} sample {i} ({sample.desc}): {kwargs}"
        assert_exact(ours, theirs, (input, args, kwargs), dtype, i, what)
    assert inputs, f"no module sample of {module.__name__}"
