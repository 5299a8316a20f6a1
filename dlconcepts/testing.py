r"""Check your own ``torch.autograd.Function`` against PyTorch's built-in.

Writing a backward pass yourself is how backpropagation is learned; this module turns the
project's own proofs on *your* code. Write a Function in either of PyTorch's two styles
(``forward(ctx, ...)``, or ``forward(...)`` with ``setup_context``), with or without a
``jvp``, or a plain function, then::

    >>> from dlconcepts.testing import check_function
    >>> report = check_function(MySigmoid, "sigmoid")  # doctest: +SKIP
    >>> print(report)                                  # doctest: +SKIP
    >>> report.passed                                  # doctest: +SKIP

In your own pytest suite, ``assert_function(MySigmoid, "sigmoid")`` raises an
``AssertionError`` whose message is that table. From a shell::

    dlconcepts check --function my_sigmoid.py:MySigmoid --against sigmoid

**Required checks** (any failure fails the report), on the piece's *basic form*, the one
written first (:data:`PIECES`): an activation on tensors of any shape, ``linear`` on a 2-D
input with a bias, a loss with its mean reduction and, for ``cross_entropy``, class indices:

- ``forward``: the values equal PyTorch's, in float64 (``rtol`` 1e-7, ``atol`` 1e-10) and in
  float32 (``rtol`` 1e-4, ``atol`` 1e-5), with the input's dtype and PyTorch's shape, on
  random, N-D, non-contiguous and empty inputs and on the edge values ±1000, ±0 and tiny
  numbers (:data:`dlconcepts.proofs.EDGE_VALUES`): finite where PyTorch's are;
- ``backward vs finite differences``: :func:`torch.autograd.gradcheck`, in float64;
- ``backward vs PyTorch``: the gradient equals PyTorch's for a random incoming gradient
  (float64, the forward's tolerances: tighter than ``gradcheck``'s, which a derivative that
  is only nearly right gets through), on every input of the basic form and on the edge
  values: finite where PyTorch's is (``e^{-x} / (1 + e^{-x})^2`` is NaN at x = -1000), and
  ReLU's 0 at exactly 0;
- ``inputs unmodified``: forward and backward leave the inputs and ``grad_output`` as they were;
- ``gradient shapes``: each gradient ``backward`` returns has its input's shape (autograd
  would otherwise sum a gradient of shape (N, k) into a bias of shape (k,) without a word).

**Reported, not failing**: double backward (``gradgradcheck``), forward-mode AD (only where a
``jvp`` is defined, otherwise "not provided"), ``torch.func.vmap``, float16 and bfloat16
(``rtol`` 1e-2 and 5e-2), and the wider forms, "beyond the basic form" (N-D input or no bias
for ``linear``; class weights, ``ignore_index``, other reductions for the losses).

A failing row names the first input where it differs (``x``, expected, got) and, where the
numbers show it, a hint: "multiply by grad_output", "mean vs sum", "derivative in terms of the
input vs the output", "transposed". An exception raised in your code is reported as your
file:line and its message, not as a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.gradcheck import GradcheckError

from dlconcepts import activations, layers, proofs, training
from dlconcepts._checks import invalid, one_of

# --- the pieces and their inputs -------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """One way to call a piece: a label, fresh inputs, and keyword arguments."""

    label: str
    inputs: proofs.Inputs
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Piece:
    """What a learner's function is checked against: PyTorch's ``reference``, called with
    ``basic`` (required: the first form random, then other shapes and layouts), ``edges``
    (required, forward only) and ``wider`` (reported only)."""

    name: str
    reference: Callable[..., Tensor]
    arg_names: tuple[str, ...]
    basic: tuple[Form, ...]
    edges: Form
    wider: tuple[Form, ...] = ()
    derivative: Callable[[Tensor], Tensor] | None = None  # activations: f' from the output y


def _no_grad(maker: Callable) -> Callable:
    """``maker``'s tensor, not requiring grad (a target the basic form takes no gradient for)."""
    return lambda dtype, device, gen: maker(dtype, device, gen).detach()


def _none(dtype: torch.dtype, device: torch.device, gen: torch.Generator) -> None:
    return None


def _activation(name: str, reference: Callable[..., Tensor], scale: float) -> Piece:
    def x(*shape: int) -> Callable:
        # finite differences straddling ReLU's kink at 0 would disagree with any backward
        return proofs.floats(*shape, scale=scale, away_from_zero=name == "relu")

    return Piece(
        name,
        reference,
        ("x",),
        basic=(
            Form("random (4, 5)", proofs.inputs(x(4, 5))),
            Form("N-D (2, 3, 4)", proofs.inputs(x(2, 3, 4))),
            Form("0-D", proofs.inputs(x())),
            Form("non-contiguous (4, 5)", proofs.inputs(proofs.non_contiguous(x(4, 5)))),
            Form("empty (0, 3)", proofs.inputs(x(0, 3))),
        ),
        edges=Form("edge values", proofs.inputs(proofs.edge_values())),
        derivative=activations.ACTIVATIONS[name].derivative,
    )


