"""What the commands share: their options, the checks on those options, the choice of device,
and the writing of JSON and tables.

Every option is declared once, in :data:`OPTIONS`; a command takes the ones it needs as an
argparse *parent* (``parents=[options("hidden", "lr", lr=0.05)]``), with its own defaults.
Each option is checked by argparse itself (``type``, ``choices``), so a bad value ends in one
line naming that value and a non-zero exit, never a traceback::

    dlconcepts train: error: argument --hidden: expected positive ints like 256,128, got '800,-1'
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from dlconcepts import choices


def lazy(name: str) -> ModuleType:
    """``import name``, run the first time one of its attributes is used: the standard
    library's recipe (``importlib.util.LazyLoader``). The commands import torch and the
    library this way, so ``dlconcepts COMMAND --help`` imports neither and takes no time."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as an import does: dlconcepts.training is an attribute of dlconcepts
        setattr(sys.modules[parent], child, module)
    return module


torch = lazy("torch")
data = lazy("dlconcepts.data")
training = lazy("dlconcepts.training")


def _bad(value: str, expected: str) -> argparse.ArgumentTypeError:
    # argparse puts "argument --NAME: " in front: the project's "name: expected ..., got ..."
    return argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(text, "a positive int") from None
    if value < 1:
        raise _bad(text, "a positive int")
    return value


def _number(text: str, expected: str, ok: Callable[[float], bool]) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(text, expected) from None
    if not (math.isfinite(value) and ok(value)):
        raise _bad(text, expected)
    return value


