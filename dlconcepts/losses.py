"""Loss vs cost.

The **loss** is the error of one training example; the **cost** is the error over the
whole set (or batch): the mean of the losses. Every function here returns the per-example
losses with ``reduction="none"`` and the cost with ``reduction="mean"`` (the default, as
in ``torch.nn.functional``); ``"sum"`` adds the losses up::

    losses = cross_entropy(logits, target, reduction="none")  # (B,)  one loss per example
    cost = cross_entropy(logits, target)                       # ()    = losses.mean()

Training minimizes the cost; looking at the individual losses tells *which* examples the
network gets wrong and how badly (``dlconcepts train`` prints both).

Cross-entropy is built from two Functions and a little glue. :class:`CrossEntropyFunction`
is the loss of a class index, the one training uses; :class:`SoftCrossEntropyFunction` is the
loss of a whole distribution over the classes. Class weights, ignored targets, label smoothing
and extra dimensions are plain tensor operations around them (:func:`cross_entropy`).

**Precision.** The losses compute in float32 at least: float16 and bfloat16 inputs are widened
first and the result rounded once at the end, as PyTorch's kernels do (a sum of many terms
rounded to half precision after each step drifts by several ulps). Under ``torch.autocast``
the result stays float32, as PyTorch's autocast policy has it for every loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dlconcepts import activations
from dlconcepts._checks import invalid, one_of
from dlconcepts.activations import float32_or_wider

REDUCTIONS = ("none", "mean", "sum")


class TargetError(ValueError, IndexError):
    """A class index outside [0, C): a ValueError, and an IndexError like PyTorch's own."""


