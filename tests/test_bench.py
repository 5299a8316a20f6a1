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
    ):
        assert word in text, text
    results = json.loads(out.read_text())
    assert {r["activation"] for r in results["activations"]} == {"sigmoid", "tanh", "relu"}
    assert all(r["ratio"] > 0 for r in results["activations"])
    assert all(r["expm1_vs_tanh"] > 0 for r in results["activations"])
    assert {r["shape"] for r in results["activations"]} == {"1x1", "64x256"}
    parts = results["epoch"]["step_parts"]
    assert set(parts) == {"built-in", "our Linear", "our ReLU", "our cross-entropy", "all ours"}
    parallel = results["data-parallel"]
    assert parallel["1"] > 0 and parallel["2"] > 0 and 0 < parallel["communication_s"]


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
