#!/usr/bin/env python3
"""Everything in this project that needs a CUDA GPU, in one command, with one summary table.

    python scripts/gpu_check.py            # on a machine with CUDA: run every step
    python scripts/gpu_check.py --dry-run  # print the steps and their commands, run nothing

The steps, each a fresh process of this tree's code, timed and marked pass or FAIL:

1. the CUDA-marked tests (``pytest -m cuda``),
2. every hand-written gradient against PyTorch's on the GPU (``dlconcepts check --device cuda``),
3. one epoch of the default job with our pieces and one with torch.nn's: the same test
   accuracy to rounding (within 0.1 points, 10 of the 10,000 test images),
4. the compiled rows of the benchmark (``dlconcepts bench --only compiled,compiled-epoch``),
5. one epoch under mixed precision (``dlconcepts train --amp``), its accuracy next to step 3's,
6. one epoch in a process group over NCCL (``torchrun --nproc_per_node 1``: ``train --nproc 1``
   trains in the one process it is, without a group).

On a machine without CUDA it says so in one line and exits 0; with CUDA it exits 1 when any
step failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlconcepts.commands import _common

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# the largest difference in test accuracy, in points, that float rounding explains
ACCURACY_POINTS = 0.1


@dataclass
class Step:
    """One check: commands run in order from the repository's root (all must exit 0), then
    ``verify`` on the folder they wrote into, which returns a short detail for the table or
    raises ``ValueError`` saying what was wrong."""

    name: str
    commands: list[list[str]]
    verify: Callable[[Path], str] | None = None
    detail: str = field(default="", init=False)


def dlconcepts(*args: str) -> list[str]:
    return [PYTHON, "-m", "dlconcepts", *args]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def same_accuracy(ours: dict, theirs: dict) -> str:
    """Our pieces' and torch.nn's test accuracy (from ``metrics.json``) agree to rounding."""
    a, b = 100 * ours["test_accuracy"], 100 * theirs["test_accuracy"]
    if abs(a - b) > ACCURACY_POINTS:
        raise ValueError(
            f"expected the same test accuracy within {ACCURACY_POINTS} points, got ours "
            f"{a:.2f}% and torch's {b:.2f}%"
        )
    return f"ours {a:.2f}%, torch's {b:.2f}%"


def amp_accuracy(out: Path) -> str:
    """What ``--amp`` ran in and reached, next to the float32 epoch of our pieces."""
    amp, full = metrics(out / "amp"), metrics(out / "custom")
    return (
        f"{amp['precision']}: {100 * amp['test_accuracy']:.2f}% "
        f"(float32: {100 * full['test_accuracy']:.2f}%)"
    )


def nccl_group(out: Path) -> str:
    m = metrics(out / "nccl")
    if (m["backend"], m["world_size"]) != ("nccl", 1):
        raise ValueError(
            f"expected a group of 1 over nccl, got {m['world_size']} over {m['backend']}"
        )
    return f"nccl, {100 * m['test_accuracy']:.2f}%"


def steps(out: Path) -> list[Step]:
    """The checks, writing what they write under ``out``."""
    epoch = ["train", "--device", "cuda", "--epochs", "1", "--no-progress"]
    return [
        Step("CUDA-marked tests", [[PYTHON, "-m", "pytest", "-q", "-m", "cuda", "tests"]]),
        Step("gradients proven on the GPU", [dlconcepts("check", "--device", "cuda")]),
        Step(
            "one epoch, ours and torch's: same accuracy",
            [
                dlconcepts(*epoch, "--impl", impl, "--out", str(out / impl))
                for impl in ("custom", "torch")
            ],
            lambda out: same_accuracy(metrics(out / "custom"), metrics(out / "torch")),
        ),
        Step(
            "compiled benchmark rows",
            [
                dlconcepts(
                    "bench",
                    "--device",
                    "cuda",
                    "--only",
                    "compiled,compiled-epoch",
                    "--repeats",
                    "2",
                )
            ],
        ),
        Step(
            "one epoch under --amp",
            [dlconcepts(*epoch, "--amp", "--out", str(out / "amp"))],
            amp_accuracy,
        ),
        Step(
            "one epoch in an NCCL group",
            [
                [
                    *[
                        PYTHON,
                        "-m",
                        "torch.distributed.run",
                        "--standalone",
                        "--nproc_per_node",
                        "1",
                    ],
                    *dlconcepts(*epoch, "--out", str(out / "nccl"))[1:],
                ]
            ],
            nccl_group,
        ),
    ]


def run_step(step: Step, out: Path, timeout: float) -> bool:
    """Run ``step``'s commands, their output passing through; whether all went well."""
    for command in step.commands:
        print(f"$ {' '.join(command)}", flush=True)
        try:
            code = subprocess.run(command, cwd=ROOT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            step.detail = f"timed out after {timeout:.0f} s"
            return False
        if code != 0:
            step.detail = f"exit {code}: {' '.join(command[1:4])} ..."
            return False
    if step.verify is not None:
        try:
            step.detail = step.verify(out)
        except (ValueError, OSError, KeyError) as e:
            step.detail = str(e)
            return False
    return True


def run_all(checks: list[Step], out: Path, timeout: float) -> tuple[str, bool]:
    """Every step (one failing does not stop the others); the summary table and whether
    every step passed."""
    rows, ok = [], True
    for step in checks:
        t0 = time.perf_counter()
        passed = run_step(step, out, timeout)
        ok &= passed
        seconds = time.perf_counter() - t0
        rows.append((step.name, "pass" if passed else "FAIL", f"{seconds:.0f} s", step.detail))
    return _common.text_table(["step", "result", "time", "detail"], rows, right=2), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="every check that needs a CUDA GPU, with one summary table",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the steps and their commands, run nothing"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one command may take")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        checks = steps(Path(folder))
        if args.dry_run:
            for i, step in enumerate(checks, 1):
                print(f"{i}. {step.name}")
                for command in step.commands:
                    print(f"   $ {' '.join(command)}")
            return 0
        if not torch.cuda.is_available():
            print(
                f"gpu_check: no CUDA device on this machine (torch {torch.__version__}), nothing to check"
            )
            return 0
        table, ok = run_all(checks, Path(folder), args.timeout)
    print(f"\ngpu_check on {torch.cuda.get_device_name()}, torch {torch.__version__}\n")
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
