r"""Activation functions written by hand, with hand-written derivatives.

An activation function is the elementwise nonlinearity :math:`f` between two linear layers.
Without it, a stack of layers :math:`W_2 (W_1 x)` collapses into the single linear map
:math:`(W_2 W_1) x`, so depth adds nothing; with it, a wide enough two-layer network can
approximate any continuous function on a compact set.

This module builds the three classic ones, each as a :class:`torch.autograd.Function` with a
forward pass *and* a backward pass written out by hand (no call to ``torch.sigmoid``,
``torch.tanh``, ``torch.relu`` or their ``nn.functional`` / ``special`` forms):

=========  =============================================  ==================================
name       :math:`f(x)`                                   :math:`f'(x)` from :math:`y = f(x)`
=========  =============================================  ==================================
sigmoid    :math:`\sigma(x) = 1 / (1 + e^{-x})`           :math:`y (1 - y)`
tanh       :math:`(e^{x} - e^{-x}) / (e^{x} + e^{-x})`    :math:`1 - y^2`
relu       :math:`\max(x, 0)`                             :math:`\mathbb{1}[y > 0]`
=========  =============================================  ==================================

All three derivatives can be written in terms of the *output* :math:`y`, so the backward pass
only has to keep :math:`y` (the same trick PyTorch's own kernels use) and the manual backprop
elsewhere in this package calls :meth:`SigmoidFunction.derivative` and friends on the
activations it already stored.

**Why ReLU displaced sigmoid.** :math:`\sigma'(x) = \sigma(x)(1 - \sigma(x)) \le 1/4`, with the
maximum at :math:`x = 0` and exponential decay in both tails. Backpropagation multiplies one
such factor per layer, so through :math:`L` sigmoid layers the gradient shrinks by at least
:math:`4^{L}`, and by far more once units saturate: the *vanishing gradient*. ``tanh`` is
zero-centred and peaks at :math:`\tanh'(0) = 1`, which helps, but it saturates just the same.
ReLU's derivative is exactly 1 for every active unit, so gradients pass through active paths
undiminished; it is also cheaper (a comparison instead of an exponential). Its price is the
"dead ReLU": a unit whose input is negative for every example gets zero gradient forever.

Each activation is available in four forms::

    SigmoidFunction.apply(x)   # the autograd.Function (also .forward / .derivative)
    sigmoid(x)                 # functional wrapper
    Sigmoid()(x)               # nn.Module wrapper, a drop-in for torch.nn.Sigmoid
    get("sigmoid")             # by name, through the ACTIVATIONS registry

Every Function supports double backward (:func:`torch.autograd.gradgradcheck`), forward-mode AD
(a ``jvp``) and the :mod:`torch.func` transforms (``generate_vmap_rule = True``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dlconcepts._checks import invalid, one_of
from dlconcepts._function import Function

__all__ = [
    "ACTIVATIONS",
    "MODULES",
    "TORCH_MODULES",
    "ReLU",
    "ReLUFunction",
    "Sigmoid",
    "SigmoidFunction",
    "Tanh",
    "TanhFunction",
    "get",
    "relu",
    "sigmoid",
    "tanh",
]

# float16 / bfloat16 are computed in float32 and rounded once at the end, as PyTorch's CPU
# kernels do ("opmath"): rounding after every step would cost several half-precision ulps.
_REDUCED = (torch.float16, torch.bfloat16)


# --- small helpers ---------------------------------------------------------------------------


def _check_input(x: object) -> None:
    """Raise the project's standard error unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise invalid("x", type(x).__name__, "a torch.Tensor", TypeError)
    if not x.is_floating_point():
        raise invalid("x", x.dtype, "a floating-point tensor", TypeError)


# Passing a Python number to an op makes PyTorch wrap it into a fresh tensor on every call
# (about 1.5 µs), a visible share of an activation on a small batch. So the constants 0 and 1
# live here as 0-dim CPU tensors, one per dtype (lerp insists on matching dtypes); on other
# devices a Python number is used, since a CPU tensor is not accepted everywhere there.
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ZERO = {dt: torch.zeros((), dtype=dt) for dt in _FLOATS}
_ONE = {dt: torch.ones((), dtype=dt) for dt in _FLOATS}


