"""`dlconcepts explain`: every number of one step, by hand, by autograd and numerically."""

import json
from pathlib import Path

import pytest
import torch
from command_line import assert_refused

from dlconcepts import backprop
from dlconcepts.commands import explain

# Mazur's "A Step by Step Backpropagation Example": 2-2-2 sigmoid, squared error, lr 0.5
CLASSIC = {
    "hidden1.weight": [[0.15, 0.20], [0.25, 0.30]],
    "hidden1.bias": [0.35, 0.35],
    "output.weight": [[0.40, 0.45], [0.50, 0.55]],
    "output.bias": [0.60, 0.60],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert explain.main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_default_prints_every_number_and_formula(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "--json", str(tmp_path / "step.json"))
    for text in (
        "2-2-2 MLP",
        "x = [0.05, 0.1], target t = [0.01, 0.99]",
        "z[0] = 0.05·",  # the weighted sum, term by term
        "a[1] = σ(",
        "E = Σₖ ½ (tₖ − oₖ)²",
        "δ = (o − t) ⊙ σ′(z)",
        "hidden1: δ = (δ_output W_output) ⊙ f′(z), f′(z) = a(1 − a)",
        "output.weight[1,0]   δ_output[1]·a_hidden1[0]",
        "hidden1.bias[1]      δ_hidden1[1]",
        "θ ← θ − η ∂C/∂θ with η = 0.5",
        "Cost after the step",
        "Why gradients accumulate",
        "∂y/∂a = a + a",
        "Why backward goes in topological order",
        "MSEFunctionBackward → SigmoidFunctionBackward → LinearFunctionBackward",
    ):
        assert text in out, text
    # the order: a δ is printed only after every δ above it
    assert out.index("  output: δ") < out.index("  hidden1: δ")
    step = json.loads((tmp_path / "step.json").read_text())
    assert {
        "forward",
        "cost",
        "gradients",
        "autograd_gradients",
        "numerical_gradients",
        "parameters_after",
        "cost_after",
    } <= set(step)
    assert list(step["forward"]) == ["hidden1", "output"]
    assert step["cost_after"] < step["cost"]
    for name, manual in step["gradients"].items():
        manual = torch.tensor(manual, dtype=torch.float64)
        auto = torch.tensor(step["autograd_gradients"][name], dtype=torch.float64)
        numerical = torch.tensor(step["numerical_gradients"][name], dtype=torch.float64)
        assert float((manual - auto).abs().max()) <= 1e-12
        assert float((manual - numerical).abs().max()) <= 1e-8


def test_the_classic_worked_example_from_a_weights_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(CLASSIC))
    out = run(capsys, "--weights", str(path), "--steps", "3")
    assert "z[0] = 0.05·0.15 + 0.1·0.2 + 0.35 = 0.3775" in out
    assert "= 0.298371" in out  # the post's E_total
    assert "output.weight[0,0] = 0.4 − 0.5·0.082167 = 0.358916" in out  # the post's w5
    assert "Cost after 3 steps" in out


