"""The `dlconcepts` entry point: every command is reachable, a bad option gets one clear line,
and asking for help is instant: it imports neither torch nor torchvision."""

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from command_line import REPO

from dlconcepts import choices, cli
from dlconcepts.commands import _common, train


def run(command_line: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``dlconcepts COMMAND_LINE`` in this process: its exit status, stdout and stderr."""
    try:
        code = cli.main(command_line.split())
    except SystemExit as exit_:  # argparse's way out
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trian"]) == 2
    assert "command: expected one of check, train" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(f"{name} --help", capsys)
    assert code == 0 and "--" in out


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")

# (command line, the bad value its error must name)
BAD_OPTIONS = [
    ("train --hidden 0", "'0'"),
    ("train --hidden 800,-1", "'800,-1'"),
    ("train --hidden abc", "'abc'"),
    ("train --epochs 0", "'0'"),
    ("train --activation gelu", "'gelu'"),
    ("train --limit-train 0", "'0'"),
    ("train --weight-decay -1", "'-1'"),
    ("train --init-std -1", "'-1'"),
    ("train --resume", "resume"),  # without --out
    ("train --log-every 0", "'0'"),
    ("train --optimizer sgd --momentum -1", "'-1'"),
    ("train --limit-train 70000", "70000"),  # more than the data holds
    ("train --lr 1e308", "'1e308'"),  # beyond float32: inf in every tensor it touches
    ("symmetry --constant 1e300", "'1e300'"),
    ("symmetry --constant=-4e38", "'-4e38'"),
    ("train --hidden 800,-1", "'-1' in '800,-1'"),  # the bad part, in what was typed
    ("compare --json /dev/null/rows.json", "not a folder"),  # checked before any training
    ("bench --json /dev/null/results.json", "not a folder"),
    ("compare --activations swish", "'swish'"),
    ("compare --epochs 0", "'0'"),
    ("compare --limit-train 0", "'0'"),
    # a seed torch cannot take: refused as typed, not torch's overflow traceback
    *(
        (f"{cmd} --seed 99999999999999999999999", "from 0 to 4294967295")
        for cmd in ("train", "explain", "compare", "study", "signals")
    ),
    ("train --seed -1", "--seed: expected an int from 0"),
    ("study --seeds 1,99999999999999999999999", "'99999999999999999999999' in"),
    ("train --limit-train 10000000", "--limit-train: expected an int from 1 to 60000, got"),
    ("symmetry --limit-test 100000", "--limit-test: expected an int from 1 to 10000, got"),
    ("signals --batch 100000", "--batch: expected an int from 1 to 60000, got '100000'"),
    ("signals --depth 100000", "--depth: expected an int from 1 to 100, got"),
    ("symmetry --steps 100000000", "--steps: expected an int from 1 to 10000, got"),
    ("train --optimizer sgd --momentum 1", "--momentum: expected a number from 0 to below 1"),
    ("study --momentum 1.5", "'1.5'"),
    pytest.param("check --device cuda", "'cuda'", marks=no_cuda),
    pytest.param("bench --device cuda", "'cuda'", marks=no_cuda),
]


@pytest.mark.parametrize("command_line, bad", BAD_OPTIONS)
def test_a_bad_option_ends_in_one_line(
    command_line: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error is the last line of stderr and names the bad value; before it there is at
    most argparse's usage (which lists the options, not what went wrong)."""
    code, _, err = run(command_line, capsys)
    assert code != 0
    *before, last = err.strip().splitlines()
    assert "error: " in last and bad in last, err
    if before:  # argparse's usage: "usage: ..." and its indented continuation lines
        assert before[0].startswith("usage: "), err
        assert all(line.startswith(" ") for line in before[1:]), err
    assert "Traceback" not in err and "['" not in err  # nor the whole command line as a list


def test_momentum_with_adam_is_not_used_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    parse = train.parse_args
    parse(["--optimizer", "adam", "--momentum", "0.5"])
    assert capsys.readouterr().err == "warning: --momentum is not used by --optimizer adam\n"
    parse(["--optimizer", "adam"])  # left at its default: nothing to warn about
    parse(["--optimizer", "sgd", "--momentum", "0.5"])
    assert capsys.readouterr().err == ""


def test_library_errors_name_the_option_as_typed() -> None:
    assert _common.as_option(ValueError("limit_train: expected x, got 5")) == (
        "--limit-train: expected x, got 5"
    )
    assert _common.as_option(ValueError("the cost is nan")) == "the cost is nan"


def test_a_model_too_big_is_refused_before_the_banner(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run("train --hidden 1000000,1000000 --no-progress", capsys)
    assert code == 1 and out == "", out  # nothing printed before the error
    assert err.startswith("error: --hidden: expected an MLP that fits in memory"), err


# A fresh interpreter that asks for help, then says whether torch, torchvision or matplotlib
# ran: a module imported lazily is bound, but runs only when first used.
HELP_THEN_WHAT_RAN = """
import sys, types
from dlconcepts.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
ran = [n for n in ("torch", "torchvision", "matplotlib") if type(sys.modules.get(n)) is types.ModuleType]
print("ran:", ",".join(ran), file=sys.stderr)
raise SystemExit(code)
"""


def help_without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", HELP_THEN_WHAT_RAN, *args, "--help"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.stderr.splitlines()[-1] == "ran: ", done.stderr
    return done


def test_help_imports_neither_torch_nor_torchvision() -> None:
    """What keeps ``--help`` quick: it imports no torch (its speed is a benchmark's business,
    not a timed test's)."""
    done = help_without_torch()
    assert done.returncode == 0 and "commands:" in done.stdout, done.stderr


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_command_help_imports_neither_torch_nor_torchvision(name: str) -> None:
    done = help_without_torch(name)
    assert done.returncode == 0 and "--" in done.stdout, done.stderr.strip().splitlines()[-1]


def test_ctrl_c_anywhere_is_status_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def ctrl_c(name: str) -> None:  # say, while torch is still being imported
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.importlib, "import_module", ctrl_c)
    assert cli.main(["check"]) == 130
    assert capsys.readouterr().err == "dlconcepts check: interrupted\n"


def command_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``dlconcepts NAME`` builds, caught as ``--help`` runs."""
    made: list[argparse.ArgumentParser] = []
    real = _common.parser

    def catch(*args: object, **kwargs: object) -> argparse.ArgumentParser:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(_common, "parser", catch)
    module = importlib.import_module(cli.COMMANDS[name][0])
    with pytest.raises(SystemExit):
        module.main(["--help"])
    return made[-1]


# train's --activation also takes a learner's own Function (FILE.py:NAME): its own declaration
LOCAL = {("train", "--activation")}


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_a_shared_flag_means_the_same_in_every_command(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json, --limit-test, --mnist-index ... are declared once, in _common.OPTIONS."""
    parser = command_parser(name, monkeypatch)
    for action in parser._actions:
        for flag in action.option_strings:
            shared = _common.OPTIONS.get(flag.removeprefix("--"))
            if shared is None or (name, flag) in LOCAL:
                continue
            assert action.type is shared.get("type"), (name, flag)
            assert action.choices == shared.get("choices"), (name, flag)


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_help_shows_defaults_as_they_are_typed(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(f"{name} --help", capsys)
    assert code == 0
    text = " ".join(out.split())  # argparse wraps lines
    for wrong in ("(default: None)", "(default: False)", "PosixPath", "[runs", "('"):
        assert wrong not in text, (name, wrong)
    assert not re.search(r"\(default[^)]*\) \(default", text), name  # said twice


def test_help_of_a_list_default() -> None:
    parser = _common.parser("x", None)
    parser.add_argument("--results", type=Path, nargs="+", default=[Path("a"), Path("b")], help="r")
    parser.add_argument("--sizes", default="2,2,2", help="sizes")
    parser.add_argument("--rate", default="5%", help="rate")
    text = " ".join(parser.format_help().split())
    assert "(default: a b)" in text and "sizes (default: 2,2,2)" in text
    assert "rate (default: 5%)" in text


def test_an_error_is_one_line_of_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """A message from a captured tool may hold a terminal's colour codes and line breaks."""
    assert _common.error("dot: \x1b[1;31mError:\x1b[0m syntax error\nin line 1") == 1
    assert capsys.readouterr().err == "error: dot: Error: syntax error in line 1\n"


def test_an_error_keeps_its_indented_fix_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A data error is the error, then an indented line that says how to fix it."""
    assert _common.error("f.gz: expected the file, got 'no such file'\n  to fix: clone") == 1
    assert capsys.readouterr().err == (
        "error: f.gz: expected the file, got 'no such file'\n  to fix: clone\n"
    )


def test_an_output_path_is_checked_without_creating_anything(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert _common.unwritable(tmp_path / "new" / "deeper", folder=True) is None
    assert _common.unwritable(tmp_path / "file", folder=False) is None
    why = _common.unwritable(tmp_path / "file" / "sub" / "x.json", folder=False)
    assert why == f"{tmp_path / 'file'} is a file, not a folder"
    assert _common.unwritable(tmp_path / "file", folder=True) == f"{tmp_path / 'file'} is a file"
    assert _common.unwritable(tmp_path, folder=False) == f"{tmp_path} is a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_lazy_import_runs_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_example.py").write_text("RAN = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_example", raising=False)
    with _common.lazy_imports():
        import lazy_example
    assert "RAN" not in object.__getattribute__(lazy_example, "__dict__")  # bound, not run
    assert lazy_example.RAN  # the first use runs it
    assert not any(isinstance(f, _common._LazyFinder) for f in sys.meta_path)


def test_a_dry_run_is_one_epoch_of_a_few_batches_on_a_few_examples() -> None:
    dry = _common.dry_run(choices.TrainConfig(epochs=7))
    assert (dry.epochs, dry.max_steps) == (1, _common.DRY_RUN_STEPS)
    assert dry.limit_train == dry.limit_test == _common.DRY_RUN_EXAMPLES
    # fewer examples, where --limit-train or --limit-test asks for fewer, are kept
    fewer = _common.dry_run(choices.TrainConfig(limit_train=640, limit_test=100_000))
    assert (fewer.limit_train, fewer.limit_test) == (640, _common.DRY_RUN_EXAMPLES)


class DryRunAsked(Exception):
    """Raised by the stand-in for _common.dry_run: the command asked the one policy."""


# every command that trains, with --dry-run: it must cut its run through _common.dry_run
DRY_RUNS = ["train", "compare --dtypes float32", "study", "symmetry", "plot curves"]


@pytest.mark.parametrize("command_line", DRY_RUNS)
def test_every_dry_run_is_the_one_policy(
    command_line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def asked(cfg: choices.TrainConfig) -> choices.TrainConfig:
        raise DryRunAsked

    monkeypatch.setattr(_common, "dry_run", asked)
    monkeypatch.chdir(tmp_path)  # plot curves: no study saved here
    name, *argv = command_line.split()
    module = importlib.import_module(cli.COMMANDS[name][0])
    with pytest.raises(DryRunAsked):
        module.main([*argv, "--dry-run"])


def test_train_dry_run_is_the_run_without_it_cut_down() -> None:
    argv = ["--hidden", "32,16", "--epochs", "3", "--limit-train", "640"]
    dry = train.parse_args([*argv, "--dry-run"])[0]
    assert dry == _common.dry_run(train.parse_args(argv)[0])


def test_a_commands_run_is_what_its_shared_options_set() -> None:
    """Each shared option's dest is the TrainConfig field it sets; nothing else is taken."""
    args = argparse.Namespace(batch_size=64, lr=0.1, out="figures", activations=("relu",))
    cfg = _common.train_config(args, choices.STUDY, progress=False)
    assert (cfg.batch_size, cfg.lr, cfg.progress) == (64, 0.1, False)
    assert (cfg.out, cfg.hidden, cfg.activation) == (None, choices.STUDY.hidden, "relu")
    dry = _common.train_config(argparse.Namespace(epochs=9, dry_run=True))
    assert dry == _common.dry_run(choices.TrainConfig(epochs=9))
