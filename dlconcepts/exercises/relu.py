"""Exercise: ReLU, forward and backward, by hand.

Write ``ReLU``, a ``torch.autograd.Function``:

- ``forward(ctx, x)`` returns every element of ``x`` where it is positive, and 0 elsewhere
  (not ``torch.relu``). Keep in ``ctx`` what ``backward`` will need.
- ``backward(ctx, grad_output)`` returns the gradient of the loss with respect to ``x``.
  ``grad_output`` holds how the loss changes with each output; the chain rule multiplies it,
  element by element, by ReLU's derivative: how fast each output changes with its own input.
  Which inputs pass a change through, and which block it? At exactly 0 PyTorch takes 0.
  Return a new tensor: ``grad_output`` is not yours to change.

Check it, from the folder this file is in:

    dlconcepts check --function relu.py:ReLU --against relu

then train an MNIST network with it in every hidden layer:

    dlconcepts train --activation relu.py:ReLU --epochs 1
"""

from typing import Any

import torch
from torch import Tensor


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        raise NotImplementedError("forward: your code here")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        raise NotImplementedError("backward: your code here")
