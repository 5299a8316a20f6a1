"""Exercise: a linear layer, forward and backward, by hand.

Write ``Linear``, a ``torch.autograd.Function`` computing what ``torch.nn.functional.linear``
computes, for a batch ``x`` of shape (N, in), a ``weight`` of shape (out, in) and a ``bias``
of shape (out,):

- ``forward(ctx, x, weight, bias)`` returns the (N, out) outputs: for every example, each
  output unit's weighted sum of the inputs plus its bias (with ``@``, not ``F.linear``).
  Keep in ``ctx`` what ``backward`` will need.
- ``backward(ctx, grad_output)`` returns three gradients, one per input of ``forward``, each
  with the shape of that input. ``grad_output`` (N, out) holds how the loss changes with each
  output. An input feeds every output unit, so its gradient collects from all of them; a
  weight is used by every example, and so is the bias, so theirs collect over the batch.
  Let the shapes guide you: a gradient has its input's shape.

Check it, from the folder this file is in:

    dlconcepts check --function linear.py:Linear --against linear
"""

from typing import Any

import torch
from torch import Tensor


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        raise NotImplementedError("forward: your code here")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError("backward: your code here")
