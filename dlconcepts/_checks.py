"""One message style for bad input, used by every module.

Every error names what was wrong, the value it got and what was expected::

    mode: expected 'fan_in' or 'fan_out', got 'fan'
"""

from __future__ import annotations


def invalid(
    name: str, value: object, expected: str, exc: type[Exception] = ValueError
) -> Exception:
    """Build (not raise) the project's standard error: ``name: expected ..., got value``."""
    return exc(f"{name}: expected {expected}, got {value!r}")


def one_of(name: str, value: object, choices: tuple[object, ...] | list[object]) -> Exception:
    """The standard error for a value outside a fixed set of choices."""
    listed = ", ".join(repr(c) for c in choices)
    return invalid(name, value, f"one of {listed}")
