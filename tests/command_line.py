"""What the command tests share: refusing a bad option, and running ``dlconcepts`` for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# for bad-option lists: "--device cuda" is refused only where there is no CUDA device
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


def assert_refused(
    main: Callable[[list[str]], int],
    argv: list[str],
    bad: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``main(argv)`` fails (a non-zero status, returned or exited with) with one error line
    that names ``bad``; before it there is at most argparse's usage, and never a traceback."""
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's way out
        status = exit_.code
    assert status not in (0, None)
    err = capsys.readouterr().err
    *before, last = err.strip().splitlines()
    assert "error: " in last and bad in last, err
    assert all(line.startswith(("usage: ", " ")) for line in before), err
    assert "Traceback" not in err


def run_dlconcepts(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m dlconcepts ARGS`` in ``cwd``, importing this checkout (not an installed copy)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "dlconcepts", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
