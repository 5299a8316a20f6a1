"""Starter files for ``dlconcepts exercise NAME``: one per piece, bodies left for the learner.

Each is a plain Python file (package data, never imported by the package): a docstring that
says what to write, what the derivative means and the command that checks it, and
``forward`` and ``backward`` bodies that raise ``NotImplementedError``.
"""
