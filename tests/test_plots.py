"""The pictures: each is a real PNG; without matplotlib the commands say how to get it."""

import os
import sys
from pathlib import Path

import pytest
import torch
from command_line import assert_refused, no_cuda, run_dlconcepts

from dlconcepts import data, figures, training
from dlconcepts.commands import plot, signals

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, path
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 300 and height > 200, (path, width, height)


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import NAME` fail


def test_without_matplotlib_plot_prints_the_install_hint(
    no_matplotlib, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plot.main(["activations", "--out", str(tmp_path)]) == 1
    assert 'pip install -e ".[plot]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(figures.MissingExtra, match=r"pip install -e"):
        figures.plot_activations(tmp_path / "a.png")


def test_without_matplotlib_signals_still_writes_tables(
    no_matplotlib, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert signals.main(["--dry-run", "--activations", "relu", "--out", str(tmp_path)]) == 0
    assert "signals.png not drawn" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signals.json", "signals.md"]


def test_plot_all_dry_run_works_in_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No study or signals saved: --dry-run trains a tiny grid and measures the signals."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert plot.main(["all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "runs" / "plot"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(plot.FILES.values())
    for name in plot.FILES.values():
        assert f"wrote runs/plot/{name}" in out
        assert_png(folder / name)


def test_without_study_results_one_line_names_the_command(tmp_path: Path) -> None:
    """From any directory, as a new user runs it: the tree under test, in a fresh process."""
    pytest.importorskip("matplotlib")
    done = run_dlconcepts("plot", "curves", cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "runs/study" in line and "`dlconcepts study`" in line, line
    assert list(tmp_path.iterdir()) == []


def test_signals_command_draws_its_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    argv = ["--dry-run", "--activations", "relu", "--out", str(tmp_path / "out")]
    assert signals.main([*argv, "--img", str(tmp_path / "img")]) == 0
    assert_png(tmp_path / "img" / "signals.png")


def test_curves_show_diverged_runs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")

    def run(init: str, seed: int, accuracy: float | None) -> dict:
        if accuracy is None:
            return {"activation": "relu", "init": init, "seed": seed, "diverged": "cost is nan"}
        history = [
            {"epoch": e, "test_cost": 1 / e, "test_accuracy": accuracy * e / 2} for e in (1, 2)
        ]
        return {
            "activation": "relu",
            "init": init,
            "seed": seed,
            "diverged": None,
            "history": history,
        }

    runs = [run("he", 1, 0.9), run("he", 2, 0.92), run("random-large", 1, None)]
    assert_png(figures.plot_curves({"runs": runs}, tmp_path / "c.png"))


def test_worst_digits_from_a_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cfg = training.TrainConfig(
        hidden=(32,), epochs=1, max_steps=5, device="cpu", out=str(tmp_path / "run")
    )
    training.fit(cfg, *data.load_splits(limit_train=640, limit_test=100), log=lambda line: None)
    assert plot.main(["worst", "--checkpoint", cfg.out, "--out", str(tmp_path)]) == 0
    assert_png(tmp_path / "worst_digits.png")


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["pictures"], "'pictures'"),
        (["worst", "--epochs", "0"], "'0'"),
        (["all", "--seed", "one"], "'one'"),
        (["worst", "--checkpoint", "nowhere"], "nowhere"),
        pytest.param(["worst", "--device", "cuda"], "'cuda'", marks=no_cuda),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    assert_refused(plot.main, argv, bad, capsys)


def test_learned_weights_beside_the_initial_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    cfg = training.TrainConfig(
        hidden=(16,), epochs=1, max_steps=5, device="cpu", out=str(tmp_path / "run")
    )
    training.fit(cfg, *data.load_splits(limit_train=640, limit_test=100), log=lambda line: None)
    assert plot.main(["weights", "--checkpoint", cfg.out, "--out", str(tmp_path)]) == 0
    assert f"wrote {tmp_path / plot.LEARNED}" in capsys.readouterr().out
    assert_png(tmp_path / plot.LEARNED)
    assert_png(tmp_path / "init_weights.png")


@pytest.mark.parametrize("what", ["worst", "weights"])
@pytest.mark.parametrize(
    "content",
    [b"", b"PK\x03\x04" + b"\x00" * 60, b"\x80\x02}q\x00."],
    ids=["empty", "zip", "pickle"],
)
def test_a_damaged_checkpoint_is_one_line(
    what: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "checkpoint.pt").write_bytes(content)
    argv = [what, "--checkpoint", str(tmp_path), "--out", str(tmp_path / "img")]
    assert_refused(plot.main, argv, "checkpoint.pt", capsys)
    assert not (tmp_path / "img" / plot.LEARNED).exists()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of a few steps: a checkpoint to draw from."""
    out = tmp_path_factory.mktemp("run")
    cfg = training.TrainConfig(hidden=(16,), epochs=1, max_steps=5, device="cpu", out=str(out))
    training.fit(cfg, *data.load_splits(limit_train=640, limit_test=100), log=lambda line: None)
    return out


def test_plot_all_without_a_study_draws_the_rest_and_says_what_to_run(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    argv = ["all", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "img")]
    (tmp_path / "empty").mkdir()
    assert plot.main([*argv, "--results", str(tmp_path / "empty")]) == 0
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert line.startswith("warning: plot curves: not drawn:") and "`dlconcepts study`" in line
    drawn = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert drawn == sorted({*plot.FILES.values(), plot.LEARNED} - {plot.FILES["curves"]})
    for name in drawn:
        assert_png(tmp_path / "img" / name)


def test_plot_all_fails_only_when_nothing_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")

    def missing(what: str, args: object) -> list[Path]:
        raise plot.Missing(f"no input for {what}")

    monkeypatch.setattr(plot, "draw", missing)
    assert plot.main(["all", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("not drawn") == len(plot.FILES)


def test_a_damaged_results_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "results.json").write_text("{cut short")
    argv = ["curves", "--results", str(tmp_path), "--out", str(tmp_path / "img")]
    assert_refused(plot.main, argv, "results.json: expected the JSON", capsys)


@pytest.mark.parametrize("what", ["worst", "weights"])
def test_a_checkpoint_that_is_not_finite_is_one_line(
    what: str, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A diverged run's weights would draw as blank panels."""
    pytest.importorskip("matplotlib")
    ckpt = training.read_checkpoint(checkpoint / training.CHECKPOINT)
    ckpt["model"]["hidden1.weight"][0, 0] = float("inf")
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    argv = [what, "--checkpoint", str(tmp_path), "--out", str(tmp_path / "img")]
    assert_refused(plot.main, argv, "hidden1.weight: expected finite weights, got inf", capsys)
    assert not (tmp_path / "img" / plot.LEARNED).exists()


def test_an_out_inside_a_file_is_refused_before_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    argv = ["weights", "--out", str(tmp_path / "file" / "img")]
    assert_refused(plot.main, argv, "file is a file, not a folder", capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_refused_before_drawing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_refused(
        plot.main, ["weights", "--out", str(locked / "img")], "permission denied", capsys
    )


@pytest.mark.parametrize("what", ["signals", "curves"])
@pytest.mark.parametrize("given, found", [("nonexist", "no such folder"), ("file", "a file")])
def test_results_given_that_is_not_a_folder_is_one_line(
    what: str,
    given: str,
    found: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A misspelt --results is named, not looked in and the signals measured afresh."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("{}")
    argv = [what, "--results", given, "--out", "img"]
    assert_refused(
        plot.main,
        argv,
        f"--results: expected a folder of saved results, got {given!r}: {found}",
        capsys,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
