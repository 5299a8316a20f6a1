"""dlconcepts: the six fundamentals of deep learning, built by hand in PyTorch and proven
against PyTorch's own.

The library, one module per concept:

- ``dlconcepts.losses``       loss vs cost (per-example loss, mean cost), softmax cross-entropy
- ``dlconcepts.layers``       Linear and the MLP with visible input, hidden and output layers
- ``dlconcepts.backprop``     backpropagation by hand, and the multivariable chain rule
- ``dlconcepts.activations``  sigmoid, tanh and ReLU as autograd Functions
- ``dlconcepts.init``         zero, random, Xavier and He initialization (and, re-exported
  from ``dlconcepts.init_extra``, the rest of ``torch.nn.init``)

and around them: ``names`` (the concepts' names, without torch), ``data`` (MNIST as
in-memory tensors, cut into batches) and ``data_files`` (the raw files, proven by SHA-256),
``training`` (the loop, evaluation, checkpoints) and ``choices`` (a run's settings),
``proofs`` (the gradcheck registry), ``experiments`` and ``figures`` (the initialization
experiments and their pictures). The ``dlconcepts`` commands live in
``dlconcepts.commands``, one module each.

``import dlconcepts`` alone imports nothing else (not even torch): ``dlconcepts.layers`` and
the others are imported the first time they are used, so ``dlconcepts --help`` is instant.
"""

import importlib
from types import ModuleType

__version__ = "0.1.0"
__all__ = ["activations", "backprop", "init", "layers", "losses"]


def __getattr__(name: str) -> ModuleType:
    """``dlconcepts.layers`` and the other concept modules, imported when first used."""
    if name in __all__:
        return importlib.import_module(f"dlconcepts.{name}")
    raise AttributeError(f"module 'dlconcepts' has no attribute {name!r}")
