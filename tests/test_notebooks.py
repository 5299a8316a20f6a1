"""The notebooks: seven of them, committed with their outputs, and each one runs.

The static tests read the committed ``.ipynb`` files as JSON (no Jupyter needed): seven
notebooks in the concepts' order, each executed, error-free, with a picture, and an exercise
that ends the notebook: the learner's cell, the check, then the solution in cells tagged
``solution``. The solution defines other names than the learner's answer and is checked by
the same check, so "Run All" never overwrites an answer, and ``dlconcepts exercise notebooks``
leaves exactly those cells out of the student copy.

The execution test runs every notebook top to bottom in a fresh kernel (working directory
``notebooks/``) and fails on any error or on a notebook slower than its budget. It needs the
``notebooks`` extra (nbclient, nbformat, ipykernel, matplotlib, pillow) and is skipped
without it. The kernel is started from a kernel spec written for this test that runs
``sys.executable``, so it is always the Python running pytest, whatever kernels the user
has installed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_loss_vs_cost.ipynb",
    "02_layers.ipynb",
    "03_chain_rule.ipynb",
    "04_backpropagation.ipynb",
    "05_activation_functions.ipynb",
    "06_weight_initialization.ipynb",
    "07_mnist_end_to_end.ipynb",
]
# seconds one notebook may take, top to bottom in a fresh kernel, on 2 CPU cores
BUDGET_S = float(os.environ.get("DLCONCEPTS_NOTEBOOK_BUDGET_S", "120"))
CELL_TIMEOUT_S = 300
MAX_BYTES = 300_000  # committed with outputs, but small enough to read on a code host
# each exercise's answer, the names a solution cell must not assign
ANSWERS = {
    "01_loss_vs_cost.ipynb": ("grad_by_hand",),
    "02_layers.ipynb": ("dx", "dW", "db"),
    "03_chain_rule.ipynb": ("dy_dx",),
    "04_backpropagation.ipynb": ("dW1",),
    "05_activation_functions.ipynb": ("softsign_derivative",),
    "06_weight_initialization.ipynb": ("predicted_ratio",),
    "07_mnist_end_to_end.ipynb": ("cost_builtin", "accuracy"),
}
# what an exercise prompt (or its check) must not say: the answers, in their usual forms
GIVEN_AWAY = (
    "softmax(z_i)_c - [c = t_i]",
    "\\operatorname{softmax}(z) - \\operatorname{onehot}(t)",
    "\\delta_1 = ",
    "(1 - a_1^2)",
    "1 - a1**2",
    "softmax minus one-hot",
    "1 - y**2",
    "g.sum(dim=0)",
    "\\frac{\\partial y}{\\partial u}\\frac{du}{dx} +",  # the path sum, written out
    "torch.sigmoid(z1)",  # softplus' in the backprop exercise
    "(1 - y.abs())",  # softsign' from its output
    "\\sqrt{n_{\\text{in}} s^2 / 2}",  # the per-layer factor of the spread
    "a**2 / 3",  # the uniform's variance
)


def _load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def test_seven_notebooks_in_the_concepts_order() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_with_outputs_a_picture_and_a_checked_exercise(name: str) -> None:
    assert (NOTEBOOKS / name).stat().st_size < MAX_BYTES
    cells = _load(name)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    outputs = [o for c in code for o in c["outputs"]]

    # executed top to bottom, in order, without an error
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: not executed top to bottom"
    assert not [o for o in outputs if o["output_type"] == "error"], f"{name}: an error output"
    assert not [o for o in outputs if o.get("name") == "stderr"], f"{name}: stderr output"

    # at least one picture
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}: no picture"

    # prose with formulas
    markdown = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    assert markdown[0].startswith("# "), f"{name}: no title"
    assert any("$" in m for m in markdown), f"{name}: no formula"

    # the exercise ends the notebook: the learner's cell, the check, the tagged solution
    exercise = next(i for i, c in enumerate(cells) if "## Exercise" in _source(c))
    tail = cells[exercise:]
    tagged = [c for c in tail if "solution" in c["metadata"].get("tags", [])]
    assert [_source(c).split("\n")[0] for c in tagged[:1]] == ["### Solution"], (
        f"{name}: no tagged solution"
    )
    assert tail[-len(tagged) :] == tagged, f"{name}: the solution does not end the notebook"
    assert all("solution" not in c["metadata"].get("tags", []) for c in cells[:exercise])
    check = [c for c in tail[: -len(tagged)] if "assert " in _source(c)]
    assert check and check[-1]["cell_type"] == "code", f"{name}: no check before the solution"
    assert any("not written yet" in "".join(o.get("text", "")) for o in check[-1]["outputs"])
    # the solution passes the same check, and leaves the learner's answer alone
    assert any("correct" in "".join(o.get("text", "")) for o in code[-1]["outputs"])
    for answer in ANSWERS[name]:
        for c in tagged:
            assert not re.search(rf"^\s*(def\s+)?{answer}\b\s*[=(:]", _source(c), re.M), (
                f"{name}: a solution cell overwrites {answer}"
            )


@pytest.mark.parametrize("name", EXPECTED)
def test_no_exercise_prompt_gives_its_answer(name: str) -> None:
    cells = _load(name)["cells"]
    exercise = next(i for i, c in enumerate(cells) if "## Exercise" in _source(c))
    untagged = [
        _source(c) for c in cells[exercise:] if "solution" not in c["metadata"].get("tags", [])
    ]
    for formula in GIVEN_AWAY:
        assert not any(formula in text for text in untagged), f"{name}: the prompt gives {formula}"
    # what the student copy leaves out is said only in the part it leaves out
    for said in ("exercise notebooks --out", "solution comes after"):
        assert not any(said in text for text in untagged), f"{name}: the prompt says {said!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_runs_top_to_bottom_in_a_fresh_kernel(name: str, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # a kernel spec that runs this very interpreter (sys.executable), found only by this test
    kernel_dirs = tmp_path / "kernels"
    kernelspec.write_kernel_spec(str(kernel_dirs / "dlconcepts-test"))
    spec = json.loads((kernel_dirs / "dlconcepts-test" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    km = KernelManager(
        kernel_name="dlconcepts-test",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dirs)]),
    )

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    before = sorted(NOTEBOOKS.rglob("*"))
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the working directory
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}: no picture"
    assert sorted(NOTEBOOKS.rglob("*")) == before, f"{name} wrote into notebooks/"
    assert seconds <= BUDGET_S, f"{name} took {seconds:.0f} s, over its budget of {BUDGET_S:.0f} s"
