"""Exercise: backpropagation through a whole MLP, by hand (no autograd).

``model`` is a ``dlconcepts.layers.MLP``: its children are ``hidden1``, ``act1``,
``hidden2``, ``act2``, ..., ``output``, in order; every linear layer has a ``weight`` of
shape (out, in) and a ``bias`` of shape (out,); ``model.activation`` names the hidden
activation. The cost C is the mean cross-entropy of the logits over the batch.

- ``forward(model, x)`` runs the network on the batch ``x`` (N, in), layer by layer, and
  returns what ``backward`` will need: each linear layer's input and each hidden layer's
  output.
- ``backward(model, values, target)`` returns ``{parameter name: ∂C/∂parameter}`` for every
  name of ``model.named_parameters()``, each with its parameter's shape. Start at the top:
  how C changes with each logit. Then walk down, one layer at a time: a hidden unit reaches
  the cost through every unit above it, so its share is a sum over those paths; through its
  activation, it is scaled by how fast that activation's output changes with its input.

You may use ``torch.softmax`` and ``dlconcepts.activations.get(model.activation).derivative``
(the activation's derivative, from its output). Autograd is switched off while this runs.

Check it, from the folder this file is in:

    dlconcepts check --function backprop.py:gradients --against backprop
"""

import torch  # noqa: F401  (you will need it)
from torch import Tensor

from dlconcepts.layers import MLP


def forward(model: MLP, x: Tensor) -> list[Tensor]:
    raise NotImplementedError("forward: your code here")


def backward(model: MLP, values: list[Tensor], target: Tensor) -> dict[str, Tensor]:
    raise NotImplementedError("backward: your code here")


def gradients(model: MLP, x: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Every parameter's gradient of the cost, by hand: the function the check calls."""
    return backward(model, forward(model, x), target)
