#!/usr/bin/env python3
"""Same as ``dlconcepts train``: see ``dlconcepts train --help``."""

from dlconcepts.train import main

if __name__ == "__main__":
    raise SystemExit(main())
