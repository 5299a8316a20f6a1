#!/usr/bin/env python3
"""Same as ``dlconcepts bench``: see ``dlconcepts bench --help``."""

from dlconcepts.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
