"""``dlconcepts.testing``: a learner's Function checked against PyTorch's built-in.

Correct Functions in both of PyTorch's styles (and a plain function) pass. Then the negative
controls, one registry: each mistake a learner makes fails exactly the checks listed beside
it, with the hint it should get; every required check has a mistake that fails it alone.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from dlconcepts import activations, layers, losses, proofs, testing
from dlconcepts.testing import (
    FORWARD,
    GRADCHECK,
    REQUIRED,
    SHAPES,
    UNMODIFIED,
    VS_PYTORCH,
    assert_function,
    check_function,
)

# --- correct Functions, as a learner writes them --------------------------------------------


class ClassicSigmoid(torch.autograd.Function):
    """PyTorch's classic style: forward(ctx, x), no jvp."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y)


class ClassicLeakyReLU(torch.autograd.Function):
    """The Function that made proofs.check_case crash: classic style, no jvp."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, 0.01 * x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01))


class SetupContextTanh(torch.autograd.Function):
    """The newer style: forward(x) + setup_context, with a jvp and a generated vmap rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * (1 - y * y)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return x_t * (1 - y * y)


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0)


class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor) -> Tensor:
        log_p = logits - logits.logsumexp(dim=1, keepdim=True)
        ctx.save_for_backward(log_p, target)
        return -log_p[torch.arange(len(target)), target].mean()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        log_p, target = ctx.saved_tensors
        delta = log_p.exp() - F.one_hot(target, log_p.shape[1]).to(log_p)
        return grad_output * delta / len(target), None


CORRECT = [
    ("classic sigmoid, no jvp", ClassicSigmoid, "sigmoid"),
    ("setup_context tanh, jvp", SetupContextTanh, "tanh"),
    ("plain relu", lambda x: x.clamp_min(0), "relu"),
    ("classic linear", Linear, "linear"),
    ("classic cross_entropy", CrossEntropy, "cross_entropy"),
    ("the project's sigmoid", activations.SigmoidFunction, "sigmoid"),
    ("the project's linear", layers.LinearFunction, "linear"),
    ("the project's mse_loss", losses.mse_loss, "mse_loss"),
    (
        "the project's BCE",
        losses.binary_cross_entropy_with_logits,
        "binary_cross_entropy_with_logits",
    ),
]


@pytest.mark.parametrize("fn, against", [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT])
def test_a_correct_function_passes_every_required_check(fn: Any, against: str) -> None:
    report = check_function(fn, against)
    assert report.passed, str(report)
    assert [r.check for r in report.rows[: len(REQUIRED)]] == list(REQUIRED)
    assert all(r.status in testing.STATUSES for r in report.rows)


def test_forward_mode_ad_is_not_provided_without_a_jvp_and_checked_with_one() -> None:
    classic = {r.check: r for r in check_function(ClassicSigmoid, "sigmoid").rows}
    assert classic["forward-mode AD"].status == "skip"
    assert "not provided" in classic["forward-mode AD"].message
    newer = {r.check: r for r in check_function(SetupContextTanh, "tanh").rows}
    assert newer["forward-mode AD"].status == "pass"
    assert newer["vmap"].status == "pass"


def test_proofs_check_case_takes_a_classic_function_without_jvp() -> None:
    c = proofs.Case(
        "leaky relu",
        ClassicLeakyReLU.apply,
        lambda x: F.leaky_relu(x, 0.01),
        proofs.inputs(proofs.floats(4, 5, away_from_zero=True)),
    )
    assert proofs.check_case(c).ok  # no NotImplementedError from forward-mode AD


# --- the negative controls: each mistake, the checks it fails, the hint it gets ----------------


class OffsetSigmoid(ClassicSigmoid):
    """forward: 0.001 too high everywhere; backward right (it keeps the true y)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(y)
        return y + 1e-3


class OverflowingSigmoid(ClassicSigmoid):
    """forward: e^x / (1 + e^x) is inf/inf = NaN for large x; right on ordinary inputs."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = torch.exp(x) / (1 + torch.exp(x))
        ctx.save_for_backward(y)
        return y


