"""What every hand-written ``torch.autograd.Function`` here shares: a cheaper ``apply``.

Each Function is written in PyTorch's modern form, ``forward(*inputs)`` with a separate
``setup_context(ctx, inputs, output)``: that form is what :mod:`torch.func` (vmap, grad, jvp)
requires, and it keeps ``forward`` a plain function the manual backprop can call directly.

The modern form has a price on every call, though. When ``setup_context`` is defined,
``Function.apply`` binds its arguments to ``inspect.signature(forward)`` to fill in defaults:
a one-op Function's forward on a 64x256 batch costs ~32 µs that way (~22 µs of it binding),
against ~7 µs in the combined form ``forward(ctx, *inputs)`` and ~4 µs for ``torch.relu``;
more than the activation's own arithmetic. So for a plain eager call, :meth:`Function.apply` runs an
*eager twin*: the combined form, generated from the same ``forward``, ``setup_context``,
``backward`` and ``jvp``. Nothing is written twice and the graph node has the usual name
(``SigmoidFunctionBackward``). Under a :mod:`torch.func` transform, with keyword arguments
or with defaults left to fill, ``apply`` takes PyTorch's own path. :func:`torch.compile` does
not trace into ``apply``: Dynamo cannot trace a Function with a custom ``jvp`` in any case, and
tracing the branches here only breaks the graph more often (784-256-128-10: 9 breaks instead
of 1), so compiled code calls it eagerly between its graphs.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch

_transforms_active = torch._C._are_functorch_transforms_active


class Function(torch.autograd.Function):
    """A :class:`torch.autograd.Function` whose eager ``apply`` skips the argument binding.

    Subclasses define ``forward``, ``setup_context``, ``backward`` (and ``jvp``) as usual.
    """

    _eager: ClassVar[type[torch.autograd.Function]]
    _arity: ClassVar[int | None]  # forward's parameter count; None: not plainly positional

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._eager = _eager_twin(cls)
        params = inspect.signature(cls.forward).parameters.values()
        positional = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        cls._arity = len(params) if positional else None

    @classmethod
    @torch.compiler.disable
    def apply(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs or len(args) != cls._arity or _transforms_active():
            return super().apply(*args, **kwargs)
        return cls._eager.apply(*args)


def _eager_twin(cls: type[Function]) -> type[torch.autograd.Function]:
    """The combined form of ``cls``. Its methods look ``cls``'s up at call time, so a subclass
    or a patched method is honoured exactly as in the modern form."""

    def forward(ctx: Any, *args: Any) -> Any:
        output = cls.forward(*args)
        cls.setup_context(ctx, args, output)
        return output

    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        return cls.backward(ctx, *grad_outputs)

    def jvp(ctx: Any, *tangents: Any) -> Any:
        return cls.jvp(ctx, *tangents)

    namespace = {
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
        "jvp": staticmethod(jvp),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": f"The combined-form twin of :class:`{cls.__qualname__}` (see ``_function``).",
    }
    return type(cls.__name__, (torch.autograd.Function,), namespace)
