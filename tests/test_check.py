"""``dlconcepts check --function FILE.py:NAME --against PIECE``: a learner's Function
checked from the shell, exit status 0 when every required check passes and 1 otherwise;
``train --activation FILE.py:NAME`` trains with it. (``dlconcepts check`` alone:
tests/test_gradcheck.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dlconcepts import training
from dlconcepts.commands import check, exercise, train

SIGMOID = """import torch


class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return {gradient}
"""
RIGHT = SIGMOID.format(gradient="grad_output * y * (1 - y)")
FORGETS_GRAD_OUTPUT = SIGMOID.format(gradient="y * (1 - y)")


def write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return name


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_right_function_exits_0(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(here, "mine.py", RIGHT)
    assert check.main(["--function", "mine.py:Sigmoid", "--against", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Sigmoid against torch.sigmoid\n")
    assert out.rstrip().endswith("passed: every required check")


def test_a_wrong_function_exits_1_with_the_table_and_the_json(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(here, "mine.py", FORGETS_GRAD_OUTPUT)
    argv = ["--function", "mine.py:Sigmoid", "--against", "sigmoid", "--json", "report.json"]
    assert check.main(argv) == 1
    out = capsys.readouterr().out
    assert "backward vs PyTorch             FAIL    random (4, 5): gradient for x differs" in out
    assert "hint: the gradient for x equals PyTorch's without the incoming gradient" in out
    assert "FAILED: 2 required checks" in out
    report = json.loads((here / "report.json").read_text())
    assert report["passed"] is False and report["function_spec"] == "mine.py:Sigmoid"
    failed = [r["check"] for r in report["rows"] if r["status"] == "fail"]
    assert failed == ["backward vs finite differences", "backward vs PyTorch"]


def test_an_importable_module_name_works_too(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--function", "dlconcepts.layers:LinearFunction", "--against", "linear"]
    assert check.main(argv) == 0


@pytest.mark.parametrize(
    "text, argv_spec, message",
    [
        ("def f(:\n", "bad.py:f", "error: bad.py:1: SyntaxError: "),
        (
            "import torch\nx = undefined_name\n",
            "bad.py:f",
            "error: bad.py:2 in <module>: NameError",
        ),
        (
            "def f(x):\n    return x\n",
            "bad.py:g",
            "error: --function: expected a name bad.py defines: f",
        ),
        ("", "missing.py:f", "error: --function: expected FILE.py:NAME with an existing file"),
        ("", "no_such_module:f", "error: --function: expected an importable module"),
        ("", "bad.py", "error: --function: expected FILE.py:NAME or module:NAME, got 'bad.py'"),
    ],
)
def test_a_function_that_does_not_load_is_one_line(
    here: Path, capsys: pytest.CaptureFixture[str], text: str, argv_spec: str, message: str
) -> None:
    write(here, "bad.py", text)
    with pytest.raises(SystemExit) as e:
        check.main(["--function", argv_spec, "--against", "sigmoid"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()[-1:]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--function", "x.py:f"], "--against: expected the piece x.py:f should equal"),
        (["--against", "relu"], "--function: expected FILE.py:NAME to go with --against, got"),
        (["--json", "r.json"], "--function: expected FILE.py:NAME to go with --json, got"),
    ],
)
def test_function_and_against_go_together(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as e:
        check.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


ARGS = [
    "--hidden", "8", "--epochs", "1", "--batch-size", "64", "--limit-train", "256",
    "--limit-test", "64", "--dtype", "float64", "--init", "xavier", "--no-progress",
]  # fmt: skip


def weights(out: Path) -> dict[str, torch.Tensor]:
    return training.read_checkpoint(out / training.CHECKPOINT)["model"]


def test_train_with_your_sigmoid_follows_the_built_in_to_1e_9(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(here, "mine.py", RIGHT)
    assert train.main([*ARGS, "--activation", "sigmoid", "--out", "builtin"]) == 0
    assert train.main([*ARGS, "--activation", "mine.py:Sigmoid", "--out", "yours"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert "mine.py:Sigmoid + xavier init" in captured.out
    theirs, ours = weights(here / "builtin"), weights(here / "yours")
    assert theirs.keys() == ours.keys()
    for name in theirs:
        diff = float((ours[name] - theirs[name]).abs().max())
        assert diff <= 1e-9, f"{name}: max |Δ| {diff:.1e}"
    # and training moved them: the comparison is not of two untrained networks
    config = training.read_checkpoint(here / "yours" / training.CHECKPOINT)["config"]
    start = training.build_model(training.TrainConfig(**config)).state_dict()
    assert float((ours["hidden1.weight"] - start["hidden1.weight"]).abs().max()) > 1e-3


def test_train_with_a_wrong_sigmoid_warns_once_and_trains(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(here, "mine.py", FORGETS_GRAD_OUTPUT)
    assert train.main([*ARGS, "--activation", "mine.py:Sigmoid"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: mine.py:Sigmoid fails 2 required checks against sigmoid (backward vs finite "
        "differences, backward vs PyTorch; dlconcepts check --function mine.py:Sigmoid "
        "--against sigmoid says why); training with it anyway"
    ]


LINEAR = """import torch


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        return x @ weight.T + bias
"""


@pytest.mark.parametrize(
    "source, spec, warning, error",
    [
        (
            "starter",
            "sigmoid.py:Sigmoid",
            "warning: sigmoid.py:Sigmoid raised on a random input (sigmoid.py:{forward} in "
            "forward: NotImplementedError: forward: your code here); training with it anyway",
            "error: sigmoid.py:{forward} in forward: NotImplementedError: forward: your code here",
        ),
        (
            "backward left to write",
            "sigmoid.py:Sigmoid",
            "warning: sigmoid.py:Sigmoid fails ",
            "error: sigmoid.py:{backward} in backward: NotImplementedError: backward: your code "
            "here",
        ),
        (
            LINEAR,
            "linear.py:Linear",
            "warning: linear.py:Linear raised on a random input (linear.py:Linear: TypeError: ",
            "error: linear.py:Linear: TypeError: ",
        ),
    ],
    ids=["starter", "backward left to write", "a Linear as the activation"],
)
def test_train_with_code_that_raises_is_one_error_line_exit_1(
    here: Path, capsys: pytest.CaptureFixture[str], source: str, spec: str, warning: str, error: str
) -> None:
    if source == LINEAR:
        write(here, "linear.py", LINEAR)
    else:
        assert exercise.main(["sigmoid", "--out", "."]) == 0
        text = (here / "sigmoid.py").read_text()
        lines = text.splitlines()
        where = {
            part: 1 + next(i for i, line in enumerate(lines) if f'"{part}: your code' in line)
            for part in ("forward", "backward")
        }
        warning, error = warning.format(**where), error.format(**where)
        if source == "backward left to write":
            forward = 'raise NotImplementedError("forward: your code here")'
            (here / "sigmoid.py").write_text(text.replace(forward, "return torch.sigmoid(x)"))
    capsys.readouterr()
    assert train.main([*ARGS, "--activation", spec]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first, last = err.strip().splitlines()
    assert first.startswith(warning), first
    assert last.startswith(error), last


def test_train_rejects_an_activation_that_is_neither(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        train.main(["--activation", "swish"])
    assert e.value.code == 2
    assert (
        "expected one of sigmoid, tanh, relu or FILE.py:NAME, got 'swish'"
        in capsys.readouterr().err
    )


def test_the_failing_check_in_the_docs_prints_as_shown(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "practise.md").read_text()
    section = doc.split("### A failing check, as it prints", 1)[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0]
    command, expected = shown.split("\n", 1)
    assert command.startswith("$ dlconcepts check ")
    (here / "mine").mkdir()
    (here / "mine" / "sigmoid.py").write_text(source)
    assert check.main(command.split()[3:]) == 1
    assert capsys.readouterr().out == expected
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"```text\n{shown}```" in readme  # the README shows the same table
