"""Loss vs cost: per-example losses (reduction='none'), their mean is the cost."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from dlconcepts.losses import (
    BinaryCrossEntropyWithLogitsFunction,
    TargetError,
    binary_cross_entropy_derivative,
    binary_cross_entropy_target_derivative,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_derivative,
    mse_loss,
    softmax,
)


def test_cost_is_the_mean_of_the_losses() -> None:
    logits = torch.randn(32, 10, dtype=torch.float64)
    target = torch.randint(0, 10, (32,))
    losses = cross_entropy(logits, target, reduction="none")
    assert losses.shape == (32,)  # one loss per example
    cost = cross_entropy(logits, target)
    assert cost.shape == ()
    torch.testing.assert_close(cost, losses.mean())
    torch.testing.assert_close(cross_entropy(logits, target, reduction="sum"), losses.sum())
    torch.testing.assert_close(losses, F.cross_entropy(logits, target, reduction="none"))


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_cross_entropy_is_stable_for_huge_logits(scale: float) -> None:
    logits = (torch.randn(16, 10, dtype=torch.float32) * scale).requires_grad_()
    target = torch.randint(0, 10, (16,))
    ours = cross_entropy(logits, target, reduction="none")
    theirs = F.cross_entropy(logits, target, reduction="none")
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, theirs)
    (g,) = torch.autograd.grad(ours.sum(), logits)
    (g2,) = torch.autograd.grad(theirs.sum(), logits)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g, g2)


def test_softmax_rows_sum_to_one_without_overflow() -> None:
    p = softmax(torch.tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))
    torch.testing.assert_close(p[0], torch.tensor([1.0, 0.0, 0.0]))


def test_single_example_and_empty_batch_like_torch() -> None:
    z, t = torch.randn(10), torch.tensor(3)
    torch.testing.assert_close(cross_entropy(z, t), F.cross_entropy(z, t))
    empty = cross_entropy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long), reduction="none")
    assert empty.shape == (0,)
    assert torch.isnan(cross_entropy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long)))


@pytest.mark.parametrize(
    "target, exc, words",
    [
        (torch.tensor([0, 10, 1]), TargetError, ["target", "10", "[0, 9]"]),
        (torch.tensor([0, -1, 1]), TargetError, ["-1", "[0, 9]"]),
        (torch.tensor([0.0, 1.0, 2.0]), ValueError, ["target dtype", "torch.float32", "int64"]),
        (torch.tensor([0, 1]), ValueError, ["target shape", "(2,)", "(3,)"]),
    ],
)
def test_bad_targets_give_clear_errors(target: torch.Tensor, exc: type, words: list[str]) -> None:
    with pytest.raises(exc) as err:
        cross_entropy(torch.randn(3, 10), target)
    for w in words:
        assert w in str(err.value), str(err.value)


def test_out_of_range_is_also_an_index_error_like_torch() -> None:
    with pytest.raises(IndexError):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 3]))


def test_bad_reduction() -> None:
    with pytest.raises(
        ValueError, match="reduction: expected one of 'none', 'mean', 'sum', got 'avg'"
    ):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(torch.randn(2), torch.randn(2), reduction="avg")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_matches_torch(reduction: str) -> None:
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    ours, theirs = mse_loss(x, y, reduction), F.mse_loss(x, y, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    g = torch.ones_like(ours)
    for a, b in zip(torch.autograd.grad(ours, (x, y), g), torch.autograd.grad(theirs, (x, y), g)):
        torch.testing.assert_close(a, b)


def test_mse_shape_mismatch() -> None:
    with pytest.raises(
        ValueError, match=r"target shape: expected the input's shape \(5, 3\), got \(5,\)"
    ):
        mse_loss(torch.randn(5, 3), torch.randn(5))


# --- the full F.cross_entropy: weights, ignore_index, label smoothing, K-d, probabilities ----

CE_SHAPES = [(5, 4), (4,), (3, 4, 2, 2)]


def _target(shape: tuple[int, ...], probabilities: bool) -> torch.Tensor:
    if probabilities:
        return torch.rand(shape, dtype=torch.float64, requires_grad=True)
    class_dim = 0 if len(shape) == 1 else 1
    t = torch.randint(0, shape[class_dim], shape[:class_dim] + shape[class_dim + 1 :])
    t.view(-1)[0] = 1  # so ignore_index=1 ignores at least one
    return t


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weight"])
@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=["NC", "C", "NCd1d2"])
def test_cross_entropy_matches_torch_everywhere(
    shape: tuple[int, ...],
    probabilities: bool,
    weighted: bool,
    ignore_index: int,
    label_smoothing: float,
    reduction: str,
) -> None:
    if probabilities and ignore_index >= 0:
        pytest.skip("torch refuses ignore_index with probabilities (tested below)")
    z = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    t = _target(shape, probabilities)
    n_classes = shape[0 if len(shape) == 1 else 1]
    weight = torch.rand(n_classes, dtype=torch.float64) + 0.5 if weighted else None
    kwargs = {"ignore_index": ignore_index, "reduction": reduction}
    kwargs["label_smoothing"] = label_smoothing
    ours = cross_entropy(z, t, weight, **kwargs)
    theirs = F.cross_entropy(z, t, weight, **kwargs)
    # 1-D with ignore_index=1 ignores the only target: NaN, as in torch
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12, equal_nan=True)
    inputs = [z, t] if probabilities else [z]
    v = torch.randn_like(ours)
    for a, b in zip(
        torch.autograd.grad((ours * v).sum(), inputs),
        torch.autograd.grad((theirs * v).sum(), inputs),
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_mean_divides_by_the_weights_of_the_targets_not_ignored() -> None:
    z = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 2, -100, 2])
    w = torch.tensor([1.0, 5.0, 2.0], dtype=torch.float64)
    per = cross_entropy(z, t, w, reduction="none")
    assert per[2] == 0
    torch.testing.assert_close(cross_entropy(z, t, w), per.sum() / (1 + 2 + 2))


def test_all_targets_ignored_gives_nan_like_torch() -> None:
    z, t = torch.randn(2, 3), torch.tensor([-100, -100])
    assert torch.isnan(cross_entropy(z, t)) and torch.isnan(F.cross_entropy(z, t))


def test_ignored_target_may_be_out_of_range() -> None:
    z, t = torch.randn(2, 3), torch.tensor([7, 1])
    torch.testing.assert_close(
        cross_entropy(z, t, ignore_index=7), F.cross_entropy(z, t, ignore_index=7)
    )


def test_cross_entropy_derivative_is_softmax_minus_one_hot() -> None:
    z, t = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 2])
    expected = torch.softmax(z, -1) - F.one_hot(t, 3)
    torch.testing.assert_close(cross_entropy_derivative(z, t), expected)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"weight": torch.ones(4)}, ["weight shape", "(4,)", "(3,), one per class"]),
        ({"label_smoothing": 1.5}, ["label_smoothing", "[0, 1]", "1.5"]),
    ],
)
def test_bad_cross_entropy_options_give_clear_errors(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), **kwargs)
    for w in words:
        assert w in str(err.value), str(err.value)
    with pytest.raises(RuntimeError):  # torch refuses them too
        F.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), **kwargs)


def test_negative_label_smoothing_is_refused() -> None:
    # Deliberately stricter than torch, which silently treats a negative value as 0.
    with pytest.raises(
        ValueError, match=r"label_smoothing: expected a value in \[0, 1\], got -0.1"
    ):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing=-0.1)


def test_ignore_index_with_probabilities_is_refused_like_torch() -> None:
    z, p = torch.randn(2, 3), torch.rand(2, 3)
    with pytest.raises(ValueError, match="ignore_index: expected a negative value"):
        cross_entropy(z, p, ignore_index=1)
    with pytest.raises(RuntimeError):
        F.cross_entropy(z, p, ignore_index=1)


@pytest.mark.parametrize(
    "target", [torch.tensor([[0, 1]]), torch.rand(2, 3, 1)], ids=["indices", "probabilities"]
)
def test_k_dimensional_target_shape_is_checked(target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="target"):
        cross_entropy(torch.randn(2, 3, 2), target)


# --- out-of-range targets: an error on CPU, no host sync elsewhere --------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_cross_entropy_never_syncs_and_marks_bad_targets_nan() -> None:
    z = torch.randn(4, 3, device="cuda", requires_grad=True)
    good, bad = (
        torch.tensor([0, 2, 1, -100], device="cuda"),
        torch.tensor([0, 3, 1, 2], device="cuda"),
    )
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host read now raises
    try:
        cost = cross_entropy(z, good)
        cost.backward()
        per = cross_entropy(z, bad, reduction="none")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(cost, F.cross_entropy(z, good))
    assert torch.isnan(per[1]) and torch.isfinite(per[[0, 2, 3]]).all()


# --- binary cross-entropy on logits ---------------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits_matches_torch(reduction: str) -> None:
    z = (torch.randn(5, 3, dtype=torch.float64) * 5).requires_grad_()
    t = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    ours = binary_cross_entropy_with_logits(z, t, reduction=reduction)
    theirs = F.binary_cross_entropy_with_logits(z, t, reduction=reduction)
    torch.testing.assert_close(ours, theirs)
    g = torch.ones_like(ours)
    for a, b in zip(torch.autograd.grad(ours, (z, t), g), torch.autograd.grad(theirs, (z, t), g)):
        torch.testing.assert_close(a, b)


def test_bce_with_logits_is_stable_for_huge_logits() -> None:
    z = torch.tensor([-1e4, -100.0, 100.0, 1e4], requires_grad=True)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0])
    ours = binary_cross_entropy_with_logits(z, t, reduction="none")
    torch.testing.assert_close(ours, torch.tensor([1e4, 0.0, 0.0, 1e4]))
    (g,) = torch.autograd.grad(ours.sum(), z)
    torch.testing.assert_close(g, torch.tensor([-1.0, 0.0, 0.0, 1.0]))


def test_bce_derivative_is_sigmoid_minus_target() -> None:
    z, t = torch.randn(6, dtype=torch.float64), torch.rand(6, dtype=torch.float64)
    torch.testing.assert_close(binary_cross_entropy_derivative(z, t), torch.sigmoid(z) - t)


def test_bce_shape_mismatch_and_bad_reduction() -> None:
    with pytest.raises(ValueError, match=r"target shape: expected the logits' shape \(5, 3\)"):
        binary_cross_entropy_with_logits(torch.randn(5, 3), torch.rand(5))
    with pytest.raises(ValueError, match="reduction"):
        binary_cross_entropy_with_logits(torch.randn(2), torch.rand(2), reduction="avg")


# --- weight and pos_weight: F.binary_cross_entropy_with_logits in full ---------------------

BCE_SHAPE = (5, 3)
# shapes that broadcast to (5, 3) without growing it, as PyTorch requires (it applies them in
# place): a scalar, one per class, one per example, one per element
WEIGHT_SHAPES = [None, (), (3,), (5, 1), (5, 3)]


def _bce_inputs(
    dtype: torch.dtype,
    weight_shape: tuple[int, ...] | None,
    pos_weight_shape: tuple[int, ...] | None,
) -> tuple[torch.Tensor, ...]:
    z = (torch.randn(BCE_SHAPE, dtype=torch.float64) * 4).to(dtype).requires_grad_()
    t = torch.rand(BCE_SHAPE, dtype=torch.float64).to(dtype).requires_grad_()
    w = None if weight_shape is None else (torch.rand(weight_shape, dtype=dtype) + 0.5)
    p = None if pos_weight_shape is None else (torch.rand(pos_weight_shape, dtype=dtype) * 3 + 0.1)
    return z, t, w, p


def _bce_by_builtins(
    z: torch.Tensor, t: torch.Tensor, w: Any, reduction: str, p: Any
) -> torch.Tensor:
    """The definition w [−p t log σ(z) − (1 − t) log(1 − σ(z))] from PyTorch's built-ins, for
    the weights' gradients, which F.binary_cross_entropy_with_logits refuses to compute."""
    losses = -(1 if p is None else p) * t * F.logsigmoid(z) - (1 - t) * F.logsigmoid(-z)
    losses = losses if w is None else losses * w
    return {"none": losses, "mean": losses.mean(), "sum": losses.sum()}[reduction]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("pos_weight_shape", WEIGHT_SHAPES, ids=str)
