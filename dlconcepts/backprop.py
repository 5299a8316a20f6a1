r"""Backpropagation and the chain rule, by hand: no ``.backward()``, no ``torch.autograd.grad``.

For an MLP with layers ``z_l = a_{l-1} W_lᵀ + b_l`` and ``a_l = f(z_l)``, an output
``o = g(z_L)`` (``g`` the identity or a sigmoid) and a cost C, the mean over a batch of B of
the per-example loss E:

1. Forward, keeping each layer's input ``a_{l-1}`` and output ``a_l``.
2. At the output: ``δ_L = ∂C/∂z_L = ∂E/∂z_L / B``, one formula per output and loss
   (:data:`OUTPUTS`): ``softmax(z) − onehot(t)`` for softmax cross-entropy, ``σ(z) − t`` for
   a sigmoid with binary cross-entropy, ``(o − t) ⊙ σ′(z)`` for a sigmoid with squared error.
3. Walk backwards. For each layer: ``∂C/∂W_l = δ_lᵀ a_{l-1}``, ``∂C/∂b_l = Σ_batch δ_l``, and
   the error one layer down is ``δ_{l-1} = (δ_l W_l) ⊙ f′(z_{l-1})``.

Step 3 is the **multivariable chain rule**: a hidden unit reaches the cost through *every*
unit of the next layer, so its derivative is the sum over those paths,
``∂C/∂a_j = Σ_k ∂C/∂z_k · ∂z_k/∂a_j = Σ_k δ_k W_kj`` — exactly the matrix product ``δ W``.
The same sum over paths gives ``Σ_batch`` in the weight gradient: each example is a path
from the shared weight to the cost. :func:`chain_rule_paths` shows it on two paths.
It is also why the walk goes in this order: a δ is known only once every δ above it is.

:func:`numerical_gradients` is the third opinion: central differences, the definition of
the derivative, with no chain rule at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dlconcepts import activations, layers, losses, names
from dlconcepts._checks import one_of

OUTPUT_ACTIVATIONS: tuple[str | None, ...] = (None, "sigmoid")
LOSSES = names.LOSSES


def _squared_error_gradient(o: Tensor, t: Tensor) -> Tensor:
    """∂E/∂o = o − t for E = Σₖ ½ (tₖ − oₖ)²: half the squared error's derivative 2(o − t)."""
    return losses.mse_derivative(o, t) / 2


def _sigmoid_squared_error_delta(z: Tensor, t: Tensor) -> Tensor:
    """∂E/∂z = ∂E/∂o ⊙ σ′(z) = (o − t) ⊙ o(1 − o), with o = σ(z)."""
    o = activations.SigmoidFunction.forward(z)
    return _squared_error_gradient(o, t) * activations.SigmoidFunction.derivative(o)


@dataclass(frozen=True)
class OutputLayer:
    """One choice of output and loss: E and δ as formulas, and the two functions behind them."""

    output: str  # o as a function of the logits z
    loss: str  # E, the loss of one example
    delta: str  # ∂E/∂z
    total: Callable[[Tensor, Tensor], Tensor]  # Σ_batch E(z, t), through our autograd Functions
    derivative: Callable[[Tensor, Tensor], Tensor]  # ∂E/∂z per example, by hand


# (output activation, loss) -> the output layer. Softmax cross-entropy takes class indices,
# the others real targets of the output's shape.
OUTPUTS: dict[tuple[str | None, str], OutputLayer] = {
    (None, "cross-entropy"): OutputLayer(
        "o = softmax(z)",
        "E = −log o_t",
        "δ = softmax(z) − onehot(t)",
        lambda z, t: losses.cross_entropy(z, t, reduction="sum"),
        lambda z, t: losses.cross_entropy_derivative(z, t),
    ),
    ("sigmoid", "cross-entropy"): OutputLayer(
        "o = σ(z)",
        "E = −Σₖ [tₖ log oₖ + (1 − tₖ) log(1 − oₖ)]",
        "δ = σ(z) − t",
        lambda z, t: losses.binary_cross_entropy_with_logits(z, t, reduction="sum"),
        lambda z, t: losses.binary_cross_entropy_derivative(z, t),
    ),
    (None, "squared-error"): OutputLayer(
        "o = z",
        "E = Σₖ ½ (tₖ − oₖ)²",
        "δ = o − t",
        lambda z, t: losses.mse_loss(z, t, reduction="sum") / 2,
        _squared_error_gradient,
    ),
    ("sigmoid", "squared-error"): OutputLayer(
        "o = σ(z)",
        "E = Σₖ ½ (tₖ − oₖ)²",
        "δ = (o − t) ⊙ σ′(z) = (o − t) ⊙ o(1 − o)",
        lambda z, t: losses.mse_loss(activations.sigmoid(z), t, reduction="sum") / 2,
        _sigmoid_squared_error_delta,
    ),
}


