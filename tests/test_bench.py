"""The benchmark runs end to end (speed itself is measured by `dlconcepts bench`, never asserted)."""

import json
from pathlib import Path

import pytest

from dlconcepts import data
from dlconcepts.commands import bench
from dlconcepts.training import TrainConfig, build_model


def test_dry_run_prints_every_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--dry-run", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for word in (
        "sigmoid",
        "tanh",
        "relu",
        "1x1",
        "64x256",
        "ratio",
        "fixed cost per call",
        "expm1 pass alone",
        "saved for backward",
        "training epoch",
        "our cross-entropy",
        "DataLoader",
        "data-parallel epoch",
        "low-precision matrix units",
        "torch.compile(fullgraph=True)",
        "fixed cost of a compiled call",
        "expm1 / exp in a generated kernel",
        "compiled, float32",
        "first compiled epoch",
        "autocast bfloat16",
        "TFLOP/s",
        "dry run:",
    ):
        assert word in text, text
    assert "target:" not in text, "a dry run's figures are no measurements to check targets with"
    results = json.loads(out.read_text())
    assert results["dry_run"] is True and "targets" not in results, sorted(results)
    assert {r["activation"] for r in results["activations"]} == {"sigmoid", "tanh", "relu"}
    assert all(r["ratio"] > 0 for r in results["activations"])
    assert all(r["expm1_vs_tanh"] > 0 for r in results["activations"])
    assert {r["shape"] for r in results["activations"]} == {"1x1", "64x256"}
    parts = results["epoch"]["step_parts"]
    assert set(parts) == {"built-in", "our Linear", "our ReLU", "our cross-entropy", "all ours"}
    compiled = results["compiled"]
    assert {(r["activation"], r["shape"]) for r in compiled} == {
        ("sigmoid", "1x1"),
        ("tanh", "1x1"),
        ("relu", "1x1"),
    }
    for r in compiled:
        for key in ("ours_compiled", "builtin", "builtin_compiled"):
            assert r[key]["median"] > 0, r
        assert r["ratio"] > 0 and r["ratio_compiled"] > 0 and r["expm1_vs_exp_compiled"] > 0, r
    epochs = results["compiled-epoch"]
    for key in ("custom_eager", "custom_compiled", "builtin_eager", "builtin_compiled"):
        assert epochs[key]["median"] > 0, epochs
    assert epochs["custom_first_compiled_s"] > 0 and epochs["ratio"] > 0, epochs
    amp = results["autocast"]
    for key in ("custom_float32", "custom_autocast", "builtin_float32", "builtin_autocast"):
        assert amp[key]["median"] > 0, amp
    assert amp["dtype"] == "bfloat16" and amp["matmul"]["bfloat16_tflops"] > 0, amp
    parallel = results["data-parallel"]
    assert parallel["1"] > 0 and parallel["2"] > 0 and 0 < parallel["communication_s"]


def test_markdown_prints_tables_to_paste(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--dry-run", "--only", "memory,epoch", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "| epoch | batch | ours | built-in | ratio |" in text, text
    assert "| eager, float32 | 128 |" in text, text
    assert "\n\nsaved for backward" in text, "paragraphs are separated by blank lines: " + text


def test_targets_are_checked_with_the_cause_of_a_miss() -> None:
    row = {"activation": "tanh", "shape": "4096x4096"}
    results = {
        "compiled": [
            {**row, "ratio": 1.24},
            {"activation": "sigmoid", "shape": "256x1024", "ratio": 1.6},
        ],
        "epoch": {"ratio": 1.31},
    }
    assert bench.target_lines(results) == [
        "target: compiled tanh 4096x4096 ≤ 1.25x the built-in eager: 1.24x, met",
        "target: compiled sigmoid 256x1024 ≤ 1.50x the built-in eager: 1.60x, missed "
        "(cause: the fixed cost of a compiled call, above)",
        "target: eager epoch ≤ 1.30x the built-in eager: 1.31x, missed "
        "(cause: what each kind of piece adds to a step, above)",
    ]
    assert bench.target_lines({}) == [], "no figure, no verdict"


def test_matrix_units_are_named_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert bench.cpu_matrix_flags(cpuinfo) == ["amx_bf16", "avx512_bf16"]
    assert bench.cpu_matrix_flags(tmp_path / "missing") == []


def test_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--only", "memory,everything"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --only: expected comma-separated names from" in err and "'everything'" in err


def test_custom_step_saves_no_more_than_builtin() -> None:
    """Memory: the hand-written pieces keep no more for the backward than torch.nn's."""
    train_set, _ = data.load_splits(limit_train=256, limit_test=10)
    x, y = train_set.images[:128].clone(), train_set.labels[:128].clone()  # not views of the set
    sizes = {}
    for impl in ("custom", "torch"):
        for act in ("sigmoid", "tanh", "relu"):
            model = build_model(TrainConfig(hidden=(256, 128), impl=impl, activation=act))
            sizes[impl, act] = bench.saved_bytes(model, impl, x, y)
    for act in ("sigmoid", "tanh", "relu"):
        assert sizes["custom", act] <= sizes["torch", act], sizes
