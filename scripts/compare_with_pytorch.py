#!/usr/bin/env python3
"""Same as ``dlconcepts compare``: see ``dlconcepts compare --help``."""

from dlconcepts.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
