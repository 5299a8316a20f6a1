"""Signals through a 10-layer MLP at init: vanishing, exploding and stable, on a real batch."""

import json
from pathlib import Path

import pytest
import torch

from dlconcepts import data, signals


@pytest.fixture(scope="module")
def stats() -> dict[tuple[str, str], list[dict]]:
    batch = data.load("mnist", train=True, limit=256)
    results = signals.run_signals(batch.images, batch.labels, depth=10, width=256)
    return {(r["activation"], r["init"]): r["layers"] for r in results}


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


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_zero_init_has_equal_units_and_no_gradient(stats, act: str) -> None:
    for s in stats[act, "zero"]:
        assert s["act_std"] == 0 and s["grad_std"] == 0 and s["grad_mean"] == 0
    assert signals.verdict(act, stats[act, "zero"]).startswith("zero")


def test_verdicts_name_the_failure(stats) -> None:
    assert "exploding" in signals.verdict("relu", stats["relu", "random-large"])
    assert "gradient vanishes" in signals.verdict("sigmoid", stats["sigmoid", "random-small"])
    assert "saturated" in signals.verdict("tanh", stats["tanh", "random-large"])


def test_gradient_is_taken_at_the_pre_activation() -> None:
    # depth 1: dC/dz1 = (dC/da1) f'(z1), with dC/da1 = g W_out; check against autograd by hand
    batch = data.load("mnist", train=True, limit=32)
    [layer] = signals.measure("tanh", "he", batch.images, batch.labels, depth=1, width=8, seed=3)
    from dlconcepts.layers import MLP
    from dlconcepts.losses import cross_entropy

    model = MLP((784, 8, 10), "tanh", "he", generator=torch.Generator().manual_seed(3))
    z = model.hidden1(batch.images)
    z.retain_grad()
    cross_entropy(model.output(model.act1(z)), batch.labels).backward()
    assert layer.grad_std == pytest.approx(float(z.grad.std()), rel=1e-6)


def test_dry_run_writes_tables(tmp_path: Path, capsys) -> None:
    assert signals.main(["--dry-run", "--no-plot", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| relu | he |" in out and "std a, L10" in out
    payload = json.loads((tmp_path / "signals.json").read_text())
    assert payload["batch"] == 64 and len(payload["results"]) == 15
    assert "| tanh | xavier | 10 |" in (tmp_path / "signals.md").read_text()


def test_dry_run_without_out_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert signals.main(["--dry-run", "--activations", "relu"]) == 0
    assert list(tmp_path.iterdir()) == []