class NoisySigmoid(ClassicSigmoid):
    """backward: a different answer on every call (a dropout that forgets its mask)."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        g = grad_output * y * (1 - y)
        return g * (1 + 1e-12 * torch.randn_like(g))


class CrossEntropyIgnoringGradOutput(CrossEntropy):
    """backward: forgets grad_output, the incoming gradient of a scalar loss."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        log_p, target = ctx.saved_tensors
        delta = log_p.exp() - F.one_hot(target, log_p.shape[1]).to(log_p)
        return delta / len(target), None


class SigmoidByFiniteDifferences(ClassicSigmoid):
    """backward: the derivative estimated with a step of 0.01, close (gradcheck's tolerance
    lets it through) but not equal."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        x, h = torch.log(y / (1 - y)), 0.01
        return grad_output * (torch.sigmoid(x + h) - torch.sigmoid(x - h)) / (2 * h)


class ReLUWritingIntoGradOutput(torch.autograd.Function):
    """backward: zeroes grad_output in place and returns it."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = x.clamp_min(0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        grad_output[y <= 0] = 0
        return grad_output


class LinearUnsummedBias(Linear):
    """backward: the bias gradient per example, (N, k); autograd would sum it silently."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output


class SigmoidIgnoringGradOutput(ClassicSigmoid):
    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return y * (1 - y)


class SigmoidDerivativeOfTheInput(torch.autograd.Function):
    """backward: y(1 - y), the derivative in terms of the output, applied to the input x."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return 1 / (1 + torch.exp(-x))

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * x * (1 - x)


class LinearMeanBias(Linear):
    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output.mean(0)


class LinearTransposedWeight(Linear):
    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        return grad_output @ weight, x.T @ grad_output, grad_output.sum(0)


class CrossEntropyNaiveSoftmax(CrossEntropy):
    """forward: log(e^z / Σ e^z) without subtracting the maximum: NaN at ±1000."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor) -> Tensor:
        p = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
        log_p = logits - logits.logsumexp(dim=1, keepdim=True)
        ctx.save_for_backward(log_p, target)
        return -p[torch.arange(len(target)), target].log().mean()


class CrossEntropySum(CrossEntropy):
    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        log_p, target = ctx.saved_tensors
        delta = log_p.exp() - F.one_hot(target, log_p.shape[1]).to(log_p)
        return grad_output * delta, None


class SigmoidBackwardOverflows(torch.autograd.Function):
    """backward: e^{-x} / (1 + e^{-x})^2 is inf/inf = NaN at x = -1000; right elsewhere."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.sigmoid(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        e = torch.exp(-x)
        return grad_output * e / (1 + e) ** 2


