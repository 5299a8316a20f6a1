"""The `dlconcepts` entry point: every command is reachable, a bad option gets one clear line,
and asking for help is instant: it imports neither torch nor torchvision."""

import os
import subprocess
import sys
import time

import pytest
import torch
from command_line import REPO

from dlconcepts import cli


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
    ("compare --activations swish", "'swish'"),
    ("compare --epochs 0", "'0'"),
    ("compare --limit-train 0", "'0'"),
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


def test_help_imports_neither_torch_nor_torchvision_and_is_quick() -> None:
    done = help_without_torch()
    assert done.returncode == 0 and "commands:" in done.stdout, done.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds = []
    for _ in range(3):  # the best of three: a busy machine slows one run, not all of them
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dlconcepts", "--help"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        seconds.append(time.perf_counter() - start)
    assert min(seconds) <= 0.5, seconds


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
