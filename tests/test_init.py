"""Specification of ``dlconcepts.init``: bit-identical to ``torch.nn.init``, and the formulas.

Read top to bottom: the API, bit-identity against torch (and a proof the check has teeth),
the distributions' statistics, gains and fans, bad input, and ``initialize`` on whole models.
The registry covers everything ``dlconcepts.init`` offers, the rest of ``torch.nn.init``
(``dlconcepts.init_extra``) included; that module's own properties are in
``test_init_extra.py``.
"""

from __future__ import annotations

import inspect
import itertools
import math
import typing
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from init_checks import (
    CONV_SHAPE,
    DTYPES,
    LINEAR_SHAPE,
    P_MIN,
    SHAPES,
    InitFn,
    assert_bit_identical,
    ks_pvalue,
    normal_cdf,
    sample,
    uniform_cdf,
)
from torch import nn

import dlconcepts.init as ours
import dlconcepts.init_extra as extra
from dlconcepts.init import (
    NONLINEARITIES,
    SCHEMES,
    calculate_fan_in_and_fan_out,
    calculate_gain,
    initialize,
)

# --------------------------------------------------------------------------- the registry

# (name, ours, torch's, kwargs): every random init that dlconcepts.init offers, with several
# kwargs each: the taught ones, then the rest of torch.nn.init (from dlconcepts.init_extra).
RANDOM_INITS: list[tuple[str, InitFn, InitFn, dict[str, Any]]] = [
    ("normal_", ours.normal_, nn.init.normal_, {}),
    ("normal_", ours.normal_, nn.init.normal_, {"mean": 0.5, "std": 0.1}),
    ("uniform_", ours.uniform_, nn.init.uniform_, {}),
    ("uniform_", ours.uniform_, nn.init.uniform_, {"a": -0.3, "b": 0.7}),
    ("xavier_uniform_", ours.xavier_uniform_, nn.init.xavier_uniform_, {}),
    ("xavier_uniform_", ours.xavier_uniform_, nn.init.xavier_uniform_, {"gain": 5.0 / 3}),
    ("xavier_normal_", ours.xavier_normal_, nn.init.xavier_normal_, {}),
    ("xavier_normal_", ours.xavier_normal_, nn.init.xavier_normal_, {"gain": math.sqrt(2.0)}),
    ("kaiming_uniform_", ours.kaiming_uniform_, nn.init.kaiming_uniform_, {}),
    ("kaiming_uniform_", ours.kaiming_uniform_, nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
    (
        "kaiming_uniform_",
        ours.kaiming_uniform_,
        nn.init.kaiming_uniform_,
        {"mode": "fan_out", "nonlinearity": "relu"},
    ),
    ("kaiming_uniform_", ours.kaiming_uniform_, nn.init.kaiming_uniform_, {"nonlinearity": "tanh"}),
    ("kaiming_normal_", ours.kaiming_normal_, nn.init.kaiming_normal_, {}),
    ("kaiming_normal_", ours.kaiming_normal_, nn.init.kaiming_normal_, {"a": 0.2}),
    (
        "kaiming_normal_",
        ours.kaiming_normal_,
        nn.init.kaiming_normal_,
        {"mode": "fan_out", "nonlinearity": "relu"},
    ),
    ("kaiming_normal_", ours.kaiming_normal_, nn.init.kaiming_normal_, {"nonlinearity": "selu"}),
    ("orthogonal_", extra.orthogonal_, nn.init.orthogonal_, {}),
    ("orthogonal_", extra.orthogonal_, nn.init.orthogonal_, {"gain": 2.0}),
    ("trunc_normal_", extra.trunc_normal_, nn.init.trunc_normal_, {}),
    # mostly inside [a, b]: normals, the outside ones redrawn
    (
        "trunc_normal_",
        extra.trunc_normal_,
        nn.init.trunc_normal_,
        {"mean": 0.5, "std": 0.1, "b": 0.6},
    ),
    # a far tail: uniform proposals accepted by the density
    ("trunc_normal_", extra.trunc_normal_, nn.init.trunc_normal_, {"a": 2.0, "b": 3.0}),
    ("trunc_normal_", extra.trunc_normal_, nn.init.trunc_normal_, {"a": -2.5, "b": -1.8}),
]
RANDOM_IDS = [f"{name}{kwargs or ''}" for name, _, _, kwargs in RANDOM_INITS]

# Every in-place init, random or not, with default arguments.
ALL_INITS: list[tuple[str, InitFn, InitFn]] = [
    ("zeros_", ours.zeros_, nn.init.zeros_),
    ("ones_", extra.ones_, nn.init.ones_),
    *{(name, f, t) for name, f, t, _ in RANDOM_INITS},
]
ALL_INITS.sort(key=lambda row: row[0])
ALL_IDS = [name for name, _, _ in ALL_INITS]

# The ones that need an argument or a shape of their own (not a plain (4, 3) tensor).
SPECIAL_INITS: list[tuple[str, InitFn, InitFn]] = [
    ("constant_", extra.constant_, nn.init.constant_),
    ("eye_", extra.eye_, nn.init.eye_),
    ("dirac_", extra.dirac_, nn.init.dirac_),
    ("sparse_", extra.sparse_, nn.init.sparse_),
]


# --------------------------------------------------------------------------- the API


def test_aliases_are_the_same_objects() -> None:
    assert ours.he_uniform_ is ours.kaiming_uniform_
    assert ours.he_normal_ is ours.kaiming_normal_


def test_schemes_exported() -> None:
    assert SCHEMES == ("zero", "random", "xavier", "he")


def test_a_drop_in_for_torch_nn_init() -> None:
    # every function of torch.nn.init (its deprecated aliases without the "_" aside)
    wanted = {n for n in nn.init.__all__ if n.endswith("_") or n == "calculate_gain"}
    missing = sorted(n for n in wanted if not callable(getattr(ours, n, None)))
    assert not missing, f"dlconcepts.init lacks {missing}"
    assert not sorted(wanted - set(ours.__all__)), "missing from dlconcepts.init.__all__"
    # the rest of torch.nn.init is init_extra's own functions, not copies
    for name in extra.__all__:
        assert getattr(ours, name) is getattr(extra, name), name
    assert set(extra.__all__) <= set(ours.__all__)


@pytest.mark.parametrize(
    "name, fn, torch_fn",
    [
        *ALL_INITS,
        *SPECIAL_INITS,
        ("calculate_gain", calculate_gain, nn.init.calculate_gain),
        (
            "calculate_fan_in_and_fan_out",
            calculate_fan_in_and_fan_out,
            nn.init._calculate_fan_in_and_fan_out,
        ),
    ],
    ids=[
        *ALL_IDS,
        *[n for n, _, _ in SPECIAL_INITS],
        "calculate_gain",
        "calculate_fan_in_and_fan_out",
    ],
)
def test_same_signature_as_torch(name: str, fn: Callable, torch_fn: Callable) -> None:
    def shape(f: Callable) -> list[tuple[str, object, object]]:
        # names, defaults and kinds; annotations are spelled differently and don't matter
        return [(p.name, p.default, p.kind) for p in inspect.signature(f).parameters.values()]

    assert shape(fn) == shape(torch_fn), f"{name}: got {shape(fn)}, expected {shape(torch_fn)}"


# --------------------------------------------------------------------------- bit-identity


@pytest.mark.parametrize("use_generator", [False, True], ids=["global_rng", "generator"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, fn, torch_fn, kwargs", RANDOM_INITS, ids=RANDOM_IDS)
def test_bit_identical_to_torch(
    name: str,
    fn: InitFn,
    torch_fn: InitFn,
    kwargs: dict[str, Any],
    shape: tuple[int, ...],
    dtype: torch.dtype,
    use_generator: bool,
    device: torch.device,
) -> None:
    common = {"dtype": dtype, "device": device, "use_generator": use_generator}
    got = sample(fn, shape, kwargs, **common)
    expected = sample(torch_fn, shape, kwargs, **common)
    assert_bit_identical(got, expected, f"{name}({kwargs}) on {shape} {dtype}")


def test_zeros_identical_to_torch() -> None:
    assert_bit_identical(
        ours.zeros_(torch.randn(CONV_SHAPE)), nn.init.zeros_(torch.randn(CONV_SHAPE)), "zeros_"
    )


def test_kaiming_uniform_sqrt5_reproduces_nn_linear_default_init() -> None:
    # nn.Linear.reset_parameters draws its weight with kaiming_uniform_(a=sqrt(5)).
    torch.manual_seed(3)
    layer = nn.Linear(32, 64)
    torch.manual_seed(3)
    weight = ours.kaiming_uniform_(torch.empty(64, 32), a=math.sqrt(5))
    assert_bit_identical(weight, layer.weight.detach(), "kaiming_uniform_(a=sqrt(5))")


@pytest.mark.parametrize("name, fn, torch_fn, kwargs", RANDOM_INITS[::2], ids=RANDOM_IDS[::2])
def test_explicit_generator_leaves_global_rng_alone(
    name: str, fn: InitFn, torch_fn: InitFn, kwargs: dict[str, Any]
) -> None:
    before = torch.get_rng_state()
    sample(fn, LINEAR_SHAPE, kwargs, use_generator=True)
    assert torch.equal(torch.get_rng_state(), before), f"{name} drew from the global RNG"


@pytest.mark.parametrize("mode", ["FAN_IN", "Fan_Out"])
def test_mode_is_case_insensitive_like_torch(mode: str) -> None:
    kwargs = {"mode": mode, "nonlinearity": "relu"}
    got = sample(ours.kaiming_normal_, LINEAR_SHAPE, kwargs)
    expected = sample(nn.init.kaiming_normal_, LINEAR_SHAPE, kwargs)
    assert_bit_identical(got, expected, f"kaiming_normal_(mode={mode!r})")


# --------------------------------------------------------------------------- negative controls


def _kaiming_uniform_with_fan_out_bug(
    tensor: torch.Tensor, a: float = 0, nonlinearity: str = "leaky_relu"
) -> torch.Tensor:
    """A plausible wrong implementation: uses fan_out where the default mode means fan_in."""
    _, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan_out)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def _xavier_uniform_textbook_order(tensor: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """The paper's formula gain·sqrt(6/(fan_in+fan_out)): right on paper, other float rounding."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def test_negative_control_bit_identity_catches_a_wrong_fan() -> None:
    got = sample(_kaiming_uniform_with_fan_out_bug, LINEAR_SHAPE, {})
    expected = sample(nn.init.kaiming_uniform_, LINEAR_SHAPE, {})
    with pytest.raises(AssertionError, match="not bit-identical"):
        assert_bit_identical(got, expected, "fan_out bug")


def test_negative_control_bit_identity_catches_a_different_arithmetic_order() -> None:
    # fan_in + fan_out = 6: sqrt(3)·sqrt(2/6) and sqrt(6/6) differ in the last bit of a double.
    shape = (3, 3)
    assert math.sqrt(3.0) * math.sqrt(2.0 / 6) != math.sqrt(6.0 / 6), "precondition"
    kwargs = {"dtype": torch.float64}
    got = sample(_xavier_uniform_textbook_order, shape, {}, **kwargs)
    expected = sample(nn.init.xavier_uniform_, shape, {}, **kwargs)
    with pytest.raises(AssertionError, match="not bit-identical"):
        assert_bit_identical(got, expected, "textbook arithmetic order")
    # ...while our implementation, which keeps torch's order, passes on the same shape.
    assert_bit_identical(sample(ours.xavier_uniform_, shape, {}, **kwargs), expected, "ours")


# --------------------------------------------------------------------------- statistics

BIG_LINEAR = (500, 800)  # fan_in 800, fan_out 500
BIG_CONV = (128, 64, 3, 3)  # fan_in 576, fan_out 1152
SQRT2 = math.sqrt(2.0)

# (id, fn, kwargs, shape, expected std, expected uniform bound or None); formulas from the papers
STATS = [
    ("normal", ours.normal_, {"mean": 0.5, "std": 0.1}, BIG_LINEAR, 0.1, None),
    ("uniform", ours.uniform_, {"a": -0.3, "b": 0.3}, BIG_LINEAR, 0.3 / math.sqrt(3), 0.3),
    (
        "xavier_uniform gain=5/3",
        ours.xavier_uniform_,
        {"gain": 5 / 3},
        BIG_LINEAR,
        5 / 3 * math.sqrt(2 / 1300),
        5 / 3 * math.sqrt(6 / 1300),
    ),
    (
        "xavier_uniform conv",
        ours.xavier_uniform_,
        {},
        BIG_CONV,
        math.sqrt(2 / 1728),
        math.sqrt(6 / 1728),
    ),
    ("xavier_normal", ours.xavier_normal_, {}, BIG_LINEAR, math.sqrt(2 / 1300), None),
    (
        "xavier_normal gain=sqrt2 conv",
        ours.xavier_normal_,
        {"gain": SQRT2},
        BIG_CONV,
        SQRT2 * math.sqrt(2 / 1728),
        None,
    ),
    (
        "kaiming_uniform relu",
        ours.kaiming_uniform_,
        {"nonlinearity": "relu"},
        BIG_LINEAR,
        math.sqrt(2 / 800),
        SQRT2 * math.sqrt(3 / 800),
    ),
    (
        "kaiming_uniform relu fan_out conv",
        ours.kaiming_uniform_,
        {"nonlinearity": "relu", "mode": "fan_out"},
        BIG_CONV,
        math.sqrt(2 / 1152),
        SQRT2 * math.sqrt(3 / 1152),
    ),
    (
        "kaiming_normal relu",
        ours.kaiming_normal_,
        {"nonlinearity": "relu"},
        BIG_LINEAR,
        math.sqrt(2 / 800),
        None,
    ),
    (
        "kaiming_normal leaky 0.2 conv",
        ours.kaiming_normal_,
        {"a": 0.2},
        BIG_CONV,
        math.sqrt(2 / 1.04) / math.sqrt(576),
        None,
    ),
    (
        "kaiming_normal tanh fan_out",
        ours.kaiming_normal_,
        {"nonlinearity": "tanh", "mode": "fan_out"},
        BIG_LINEAR,
        5 / 3 / math.sqrt(500),
        None,
    ),
]


@pytest.mark.parametrize(
    "fn, kwargs, shape, std, bound", [row[1:] for row in STATS], ids=[row[0] for row in STATS]
)
def test_sample_statistics_match_the_formula(
    fn: InitFn,
    kwargs: dict[str, Any],
    shape: tuple[int, ...],
    std: float,
    bound: float | None,
) -> None:
    w = fn(torch.empty(shape, dtype=torch.float64), **kwargs)
    mean = kwargs.get("mean", 0.0)
    # ~400k samples: the sample std is within ~0.1% of the true one, the mean within ~0.2 std/100
    assert w.std().item() == pytest.approx(std, rel=0.02), "sample std vs formula"
    assert w.mean().item() == pytest.approx(mean, abs=0.02 * std), "sample mean vs formula"
    if bound is not None:
        assert w.abs().max().item() <= bound, "uniform sample outside (-bound, bound)"
        assert w.abs().max().item() >= 0.99 * bound, "uniform sample never reached the bound"


# --------------------------------------------------------------------------- PyTorch's own tests
# Ported from PyTorch's test/nn/test_init.py (TestNNInit), with its Kolmogorov-Smirnov test
# (init_checks.ks_pvalue). Its random sizes and parameters are fixed values here, so every run
# is the same (the autouse fixture seeds torch).


def test_ks_pvalue_rejects_the_wrong_distribution() -> None:  # negative control
    x = torch.randn(2000, dtype=torch.float64)
    assert ks_pvalue(x, normal_cdf(0, 1)) > P_MIN
    assert ks_pvalue(x, normal_cdf(0, 1.2)) < P_MIN
    assert ks_pvalue(x, uniform_cdf(-3, 3)) < P_MIN


@pytest.mark.parametrize("shape", [(40,), (30, 40), (8, 6, 5, 4)])
def test_uniform_is_uniform(shape: tuple[int, ...]) -> None:
    w = ours.uniform_(torch.empty(shape), a=-1.5, b=0.75)
    assert ks_pvalue(w, uniform_cdf(-1.5, 0.75)) > P_MIN


@pytest.mark.parametrize("shape", [(40,), (30, 40), (8, 6, 5, 4)])
def test_normal_is_normal(shape: tuple[int, ...]) -> None:
    w = ours.normal_(torch.empty(shape), mean=0.8, std=0.3)
    assert ks_pvalue(w, normal_cdf(0.8, 0.3)) > P_MIN


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_equals_torch(nonlinearity: str) -> None:
    got, expected = calculate_gain(nonlinearity), nn.init.calculate_gain(nonlinearity)
    assert got == expected, f"gain({nonlinearity!r}): got {got}, expected {expected}"


@pytest.mark.parametrize("param", [None, 0, 0.2, 1, 3, -0.5])
def test_calculate_gain_leaky_relu_slope_equals_torch(param: float | None) -> None:
    got, expected = calculate_gain("leaky_relu", param), nn.init.calculate_gain("leaky_relu", param)
    assert got == expected, f"gain('leaky_relu', {param}): got {got}, expected {expected}"


def test_calculate_gain_values_by_formula() -> None:
    assert calculate_gain("linear") == calculate_gain("sigmoid") == 1
    assert calculate_gain("relu") == math.sqrt(2.0)
    assert calculate_gain("tanh") == 5 / 3
    assert calculate_gain("selu") == 3 / 4
    assert calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / (1 + 0.2**2))


def test_nonlinearities_cover_torchs() -> None:
    torch_names = getattr(nn.init, "_NonlinearityType", None)
    if torch_names is None:
        pytest.skip("this torch has no _NonlinearityType to compare with")
    assert set(NONLINEARITIES) == set(typing.get_args(torch_names))


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((3, 5), (5, 3)),
        ((4, 3, 5), (15, 20)),
        ((16, 8, 3, 3), (72, 144)),
        ((2, 3, 4, 5, 6), (360, 240)),
        ((7, 1, 1, 1, 1), (1, 7)),
    ],
)
def test_fan_in_and_fan_out(shape: tuple[int, ...], expected: tuple[int, int]) -> None:
    tensor = torch.empty(shape)
    got = calculate_fan_in_and_fan_out(tensor)
    assert got == expected, f"fans of {shape}: got {got}, expected {expected}"
    assert got == nn.init._calculate_fan_in_and_fan_out(tensor), "differs from torch's"


# --------------------------------------------------------------------------- bad input

FAN_BASED = [
    ("calculate_fan_in_and_fan_out", calculate_fan_in_and_fan_out),
    ("xavier_uniform_", ours.xavier_uniform_),
    ("xavier_normal_", ours.xavier_normal_),
    ("kaiming_uniform_", ours.kaiming_uniform_),
    ("kaiming_normal_", ours.kaiming_normal_),
]


@pytest.mark.parametrize("name, fn", FAN_BASED, ids=[n for n, _ in FAN_BASED])
@pytest.mark.parametrize("shape", [(5,), ()], ids=["1d", "0d"])
def test_fewer_than_two_dims_is_rejected(name: str, fn: Callable, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as err:
        fn(torch.empty(shape))
    assert str(err.value) == (
        "tensor shape: expected at least 2 dimensions (out, in, *kernel) "
        f"to compute fan_in and fan_out, got {shape!r}"
    )


def test_unknown_nonlinearity_names_value_and_choices() -> None:
    listed = ", ".join(repr(n) for n in NONLINEARITIES)
    expected = f"nonlinearity: expected one of {listed}, got 'bogus'"
    with pytest.raises(ValueError) as err:
        calculate_gain("bogus")
    assert str(err.value) == expected
    with pytest.raises(ValueError) as err:
        ours.kaiming_normal_(torch.empty(3, 5), nonlinearity="bogus")
    assert str(err.value) == expected
    with pytest.raises(ValueError):  # torch rejects it too
        nn.init.calculate_gain("bogus")


@pytest.mark.parametrize("fn", [ours.kaiming_uniform_, ours.kaiming_normal_])
def test_unknown_mode_names_value_and_choices(fn: InitFn) -> None:
    with pytest.raises(ValueError) as err:
        fn(torch.empty(3, 5), mode="fan")
    assert str(err.value) == "mode: expected one of 'fan_in', 'fan_out', got 'fan'"


@pytest.mark.parametrize("param", [True, "0.2", [0.2]], ids=["bool", "str", "list"])
def test_bad_leaky_relu_slope_is_rejected_like_torch(param: object) -> None:
    with pytest.raises(ValueError) as err:
        calculate_gain("leaky_relu", param)  # type: ignore[arg-type]
    assert str(err.value) == (
        f"param: expected a number (leaky_relu's negative slope), got {param!r}"
    )
    with pytest.raises(ValueError):  # torch rejects the same values
        nn.init.calculate_gain("leaky_relu", param)  # type: ignore[arg-type]


def _record(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught]


NO_OP = "Initializing zero-element tensors is a no-op"


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0,)])
def test_zero_element_kaiming_warns_and_returns_like_torch(
    name: str, shape: tuple[int, ...]
) -> None:
    for module in (ours, nn.init):
        tensor = torch.empty(shape)
        rng = torch.get_rng_state()
        out, messages = _record(lambda m=module, t=tensor: getattr(m, name)(t))
        assert out is tensor, f"{module.__name__}.{name} returned another tensor"
        assert messages == [NO_OP], f"{module.__name__}.{name} warned {messages}"
        assert torch.equal(torch.get_rng_state(), rng), "an empty init consumed random numbers"


@pytest.mark.parametrize("name", ["xavier_uniform_", "xavier_normal_"])
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_zero_element_xavier_warns_and_returns(name: str, shape: tuple[int, ...]) -> None:
    # Deliberately kinder than torch, which is silent for (5, 0) but divides by zero for (0, 0):
    # ours treats every empty tensor as kaiming does.
    tensor = torch.empty(shape)
    out, messages = _record(lambda: getattr(ours, name)(tensor))
    assert out is tensor
    assert messages == [NO_OP]


@pytest.mark.parametrize("name", ["zeros_", "normal_", "uniform_"])
def test_zero_element_plain_fills_are_silent_no_ops_like_torch(name: str) -> None:
    for module in (ours, nn.init):
        tensor = torch.empty(0, 3)
        out, messages = _record(lambda m=module, t=tensor: getattr(m, name)(t))
        assert out is tensor and messages == [], f"{module.__name__}.{name}: warned {messages}"


# --------------------------------------------------------------------------- in place, no_grad


@pytest.mark.parametrize("name, fn, torch_fn", ALL_INITS, ids=ALL_IDS)
def test_in_place_on_a_leaf_that_requires_grad(
    name: str, fn: InitFn, torch_fn: InitFn, device: torch.device
) -> None:
    param = nn.Parameter(torch.full((4, 3), 7.0, device=device))
    out = fn(param)
    assert out is param, f"{name} returned a new tensor instead of the one it filled"
    assert param.requires_grad and param.is_leaf and param.grad_fn is None
    assert torch.is_grad_enabled(), f"{name} left grad mode off"
    assert not torch.equal(param, torch.full_like(param, 7.0)), f"{name} did not write"
    (param * 2).sum().backward()  # still a normal trainable leaf
    assert torch.equal(param.grad, torch.full_like(param, 2.0))


# --------------------------------------------------------------------------- initialize


class Linear(nn.Module):
    """A hand-written Linear, as in dlconcepts.layers: not an nn.Linear subclass."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.randn(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias


class HandMLP(nn.Module):
    """Same layer shapes and order as ``torch_mlp``, different classes and names."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x) if i == 0 else block(torch.relu(x))
        return x


SIZES = (20, 30, 10)
BIG_SIZES = (400, 300, 200)


def torch_mlp(sizes: tuple[int, ...] = SIZES) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, Linear))]


def biases(model: nn.Module) -> list[torch.Tensor]:
    return [m.bias for m in model.modules() if isinstance(m, (nn.Linear, Linear))]


def test_initialize_returns_the_module() -> None:
    model = torch_mlp()
    assert initialize(model, "he") is model


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("make", [torch_mlp, lambda: HandMLP(SIZES)], ids=["torch", "hand"])
def test_initialize_zeroes_every_bias(scheme: str, make: Callable[[], nn.Module]) -> None:
    model = make()
    assert all(b.abs().sum() > 0 for b in biases(model)), "precondition: nonzero biases"
    initialize(model, scheme)
    for i, b in enumerate(biases(model)):
        assert torch.count_nonzero(b) == 0, f"layer {i}: bias not zeroed"


def test_initialize_zero_makes_every_weight_zero() -> None:
    model = initialize(HandMLP(SIZES), "zero")
    for i, w in enumerate(weights(model)):
        assert torch.count_nonzero(w) == 0, f"layer {i}: {torch.count_nonzero(w)} nonzero weights"


# scheme, nonlinearity -> expected (std, uniform bound or None) of a layer (fan_in, fan_out)
def _expected(scheme: str, nonlinearity: str, fan_in: int, fan_out: int) -> tuple[float, Any]:
    gain = {"relu": SQRT2, "tanh": 5 / 3, "sigmoid": 1.0}[nonlinearity]
    if scheme == "random":
        return 0.01, None
    if scheme == "xavier":  # U(-a, a), a = gain·sqrt(6/(fan_in+fan_out))
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        return bound / math.sqrt(3), bound
    return gain / math.sqrt(fan_in), None  # "he": N(0, gain²/fan_in)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("scheme", ["random", "xavier", "he"])
def test_initialize_weights_follow_the_formula(scheme: str, nonlinearity: str) -> None:
    model = initialize(torch_mlp(BIG_SIZES), scheme, nonlinearity=nonlinearity)
    for w in weights(model):
        fan_out, fan_in = w.shape
        std, bound = _expected(scheme, nonlinearity, fan_in, fan_out)
        got = w.std().item()
        assert got == pytest.approx(std, rel=0.02), f"{scheme}/{nonlinearity} {tuple(w.shape)}"
        if bound is not None:
            assert w.abs().max().item() <= bound
            assert w.abs().max().item() >= 0.99 * bound


def test_initialize_random_uses_the_given_std() -> None:
    model = initialize(torch_mlp(BIG_SIZES), "random", std=0.1)
    assert weights(model)[0].std().item() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_initialize_is_torch_nn_init_layer_by_layer(scheme: str, nonlinearity: str) -> None:
    """The exact torch.nn.init call each scheme stands for, replayed by hand from one seed."""
    torch.manual_seed(11)
    got = initialize(torch_mlp(), scheme, nonlinearity=nonlinearity)
    rng_after_got = torch.get_rng_state()

    torch.manual_seed(11)
    expected = torch_mlp()
    slope = 0.01 if nonlinearity == "leaky_relu" else 0  # nn.LeakyReLU's default slope
    for w in weights(expected):
        if scheme == "zero":
            nn.init.zeros_(w)
        elif scheme == "random":
            nn.init.normal_(w, 0.0, 0.01)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain(nonlinearity))
        else:
            nn.init.kaiming_normal_(w, a=slope, mode="fan_in", nonlinearity=nonlinearity)
    for i, (g, e) in enumerate(zip(weights(got), weights(expected), strict=True)):
        assert_bit_identical(g.detach(), e.detach(), f"{scheme}/{nonlinearity} layer {i}")
    # and the global RNG ended in the same place: nothing else was drawn (biases are zeroed)
    assert torch.equal(torch.get_rng_state(), rng_after_got), "initialize drew extra numbers"


@pytest.mark.parametrize("use_generator", [False, True], ids=["global_rng", "generator"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_same_seed_same_weights_for_torch_and_hand_written_models(
    scheme: str, use_generator: bool, device: torch.device
) -> None:
    def init(model: nn.Module) -> list[torch.Tensor]:
        model.to(device)
        if use_generator:
            generator = torch.Generator(device=device).manual_seed(5)
            initialize(model, scheme, generator=generator)
        else:
            torch.manual_seed(5)
            initialize(model, scheme)
        return weights(model)

    torch_weights, hand_weights = init(torch_mlp()), init(HandMLP(SIZES))
    assert len(torch_weights) == len(hand_weights) == len(SIZES) - 1
    for i, (t, h) in enumerate(zip(torch_weights, hand_weights, strict=True)):
        assert_bit_identical(h.detach(), t.detach(), f"{scheme}: layer {i} torch vs hand-written")


def test_initialize_with_generator_leaves_global_rng_alone() -> None:
    before = torch.get_rng_state()
    initialize(torch_mlp(), "he", generator=torch.Generator().manual_seed(0))
    # torch_mlp() itself draws from the global RNG, so compare against building one alone
    torch.set_rng_state(before)
    torch_mlp()
    after_build = torch.get_rng_state()
    torch.set_rng_state(before)
    initialize(torch_mlp(), "he", generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), after_build)


def test_initialize_touches_only_linear_layers() -> None:
    model = nn.Sequential(
        nn.Embedding(10, 20),  # 2-D weight but no bias attribute: not a Linear
        nn.Linear(20, 30, bias=False),  # a Linear without bias still gets its weight
        nn.LayerNorm(30),  # 1-D weight
        nn.Conv1d(30, 4, 3),  # 3-D weight: not a Linear
        Linear(4, 5),
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    initialize(model, "zero")
    changed = {
        name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])
    }
    assert changed == {"1.weight", "4.weight", "4.bias"}


def test_initialize_unknown_scheme_names_value_and_choices() -> None:
    with pytest.raises(ValueError) as err:
        initialize(torch_mlp(), "glorot")  # type: ignore[arg-type]
    assert (
        str(err.value) == "scheme: expected one of 'zero', 'random', 'xavier', 'he', got 'glorot'"
    )


def test_initialize_rejects_bad_nonlinearity_and_std() -> None:
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of .* got 'rleu'"):
        initialize(torch_mlp(), "he", nonlinearity="rleu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"std: expected a standard deviation >= 0, got -0\.1"):
        initialize(torch_mlp(), "random", std=-0.1)


def test_initialize_a_model_without_linear_layers_is_an_error() -> None:
    model = nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU())
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        ValueError, match=r"module: expected a model with at least one Linear layer"
    ):
        initialize(model, "he")
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
