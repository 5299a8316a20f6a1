"""Exercise: the sigmoid, forward and backward, by hand.

Write ``Sigmoid``, a ``torch.autograd.Function``:

- ``forward(ctx, x)`` returns the logistic sigmoid of every element of ``x``: a number
  between 0 and 1, one half at 0 (use ``torch.exp``, not ``torch.sigmoid``). Keep in
  ``ctx`` what ``backward`` will need.
- ``backward(ctx, grad_output)`` returns the gradient of the loss with respect to ``x``.
  ``grad_output`` holds how the loss changes with each output y; the chain rule multiplies
  it, element by element, by the sigmoid's derivative: how fast each output changes with its
  own input. Work the derivative out on paper first. It can be written in terms of the
  input x or of the output y, and the output is the one you already have.

It must also be right for x = ±1000 (no NaN) and in float32 as well as float64.

Check it, from the folder this file is in:

    dlconcepts check --function sigmoid.py:Sigmoid --against sigmoid

then train an MNIST network with it in every hidden layer:

    dlconcepts train --activation sigmoid.py:Sigmoid --epochs 1
"""

from typing import Any

import torch
from torch import Tensor


class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        raise NotImplementedError("forward: your code here")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        raise NotImplementedError("backward: your code here")
