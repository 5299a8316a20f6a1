"""What every hand-written ``torch.autograd.Function`` here shares."""

from __future__ import annotations

import inspect
from typing import Any

import torch


class _PositionalSignature(inspect.Signature):
    """``forward``'s signature, binding the one call shape ``apply`` makes without fuss.

    When ``setup_context`` is defined, ``Function.apply`` binds its arguments to
    ``inspect.signature(forward)`` on *every* call (to fill in defaults). Rebuilding the
    signature and binding through the general machinery costs ~8 µs, as much as the
    activation itself on a 64x256 batch. ``__signature__`` is what :func:`inspect.signature`
    returns first, and a positional call that fills every parameter binds by zipping.
    """

    __slots__ = ()

    def bind(self, *args: Any, **kwargs: Any) -> inspect.BoundArguments:
        if not kwargs and len(args) == len(self.parameters):
            return inspect.BoundArguments(self, dict(zip(self.parameters, args)))
        return super().bind(*args, **kwargs)


def fast_apply(cls: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """Class decorator: give ``cls.forward`` a :class:`_PositionalSignature`."""
    forward = cls.forward
    sig = inspect.signature(forward)
    forward.__signature__ = _PositionalSignature(  # type: ignore[attr-defined]
        list(sig.parameters.values()), return_annotation=sig.return_annotation
    )
    return cls