def _loss(name: str, reference: Callable[..., Tensor], target: Callable, wider: tuple) -> Piece:
    """A loss of (input, target) whose basic form is a (4, 5) input, the mean reduction, and
    no gradient for the target."""
    z = proofs.floats(4, 5, scale=3)
    return Piece(
        name,
        reference,
        ("input", "target"),
        basic=(
            Form("random (4, 5)", proofs.inputs(z, _no_grad(target(4, 5)))),
            Form("N-D (2, 3, 4)", proofs.inputs(proofs.floats(2, 3, 4), _no_grad(target(2, 3, 4)))),
            Form(
                "non-contiguous (4, 5)",
                proofs.inputs(proofs.non_contiguous(z), _no_grad(target(4, 5))),
            ),
        ),
        edges=Form("edge values", proofs.inputs(proofs.edge_values(), _no_grad(target(9)))),
        wider=(
            Form("reduction='sum'", proofs.inputs(z, _no_grad(target(4, 5))), {"reduction": "sum"}),
            Form(
                "reduction='none'", proofs.inputs(z, _no_grad(target(4, 5))), {"reduction": "none"}
            ),
            Form("a gradient for the target too", proofs.inputs(z, target(4, 5))),
            *wider,
        ),
    )


def _cross_entropy() -> Piece:
    z = proofs.floats(6, 10, scale=3)
    t = proofs.classes(6, n_classes=10)
    return Piece(
        "cross_entropy",
        F.cross_entropy,
        ("input", "target"),
        basic=(
            Form("random (6, 10)", proofs.inputs(z, t)),
            Form("non-contiguous (6, 10)", proofs.inputs(proofs.non_contiguous(z), t)),
            Form(
                "one example (1, 10)",
                proofs.inputs(proofs.floats(1, 10), proofs.classes(1, n_classes=10)),
            ),
        ),
        # three rows of the edge values as logits: each row's ±1000 in other columns
        edges=Form(
            "edge values", proofs.inputs(proofs.edge_values(rows=3), proofs.classes(3, n_classes=9))
        ),
        wider=(
            Form("class weights", proofs.inputs(z, t, proofs.class_weights(10))),
            Form(
                "ignore_index (targets -100)",
                proofs.inputs(z, proofs.classes(6, n_classes=10, ignored=(1, 4))),
            ),
            Form("reduction='sum'", proofs.inputs(z, t), {"reduction": "sum"}),
            Form("reduction='none'", proofs.inputs(z, t), {"reduction": "none"}),
            Form("label_smoothing=0.1", proofs.inputs(z, t), {"label_smoothing": 0.1}),
            Form(
                "(N, C, d1, d2) logits",
                proofs.inputs(
                    proofs.floats(3, 5, 2, 2, scale=3), proofs.classes(3, 2, 2, n_classes=5)
                ),
            ),
            Form(
                "probabilities as the target",
                proofs.inputs(proofs.floats(3, 5, scale=3), proofs.probabilities(3, 5)),
            ),
        ),
    )


def _linear() -> Piece:
    x, w, b = proofs.floats(3, 5), proofs.floats(4, 5), proofs.floats(4)
    return Piece(
        "linear",
        F.linear,
        ("x", "weight", "bias"),
        basic=(
            Form("random x (3, 5)", proofs.inputs(x, w, b)),
            Form("non-contiguous x (3, 5)", proofs.inputs(proofs.non_contiguous(x), w, b)),
            Form("empty batch x (0, 5)", proofs.inputs(proofs.floats(0, 5), w, b)),
        ),
        edges=Form(
            "edge values",
            proofs.inputs(proofs.edge_values(rows=2), proofs.floats(4, 9), proofs.floats(4)),
        ),
        wider=(
            Form("N-D x (3, 2, 5)", proofs.inputs(proofs.floats(3, 2, 5), w, b)),
            Form("no bias", proofs.inputs(x, w, _none)),
        ),
    )


PIECES: dict[str, Piece] = {
    "sigmoid": _activation("sigmoid", torch.sigmoid, scale=3),
    "tanh": _activation("tanh", torch.tanh, scale=2),
    "relu": _activation("relu", torch.relu, scale=1),
    "linear": _linear(),
    "cross_entropy": _cross_entropy(),
    "mse_loss": _loss("mse_loss", F.mse_loss, lambda *s: proofs.floats(*s), ()),
    "binary_cross_entropy_with_logits": _loss(
        "binary_cross_entropy_with_logits",
        F.binary_cross_entropy_with_logits,
        lambda *s: proofs.probabilities(*s, dim=None),
        (),
    ),
}
"""What ``against`` may name: the piece, PyTorch's function it must equal, and its inputs."""

AGAINST: tuple[str, ...] = (*PIECES, "backprop")
"""Every ``against``: the pieces, and ``backprop``, a manual backward of a whole MLP."""

# (rtol, atol) per dtype: forward values, and the gradient against PyTorch's
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-10),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (5e-2, 1e-2),
}
GRADCHECK_TOLERANCES = (1e-3, 1e-5)
"""(rtol, atol) of :func:`torch.autograd.gradcheck`, for where a gradient differs from it."""

FORWARD = "forward"
GRADCHECK = "backward vs finite differences"
VS_PYTORCH = "backward vs PyTorch"
UNMODIFIED = "inputs unmodified"
SHAPES = "gradient shapes"
REQUIRED: tuple[str, ...] = (FORWARD, GRADCHECK, VS_PYTORCH, UNMODIFIED, SHAPES)
"""The checks whose failure fails the report, in the order they run."""

STATUSES: tuple[str, ...] = ("pass", "fail", "skip", "info")


