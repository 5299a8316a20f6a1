"""Sphinx configuration of the book: ``sphinx-build -W -b html docs docs/_build/html``.

Three things here are not plain settings:

- **The notebooks** live at the repository root (``notebooks/``), where a code host shows them
  and the tests run them. Sphinx reads only its source folder, so each build copies them into
  ``docs/notebooks/`` (ignored by git, rewritten only when a notebook changed) and points their
  links to the repository's files (``../dlconcepts/losses.py``, ``../README.md``) at the
  book's own pages. They are rendered with their committed outputs, never executed here.
- **Math renders offline.** MathJax comes from the ``django-static-mathjax`` package (MathJax 3,
  the ``docs`` extra): its single-file SVG build is copied into the site's ``_static``, so no
  page fetches a script or a font from the network.
- **The API reference** has one page per library module that is not a chapter's
  (``docs/api/``, generated, ignored by git), so a module added to the library appears without
  editing the book; the concept modules' API sits at the end of their chapters.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # autodoc documents this checkout's dlconcepts

project = "dlconcepts"
author = "the dlconcepts authors"
copyright = "the dlconcepts authors, MIT licence"

extensions = [
    "myst_nb",  # MyST Markdown pages and the .ipynb notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
language = "en"

# MyST: $…$ and $$…$$ math, ::: fences, definition lists (the glossary), heading anchors
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True  # $$…$$ inside a paragraph or list item, as Jupyter renders it
nb_execution_mode = "off"  # the committed outputs are shown; the tests execute the notebooks
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # torch.autograd.Function's own docstrings are not ours
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "dlconcepts"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_show_sourcelink = False
copybutton_prompt_text = r"\$ |>>> "
copybutton_prompt_is_regexp = True


# --- MathJax, offline -------------------------------------------------------------------------
def _mathjax_file() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "MathJax is missing: install the docs extra (pip install -e '.[docs]'), "
            "which brings it in the django-static-mathjax package"
        )
    path = Path(spec.origin).parent / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    if not path.is_file():
        raise RuntimeError(f"MathJax: expected {path}, which the installed package lacks")
    return path


html_static_path.append(str(_mathjax_file()))  # copied into _static/ as tex-svg-full.js
mathjax_path = "tex-svg-full.js"  # relative to _static/: no CDN
mathjax3_config = {"svg": {"fontCache": "global"}}


# --- the notebooks, copied in with their links pointed at the book -----------------------------
# a notebook's link to a library file goes to the chapter (or API page) that teaches it
MODULE_PAGES = {
    "losses": "loss-and-cost",
    "layers": "layers",
    "backprop": "backpropagation",
    "activations": "activations",
    "init": "initialization",
    "training": "training",
    "data": "training",
}
CHAPTER_MODULES = {"losses", "layers", "backprop", "activations", "init"}


def _book_link(match: re.Match[str]) -> str:
    target = match.group(1)
    if target.startswith("README.md"):
        return "](../index.md)"
    if target.startswith("docs/"):  # a chapter of this book, seen from the repository's root
        return f"](../{target.removeprefix('docs/')})"
    module = re.fullmatch(r"dlconcepts/(\w+)\.py", target)
    if module is None:
        return match.group(0)  # left as it is: sphinx-build -W reports it if it is broken
    name = module.group(1)
    page = MODULE_PAGES.get(name, f"api/dlconcepts.{name}")
    return f"](../{page}.md)"


def _copy_notebooks() -> None:
    out = DOCS / "notebooks"
    out.mkdir(exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for stale in set(out.glob("*.ipynb")) - {out / s.name for s in sources}:
        stale.unlink()
    for source in sources:
        notebook = json.loads(source.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                cell["source"] = re.sub(r"\]\(\.\./([^)\s]+)\)", _book_link, text)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        target = out / source.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


# --- one API page per library module that is not a chapter's ----------------------------------
def _write_api_pages() -> None:
    out = DOCS / "api"
    out.mkdir(exist_ok=True)
    names = [
        f"dlconcepts.{m.name}"
        for m in pkgutil.iter_modules([str(ROOT / "dlconcepts")])
        if not m.name.startswith("_") and m.name not in CHAPTER_MODULES
    ]
    pages = {
        f"{name}.md": f"# `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n```\n"
        for name in names
    }
    for stale in set(p.name for p in out.glob("*.md")) - set(pages):
        (out / stale).unlink()
    for page, text in pages.items():
        target = out / page
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


_copy_notebooks()
_write_api_pages()