class _SavesInputs(torch.autograd.Function):
    """What the losses share: the inputs are kept, for the backward and for forward-mode AD;
    ``torch.func.vmap`` rules are generated."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)


def loss_dtype(input: Tensor) -> torch.dtype:
    """The dtype a loss of ``input`` returns: the input's, or at least float32 under autocast.

    ``torch.autocast`` runs PyTorch's losses in float32 and returns float32 (a cost summed in
    half precision loses the small terms), so ours do the same on the device it is enabled for.
    """
    if torch.is_autocast_enabled(input.device.type):
        return torch.promote_types(input.dtype, torch.float32)
    return input.dtype


def logsumexp(logits: Tensor) -> Tensor:
    r""":math:`\log \sum_c e^{z_c}` over the last dimension, computed as
    :math:`m + \log \sum_c e^{z_c - m}` with m the largest logit.

    Subtracting m changes nothing mathematically (it cancels) but keeps every exponent ≤ 0, so
    ``exp`` cannot overflow even for logits of ±1e4, and the sum is at least 1, so its log is
    finite. ``torch.logsumexp`` does exactly that in one call.
    """
    return torch.logsumexp(logits, dim=-1)


def log_softmax(logits: Tensor) -> Tensor:
    r"""Log-softmax over the last dimension: :math:`z_c - \log \sum_k e^{z_k}`.

    Stable for any logits, as :func:`logsumexp` is. float16 and bfloat16 are computed in
    float32 and rounded once at the end, as PyTorch's kernels do.
    """
    z = float32_or_wider(logits)
    return (z - logsumexp(z).unsqueeze(-1)).to(logits.dtype)


def softmax(logits: Tensor) -> Tensor:
    r"""Softmax over the last dimension: :math:`p_c = e^{z_c - m} / \sum_k e^{z_k - m}`.

    Taken as ``exp`` of :func:`log_softmax`, the one formula, as PyTorch's own cross-entropy
    backward does; every probability is in [0, 1] even for logits of ±1e4.
    """
    return log_softmax(logits).exp()


def one_hot(target: Tensor, like: Tensor) -> Tensor:
    """Class indices (...,) as rows of 0s with a 1 at the class, shaped and typed ``like``."""
    return torch.zeros_like(like).scatter_(-1, target.unsqueeze(-1), 1)


def soft_cross_entropy_derivative(logits: Tensor, q: Tensor) -> Tensor:
    r""":math:`\partial \ell / \partial z = \operatorname{softmax}(z) \sum_c q_c - q` for
    :math:`\ell = -\sum_c q_c \log \operatorname{softmax}(z)_c`.

    The one formula for the logits' gradient of every cross-entropy here. Written with
    differentiable ops, so the backward can itself be differentiated.
    """
    return softmax(logits) * q.sum(dim=-1, keepdim=True) - q


def cross_entropy_derivative(logits: Tensor, target: Tensor) -> Tensor:
    r""":math:`\partial \ell_i / \partial z_i = \operatorname{softmax}(z_i) - \operatorname{onehot}(t_i)`.

    The gradient of the per-example loss of a class index: :func:`soft_cross_entropy_derivative`
    with the one-hot distribution q, whose sum is 1, so the factor :math:`\sum_c q_c` drops.
    ``CrossEntropyFunction``'s backward scales it by the incoming gradient, the manual backprop
    by 1/B (the mean).
    """
    return softmax(logits) - one_hot(target, logits)


class CrossEntropyFunction(_SavesInputs):
    r"""Softmax cross-entropy of class indices, per example, with a hand-written backward.

    For logits z (B, C) and class indices t (B,):

    .. math::
        \ell_i = -\log \operatorname{softmax}(z_i)_{t_i}
               = \log \textstyle\sum_c e^{z_{ic}} - z_{i t_i}
        \qquad
        \frac{\partial \ell_i}{\partial z_{ic}} = \operatorname{softmax}(z_i)_c - [c = t_i]

    The log-sum-exp is computed as ``m + log Σ exp(z − m)`` with m the row maximum, so
    logits of ±1e4 give finite losses, and a logit of −inf for another class costs nothing.
    The backward recomputes the softmax from the saved logits rather than keeping it: one
    (B, C) tensor less to hold between the passes.
    """

    @staticmethod
    def forward(logits: Tensor, target: Tensor) -> Tensor:
        return logsumexp(logits) - logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        logits, target = ctx.saved_tensors
        return cross_entropy_derivative(logits, target) * grad_output.unsqueeze(-1), None

    @staticmethod
    def jvp(ctx: Any, logits_t: Tensor, target_t: None) -> Tensor:
        logits, target = ctx.saved_tensors
        return (cross_entropy_derivative(logits, target) * logits_t).sum(dim=-1)


class SoftCrossEntropyFunction(_SavesInputs):
    r"""Softmax cross-entropy of a target distribution, per example, hand-written backward.

    For logits z (B, C) and target weights q (B, C), class probabilities possibly scaled
    by class weights:

    .. math::
        \ell_i = -\sum_c q_{ic} \log \operatorname{softmax}(z_i)_c
        \qquad
        \frac{\partial \ell_i}{\partial z_{ic}}
            = \operatorname{softmax}(z_i)_c \textstyle\sum_k q_{ik} - q_{ic}
        \qquad
        \frac{\partial \ell_i}{\partial q_{ic}} = -\log \operatorname{softmax}(z_i)_c

    A one-hot q gives :class:`CrossEntropyFunction`'s loss, except that a logit of −inf
    anywhere makes ``0 · −inf`` a NaN here: class indices use the other Function.
    """

    @staticmethod
    def forward(logits: Tensor, q: Tensor) -> Tensor:
        return -(q * log_softmax(logits)).sum(dim=-1)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None]:
        logits, q = ctx.saved_tensors
        g = grad_output.unsqueeze(-1)
        needs_logits, needs_q = ctx.needs_input_grad
        return (
            soft_cross_entropy_derivative(logits, q) * g if needs_logits else None,
            -log_softmax(logits) * g if needs_q else None,
        )

    @staticmethod
    def jvp(ctx: Any, logits_t: Tensor | None, q_t: Tensor | None) -> Tensor:
        # dℓ = Σ_c ∂ℓ/∂z_c dz_c + Σ_c ∂ℓ/∂q_c dq_c; a missing tangent is 0
        logits, q = ctx.saved_tensors
        d_logits = 0 if logits_t is None else soft_cross_entropy_derivative(logits, q) * logits_t
        d_q = 0 if q_t is None else -log_softmax(logits) * q_t
        return (d_logits + d_q).sum(dim=-1)


def mse_derivative(input: Tensor, target: Tensor) -> Tensor:
    r""":math:`\partial (x - y)^2 / \partial x = 2 (x - y)` (and its negative for y)."""
    return 2 * (input - target)


class MSEFunction(_SavesInputs):
    r"""Squared error per element, with a hand-written backward.

    .. math::
        \ell = (x - y)^2 \qquad \frac{\partial \ell}{\partial x} = 2(x - y)
        \qquad \frac{\partial \ell}{\partial y} = -2(x - y)
    """

    @staticmethod
    def forward(input: Tensor, target: Tensor) -> Tensor:
        diff = input - target
        return diff * diff

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None]:
        input, target = ctx.saved_tensors
        grad = mse_derivative(input, target) * grad_output
        needs_input, needs_target = ctx.needs_input_grad
        return grad if needs_input else None, -grad if needs_target else None

    @staticmethod
    def jvp(ctx: Any, input_t: Tensor | None, target_t: Tensor | None) -> Tensor:
        # d(x - y)^2 = 2 (x - y) (dx - dy); a missing tangent is 0
        input, target = ctx.saved_tensors
        diff_t = (0 if input_t is None else input_t) - (0 if target_t is None else target_t)
        return mse_derivative(input, target) * diff_t


def log_sigmoid(logits: Tensor) -> Tensor:
    r""":math:`\log \sigma(z) = \min(z, 0) - \log(1 + e^{-|z|})`, stable for every z.

    The one place binary cross-entropy takes this logarithm (forward, backward and jvp). The
    exponent is ≤ 0, so ``exp`` cannot overflow, and ``log1p`` keeps the small remainder
    exact: about :math:`-e^{-z}` for large z, where σ(z) rounds to 1 and ``log(sigmoid(z))``
    would give 0, and about z for very negative z, where σ(z) rounds to 0 and its log to −inf.
    """
    return logits.clamp_max(0) - torch.log1p(torch.exp(-logits.abs()))


def binary_cross_entropy_derivative(
    logits: Tensor, target: Tensor, pos_weight: Tensor | None = None
) -> Tensor:
    r""":math:`\partial \ell / \partial z = \sigma(z) - t` (σ from :mod:`dlconcepts.activations`).

    With a weight p of the positive class (``pos_weight``), the loss is
    :math:`\ell = (1 - t) z - l \log \sigma(z)` with :math:`l = 1 + (p - 1) t`, and as
    :math:`\partial \log \sigma(z) / \partial z = 1 - \sigma(z)`:

    .. math::
        \frac{\partial \ell}{\partial z} = (1 - t) - l\,(1 - \sigma(z)) = l\,\sigma(z) - p\,t

    which is σ(z) − t again for p = 1. The one formula for the logits' gradient, in the
    backward, the jvp and the manual backprop.
    """
    if pos_weight is None:
        return activations.sigmoid(logits) - target
    return (1 + (pos_weight - 1) * target) * activations.sigmoid(logits) - pos_weight * target


def binary_cross_entropy_target_derivative(
    logits: Tensor, pos_weight: Tensor | None = None
) -> Tensor:
    r""":math:`\partial \ell / \partial t = -z`; with a positive weight p,
    :math:`\log(1 - \sigma(z)) - p \log \sigma(z) = \log \sigma(-z) - p \log \sigma(z)`.

    The loss :math:`-p\,t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))` is linear in t. For
    p = 1 the difference of the logarithms is simply −z (as :math:`\sigma(-z) = e^{-z}
    \sigma(z)`), the form used then, as in PyTorch.
    """
    if pos_weight is None:
        return -logits
    return log_sigmoid(-logits) - pos_weight * log_sigmoid(logits)


class BinaryCrossEntropyWithLogitsFunction(_SavesInputs):
    r"""Binary cross-entropy on logits, per element, with a hand-written backward.

    For a logit z (the log-odds of "yes"), a target t ∈ [0, 1] and a weight p of the positive
    class (``pos_weight``, default 1: p > 1 counts each positive p times):

    .. math::
        \ell = -p\,t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))
             = (1 - t) z - l \log \sigma(z), \qquad l = 1 + (p - 1) t

    (as :math:`\log(1 - \sigma(z)) = \log \sigma(z) - z`). For p = 1 this is
    :math:`\operatorname{softplus}(z) - z t = \max(z, 0) - z t + \log(1 + e^{-|z|})`.

    .. math::
        \frac{\partial \ell}{\partial z} = l\,\sigma(z) - p\,t
        \qquad
        \frac{\partial \ell}{\partial t} = \log \sigma(-z) - p \log \sigma(z)
        \qquad
        \frac{\partial \ell}{\partial p} = -t \log \sigma(z)

    which for p = 1 are σ(z) − t and −z. A ``pos_weight`` that broadcasts to the logits'
    shape, typically (C,) (one per class), gets the sum of its gradient over the elements it
    was broadcast to.

    **Why this form is stable.** :math:`\log(1 + e^{z})` overflows for z > 88 in float32 and
    :math:`\log \sigma(z)` loses everything once σ(z) rounds to 0 or 1. Splitting
    :math:`\operatorname{softplus}(z) = \max(z, 0) + \log(1 + e^{-|z|})` keeps the exponent
    ≤ 0, and ``log1p`` keeps the small remainder exact. It is evaluated, as in PyTorch, as
    :math:`(1 - t) z - l \log \sigma(z)` with :math:`\log \sigma(z) = \min(z, 0) - \log(1 +
    e^{-|z|})` (:func:`log_sigmoid`): the same value, without subtracting :math:`z t` from
    :math:`\max(z, 0)` (which cancels for t near 1), and +inf rather than NaN for z = +inf,
    t = 0.
    """

    @staticmethod
    def forward(logits: Tensor, target: Tensor, pos_weight: Tensor | None = None) -> Tensor:
        log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * target  # l
        return (1 - target) * logits - log_weight * log_sigmoid(logits)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        z, t, p = ctx.saved_tensors  # logits, target, pos_weight (None: p = 1)
        needs_z, needs_t, needs_p = ctx.needs_input_grad
        return (
            binary_cross_entropy_derivative(z, t, p) * grad_output if needs_z else None,
            binary_cross_entropy_target_derivative(z, p) * grad_output if needs_t else None,
            # ∂ℓ/∂p = −t log σ(z), summed over the dimensions p was broadcast along
            (-t * log_sigmoid(z) * grad_output).sum_to_size(p.shape) if needs_p else None,
        )

    @staticmethod
    def jvp(ctx: Any, z_t: Tensor | None, t_t: Tensor | None, p_t: Tensor | None) -> Tensor:
        # dℓ = ∂ℓ/∂z dz + ∂ℓ/∂t dt + ∂ℓ/∂p dp; a missing tangent is 0
        z, t, p = ctx.saved_tensors
        dz = 0 if z_t is None else binary_cross_entropy_derivative(z, t, p) * z_t
        dt = 0 if t_t is None else binary_cross_entropy_target_derivative(z, p) * t_t
        dp = 0 if p_t is None else -t * log_sigmoid(z) * p_t
        return dz + dt + dp


# The same Functions without their jvp, for torch.compile (see dlconcepts.activations.apply).


@activations.traceable
class _TraceableCrossEntropy(CrossEntropyFunction):
    jvp = activations.WITHOUT_JVP


@activations.traceable
class _TraceableSoftCrossEntropy(SoftCrossEntropyFunction):
    jvp = activations.WITHOUT_JVP


@activations.traceable
class _TraceableMSE(MSEFunction):
    jvp = activations.WITHOUT_JVP


@activations.traceable
class _TraceableBinaryCrossEntropyWithLogits(BinaryCrossEntropyWithLogitsFunction):
    jvp = activations.WITHOUT_JVP


def reduce(losses: Tensor, reduction: str, total_weight: Tensor | None = None) -> Tensor:
    """From per-example losses to what ``reduction`` asks for: themselves, the cost, or the sum.

    The cost is the weighted mean ``losses.sum() / total_weight`` when the losses carry
    weights (``total_weight`` their sum), the plain mean otherwise.
    """
    if reduction == "none":
        return losses
    if reduction == "mean":
        return losses.mean() if total_weight is None else losses.sum() / total_weight
    if reduction == "sum":
        return losses.sum()
    raise one_of("reduction", reduction, REDUCTIONS)


def smooth(q: Tensor, label_smoothing: float) -> Tensor:
    r"""Label smoothing: :math:`(1 - \varepsilon)\,q + \varepsilon / C`, a share ε of the
    target's mass spread evenly over the C classes (the last dimension)."""
    return (1 - label_smoothing) * q + label_smoothing / q.shape[-1]


