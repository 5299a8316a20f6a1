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

Beyond the fan-based schemes
----------------------------
The rest of ``torch.nn.init`` is here too, by hand: constant fills (:func:`constant_`,
:func:`ones_`), identity-preserving ones (:func:`eye_` for Linear, :func:`dirac_` for
convolutions), random orthogonal matrices (:func:`orthogonal_`, Saxe et al., 2013), the
truncated normal (:func:`trunc_normal_`) and sparse columns (:func:`sparse_`, Martens, 2010).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor, nn

from dlconcepts import choices
from dlconcepts._checks import invalid, one_of

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
SCHEMES = choices.SCHEMES

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


def constant_(tensor: Tensor, val: float) -> Tensor:
    r"""Fill ``tensor`` with the value ``val``, in place; return it.

    Example:
        >>> constant_(torch.empty(2, 3), 0.3)[0]
        tensor([0.3000, 0.3000, 0.3000])
    """
    with torch.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    r"""Fill ``tensor`` with 1, in place; return it.

    Example:
        >>> ones_(torch.empty(2, 3)).sum()
        tensor(6.)
    """
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    r"""Fill the 2-D ``tensor`` with the identity matrix (1 on the diagonal, 0 elsewhere), in place.

    A Linear layer with this weight passes as many of its inputs through unchanged as it
    has outputs: ``y_i = x_i`` for ``i < min(out, in)``.

    Raises:
        ValueError: the tensor is not 2-dimensional.

    Example:
        >>> eye_(torch.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    if tensor.dim() != 2:
        raise invalid("tensor shape", tuple(tensor.shape), "2 dimensions (out, in)")
    with torch.no_grad():
        return tensor.zero_().fill_diagonal_(1)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    r"""Fill the 3-, 4- or 5-D ``tensor`` with the Dirac delta, in place: the conv identity.

    A convolution weight ``(out, in, *kernel)`` gets a single 1 at the kernel's centre
    linking output channel ``d`` to input channel ``d``, for ``d < min(out / groups, in)``:
    the convolution copies those input channels through. With ``groups > 1`` each group of
    ``out / groups`` output channels does so for its own input channels.

    Raises:
        ValueError: the tensor is not 3-, 4- or 5-D, or ``out`` is not divisible by ``groups``.

    Example:
        >>> dirac_(torch.empty(2, 2, 3))[0]
        tensor([[0., 1., 0.],
                [0., 0., 0.]])
    """
    if tensor.dim() not in (3, 4, 5):
        raise invalid(
            "tensor shape", tuple(tensor.shape), "3, 4 or 5 dimensions (out, in, *kernel)"
        )
    if tensor.size(0) % groups != 0:
        raise invalid("groups", groups, f"a divisor of the out channels, {tensor.size(0)}")
    out_per_group = tensor.size(0) // groups
    centre = tuple(size // 2 for size in tensor.shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(min(out_per_group, tensor.size(1))):
                tensor[(g * out_per_group + d, d, *centre)] = 1
    return tensor


def orthogonal_(
    tensor: Tensor,
    gain: float = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with a random (semi-)orthogonal matrix times ``gain``, in place.

    From *Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks*, Saxe, A. et al. (2013). An orthogonal W keeps every length, :math:`\|Wx\| =
    \|x\|`, so a deep linear stack neither shrinks nor grows the signal in *any* direction
    (a scaled Gaussian only does so on average). A tensor of more than 2 dimensions is
    treated as the matrix ``(out, in·k1·k2·…)``; a wide matrix gets orthonormal rows, a tall
    one orthonormal columns.

    The matrix is Q of the QR decomposition of a Gaussian matrix, with each column's sign
    set by the sign of R's diagonal: without that, QR's sign convention makes Q not quite
    uniformly distributed (Mezzadri, 2007).

    Args:
        tensor: an n-dimensional tensor, n ≥ 2.
        gain: scaling factor.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Example:
        >>> w = orthogonal_(torch.empty(3, 5))
        >>> torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)
        True
    """
    if tensor.dim() < 2:
        raise invalid("tensor shape", tuple(tensor.shape), "at least 2 dimensions")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    gaussian = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    tall = gaussian if rows >= cols else gaussian.T  # QR gives orthonormal columns
    q, r = torch.linalg.qr(tall)
    q = q * r.diagonal().sign()
    with torch.no_grad():
        tensor.view(rows, cols).copy_(q if rows >= cols else q.T)
        return tensor.mul_(gain)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` with :math:`\mathcal{N}(	ext{mean}, 	ext{std}^2)` truncated to [a, b].

    Every value lies in [a, b] and, inside it, follows the normal's shape. Two rejection
    samplers, chosen and run as ``torch.nn.init`` runs them (so the values are the same):

    - if [a, b] holds more than 30% of the normal's mass, draw normals and redraw the ones
      outside [a, b] until none are left (the bounds rounded to the tensor's dtype first);
    - otherwise (a far tail, where most normals would be rejected), propose uniform values
      on [a, b] and accept each with probability :math:`	ext{pdf}(x) / 	ext{pdf}(m)`, m the
      point of [a, b] nearest the mean, redrawing the rejected ones.

    Warns when the mean is more than 2 std outside [a, b], as torch does.

    Args:
        tensor: an n-dimensional tensor.
        mean: the mean of the normal distribution.
        std: its standard deviation.
        a: the lower cutoff.
        b: the upper cutoff.
        generator: the ``torch.Generator`` to sample from (default: the global one).

    Example:
        >>> w = trunc_normal_(torch.empty(100), std=0.02, a=-0.04, b=0.04)
        >>> bool(w.abs().max() <= 0.04)
        True
    """
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )

    def normal_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    mass = normal_cdf((b - mean) / std) - normal_cdf((a - mean) / std)
    with torch.no_grad():
        if mass > 0.3:
            _redraw_outside(tensor, mean, std, a, b, generator)
        else:
            _accept_uniform_proposals(tensor, mean, std, a, b, generator)
    return tensor


def _redraw_outside(
    tensor: Tensor, mean: float, std: float, a: float, b: float, generator: torch.Generator | None
) -> None:
    """Normals, with every value outside [a, b] redrawn until none is."""
    low = tensor.new_tensor(a, device="cpu").item()  # the bounds in the tensor's dtype
    high = tensor.new_tensor(b, device="cpu").item()
    tensor.normal_(mean, std, generator=generator)
    outside = (tensor < low) | (tensor > high)
    while outside.any():
        redrawn = torch.empty_like(tensor).normal_(mean, std, generator=generator)
        tensor.copy_(torch.where(outside, redrawn, tensor))
        outside = (tensor < low) | (tensor > high)


def _accept_uniform_proposals(
    tensor: Tensor, mean: float, std: float, a: float, b: float, generator: torch.Generator | None
) -> None:
    """Uniform proposals on [a, b], each kept with probability pdf(x) / pdf(nearest to mean)."""
    nearest = max(a, min(mean, b))
    log_peak = -0.5 * ((nearest - mean) / std) ** 2

    def log_acceptance(x: Tensor) -> Tensor:  # log(pdf(x) / pdf(nearest)) ≤ 0
        return -0.5 * ((x - mean) / std) ** 2 - log_peak

    def rejected(x: Tensor) -> Tensor:  # log U > log acceptance, U uniform on [0, 1)
        return torch.empty_like(x).uniform_(generator=generator).log() > log_acceptance(x)

    tensor.uniform_(a, b, generator=generator)
    pending = rejected(tensor)
    while pending.any():
        proposal = torch.empty_like(tensor).uniform_(a, b, generator=generator)
        tensor.copy_(torch.where(pending, proposal, tensor))
        pending = pending & rejected(proposal)


def sparse_(
    tensor: Tensor,
    sparsity: float,
    std: float = 0.01,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the 2-D ``tensor`` with :math:`\mathcal{N}(0, 	ext{std}^2)` samples, then zero
    ``ceil(sparsity · rows)`` random entries of every column, in place.

    From *Deep learning via Hessian-free optimization*, Martens, J. (2010): each unit gets
    only a few nonzero incoming weights, so units differ strongly from the start while the
    scale of their inputs stays independent of the layer's width.

    Like ``torch.nn.init.sparse_``, ``generator`` drives only the normal samples: the rows
    to zero are drawn with ``torch.randperm`` from the global RNG (kept, so the values are
    the same as torch's).

    Args:
        tensor: a 2-dimensional tensor.
        sparsity: the fraction of each column set to zero.
        std: the standard deviation of the nonzero values.
        generator: the ``torch.Generator`` for the normal samples (default: the global one).

    Raises:
        ValueError: the tensor is not 2-dimensional.

    Example:
        >>> w = sparse_(torch.empty(10, 3), sparsity=0.3)
        >>> (w == 0).sum(dim=0)
        tensor([3, 3, 3])
    """
    if tensor.dim() != 2:
        raise invalid("tensor shape", tuple(tensor.shape), "2 dimensions (out, in)")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with torch.no_grad():
        tensor.normal_(0, std, generator=generator)
        for col in range(cols):
            tensor[torch.randperm(rows)[:num_zeros], col] = 0
    return tensor


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
