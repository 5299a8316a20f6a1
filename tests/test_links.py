"""Every internal link and anchor resolves: in the README, the notebooks and the built site.

A relative link must name a file that exists; a ``#fragment`` must name a heading of the
target (GitHub's anchors for Markdown, computed as GitHub does) or an ``id`` of the built
HTML page. Links to other sites are not followed (the tests run offline).
"""

from __future__ import annotations

import json
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from built_docs import REPO, pages, site

MARKDOWN_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, markup and punctuation dropped,
    spaces to hyphens (``## Set-up: two commands`` -> ``set-up-two-commands``)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    kept = (c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def markdown_anchors(text: str) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", text).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def markdown_links(text: str) -> list[str]:
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return MARKDOWN_LINK.findall(text) + HTML_LINK.findall(text)


def is_external(target: str) -> bool:
    return bool(urlsplit(target).scheme) or target.startswith("//")


def markdown_files() -> list[tuple[Path, str]]:
    """README.md, data/README.md and the notebooks' Markdown cells, with their folders."""
    files = [
        (p, p.read_text(encoding="utf-8"))
        for p in (REPO / "README.md", REPO / "data" / "README.md")
    ]
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        files.append((notebook, text))
    return files


def broken_markdown_links(path: Path, text: str) -> list[str]:
    broken = []
    for target in markdown_links(text):
        if is_external(target) or target.startswith("mailto:"):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.exists():
            broken.append(
                f"{target}: no file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}"
            )
        elif fragment and dest.suffix == ".md":
            if fragment not in markdown_anchors(dest.read_text(encoding="utf-8")):
                broken.append(f"{target}: no heading with the anchor #{fragment} in {dest.name}")
    return broken


@pytest.mark.parametrize(
    "path, text", markdown_files(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_markdown_links_resolve(path: Path, text: str) -> None:
    broken = broken_markdown_links(path, text)
    assert not broken, f"{path.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


def test_the_anchor_rule_is_githubs() -> None:
    assert github_anchor("Set-up: two commands") == "set-up-two-commands"
    assert (
        github_anchor("1. Loss vs cost — [`dlconcepts/losses.py`](x)")
        == "1-loss-vs-cost--dlconceptslossespy"
    )
    assert markdown_anchors("# A\n```\n# not a heading\n```\n# A\n") == {"a", "a-1"}


def test_a_broken_link_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad anchor](#nowhere)\n")
    broken = broken_markdown_links(page, page.read_text())
    assert len(broken) == 2 and "missing.md" in broken[0] and "#nowhere" in broken[1]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if attributes.get(name):
                self.ids.add(attributes[name] or "")
        for name in ("href", "src"):
            value = attributes.get(name)
            if value and not (tag == "link" and attributes.get("rel") in ("canonical",)):
                self.links.append(value)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_link_and_anchor_of_the_built_site_resolves() -> None:
    html = site()
    parsed = {page: _parse(page) for page in pages(html)}
    broken = []
    for page, parser in parsed.items():
        for link in parser.links:
            if is_external(link) or link.startswith(("mailto:", "data:", "javascript:")):
                continue
            parts = urlsplit(link)
            dest = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if dest.is_dir():
                dest = dest / "index.html"
            where = f"{page.relative_to(html)}: {link}"
            if not dest.is_file():
                broken.append(f"{where}: no file")
            elif parts.fragment and dest.suffix == ".html":
                ids = parsed[dest].ids if dest in parsed else _parse(dest).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where}: no id #{parts.fragment}")
    assert len(parsed) > 20, f"only {len(parsed)} pages were built"
    assert not broken, "broken links in the built site:\n" + "\n".join(broken)


def test_ci_runs_the_readmes_test_command() -> None:
    """The README's test command is what `.ci/run` runs, word for word."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(pip install -e \"\.\[test[^\n]*?&& pytest)\b", readme, re.MULTILINE)
    assert len(commands) == 1, f"the README's test command: found {commands}"
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert commands[0] == ci[-1], f"README: {commands[0]!r}\n.ci/run ends with: {ci[-1]!r}"


def test_the_book_builds_with_warnings_as_errors() -> None:
    """The README's build command (``sphinx-build -W``) succeeds and makes the start page."""
    assert (site() / "index.html").is_file()
