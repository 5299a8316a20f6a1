"""The code is the lesson: plain autograd Functions, short backwards, no private torch API,
and a package whose library never reaches into its commands.

These read the source, so they fail the day someone hides a formula behind a trick."""

from __future__ import annotations

import ast
import inspect
import re
import unicodedata
from pathlib import Path

import pytest
import torch

import dlconcepts
from dlconcepts import activations, backprop, init, init_extra, layers, losses

PACKAGE = Path(__file__).resolve().parents[1] / "dlconcepts"
CONCEPTS = [activations, init, init_extra, layers, losses, backprop]


def functions_of(module: object) -> list[type[torch.autograd.Function]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, torch.autograd.Function)
        and obj.__module__ == module.__name__  # type: ignore[attr-defined]
        and not obj.__name__.startswith("_")
    ]


FUNCTIONS = [f for m in (activations, layers, losses) for f in functions_of(m)]


def test_every_concept_function_is_found() -> None:
    names = {f.__name__ for f in FUNCTIONS}
    assert {"SigmoidFunction", "TanhFunction", "ReLUFunction", "LinearFunction"} <= names
    assert {"CrossEntropyFunction", "MSEFunction"} <= names


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_plain_autograd_function_with_its_own_backward_node(fn: type) -> None:
    # nothing between the class and torch.autograd.Function replaces apply
    between = fn.__mro__[: fn.__mro__.index(torch.autograd.Function)]
    assert not [c.__name__ for c in between if "apply" in vars(c)]
    assert fn.__mro__.count(torch.autograd.Function) == 1
    # the separate forward / setup_context form that torch.func needs
    assert "ctx" not in inspect.signature(fn.forward).parameters
    assert any("setup_context" in vars(c) for c in between)


def _inputs(fn: type) -> tuple[torch.Tensor, ...]:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    if fn is layers.LinearFunction:
        return x, torch.randn(2, 4, dtype=torch.float64, requires_grad=True), None
    if fn is losses.CrossEntropyFunction:
        return x, torch.tensor([0, 3, 1])
    if fn is losses.MSEFunction:
        return x, torch.randn(3, 4, dtype=torch.float64)
    if fn in (losses.SoftCrossEntropyFunction, losses.BinaryCrossEntropyWithLogitsFunction):
        return x, torch.rand(3, 4, dtype=torch.float64)  # probabilities as targets
    return (x,)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_fn_is_named_after_the_class_the_reader_called(fn: type) -> None:
    y = fn.apply(*_inputs(fn))
    assert type(y.grad_fn).__name__ == f"{fn.__name__}Backward"


def _statements(fn: object) -> list[ast.stmt]:
    source = inspect.getsource(fn)  # type: ignore[arg-type]
    (node,) = ast.parse(inspect.cleandoc("\n" + source)).body
    assert isinstance(node, ast.FunctionDef)
    return node.body


@pytest.mark.parametrize("fn", activations.ACTIVATIONS.values(), ids=list(activations.ACTIVATIONS))
def test_activation_backward_is_short_and_has_no_branches(fn: type) -> None:
    body = _statements(fn.backward)
    assert len(body) <= 4, ast.unparse(body)
    branches = (ast.If, ast.IfExp, ast.Try, ast.For, ast.While, ast.Match, ast.BoolOp)
    found = [ast.unparse(n) for s in body for n in ast.walk(s) if isinstance(n, branches)]
    assert not found, found
    # backward and jvp take the derivative from the one formula
    for method in (fn.backward, fn.jvp):
        assert "derivative(" in inspect.getsource(method)


def private_torch_names(source: str) -> list[str]:
    """``torch._x`` attributes and ``from torch._x import`` modules used in ``source``."""
    tree = ast.parse(source)
    attributes = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and ast.unparse(node).startswith("torch.")
    ]
    modules = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch._")
    ]
    return sorted(attributes + modules)


@pytest.mark.parametrize("module", CONCEPTS, ids=lambda m: m.__name__)
def test_no_private_torch_api_in_the_concept_modules(module: object) -> None:
    assert private_torch_names(inspect.getsource(module)) == []  # type: ignore[arg-type]


def test_the_private_api_scan_sees_a_private_call() -> None:  # negative control
    source = "import torch\nfrom torch._dynamo import explain\ntorch._C._are_functorch_transforms_active()\n"
    assert private_torch_names(source) == [
        "torch._C",
        "torch._C._are_functorch_transforms_active",
        "torch._dynamo",
    ]