def _out_of_range(target: Tensor, n_classes: int, ignore_index: int) -> int | None:
    """The first class index outside [0, C) that is not ``ignore_index``, or None."""
    bad = target[(target != ignore_index) & ((target < 0) | (target >= n_classes))]
    return int(bad[0]) if bad.numel() else None


def _all_plain(target: Tensor, n_classes: int, ignore_index: int) -> bool:
    """Whether every class index is known to be in [0, C) and none to be ``ignore_index``.

    Raises :class:`TargetError` for an index outside [0, C) other than ``ignore_index``. The
    values are read only where that is free: on CPU, in eager mode. Reading a GPU tensor on
    the host stalls every training step until the device catches up, and while
    ``torch.compile`` traces, a value read on the host would split the graph in two; there the
    answer is False, and the general path of :func:`cross_entropy` handles ignored and
    out-of-range indices with tensor operations alone.
    """
    if target.device.type != "cpu" or torch.compiler.is_compiling() or not target.numel():
        return False
    low, high = (int(v) for v in torch.aminmax(target))
    if low < 0 or high >= n_classes:
        bad = _out_of_range(target, n_classes, ignore_index)
        if bad is not None:
            raise invalid("target", bad, f"class indices in [0, {n_classes - 1}]", TargetError)
        return False
    return not low <= ignore_index <= high


