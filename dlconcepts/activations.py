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

**Compiling.** ``torch.compile`` cannot trace a Function that defines a ``jvp``, so each one has
a twin that differs only by not having one, and the wrappers call :func:`apply`, which picks the
twin while ``torch.compile`` traces and the Function itself otherwise. Compiled, the forward and
the hand-written backward become one graph that the compiler fuses; eager calls keep the ``jvp``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from dlconcepts._checks import invalid, one_of

FunctionT = TypeVar("FunctionT", bound=type[torch.autograd.Function])


def _check_input(x: object) -> None:
    """Raise the project's standard error unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise invalid("x", type(x).__name__, "a torch.Tensor", TypeError)
    if not x.is_floating_point():
        raise invalid("x", x.dtype, "a floating-point tensor", TypeError)


def float32_or_wider(x: Tensor) -> Tensor:
    """float16 and bfloat16 up-cast to float32, other dtypes as they are.

    The sigmoid and tanh formulas, forward and backward, take several steps; rounding to half
    precision after each would cost several ulps (13 for tanh's 1 - y^2), so, like PyTorch's
    CPU kernels ("opmath"), they compute in float32 and round once at the end. ReLU needs
    no arithmetic, so it needs no up-cast. The losses in :mod:`dlconcepts.losses` do the same.
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class _SavesOutput(torch.autograd.Function):
    """What the three share: f' is a function of the output y, so y is all that is kept, for
    the backward and for forward-mode AD; ``torch.func.vmap`` rules are generated."""

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
    :math:`e^{-x} \to 0` and the result is :math:`1`. (The tempting
    :math:`e^{x} / (1 + e^{x})` is the unstable one: :math:`\infty / \infty = \text{NaN}`
    for :math:`x > 88.7` in float32.) Each step is a correctly rounded or 1-ulp operation on a
    positive quantity, so there is no cancellation and the relative error stays within a few
    ulps everywhere. Only where :math:`\sigma(x)` is subnormal (:math:`x < -88.7` in float32)
    is the result flushed to 0, exactly as PyTorch's own kernel does.

    Example::

        >>> SigmoidFunction.apply(torch.tensor([-1000.0, 0.0, 1000.0]))
        tensor([0.0000, 0.5000, 1.0000])
        >>> SigmoidFunction.derivative(torch.tensor(0.5))
        tensor(0.2500)
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        _check_input(x)
        y = 1 / (1 + torch.exp(-float32_or_wider(x)))
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return (grad_output * SigmoidFunction.derivative(float32_or_wider(y))).to(y.dtype)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors  # in jvp: what save_for_forward kept
        return (x_t * SigmoidFunction.derivative(float32_or_wider(y))).to(y.dtype)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\sigma'(x) = y (1 - y)` where :math:`y = \sigma(x)`."""
        return y * (1 - y)


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
        m = torch.expm1(2 * float32_or_wider(x))  # e^{2x} - 1
        return (1 / (1 + 2 / m)).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return (grad_output * TanhFunction.derivative(float32_or_wider(y))).to(y.dtype)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return (x_t * TanhFunction.derivative(float32_or_wider(y))).to(y.dtype)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\tanh'(x) = 1 - y^2` where :math:`y = \tanh x`."""
        return 1 - y * y


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
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * ReLUFunction.derivative(y)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return x_t * ReLUFunction.derivative(y)

    @staticmethod
    def derivative(y: Tensor) -> Tensor:
        r""":math:`\operatorname{relu}'(x) = \mathbb{1}[y > 0]`, in ``y``'s dtype.

        For :math:`y = \max(x, 0) \ge 0` that indicator is ``sign(y)`` (and 0 at NaN). Unlike
        the comparison ``y > 0``, ``sign`` is differentiable (its derivative is 0), so the
        backward can itself be differentiated: relu'' = 0, as for ``torch.relu``.
        """
        return torch.sign(y)


# --- compiling: the same Functions without their jvp ----------------------------------------


def traceable(twin: FunctionT) -> FunctionT:
    """Class decorator: make ``twin``, a subclass that only removes its parent's ``jvp``, the
    parent's traceable form, the one :func:`apply` calls while ``torch.compile`` traces.

    The link is a static method, ``Parent.traceable()``, because static methods are what the
    tracer can call on a Function class (it cannot look a class up in a dict or read its other
    attributes).
    """

    def the_twin() -> FunctionT:
        return twin

    twin.__base__.traceable = staticmethod(the_twin)  # type: ignore[attr-defined]
    return twin


WITHOUT_JVP = torch.autograd.Function.jvp
"""``torch.autograd.Function``'s own ``jvp`` (which raises): a twin sets ``jvp = WITHOUT_JVP``."""


def apply(fn: type[torch.autograd.Function], *args: Any) -> Any:
    """``fn.apply(*args)``, or, while ``torch.compile`` traces, the same through ``fn.traceable()``.

    TorchDynamo, the tracer of ``torch.compile``, turns a Function into graph nodes only if it
    has no custom ``jvp`` (it cannot trace forward-mode AD yet); otherwise it breaks the graph
    there and runs the Function eagerly, so nothing around it fuses. The twin,
    ``fn.traceable()``, has the same forward, ``setup_context`` and backward, hence the same
    formulas, and no ``jvp``: compiled, the hand-written backward is traced into the backward
    graph. Outside compilation ``fn`` itself runs, with its ``jvp`` for forward-mode AD.
    ``torch.compiler.is_compiling()`` is constant while tracing, so the choice costs nothing in
    the compiled code.
    """
    if torch.compiler.is_compiling():
        fn = fn.traceable()  # type: ignore[attr-defined]
    return fn.apply(*args)


@traceable
class _TraceableSigmoid(SigmoidFunction):
    jvp = WITHOUT_JVP


@traceable
class _TraceableTanh(TanhFunction):
    jvp = WITHOUT_JVP


@traceable
class _TraceableReLU(ReLUFunction):
    jvp = WITHOUT_JVP


# --- functional and nn.Module wrappers ------------------------------------------------------


def sigmoid(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\sigma(x) = 1/(1 + e^{-x})`; see :class:`SigmoidFunction`."""
    return apply(SigmoidFunction, x)


def tanh(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\tanh x`; see :class:`TanhFunction`."""
    return apply(TanhFunction, x)


def relu(x: Tensor) -> Tensor:
    r"""Hand-written :math:`\max(x, 0)`; see :class:`ReLUFunction`."""
    return apply(ReLUFunction, x)


class Sigmoid(nn.Module):
    """``nn.Module`` form of :func:`sigmoid`, a drop-in for :class:`torch.nn.Sigmoid`."""

    def forward(self, input: Tensor) -> Tensor:
        return apply(SigmoidFunction, input)


class Tanh(nn.Module):
    """``nn.Module`` form of :func:`tanh`, a drop-in for :class:`torch.nn.Tanh`."""

    def forward(self, input: Tensor) -> Tensor:
        return apply(TanhFunction, input)


class ReLU(nn.Module):
    """``nn.Module`` form of :func:`relu`, a drop-in for :class:`torch.nn.ReLU`."""

    def forward(self, input: Tensor) -> Tensor:
        return apply(ReLUFunction, input)


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
