"""`dlconcepts graph`: our own DOT emitter names our Functions, parameters and saved tensors."""

import re
import shutil
from pathlib import Path

import pytest
import torch
from command_line import assert_refused

from dlconcepts import autograd_graph, backprop
from dlconcepts.commands import graph
from dlconcepts.layers import MLP


def write_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    monkeypatch.setattr(shutil, "which", lambda name: None)  # as where Graphviz is missing
    assert graph.main([*argv, "--out", str(tmp_path / "g")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]
    return (tmp_path / "g.dot").read_text()


def structure(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The node labels and the edges of DOT text, checking every edge joins declared nodes."""
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    labels = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', dot, re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+)", dot, re.M)
    assert edges and all(a in labels and b in labels for a, b in edges), (labels, edges)
    return labels, edges


def test_graph_names_our_functions_parameters_and_saved_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels, edges = structure(write_dot(tmp_path, monkeypatch))  # 2-2-2 sigmoid, squared error
    names = list(labels.values())
    assert names.count("LinearFunctionBackward") == 2
    assert names.count("SigmoidFunctionBackward") == 2
    assert names.count("MSEFunctionBackward") == 1
    for param in ("hidden1.weight\\n(2, 2)", "hidden1.bias\\n(2,)", "output.weight\\n(2, 2)"):
        assert param in names
    # the first layer's input needs no gradient, so LinearFunction saved None for its W
    assert "saved None" in names and "saved (1, 2)" in names
    assert ("n0", "cost") in edges
    # each parameter feeds exactly one LinearFunctionBackward
    ids = {label: node for node, label in labels.items()}
    targets = [b for a, b in edges if a == ids["output.weight\\n(2, 2)"]]
    assert [labels[b] for b in targets] == ["LinearFunctionBackward"]


def test_graph_of_relu_and_cross_entropy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["--sizes", "3,4,4,2", "--activation", "relu", "--output-activation", "none"]
    labels, _ = structure(write_dot(tmp_path, monkeypatch, *argv, "--loss", "cross-entropy"))
    names = list(labels.values())
    assert names.count("ReLUFunctionBackward") == 2 and names.count("LinearFunctionBackward") == 3
    assert "CrossEntropyFunctionBackward" in names and "hidden2.weight\\n(4, 4)" in names


def test_graph_of_torch_nn_for_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels, _ = structure(write_dot(tmp_path, monkeypatch, "--impl", "torch"))
    names = list(labels.values())
    assert "AddmmBackward0" in names and "SigmoidBackward0" in names
    assert not [n for n in names if "Function" in n]
    assert "output.weight\\n(2, 2)" in names


def test_a_value_used_twice_has_two_edges() -> None:
    a = torch.tensor(2.0, requires_grad=True)
    labels, edges = structure(autograd_graph.to_dot(a * a, {"a": a}))
    mul = next(n for n, label in labels.items() if label == "MulBackward0")
    leaf = next(n for n, label in labels.items() if label.startswith("a\\n"))
    assert edges.count((leaf, mul)) == 2


def test_backward_nodes_are_each_listed_once() -> None:
    model = MLP((3, 2, 2), "tanh", dtype=torch.float64)
    cost = backprop.cost(model, torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 1]))
    nodes = autograd_graph.nodes(cost)
    assert len({id(n) for n in nodes}) == len(nodes) and nodes[0] is cost.grad_fn
    assert sum(hasattr(n, "variable") for n in nodes) == 4  # the 4 parameters
    with pytest.raises(ValueError, match="leaf"):
        autograd_graph.to_dot(model.output.weight, {})


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_with_graphviz_svg_and_png_too(tmp_path: Path) -> None:
    assert graph.main(["--out", str(tmp_path / "g.dot")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.png", "g.svg"]
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--impl", "numpy"], "'numpy'"),
        (["--sizes", "3"], "'3'"),
        (["--sizes", "2,0,2"], "'2,0,2'"),
        (["--output-activation", "relu"], "'relu'"),
        (["--loss", "hinge"], "'hinge'"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(graph.main, argv, bad, capsys)


@pytest.mark.parametrize(
    "out, written",
    [
        ("g", "g.dot"),
        ("g.dot", "g.dot"),
        ("g/", "g/graph.dot"),  # a folder, as the trailing / says
        ("d", "d/graph.dot"),  # a folder that exists
        (".", "graph.dot"),
        ("d/..", "graph.dot"),
    ],
)
def test_out_is_a_file_or_a_folder(
    out: str, written: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder gets graph.dot inside it; anything else gets .dot after its name."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert graph.main(["--out", out]) == 0
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.dot"))
    assert files == [written]


def test_out_above_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert graph.main(["--out", ".."]) == 0
    assert [p.name for p in tmp_path.glob("*.dot")] == ["graph.dot"]


@pytest.mark.parametrize(
    "out, bad",
    [
        ("", "''"),
        ("   ", "'   '"),
        ("file/g", "is a file, not a folder"),  # inside a file: not "File exists"
        ("folder.dot/", "is a folder"),  # folder.dot/graph.dot is fine; see below
    ],
)
def test_an_out_that_cannot_be_written_is_one_line(
    out: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    (tmp_path / "folder.dot").mkdir()
    (tmp_path / "folder.dot" / "graph.dot").mkdir()  # where folder.dot/ would write
    assert_refused(graph.main, ["--out", out], bad, capsys)


def test_a_failing_dot_is_one_plain_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graphviz may colour its errors: the terminal's escape codes do not reach the message."""
    fake = tmp_path / "dot"
    fake.write_text(
        "#!/bin/sh\nprintf '\\033[1;31mError:\\033[0m out of memory\\nmore\\n' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    assert_refused(graph.main, ["--out", str(tmp_path / "g")], "Error: out of memory", capsys)
    graph.main(["--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 1, repr(err)


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_a_picture_without_graphviz_is_refused_in_one_line(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``--out g.svg`` asks for a picture: without Graphviz nothing is written, not g.svg.dot."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = tmp_path / f"g{suffix}"
    bad = f"{out} needs Graphviz's dot to render; install graphviz"
    assert_refused(graph.main, ["--out", str(out)], bad, capsys)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit):
        graph.main(["--out", str(out)])
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"or use --out {tmp_path / 'g.dot'}")


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_a_picture_with_graphviz_is_drawn_beside_its_dot(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out g.svg`` with Graphviz writes g.dot, g.svg and g.png (a stand-in dot here)."""
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor last; do :; done\necho drawn > "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    assert graph.main(["--out", str(tmp_path / f"g{suffix}")]) == 0
    assert sorted(p.name for p in tmp_path.glob("g*")) == ["g.dot", "g.png", "g.svg"]