# --- the report --------------------------------------------------------------------------------


class Row(NamedTuple):
    """One line of a report: the check, its status (:data:`STATUSES`) and what it found."""

    check: str
    status: str
    message: str


@dataclass
class CheckReport:
    """What :func:`check_function` found: ``passed`` when no row failed; ``str()`` is the table."""

    function: str
    against: str
    rows: list[Row]

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.rows)

    def failed(self) -> list[str]:
        """The checks that failed, in the order they ran."""
        return [r.check for r in self.rows if r.status == "fail"]

    def __str__(self) -> str:
        width = max(len(r.check) for r in self.rows)
        lines = [f"{self.function} against {self.against}", ""]
        lines.append(f"{'check':<{width}}  status  message")
        previous = None
        for r in self.rows:
            status = "FAIL" if r.status == "fail" else r.status
            message, previous = ("(as above)" if r.message == previous else r.message), r.message
            first, *rest = message.splitlines() or [""]
            lines.append(f"{r.check:<{width}}  {status:<6}  {first}".rstrip())
            lines += [f"{'':<{width}}  {'':<6}  {line}" for line in rest]
        failed = self.failed()
        lines.append("")
        lines.append(
            "passed: every required check"
            if self.passed
            else f"FAILED: {len(failed)} required check{'s' * (len(failed) > 1)} "
            f"({', '.join(failed)})"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``dlconcepts check --json``)."""
        return {
            "function": self.function,
            "against": self.against,
            "passed": self.passed,
            "rows": [r._asdict() for r in self.rows],
        }


# --- calling the learner's code ----------------------------------------------------------------


def _is_function(fn: object) -> bool:
    return isinstance(fn, type) and issubclass(fn, torch.autograd.Function)


def _caller(fn: object) -> Callable[..., Any]:
    if _is_function(fn):
        return fn.apply  # type: ignore[attr-defined]
    if callable(fn):
        return fn  # type: ignore[return-value]
    raise invalid("fn", fn, "a torch.autograd.Function subclass or a callable", TypeError)


def _source_files(fn: object) -> set[str]:
    """The files the learner's code lives in: where its tracebacks should point."""
    torch_dir = os.path.dirname(torch.__file__)
    functions: list[Any] = []
    if isinstance(fn, type):
        for klass in fn.__mro__:
            functions += [
                v.__func__ if isinstance(v, staticmethod) else v for v in vars(klass).values()
            ]
    else:
        functions += [fn, vars(type(fn)).get("__call__")]  # a function, or a callable object
    files = {os.path.abspath(f.__code__.co_filename) for f in functions if hasattr(f, "__code__")}
    return {f for f in files if not f.startswith(torch_dir)}


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def explain(exc: BaseException, files: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """An exception in one line: where in ``files`` it was raised (the last such frame), its
    type and the first line of its message; never the traceback."""
    text = str(exc).strip().splitlines()
    first = text[0].rstrip(",") if text else ""
    if len(first) > 120 and ". " in first:  # PyTorch's long messages: the first sentence
        first = first.split(". ")[0] + "."
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) in files
    ]
    if not frames:
        return message
    f = frames[-1]
    return f"{_display(f.filename)}:{f.lineno} in {f.name}: {message}"


def _where(exc: BaseException, files: set[str], name: str) -> str:
    """:func:`explain`, naming ``name`` where no frame of ``files`` says where (a Function
    called with the wrong arguments fails inside PyTorch)."""
    return explain(exc, files) if _raised_in(exc, files) else f"{name}: {explain(exc, files)}"


def _raised_in(exc: BaseException, files: set[str]) -> bool:
    """Whether ``exc``'s traceback goes through one of ``files``."""
    return any(
        os.path.abspath(f.filename) in files for f in traceback.extract_tb(exc.__traceback__)
    )


def _changed(args: tuple[Any, ...], before: dict[int, Tensor], names: tuple[str, ...]) -> list[str]:
    """The names of the inputs that are no longer what ``before`` kept of them."""
    return [names[i] for i, b in before.items() if not torch.equal(args[i].detach(), b)]


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0].rstrip(",") if lines else type(e).__name__


def _make(form: Form, dtype: torch.dtype, device: torch.device, seed: int) -> tuple[Any, ...]:
    return form.inputs(dtype, device, torch.Generator().manual_seed(seed))


def _differentiable(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]


def _incoming(out: Tensor, seed: int) -> Tensor:
    """A random incoming gradient ``grad_output`` for ``out``; for a scalar, 1.7 (not 1: a
    backward that ignores it must show)."""
    if out.dim() == 0:
        return torch.tensor(1.7, dtype=out.dtype, device=out.device)
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out)


def _vjp(
    f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], v: Tensor
) -> tuple[Tensor | None, ...]:
    """The gradients of ``f(*args, **kwargs)`` against the inputs requiring grad, for ``v``."""
    out = f(*args, **kwargs)
    diff = [args[i] for i in _differentiable(args)]
    return torch.autograd.grad(out, diff, v, allow_unused=True)


