"""The tree under test, run as a user runs it: the example scripts and ``python -m dlconcepts``.

Each runs in a fresh process with the repository first on ``PYTHONPATH`` (so the code
tested is this tree's, not an installed dlconcepts), from a folder outside the repository.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_dry_run(script: Path, tmp_path: Path) -> None:
    result = run([str(script), "--dry-run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout.lower(), result.stdout
    assert list(tmp_path.iterdir()) == []  # wrote nothing where it was run


def test_python_dash_m_ends_a_bad_option_in_one_line(tmp_path: Path) -> None:
    result = run(["-m", "dlconcepts", "train", "--hidden", "800,-1"], cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "dlconcepts train: error: argument --hidden: expected positive ints like 256,128, "
        "got '-1' in '800,-1'"
    )
    assert "Traceback" not in result.stderr
