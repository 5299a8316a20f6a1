"""The proofs: one registry of (name, ours, PyTorch's, inputs) for every hand-written gradient.

``CASES`` drives both ``dlconcepts check`` and the test-suite. For each case, in float64:

- ``gradcheck``: our backward equals finite differences (also forward-mode AD, where the
  piece has a ``jvp``, and the batched gradient through ``vmap``),
- ``gradgradcheck``: our backward is itself differentiable, correctly,
- value and gradient equal the built-in's on the same random inputs.

:func:`check_backprop` compares manual backpropagation (no autograd) with autograd on an MLP.
The input makers (random, :data:`EDGE_VALUES`, non-contiguous) are the ones
:mod:`dlconcepts.testing` runs a learner's own Function on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor

from dlconcepts import activations, layers, losses
from dlconcepts.backprop import manual_gradients

Inputs = Callable[[torch.dtype, torch.device, torch.Generator], tuple[Tensor, ...]]


@dataclass(frozen=True)
class Case:
    """One hand-written piece and its PyTorch counterpart, called with the same inputs."""

    name: str
    ours: Callable[..., Tensor]
    theirs: Callable[..., Tensor]
    inputs: Inputs  # fresh inputs; the floating-point ones require grad


def floats(*shape: int, scale: float = 1.0, away_from_zero: bool = False) -> Callable:
    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
        if away_from_zero:  # finite differences straddling ReLU's kink would disagree at 0
            x = x + 0.1 * x.sign()
        return x.to(device=device, dtype=dtype).requires_grad_()

    return make


def inputs(*makers: Callable) -> Inputs:
    return lambda dtype, device, gen: tuple(m(dtype, device, gen) for m in makers)


# Where a formula breaks first: overflow (±1000: e^1000 is inf even in float64), the sign of
# zero, and numbers so small that 1 + x rounds to 1 (1e-30, and a float32 subnormal).
EDGE_VALUES = (-1000.0, -30.0, -1e-30, -0.0, 0.0, 1e-30, 1e-40, 30.0, 1000.0)


def edge_values(rows: int = 1, scale: float = 1.0) -> Callable:
    """Every edge value in each of ``rows`` rows, shifted along the row one place per row (so
    that, as logits, each row has its extremes in other columns); times ``scale``."""

    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        row = torch.tensor(EDGE_VALUES, dtype=torch.float64) * scale
        x = torch.stack([row.roll(i) for i in range(rows)]) if rows > 1 else row
        return x.to(device=device, dtype=dtype).requires_grad_()

    return make


def non_contiguous(maker: Callable) -> Callable:
    """``maker``'s tensor of shape (a, b), as the transposed view of a (b, a) one: a leaf that
    is not contiguous in memory (what ``x.T`` or a slice hands to a function)."""

    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        x = maker(dtype, device, gen)
        y = x.detach().T.contiguous().T  # the same values, column-major
        assert not y.is_contiguous()
        return y.requires_grad_(x.requires_grad)

    return make


def classes(*shape: int, n_classes: int, ignored: tuple[int, ...] = ()) -> Callable:
    """Random class indices; the flat positions in ``ignored`` set to -100, the ignore_index."""

    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        t = torch.randint(0, n_classes, shape, generator=gen)
        t.view(-1)[list(ignored)] = -100
        return t.to(device)

    return make


def class_weights(n: int) -> Callable:
    """Positive class weights in [0.5, 1.5), not requiring grad (PyTorch has no weight grad)."""

    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        return (torch.rand(n, generator=gen, dtype=torch.float64) + 0.5).to(device, dtype)

    return make


def probabilities(*shape: int, dim: int = -1) -> Callable:
    """Random distributions along ``dim`` (or, with ``dim=None``, numbers in [0, 1])."""

    def make(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> Tensor:
        p = torch.rand(*shape, generator=gen, dtype=torch.float64)
        p = p if dim is None else p / p.sum(dim, keepdim=True)
        return p.to(device=device, dtype=dtype).requires_grad_()

    return make


CASES: tuple[Case, ...] = (
    Case("sigmoid", activations.sigmoid, torch.sigmoid, inputs(floats(4, 5, scale=3))),
    Case("tanh", activations.tanh, torch.tanh, inputs(floats(4, 5, scale=2))),
    Case("relu", activations.relu, torch.relu, inputs(floats(4, 5, away_from_zero=True))),
    Case("linear", layers.linear, F.linear, inputs(floats(3, 2, 5), floats(4, 5), floats(4))),
    Case(
        "linear (no bias)",
        lambda x, w: layers.linear(x, w),
        lambda x, w: F.linear(x, w),
        inputs(floats(3, 5), floats(4, 5)),
    ),
    *(
        Case(
            f"cross_entropy ({reduction})",
            lambda z, t, r=reduction: losses.cross_entropy(z, t, reduction=r),
            lambda z, t, r=reduction: F.cross_entropy(z, t, reduction=r),
            inputs(floats(6, 10, scale=3), classes(6, n_classes=10)),
        )
        for reduction in ("none", "mean", "sum")
    ),
    Case(
        "cross_entropy (weight, ignore_index)",
        losses.cross_entropy,  # the mean: Σ w_t ℓ / Σ w_t over the targets not ignored
        F.cross_entropy,
        inputs(floats(6, 10, scale=3), classes(6, n_classes=10, ignored=(1, 4)), class_weights(10)),
    ),
    Case(
        "cross_entropy (label_smoothing, weight)",
        lambda z, t, w: losses.cross_entropy(z, t, w, label_smoothing=0.2),
        lambda z, t, w: F.cross_entropy(z, t, w, label_smoothing=0.2),
        inputs(floats(6, 10, scale=3), classes(6, n_classes=10, ignored=(2,)), class_weights(10)),
    ),
    Case(
        "cross_entropy (N, C, d1, d2)",
        lambda z, t: losses.cross_entropy(z, t, reduction="none"),
        lambda z, t: F.cross_entropy(z, t, reduction="none"),
        inputs(floats(3, 5, 2, 2, scale=3), classes(3, 2, 2, n_classes=5)),
    ),
    Case(
        "cross_entropy (probabilities, weight, smoothing)",
        lambda z, p, w: losses.cross_entropy(z, p, w, label_smoothing=0.1),
        lambda z, p, w: F.cross_entropy(z, p, w, label_smoothing=0.1),
        inputs(floats(3, 5, 2, scale=3), probabilities(3, 5, 2, dim=1), class_weights(5)),
    ),
    *(
        Case(
            f"binary_cross_entropy_with_logits ({reduction})",
            lambda z, t, r=reduction: losses.binary_cross_entropy_with_logits(z, t, reduction=r),
            lambda z, t, r=reduction: F.binary_cross_entropy_with_logits(z, t, reduction=r),
            inputs(floats(4, 5, scale=3), probabilities(4, 5, dim=None)),
        )
        for reduction in ("none", "mean", "sum")
    ),
    Case(
        "binary_cross_entropy_with_logits (pos_weight)",  # p per class, positive, without grad
        lambda z, t, p: losses.binary_cross_entropy_with_logits(z, t, pos_weight=p),
        lambda z, t, p: F.binary_cross_entropy_with_logits(z, t, pos_weight=p),
        inputs(floats(4, 5, scale=3), probabilities(4, 5, dim=None), class_weights(5)),
    ),
    Case(
        "mse_loss (mean)",
        losses.mse_loss,
        F.mse_loss,
        inputs(floats(4, 3), floats(4, 3)),
    ),
)


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def grads(
    fn: Callable[..., Tensor], args: tuple[Tensor, ...], seed: int = 0
) -> tuple[Tensor, list[Tensor]]:
    """Value of ``fn(*args)`` and the gradients of ``(fn(*args) * v).sum()`` for a fixed random v."""
    out = fn(*args)
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out)
    diff = [a for a in args if a.requires_grad]
    return out.detach(), [g.detach() for g in torch.autograd.grad((out * v).sum(), diff)]


# How far ours may be from PyTorch's in float64 and still count as the same function. Two
# correct implementations that round differently differ by a few ulps (about 1e-16 relative
# each) times the operations accumulated, around 1e-14 here; a wrong formula is off by far
# more than 1e-10 on random inputs of order 1, so this bound separates the two.
TOLERANCE = 1e-10


@dataclass
class Row:
    name: str
    gradcheck: bool
    gradgradcheck: bool
    value_diff: float  # max |ours − PyTorch's|
    grad_diff: float  # max |∂ours − ∂PyTorch's|

    @property
    def ok(self) -> bool:
        return (
            self.gradcheck
            and self.gradgradcheck
            and self.value_diff < TOLERANCE
            and self.grad_diff < TOLERANCE
        )


def provides_jvp(fn: Callable[..., Tensor], args: tuple[Tensor, ...]) -> bool:
    """Whether forward-mode AD runs through ``fn``: an ``autograd.Function`` without a
    ``jvp`` (PyTorch's classic style, say) raises ``NotImplementedError`` there, and has
    nothing to check."""
    with fwAD.dual_level():
        duals = [
            fwAD.make_dual(a.detach(), torch.zeros_like(a)) if a.is_floating_point() else a
            for a in args
        ]
        try:
            fn(*duals)
        except NotImplementedError:
            return False
    return True


def check_case(c: Case, device: torch.device | str = "cpu") -> Row:
    gen = torch.Generator().manual_seed(0)
    args = c.inputs(torch.float64, torch.device(device), gen)
    ok1 = torch.autograd.gradcheck(
        c.ours,
        args,
        check_forward_ad=provides_jvp(c.ours, args),
        check_batched_grad=True,
        raise_exception=False,
    )
    ok2 = torch.autograd.gradgradcheck(c.ours, args, raise_exception=False)
    ours_val, ours_grads = grads(c.ours, args)
    their_val, their_grads = grads(c.theirs, args)
    grad_diff = max(
        (float((a - b).abs().max()) for a, b in zip(ours_grads, their_grads)), default=0.0
    )
    return Row(c.name, ok1, ok2, float((ours_val - their_val).abs().max()), grad_diff)


def check_backprop(device: torch.device | str = "cpu") -> Row:
    """Manual backprop (no autograd) against autograd, for an MLP of each activation."""
    worst = 0.0
    for act in activations.ACTIVATIONS:
        gen = torch.Generator().manual_seed(0)
        model = layers.MLP(
            (20, 16, 12, 10), activation=act, generator=gen, dtype=torch.float64, device=device
        )
        x = torch.randn(8, 20, generator=gen, dtype=torch.float64).to(device)
        t = torch.randint(0, 10, (8,), generator=gen).to(device)
        manual = manual_gradients(model, x, t)
        auto = torch.autograd.grad(F.cross_entropy(model(x), t), list(model.parameters()))
        for (name, _), g in zip(model.named_parameters(), auto):
            # relative; the floor keeps an exactly zero gradient (a dead unit) from dividing by 0
            worst = max(worst, float(((manual[name] - g).abs() / g.abs().clamp_min(1e-12)).max()))
    return Row("manual backprop (MLP, all acts)", True, True, 0.0, worst)