def _finite_differences(
    f: Callable[..., Tensor], args: tuple[Any, ...], v: Tensor, eps: float = 1e-6
) -> tuple[Tensor, ...]:
    """What finite differences of ``f`` say the gradients are, for the incoming gradient ``v``:
    for each element of each input requiring grad, the central difference
    ``((f(a + eps) - f(a - eps)) · v) / (2 eps)``, gradcheck's own estimate and ``eps``."""
    grads = []
    with torch.no_grad():
        for i in _differentiable(args):
            a = args[i].detach().contiguous()
            grad = torch.zeros_like(a)
            for j in range(a.numel()):
                sides = []
                for step in (eps, -eps):
                    moved = a.clone()
                    moved.view(-1)[j] += step
                    out = f(*args[:i], moved, *args[i + 1 :])
                    sides.append((out * v).sum())
                grad.view(-1)[j] = (sides[0] - sides[1]) / (2 * eps)
            grads.append(grad)
    return tuple(grads)


def _number(t: Tensor) -> str:
    return f"{float(t):.6g}"


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _shape(t: Tensor | torch.Size) -> str:
    return str(tuple(t.shape if isinstance(t, Tensor) else t))


def differs(
    what: str, got: object, expected: Tensor, rtol: float, atol: float, x: Tensor | None = None
) -> str | None:
    """``None`` when ``got`` equals ``expected`` (shape, dtype, values within the tolerances,
    NaN where it is NaN); otherwise where it first differs, as ``x``, expected and got."""
    if not isinstance(got, Tensor):
        return f"{what} is {type(got).__name__}, expected a tensor"
    if got.shape != expected.shape:
        return f"{what} has shape {_shape(got)}, expected {_shape(expected)}"
    if got.dtype != expected.dtype:
        return f"{what} is {_dtype(got.dtype)}, expected {_dtype(expected.dtype)}"
    got, expected = got.detach(), expected.detach()
    close = torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    i = tuple((~close).nonzero()[0].tolist())
    if x is not None and x.shape == got.shape:
        where = f"at x = {_number(x.detach()[i])}"
    else:
        where = f"at [{', '.join(map(str, i))}]"
    return f"{what} differs {where}: expected {_number(expected[i])}, got {_number(got[i])}"


# --- the checks ----------------------------------------------------------------------------------


def _row(
    check: str, run: Callable[[], tuple[str, str]], files: set[str], required: bool = True
) -> Row:
    """The row of ``check``: what ``run`` found, or, if it raised, where and why, in one line."""
    try:
        status, message = run()
    except Exception as e:  # the learner's code (or what it returned) failed: say where
        status, message = ("fail" if required else "info"), explain(e, files)
    return Row(check, status, message)


