"""What the commands share: their options, the checks on those options, the choice of device,
the loading of the data, and the writing of JSON and tables.

Every shared option is declared once, in :data:`OPTIONS`; a command takes the ones it needs as
an argparse *parent* (``parents=[options("hidden", "lr", lr=0.05)]``), with its own defaults.
Each option is checked by argparse itself (``type``, ``choices``), so a bad value ends in one
line naming that value and a non-zero exit, never a traceback::

    dlconcepts train: error: argument --hidden: expected positive ints like 256,128, got '800,-1'

An output (``--out``, ``--json``) is checked the same way, before any work: a path that
cannot be written is refused at once, not after minutes of training.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from dlconcepts import choices


class _RunNow(importlib.abc.Loader):
    """What a lazy module runs with when it is first used: its own loader, with the lazy
    imports of the ``with`` block switched off, so that its own imports are ordinary ones."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = self.loader  # as an ordinary import leaves it
        finders = [f for f in sys.meta_path if isinstance(f, _LazyFinder)]
        for finder in finders:
            sys.meta_path.remove(finder)
        try:
            self.loader.exec_module(module)
        finally:
            sys.meta_path[:0] = finders


class _LazyLoader(importlib.util.LazyLoader):
    """The standard library's ``LazyLoader``, running the module through :class:`_RunNow`."""

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__  # read before the module turns lazy: reading it then runs it
        super().exec_module(module)
        spec.loader = _RunNow(self.loader)


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds a module as the other finders do, and loads it lazily: its code runs the first
    time one of its attributes is used."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            # only Python source can wait: an extension module runs as it is created
            if isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                spec.loader = _LazyLoader(spec.loader)
            return spec
        return None


@contextlib.contextmanager
def lazy_imports() -> Iterator[None]:
    """Inside ``with lazy_imports():``, an ``import`` binds its module at once but runs it the
    first time it is used (the standard library's ``importlib.util.LazyLoader``). The
    commands import torch and the library this way, so ``dlconcepts COMMAND --help`` imports
    neither and takes no time, and the imports stay ordinary statements that a linter checks
    (a module still waiting to run is imported once: importing it again runs it)::

        with _common.lazy_imports():
            import torch
            from dlconcepts import training
    """
    finder = _LazyFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


if TYPE_CHECKING:  # the functions below import them when they run: --help needs neither
    import torch

    from dlconcepts import data, training


def _bad(value: str, expected: str) -> argparse.ArgumentTypeError:
    # argparse puts "argument --NAME: " in front: the project's "name: expected ..., got ..."
    return argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")


def _integer(text: str, expected: str, ok: Callable[[int], bool]) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(text, expected) from None
    if not ok(value):
        raise _bad(text, expected)
    return value


