"""Exercise: tanh, forward and backward, by hand.

Write ``Tanh``, a ``torch.autograd.Function``:

- ``forward(ctx, x)`` returns the hyperbolic tangent of every element of ``x``: odd, zero at
  0, between -1 and 1 (from ``torch.exp`` or ``torch.expm1``, not ``torch.tanh``). Keep in
  ``ctx`` what ``backward`` will need.
- ``backward(ctx, grad_output)`` returns the gradient of the loss with respect to ``x``.
  ``grad_output`` holds how the loss changes with each output y; the chain rule multiplies
  it, element by element, by tanh's derivative: how fast each output changes with its own
  input. Work the derivative out on paper first. It can be written in terms of the input x or
  of the output y, and the output is the one you already have.

It must also be right for x = ±1000 (e^1000 overflows: no NaN) and for tiny x, in float32 as
well as float64.

Check it, from the folder this file is in:

    dlconcepts check --function tanh.py:Tanh --against tanh

then train an MNIST network with it in every hidden layer:

    dlconcepts train --activation tanh.py:Tanh --epochs 1
"""

from typing import Any

import torch
from torch import Tensor


class Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        raise NotImplementedError("forward: your code here")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        raise NotImplementedError("backward: your code here")