def _zero(t: Tensor) -> Tensor:
    return _ZERO[t.dtype] if t.is_cpu else torch.zeros((), dtype=t.dtype, device=t.device)


def _one(t: Tensor) -> Tensor | float:
    return _ONE[t.dtype] if t.is_cpu else 1.0


class _SavesOutput(Function):
    """What the three share: f' is a function of the output y, so y is all that is kept
    (for the backward and for forward-mode AD), and vmap rules are generated."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)


# --- sigmoid ---------------------------------------------------------------------------------


class SigmoidFunction(_SavesOutput):
    r"""The logistic sigmoid :math:`\sigma(x) = \dfrac{1}{1 + e^{-x}}`.

    Also known as the *logistic function* and, in SciPy / ``torch.special``, ``expit``
    (the inverse of ``logit``). It squashes :math:`\mathbb{R}` onto :math:`(0, 1)`, with
    :math:`\sigma(0) = 1/2` and :math:`\sigma(-x) = 1 - \sigma(x)`.

    Derivative, from the output :math:`y = \sigma(x)`:

    .. math::
        \sigma'(x) = \frac{e^{-x}}{(1 + e^{-x})^2} = y\,(1 - y) \le \tfrac14 .

    **Why this form is stable.** :math:`1 / (1 + e^{-x})` never divides infinity by
    infinity: for very negative :math:`x`, :math:`e^{-x}` overflows to :math:`+\infty` and
    :math:`1/(1 + \infty) = 0`, the right answer; for very positive :math:`x`,
    :math:`e^{-x} \to 0` and the result is :math:`1`. Every finite input gives a finite result
    without NaN. (The tempting :math:`e^{x} / (1 + e^{x})` is the unstable one: it gives
    :math:`\infty / \infty = \text{NaN}` for :math:`x > 88.7` in float32.) Each step is a
    correctly rounded or 1-ulp operation on a positive quantity, so there is no cancellation
    and the relative error stays within a few ulps everywhere, tails included. Only where
    :math:`\sigma(x)` is subnormal (:math:`x < -88.7` in float32) is the result flushed to
    0, exactly as PyTorch's own kernel does. The two-branch form with
    :math:`e = e^{-|x|}` (:math:`1/(1+e)` for :math:`x \ge 0`, :math:`e/(1+e)` otherwise)
    avoids even that intermediate overflow and keeps those subnormals, but it needs a select
    and a second buffer, and it agrees with this one everywhere else.

    Example::

        >>> SigmoidFunction.apply(torch.tensor([-1000.0, 0.0, 1000.0]))
        tensor([0.0000, 0.5000, 1.0000])
        >>> SigmoidFunction.derivative(torch.tensor(0.5))
        tensor(0.2500)
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        _check_input(x)
        if x.dtype in _REDUCED:
            return SigmoidFunction.forward(x.float()).to(x.dtype)
        # One new tensor, then in-place steps on it: an out-of-place step would allocate, and
        # page-fault in, another tensor as large as x.
        y = torch.neg(x)
        y.exp_()  # e^{-x}; +inf for very negative x, which is harmless (see above)
        y.add_(_one(y))
        return y.reciprocal_()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor | None:
        if not ctx.needs_input_grad[0]:
            return None
        (y,) = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: this backward is itself being recorded, so out-of-place ops
            # only (an in-place one would overwrite a value autograd saved). Same order of
            # operations as PyTorch's kernel.
            return grad_output * (1 - y) * y
        if y.dtype in _REDUCED:
            return _sigmoid_grad(grad_output.float(), y.float()).to(y.dtype)
        return _sigmoid_grad(grad_output, y)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        # Forward mode: the tangent of y is sigma'(x) * x_t, with sigma'(x) read off y.
        (y,) = ctx.saved_tensors
        return x_t * SigmoidFunction.derivative(y)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\sigma'(x) = y (1 - y)` where :math:`y = \sigma(x)`."""
        return y * (1 - y)