def positive_int(text: str) -> int:
    return _integer(text, "a positive int", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    return _integer(text, "an int >= 0", lambda v: v >= 0)


def int_up_to(largest: int) -> Callable[[str], int]:
    """An argparse type for an int from 1 to ``largest`` (the examples a split holds)."""

    def parse(text: str) -> int:
        return _integer(text, f"an int from 1 to {largest}", lambda v: 1 <= v <= largest)

    return parse


# torch takes a seed below 2**64; each epoch's shuffle is seeded with seed·100,003 + epoch
# (training.epoch_generator), so a seed stays below 2**32 for that to fit.
SEED_MAX = 2**32 - 1


def seed(text: str) -> int:
    """A random seed: an int from 0 to :data:`SEED_MAX`."""
    return _integer(text, f"an int from 0 to {SEED_MAX}", lambda v: 0 <= v <= SEED_MAX)


def _number(text: str, expected: str, ok: Callable[[float], bool]) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(text, expected) from None
    if not (math.isfinite(value) and ok(value)):
        raise _bad(text, expected)
    largest = choices.FLOAT_MAX["float32"]  # beyond it, a float32 tensor holds inf
    if abs(value) > largest:
        raise _bad(text, f"{expected} within float32's range (at most {largest:.4g})")
    return value


def positive_float(text: str) -> float:
    return _number(text, "a positive number", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    return _number(text, "a number >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    return _number(text, "a finite number", lambda v: True)


def momentum(text: str) -> float:
    """SGD's momentum: from 0 (none) to below 1 (at 1 and beyond the steps add up, unbounded)."""
    return _number(text, "a number from 0 to below 1", lambda v: 0 <= v < 1)


T = TypeVar("T")


def comma_list(item: Callable[[str], T], expected: str) -> Callable[[str], tuple[T, ...]]:
    """The one list parser: an argparse type for ``"a,b,c"``, each part read by ``item``
    (one of the types above, or any function that raises ``ValueError`` or
    ``argparse.ArgumentTypeError``); a bad part refuses the text, naming that part."""

    def parse(text: str) -> tuple[T, ...]:
        parts = text.split(",")
        values = []
        for part in parts:
            try:
                values.append(item(part.strip()))
            except (ValueError, argparse.ArgumentTypeError):
                got = f"{part!r} in {text!r}" if len(parts) > 1 else repr(text)
                raise argparse.ArgumentTypeError(f"expected {expected}, got {got}") from None
        return tuple(values)

    return parse


int_list = comma_list(positive_int, "positive ints like 256,128")
seed_list = comma_list(seed, f"ints from 0 to {SEED_MAX} like 1,2,3")
number_list = comma_list(finite_float, "finite numbers like 0.05,0.1")


def layer_sizes(text: str) -> tuple[int, ...]:
    """``"2,2,2"`` -> ``(2, 2, 2)``: an MLP's layer sizes, input to output, at least two."""
    sizes = comma_list(positive_int, "positive ints like 2,2,2")(text)
    if len(sizes) < 2:
        raise _bad(text, "at least 2 sizes, input to output, like 2,2,2")
    return sizes


def output_activation(text: str) -> str | None:
    """``none`` (the output is the logits z) -> None, or ``sigmoid``."""
    if text not in ("none", "sigmoid"):
        raise _bad(text, "none or sigmoid")
    return None if text == "none" else text


def name_list(names: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type for a comma-separated subset of ``names``, in the order given."""

    def name(text: str) -> str:
        if text not in names:
            raise ValueError(text)
        return text

    return comma_list(name, f"comma-separated names from {', '.join(names)}")


def device_name(text: str) -> str:
    """``auto``, ``cpu`` or ``cuda``; ``cuda`` only where a CUDA device is there."""
    if text not in choices.DEVICES:
        raise _bad(text, f"one of {', '.join(choices.DEVICES)}")
    import torch

    if text == "cuda" and not torch.cuda.is_available():
        raise _bad(text, choices.NO_CUDA)
    return text


# --- outputs: checked before any work ----------------------------------------------------


def unwritable(path: Path, *, folder: bool) -> str | None:
    """Why a folder (``folder=True``) or a file could not be written at ``path``; None if it
    can. Nothing is created: the nearest existing folder on the way must be writable."""
    if path.exists() and path.is_dir() != folder:
        return f"{path} is a {'file' if folder else 'folder'}"
    above = path if folder else path.parent
    while not above.exists():
        if above.is_symlink():  # a link to nowhere
            return f"{above} is a broken link"
        above = above.parent
    if not above.is_dir():
        return f"{above} is a file, not a folder"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"{above}: permission denied"
    return None


def _output(text: str, folder: bool) -> Path:
    what = "a folder" if folder else "a file"
    if not text.strip():
        raise _bad(text, f"{what} to write into" if folder else "a file to write")
    path = Path(text)
    why = unwritable(path, folder=folder)
    if why is not None:
        raise argparse.ArgumentTypeError(
            f"expected {what} that can be written, got {text!r}: {why}"
        )
    return path


def out_folder(text: str) -> Path:
    """An argparse type for an output folder: it exists or can be created, and is writable."""
    return _output(text, folder=True)


def out_file(text: str) -> Path:
    """An argparse type for an output file: not a folder, in a folder that can be written."""
    return _output(text, folder=False)


# --- the options -------------------------------------------------------------------------

# Every shared option, declared once: flag -> add_argument keywords (without the default,
# which each command gives through options(..., name=default)).
OPTIONS: dict[str, dict[str, Any]] = {
    "hidden": {"type": int_list, "help": "hidden layer sizes, comma-separated"},
    "activation": {"choices": choices.ACTIVATIONS, "help": "activation of the hidden layers"},
    "impl": {
        "choices": choices.IMPLS,
        "help": "custom: the hand-written pieces; torch: PyTorch's built-ins",
    },
    "epochs": {"type": positive_int, "help": "epochs"},
    "batch-size": {"type": positive_int, "help": "batch size"},
    "optimizer": {"choices": choices.OPTIMIZERS, "help": "optimizer"},
    "lr": {"type": positive_float, "help": "learning rate"},
    "momentum": {
        "type": momentum,
        "action": "store_typed",
        "help": "SGD momentum, from 0 to below 1 (Adam has none: given with --optimizer adam, "
        "a warning says it is not used)",
    },
    "seed": {"type": seed, "help": f"random seed, from 0 to {SEED_MAX}"},
    "device": {
        "type": device_name,
        "help": "device: auto is CUDA where there is one, else the CPU",
    },
    "dtype": {"choices": choices.DTYPES, "help": "floating-point type"},
    "data-dir": {"help": "data folder (default: $DLCONCEPTS_DATA or the repo's data/)"},
    "limit-train": {
        "type": int_up_to(choices.TRAIN_EXAMPLES),
        "metavar": "N",
        "help": f"use only the first N training examples (at most {choices.TRAIN_EXAMPLES})",
    },
    "limit-test": {
        "type": int_up_to(choices.TEST_EXAMPLES),
        "metavar": "N",
        "help": f"use only the first N test examples (at most {choices.TEST_EXAMPLES})",
    },
    "mnist-index": {"type": non_negative_int, "metavar": "I", "help": "MNIST test digit I"},
    "json": {"type": out_file, "metavar": "FILE", "help": "also write the results to FILE"},
    "no-progress": {
        "action": "store_true",
        "help": "no progress bars (they are drawn only when stderr is a terminal)",
    },
    "dry-run": {
        "action": "store_true",
        "help": "only check that the command runs, on the smallest sizes (what CI runs; "
        "its numbers mean nothing)",
    },
}

_DEFAULTS = choices.TrainConfig()
DEFAULTS: dict[str, Any] = {
    "hidden": _DEFAULTS.hidden,
    "activation": _DEFAULTS.activation,
    "impl": _DEFAULTS.impl,
    "epochs": _DEFAULTS.epochs,
    "batch-size": _DEFAULTS.batch_size,
    "optimizer": _DEFAULTS.optimizer,
    "lr": _DEFAULTS.lr,
    "momentum": _DEFAULTS.momentum,
    "seed": _DEFAULTS.seed,
    "device": "auto",
    "dtype": _DEFAULTS.dtype,
    "data-dir": None,
    "limit-train": None,
    "limit-test": None,
    "mnist-index": None,
    "json": None,
    "no-progress": False,
    "dry-run": False,
}

# The one --dry-run policy: whatever a command trains, a dry run trains 1 epoch of at most
# DRY_RUN_STEPS batches on at most DRY_RUN_EXAMPLES training and test examples (fewer where
# --limit-train or --limit-test asks), so that every line of the command runs in seconds.
DRY_RUN_STEPS = 5
DRY_RUN_EXAMPLES = 1000

# The initializations the experiments compare: name -> TrainConfig/MLP keywords.
# "random" is N(0, std^2): small (0.01) vanishes through depth, large (1.0) explodes.
INITS: dict[str, dict[str, Any]] = {
    "zero": {"init": "zero"},
    "random-small": {"init": "random", "init_std": 0.01},
    "random-large": {"init": "random", "init_std": 1.0},
    "xavier": {"init": "xavier"},
    "he": {"init": "he"},
}


def as_typed(default: Any) -> Any:
    """A default as it is typed on the command line: (256, 128) becomes "256,128", so
    ``--help`` shows it so and argparse runs it through the option's ``type``."""
    return ",".join(map(str, default)) if isinstance(default, tuple) else default


class StoreTyped(argparse.Action):
    """``store``, noting the option in ``namespace.typed``: typed, not left at its default
    (a default value and the same value typed look alike afterwards)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.typed = {*getattr(namespace, "typed", ()), self.dest}


def warn_unused(args: argparse.Namespace, optimizer: str) -> None:
    """One warning line when ``--momentum`` is typed for an optimizer that has none (Adam's
    moving averages have their own β₁, β₂), rather than ignoring it without a word."""
    if "momentum" in getattr(args, "typed", ()) and optimizer != "sgd":
        print(f"warning: --momentum is not used by --optimizer {optimizer}", file=sys.stderr)


def options(*names: str, **defaults: Any) -> argparse.ArgumentParser:
    """A parent parser holding the shared options ``names``.

    ``defaults`` override the training defaults by dest (``batch_size=64``). Build one per
    command: argparse's parents share their actions, so one parent's defaults are its own.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.register("action", "store_typed", StoreTyped)
    for name in names:
        dest = name.replace("-", "_")
        default = as_typed(defaults.pop(dest, DEFAULTS[name]))
        parent.add_argument(f"--{name}", default=default, **OPTIONS[name])
    if defaults:
        raise TypeError(f"options: no shared option for {', '.join(defaults)}")
    return parent


def dry_run(cfg: choices.TrainConfig) -> choices.TrainConfig:
    """``cfg`` cut down as the one ``--dry-run`` policy says: 1 epoch of at most
    :data:`DRY_RUN_STEPS` batches, at most :data:`DRY_RUN_EXAMPLES` examples of each split."""
    return dataclasses.replace(
        cfg,
        epochs=1,
        max_steps=DRY_RUN_STEPS,
        limit_train=min(cfg.limit_train or DRY_RUN_EXAMPLES, DRY_RUN_EXAMPLES),
        limit_test=min(cfg.limit_test or DRY_RUN_EXAMPLES, DRY_RUN_EXAMPLES),
    )


def train_config(
    args: argparse.Namespace, base: choices.TrainConfig | None = None, **fixed: Any
) -> choices.TrainConfig:
    """``base`` (the training defaults if None) with what the shared options in ``args`` set
    (an option's dest is the field it sets: ``--batch-size`` sets ``batch_size``) and the
    command's ``fixed`` fields, cut down by the one policy under ``--dry-run``. A combination
    that ``TrainConfig`` refuses (Adam's 10·lr beyond the dtype's range) raises ValueError."""
    fields = {f.name for f in dataclasses.fields(choices.TrainConfig)}
    given = {
        dest: getattr(args, dest)
        for dest in (name.replace("-", "_") for name in OPTIONS)
        if dest in fields and hasattr(args, dest)
    }
    cfg = dataclasses.replace(base or choices.TrainConfig(), **given, **fixed)
    warn_unused(args, cfg.optimizer)
    return dry_run(cfg) if getattr(args, "dry_run", False) else cfg


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help, as it would be typed (``0.05,0.1``,
    ``runs/study runs/signals``); none where there is nothing to show (no default, a flag
    that is off) or where the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or "default" in text
        ):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(map(str, default))
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def parser(
    command: str, doc: str | None, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """A command's parser: ``dlconcepts COMMAND``, the first line of its module docstring as
    the description, and every default shown in ``--help`` as it would be typed."""
    description = (doc or "").strip().split("\n")[0].replace("``", "")
    return argparse.ArgumentParser(
        prog=f"dlconcepts {command}",
        description=description,
        parents=list(parents),
        formatter_class=HelpFormatter,
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


def network_options(
    sizes: str | None = "2,2,2", sizes_help: str = "layer sizes, input to output"
) -> argparse.ArgumentParser:
    """A parent parser with the small network that ``explain`` and ``graph`` show: its
    ``--sizes``, hidden ``--activation``, ``--output-activation`` and ``--loss``."""
    parent = options("activation", activation="sigmoid")
    parent.add_argument("--sizes", type=layer_sizes, default=sizes, help=sizes_help)
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
    (``--out docs/results``). It is checked for writing before the command starts."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--out",
        type=out_folder,
        default=str(Path("runs", command)),
        metavar="DIR",
        help=f"folder for {what}",
    )
    return parent


def checkpoint_path(path: Path) -> Path:
    """A ``--checkpoint``: a `dlconcepts train --out DIR` folder means its checkpoint.pt."""
    from dlconcepts import training

    return path / training.CHECKPOINT if path.is_dir() else path


def trained_model(path: Path) -> tuple[torch.nn.Module, choices.TrainConfig]:
    """The model and config of a ``--checkpoint`` (a folder or its checkpoint.pt), checked to
    hold only finite weights: one NaN makes every prediction NaN. A checkpoint that is not
    usable raises ``training.CheckpointError``."""
    import torch

    from dlconcepts import training

    path = checkpoint_path(path)
    model, cfg = training.model_from_checkpoint(path)
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            bad = param[~torch.isfinite(param)][0].item()
            raise training.CheckpointError(
                f"{path}: {name}: expected finite weights, got {bad} (the run diverged)"
            )
    return model, cfg


def device(name: str) -> torch.device:
    """The torch device for an already checked ``--device`` value: the one place a command
    turns ``auto`` into a device."""
    from dlconcepts import training

    return training.resolve_device(name)


# a terminal's colour and cursor codes (ESC [ ... letter), as a captured tool may print them
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def error(message: object) -> int:
    """Print ``error: message`` on stderr as plain text; the exit status of a failed run.

    A captured tool's colour codes and line breaks are removed, so its message reads as one
    line; an indented line (the ``  to fix: ...`` that a data error adds) stays a line of its
    own, the one place a message has two.
    """
    text = _ANSI.sub("", str(message))
    lines = [" ".join(part.split()) for part in re.split(r"\n(?=[ \t]+\S)", text)]
    print("error: " + "\n  ".join(lines), file=sys.stderr)
    return 1


def as_option(e: Exception) -> str:
    """A library error, ``field: expected ...``, as the command line says it: the option that
    sets the field (``--limit-train: expected ...``); other messages as they are."""
    field, colon, rest = str(e).partition(": ")
    fields = {f.name for f in dataclasses.fields(choices.TrainConfig)}
    if colon and field in fields:
        return f"--{field.replace('_', '-')}: {rest}"
    return str(e)


def load_splits(
    **kwargs: Any,
) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    """``data.load_splits(**kwargs)``; a missing data file, or a ``--limit-train`` beyond the
    data (a ``ValueError``), ends the command with its message instead of a traceback."""
    from dlconcepts import data

    try:
        return data.load_splits(**kwargs)
    except (data.DataError, ValueError) as e:
        raise SystemExit(error(e)) from None


def split_options(cfg: training.TrainConfig, device: torch.device) -> dict[str, Any]:
    """The ``data.load_splits`` keywords of what ``cfg`` asks for: dataset, folder, dtype
    and limits."""
    from dlconcepts import training

    return {
        "dataset": cfg.dataset,
        "data_dir": cfg.data_dir,
        "download": cfg.download,
        "device": device,
        "dtype": training.DTYPES[cfg.dtype],
        "limit_train": cfg.limit_train,
        "limit_test": cfg.limit_test,
    }


def splits_for(
    cfg: training.TrainConfig, device: torch.device
) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    """:func:`load_splits` of what ``cfg`` asks for (:func:`split_options`)."""
    return load_splits(**split_options(cfg, device))


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as JSON at ``path``, written atomically; returns the path."""
    from dlconcepts import training

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