@pytest.mark.parametrize("loss", backprop.LOSSES)
@pytest.mark.parametrize("output", ["none", "sigmoid"])
def test_every_output_and_loss(
    output: str, loss: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--output-activation", output, "--loss", loss, "--activation", "tanh"]
    if (output, loss) == ("none", "cross-entropy"):
        argv += ["--sizes", "2,3,3", "--target", "2"]
    out = run(capsys, *argv, "--json", str(tmp_path / "s.json"))
    key = (None if output == "none" else output, loss)
    assert backprop.OUTPUTS[key].delta in out and backprop.OUTPUTS[key].loss in out
    step = json.loads((tmp_path / "s.json").read_text())
    for name, manual in step["gradients"].items():
        auto = torch.tensor(step["autograd_gradients"][name], dtype=torch.float64)
        numerical = torch.tensor(step["numerical_gradients"][name], dtype=torch.float64)
        assert float((torch.tensor(manual, dtype=torch.float64) - auto).abs().max()) <= 1e-12
        assert float((auto - numerical).abs().max()) <= 1e-8


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--input", "1,2,3"], "got 3"),
        (["--input", "1,x"], "'1,x'"),
        (["--target", "0.5"], "'0.5'"),
        (["--output-activation", "none", "--loss", "cross-entropy", "--target", "2"], "'2'"),
        (["--sizes", "4,3,2"], "--input"),
        (["--sizes", "2,3,2", "--mnist-index", "0"], "784"),
        (["--lr", "-1"], "'-1'"),
        (["--steps", "0"], "'0'"),
        (["--target", ""], "--target: expected a class index or comma-separated numbers, got ''"),
        (["--output-activation", "none", "--loss", "cross-entropy", "--target", ""], "got ''"),
        (["--init", "ones"], "'ones'"),
        (["--weights", "nowhere.json"], "nowhere.json"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(explain.main, argv, bad, capsys)


@pytest.mark.parametrize(
    "content, bad",
    [
        ("{not json", "expected JSON"),
        (json.dumps({"hidden1.weight": [[1, 2], [3, 4]]}), "expected the keys"),
        (json.dumps({**CLASSIC, "output.bias": [0.6]}), "output.bias: expected shape (2,)"),
        (json.dumps({**CLASSIC, "output.bias": ["a", "b"]}), "expected numbers"),
        # torch reads true as 1.0
        (json.dumps({**CLASSIC, "output.bias": [True, 0.6]}), "output.bias: expected numbers"),
    ],
)
def test_a_bad_weights_file_is_refused_in_one_line(
    content: str, bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.json"
    path.write_text(content)
    assert_refused(explain.main, ["--weights", str(path)], bad, capsys)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_a_weight_that_is_not_finite_is_refused(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """json reads NaN and Infinity; every number after them would be nan."""
    path = tmp_path / "w.json"
    path.write_text(json.dumps(CLASSIC).replace("0.15", bad))
    argv = ["--weights", str(path), "--json", str(tmp_path / "step.json")]
    assert_refused(explain.main, argv, "hidden1.weight: expected finite numbers", capsys)
    assert not (tmp_path / "step.json").exists()


def test_weights_written_in_utf16_read_as_in_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Windows' PowerShell writes by default, with its byte-order mark."""
    utf8, utf16 = tmp_path / "utf8.json", tmp_path / "utf16.json"
    utf8.write_text(json.dumps(CLASSIC), encoding="utf-8")
    utf16.write_text(json.dumps(CLASSIC), encoding="utf-16")
    out8 = run(capsys, "--weights", str(utf8))
    out16 = run(capsys, "--weights", str(utf16))
    assert out16.replace("utf16.json", "utf8.json") == out8
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xe9"}')
    assert_refused(explain.main, ["--weights", str(tmp_path / "latin.json")], "latin.json", capsys)


@pytest.mark.parametrize(
    "argv, bad",
    [
        # binary cross-entropy's cost goes negative for targets outside [0, 1]
        (["--output-activation", "sigmoid", "--loss", "cross-entropy", "--target", "2,3"], "'2,3'"),
        (["--loss", "cross-entropy", "--target", "0.5,-0.1"], "in [0, 1]"),
        (["--mnist-index", "0", "--input", "1,2"], "--input"),  # one example or the other
        (["--mnist-index", "-1"], "'-1'"),
        (["--steps", "100000000"], "'100000000'"),  # hours of Python-speed steps
        (["--sizes", "2,100000000,2"], "500,000,002"),  # a numerical gradient of 5e17 steps
        (["--input", "1e39,0"], "'1e39'"),  # beyond float32 and every number after it inf
    ],
)
def test_an_option_that_would_be_wrong_or_take_hours_is_refused(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(explain.main, argv, bad, capsys)


def test_the_largest_weight_count_is_refused_by_one(capsys: pytest.CaptureFixture[str]) -> None:
    """The limit is on the weights of --sizes: one over it is refused, at it is not."""
    assert explain.weight_count((2, 2, 2)) == 12 and explain.weight_count((784, 16, 10)) == 12730
    width = (explain.MAX_WEIGHTS - 2) // 5 + 1  # a 2-width-2 MLP has 5·width + 2 weights
    assert explain.weight_count((2, width, 2)) > explain.MAX_WEIGHTS
    assert_refused(explain.main, ["--sizes", f"2,{width},2"], "weights", capsys)


def test_json_into_a_file_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    argv = ["--json", str(tmp_path / "file" / "step.json")]
    assert_refused(explain.main, argv, "is a file, not a folder", capsys)
