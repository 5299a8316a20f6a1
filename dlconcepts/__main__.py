"""``python -m dlconcepts COMMAND``: the same as ``dlconcepts COMMAND``."""

from dlconcepts.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
