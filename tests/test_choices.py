"""The torch-free names are the library's own, one declaration each: the concepts' names in
``dlconcepts.names``, a training run's settings in ``dlconcepts.choices`` (which re-exports
the concept names, so that a command finds every choice in one place)."""

from __future__ import annotations

import subprocess
import sys

from dlconcepts import (
    activations,
    backprop,
    choices,
    data,
    experiments,
    init,
    layers,
    names,
    training,
)


def test_the_concepts_take_their_names_from_names() -> None:
    assert tuple(activations.ACTIVATIONS) == names.ACTIVATIONS
    assert init.SCHEMES is names.SCHEMES
    assert layers.IMPLS is names.IMPLS
    assert backprop.LOSSES is names.LOSSES
    assert data.DATASETS is names.DATASETS
    assert (data.IMAGE_SIDE, data.NUM_FEATURES, data.NUM_CLASSES) == (28, 784, 10)
    assert (data.NUM_FEATURES, data.NUM_CLASSES) == (names.NUM_FEATURES, names.NUM_CLASSES)


def test_choices_re_exports_every_concept_name() -> None:
    for name in names.__all__:
        assert getattr(choices, name) is getattr(names, name), name
        assert name in choices.__all__, name


def test_the_library_offers_the_choices_the_commands_list() -> None:
    assert tuple(training.DTYPES) == choices.DTYPES
    assert training.OPTIMIZERS is choices.OPTIMIZERS
    assert training.SCHEDULES is choices.SCHEDULES
    assert training.DEVICES is choices.DEVICES
    assert training.PRESETS is choices.PRESETS
    assert training.TrainConfig is choices.TrainConfig
    assert experiments.STUDY is choices.STUDY
    assert experiments.SIGNALS_BATCH == choices.SIGNALS_BATCH


def test_names_and_choices_import_no_torch() -> None:
    code = "import sys, dlconcepts.names, dlconcepts.choices; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "importing the names imported torch"
