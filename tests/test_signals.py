"""Signals through a 10-layer MLP at init: vanishing, exploding and stable, on a real batch."""

import json
import math
from pathlib import Path

import pytest
import torch
from command_line import assert_refused

from dlconcepts import data, experiments
from dlconcepts.commands import _common, signals
from dlconcepts.layers import MLP
from dlconcepts.losses import cross_entropy

ACTIVATIONS = ("sigmoid", "tanh", "relu")


@pytest.fixture(scope="module")
def stats() -> dict[tuple[str, str], list[dict]]:
    batch = data.load("mnist", train=True, limit=256)
    payload = experiments.measure_signals(batch, ACTIVATIONS, _common.INITS, depth=10, width=256)
    assert payload["batch"] == 256 and payload["depth"] == 10
    return {(r["activation"], r["init"]): r["layers"] for r in payload["results"]}


def ratio(layers: list[dict], key: str) -> float:
    """Layer 10 over layer 1."""
    return layers[-1][key] / layers[0][key]


def test_every_combination_has_ten_layers(stats) -> None:
    assert len(stats) == 15
    for layers in stats.values():
        assert [s["layer"] for s in layers] == list(range(1, 11))


def test_small_random_init_vanishes(stats) -> None:
    # backward: each sigmoid layer multiplies the gradient std by ~sqrt(256)·0.01·σ' ≈ 0.04
    assert ratio(stats["sigmoid", "random-small"], "grad_std") > 1e3  # layer 1 ≪ layer 10
    # forward: each tanh / relu layer multiplies the activation std by ~0.16 (or 0.11)
    for act in ("tanh", "relu"):
        layers = stats[act, "random-small"]
        assert ratio(layers, "act_std") < 1e-3, act
        assert ratio(layers, "grad_std") > 1e3, act


def test_large_random_init_explodes_or_saturates(stats) -> None:
    relu = stats["relu", "random-large"]
    assert ratio(relu, "act_std") > 1e3  # ~sqrt(256/2) ≈ 11 per layer
    assert 1 / ratio(relu, "grad_std") > 1e3  # and the gradient grows going back
    for act in ("sigmoid", "tanh"):
        assert stats[act, "random-large"][-1]["flat"] > 0.5, act  # f' ≈ 0 for most units


@pytest.mark.parametrize("act, scheme", [("tanh", "xavier"), ("relu", "he")])
def test_matched_init_is_stable(stats, act: str, scheme: str) -> None:
    layers = stats[act, scheme]
    for key in ("act_std", "grad_std"):
        assert 0.1 < ratio(layers, key) < 10, (key, [s[key] for s in layers])
    assert signals.verdict(act, layers) == "stable"


def test_verdicts_name_the_failure(stats) -> None:
    assert "exploding" in signals.verdict("relu", stats["relu", "random-large"])
    assert "gradient vanishes" in signals.verdict("sigmoid", stats["sigmoid", "random-small"])
    assert "saturated" in signals.verdict("tanh", stats["tanh", "random-large"])
    flat = {"act_std": 0.0, "grad_std": 0.0, "flat": 0.0}
    assert signals.verdict("tanh", [flat, flat]).startswith("zero")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_row_that_overflowed_is_never_stable(bad: float) -> None:
    """NaN compares false with every bound: without a check of its own it reads "stable"."""
    fine = {"act_std": 1.0, "grad_std": 1.0, "flat": 0.0}
    for layers in ([fine, {**fine, "act_std": bad}], [fine, {**fine, "grad_std": bad}]):
        assert signals.verdict("relu", layers) == "overflowed (inf/nan)"


def test_a_width_beyond_memory_is_refused_before_anything_is_allocated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data loaded"))
    argv = ["--width", "100000000", "--dry-run"]
    assert_refused(signals.main, argv, "--width: expected an MLP that fits in memory", capsys)


def test_gradient_is_taken_at_the_pre_activation() -> None:
    # depth 1: dC/dz1 = (dC/da1) f'(z1), with dC/da1 = g W_out; check against autograd by hand
    batch = data.load("mnist", train=True, limit=32)
    he = _common.INITS["he"]
    [layer] = experiments.measure("tanh", he, batch.images, batch.labels, depth=1, width=8, seed=3)
    model = MLP((784, 8, 10), "tanh", generator=torch.Generator().manual_seed(3), **he)
    z = model.hidden1(batch.images)
    z.retain_grad()
    cross_entropy(model.output(model.act1(z)), batch.labels).backward()
    assert layer.grad_std == pytest.approx(float(z.grad.std()), rel=1e-6)


def test_dry_run_writes_into_runs_signals_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert signals.main(["--dry-run", "--no-plot", "--activations", "tanh,relu"]) == 0
    out = capsys.readouterr().out
    assert "| relu | he |" in out and "std a, L10" in out
    assert "wrote runs/signals/signals.md and runs/signals/signals.json" in out
    folder = tmp_path / "runs" / "signals"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "signals.json",
        "signals.md",
    ]
    payload = json.loads((folder / "signals.json").read_text())
    assert payload["command"] == "dlconcepts signals --dry-run --no-plot --activations tanh,relu"
    assert payload["batch"] == experiments.SIGNALS_DRY_RUN_BATCH and len(payload["results"]) == 10
    assert "| tanh | xavier | 10 |" in (folder / "signals.md").read_text()


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--depth", "0"], "'0'"),
        (["--width", "-3"], "'-3'"),
        (["--batch", "many"], "'many'"),
        (["--batch", "70000"], "70000"),  # more than the data holds
        (["--activations", "swish"], "'swish'"),
        (["--inits", "he,ones"], "'ones'"),
        (["--seed", "x"], "'x'"),
        (["--depth", "101"], "--depth: expected an int from 1 to 100, got '101'"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(signals.main, argv, bad, capsys)


@pytest.mark.parametrize("flag", ["--out", "--img"])
def test_an_output_inside_a_file_is_refused_before_any_measuring(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_measuring(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured before checking the output")

    monkeypatch.setattr(experiments, "measure_signals", no_measuring)
    (tmp_path / "file").write_text("")
    argv = ["--dry-run", flag, str(tmp_path / "file" / "out")]
    assert_refused(signals.main, argv, "is a file, not a folder", capsys)
