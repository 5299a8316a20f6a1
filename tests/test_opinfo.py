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
    """As :func:`tolerance`, but 3 ulps for cross-entropy in half precision.

    PyTorch's fused log-softmax backward rounds to half precision once; ours is written out
    as softmax(z)·Σq − q (exp, multiply, subtract), each rounded; and with probabilities and
    weights it multiplies in another order: 1-2 ulps apart.
    """
    if op.name == "nn.functional.cross_entropy" and dtype in HALF:
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
