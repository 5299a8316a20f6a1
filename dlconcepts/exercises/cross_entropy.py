"""Exercise: the cross-entropy loss, forward and backward, by hand.

Write ``CrossEntropy``, a ``torch.autograd.Function`` computing what
``torch.nn.functional.cross_entropy`` computes for (N, C) logits ``input`` and N class
indices ``target``:

- ``forward(ctx, input, target)`` returns the cost: the mean over the batch of each
  example's loss, minus the log of the softmax probability of its target class (not
  ``F.cross_entropy``, ``log_softmax`` or ``logsumexp``). Logits of ±1000 must give a finite
  cost: e^1000 overflows, but a row's softmax does not change if the same number is
  subtracted from all of its logits. Keep in ``ctx`` what ``backward`` will need.
- ``backward(ctx, grad_output)`` returns two values, one per input of ``forward``: the
  gradient with respect to the logits, shape (N, C), and None for the targets (class
  indices have no gradient). ``grad_output`` is a scalar, how the loss downstream changes
  with the cost. Work out on paper how one example's loss changes with each of its logits:
  the target's logit and the others are pulled in opposite directions. Then remember that
  the cost is a mean.

Check it, from the folder this file is in:

    dlconcepts check --function cross_entropy.py:CrossEntropy --against cross_entropy
"""

from typing import Any

import torch
from torch import Tensor


class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError("forward: your code here")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        raise NotImplementedError("backward: your code here")