@pytest.mark.parametrize("weight_shape", WEIGHT_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_bce_weight_and_pos_weight_match_torch(
    dtype: torch.dtype,
    weight_shape: tuple[int, ...] | None,
    pos_weight_shape: tuple[int, ...] | None,
    reduction: str,
) -> None:
    z, t, w, p = _bce_inputs(dtype, weight_shape, pos_weight_shape)
    ours = binary_cross_entropy_with_logits(z, t, w, reduction=reduction, pos_weight=p)
    theirs = F.binary_cross_entropy_with_logits(z, t, w, reduction=reduction, pos_weight=p)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs)
    v = torch.randn_like(ours)
    for a, b in zip(
        torch.autograd.grad((ours * v).sum(), (z, t)),
        torch.autograd.grad((theirs * v).sum(), (z, t)),
    ):
        torch.testing.assert_close(a, b)
    # the weights' own gradients, against the definition written with PyTorch's built-ins
    weights = [a.requires_grad_() for a in (w, p) if a is not None]
    if weights:
        ours = binary_cross_entropy_with_logits(z, t, w, reduction=reduction, pos_weight=p)
        reference = _bce_by_builtins(z, t, w, reduction, p)
        torch.testing.assert_close(ours, reference)
        for a, b in zip(
            torch.autograd.grad((ours * v).sum(), weights),
            torch.autograd.grad((reference * v).sum(), weights),
        ):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b)


