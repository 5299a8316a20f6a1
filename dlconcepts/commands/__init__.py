"""The ``dlconcepts`` commands, one module each (``dlconcepts.commands.train`` is
``dlconcepts train``), every one with ``main(argv) -> int``. They use the library
(the concept modules, ``data``, ``training``) and ``_common``, never one another."""
