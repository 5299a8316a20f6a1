"""scripts/gpu_check.py: its steps are the right commands, its summary marks what failed, and
without CUDA it says so and succeeds (the GPU run itself happens on a machine with CUDA)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HAS_CUDA

from dlconcepts.commands import bench, train

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
assert spec is not None and spec.loader is not None
gpu_check = importlib.util.module_from_spec(spec)
sys.modules["gpu_check"] = gpu_check  # where its dataclass finds its module
spec.loader.exec_module(gpu_check)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_without_cuda_it_says_so_in_one_line_and_succeeds(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device"), result.stdout
    assert list(tmp_path.iterdir()) == [], "wrote nothing"


def test_dry_run_prints_every_step_and_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--dry-run"]) == 0
    text = capsys.readouterr().out
    for expected in (
        "1. CUDA-marked tests",
        "-m pytest -q -m cuda tests",
        "-m dlconcepts check --device cuda",
        "--impl custom",
        "--impl torch",
        "-m dlconcepts bench --device cuda --only compiled,compiled-epoch",
        "--amp",
        "-m torch.distributed.run --standalone --nproc_per_node 1 -m dlconcepts train",
        "6. one epoch in an NCCL group",
    ):
        assert expected in text, f"expected {expected!r} in:\n{text}"


def test_every_dlconcepts_command_parses(tmp_path: Path) -> None:
    """Each step's options are ones its command takes (on the CPU here: cuda needs a GPU)."""
    parsers = {"train": train.build_parser(), "bench": bench.build_parser()}
    seen = set()
    for step in gpu_check.steps(tmp_path):
        for command in step.commands:
            if "dlconcepts" not in command:
                continue
            name, *args = command[command.index("dlconcepts") + 1 :]
            if name in parsers:
                parsers[name].parse_args(["cpu" if a == "cuda" else a for a in args])
                seen.add(name)
    assert seen == set(parsers), seen


def test_the_summary_marks_each_step(tmp_path: Path) -> None:
    python = sys.executable

    def wrong(out: Path) -> str:
        raise ValueError("expected 1, got 2")

    steps = [
        gpu_check.Step("runs", [[python, "-c", "pass"]], lambda out: "fine"),
        gpu_check.Step("exits 3", [[python, "-c", "raise SystemExit(3)"], [python, "-c", "pass"]]),
        gpu_check.Step("checks wrong", [[python, "-c", "pass"]], wrong),
        gpu_check.Step("hangs", [[python, "-c", "import time; time.sleep(30)"]]),
    ]
    table, ok = gpu_check.run_all(steps, tmp_path, timeout=5)
    assert not ok
    rows = {line.split("  ")[0]: line for line in table.splitlines()[1:]}
    assert " pass " in rows["runs"] and rows["runs"].endswith("fine"), table
    assert " FAIL " in rows["exits 3"] and "exit 3" in rows["exits 3"], table
    assert " FAIL " in rows["checks wrong"] and "expected 1, got 2" in rows["checks wrong"], table
    assert "timed out after 5 s" in rows["hangs"], table
    table, ok = gpu_check.run_all(steps[:1], tmp_path, timeout=5)
    assert ok, table


def test_same_accuracy_to_rounding() -> None:
    assert gpu_check.same_accuracy({"test_accuracy": 0.9781}, {"test_accuracy": 0.9788}) == (
        "ours 97.81%, torch's 97.88%"
    )
    with pytest.raises(ValueError, match=r"within 0.1 points, got ours 97.50% and torch's 97.80%"):
        gpu_check.same_accuracy({"test_accuracy": 0.975}, {"test_accuracy": 0.978})
