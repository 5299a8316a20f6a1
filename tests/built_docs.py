"""The documentation site, built once per test session for the tests that read it.

``site()`` runs the docs' build command (``sphinx-build -W``: a warning is an error) into a
temporary folder the first time it is called and returns that folder; a failed build fails
every test that asks for it, with sphinx-build's last lines. Without the ``docs`` extra it
skips them, saying what to install.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS_EXTRA = ("sphinx", "furo", "myst_nb", "sphinx_copybutton", "mathjax")


def missing_extra() -> list[str]:
    """The modules of the ``docs`` extra that are not installed."""
    return [name for name in DOCS_EXTRA if importlib.util.find_spec(name) is None]


@functools.cache
def _build() -> tuple[Path | None, str]:
    out = Path(tempfile.mkdtemp(prefix="dlconcepts-docs-"))
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "-q",
        "-b",
        "html",
        "-d",
        str(out / "doctrees"),
    ]
    done = subprocess.run(
        [*command, str(REPO / "docs"), str(out / "html")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = (done.stdout + done.stderr)[-6000:]
    return (out / "html" if done.returncode == 0 else None), log


def site() -> Path:
    """The built site's folder (``index.html`` at its top)."""
    missing = missing_extra()
    if missing:
        pytest.skip(
            f"the docs extra is not installed (no {', '.join(missing)}): pip install -e '.[docs]'"
        )
    html, log = _build()
    if html is None:
        pytest.fail(f"sphinx-build -W failed:\n{log}", pytrace=False)
    return html


def pages(html: Path) -> list[Path]:
    """Every HTML page of the built site but Sphinx's generated index and search pages."""
    return sorted(
        p
        for p in html.rglob("*.html")
        if p.relative_to(html).as_posix() not in ("genindex.html", "search.html")
    )