def output_layer(output_activation: str | None, loss: str) -> OutputLayer:
    """The :data:`OUTPUTS` entry for ``output_activation`` (None or "sigmoid") and ``loss``."""
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise one_of("output_activation", output_activation, OUTPUT_ACTIVATIONS)
    if loss not in LOSSES:
        raise one_of("loss", loss, LOSSES)
    return OUTPUTS[(output_activation, loss)]


def cost(
    model: layers.MLP,
    x: Tensor,
    target: Tensor,
    *,
    output_activation: str | None = None,
    loss: str = "cross-entropy",
) -> Tensor:
    """C, the mean over the batch of the loss E: what :func:`manual_gradients` differentiates.

    Computed through our autograd Functions, so autograd can differentiate it too.
    """
    z = model(x)
    return output_layer(output_activation, loss).total(z, target) / z.shape[0]


@dataclass
class LayerValues:
    """The numbers of one layer in one training step."""

    name: str
    input: Tensor  # a_{l-1}
    z: Tensor  # a_{l-1} W_lᵀ + b_l
    a: Tensor  # f(z_l); at the output layer the output o
    delta: Tensor | None = None  # ∂C/∂z_l, set by the backward walk


@torch.no_grad()
def manual_backprop(
    model: layers.MLP,
    x: Tensor,
    target: Tensor,
    *,
    output_activation: str | None = None,
    loss: str = "cross-entropy",
) -> tuple[list[LayerValues], dict[str, Tensor]]:
    """One forward and one backward walk by hand: every layer's numbers, and the gradients.

    The gradients are keyed like ``model.named_parameters()``. It calls the same formulas as
    the autograd Functions' backwards (``input_grad``, ``weight_grad``, ``bias_grad``,
    ``derivative``), walked in the other direction by hand.
    """
    out = output_layer(output_activation, loss)
    act = activations.get(model.activation)
    a = x.flatten(1) if x.dim() > 2 else x  # (B, 784)
    # the tape: what the backward walk needs from the forward pass, layer by layer
    tape: list[LayerValues] = []
    for name, layer in model.linears():
        z = layers.LinearFunction.forward(a, layer.weight, layer.bias)  # z_l = a_{l-1} W_lᵀ + b_l
        if name != "output":
            f = act.forward(z)  # f′(z_l) is computed from it, as autograd does
        else:
            f = z if output_activation is None else activations.SigmoidFunction.forward(z)
        tape.append(LayerValues(name, a, z, f))
        a = f

    tape[-1].delta = out.derivative(tape[-1].z, target) / x.shape[0]  # ∂C/∂z_L, C the mean
    grads: dict[str, Tensor] = {}
    for i in reversed(range(len(tape))):  # from the output down: δ_l needs δ_{l+1}
        here, weight = tape[i], getattr(model, tape[i].name).weight
        grads[f"{here.name}.weight"] = layers.weight_grad(here.delta, here.input)  # Σ_batch
        grads[f"{here.name}.bias"] = layers.bias_grad(here.delta)  # (out,)
        if i > 0:
            # sum over the paths through layer i's units, then through f at layer i-1
            below = tape[i - 1]
            below.delta = layers.input_grad(here.delta, weight) * act.derivative(below.a)
    return tape, {name: grads[name] for name, _ in model.named_parameters()}


def manual_gradients(
    model: layers.MLP,
    x: Tensor,
    target: Tensor,
    *,
    output_activation: str | None = None,
    loss: str = "cross-entropy",
) -> dict[str, Tensor]:
    """Gradient of the cost C (:func:`cost`) for every parameter of ``model``, by hand.

    By default C is the mean softmax cross-entropy of the logits; ``output_activation=
    "sigmoid"`` puts a sigmoid at the output, with binary cross-entropy or, with
    ``loss="squared-error"``, E = Σₖ ½ (tₖ − oₖ)². Returns a dict keyed like
    ``model.named_parameters()``, equal to what autograd gives for ``cost(...).backward()``
    (float64: to ~1e-12 relative). See :func:`manual_backprop` for every number on the way.
    """
    _, grads = manual_backprop(model, x, target, output_activation=output_activation, loss=loss)
    return grads


@torch.no_grad()
def numerical_gradients(
    model: torch.nn.Module, cost_of: Callable[[], Tensor], h: float = 1e-6
) -> dict[str, Tensor]:
    r"""Central differences, one parameter entry at a time: no chain rule, no autograd.

    .. math::
        \frac{\partial C}{\partial \theta} \approx \frac{C(\theta + h) - C(\theta - h)}{2h}

    ``cost_of()`` computes the cost of ``model`` as it is now. The error is O(h²) from the
    formula plus about ε/h from rounding: ~1e-10 in float64 with the default h. Each entry
    costs two forward passes, so this is for small networks and for checking.
    """
    grads = {}
    for name, p in model.named_parameters():
        flat, grad = p.view(-1), torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
        for i in range(p.numel()):
            kept = flat[i].item()
            flat[i] = kept + h
            up = cost_of().item()
            flat[i] = kept - h
            down = cost_of().item()
            flat[i] = kept
            grad[i] = (up - down) / (2 * h)
        grads[name] = grad.view_as(p)
    return grads


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
