"""Mixed precision: under ``torch.autocast`` our pieces give the built-ins' dtypes and gradients.

Autocast runs matrix products in bfloat16 or float16 and losses in float32; the backward runs
after the ``with`` block, so a Function must carry the forward's autocast state into it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from dlconcepts import activations, layers, losses

# (device, autocast dtype): bfloat16 and float16 on CPU, both on CUDA where there is one
CASTS = [
    ("cpu", torch.bfloat16),
    ("cpu", torch.float16),
    *[
        pytest.param(
            "cuda",
            dtype,
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
            ],
        )
        for dtype in (torch.float16, torch.bfloat16)
    ],
]


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """A few roundings in ``dtype``: torch.testing's defaults for it, doubled."""
    return {"rtol": 2 * torch.finfo(dtype).eps, "atol": 2e-5}


def pair(activation: str, device: str) -> tuple[layers.MLP, layers.MLP]:
    """Our MLP and the built-in one with the same weights."""
    ours = layers.MLP((20, 16, 8, 5), activation, device=device)
    theirs = layers.MLP((20, 16, 8, 5), activation, impl="torch", device=device)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def step(
    model: torch.nn.Module,
    cost: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    device: str,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """A training step's forward under autocast, backward after it, as the AMP recipe has it."""
    model.zero_grad()
    with torch.autocast(device, dtype=dtype):
        logits = model(x)
        loss = cost(logits, y)
    loss.backward()
    return logits, loss, {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("device, dtype", CASTS)
@pytest.mark.parametrize("activation", list(activations.ACTIVATIONS))
def test_an_mlp_training_step_under_autocast_is_the_builtins(
    activation: str, device: str, dtype: torch.dtype
) -> None:
    ours, theirs = pair(activation, device)
    x, y = torch.randn(32, 20, device=device), torch.randint(0, 5, (32,), device=device)
    logits, loss, grads = step(ours, losses.cross_entropy, x, y, device, dtype)
    t_logits, t_loss, t_grads = step(theirs, F.cross_entropy, x, y, device, dtype)
    assert (logits.dtype, loss.dtype) == (t_logits.dtype, t_loss.dtype) == (dtype, torch.float32)
    torch.testing.assert_close(loss, t_loss, **tolerance(dtype))
    for name, g in grads.items():
        assert g.dtype == torch.float32, name  # the parameters' own dtype
        torch.testing.assert_close(g, t_grads[name], **tolerance(dtype), msg=name)


def _pieces() -> dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]]]:
    """name -> (ours, torch's)"""
    return {
        "linear": (layers.linear, F.linear),
        "sigmoid": (activations.sigmoid, torch.sigmoid),
        "tanh": (activations.tanh, torch.tanh),
        "relu": (activations.relu, torch.relu),
        "cross_entropy": (losses.cross_entropy, F.cross_entropy),
        "binary_cross_entropy_with_logits": (
            losses.binary_cross_entropy_with_logits,
            F.binary_cross_entropy_with_logits,
        ),
        "mse_loss": (losses.mse_loss, F.mse_loss),
    }


def _arguments(name: str, dtype: torch.dtype, device: str) -> list[Tensor]:
    x = torch.randn(6, 4, dtype=dtype, device=device, requires_grad=True)
    if name == "linear":
        w = torch.randn(3, 4, device=device, requires_grad=True)  # float32 parameters
        return [x, w, torch.randn(3, device=device, requires_grad=True)]
    if name == "cross_entropy":
        return [x, torch.randint(0, 4, (6,), device=device)]
    if name in ("binary_cross_entropy_with_logits", "mse_loss"):
        return [x, torch.rand(6, 4, dtype=dtype, device=device)]
    return [x]


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("device, dtype", CASTS)
@pytest.mark.parametrize("name", list(_pieces()))
def test_each_piece_gives_the_builtins_dtypes_under_autocast(
    name: str, device: str, dtype: torch.dtype, input_dtype: torch.dtype
) -> None:
    ours, theirs = _pieces()[name]
    args = _arguments(name, input_dtype, device)
    with torch.autocast(device, dtype=dtype):
        got, expected = ours(*args), theirs(*args)
    assert got.dtype == expected.dtype, f"{name}: input {input_dtype}, autocast {dtype}"
    grad_of = [a for a in args if a.requires_grad]
    got_grads = torch.autograd.grad(got.float().sum(), grad_of)
    expected_grads = torch.autograd.grad(expected.float().sum(), grad_of)
    for k, (g, e) in enumerate(zip(got_grads, expected_grads)):
        assert g.dtype == e.dtype, f"{name} grad {k}"
        torch.testing.assert_close(g, e, **tolerance(dtype), msg=f"{name} grad {k}")


def test_without_the_forwards_state_the_backward_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # negative control: what the recorded state prevents, a bfloat16 gradient meeting the
    # float32 weight in a backward that runs outside autocast
    monkeypatch.setattr(layers, "autocast_state", lambda device: (device, False, torch.bfloat16))
    ours, _ = pair("relu", "cpu")
    x, y = torch.randn(4, 20), torch.randint(0, 5, (4,))
    with pytest.raises(RuntimeError, match="dtype"):
        step(ours, losses.cross_entropy, x, y, "cpu", torch.bfloat16)


def test_compiled_under_autocast_is_one_graph_with_the_builtins_gradients() -> None:
    torch._dynamo.reset()
    ours, theirs = pair("sigmoid", "cpu")
    x, y = torch.randn(32, 20), torch.randint(0, 5, (32,))
    compiled = torch.compile(ours, fullgraph=True, backend="aot_eager")
    _, loss, grads = step(compiled, losses.cross_entropy, x, y, "cpu", torch.bfloat16)
    _, t_loss, t_grads = step(theirs, F.cross_entropy, x, y, "cpu", torch.bfloat16)
    torch.testing.assert_close(loss, t_loss, **tolerance(torch.bfloat16))
    for name, g in grads.items():
        torch.testing.assert_close(g, t_grads[name.removeprefix("_orig_mod.")], msg=name)
    torch._dynamo.reset()
