r"""Weight initialization, written out by hand and bit-identical to ``torch.nn.init``.

Why initialization matters
--------------------------
**Zero (or any constant) init breaks nothing visibly and learns nothing useful.** If every
weight of a layer starts equal, every hidden unit computes the same function of the input,
so every unit receives the same gradient and takes the same step. They were identical
before the step and are identical after it: the symmetry is never broken, and a layer of
``n`` units behaves like a layer of one unit for the whole of training. (With all weights
exactly zero it is worse: the gradient reaching the earlier layers is multiplied by zero.)
Random init exists first of all to make the units different.

**Badly scaled random init makes signals vanish or explode.** For ``y = W x`` with
independent zero-mean weights of standard deviation ``std`` and ``fan_in`` inputs,

.. math::
    \operatorname{Var}(y) = \text{fan\_in} \cdot \text{std}^2 \cdot \operatorname{Var}(x)

so each layer multiplies the activation variance by ``fan_in·std²`` (and, on the way back,
the gradient variance by ``fan_out·std²``). Over ``L`` layers that factor is raised to the
power ``L``: below 1 the signal *vanishes* (e.g. ``std = 0.01`` with ``fan_in = 784`` gives
0.078 per layer, ~1e-11 after 10 layers), above 1 it *explodes*. Good schemes choose ``std``
so the factor is 1:

* **Xavier / Glorot** (Glorot & Bengio, 2010): ``std² = 2 / (fan_in + fan_out)``, a
  compromise between keeping the forward (``fan_in``) and backward (``fan_out``) variance,
  derived for roughly linear activations such as tanh near 0.
* **Kaiming / He** (He et al., 2015): ``std² = 2 / fan_in``. ReLU zeroes half of its
  input, halving the variance, so the weights get twice the variance to compensate.

The ``gain`` (:func:`calculate_gain`) carries that per-activation correction: ``sqrt(2)`` for
ReLU, ``5/3`` for tanh, 1 for linear/sigmoid.

Bit-identity with PyTorch
-------------------------
Every random function here makes exactly the same single RNG call as ``torch.nn.init``
(``tensor.uniform_(-bound, bound)`` or ``tensor.normal_(0, std)``) after computing ``bound`` /
``std`` with the same floating-point operations in the same order. ``sqrt(3)·gain·sqrt(2/n)``
and ``gain·sqrt(6/n)`` are equal on paper but often differ in the last bit, which changes
every sampled value; so the order below is deliberate, not stylistic.

Beyond the four schemes
-----------------------
The rest of ``torch.nn.init`` (constant fills, ``eye_``, ``dirac_``, ``orthogonal_``,
``trunc_normal_``, ``sparse_``) is written out in :mod:`dlconcepts.init_extra`, just as
bit-identical, and importable from here too, so this module is a drop-in replacement for
``torch.nn.init``.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor, nn

from dlconcepts import names
from dlconcepts._checks import invalid, one_of

# The rest of torch.nn.init, re-exported so that this module can replace it.
from dlconcepts.init_extra import (
    constant_,
    dirac_,
    eye_,
    ones_,
    orthogonal_,
    sparse_,
    trunc_normal_,
)

__all__ = [
    "NONLINEARITIES",
    "SCHEMES",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "he_normal_",
    "he_uniform_",
    "initialize",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
FanMode = Literal["fan_in", "fan_out"]
Scheme = Literal["zero", "random", "xavier", "he"]

# Layers that apply no nonlinearity of their own: gain 1.
_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
NONLINEARITIES: tuple[str, ...] = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
FAN_MODES: tuple[str, ...] = ("fan_in", "fan_out")
SCHEMES = names.SCHEMES

_ZERO_ELEMENT_WARNING = "Initializing zero-element tensors is a no-op"


# --------------------------------------------------------------------------- helpers


def calculate_gain(nonlinearity: Nonlinearity, param: int | float | None = None) -> float:
    r"""Return the recommended gain for a nonlinearity: the factor undoing its effect on variance.

    ================= ===============================================
    nonlinearity      gain
    ================= ===============================================
    linear / conv*    :math:`1`
    sigmoid           :math:`1`
    tanh              :math:`5/3`
    relu              :math:`\sqrt{2}` (ReLU halves the variance)
    leaky_relu        :math:`\sqrt{2 / (1 + \text{negative\_slope}^2)}`
    selu              :math:`3/4`
    ================= ===============================================

    Args:
        nonlinearity: the activation's ``torch.nn.functional`` name (see ``NONLINEARITIES``).
        param: leaky_relu's negative slope (default 0.01); ignored by the others.

    Raises:
        ValueError: unknown ``nonlinearity``, or a ``param`` that is not an int/float.

    Example:
        >>> calculate_gain("relu")
        1.4142135623730951
        >>> calculate_gain("leaky_relu", 0.2)  # sqrt(2 / 1.04)
        1.3867504905630728
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        # torch returns the int 1 here; 1.0 compares equal and keeps the return type honest.
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope: float = 0.01  # nn.LeakyReLU's default
        # bool is a subclass of int, so True/False must be rejected explicitly (as torch does).
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise invalid("param", param, "a number (leaky_relu's negative slope)")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        # Found empirically (pytorch/pytorch#50664); use 'linear' for self-normalizing nets.
        return 3.0 / 4
    raise one_of("nonlinearity", nonlinearity, NONLINEARITIES)


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    r"""Return ``(fan_in, fan_out)`` of a weight laid out as ``(out, in, *kernel)``.

    A Linear weight ``(out, in)`` has ``fan_in = in`` and ``fan_out = out``. A conv weight
    ``(out, in, k1, k2, ...)`` connects each output to ``in·k1·k2·…`` inputs, so both fans are
    multiplied by the receptive-field size ``k1·k2·…``.

    Raises:
        ValueError: the tensor has fewer than 2 dimensions (a bias has no fan-in/fan-out).

    Example:
        >>> calculate_fan_in_and_fan_out(torch.empty(16, 8, 3, 3))
        (72, 144)
    """
    if tensor.dim() < 2:
        raise invalid(
            "tensor shape",
            tuple(tensor.shape),
            "at least 2 dimensions (out, in, *kernel) to compute fan_in and fan_out",
        )
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    fan_in = tensor.size(1) * receptive_field_size
    fan_out = tensor.size(0) * receptive_field_size
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: FanMode) -> int:
    # torch accepts any case ("FAN_IN"), so we do too.
    lowered = mode.lower() if isinstance(mode, str) else mode
    if lowered not in FAN_MODES:
        raise one_of("mode", mode, FAN_MODES)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if lowered == "fan_in" else fan_out