def _sigmoid_grad(grad: Tensor, y: Tensor) -> Tensor:
    # g y (1 - y) in two passes over one new tensor: lerp(s, 0, y) = s + y (0 - s) = s (1 - y),
    # which PyTorch evaluates as s - y s for y < 1/2 and as s (1 - y) otherwise, so 1 - y is
    # never formed where it would cancel. The first op reads grad, so under vmap the new
    # tensor is batched whenever grad is and the in-place step is legal.
    out = torch.mul(grad, y)
    return out.lerp_(_zero(out), y)


# --- tanh ------------------------------------------------------------------------------------


class TanhFunction(_SavesOutput):
    r"""The hyperbolic tangent :math:`\tanh x = \dfrac{e^{x} - e^{-x}}{e^{x} + e^{-x}}`.

    A rescaled sigmoid, :math:`\tanh x = 2\sigma(2x) - 1`, mapping :math:`\mathbb{R}` onto
    :math:`(-1, 1)`; odd and zero-centred, with slope 1 at the origin.

    Derivative, from the output :math:`y = \tanh x`:

    .. math::
        \tanh'(x) = \operatorname{sech}^2 x = 1 - y^2 .

    **Why this form is stable.** With :math:`m = e^{2x} - 1`, computed by ``expm1``,

    .. math::
        \tanh x = \frac{m}{m + 2} = \frac{1}{1 + 2/m} .

    ``expm1`` keeps full relative precision near 0 (:math:`m \approx 2x`), whereas
    :math:`2\sigma(2x) - 1` or :math:`(1 - e^{-2x})/(1 + e^{-2x})` subtract two numbers close
    to 1 and lose every digit as :math:`x \to 0`. The rest has no cancellation either:
    :math:`2/m` is positive for :math:`x > 0` and at most :math:`-2` for :math:`x < 0`, so
    :math:`1 + 2/m` never nears 0. The extremes take care of themselves:
    :math:`x \to +\infty` gives :math:`m = \infty`, :math:`1/(1 + 0) = 1`;
    :math:`x \to -\infty` gives :math:`m = -1`, :math:`1/(1 - 2) = -1`; and :math:`x = \pm 0`
    gives :math:`1/(1 \pm \infty) = \pm 0`, keeping the sign of zero. The one casualty is a
    *subnormal* input (:math:`|x| < 2.9 \cdot 10^{-39}` in float32), where :math:`2/m`
    overflows and the result is :math:`\pm 0`, an error below the smallest normal number.
    The price of the accuracy near 0 is speed: on CPU ``expm1`` costs several times ``exp``.

    Example::

        >>> TanhFunction.apply(torch.tensor([-1000.0, 0.0, 1e-3, 1000.0]))
        tensor([-1.0000e+00,  0.0000e+00,  1.0000e-03,  1.0000e+00])
        >>> TanhFunction.derivative(torch.tensor(0.0))
        tensor(1.)
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        _check_input(x)
        if x.dtype in _REDUCED:
            return TanhFunction.forward(x.float()).to(x.dtype)
        y = torch.add(x, x)  # 2x, exactly
        y.expm1_()  # m = e^{2x} - 1
        y.reciprocal_()  # 1/m
        y.add_(y)  # 2/m, exactly
        y.add_(_one(y))  # 1 + 2/m
        return y.reciprocal_()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor | None:
        if not ctx.needs_input_grad[0]:
            return None
        (y,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: out-of-place only
            return grad_output * (1 - y * y)
        if y.dtype in _REDUCED:
            return _tanh_grad(grad_output.float(), y.float()).to(y.dtype)
        return _tanh_grad(grad_output, y)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return x_t * TanhFunction.derivative(y)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\tanh'(x) = 1 - y^2` where :math:`y = \tanh x`."""
        return 1 - y * y


def _tanh_grad(grad: Tensor, y: Tensor) -> Tensor:
    # g (1 - y^2) = g (1 - y) (1 + y) in two passes over one new tensor: lerp(g, 0, y) =
    # g (1 - y), exact in 1 - y for y >= 1/2 (see _sigmoid_grad), then out + out * y.
    out = torch.lerp(grad, _zero(grad), y)
    return out.addcmul_(out, y)


# --- relu ------------------------------------------------------------------------------------


