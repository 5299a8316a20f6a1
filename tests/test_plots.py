"""The pictures: each is a real PNG; without matplotlib the command says how to get it."""

import json
import sys
from pathlib import Path

import pytest

from dlconcepts import plots, signals, study, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, path
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 300 and height > 200, (path, width, height)


def test_without_matplotlib_plot_prints_the_install_hint(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert plots.main(["activations", "--out", str(tmp_path)]) == 1
    assert 'pip install -e ".[plot]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(plots.MissingExtra, match=r"pip install -e"):
        plots.plot_activations(tmp_path / "a.png")


def test_without_matplotlib_signals_still_writes_tables(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert signals.main(["--dry-run", "--activations", "relu", "--out", str(tmp_path)]) == 0
    assert "signals.png not drawn" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signals.json", "signals.md"]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A tiny study and signals run, as `dlconcepts plot` reads them from docs/results."""
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("results")
    argv = ["--dry-run", "--no-progress", "--seeds", "1,2", "--out", str(folder)]
    assert study.main(argv) == 0
    assert signals.main(["--dry-run", "--no-plot", "--out", str(folder)]) == 0
    return folder


def test_every_picture_is_a_png(results_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    argv = ["all", "--dry-run", "--results", str(results_dir), "--out", str(tmp_path)]
    assert plots.main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(plots.FILES.values())
    for name in plots.FILES.values():
        assert_png(tmp_path / name)


def test_signals_command_draws_its_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert signals.main(["--dry-run", "--out", str(tmp_path), "--img", str(tmp_path)]) == 0
    assert_png(tmp_path / "signals.png")


def test_curves_without_results_say_how_to_make_them(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    argv = ["curves", "--results", str(tmp_path / "none"), "--out", str(tmp_path)]
    assert plots.main(argv) == 1
    assert "dlconcepts study --out" in capsys.readouterr().err


def test_curves_show_diverged_runs(results_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = json.loads((results_dir / "results.json").read_text())
    results["runs"][0]["diverged"], results["runs"][0]["history"] = "cost is nan", []
    results["runs"][1]["diverged"], results["runs"][1]["history"] = "cost is nan", []
    assert_png(plots.plot_curves(results, tmp_path / "c.png"))


def test_worst_digits_from_a_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    argv = ["--dry-run", "--hidden", "32", "--no-progress", "--out", str(run)]
    assert train.main(argv) == 0
    model, cfg = plots.load_checkpoint_model(run)
    assert cfg.hidden == (32,) and model.hidden1.out_features == 32
    assert plots.main(["worst", "--checkpoint", str(run), "--out", str(tmp_path)]) == 0
    assert_png(tmp_path / "worst_digits.png")


def test_a_missing_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    argv = ["worst", "--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    assert plots.main(argv) == 1
    assert "expected a checkpoint, found none" in capsys.readouterr().err
