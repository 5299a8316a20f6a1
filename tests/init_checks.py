"""What the tests of ``dlconcepts.init`` and ``dlconcepts.init_extra`` share: sampling from a
fixed seed, bit-identity with ``torch.nn.init``, and the Kolmogorov-Smirnov test that PyTorch's
own init tests use."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

InitFn = Callable[..., torch.Tensor]

LINEAR_SHAPE = (64, 32)  # (out, in)
CONV_SHAPE = (16, 8, 3, 3)  # (out, in, kh, kw)
SHAPES = [pytest.param(LINEAR_SHAPE, id="linear"), pytest.param(CONV_SHAPE, id="conv")]
DTYPES = [torch.float32, torch.float64]


def sample(
    fn: InitFn,
    shape: tuple[int, ...],
    kwargs: dict[str, Any],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    use_generator: bool = False,
    seed: int = 1234,
) -> torch.Tensor:
    """Run ``fn`` on a fresh tensor from a fixed seed: the global RNG or an explicit generator."""
    tensor = torch.empty(shape, dtype=dtype, device=device)
    if use_generator:
        generator = torch.Generator(device=device).manual_seed(seed)
        return fn(tensor, **kwargs, generator=generator)
    torch.manual_seed(seed)
    return fn(tensor, **kwargs)


def assert_bit_identical(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape, (
        f"{what}: got {got.dtype} {tuple(got.shape)}, "
        f"expected {expected.dtype} {tuple(expected.shape)}"
    )
    if not torch.equal(got, expected):
        diff = (got - expected).abs()
        raise AssertionError(
            f"{what}: not bit-identical to torch.nn.init; {int((diff > 0).sum())} of "
            f"{diff.numel()} values differ, max |ours - torch| = {diff.max().item():.3e}; "
            f"first values got {got.flatten()[:3].tolist()} vs "
            f"expected {expected.flatten()[:3].tolist()}"
        )


# PyTorch's test/nn/test_init.py (TestNNInit) runs scipy's Kolmogorov-Smirnov test and accepts
# p > 1e-4; scipy is not a dependency here, so the KS statistic and its asymptotic p-value are
# computed below.


def ks_pvalue(samples: torch.Tensor, cdf: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Kolmogorov-Smirnov: P(a sample this far from ``cdf`` by chance), asymptotic formula."""
    x = samples.flatten().double().sort().values
    n = x.numel()
    f = cdf(x)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = float(torch.maximum(i / n - f, f - (i - 1) / n).max())
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d  # Stephens' small-sample correction
    return min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * t * t) for k in range(1, 101)))


def normal_cdf(mean: float, std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: torch.special.ndtr((x - mean) / std)


def uniform_cdf(a: float, b: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: ((x - a) / (b - a)).clamp(0, 1)


def trunc_normal_cdf(mean: float, std: float, a: float, b: float) -> Callable:
    low, high = normal_cdf(mean, std)(torch.tensor([a, b], dtype=torch.float64))
    return lambda x: (normal_cdf(mean, std)(x) - low) / (high - low)


P_MIN = 1e-4  # PyTorch's threshold
