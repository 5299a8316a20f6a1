"""Loss vs cost.

The **loss** is the error of one training example; the **cost** is the error over the
whole set (or batch): the mean of the losses. Every function here returns the per-example
losses with ``reduction="none"`` and the cost with ``reduction="mean"`` (the default, as
in ``torch.nn.functional``); ``"sum"`` adds the losses up::

    losses = cross_entropy(logits, target, reduction="none")  # (B,)  one loss per example
    cost = cross_entropy(logits, target)                       # ()    = losses.mean()

Training minimizes the cost; looking at the individual losses tells *which* examples the
network gets wrong and how badly (``dlconcepts train`` prints both).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dlconcepts._checks import invalid, one_of

REDUCTIONS = ("none", "mean", "sum")


class TargetError(ValueError, IndexError):
    """A class index outside [0, C): a ValueError, and an IndexError like PyTorch's own."""


def softmax(logits: Tensor) -> Tensor:
    r"""Softmax over the last dimension, by hand: :math:`p_c = e^{z_c - m} / \sum_k e^{z_k - m}`.

    Subtracting the row maximum ``m`` changes nothing mathematically (it cancels) but keeps
    every exponent ≤ 0, so ``exp`` cannot overflow even for logits of ±1e4.
    """
    e = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def one_hot(target: Tensor, like: Tensor) -> Tensor:
    """Class indices (...,) as rows of 0s with a 1 at the class, shaped and typed ``like``."""
    return torch.zeros_like(like).scatter_(-1, target.unsqueeze(-1), 1)


def cross_entropy_derivative(logits: Tensor, target: Tensor) -> Tensor:
    r""":math:`\partial \ell_i / \partial z_i = \operatorname{softmax}(z_i) - \operatorname{onehot}(t_i)`.

    The one formula for the gradient of the per-example loss: ``CrossEntropyFunction``'s
    backward scales it by the incoming gradient, the manual backprop by 1/B (the mean).
    Written with differentiable ops, so the backward can itself be differentiated.
    """
    return softmax(logits) - one_hot(target, logits)


class CrossEntropyFunction(torch.autograd.Function):
    r"""Softmax cross-entropy per example, with a hand-written backward.

    For logits z (B, C) and class indices t (B,):

    .. math::
        \ell_i = -\log \operatorname{softmax}(z_i)_{t_i}
               = \log \textstyle\sum_c e^{z_{ic}} - z_{i t_i}
        \qquad
        \frac{\partial \ell_i}{\partial z_{ic}} = \operatorname{softmax}(z_i)_c - [c = t_i]

    The log-sum-exp is computed as ``m + log Σ exp(z − m)`` with m the row maximum, so
    logits of ±1e4 give finite losses. The backward recomputes the softmax from the saved
    logits rather than keeping it: one (B, C) tensor less to hold between the passes.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(logits: Tensor, target: Tensor) -> Tensor:
        shifted = logits - logits.amax(dim=-1, keepdim=True)  # (B, C), every entry ≤ 0
        log_sum_exp = shifted.exp().sum(dim=-1).log()  # (B,) the shift cancels below
        return log_sum_exp - shifted.gather(-1, target.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        logits, target = inputs
        ctx.save_for_backward(logits, target)
        ctx.save_for_forward(logits, target)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        logits, target = ctx.saved_tensors
        return cross_entropy_derivative(logits, target) * grad_output.unsqueeze(-1), None

    @staticmethod
    def jvp(ctx: Any, logits_t: Tensor, target_t: None) -> Tensor:
        logits, target = ctx.saved_tensors
        return (cross_entropy_derivative(logits, target) * logits_t).sum(dim=-1)


def mse_derivative(input: Tensor, target: Tensor) -> Tensor:
    r""":math:`\partial (x - y)^2 / \partial x = 2 (x - y)` (and its negative for y)."""
    return 2 * (input - target)


class MSEFunction(torch.autograd.Function):
    r"""Squared error per element, with a hand-written backward.

    .. math::
        \ell = (x - y)^2 \qquad \frac{\partial \ell}{\partial x} = 2(x - y)
        \qquad \frac{\partial \ell}{\partial y} = -2(x - y)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, target: Tensor) -> Tensor:
        diff = input - target
        return diff * diff

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        input, target = inputs
        ctx.save_for_backward(input, target)
        ctx.save_for_forward(input, target)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None]:
        input, target = ctx.saved_tensors
        grad = mse_derivative(input, target) * grad_output
        needs_input, needs_target = ctx.needs_input_grad
        return grad if needs_input else None, -grad if needs_target else None

    @staticmethod
    def jvp(ctx: Any, input_t: Tensor | None, target_t: Tensor | None) -> Tensor:
        # d(x - y)^2 = 2 (x - y) (dx - dy); a missing tangent is 0
        input, target = ctx.saved_tensors
        diff_t = (0 if input_t is None else input_t) - (0 if target_t is None else target_t)
        return mse_derivative(input, target) * diff_t


def reduce(losses: Tensor, reduction: str) -> Tensor:
    """From per-example losses to what ``reduction`` asks for: themselves, the cost (mean), or the sum."""
    if reduction == "none":
        return losses
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    raise one_of("reduction", reduction, REDUCTIONS)


def _out_of_range(target: Tensor, n_classes: int) -> bool:
    low, high = torch.aminmax(target)  # one pass, as this runs on every training step
    return low.item() < 0 or high.item() >= n_classes  # Python comparisons: no more tensor ops


def cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Hand-written drop-in for :func:`torch.nn.functional.cross_entropy` with class indices.

    ``logits`` (B, C) or (C,), ``target`` (B,) or () of integer class indices in [0, C).
    ``reduction="none"`` gives the per-example losses, ``"mean"`` the cost, ``"sum"`` their sum.

    Example::

        >>> cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        tensor(0.1269)
    """
    if reduction not in REDUCTIONS:
        raise one_of("reduction", reduction, REDUCTIONS)
    if logits.dim() not in (1, 2) or not logits.is_floating_point():
        raise invalid(
            "logits",
            f"{logits.dtype} {tuple(logits.shape)}",
            "a float tensor of shape (B, C) or (C,)",
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise invalid(
            "target dtype", target.dtype, "integer class indices (torch.int64), not probabilities"
        )
    if tuple(target.shape) != tuple(logits.shape[:-1]):
        raise invalid(
            "target shape",
            tuple(target.shape),
            f"{tuple(logits.shape[:-1])} for logits {tuple(logits.shape)}",
        )
    n_classes = logits.shape[-1]
    if target.numel() and _out_of_range(target, n_classes):
        bad = target[(target < 0) | (target >= n_classes)][0].item()
        raise invalid("target", bad, f"class indices in [0, {n_classes - 1}]", TargetError)
    losses = CrossEntropyFunction.apply(logits, target.long())
    return reduce(losses, reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Hand-written drop-in for :func:`torch.nn.functional.mse_loss` (equal shapes, no broadcasting)."""
    if reduction not in REDUCTIONS:
        raise one_of("reduction", reduction, REDUCTIONS)
    if input.shape != target.shape:
        raise invalid(
            "target shape", tuple(target.shape), f"the input's shape {tuple(input.shape)}"
        )
    return reduce(MSEFunction.apply(input, target), reduction)
