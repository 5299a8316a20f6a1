"""dlconcepts: the six fundamentals of deep learning, built by hand in PyTorch and proven
against PyTorch's own.

The library, one module per concept:

- ``dlconcepts.losses``       loss vs cost (per-example loss, mean cost), softmax cross-entropy
- ``dlconcepts.layers``       Linear and the MLP with visible input, hidden and output layers
- ``dlconcepts.backprop``     backpropagation by hand, and the multivariable chain rule
- ``dlconcepts.activations``  sigmoid, tanh and ReLU as autograd Functions
- ``dlconcepts.init``         zero, random, Xavier and He initialization (and, re-exported
  from ``dlconcepts.init_extra``, the rest of ``torch.nn.init``)

and around them:

- ``dlconcepts.names``        the concepts' names and MNIST's shape, without torch
- ``dlconcepts.data``         MNIST as in-memory tensors, cut into batches, and
  ``dlconcepts.data_files`` the raw files, proven by SHA-256
- ``dlconcepts.training``     the loop, evaluation, checkpoints; ``dlconcepts.choices`` a
  run's settings; ``dlconcepts.distributed`` data-parallel training over processes
- ``dlconcepts.proofs``       the gradcheck registry; ``dlconcepts.testing`` the same proofs
  run on a learner's own Function; ``dlconcepts.exercises`` the starter files to write one
- ``dlconcepts.autograd_graph``  the autograd graph of a computation, as Graphviz DOT text
- ``dlconcepts.experiments``  the initialization experiments, and ``dlconcepts.figures``
  their pictures
- ``dlconcepts._checks``      the one message style for bad input

The ``dlconcepts`` command (``dlconcepts.cli``, or ``python -m dlconcepts``) runs the
commands of ``dlconcepts.commands``, one module each.

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
