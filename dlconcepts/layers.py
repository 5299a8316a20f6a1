"""Layers: a fully connected layer with a hand-written backward, and the MLP built from it.

A multilayer perceptron (MLP) is a stack of fully connected layers::

    input layer      x            (B, 784)   the pixels; no weights, nothing computed
    hidden layer 1   a1 = f(x W1ᵀ + b1)      (B, 256)
    hidden layer 2   a2 = f(a1 W2ᵀ + b2)     (B, 128)
    output layer     z  = a2 W3ᵀ + b3        (B, 10)    logits, no activation

The only learned operation is ``y = x Wᵀ + b``. Its gradients are three matrix products,
which is all backpropagation has to do for a layer (``dlconcepts.backprop`` walks them by
hand, without autograd; ``LinearFunction`` gives them to autograd).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dlconcepts import activations, names
from dlconcepts import init as dl_init
from dlconcepts._checks import invalid, one_of

IMPLS = names.IMPLS


def _batch(t: Tensor) -> Tensor:
    """(..., n) -> (B, n): every leading dimension is a batch dimension (1-D is a batch of 1)."""
    return t.reshape(math.prod(t.shape[:-1]), t.shape[-1])


# The three gradients of y = x Wᵀ + b, given g = ∂C/∂y of shape (..., out). Pure functions:
# LinearFunction.backward and the manual backprop in dlconcepts.backprop both call them.


def input_grad(grad_output: Tensor, weight: Tensor) -> Tensor:
    """∂C/∂x = g W: (..., out) @ (out, in) -> (..., in)."""
    return grad_output @ weight


def weight_grad(grad_output: Tensor, x: Tensor) -> Tensor:
    """∂C/∂W = gᵀ x, summed over the batch: (out, B) @ (B, in) -> (out, in)."""
    return _batch(grad_output).t() @ _batch(x)


def bias_grad(grad_output: Tensor) -> Tensor:
    """∂C/∂b = Σ_batch g: (B, out) -> (out,)."""
    return _batch(grad_output).sum(0)


def autocast_state(device_type: str) -> tuple[str, bool, torch.dtype]:
    """``torch.autocast``'s state for ``device_type`` now: (device type, enabled, dtype).

    Under autocast the forward's matrix product runs in float16 or bfloat16, so the incoming
    gradient has that dtype while the saved weight is still float32, and the backward runs
    after the ``with torch.autocast(...)`` block has ended. PyTorch's recipe for a custom
    Function (``torch.amp.custom_fwd`` / ``custom_bwd``) records this state in the forward and
    runs the backward under it, so its products cast alike; ``setup_context`` records it here
    (``custom_fwd`` writes to a ``ctx`` argument that a ``forward`` without ``ctx`` lacks).
    """
    enabled = torch.is_autocast_enabled(device_type)
    return device_type, enabled, torch.get_autocast_dtype(device_type)


class LinearFunction(torch.autograd.Function):
    r"""``y = x Wᵀ + b`` with a hand-written backward.

    For x of shape (..., in), W of shape (out, in), b of shape (out,) and g = ∂C/∂y:

    .. math::
        \frac{\partial C}{\partial x} = g W \qquad
        \frac{\partial C}{\partial W} = g^\top x \qquad
        \frac{\partial C}{\partial b} = \textstyle\sum_{\text{batch}} g

    The weight and bias gradients sum over the batch because every example reaches the
    cost through the same W: by the multivariable chain rule the paths add up.
    Under ``torch.autocast`` the products run in the autocast dtype, forward and backward
    alike (:func:`autocast_state`), as ``torch.nn.functional.linear``'s do.
    The backward uses only differentiable tensor ops, so it can itself be differentiated
    (``gradgradcheck``); ``jvp`` gives forward-mode AD.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x2 = _batch(x)  # (B, in)
        # addmm adds b inside the matrix product, as torch.nn.functional.linear does, so
        # the two agree bit for bit
        y = x2 @ weight.t() if bias is None else torch.addmm(bias, x2, weight.t())  # (B, out)
        return y.reshape(*x.shape[:-1], weight.shape[0])  # (..., out)

    @staticmethod
    def setup_context(
        ctx: Any, inputs: tuple[Tensor, Tensor, Tensor | None], output: Tensor
    ) -> None:
        x, weight, _ = inputs
        # ∂C/∂x needs W and ∂C/∂W needs x: keep only what a requested gradient needs (the
        # first layer's input is data, so its W is not kept); the bias gradient needs neither
        needs_x, needs_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if needs_w else None, weight if needs_x else None)
        ctx.save_for_forward(x, weight)
        ctx.autocast = autocast_state(x.device.type)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        device_type, enabled, dtype = ctx.autocast  # the products as the forward's ran
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            return (
                input_grad(grad_output, weight) if needs_x else None,
                weight_grad(grad_output, x) if needs_w else None,
                bias_grad(grad_output) if needs_b else None,
            )

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor | None, w_t: Tensor | None, b_t: Tensor | None) -> Tensor:
        # the product rule: d(x Wᵀ + b) = dx Wᵀ + x dWᵀ + db; a missing tangent is 0
        x, weight = ctx.saved_tensors  # in jvp: what save_for_forward kept
        out = torch.zeros(*x.shape[:-1], weight.shape[0], dtype=x.dtype, device=x.device)
        if x_t is not None:
            out = out + x_t @ weight.t()
        if w_t is not None:
            out = out + x @ w_t.t()
        if b_t is not None:
            out = out + b_t
        return out