@dataclass
class _Run:
    """One learner's function against one piece, and what every check needs."""

    fn: object
    call: Callable[..., Any]
    piece: Piece
    files: set[str]
    device: torch.device
    seed: int

    def make(self, form: Form, dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple:
        return _make(form, dtype, self.device, self.seed + seed)

    def x(self, args: tuple[Any, ...]) -> Tensor | None:
        """The input to name in a message: an activation's x, where output and x align."""
        return args[0].detach().clone() if self.piece.derivative is not None else None

    def row(self, check: str, required: bool, run: Callable[[], tuple[str, str]]) -> Row:
        return _row(check, run, self.files, required)

    # --- required ---

    def forward(self) -> tuple[str, str]:
        p = self.piece
        for dtype in (torch.float64, torch.float32):
            for form in (*p.basic, p.edges):
                args = self.make(form, dtype)
                x = self.x(args)
                expected = p.reference(*args, **form.kwargs)
                got = self.call(*args, **form.kwargs)
                if msg := differs("output", got, expected, *TOLERANCES[dtype], x=x):
                    return "fail", f"{_dtype(dtype)}, {form.label}: {msg}"
        labels = ", ".join(f.label.split(" (")[0] for f in p.basic)
        return "pass", f"float64 and float32: {labels}, edge values ±1000, ±0, tiny"

    def gradcheck(self) -> tuple[str, str]:
        form = self.piece.basic[0]
        args = self.make(form)
        try:
            torch.autograd.gradcheck(lambda *a: self.call(*a, **form.kwargs), args)
        except GradcheckError as e:
            return "fail", self._gradcheck_message(e, form)
        return "pass", f"gradcheck, float64, {form.label}"

    def _gradcheck_message(self, e: GradcheckError, form: Form) -> str:
        """Where the gradient first differs from finite differences of the forward, for a
        random incoming gradient; gradcheck's own first sentence when no element does (a
        backward that differs from itself from one call to the next)."""
        p, args = self.piece, self.make(form)
        v = _incoming(p.reference(*args, **form.kwargs).detach(), self.seed)
        call = lambda *a: self.call(*a, **form.kwargs)  # noqa: E731
        expected = _finite_differences(call, args, v)
        got = _vjp(self.call, self.make(form), form.kwargs, v.clone())
        if msg := self._first_difference(args, got, expected, GRADCHECK_TOLERANCES):
            return f"{form.label}: {msg}"
        return _first_line(e).split(". ")[0]

    def _first_difference(
        self,
        args: tuple[Any, ...],
        got: tuple[Tensor | None, ...],
        expected: tuple[Tensor | None, ...],
        tolerances: tuple[float, float],
    ) -> str | None:
        """The first gradient in ``got`` that differs from ``expected``: where, and by what."""
        for i, g, e in zip(_differentiable(args), got, expected):
            name = self.piece.arg_names[i]
            if g is None:
                return f"no gradient for {name}: backward returned None for it"
            if msg := differs(f"gradient for {name}", g, e, *tolerances, x=self.x(args)):
                return msg
        return None

    def vs_pytorch(self) -> tuple[str, str]:
        p = self.piece
        for form in (*p.basic, p.edges):
            args = self.make(form)
            v = _incoming(p.reference(*args, **form.kwargs).detach(), self.seed)
            expected = _vjp(p.reference, args, form.kwargs, v.clone())
            try:
                got = _vjp(self.call, self.make(form), form.kwargs, v.clone())
            except Exception as e:
                return "fail", "\n".join([explain(e, self.files), *self.hints(form)])
            if msg := self._first_difference(args, got, expected, TOLERANCES[torch.float64]):
                return "fail", "\n".join([f"{form.label}: {msg}", *self.hints(form)])
        labels = ", ".join(f.label.split(" (")[0] for f in p.basic)
        return "pass", f"float64, a random grad_output, on {labels}, edge values ±1000, ±0, tiny"

    def hints(self, form: Form) -> list[str]:
        """What the numbers say about a wrong gradient, on ``form``'s inputs: each hint a line."""
        try:
            return self._hints(form)
        except Exception:  # a hint is a bonus: the row already says what failed
            return []

    def _hints(self, form: Form) -> list[str]:
        p, kw = self.piece, form.kwargs
        args = self.make(form)
        v = _incoming(p.reference(*args, **kw).detach(), self.seed)
        expected = _vjp(p.reference, args, kw, v)
        ones = _vjp(p.reference, self.make(form), kw, torch.ones_like(v))
        got = self._raw_gradients(form, v)
        n = args[0].shape[0] if args[0].dim() else 1

        def close(a: Tensor, b: Tensor) -> bool:
            return a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-9)

        found: list[str] = []
        for i, g, e, o in zip(_differentiable(args), got, expected, ones):
            if not isinstance(g, Tensor) or e is None:
                continue
            name, g = p.arg_names[i], g.detach()
            if close(g, o) and not close(e, o):
                found.append(
                    f"hint: the gradient for {name} equals PyTorch's without the incoming "
                    "gradient: multiply by grad_output"
                )
            if n > 1 and (close(g, e * n) or close(g, e / n)):
                found.append(
                    f"hint: the gradient for {name} is off by the batch size {n}: mean vs sum"
                )
            if g.dim() == 2 and close(g.T, e) and not close(g, e):
                found.append(f"hint: the gradient for {name} is transposed")
            if p.derivative is not None and i == 0:
                x = args[0].detach()
                y = p.reference(x).requires_grad_()
                (f_at_y,) = torch.autograd.grad(p.reference(y), y, torch.ones_like(y))
                if close(g, v * p.derivative(x)) or close(g, v * f_at_y):
                    found.append(
                        "hint: matches f' applied to the wrong tensor: derivative in terms of "
                        "the input vs the output (is it f'(x) from x, or from y = f(x)?)"
                    )
        return list(dict.fromkeys(found))

    def _raw_gradients(self, form: Form, v: Tensor) -> tuple[Any, ...]:
        """What the learner's ``backward`` returns for ``v``, called directly (autograd would
        reject or reshape a gradient of the wrong shape); through autograd for a plain
        function."""
        args = self.make(form)
        out = self.call(*args, **form.kwargs)
        if _is_function(self.fn):
            raw = out.grad_fn.apply(v.clone())
            raw = raw if isinstance(raw, tuple) else (raw,)
            return tuple(raw[i] if i < len(raw) else None for i in _differentiable(args))
        diff = [args[i] for i in _differentiable(args)]
        return torch.autograd.grad(out, diff, v.clone(), allow_unused=True)

    def unmodified(self) -> tuple[str, str]:
        names = self.piece.arg_names
        for form in self.piece.basic:
            args = self.make(form)
            before = {i: a.detach().clone() for i, a in enumerate(args) if isinstance(a, Tensor)}
            out = self.call(*args, **form.kwargs)
            if names_changed := _changed(args, before, names):
                return "fail", f"{form.label}: forward changed {', '.join(names_changed)} in place"
            v = _incoming(out.detach(), self.seed)
            v_before = v.clone()
            if _is_function(self.fn):  # the learner's backward itself, as autograd calls it
                out.grad_fn.apply(v)
            else:
                torch.autograd.grad(out, [args[i] for i in _differentiable(args)], v)
            if names_changed := _changed(args, before, names):
                return "fail", f"{form.label}: backward changed {', '.join(names_changed)} in place"
            if not torch.equal(v, v_before):
                return "fail", (
                    f"{form.label}: backward changed grad_output in place; compute a new tensor "
                    "(autograd may hand the same grad_output to other functions)"
                )
        return "pass", "forward and backward leave the inputs and grad_output as they were"

    def shapes(self) -> tuple[str, str]:
        if not _is_function(self.fn):
            return "skip", "a plain function: autograd computes the gradients and their shapes"
        names = self.piece.arg_names
        for form in self.piece.basic:
            args = self.make(form)
            out = self.call(*args, **form.kwargs)
            raw = out.grad_fn.apply(_incoming(out.detach(), self.seed))
            raw = raw if isinstance(raw, tuple) else (raw,)
            if len(raw) != len(args):
                return "fail", (
                    f"backward returned {len(raw)} value{'s' * (len(raw) != 1)}, expected "
                    f"{len(args)}: one per input of forward ({', '.join(names)}), None for an "
                    "input without a gradient"
                )
            for i in _differentiable(args):
                g, a = raw[i], args[i]
                if isinstance(g, Tensor) and g.shape != a.shape:
                    msg = (
                        f"{form.label}: the gradient for {names[i]} has shape {_shape(g)}, "
                        f"expected {_shape(a)}, the shape of {names[i]}"
                    )
                    if g.dim() == 2 and g.shape == a.shape[::-1]:
                        msg += f"\nhint: the gradient for {names[i]} is transposed"
                    elif g.dim() > a.dim() and g.shape[g.dim() - a.dim() :] == a.shape:
                        msg += (
                            "\nhint: sum over the batch: a bias is shared by every example "
                            "(autograd would sum it for you without a word)"
                        )
                    return "fail", msg
        return "pass", "each gradient backward returns has its input's shape"

    # --- reported, not failing ---

    def double_backward(self) -> tuple[str, str]:
        form = self.piece.basic[0]
        try:
            torch.autograd.gradgradcheck(lambda *a: self.call(*a, **form.kwargs), self.make(form))
        except GradcheckError:
            return "info", (
                "gradgradcheck failed: the backward's own derivative differs from finite "
                "differences (expected where the backward is wrong above)"
            )
        return "pass", "gradgradcheck, float64"

    def forward_ad(self) -> tuple[str, str]:
        form = self.piece.basic[0]
        args = self.make(form)
        f = lambda *a: self.call(*a, **form.kwargs)  # noqa: E731
        no_jvp = _is_function(self.fn) and self.fn.jvp is torch.autograd.Function.jvp  # type: ignore[attr-defined]
        if no_jvp or not proofs.provides_jvp(f, args):
            return "skip", "not provided (no jvp)"
        try:
            torch.autograd.gradcheck(
                f, args, check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False
            )
        except GradcheckError as e:
            return "info", "the jvp differs from finite differences: " + _first_line(e)
        return "pass", "jvp equals finite differences (gradcheck, float64)"

    def vmap(self) -> tuple[str, str]:
        fn = self.fn
        if _is_function(fn):
            if fn.setup_context is torch.autograd.Function.setup_context:  # type: ignore[attr-defined]
                return (
                    "skip",
                    "needs the forward + setup_context style (classic forward(ctx, ...) has no vmap)",
                )
            if not fn.generate_vmap_rule and fn.vmap is torch.autograd.Function.vmap:  # type: ignore[attr-defined]
                return "skip", "not provided (generate_vmap_rule = True, or a vmap staticmethod)"
        form = self.piece.basic[0]
        a, b = self.make(form), self.make(form, seed=1)
        batched = [torch.stack([p.detach(), q.detach()]) for p, q in zip(a, b)]
        got = torch.func.vmap(lambda *x: self.call(*x, **form.kwargs))(*batched)
        expected = torch.stack(
            [self.piece.reference(*(t.detach() for t in args), **form.kwargs) for args in (a, b)]
        )
        if msg := differs("output", got, expected, *TOLERANCES[torch.float64]):
            return "info", msg
        return "pass", "torch.func.vmap over a batch of two equals two calls"

    def low_precision(self, dtype: torch.dtype) -> Callable[[], tuple[str, str]]:
        def check() -> tuple[str, str]:
            form = self.piece.basic[0]
            args = self.make(form, dtype)
            try:
                v = _incoming(self.piece.reference(*args, **form.kwargs).detach(), self.seed)
                expected = _vjp(self.piece.reference, args, form.kwargs, v)
            except RuntimeError:
                return "skip", f"PyTorch's own has no {_dtype(dtype)} on {self.device}"
            return self._compare(form, dtype, "", expected=expected, v=v)

        return check

    def wider(self, form: Form) -> Callable[[], tuple[str, str]]:
        def check() -> tuple[str, str]:
            try:
                return self._compare(form, torch.float64, "beyond the basic form: ")
            except Exception as e:
                return "info", f"beyond the basic form: {explain(e, self.files)}"

        return check

    def _compare(
        self,
        form: Form,
        dtype: torch.dtype,
        prefix: str,
        expected: tuple[Tensor | None, ...] | None = None,
        v: Tensor | None = None,
    ) -> tuple[str, str]:
        """Output and gradients on ``form`` against PyTorch's: "pass" or "info"."""
        p, tol = self.piece, TOLERANCES[dtype]
        args = self.make(form, dtype)
        out_ref = p.reference(*args, **form.kwargs)
        v = _incoming(out_ref.detach(), self.seed) if v is None else v
        got_out = self.call(*self.make(form, dtype), **form.kwargs)
        if msg := differs("output", got_out, out_ref, *tol, x=self.x(args)):
            return "info", prefix + msg
        expected = _vjp(p.reference, args, form.kwargs, v) if expected is None else expected
        got = _vjp(self.call, self.make(form, dtype), form.kwargs, v)
        for i, g, e in zip(_differentiable(args), got, expected):
            name = p.arg_names[i]
            if g is None:
                return "info", f"{prefix}no gradient for {name}"
            if msg := differs(f"gradient for {name}", g, e, *tol, x=self.x(args)):
                return "info", prefix + msg
        return "pass", f"{prefix}output and gradients equal PyTorch's"


