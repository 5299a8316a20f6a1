#!/usr/bin/env python3
"""Same as ``dlconcepts study``: see ``dlconcepts study --help``."""

from dlconcepts.study import main

if __name__ == "__main__":
    raise SystemExit(main())