class ReLUFunction(_SavesOutput):
    r"""The rectified linear unit :math:`\operatorname{relu}(x) = \max(x, 0)`.

    Also known as the *ramp function* or the *positive part* :math:`x^+`.

    Derivative, from the output :math:`y = \max(x, 0)`:

    .. math::
        \operatorname{relu}'(x) = \mathbb{1}[y > 0] =
        \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    At the kink :math:`x = 0` any value in :math:`[0, 1]` is a valid subgradient; like PyTorch
    we use 0, for :math:`-0` as well. For a NaN input the output is NaN and the gradient 0
    (PyTorch's kernel lets the incoming gradient through there instead).

    **Why this form is stable.** It is a comparison, no arithmetic at all: exact for every
    input. ``clamp_min`` propagates NaN and maps :math:`-0` to :math:`-0`, bit for bit like
    ``torch.relu`` (which PyTorch itself implements as ``clamp_min(x, 0)``).

    Example::

        >>> ReLUFunction.apply(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([0., 0., 3.])
        >>> ReLUFunction.derivative(torch.tensor([0.0, 3.0]))
        tensor([0., 1.])
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        _check_input(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor | None:
        if not ctx.needs_input_grad[0]:
            return None
        (y,) = ctx.saved_tensors
        if torch.is_grad_enabled():
            # Double backward: out-of-place only. sign(y) is 1[y > 0] here (y >= 0) and,
            # unlike a comparison, differentiable (with derivative 0), so a second
            # derivative is 0 rather than an error, as with torch.relu.
            return grad_output * torch.sign(y)
        # y >= 0 (or NaN), so sign(y) is exactly the 0/1 mask 1[y > 0] (sign(NaN) = 0), and
        # float * float is several times faster than float * bool, masked_fill or where.
        mask = torch.sign(y)
        try:
            return mask.mul_(grad_output)
        except RuntimeError:
            # Under vmap with a batched grad_output but an unbatched y (gradcheck's batched
            # gradient test, jacobians), writing the batched product into the unbatched mask
            # is impossible; vmap refuses before touching it.
            return grad_output * mask

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return x_t * ReLUFunction.derivative(y)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\operatorname{relu}'(x) = \mathbb{1}[y > 0]`, in ``y``'s dtype."""
        return (y > 0).to(y.dtype)


# --- functional and nn.Module wrappers ------------------------------------------------------


def sigmoid(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\sigma(x) = 1/(1 + e^{-x})`; see :class:`SigmoidFunction`."""
    return SigmoidFunction.apply(x)


def tanh(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\tanh x`; see :class:`TanhFunction`."""
    return TanhFunction.apply(x)


def relu(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\max(x, 0)`; see :class:`ReLUFunction`."""
    return ReLUFunction.apply(x)


class Sigmoid(nn.Module):
    """``nn.Module`` form of :func:`sigmoid`, a drop-in for :class:`torch.nn.Sigmoid`."""

    def forward(self, x: Tensor) -> Tensor:
        return SigmoidFunction.apply(x)


class Tanh(nn.Module):
    """``nn.Module`` form of :func:`tanh`, a drop-in for :class:`torch.nn.Tanh`."""

    def forward(self, x: Tensor) -> Tensor:
        return TanhFunction.apply(x)


class ReLU(nn.Module):
    """``nn.Module`` form of :func:`relu`, a drop-in for :class:`torch.nn.ReLU`."""

    def forward(self, x: Tensor) -> Tensor:
        return ReLUFunction.apply(x)


# --- registry --------------------------------------------------------------------------------

ACTIVATIONS: dict[str, type[torch.autograd.Function]] = {
    "sigmoid": SigmoidFunction,
    "tanh": TanhFunction,
    "relu": ReLUFunction,
}
"""Name -> hand-written Function; each also has ``.forward(x)`` and ``.derivative(y)``."""

MODULES: dict[str, type[nn.Module]] = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
"""Name -> hand-written ``nn.Module``."""

TORCH_MODULES: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}
"""Name -> PyTorch's own module, the reference each hand-written one is checked against."""


def get(name: str) -> type[torch.autograd.Function]:
    """The activation Function called ``name``.

    >>> get("relu").apply(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise one_of("activation", name, list(ACTIVATIONS)) from None
