"""``dlconcepts graph``: the autograd graph of one forward pass and cost of an MLP, as Graphviz DOT.

The nodes are the backward nodes of our hand-written Functions (``LinearFunctionBackward``,
``SigmoidFunctionBackward``, ``MSEFunctionBackward``, ...), the parameters with their names
and shapes, and the tensors each node saved for its backward; ``--impl torch`` draws the
graph of the same network built from torch.nn, for comparison. ``--out PATH`` writes
``PATH.dot`` and, where Graphviz's ``dot`` program is installed (Debian: ``apt-get install
graphviz``), ``PATH.svg`` and ``PATH.png`` too; ``g``, ``g.dot``, ``g.svg`` and ``g.png`` all
mean these three files, but ``g.svg`` or ``g.png`` asks for a picture, so without Graphviz it
is refused (use ``g.dot``). A ``PATH`` that is a folder (one that exists, or one written with
a trailing ``/``) gets ``graph.dot`` and the others inside it. The emitter is ours
(:mod:`dlconcepts.autograd_graph`): it walks ``grad_fn.next_functions`` from the cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import autograd_graph, backprop, layers


def torch_squared_error(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Σ ½ (t − o)² over the batch, by torch."""
    return torch.nn.functional.mse_loss(o, t, reduction="sum") / 2


# torch's own version of each cost in backprop.OUTPUTS: the sum over the batch of E
TORCH_TOTALS: dict[tuple[str | None, str], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    (None, "cross-entropy"): lambda z, t: torch.nn.functional.cross_entropy(z, t, reduction="sum"),
    ("sigmoid", "cross-entropy"): lambda z, t: torch.nn.functional.binary_cross_entropy_with_logits(
        z, t, reduction="sum"
    ),
    (None, "squared-error"): torch_squared_error,
    ("sigmoid", "squared-error"): lambda z, t: torch_squared_error(torch.sigmoid(z), t),
}


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser(
        "graph",
        __doc__,
        [_common.network_options(), _common.options("seed", "impl", seed=1, impl="custom")],
    )
    p.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="writes OUT.dot (and OUT.svg, OUT.png with Graphviz), or graph.dot inside OUT "
        "when it is a folder; OUT.svg or OUT.png needs Graphviz (default: runs/graph/IMPL)",
    )
    return p


def out_path(text: str) -> Path:
    """``--out``: where the files go, without their suffix. ``g``, ``g.dot``, ``g.svg`` and
    ``g.png`` mean ``g.dot`` (with ``g.svg`` and ``g.png`` where Graphviz is installed); a
    folder (``g/``, ``.``, ``..``, ``/``, or any folder that exists) means ``graph.dot``
    inside it. Refused at once if it cannot be written, or if it names a picture that
    cannot be drawn for want of Graphviz."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file or folder to write into, got {text!r}")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir():
        path = path / "graph"
    elif path.suffix in (".svg", ".png") and shutil.which("dot") is None:
        raise argparse.ArgumentTypeError(
            f"{text} needs Graphviz's dot to render; install graphviz "
            f"(Debian: apt-get install graphviz) or use --out {path.with_suffix('.dot')}"
        )
    elif path.suffix in (".dot", ".svg", ".png"):
        path = path.with_suffix("")
    why = _common.unwritable(path.with_name(path.name + ".dot"), folder=False)
    if why is not None:
        raise argparse.ArgumentTypeError(
            f"expected a file that can be written, got {text!r}: {why}"
        )
    return path


def cost_graph(args: argparse.Namespace) -> str:
    """The DOT text of one example's forward pass and cost, for the network ``args`` asks for."""
    gen = torch.Generator().manual_seed(args.seed)
    model = layers.MLP(args.sizes, args.activation, "xavier", args.impl, generator=gen)
    x = torch.randn(1, args.sizes[0], generator=gen)
    key = (args.output_activation, args.loss)
    if key == (None, "cross-entropy"):
        target = torch.zeros(1, dtype=torch.long)  # class 0
    else:
        target = torch.rand(1, args.sizes[-1], generator=gen)
    if args.impl == "custom":
        cost = backprop.cost(model, x, target, output_activation=key[0], loss=key[1])
    else:
        cost = TORCH_TOTALS[key](model(x), target) / x.shape[0]
    net = "-".join(map(str, args.sizes))
    output = backprop.output_layer(*key)
    title = f"{net} MLP ({args.impl}), {args.activation}; {output.output}, {output.loss}"
    return autograd_graph.to_dot(cost, dict(model.named_parameters()), title=title)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or Path("runs", "graph", args.impl)
    dot_path = out.with_name(out.name + ".dot")
    try:
        dot_path.parent.mkdir(parents=True, exist_ok=True)
        dot_path.write_text(cost_graph(args))
    except OSError as e:
        return _common.error(f"--out {out}: cannot write {dot_path}: {e.strerror}")
    print(f"wrote {dot_path}")
    dot = shutil.which("dot")
    if dot is None:
        print("Graphviz's dot is not installed (Debian: apt-get install graphviz): no SVG/PNG")
        return 0
    for fmt in ("svg", "png"):
        path = out.with_name(f"{out.name}.{fmt}")
        done = subprocess.run(
            [dot, f"-T{fmt}", "-Gdpi=110", str(dot_path), "-o", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            message = (done.stderr.strip().splitlines() or ["failed"])[0]
            return _common.error(f"dot -T{fmt} {dot_path}: {message}")
        print(f"wrote {path}")
    return 0