# --- the layout: the library apart from the commands ----------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str) -> set[str]:
    """Every module ``source`` imports, anywhere in it: at the top, inside a function, or
    inside ``with _common.lazy_imports():`` (an import that runs on first use is an import)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # "from dlconcepts import data" imports the module dlconcepts.data
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def package_imports() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports (anywhere in it)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path.read_text()) if m in modules and m != name}
        for name, path in modules.items()
    }


def is_command(name: str) -> bool:
    return name.startswith("dlconcepts.commands.") and not name.endswith("._common")


def test_the_library_never_imports_a_command() -> None:
    graph = package_imports()
    bad = {
        m: sorted(i for i in imports if i.startswith("dlconcepts.commands"))
        for m, imports in graph.items()
        if not m.startswith("dlconcepts.commands") and m != "dlconcepts.cli"
    }
    assert not {m: i for m, i in bad.items() if i}


def test_a_command_never_imports_another_command() -> None:
    graph = package_imports()
    bad = {m: sorted(filter(is_command, imports)) for m, imports in graph.items() if is_command(m)}
    assert not {m: i for m, i in bad.items() if i}
    commands = [m for m in graph if is_command(m)]
    expected = {"train", "check", "compare", "bench", "study", "signals", "symmetry", "plot"}
    assert {m.rsplit(".", 1)[1] for m in commands} >= expected


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle found by a depth-first walk, as a path back to its start."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            # importing dlconcepts.x runs the packages' __init__ first: not an edge that matters
            if nxt not in ("dlconcepts", "dlconcepts.commands"):
                cycle = visit(nxt, [*path, node])
                if cycle:
                    return cycle
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


def test_no_import_cycles() -> None:
    assert find_cycle(package_imports()) is None


def test_a_lazy_import_counts_as_an_import() -> None:  # negative control
    lazy = "with _common.lazy_imports():\n    import torch\n    from dlconcepts import training\n"
    assert imports_of(lazy) == {"torch", "dlconcepts", "dlconcepts.training"}
    assert imports_of("with open(path) as f:\n    training = f.read()\n") == set()
    # train imports the library only lazily: the graph still has the edge
    assert "dlconcepts.training" in package_imports()["dlconcepts.commands.train"]


def test_the_cycle_search_finds_a_cycle() -> None:  # negative control
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# --- concepts apart from the training configuration -------------------------------------------

# The modules that teach (and the data they are taught on): they take their names from
# dlconcepts.names, never a training run's settings from dlconcepts.choices.
CONCEPT_MODULES = [
    "dlconcepts.activations",
    "dlconcepts.backprop",
    "dlconcepts.data",
    "dlconcepts.data_files",
    "dlconcepts.init",
    "dlconcepts.init_extra",
    "dlconcepts.layers",
    "dlconcepts.losses",
    "dlconcepts.names",
]


def import_path(graph: dict[str, set[str]], start: str, target: str) -> list[str] | None:
    """A chain of imports from ``start`` to ``target`` (directly or through other modules)."""
    seen: set[str] = set()
    paths = [[start]]
    while paths:
        path = paths.pop()
        if path[-1] == target:
            return path
        for nxt in sorted(graph.get(path[-1], set()) - seen):
            seen.add(nxt)
            paths.append([*path, nxt])
    return None


@pytest.mark.parametrize("module", CONCEPT_MODULES)
def test_a_concept_module_imports_no_training_configuration(module: str) -> None:
    graph = package_imports()
    assert module in graph, f"{module} is not a module of the package"
    path = import_path(graph, module, "dlconcepts.choices")
    assert path is None, " -> ".join(path)


def test_the_import_search_finds_choices_through_another_module() -> None:  # negative control
    graph = {
        "dlconcepts.data": {"dlconcepts.training"},
        "dlconcepts.training": {"dlconcepts.choices"},
    }
    assert import_path(graph, "dlconcepts.data", "dlconcepts.choices") == [
        "dlconcepts.data",
        "dlconcepts.training",
        "dlconcepts.choices",
    ]
    # and in the real package, where a command does import it
    assert import_path(package_imports(), "dlconcepts.commands.train", "dlconcepts.choices")


# --- docstrings hold what was typed -------------------------------------------------------------


def docstring_control_characters(source: str) -> list[str]:
    r"""``line: character`` for each control character (a newline aside) in a docstring.

    A TAB in a docstring is almost always ``\t`` in a docstring that is not raw: ``"\text"``
    becomes a TAB followed by ``ext``, and the rendered math breaks."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        docstring = ast.get_docstring(node, clean=False)
        if docstring is None:
            continue
        line = node.body[0].lineno
        found += [
            f"{line + docstring[:i].count(chr(10))}: {ch!r}"
            for i, ch in enumerate(docstring)
            if ch != "\n" and unicodedata.category(ch) == "Cc"
        ]
    return found


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_control_character_in_a_docstring(path: Path) -> None:
    found = docstring_control_characters(path.read_text())
    assert not found, f"{path.relative_to(PACKAGE.parent)}, line: character: {found}"


def test_the_docstring_scan_sees_a_tab() -> None:  # negative control
    plain = 'def f():\n    """N(\\text{mean}, 1)."""\n'  # "\t" in a plain string is a TAB
    assert docstring_control_characters(plain) == ["2: '\\t'"]
    assert (
        docstring_control_characters(plain.replace('"""N', 'r"""N')) == []
    )  # a raw one keeps \text
    assert docstring_control_characters('"""A\n\x07bell"""') == ["2: '\\x07'"]


def test_the_package_docstring_names_every_module() -> None:
    """``dlconcepts/__init__.py`` is the map of the package: no module left off it."""
    doc = dlconcepts.__doc__ or ""
    top = {module_name(p) for p in PACKAGE.glob("*.py")} | {
        module_name(p.parent) for p in PACKAGE.glob("*/__init__.py")
    }
    named = set(re.findall(r"``(dlconcepts(?:\.\w+)?)``", doc))
    missing = sorted(top - named - {"dlconcepts", "dlconcepts.__main__"})
    assert not missing, f"modules the package docstring does not name: {missing}"
    assert not named - top, f"named but not modules: {sorted(named - top)}"