def positive_float(text: str) -> float:
    return _number(text, "a positive number", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    return _number(text, "a number >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    return _number(text, "a finite number", lambda v: True)


def int_list(text: str) -> tuple[int, ...]:
    """``"256,128"`` -> ``(256, 128)``: one or more positive ints, comma-separated."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise _bad(text, "positive ints like 256,128") from None
    if any(v < 1 for v in values):
        raise _bad(text, "positive ints like 256,128")
    return values


def layer_sizes(text: str) -> tuple[int, ...]:
    """``"2,2,2"`` -> ``(2, 2, 2)``: an MLP's layer sizes, input to output, at least two."""
    sizes = int_list(text)
    if len(sizes) < 2:
        raise _bad(text, "at least 2 sizes, input to output, like 2,2,2")
    return sizes


def output_activation(text: str) -> str | None:
    """``none`` (the output is the logits z) -> None, or ``sigmoid``."""
    if text not in ("none", "sigmoid"):
        raise _bad(text, "none or sigmoid")
    return None if text == "none" else text


def name_list(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for a comma-separated subset of ``choices``, in the order given."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(","))
        bad = [n for n in names if n not in choices]
        if bad or not names:
            listed = ", ".join(choices)
            raise _bad(bad[0] if bad else text, f"comma-separated names from {listed}")
        return names

    return parse


def device_name(text: str) -> str:
    """``auto``, ``cpu`` or ``cuda``; ``cuda`` only where a CUDA device is there."""
    if text not in choices.DEVICES:
        raise _bad(text, f"one of {', '.join(choices.DEVICES)}")
    if text == "cuda" and not torch.cuda.is_available():
        raise _bad(text, "'cpu' or 'auto' on this machine: no CUDA device is available")
    return text


# Every shared option, declared once: flag -> add_argument keywords (without the default,
# which each command gives through options(..., name=default)).
OPTIONS: dict[str, dict[str, Any]] = {
    "hidden": {"type": int_list, "help": "hidden layer sizes, comma-separated"},
    "epochs": {"type": positive_int, "help": "epochs"},
    "batch-size": {"type": positive_int, "help": "batch size"},
    "optimizer": {"choices": choices.OPTIMIZERS, "help": "optimizer"},
    "lr": {"type": positive_float, "help": "learning rate"},
    "seed": {"type": int, "help": "random seed"},
    "device": {
        "type": device_name,
        "help": "device: auto is CUDA where there is one, else the CPU",
    },
    "dtype": {"choices": choices.DTYPES, "help": "floating-point type"},
    "data-dir": {"help": "data folder (default: $DLCONCEPTS_DATA or the repo's data/)"},
    "limit-train": {"type": positive_int, "help": "use only the first N training examples"},
    "dry-run": {"action": "store_true", "help": "a few batches only (what CI runs)"},
}

# The initializations the experiments compare: name -> TrainConfig/MLP keywords.
# "random" is N(0, std^2): small (0.01) vanishes through depth, large (1.0) explodes.
INITS: dict[str, dict[str, Any]] = {
    "zero": {"init": "zero"},
    "random-small": {"init": "random", "init_std": 0.01},
    "random-large": {"init": "random", "init_std": 1.0},
    "xavier": {"init": "xavier"},
    "he": {"init": "he"},
}

_DEFAULTS = choices.TrainConfig()
DEFAULTS: dict[str, Any] = {
    "hidden": _DEFAULTS.hidden,
    "epochs": _DEFAULTS.epochs,
    "batch-size": _DEFAULTS.batch_size,
    "optimizer": _DEFAULTS.optimizer,
    "lr": _DEFAULTS.lr,
    "seed": _DEFAULTS.seed,
    "device": "auto",
    "dtype": _DEFAULTS.dtype,
    "data-dir": None,
    "limit-train": None,
    "dry-run": False,
}


def as_typed(default: Any) -> Any:
    """A default as it is typed on the command line: (256, 128) becomes "256,128", so
    ``--help`` shows it so and argparse runs it through the option's ``type``."""
    return ",".join(map(str, default)) if isinstance(default, tuple) else default


def options(*names: str, **defaults: Any) -> argparse.ArgumentParser:
    """A parent parser holding the shared options ``names`` (all of them when none is named).

    ``defaults`` override the training defaults by dest (``batch_size=64``). Build one per
    command: argparse's parents share their actions, so one parent's defaults are its own.
    """
    parent = argparse.ArgumentParser(add_help=False)
    for name in names or OPTIONS:
        dest = name.replace("-", "_")
        default = as_typed(defaults.pop(dest, DEFAULTS[name]))
        parent.add_argument(f"--{name}", default=default, **OPTIONS[name])
    if defaults:
        raise TypeError(f"options: no shared option for {', '.join(defaults)}")
    return parent


def parser(
    command: str, doc: str | None, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """A command's parser: ``dlconcepts COMMAND``, the first line of its module docstring as
    the description, and every default shown in ``--help``."""
    description = (doc or "").strip().split("\n")[0].replace("``", "")
    return argparse.ArgumentParser(
        prog=f"dlconcepts {command}",
        description=description,
        parents=list(parents),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def grid_options() -> argparse.ArgumentParser:
    """A parent parser with ``--activations`` and ``--inits``: the activation × :data:`INITS`
    grid of the initialization experiments (``study``, ``signals``), all of it by default."""
    parent = argparse.ArgumentParser(add_help=False)
    for flag, names in (
        ("--activations", choices.ACTIVATIONS),
        ("--inits", tuple(INITS)),
    ):
        parent.add_argument(
            flag, type=name_list(names), default=",".join(names), help="comma-separated"
        )
    return parent


def network_options(sizes: str | None = "2,2,2") -> argparse.ArgumentParser:
    """A parent parser with the small network that ``explain`` and ``graph`` show: its
    ``--sizes``, hidden ``--activation``, ``--output-activation`` and ``--loss``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--sizes", type=layer_sizes, default=sizes, help="layer sizes, input to output"
    )
    parent.add_argument(
        "--activation",
        choices=choices.ACTIVATIONS,
        default="sigmoid",
        help="activation f of the hidden layers",
    )
    parent.add_argument(
        "--output-activation",
        type=output_activation,
        default="sigmoid",
        help="none (o = z) or sigmoid (o = σ(z), for binary and multi-label targets)",
    )
    parent.add_argument(
        "--loss",
        choices=choices.LOSSES,
        default="squared-error",
        help="squared-error: E = Σₖ ½ (tₖ − oₖ)²; cross-entropy: softmax cross-entropy on "
        "the logits, or binary cross-entropy with a sigmoid output",
    )
    return parent


def out_option(command: str, what: str) -> argparse.ArgumentParser:
    """A parent parser with ``--out``, the folder for ``what``: ``runs/COMMAND`` under the
    current directory unless given, so a command writes into the repository only when asked
    (``--out docs/results``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--out", type=Path, default=Path("runs", command), help=f"folder for {what}"
    )
    return parent


def checkpoint_path(path: Path) -> Path:
    """A ``--checkpoint``: a `dlconcepts train --out DIR` folder means its checkpoint.pt."""
    return path / training.CHECKPOINT if path.is_dir() else path


def device(name: str) -> torch.device:
    """The torch device for an already checked ``--device`` value."""
    return training.resolve_device(name)


def error(message: object) -> int:
    """Print ``error: message`` on stderr; the exit status of a failed run."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def load_splits(
    **kwargs: Any,
) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    """``data.load_splits(**kwargs)``; a missing data file, or a ``--limit-train`` beyond the
    data (a ``ValueError``), ends the command with its message instead of a traceback."""
    try:
        return data.load_splits(**kwargs)
    except (data.DataError, ValueError) as e:
        raise SystemExit(error(e)) from None


def splits_for(
    cfg: training.TrainConfig, device: torch.device
) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    """:func:`load_splits` of what ``cfg`` asks for: dataset, folder, dtype and limits."""
    return load_splits(
        dataset=cfg.dataset,
        data_dir=cfg.data_dir,
        download=cfg.download,
        device=device,
        dtype=training.DTYPES[cfg.dtype],
        limit_train=cfg.limit_train,
        limit_test=cfg.limit_test,
    )


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as JSON at ``path``, written atomically; returns the path."""
    path = Path(path)
    training.write_json(path, obj)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: int = 1) -> str:
    """A Markdown table; every column from index ``right`` on is right-aligned (numbers)."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: int = 1) -> str:
    """A plain-text table with aligned columns; numbers (from column ``right`` on) right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < right else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    return "\n".join(line(row) for row in cells)