def _is_zero_element(tensor: Tensor) -> bool:
    """Warn and report True for an empty tensor, which the fan-based inits leave untouched."""
    if 0 in tensor.shape:
        # stacklevel 3: point at the caller of the public init function, as torch does.
        warnings.warn(_ZERO_ELEMENT_WARNING, stacklevel=3)
        return True
    return False


# --------------------------------------------------------------------------- plain fills


def zeros_(tensor: Tensor) -> Tensor:
    r"""Fill ``tensor`` with 0, in place; return it.

    The right choice for biases; the wrong one for weights (see the module docstring:
    identical units stay identical).

    Example:
        >>> zeros_(torch.empty(3, 5)).abs().sum()
        tensor(0.)
    """
    # no_grad: an in-place write to a leaf that requires grad is otherwise an error, and an
    # initialization is not part of the computation we want to differentiate.
    with torch.no_grad():
        return tensor.zero_()


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with samples from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`, in place.

    The "random" init. Its scale is fixed by hand rather than by the layer's shape, which is
    exactly its weakness: each layer multiplies the variance by ``fan_in·std²``.

    Args:
        tensor: an n-dimensional tensor.
        mean: the mean of the normal distribution.
        std: its standard deviation.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Example:
        >>> w = normal_(torch.empty(3, 5), std=0.01)
    """
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def uniform_(
    tensor: Tensor,
    a: float = 0.0,
    b: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with samples from :math:`\mathcal{U}(a, b)`, in place.

    Args:
        tensor: an n-dimensional tensor.
        a: the lower bound.
        b: the upper bound.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Example:
        >>> w = uniform_(torch.empty(3, 5), -0.1, 0.1)
    """
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


# --------------------------------------------------------------------------- Xavier / Glorot


def xavier_uniform_(
    tensor: Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with Xavier-uniform samples, in place.

    From *Understanding the difficulty of training deep feedforward neural networks*,
    Glorot, X. & Bengio, Y. (2010). Values are drawn from :math:`\mathcal{U}(-a, a)` with

    .. math::
        a = \text{gain} \times \sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}}

    i.e. variance :math:`a^2/3 = \text{gain}^2 \cdot 2/(\text{fan\_in} + \text{fan\_out})`.
    Also known as Glorot initialization.

    Args:
        tensor: an n-dimensional tensor, n ≥ 2, laid out as ``(out, in, *kernel)``.
        gain: scaling factor, usually :func:`calculate_gain` of the following activation.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Zero-element tensors are returned untouched with a warning (torch itself divides by
    zero when both fans are 0).

    Example:
        >>> w = xavier_uniform_(torch.empty(3, 5), gain=calculate_gain("tanh"))
    """
    if _is_zero_element(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    # Same order as torch: the std first, then the uniform bound sqrt(3)·std (a uniform on
    # (-a, a) has std a/sqrt(3)). gain·sqrt(6/n) is equal on paper but not always in floats.
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def xavier_normal_(
    tensor: Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with Xavier-normal samples, in place.

    From *Understanding the difficulty of training deep feedforward neural networks*,
    Glorot, X. & Bengio, Y. (2010). Values are drawn from :math:`\mathcal{N}(0, \text{std}^2)`
    with

    .. math::
        \text{std} = \text{gain} \times \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    Also known as Glorot initialization.

    Args:
        tensor: an n-dimensional tensor, n ≥ 2, laid out as ``(out, in, *kernel)``.
        gain: scaling factor, usually :func:`calculate_gain` of the following activation.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Example:
        >>> w = xavier_normal_(torch.empty(3, 5))
    """
    if _is_zero_element(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


# --------------------------------------------------------------------------- Kaiming / He


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with Kaiming-uniform samples, in place.

    From *Delving deep into rectifiers: Surpassing human-level performance on ImageNet
    classification*, He, K. et al. (2015). Values are drawn from
    :math:`\mathcal{U}(-\text{bound}, \text{bound})` with

    .. math::
        \text{bound} = \text{gain} \times \sqrt{\frac{3}{\text{fan\_mode}}}

    i.e. variance :math:`\text{gain}^2/\text{fan\_mode}` (``2/fan_in`` for ReLU). Also known as
    He initialization (aliased as :data:`he_uniform_`).

    Args:
        tensor: an n-dimensional tensor, n ≥ 2, laid out as ``(out, in, *kernel)``.
        a: negative slope of the rectifier after this layer (only used with ``'leaky_relu'``).
        mode: ``'fan_in'`` (default) keeps the forward activations' variance; ``'fan_out'``
            keeps the backward gradients' variance.
        nonlinearity: the following activation's name (see ``NONLINEARITIES``); meant for
            ``'relu'`` and ``'leaky_relu'`` (default).
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Zero-element tensors are returned untouched with torch's warning.

    Example:
        >>> w = kaiming_uniform_(torch.empty(3, 5), mode="fan_in", nonlinearity="relu")
    """
    # torch checks for an empty tensor before anything else (even before the fan), so do we.
    if _is_zero_element(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # a uniform on (-b, b) has std b/sqrt(3)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with Kaiming-normal samples, in place.

    From *Delving deep into rectifiers: Surpassing human-level performance on ImageNet
    classification*, He, K. et al. (2015). Values are drawn from
    :math:`\mathcal{N}(0, \text{std}^2)` with

    .. math::
        \text{std} = \frac{\text{gain}}{\sqrt{\text{fan\_mode}}}

    (``sqrt(2/fan_in)`` for ReLU: the paper's own distribution). Also known as He
    initialization (aliased as :data:`he_normal_`).

    Args:
        tensor: an n-dimensional tensor, n ≥ 2, laid out as ``(out, in, *kernel)``.
        a: negative slope of the rectifier after this layer (only used with ``'leaky_relu'``).
        mode: ``'fan_in'`` (default) keeps the forward activations' variance; ``'fan_out'``
            keeps the backward gradients' variance.
        nonlinearity: the following activation's name (see ``NONLINEARITIES``); meant for
            ``'relu'`` and ``'leaky_relu'`` (default).
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Zero-element tensors are returned untouched with torch's warning.

    Example:
        >>> w = kaiming_normal_(torch.empty(3, 5), mode="fan_out", nonlinearity="relu")
    """
    if _is_zero_element(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


# The same objects under their other name, so `he_normal_ is kaiming_normal_`.
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


# --------------------------------------------------------------------------- whole models


def _linear_like(module: nn.Module) -> bool:
    """A ``torch.nn.Linear``, or any module with its own 2-D ``weight`` Parameter and a ``bias``.

    Duck typing lets hand-written Linear layers (which do not subclass ``nn.Linear``) be
    initialized exactly like torch's. The weight must be registered on the module itself
    (``recurse=False``) so a container is never mistaken for the layer it holds; the ``bias``
    attribute (which may be None) tells a Linear apart from e.g. an ``nn.Embedding``.
    """
    if isinstance(module, nn.Linear):
        return True
    weight = dict(module.named_parameters(recurse=False)).get("weight")
    return weight is not None and weight.dim() == 2 and hasattr(module, "bias")


def initialize(
    module: nn.Module,
    scheme: Scheme,
    *,
    nonlinearity: Nonlinearity = "relu",
    std: float = 0.01,
    generator: torch.Generator | None = None,
) -> nn.Module:
    r"""Initialize every Linear layer of ``module`` with one scheme; zero its biases; return it.

    ========== ================================================================================
    scheme     weight
    ========== ================================================================================
    ``zero``   all 0 (:func:`zeros_`): the symmetry failure case
    ``random`` :math:`\mathcal{N}(0, \text{std}^2)`, default ``std = 0.01`` (:func:`normal_`)
    ``xavier`` :math:`\mathcal{U}(-a, a)`, :math:`a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`,
               ``g = calculate_gain(nonlinearity)`` (:func:`xavier_uniform_`)
    ``he``     :math:`\mathcal{N}(0, g^2/\text{fan\_in})`, the He et al. (2015) paper's
               distribution (:func:`kaiming_normal_`, ``mode='fan_in'``, same ``nonlinearity``)
    ========== ================================================================================

    A "Linear layer" is a ``torch.nn.Linear`` or any module with its own 2-D ``weight``
    Parameter and a ``bias`` attribute (so hand-written Linear layers qualify); other modules
    are left alone. Layers are visited in ``named_modules()`` order, so two models with the
    same layer shapes in the same order get identical weights from the same seed, whether
    built from ``torch.nn`` or by hand. Biases are zeroed (no RNG draw), so they do not shift
    the random stream.

    For ``nonlinearity='leaky_relu'`` both "xavier" and "he" use slope 0.01, nn.LeakyReLU's
    default.

    Args:
        module: the model (or a single layer).
        scheme: one of ``SCHEMES``.
        nonlinearity: the activation between the layers, for the gain (see ``NONLINEARITIES``).
        std: the standard deviation of the "random" scheme (ignored by the others).
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Raises:
        ValueError: unknown ``scheme`` or ``nonlinearity``, negative ``std``, or a module
            without any Linear layer (nothing to initialize is a mistake, not a no-op).

    Example:
        >>> torch.manual_seed(0)  # doctest: +SKIP
        >>> mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        >>> mlp = initialize(mlp, "he", nonlinearity="relu")
    """
    if scheme not in SCHEMES:
        raise one_of("scheme", scheme, SCHEMES)
    # Validate the nonlinearity for every scheme, so a typo is caught even when unused.
    gain = calculate_gain(nonlinearity)
    if not std >= 0:  # also rejects NaN
        raise invalid("std", std, "a standard deviation >= 0")
    # kaiming's `a` defaults to 0 (gain sqrt(2)); use LeakyReLU's slope so both schemes agree.
    slope = 0.01 if nonlinearity == "leaky_relu" else 0
    linears = [layer for _, layer in module.named_modules() if _linear_like(layer)]
    if not linears:
        raise invalid(
            "module",
            type(module).__name__,
            "a model with at least one Linear layer (an nn.Linear, or a module with its "
            "own 2-D weight Parameter and a bias attribute)",
        )

    for layer in linears:
        weight = layer.weight
        if scheme == "zero":
            zeros_(weight)
        elif scheme == "random":
            normal_(weight, 0.0, std, generator=generator)
        elif scheme == "xavier":
            xavier_uniform_(weight, gain=gain, generator=generator)
        else:  # "he"
            kaiming_normal_(
                weight, a=slope, mode="fan_in", nonlinearity=nonlinearity, generator=generator
            )
        bias = getattr(layer, "bias", None)
        if isinstance(bias, Tensor):
            zeros_(bias)
    return module