# The same Function without its jvp, for torch.compile (see dlconcepts.activations.apply).
@activations.traceable
class _TraceableLinear(LinearFunction):
    jvp = activations.WITHOUT_JVP


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Hand-written drop-in for :func:`torch.nn.functional.linear`: ``x Wᵀ + b``.

    ``x`` may have any number of leading batch dimensions: (..., in) -> (..., out).

    Example::

        >>> linear(torch.ones(2, 3), torch.ones(4, 3)).shape
        torch.Size([2, 4])
    """
    if weight.dim() != 2:
        raise invalid(
            "weight shape", tuple(weight.shape), "2 dimensions (out_features, in_features)"
        )
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise invalid(
            "input shape",
            tuple(x.shape),
            f"last dimension {weight.shape[1]} to match weight shape {tuple(weight.shape)}",
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise invalid(
            "bias shape",
            tuple(bias.shape),
            f"({weight.shape[0]},) to match weight shape {tuple(weight.shape)}",
        )
    return activations.apply(LinearFunction, x, weight, bias)


class Linear(nn.Module):
    """Drop-in for :class:`torch.nn.Linear` built on :class:`LinearFunction`.

    Same parameters, same ``state_dict`` keys, same default initialization (so the same
    seed gives the same weights as ``torch.nn.Linear``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid(name, value, "a non-negative int")
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn.Linear's default, in the same order, so the RNG stream is consumed alike
        dl_init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = dl_init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            dl_init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class MLP(nn.Sequential):
    """A multilayer perceptron whose input, hidden and output layers are visible.

    ``MLP((784, 256, 128, 10))`` has an input layer of 784 features, hidden layers of 256
    and 128 units with ``activation`` after each, and an output layer of 10 logits (no
    activation: the loss applies the softmax). The children are named ``hidden1``,
    ``act1``, ``hidden2``, ``act2``, ..., ``output``; ``impl="torch"`` builds the same
    network from ``torch.nn.Linear`` and the built-in activations with the same
    ``state_dict`` keys, so ``torch_mlp.load_state_dict(custom_mlp.state_dict())`` makes
    them the same function.

    Weights are set by ``dlconcepts.init.initialize(self, init, ...)`` (gain matched to the
    activation, biases zero), so two MLPs built from the same seed with different ``impl``
    start identical.

    Example::

        >>> print(MLP((784, 256, 10)).summary())  # doctest: +SKIP
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        init: str = "he",
        impl: str = "custom",
        *,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        sizes = tuple(sizes)
        if len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
        ):
            raise invalid("sizes", sizes, "at least 2 positive ints (input, [hidden...], output)")
        if impl not in IMPLS:
            raise one_of("impl", impl, IMPLS)
        act_cls = (activations.MODULES if impl == "custom" else activations.TORCH_MODULES).get(
            activation
        )
        if act_cls is None:
            raise one_of("activation", activation, list(activations.MODULES))
        if init not in dl_init.SCHEMES:
            raise one_of("init", init, dl_init.SCHEMES)
        linear_cls = Linear if impl == "custom" else nn.Linear
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        n = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            name = "output" if i == n else f"hidden{i}"
            layers[name] = linear_cls(fan_in, fan_out, device=device, dtype=dtype)
            if i < n:
                layers[f"act{i}"] = act_cls()
        super().__init__(layers)
        self.sizes = sizes
        self.activation = activation
        self.init = init
        self.impl = impl
        dl_init.initialize(self, init, nonlinearity=activation, std=init_std, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        # accept images (B, 1, 28, 28) as well as flat (B, 784)
        if x.dim() > 2:
            x = x.flatten(1)
        return super().forward(x)

    def linears(self) -> list[tuple[str, nn.Module]]:
        """The (name, layer) pairs that carry weights, from the first hidden to the output."""
        return [(name, m) for name, m in self.named_children() if not name.startswith("act")]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}, init={self.init!r}, impl={self.impl!r}"

    def summary(self) -> str:
        """A table of the layers: role, shape, activation and parameter count."""
        rows = [("input", "-", f"{self.sizes[0]} features", "-", 0)]
        for name, layer in self.linears():
            role = "output" if name == "output" else "hidden"
            act = "logits" if name == "output" else self.activation
            shape = f"{layer.in_features} -> {layer.out_features}"
            rows.append((role, name, shape, act, sum(p.numel() for p in layer.parameters())))
        header = ("layer", "name", "shape", "activation", "params")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines.append(f"total parameters: {sum(r[4] for r in rows):,}")
        return "\n".join(lines)
