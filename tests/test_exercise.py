"""``dlconcepts exercise``: each starter file fails its check with a short, readable report,
and passes once its bodies are filled in with a correct solution; the student copy of the
notebooks has no solution in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlconcepts import testing
from dlconcepts.commands import check, exercise

FORWARD_TODO = 'raise NotImplementedError("forward: your code here")'
BACKWARD_TODO = 'raise NotImplementedError("backward: your code here")'

# exercise -> (forward body, backward body), as a learner fills them in
SOLUTIONS: dict[str, tuple[str, str]] = {
    "sigmoid": (
        "y = 1 / (1 + torch.exp(-x))\n        ctx.save_for_backward(y)\n        return y",
        "(y,) = ctx.saved_tensors\n        return grad_output * y * (1 - y)",
    ),
    "tanh": (
        "m = torch.expm1(2 * x)\n        y = 1 / (1 + 2 / m)\n"
        "        ctx.save_for_backward(y)\n        return y",
        "(y,) = ctx.saved_tensors\n        return grad_output * (1 - y * y)",
    ),
    "relu": (
        "y = x.clamp_min(0)\n        ctx.save_for_backward(y)\n        return y",
        "(y,) = ctx.saved_tensors\n        return grad_output * (y > 0).to(y.dtype)",
    ),
    "linear": (
        "ctx.save_for_backward(x, weight)\n        return x @ weight.T + bias",
        "x, weight = ctx.saved_tensors\n"
        "        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0)",
    ),
    "cross_entropy": (
        "z = input - input.amax(dim=1, keepdim=True)\n"
        "        log_p = z - z.exp().sum(dim=1, keepdim=True).log()\n"
        "        ctx.save_for_backward(log_p, target)\n"
        "        return -log_p[torch.arange(len(target)), target].mean()",
        "log_p, target = ctx.saved_tensors\n"
        "        delta = log_p.exp()\n"
        "        delta[torch.arange(len(target)), target] -= 1\n"
        "        return grad_output * delta / len(target), None",
    ),
    "backprop": (
        "values = [x]\n"
        "    for name, layer in model.named_children():\n"
        "        values.append(layer(values[-1]))\n"
        "    return values",
        "f = activations.get(model.activation)\n"
        "    children = list(model.named_children())\n"
        "    z = values[-1]\n"
        "    delta = torch.softmax(z, dim=1)\n"
        "    delta[torch.arange(len(target)), target] -= 1\n"
        "    delta = delta / len(target)\n"
        "    grads = {}\n"
        "    for i in range(len(children) - 1, -1, -2):\n"
        "        name, a_in = children[i][0], values[i]\n"
        "        grads[f'{name}.weight'] = delta.T @ a_in\n"
        "        grads[f'{name}.bias'] = delta.sum(0)\n"
        "        if i > 0:\n"
        "            delta = (delta @ children[i][1].weight) * f.derivative(a_in)\n"
        "    return grads",
    ),
}


def filled(name: str) -> str:
    forward, backward = SOLUTIONS[name]
    text = exercise.starter(name).replace(FORWARD_TODO, forward).replace(BACKWARD_TODO, backward)
    if name == "backprop":
        text = text.replace(
            "import torch  #", "from dlconcepts import activations\nimport torch  #"
        )
    return text


@pytest.mark.parametrize("name", list(exercise.EXERCISES))
def test_the_starter_fails_readably_and_a_solution_passes(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert exercise.main([name, "--out", "mine"]) == 0
    out = capsys.readouterr().out
    command = exercise.check_command(Path("mine", f"{name}.py"), name)
    assert command in out
    starter = Path("mine", f"{name}.py").read_text()
    assert FORWARD_TODO in starter and BACKWARD_TODO in starter
    assert command.replace("mine/", "") in starter  # the docstring names the exact check

    # the starter: every required check fails, each row one line naming the learner's line
    argv = command.split()[2:]  # after "dlconcepts check"
    assert check.main(argv) == 1
    report = capsys.readouterr().out
    assert f"mine/{name}.py:" in report and "NotImplementedError: forward: your code here" in report
    assert "Traceback" not in report

    # filled in: every required check passes
    Path("mine", f"{name}.py").write_text(filled(name))
    assert check.main(argv) == 0, capsys.readouterr().out
    assert "passed: every required check" in capsys.readouterr().out


def test_a_filled_activation_passes_through_the_library_too(tmp_path: Path) -> None:
    path = tmp_path / "sigmoid.py"
    path.write_text(filled("sigmoid"))
    assert testing.assert_function(testing.load(f"{path}:Sigmoid"), "sigmoid").passed


def test_no_starter_gives_the_formula_away() -> None:
    for name in exercise.EXERCISES:
        text = exercise.starter(name)
        for formula in ("y * (1 - y)", "y(1 - y)", "1 - y^2", "1 - y**2", "softmax(z) -", "δ"):
            assert formula not in text, (name, formula)


def test_an_existing_file_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "relu.py").write_text("mine")
    with pytest.raises(SystemExit) as e:
        exercise.main(["relu", "--out", str(tmp_path)])
    assert e.value.code == 1
    assert (tmp_path / "relu.py").read_text() == "mine"
    assert "--force" in capsys.readouterr().err
    assert exercise.main(["relu", "--out", str(tmp_path), "--force"]) == 0


def test_the_student_notebooks_have_no_solutions_and_no_outputs(tmp_path: Path) -> None:
    assert exercise.main(["notebooks", "--out", str(tmp_path)]) == 0
    copies = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in copies] == sorted(
        p.name for p in exercise.REPO_NOTEBOOKS.glob("*.ipynb")
    )
    for path in copies:
        cells = json.loads(path.read_text())["cells"]
        assert not [c for c in cells if "solution" in c["metadata"].get("tags", [])]
        assert not any("### Solution" in "".join(c["source"]) for c in cells)
        assert all(c["outputs"] == [] for c in cells if c["cell_type"] == "code")