# --- the API -------------------------------------------------------------------------------------


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _reference_name(f: Callable[..., Any]) -> str:
    module = f.__module__ if f.__module__ != "torch._C._nn" else "torch.nn.functional"
    module = "torch.nn.functional" if module.startswith("torch.nn.functional") else module
    module = "torch" if module.startswith("torch._") or module == "torch" else module
    return f"{module}.{f.__name__}"


def check_function(
    fn: object,
    against: str,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    optional: bool = True,
    wider: bool = True,
) -> CheckReport:
    """Check ``fn`` against PyTorch's ``against`` (a key of :data:`PIECES`, or ``"backprop"``).

    ``fn`` is a ``torch.autograd.Function`` subclass, in either style, with or without a
    ``jvp``, or a plain callable, taking the piece's arguments in PyTorch's order
    (``linear(x, weight, bias)``, ``cross_entropy(input, target)``). ``optional=False`` runs
    only the required checks; ``wider=False`` leaves out the forms beyond the basic one;
    ``seed`` picks the random inputs. See the module docstring for every check.
    """
    if against not in AGAINST:
        raise one_of("against", against, AGAINST)
    _caller(fn)  # a bad fn is an error, not a report
    with warnings.catch_warnings():  # the report says what matters; warnings would bury it
        warnings.simplefilter("ignore")
        return _check(fn, against, torch.device(device), seed, optional, wider)


