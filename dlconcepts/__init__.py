"""dlconcepts: the six fundamentals of deep learning, built by hand in PyTorch and proven
against PyTorch's own.

One module per concept:

- ``dlconcepts.losses``       loss vs cost (per-example loss, mean cost), softmax cross-entropy
- ``dlconcepts.layers``       Linear and the MLP with visible input, hidden and output layers
- ``dlconcepts.backprop``     backpropagation by hand, and the multivariable chain rule
- ``dlconcepts.activations``  sigmoid, tanh and ReLU as autograd Functions
- ``dlconcepts.init``         zero, random, Xavier and He initialization

and the jobs on MNIST: ``data``, ``train``, ``compare``, ``bench``, ``study``, ``signals``,
``symmetry``, ``plots`` (each is a ``dlconcepts`` command).
"""

from dlconcepts import activations, backprop, init, layers, losses

__version__ = "0.1.0"
__all__ = ["activations", "backprop", "init", "layers", "losses"]