class ReLUGradientOneAtZero(torch.autograd.Function):
    """backward: 1 at x = 0, where PyTorch takes 0; right everywhere else."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * (x >= 0)


@dataclass(frozen=True)
class Mistake:
    name: str
    fn: Any
    against: str
    fails: frozenset[str]
    hint: str | None = None


MISTAKES = [
    # exactly one required check each: the negative control of that check
    Mistake("forward off by 1e-3", OffsetSigmoid, "sigmoid", frozenset({FORWARD})),
    Mistake("backward not reproducible", NoisySigmoid, "sigmoid", frozenset({GRADCHECK})),
    Mistake(
        "derivative by finite differences",
        SigmoidByFiniteDifferences,
        "sigmoid",
        frozenset({VS_PYTORCH}),
    ),
    Mistake(
        "backward writes into grad_output",
        ReLUWritingIntoGradOutput,
        "relu",
        frozenset({UNMODIFIED}),
    ),
    Mistake(
        "bias gradient not summed", LinearUnsummedBias, "linear", frozenset({SHAPES}), "sum over"
    ),
    # mistakes finite differences and PyTorch's gradient both see, with their hints
    Mistake(
        "activation forgets grad_output",
        SigmoidIgnoringGradOutput,
        "sigmoid",
        frozenset({GRADCHECK, VS_PYTORCH}),
        "multiply by grad_output",
    ),
    Mistake(
        "scalar loss forgets grad_output",
        CrossEntropyIgnoringGradOutput,
        "cross_entropy",
        frozenset({GRADCHECK, VS_PYTORCH}),
        "multiply by grad_output",
    ),
    Mistake(
        "derivative of the wrong tensor",
        SigmoidDerivativeOfTheInput,
        "sigmoid",
        frozenset({GRADCHECK, VS_PYTORCH}),
        "derivative in terms of the input vs the output",
    ),
    Mistake(
        "bias gradient averaged",
        LinearMeanBias,
        "linear",
        frozenset({GRADCHECK, VS_PYTORCH}),
        "mean vs sum",
    ),
    Mistake(
        "loss gradient summed",
        CrossEntropySum,
        "cross_entropy",
        frozenset({GRADCHECK, VS_PYTORCH}),
        "mean vs sum",
    ),
    Mistake(
        "weight gradient transposed",
        LinearTransposedWeight,
        "linear",
        frozenset({GRADCHECK, VS_PYTORCH, SHAPES}),
        "transposed",
    ),
    Mistake("softmax overflows", CrossEntropyNaiveSoftmax, "cross_entropy", frozenset({FORWARD})),
    # the edge values: finite where PyTorch's are, ReLU's 0 at exactly 0
    Mistake(
        "forward overflows at 1000: NaN gradient too",
        OverflowingSigmoid,
        "sigmoid",
        frozenset({FORWARD, VS_PYTORCH}),
    ),
    Mistake(
        "backward overflows at -1000", SigmoidBackwardOverflows, "sigmoid", frozenset({VS_PYTORCH})
    ),
    Mistake("ReLU's gradient 1 at 0", ReLUGradientOneAtZero, "relu", frozenset({VS_PYTORCH})),
]


@pytest.mark.parametrize("m", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_mistake_fails_exactly_its_checks_with_its_hint(m: Mistake) -> None:
    report = check_function(m.fn, m.against)
    assert not report.passed
    assert set(report.failed()) == m.fails, str(report)
    if m.hint is not None:
        assert m.hint in str(report), str(report)


def test_every_required_check_has_a_negative_control_that_fails_it_alone() -> None:
    alone = {next(iter(m.fails)) for m in MISTAKES if len(m.fails) == 1}
    assert alone == set(REQUIRED)


def test_a_failing_row_names_the_input_expected_and_got() -> None:
    rows = {r.check: r.message for r in check_function(OverflowingSigmoid, "sigmoid").rows}
    assert rows[FORWARD] == "float64, edge values: output differs at x = 1000: expected 1, got nan"
    rows = {r.check: r.message for r in check_function(SigmoidBackwardOverflows, "sigmoid").rows}
    assert rows[VS_PYTORCH] == (
        "edge values: gradient for x differs at x = -1000: expected 0, got nan"
    )
    rows = {r.check: r.message for r in check_function(ReLUGradientOneAtZero, "relu").rows}
    assert rows[VS_PYTORCH].startswith("edge values: gradient for x differs at x = ")
    assert rows[VS_PYTORCH].endswith(": expected 0, got 0.621317")


@pytest.mark.parametrize(
    "fn, against, message",
    [
        (
            SigmoidIgnoringGradOutput,
            "sigmoid",
            "random (4, 5): gradient for x differs at x = -6.93124: expected -0.000303473, "
            "got 0.000974888",
        ),
        (
            CrossEntropyIgnoringGradOutput,
            "cross_entropy",
            "random (6, 10): gradient for input differs at [0, 1]: expected 0.000787661, "
            "got 0.00046333",
        ),
        (
            LinearMeanBias,
            "linear",
            "random x (3, 5): gradient for bias differs at [0]: expected ",
        ),
    ],
)
def test_finite_differences_name_where_the_gradient_first_differs(
    fn: Any, against: str, message: str
) -> None:
    rows = {r.check: r for r in check_function(fn, against).rows}
    assert rows[GRADCHECK].status == "fail"
    assert rows[GRADCHECK].message.startswith(message), rows[GRADCHECK].message


def test_double_backward_of_a_wrong_backward_says_so_in_a_learners_words() -> None:
    rows = {r.check: r for r in check_function(SigmoidIgnoringGradOutput, "sigmoid").rows}
    assert rows["double backward"].status == "info"
    assert rows["double backward"].message == (
        "gradgradcheck failed: the backward's own derivative differs from finite differences "
        "(expected where the backward is wrong above)"
    )


class RaisesInBackward(ClassicSigmoid):
    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - yy)  # type: ignore[name-defined]  # noqa: F821


def test_an_exception_in_the_learners_code_is_its_file_line_and_message() -> None:
    report = check_function(RaisesInBackward, "sigmoid")
    line = inspect.getsourcelines(RaisesInBackward.backward)[1] + 3
    where = f"tests/test_testing.py:{line} in backward: NameError: name 'yy' is not defined"
    backward_rows = [r for r in report.rows if r.check in (GRADCHECK, UNMODIFIED)]
    assert [r.status for r in backward_rows] == ["fail", "fail"]
    for r in backward_rows:
        assert r.message == where
    text = str(report)
    assert "Traceback" not in text and "torch/" not in text
    assert max(len(r.message.splitlines()) for r in report.rows) <= 2


def test_assert_function_raises_with_the_table() -> None:
    assert assert_function(ClassicSigmoid, "sigmoid").passed
    with pytest.raises(AssertionError) as e:
        assert_function(SigmoidIgnoringGradOutput, "sigmoid")
    assert str(e.value) == str(check_function(SigmoidIgnoringGradOutput, "sigmoid"))
    assert "FAILED: 2 required checks" in str(e.value)


def test_the_table_is_aligned_and_the_report_is_json_ready() -> None:
    report = check_function(LinearMeanBias, "linear")
    lines = str(report).splitlines()
    header = lines.index(next(line for line in lines if line.startswith("check ")))
    column = lines[header].index("status")
    for line in lines[header + 1 : header + 1 + len(report.rows)]:
        if not line.startswith(" "):
            assert line[column - 2 : column] == "  " and line[column] != " ", line
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is False
    assert {"check", "status", "message"} == set(data["rows"][0])


def test_wider_forms_are_reported_without_failing() -> None:
    report = check_function(Linear, "linear")  # needs a bias and a 2-D x
    wider = {r.check: r for r in report.rows}
    assert report.passed
    assert wider["no bias"].status == "info"
    assert wider["no bias"].message.startswith("beyond the basic form")


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"against: expected one of 'sigmoid'"):
        check_function(ClassicSigmoid, "softmax")
    with pytest.raises(TypeError, match=r"fn: expected a torch\.autograd\.Function subclass"):
        check_function(3, "sigmoid")


def manual_gradients_summed(model: layers.MLP, x: Tensor, target: Tensor) -> dict[str, Tensor]:
    grads = by_hand(model, x, target)
    return {k: v * len(x) for k, v in grads.items()}


def by_hand(model: layers.MLP, x: Tensor, target: Tensor) -> dict[str, Tensor]:
    from dlconcepts.backprop import manual_gradients

    return manual_gradients(model, x, target)


def test_backprop_checks_a_manual_backward_of_an_mlp() -> None:
    assert check_function(by_hand, "backprop").passed
    report = check_function(manual_gradients_summed, "backprop")
    assert report.failed() == ["gradients vs autograd"]
    assert "mean vs sum" in str(report)