def test_torch_refuses_gradients_for_the_weights_ours_gives_them() -> None:
    z, t = torch.randn(2, 3), torch.rand(2, 3)
    for name in ("weight", "pos_weight"):
        kwargs = {name: torch.ones(3, requires_grad=True)}
        with pytest.raises(RuntimeError, match="not differentiable"):
            F.binary_cross_entropy_with_logits(z, t, **kwargs)
        (g,) = torch.autograd.grad(binary_cross_entropy_with_logits(z, t, **kwargs), kwargs[name])
        assert g.shape == (3,) and g.isfinite().all()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("pos_weight_shape", [(), (3,), (5, 1), (5, 3)], ids=str)
def test_bce_pos_weight_gradcheck(pos_weight_shape: tuple[int, ...], reduction: str) -> None:
    z, t, w, p = _bce_inputs(torch.float64, (3,), pos_weight_shape)
    args = (z, t, w.requires_grad_(), p.requires_grad_())

    def fn(*a: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(
            a[0], a[1], a[2], reduction=reduction, pos_weight=a[3]
        )

    assert torch.autograd.gradcheck(
        fn, args, check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True
    )
    assert torch.autograd.gradgradcheck(fn, args)


def test_bce_derivatives_with_pos_weight_are_torchs() -> None:
    z, t, _, p = _bce_inputs(torch.float64, None, (3,))
    loss = F.binary_cross_entropy_with_logits(z, t, reduction="sum", pos_weight=p)
    dz, dt = torch.autograd.grad(loss, (z, t))
    torch.testing.assert_close(binary_cross_entropy_derivative(z, t, p), dz)
    torch.testing.assert_close(binary_cross_entropy_target_derivative(z, p), dt)
    # and p = 1 gives back σ(z) − t and −z
    one = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(binary_cross_entropy_derivative(z, t, one), torch.sigmoid(z) - t)
    torch.testing.assert_close(binary_cross_entropy_target_derivative(z, one), -z)


@pytest.mark.parametrize("target", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("pos_weight", [0.5, 3.0])
def test_bce_pos_weight_at_extreme_logits_is_torchs(pos_weight: float, target: float) -> None:
    inf = float("inf")
    z = torch.tensor([-inf, -1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4, inf], requires_grad=True)
    t = torch.full_like(z, target, requires_grad=True)
    p, w = torch.tensor([pos_weight]), torch.tensor([2.0])
    ours = binary_cross_entropy_with_logits(z, t, w, reduction="none", pos_weight=p)
    theirs = F.binary_cross_entropy_with_logits(z, t, w, reduction="none", pos_weight=p)
    # NaN (0 · inf) exactly where PyTorch has it; everything finite in between
    torch.testing.assert_close(ours, theirs, equal_nan=True)
    assert ours[1:-1].isfinite().all()
    for a, b in zip(
        torch.autograd.grad(ours.sum(), (z, t)), torch.autograd.grad(theirs.sum(), (z, t))
    ):
        torch.testing.assert_close(a, b, equal_nan=True)
        assert a[1:-1].isfinite().all()


def test_bce_result_has_the_logits_dtype_like_torch() -> None:
    z, t = torch.randn(4, 3), torch.rand(4, 3)
    w, p = torch.rand(3, dtype=torch.float64), torch.tensor([1, 2, 3])  # float64 and int64
    ours = binary_cross_entropy_with_logits(z, t, w, pos_weight=p)
    theirs = F.binary_cross_entropy_with_logits(z, t, w, pos_weight=p)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"pos_weight": torch.ones(4)}, ["pos_weight shape", "(4,)", "(5, 3)", "(3,)"]),
        ({"pos_weight": torch.ones(5)}, ["pos_weight shape", "(5,)", "(5, 3)"]),
        ({"weight": torch.ones(2, 5, 3)}, ["weight shape", "(2, 5, 3)", "(5, 3)"]),
        ({"weight": torch.ones(1, 5, 3)}, ["weight shape", "(1, 5, 3)", "(5, 3)"]),
    ],
)
def test_bce_weights_that_do_not_broadcast_give_clear_errors(
    kwargs: dict, words: list[str]
) -> None:
    z, t = torch.randn(5, 3), torch.rand(5, 3)
    with pytest.raises(ValueError) as err:
        binary_cross_entropy_with_logits(z, t, **kwargs)
    for w in words:
        assert w in str(err.value), str(err.value)
    with pytest.raises(RuntimeError):  # torch refuses them too
        F.binary_cross_entropy_with_logits(z, t, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {"pos_weight": 2.0}), (("mean",), {})],  # a number; the reduction where weight goes
    ids=["number", "positional reduction"],
)
def test_bce_weights_must_be_tensors_like_torch(args: tuple, kwargs: dict) -> None:
    z, t = torch.randn(2, 3), torch.rand(2, 3)
    with pytest.raises(TypeError, match="expected a tensor or None"):
        binary_cross_entropy_with_logits(z, t, *args, **kwargs)
    with pytest.raises(TypeError):
        F.binary_cross_entropy_with_logits(z, t, *args, **kwargs)


class BCEForgettingPosWeight(BinaryCrossEntropyWithLogitsFunction):
    """A wrong backward: the logits' gradient without p, σ(z) − t."""

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        z, t, _ = ctx.saved_tensors
        return binary_cross_entropy_derivative(z, t) * grad_output, None, None


def test_negative_control_a_backward_forgetting_pos_weight_is_caught() -> None:
    z, t, _, p = _bce_inputs(torch.float64, None, (3,))
    t = t.detach()
    assert not torch.autograd.gradcheck(
        lambda z: BCEForgettingPosWeight.apply(z, t, p), (z,), raise_exception=False
    )
    assert torch.autograd.gradcheck(
        lambda z: BinaryCrossEntropyWithLogitsFunction.apply(z, t, p), (z,)
    )
