r"""Backpropagation and the chain rule, by hand: no ``.backward()``, no ``torch.autograd.grad``.

For an MLP with layers ``z_l = a_{l-1} W_lᵀ + b_l`` and ``a_l = f(z_l)`` (the output layer
gives logits ``z_L``, no activation) and the mean cross-entropy cost C over a batch of B:

1. Forward, keeping each layer's input ``a_{l-1}`` and output ``a_l``.
2. At the output: ``δ_L = ∂C/∂z_L = (softmax(z_L) − onehot(t)) / B``.
3. Walk backwards. For each layer: ``∂C/∂W_l = δ_lᵀ a_{l-1}``, ``∂C/∂b_l = Σ_batch δ_l``, and
   the error one layer down is ``δ_{l-1} = (δ_l W_l) ⊙ f′(z_{l-1})``.

Step 3 is the **multivariable chain rule**: a hidden unit reaches the cost through *every*
unit of the next layer, so its derivative is the sum over those paths,
``∂C/∂a_j = Σ_k ∂C/∂z_k · ∂z_k/∂a_j = Σ_k δ_k W_kj`` — exactly the matrix product ``δ W``.
The same sum over paths gives ``Σ_batch`` in the weight gradient: each example is a path
from the shared weight to the cost. :func:`chain_rule_paths` shows it on two paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dlconcepts import activations, layers, losses


@torch.no_grad()
def manual_gradients(model: layers.MLP, x: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Gradient of the mean cross-entropy cost for every parameter of ``model``, by hand.

    Returns a dict keyed like ``model.named_parameters()``. Equal to what autograd gives
    for ``cross_entropy(model(x), target).backward()`` (float64: to ~1e-12 relative).
    It calls the same formulas as the autograd Functions' backwards (``input_grad``,
    ``weight_grad``, ``bias_grad``, ``derivative``), walked in the other direction by hand.
    """
    act = activations.get(model.activation)
    linears = model.linears()
    a = x.flatten(1) if x.dim() > 2 else x  # (B, 784)
    # the tape: what the backward walk needs from the forward pass, layer by layer
    inputs: list[Tensor] = []  # a_{l-1}, the input of each layer
    outputs: list[Tensor] = []  # a_l = f(z_l); f′(z_l) is computed from it, as autograd does
    for name, layer in linears:
        inputs.append(a)
        z = layers.LinearFunction.forward(a, layer.weight, layer.bias)  # z_l = a_{l-1} W_lᵀ + b_l
        a = z if name == "output" else act.forward(z)
        outputs.append(a)

    logits = outputs[-1]  # (B, 10)
    delta = losses.cross_entropy_derivative(logits, target) / logits.shape[0]  # ∂C/∂z_L, C the mean
    grads: dict[str, Tensor] = {}
    for i in reversed(range(len(linears))):
        name, layer = linears[i]
        grads[f"{name}.weight"] = layers.weight_grad(delta, inputs[i])  # (out, in): Σ_batch
        grads[f"{name}.bias"] = layers.bias_grad(delta)  # (out,)
        if i > 0:
            # sum over the paths through layer i's units, then through f at layer i-1
            delta = layers.input_grad(delta, layer.weight) * act.derivative(outputs[i - 1])
    return {name: grads[name] for name, _ in model.named_parameters()}


@dataclass(frozen=True)
class ChainRulePaths:
    """The derivative of ``y = u·v`` with ``u = x²`` and ``v = sin x``, path by path."""

    x: float
    via_u: float  # ∂y/∂u · du/dx = v · 2x
    via_v: float  # ∂y/∂v · dv/dx = u · cos x
    total: float  # the sum of the paths
    autograd: float  # what torch.autograd says dy/dx is

    def __str__(self) -> str:
        return (
            f"y = u*v, u = x^2, v = sin(x), at x = {self.x:g}:\n"
            f"  path x->u->y: dy/du * du/dx = v * 2x     = {self.via_u:+.12f}\n"
            f"  path x->v->y: dy/dv * dv/dx = u * cos(x) = {self.via_v:+.12f}\n"
            f"  sum of paths                             = {self.total:+.12f}\n"
            f"  autograd dy/dx                           = {self.autograd:+.12f}"
        )


def chain_rule_paths(x: float = 1.5) -> ChainRulePaths:
    """The multivariable chain rule: where x reaches y along two paths, the derivatives add.

    .. math::
        \\frac{dy}{dx} = \\frac{\\partial y}{\\partial u}\\frac{du}{dx}
                      + \\frac{\\partial y}{\\partial v}\\frac{dv}{dx}
                      = \\sin x \\cdot 2x + x^2 \\cos x

    Example::

        >>> r = chain_rule_paths(1.5)
        >>> abs(r.total - r.autograd) < 1e-12
        True
    """
    u, v = x * x, math.sin(x)
    via_u, via_v = v * 2 * x, u * math.cos(x)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(xt * xt * torch.sin(xt), xt)
    return ChainRulePaths(x, via_u, via_v, via_u + via_v, grad.item())