def _check(
    fn: object, against: str, device: torch.device, seed: int, optional: bool, wider: bool
) -> CheckReport:
    call = _caller(fn)
    files = _source_files(fn)
    if against == "backprop":
        return _check_backprop(fn, files, device, seed)
    piece = PIECES[against]
    run = _Run(fn, call, piece, files, device, seed)
    rows = [
        run.row(FORWARD, True, run.forward),
        run.row(GRADCHECK, True, run.gradcheck),
        run.row(VS_PYTORCH, True, run.vs_pytorch),
        run.row(UNMODIFIED, True, run.unmodified),
        run.row(SHAPES, True, run.shapes),
    ]
    if optional:
        rows += [
            run.row("double backward", False, run.double_backward),
            run.row("forward-mode AD", False, run.forward_ad),
            run.row("vmap", False, run.vmap),
            run.row("float16", False, run.low_precision(torch.float16)),
            run.row("bfloat16", False, run.low_precision(torch.bfloat16)),
        ]
    if wider:
        rows += [run.row(form.label, False, run.wider(form)) for form in piece.wider]
    return CheckReport(_name(fn), _reference_name(piece.reference), rows)


def assert_function(fn: object, against: str, **options: Any) -> CheckReport:
    """:func:`check_function`, raising ``AssertionError`` (the report's table as its message)
    unless every required check passes; the report otherwise, for a closer look."""
    report = check_function(fn, against, **options)
    if not report.passed:
        raise AssertionError(str(report))
    return report


# --- backprop: a manual backward of a whole MLP --------------------------------------------------

BACKPROP_SIZES = (20, 16, 12, 10)
BACKPROP_BATCH = 8
GRADIENTS_VS_AUTOGRAD = "gradients vs autograd"


def _check_backprop(fn: object, files: set[str], device: torch.device, seed: int) -> CheckReport:
    """``fn(model, x, target) -> {parameter name: ∂C/∂parameter}`` for an :class:`MLP`, C the
    mean cross-entropy, against autograd; ``fn`` runs with autograd switched off."""
    call = _caller(fn)
    rows: list[Row] = []

    def setup(act: str) -> tuple[layers.MLP, Tensor, Tensor]:
        gen = torch.Generator().manual_seed(seed)
        model = layers.MLP(
            BACKPROP_SIZES, act, "xavier", generator=gen, dtype=torch.float64, device=device
        )
        x = torch.randn(BACKPROP_BATCH, BACKPROP_SIZES[0], generator=gen, dtype=torch.float64)
        t = torch.randint(0, BACKPROP_SIZES[-1], (BACKPROP_BATCH,), generator=gen)
        return model, x.to(device), t.to(device)

    def gradients() -> tuple[str, str]:
        rtol, atol = TOLERANCES[torch.float64]
        for act in activations.ACTIVATIONS:
            model, x, t = setup(act)
            params = dict(model.named_parameters())
            auto = torch.autograd.grad(F.cross_entropy(model(x), t), list(params.values()))
            with torch.no_grad():  # by hand: autograd is not there to help
                got = call(model, x, t)
            if not isinstance(got, dict):
                return "fail", f"returned {type(got).__name__}, expected a dict of gradients"
            for name, e in zip(params, auto):
                if name not in got:
                    return "fail", f"{act} MLP: no gradient for {name}"
                if msg := differs(f"{act} MLP: gradient for {name}", got[name], e, rtol, atol):
                    g = got[name]
                    if isinstance(g, Tensor) and g.shape == e.shape:
                        if torch.allclose(g, e * BACKPROP_BATCH) or torch.allclose(
                            g, e / BACKPROP_BATCH
                        ):
                            msg += f"\nhint: off by the batch size {BACKPROP_BATCH}: mean vs sum"
                    if (
                        isinstance(g, Tensor)
                        and g.dim() == 2
                        and g.T.shape == e.shape
                        and torch.allclose(g.T, e)
                    ):
                        msg += f"\nhint: the gradient for {name} is transposed"
                    return "fail", msg
        return "pass", f"every parameter, MLP {BACKPROP_SIZES} of each activation, float64"

    def unmodified() -> tuple[str, str]:
        model, x, t = setup("sigmoid")
        before = [x.clone(), t.clone(), *(p.detach().clone() for p in model.parameters())]
        with torch.no_grad():
            call(model, x, t)
        after = [x, t, *(p.detach() for p in model.parameters())]
        if not all(torch.equal(a, b) for a, b in zip(after, before)):
            return "fail", "changed x, the target or a parameter in place"
        return "pass", "x, the target and the parameters are left as they were"

    rows.append(_row(GRADIENTS_VS_AUTOGRAD, gradients, files))
    rows.append(_row(UNMODIFIED, unmodified, files))
    return CheckReport(_name(fn), "autograd (backprop)", rows)


