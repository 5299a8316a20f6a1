"""The torch-free names of ``dlconcepts.choices`` are the library's own: one declaration each."""

from __future__ import annotations

from dlconcepts import activations, backprop, choices, data, experiments, init, layers, training


def test_the_library_offers_the_choices_the_commands_list() -> None:
    assert tuple(activations.ACTIVATIONS) == choices.ACTIVATIONS
    assert tuple(training.DTYPES) == choices.DTYPES
    assert init.SCHEMES is choices.SCHEMES
    assert layers.IMPLS is choices.IMPLS
    assert backprop.LOSSES is choices.LOSSES
    assert data.DATASETS is choices.DATASETS
    assert (data.NUM_FEATURES, data.NUM_CLASSES) == (choices.NUM_FEATURES, choices.NUM_CLASSES)
    assert training.OPTIMIZERS is choices.OPTIMIZERS
    assert training.SCHEDULES is choices.SCHEDULES
    assert training.DEVICES is choices.DEVICES
    assert training.PRESETS is choices.PRESETS
    assert training.TrainConfig is choices.TrainConfig
    assert experiments.STUDY is choices.STUDY
    assert experiments.SIGNALS_BATCH == choices.SIGNALS_BATCH
