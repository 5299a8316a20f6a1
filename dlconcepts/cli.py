"""``dlconcepts COMMAND [options]``: one entry point for every job.

Each command is a module of ``dlconcepts.commands`` with a ``main(argv) -> int``; this
file only picks the module and imports it when it is run, so ``dlconcepts check`` does not
pay for importing what ``dlconcepts plot`` needs, and ``dlconcepts --help`` imports nothing
(not even torch). Ctrl-C ends any command with status 130 and no traceback, and so does a
closed pipe (``dlconcepts explain | head``), with status 141.
"""

from __future__ import annotations

import importlib
import os
import sys

# command -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": (
        "dlconcepts.commands.check",
        "gradcheck every hand-written piece against PyTorch and print the table",
    ),
    "train": ("dlconcepts.commands.train", "train an MLP on MNIST (the main job)"),
    "compare": (
        "dlconcepts.commands.compare",
        "train custom and built-in models side by side on MNIST",
    ),
    "bench": ("dlconcepts.commands.bench", "benchmark hand-written pieces against the built-ins"),
    "study": ("dlconcepts.commands.study", "activation x initialization grid on MNIST"),
    "signals": (
        "dlconcepts.commands.signals",
        "activation and gradient statistics through a deep MLP",
    ),
    "symmetry": (
        "dlconcepts.commands.symmetry",
        "why zero init fails: hidden units stay identical",
    ),
    "plot": ("dlconcepts.commands.plot", "draw the pictures (needs the 'plot' extra)"),
    "explain": (
        "dlconcepts.commands.explain",
        "one training step of a small network, every number beside its formula",
    ),
    "graph": ("dlconcepts.commands.graph", "the autograd graph of an MLP's cost, as Graphviz DOT"),
    "predict": ("dlconcepts.commands.predict", "classify your own digit images with a checkpoint"),
    "exercise": ("dlconcepts.commands.exercise", "a starter file to write a backward pass by hand"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: dlconcepts COMMAND [options]   (dlconcepts COMMAND --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"dlconcepts: command: expected one of {', '.join(COMMANDS)}, got {name!r}",
            file=sys.stderr,
        )
        print(usage(), file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:  # Ctrl-C: a command says what it keeps; here, no traceback
        print(f"dlconcepts {name}: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports Ctrl-C
    except BrokenPipeError:  # `dlconcepts explain | head`: the reader has all it wanted
        # the standard library's recipe: what is still buffered goes nowhere, not to a
        # traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
