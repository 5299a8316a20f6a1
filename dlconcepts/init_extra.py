r"""The rest of ``torch.nn.init``, written out by hand and bit-identical to it.

:mod:`dlconcepts.init` teaches the four schemes of the course (zero, random, Xavier, He) and
the fans and gains they are built from. This module holds the other initializations that
``torch.nn.init`` offers, and ``dlconcepts.init`` re-exports them, so that it stays a drop-in
replacement for ``torch.nn.init``:

* constant fills: :func:`constant_`, :func:`ones_`;
* fills that preserve the input: :func:`eye_` for Linear, :func:`dirac_` for convolutions;
* random orthogonal matrices: :func:`orthogonal_` (Saxe et al., 2013);
* the truncated normal: :func:`trunc_normal_`;
* sparse columns: :func:`sparse_` (Martens, 2010).

As in :mod:`dlconcepts.init`, every random function makes the same RNG calls as torch's,
with the same floating-point operations in the same order, so one seed gives the same values.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from dlconcepts._checks import invalid

__all__ = [
    "constant_",
    "dirac_",
    "eye_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
]


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
    r"""Fill ``tensor`` with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to [a, b].

    Every value lies in [a, b] and, inside it, follows the normal's shape. Two rejection
    samplers, chosen and run as ``torch.nn.init`` runs them (so the values are the same):

    - if [a, b] holds more than 30% of the normal's mass, draw normals and redraw the ones
      outside [a, b] until none are left (the bounds rounded to the tensor's dtype first);
    - otherwise (a far tail, where most normals would be rejected), propose uniform values
      on [a, b] and accept each with probability :math:`\text{pdf}(x) / \text{pdf}(m)`, m the
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
    r"""Fill the 2-D ``tensor`` with :math:`\mathcal{N}(0, \text{std}^2)` samples, then zero
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
