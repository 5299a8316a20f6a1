"""Specification of ``dlconcepts.init_extra``: the rest of ``torch.nn.init``, bit-identical.

The API and the random draws of these functions are checked with the four taught schemes in
``test_init.py``, whose registry covers every function ``dlconcepts.init`` offers. Here: the
deterministic fills, the inits that need a shape or argument of their own, and the properties
each one promises (orthogonality, truncation, sparsity, the identity), as PyTorch's own
``test/nn/test_init.py`` checks them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from init_checks import (
    CONV_SHAPE,
    DTYPES,
    LINEAR_SHAPE,
    P_MIN,
    assert_bit_identical,
    ks_pvalue,
    normal_cdf,
    sample,
)
from torch import nn

import dlconcepts.init_extra as extra

# --------------------------------------------------------------------------- bit-identity


@pytest.mark.parametrize(
    "name, shape, kwargs",
    [
        ("ones_", CONV_SHAPE, {}),
        ("constant_", CONV_SHAPE, {"val": 0.3}),
        ("eye_", (3, 5), {}),
        ("eye_", (5, 3), {}),
        ("dirac_", (6, 4, 3), {}),
        ("dirac_", (6, 4, 3, 3), {"groups": 3}),
        ("dirac_", (4, 6, 3, 2, 3), {"groups": 2}),
    ],
)
def test_deterministic_fills_identical_to_torch(
    name: str, shape: tuple[int, ...], kwargs: dict[str, Any], device: torch.device
) -> None:
    got = getattr(extra, name)(torch.randn(shape, device=device), **kwargs)
    expected = getattr(nn.init, name)(torch.randn(shape, device=device), **kwargs)
    assert_bit_identical(got, expected, f"{name}({kwargs}) on {shape}")


@pytest.mark.parametrize("use_generator", [False, True], ids=["global_rng", "generator"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", [{"sparsity": 0.1}, {"sparsity": 0.5, "std": 1.0}])
def test_sparse_bit_identical_to_torch(
    kwargs: dict[str, Any], dtype: torch.dtype, use_generator: bool, device: torch.device
) -> None:
    # the rows to zero come from the global RNG in both, even with a generator: seed it too
    common = {"dtype": dtype, "device": device, "use_generator": use_generator}
    torch.manual_seed(0)
    got = sample(extra.sparse_, LINEAR_SHAPE, kwargs, **common)
    torch.manual_seed(0)
    expected = sample(nn.init.sparse_, LINEAR_SHAPE, kwargs, **common)
    assert_bit_identical(got, expected, f"sparse_({kwargs})")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
@pytest.mark.parametrize("kwargs", [{}, {"a": 2.0, "b": 3.0}], ids=["redraw", "tail"])
def test_trunc_normal_bit_identical_in_half_precision(
    kwargs: dict[str, Any], dtype: torch.dtype
) -> None:
    got = sample(extra.trunc_normal_, LINEAR_SHAPE, kwargs, dtype=dtype)
    expected = sample(nn.init.trunc_normal_, LINEAR_SHAPE, kwargs, dtype=dtype)
    assert_bit_identical(got, expected, f"trunc_normal_({kwargs}) {dtype}")


# --------------------------------------------------------------------------- properties


def trunc_normal_cdf(mean: float, std: float, a: float, b: float) -> Callable:
    low, high = normal_cdf(mean, std)(torch.tensor([a, b], dtype=torch.float64))
    return lambda x: (normal_cdf(mean, std)(x) - low) / (high - low)


@pytest.mark.parametrize(
    "shape, mean, std, a, b",
    [
        ((45,), 1.2, 0.5, 0.4, 1.9),
        ((30, 40), -2.0, 0.05, -2.1, -1.95),
        ((8, 6, 5, 4), 0.0, 1.0, -2.0, 2.0),
        ((30, 40), 0.0, 1.0, 2.0, 3.5),  # the tail sampler
    ],
)
def test_trunc_normal_is_truncated_normal(
    shape: tuple[int, ...], mean: float, std: float, a: float, b: float
) -> None:
    w = extra.trunc_normal_(torch.empty(shape, dtype=torch.float64), mean, std, a, b)
    assert a <= w.min().item() and w.max().item() <= b
    assert ks_pvalue(w, trunc_normal_cdf(mean, std, a, b)) > P_MIN


def test_trunc_normal_warns_when_the_mean_is_far_outside() -> None:
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        extra.trunc_normal_(torch.empty(10), mean=5.0, std=1.0, a=-1.0, b=1.0)


@pytest.mark.parametrize("use_random_std", [False, True])
def test_sparse_zeros_in_every_column_and_normal_elsewhere(use_random_std: bool) -> None:
    rows, cols, sparsity = 33, 31, 0.15
    std = 0.13 if use_random_std else 0.01
    kwargs = {"std": std} if use_random_std else {}
    w = extra.sparse_(torch.empty(rows, cols, dtype=torch.float64), sparsity, **kwargs)
    zeros_per_column = (w == 0).sum(dim=0)
    assert (zeros_per_column == math.ceil(sparsity * rows)).all(), zeros_per_column
    assert ks_pvalue(w[w != 0], normal_cdf(0, std)) > P_MIN


@pytest.mark.parametrize("gain", [1.0, 1.7])
@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (20, 2, 3, 4), (2, 3, 4, 5)])
def test_orthogonal_is_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    w = extra.orthogonal_(torch.zeros(shape), gain=gain)
    rows = shape[0]
    flat = w.view(rows, -1)
    cols = flat.shape[1]
    # QᵀQ = gain²·I for a tall matrix (orthonormal columns), QQᵀ for a wide one
    product = flat.T @ flat if rows > cols else flat @ flat.T
    expected = torch.eye(min(rows, cols)) * gain**2
    torch.testing.assert_close(product, expected, atol=1e-6 * gain**2, rtol=0)


def test_orthogonal_of_an_empty_tensor_is_a_no_op() -> None:
    tensor = torch.empty(0, 3)
    assert extra.orthogonal_(tensor) is tensor


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_is_the_identity(shape: tuple[int, ...]) -> None:
    w = extra.eye_(torch.randn(shape))
    assert torch.equal(w, torch.eye(*shape))


@pytest.mark.parametrize("dims", [3, 4, 5])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_dirac_has_one_nonzero_per_preserved_channel(dims: int, groups: int) -> None:
    out_per_group, in_channels, *kernel = (3, 4, 3, 2, 5)[:dims]
    w = extra.dirac_(torch.randn(out_per_group * groups, in_channels, *kernel), groups)
    preserved = min(out_per_group, in_channels)
    assert torch.count_nonzero(w) == preserved * groups
    assert w.sum() == preserved * groups


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("conv", [F.conv1d, F.conv2d, F.conv3d], ids=["1d", "2d", "3d"])
def test_dirac_convolution_passes_the_input_through(conv: Callable, groups: int) -> None:
    batch, in_c, out_c, size, kernel = 8, 3, 9, 5, 3
    spatial = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}[conv]
    x = torch.randn(batch, in_c, *[size] * spatial)
    w = extra.dirac_(torch.zeros(out_c, in_c, *[kernel] * spatial), groups)
    y = conv(x, w)
    inner = (slice(None), slice(None), *[slice(1, -1)] * spatial)
    per_group = out_c // groups
    for g in range(groups):
        torch.testing.assert_close(y[:, per_group * g : per_group * g + in_c], x[inner])
        assert torch.count_nonzero(y[:, per_group * g + in_c : per_group * (g + 1)]) == 0


@pytest.mark.parametrize(
    "fn, shape",
    [
        (extra.eye_, (2, 3, 4)),
        (extra.eye_, (3,)),
        (lambda t: extra.sparse_(t, 0.1), (2, 3, 4)),
        (lambda t: extra.sparse_(t, 0.1), (3,)),
        (extra.dirac_, (3, 3)),
        (extra.dirac_, (1, 2, 3, 4, 5, 6)),
        (extra.orthogonal_, (3,)),
    ],
)
def test_wrong_number_of_dimensions_is_rejected_like_torch(
    fn: Callable, shape: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=r"tensor shape: expected .*dimensions.*, got"):
        fn(torch.empty(shape))


def test_dirac_groups_must_divide_the_out_channels() -> None:
    with pytest.raises(ValueError, match=r"groups: expected a divisor of the out channels, 5"):
        extra.dirac_(torch.empty(5, 2, 3), groups=2)
    with pytest.raises(ValueError):
        nn.init.dirac_(torch.empty(5, 2, 3), groups=2)
