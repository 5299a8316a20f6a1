"""``dlconcepts exercise NAME --out DIR``: a starter file to practise backpropagation on.

``NAME`` is a piece (``sigmoid``, ``tanh``, ``relu``, ``linear``, ``cross_entropy``) or
``backprop`` (a manual backward of a whole MLP): ``DIR/NAME.py`` gets a Function whose
``forward`` and ``backward`` raise ``NotImplementedError``, a docstring saying what to
write, and the ``dlconcepts check`` command that checks it, which this command prints too.

``NAME`` ``notebooks`` writes the student copy of the notebooks into ``DIR``: every cell
tagged ``solution`` left out and every output cleared, so an exercise is the learner's to
solve (the repository's notebooks keep their solutions, and CI runs them).

An existing file is never overwritten without ``--force``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from dlconcepts.commands import _common

# exercise -> (the object to write, the --against it is checked with)
EXERCISES: dict[str, tuple[str, str]] = {
    "sigmoid": ("Sigmoid", "sigmoid"),
    "tanh": ("Tanh", "tanh"),
    "relu": ("ReLU", "relu"),
    "linear": ("Linear", "linear"),
    "cross_entropy": ("CrossEntropy", "cross_entropy"),
    "backprop": ("gradients", "backprop"),
}
NOTEBOOKS = "notebooks"
# the repository's notebooks, beside the package
REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOLUTION_TAG = "solution"


def starter(name: str) -> str:
    """The starter file of exercise ``name``, as shipped in ``dlconcepts/exercises``."""
    return resources.files("dlconcepts.exercises").joinpath(f"{name}.py").read_text("utf-8")


def check_command(path: Path, name: str) -> str:
    obj, against = EXERCISES[name]
    return f"dlconcepts check --function {path}:{obj} --against {against}"


def student_copy(notebook: dict) -> dict:
    """``notebook`` (the JSON of an ``.ipynb``) without its ``solution``-tagged cells, and
    with no outputs: what a learner starts from."""
    cells = []
    for cell in notebook["cells"]:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "code":
            cell = {**cell, "outputs": [], "execution_count": None}
        cells.append(cell)
    return {**notebook, "cells": cells}


def write(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise SystemExit(
            _common.error(
                f"{path}: expected a new file, got an existing one (--force overwrites it)"
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # atomic: a learner's file is never left half-written


def main(argv: list[str] | None = None) -> int:
    parser = _common.parser("exercise", __doc__)
    parser.add_argument(
        "name",
        choices=[*EXERCISES, NOTEBOOKS],
        help="the piece to write by hand, or 'notebooks' for the student copy of the notebooks",
    )
    parser.add_argument(
        "--out", type=_common.out_folder, default="exercises", help="folder to write into"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    if args.name == NOTEBOOKS:
        sources = sorted(REPO_NOTEBOOKS.glob("*.ipynb"))
        if not sources:
            return _common.error(
                f"notebooks: expected the repository's notebooks in {REPO_NOTEBOOKS}, found none"
            )
        for source in sources:
            notebook = json.loads(source.read_text(encoding="utf-8"))
            text = json.dumps(student_copy(notebook), indent=1, ensure_ascii=False) + "\n"
            write(args.out / source.name, text, args.force)
        print(f"wrote {len(sources)} notebooks without their solutions to {args.out}")
        return 0
    path = args.out / f"{args.name}.py"
    write(path, starter(args.name), args.force)
    print(f"wrote {path}: fill in the bodies that raise NotImplementedError, then check it:")
    print(f"  {check_command(path, args.name)}")
    if args.name in ("sigmoid", "tanh", "relu"):
        print(f"and train with it: dlconcepts train --activation {path}:{EXERCISES[args.name][0]}")
    return 0