def _check_cross_entropy(
    logits: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, smoothing: float
) -> None:
    """Raise the project's standard error for arguments ``F.cross_entropy`` also refuses."""
    if logits.dim() == 0 or not logits.is_floating_point():
        raise invalid(
            "logits",
            f"{logits.dtype} {tuple(logits.shape)}",
            "a float tensor of shape (N, C), (N, C, d1, ...) or (C,)",
        )
    class_dim = 0 if logits.dim() == 1 else 1
    n_classes = logits.shape[class_dim]
    indices_shape = tuple(logits.shape[:class_dim] + logits.shape[class_dim + 1 :])
    if target.is_floating_point() and target.shape == logits.shape:  # class probabilities
        if ignore_index >= 0:
            raise invalid("ignore_index", ignore_index, "a negative value with class probabilities")
    elif target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise invalid(
            "target dtype",
            target.dtype,
            f"integer class indices (torch.int64), or float class probabilities of the "
            f"logits' shape {tuple(logits.shape)}",
        )
    elif tuple(target.shape) != indices_shape:
        raise invalid(
            "target shape",
            tuple(target.shape),
            f"{indices_shape} for logits {tuple(logits.shape)}",
        )
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise invalid("weight shape", tuple(weight.shape), f"({n_classes},), one per class")
    if not 0 <= smoothing <= 1:
        raise invalid("label_smoothing", smoothing, "a value in [0, 1]")


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Hand-written drop-in for :func:`torch.nn.functional.cross_entropy`.

    ``logits`` (N, C), (N, C, d1, …) or (C,): the class dimension is the second (the first of
    a 1-D input). ``target`` is either integer class indices of the logits' shape without the
    class dimension, or float class probabilities of the logits' own shape. With class
    weights :math:`w` (``weight``, default all 1) and smoothing ε (``label_smoothing``):

    - class index :math:`y`: :math:`\ell = -\sum_c w_c\, q_c \log \operatorname{softmax}(z)_c`
      with :math:`q = (1 - ε)\,\operatorname{onehot}(y) + ε/C`; for ε = 0 simply
      :math:`w_y \cdot (-\log \operatorname{softmax}(z)_y)`. A target equal to
      ``ignore_index`` has loss 0 and no weight;
    - probabilities :math:`p`: the same with :math:`q = (1 - ε)\,p + ε/C`.

    ``reduction="none"`` gives the losses, shaped like the class-index target; ``"sum"``
    their sum; ``"mean"`` the cost, as PyTorch defines it: for class indices the sum divided
    by the total weight of the targets not ignored, :math:`\sum_i \ell_i / \sum_i w_{y_i}`
    (the plain mean without weights), for probabilities the sum divided by the number of
    losses.

    float16 and bfloat16 logits are computed in float32 and the result rounded once; under
    ``torch.autocast`` it stays float32, as PyTorch's is.

    **Out-of-range class indices without a GPU sync.** On CPU a class index outside
    [0, C) (other than ``ignore_index``) raises :class:`TargetError`: reading a CPU tensor
    costs nothing. On any other device the values are never read back to the host, as
    that would stall every training step until the device caught up; there such a target
    gives a NaN loss instead, which the training loop's non-finite-cost check catches at
    its next sync, before any update is applied. (PyTorch stops the whole CUDA context
    with a device-side assert.) The same holds inside ``torch.compile``, where reading a value
    on the host would break the graph.

    Example::

        >>> cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        tensor(0.1269)
        >>> cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
        tensor(1.1269)
    """
    if reduction not in REDUCTIONS:
        raise one_of("reduction", reduction, REDUCTIONS)
    _check_cross_entropy(logits, target, weight, ignore_index, label_smoothing)
    class_dim = 0 if logits.dim() == 1 else 1
    z = float32_or_wider(logits).movedim(class_dim, -1)  # classes last: (N, d1, …, C)
    indices = not target.is_floating_point()
    plain = indices and _all_plain(target, z.shape[-1], ignore_index)  # may raise TargetError
    if plain and weight is None and not label_smoothing:
        # the lesson itself: ℓ_i = log Σ_c exp(z_ic) − z_{i t_i}, the cost their mean
        cost = reduce(activations.apply(CrossEntropyFunction, z, target.long()), reduction)
    elif indices:
        cost = _weighted_cross_entropy(z, target, weight, ignore_index, reduction, label_smoothing)
    else:
        q = smooth(float32_or_wider(target).movedim(class_dim, -1), label_smoothing)
        q = q if weight is None else q * weight.to(q.dtype)
        cost = reduce(activations.apply(SoftCrossEntropyFunction, z, q), reduction)
    return cost.to(loss_dtype(logits))


def _weighted_cross_entropy(
    z: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> Tensor:
    """Cross-entropy of class indices with class weights, ignored targets and label smoothing.

    ``z`` has the classes last. Each loss is weighted by its target's class weight, an ignored
    one gives 0 and counts for nothing in the mean, an index out of range gives NaN (see
    :func:`cross_entropy`); everything with tensor operations, no value read on the host.
    """
    n_classes = z.shape[-1]
    weight = z.new_ones(n_classes) if weight is None else weight.to(z.dtype)
    ignored = target == ignore_index
    in_range = (target >= 0) & (target < n_classes)
    target = torch.where(in_range, target, 0).long()  # a valid index everywhere, for gathers
    if label_smoothing:
        q = smooth(one_hot(target, z), label_smoothing) * weight
        losses = activations.apply(SoftCrossEntropyFunction, z, q)
    else:
        losses = activations.apply(CrossEntropyFunction, z, target) * weight[target]
    losses = torch.where(ignored, 0, torch.where(in_range, losses, float("nan")))
    return reduce(losses, reduction, torch.where(ignored, 0, weight[target]).sum())


def _check_elementwise(input: Tensor, target: Tensor, reduction: str, input_name: str) -> None:
    """An elementwise loss takes equal-shaped tensors (no broadcasting) and a known reduction."""
    if reduction not in REDUCTIONS:
        raise one_of("reduction", reduction, REDUCTIONS)
    if input.shape != target.shape:
        raise invalid(
            "target shape", tuple(target.shape), f"the {input_name} shape {tuple(input.shape)}"
        )


def _elementwise_weight(name: str, weight: Tensor | None, logits: Tensor) -> Tensor | None:
    """``weight`` (or None) checked to broadcast to the logits' shape, in the logits' dtype.

    PyTorch applies it in place, so it may not add dimensions or grow one; like PyTorch's,
    the result keeps the logits' dtype.
    """
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise invalid(name, weight, "a tensor or None", TypeError)
    shape, full = tuple(weight.shape), tuple(logits.shape)
    fits = len(shape) <= len(full) and all(
        s in (1, f) for s, f in zip(reversed(shape), reversed(full))
    )
    if not fits:
        raise invalid(
            f"{name} shape",
            shape,
            f"a shape that broadcasts to the logits' shape {full}, such as {full[-1:]}",
        )
    return weight.to(logits.dtype)


def binary_cross_entropy_with_logits(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    r"""Hand-written drop-in for :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    ``logits`` and ``target`` (targets in [0, 1]) of the same shape, no broadcasting between
    them. With a weight w per element (``weight``) and p per positive (``pos_weight``):

    .. math::
        \ell = w \left[-p\,t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))\right]

    Both default to 1 and broadcast to the logits' shape: ``pos_weight`` typically (C,), one
    per class of the last dimension (p > 1 favours recall, p < 1 precision), ``weight``
    anything from a scalar to the logits' shape. ``"mean"`` is the plain mean of the
    elements' losses, weights or not (unlike :func:`cross_entropy`'s class weights, they are
    not divided out), ``"sum"`` their sum.

    p enters :class:`BinaryCrossEntropyWithLogitsFunction`, with its own derivatives; w is a
    plain multiplication of the losses it returns, which autograd differentiates. Unlike
    PyTorch's, which refuses them, both may require grad.

    Example::

        >>> z, t = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0])
        >>> binary_cross_entropy_with_logits(z, t)
        tensor(0.4100)
        >>> binary_cross_entropy_with_logits(z, t, pos_weight=torch.tensor([2.0]))
        tensor(0.8201)
    """
    _check_elementwise(logits, target, reduction, "logits'")
    z = float32_or_wider(logits)
    weight = _elementwise_weight("weight", weight, z)
    pos_weight = _elementwise_weight("pos_weight", pos_weight, z)
    losses = activations.apply(
        BinaryCrossEntropyWithLogitsFunction, z, float32_or_wider(target), pos_weight
    )
    cost = reduce(losses if weight is None else losses * weight, reduction)
    return cost.to(loss_dtype(logits))


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Hand-written drop-in for :func:`torch.nn.functional.mse_loss` (equal shapes, no broadcasting)."""
    _check_elementwise(input, target, reduction, "input's")
    cost = reduce(
        activations.apply(MSEFunction, float32_or_wider(input), float32_or_wider(target)), reduction
    )
    return cost.to(loss_dtype(input))