# --- loading a learner's function, and training with it -----------------------------------------


def load(spec: str, option: str = "--function") -> object:
    """The object ``spec`` names: ``FILE.py:NAME`` (a file anywhere) or ``module:NAME`` (an
    importable module). A file that fails to run raises ``ValueError`` naming its line; a
    bad ``spec``, one naming ``option``, the command-line option it came from."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise invalid(option, spec, "FILE.py:NAME or module:NAME")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise invalid(option, spec, f"FILE.py:NAME with an existing file ({where} is not)")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except SyntaxError as e:
            raise ValueError(f"{where}:{e.lineno}: SyntaxError: {e.msg}") from None
        except Exception as e:
            raise ValueError(explain(e, {os.path.abspath(where)})) from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError:
            raise invalid(option, spec, f"an importable module ({where} is not)") from None
    if not hasattr(module, name):
        defined = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")]
        raise invalid(option, spec, f"a name {where} defines: {', '.join(defined)}")
    return getattr(module, name)


def matching_activation(fn: object) -> str | None:
    """The built-in activation whose values ``fn`` computes (on random float64 inputs), or
    None: what a learner's activation stands in for, and is checked against."""
    call = _caller(fn)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    for name in activations.ACTIVATIONS:
        with torch.no_grad():
            got = call(x.clone())
        if differs("", got, PIECES[name].reference(x), *TOLERANCES[torch.float64]) is None:
            return name
    return None


class LearnerError(Exception):
    """An exception raised by calling a learner's code, as one line: its file:line and message."""


def learner_error(exc: BaseException, spec: str) -> str | None:
    """``exc`` in one line when it came from the learner's code that ``spec`` names (a
    :class:`LearnerError`, or a traceback through its file): where, and its message; None when
    it came from elsewhere (a bug of the project's keeps its traceback)."""
    if isinstance(exc, LearnerError):
        return str(exc)
    files = _source_files(load(spec, "--activation"))
    return explain(exc, files) if _raised_in(exc, files) else None


class Activation(torch.nn.Module):
    """A learner's activation (a Function or a callable) as a layer of an MLP; what calling
    it raises becomes a :class:`LearnerError`."""

    def __init__(self, fn: object, name: str) -> None:
        super().__init__()
        self.call, self.name, self.files = _caller(fn), name, _source_files(fn)

    def forward(self, input: Tensor) -> Tensor:
        try:
            return self.call(input)
        except Exception as e:
            raise LearnerError(_where(e, self.files, self.name)) from e

    def extra_repr(self) -> str:
        return self.name


def use_activation(model: torch.nn.Module, fn: object, name: str) -> None:
    """Put ``fn`` in place of every hidden activation of an :class:`MLP` (``act1``, ...)."""
    for child, _ in list(model.named_children()):
        if child.startswith("act"):
            setattr(model, child, Activation(fn, name))


def check_activation(spec: str) -> tuple[object, str, str | None]:
    """``dlconcepts train --activation FILE.py:NAME``: the learner's activation, the built-in
    it stands for (whose name sets the initialization's gain), and one warning line when its
    required checks against that built-in fail (None when they pass)."""
    fn = load(spec, "--activation")
    try:
        name = matching_activation(fn)
    except Exception as e:
        return (
            fn,
            "relu",
            f"warning: {spec} raised on a random input ({_where(e, _source_files(fn), spec)}); "
            "training with it anyway",
        )
    if name is None:
        listed = ", ".join(activations.ACTIVATIONS)
        return (
            fn,
            "relu",
            (
                f"warning: {spec} computes none of {listed}; training with it anyway "
                "(initialized as for relu)"
            ),
        )
    report = check_function(fn, name, optional=False, wider=False)
    if report.passed:
        return fn, name, None
    failed = report.failed()
    return (
        fn,
        name,
        (
            f"warning: {spec} fails {len(failed)} required check{'s' * (len(failed) > 1)} against "
            f"{name} ({', '.join(failed)}; dlconcepts check --function {spec} --against {name} "
            "says why); training with it anyway"
        ),
    )


class UseActivation(training.Callback):
    """A :func:`training.fit` callback that puts a learner's activation in every hidden layer
    of the model ``fit`` built, before the first step (its config names the built-in the
    activation stands for: the same initialization, the same run otherwise)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.fn = load(spec, "--activation")  # again in each process of a data-parallel run

    def start(self, loop: training.Loop) -> None:
        use_activation(loop.model, self.fn, self.spec)
