"""The autograd graph of a computation, as Graphviz DOT text, by our own walk of it.

Every tensor computed from one that requires a gradient carries a ``grad_fn``: the backward
node of the operation that made it. Each node lists, in ``next_functions``, the nodes of its
inputs, so the nodes form a graph from the cost back to the parameters, where
``AccumulateGrad`` nodes add the gradients into ``.grad``. ``cost.backward()`` walks this
graph from the cost, a node only once every node that feeds it a gradient has run.

For our hand-written Functions the nodes are named after them (``LinearFunctionBackward``,
``SigmoidFunctionBackward``, ``CrossEntropyFunctionBackward``, ...); torch's own operations
give ``AddmmBackward0``, ``SigmoidBackward0`` and so on. Saved tensors are what a node keeps
for its backward: ``saved_tensors`` on our Functions' nodes, the ``_saved_*`` attributes on
torch's (as PyTorch's "Autograd mechanics" notes describe them).

(torchviz draws the same graphs, but it fails on ``LinearFunction``, which saves ``None``
for an input whose gradient is not needed, and it needs ``distutils``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

# node styles: the cost, a backward node, a parameter (AccumulateGrad), a saved tensor
STYLE = {
    "cost": 'shape=box, style=filled, fillcolor="#c6e5b3"',
    "function": 'shape=box, style="rounded,filled", fillcolor="#e8e8e8"',
    "parameter": 'shape=box, style=filled, fillcolor="#cde3f5"',
    "saved": 'shape=box, style=filled, fillcolor="#fbe0c3", fontsize=10',
}


def shape(t: Tensor) -> str:
    """A tensor's shape as Python writes a tuple: ``(2, 3)``, ``(2,)``, ``()``."""
    return str(tuple(t.shape))


def saved_tensors(node: Any) -> list[Tensor | None]:
    """What ``node`` keeps for its backward: ``None`` where a Function saved nothing."""
    if hasattr(node, "saved_tensors"):  # one of our autograd.Functions
        return list(node.saved_tensors)
    return [
        getattr(node, name)
        for name in dir(node)
        if name.startswith("_saved_") and isinstance(getattr(node, name), Tensor)
    ]


def nodes(cost: Tensor) -> list[Any]:
    """Every backward node behind ``cost``, each once, in the order a walk from the cost
    meets them (depth first, following ``next_functions``)."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [cost.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:  # None: an input that needs no gradient
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(parent for parent, _ in reversed(node.next_functions))
    return found


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(cost: Tensor, parameters: Mapping[str, Tensor], *, title: str = "") -> str:
    """The graph behind ``cost`` as DOT text.

    ``parameters`` names the leaves (``dict(model.named_parameters())``). Arrows point the
    way the forward pass went, from the parameters to the cost; ``backward()`` walks them
    the other way. Nodes are numbered in the order the walk from the cost meets them.
    """
    if cost.grad_fn is None:
        raise ValueError("cost: expected a tensor computed from parameters, got a leaf")
    names = {id(p): name for name, p in parameters.items()}
    lines = [
        "digraph autograd {",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    if title:
        lines.append(f"  labelloc=t; label={_quote(title)};")
    lines.append(f"  cost [label={_quote('cost C ' + shape(cost))}, {STYLE['cost']}];")

    ids = {id(node): f"n{i}" for i, node in enumerate(nodes(cost))}
    lines.append(f"  {ids[id(cost.grad_fn)]} -> cost;")
    for node in nodes(cost):
        me = ids[id(node)]
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf, a parameter
            leaf = node.variable
            label = f"{names.get(id(leaf), 'leaf')}\n{shape(leaf)}"
            lines.append(f"  {me} [label={_quote(label)}, {STYLE['parameter']}];")
            continue
        lines.append(f"  {me} [label={_quote(type(node).__name__)}, {STYLE['function']}];")
        for i, saved in enumerate(saved_tensors(node)):
            what = "None" if saved is None else shape(saved)
            lines.append(f"  {me}_s{i} [label={_quote('saved ' + what)}, {STYLE['saved']}];")
            lines.append(f"  {me}_s{i} -> {me} [style=dashed, arrowhead=none];")
        for parent, _ in node.next_functions:
            if parent is not None:
                lines.append(f"  {ids[id(parent)]} -> {me};")
    lines.append("}")
    return "\n".join(lines) + "\n"
