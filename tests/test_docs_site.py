"""The documentation site, opened in a real browser: math typeset, every image loaded, offline.

The site is built once per session (``built_docs.site()``: ``sphinx-build -W``) and served by
Python's own HTTP server on 127.0.0.1, which records every request it answers. Each page is
opened in headless Chromium (Debian's ``chromium``), which runs its scripts, typesets the math
and writes the finished page (``--dump-dom``) and a log of every request it made
(``--log-net-log``). Then, per page:

- math was typeset: MathJax's ``mjx-container`` elements are there, at least one per formula
  of the built page, and no TeX (``\\frac``, ``\\(``, a ``$``) is left in the visible text;
- every ``<img>`` was requested from the server and answered 200 with an image type;
- no request left the machine: every request the page made (the net log's requests whose
  network isolation key is the page's site) went to 127.0.0.1. Chromium's own background
  requests (its clock, account and search services) are not the page's; a host-resolver rule
  keeps them, and anything else, from resolving to another machine.

Skipped, with the reason, where Chromium or the ``docs`` extra is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from built_docs import REPO, site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium to open the pages in (Debian: apt-get install chromium)"
)

# the pages a learner meets first, every chapter with math or pictures, the notebooks, an API page
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
PAGES = [
    "index.html",
    "loss-and-cost.html",
    "layers.html",
    "chain-rule.html",
    "backpropagation.html",
    "activations.html",
    "initialization.html",
    "see-backprop.html",
    "training.html",
    "data-parallel.html",
    "glossary.html",
    "proofs.html",
    "api/dlconcepts.training.html",
    *(f"notebooks/{name}.html" for name in NOTEBOOKS),
]
# TeX that was not typeset: a command, a \( or \[ delimiter, or a dollar sign (prose here
# has none outside code, which is not visible text)
RAW_TEX = re.compile(r"\\(frac|partial|sum|sigma|operatorname|mathrm|\(|\[)|\$")


@dataclass
class Served:
    path: str
    status: int
    content_type: str


class _Recorder(SimpleHTTPRequestHandler):
    served: list[Served]

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status, self._type = code, ""
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-type":
            self._type = value
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        self.served.append(Served(unquote(urlsplit(self.path).path), self._status, self._type))
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # recorded in `served` instead of printed


@dataclass
class Server:
    url: str
    served: list[Served]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    html = site()
    served: list[Served] = []
    handler = type("Handler", (_Recorder,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}/", served)
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Opened:
    dom: str
    requested: list[str]  # every URL the page asked for, from the browser's net log


def open_page(url: str) -> Opened:
    """``url`` in headless Chromium: the DOM after its scripts ran, and every URL it fetched."""
    with tempfile.TemporaryDirectory(prefix="dlconcepts-chromium-") as tmp:
        net_log = Path(tmp) / "net.json"
        done = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={tmp}/profile",
                f"--log-net-log={net_log}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
        return Opened(done.stdout, requested_urls(net_log))


def requested_urls(net_log: Path) -> list[str]:
    """The URLs a page on 127.0.0.1 requested, from a Chromium net log: the requests whose
    network isolation key (the top frame's site) is 127.0.0.1, whatever host they went to."""
    text = net_log.read_text(encoding="utf-8")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # cut short: close the list of events after the last whole one
        log = json.loads(text[: text.rindex("}") + 1] + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return sorted(
        {
            e["params"]["url"]
            for e in log["events"]
            if e["type"] == start  # the job's begin event carries the url; its end event nothing
            and e.get("params", {}).get("network_isolation_key", "").startswith("http://127.0.0.1")
        }
    )


class _Page(HTMLParser):
    """The visible text (no script, style, code or typeset math), the images and the formulas."""

    HIDDEN = frozenset({"script", "style", "pre", "code", "mjx-container", "svg", "noscript"})

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.formulas = 0
        self.typeset = 0
        self._hidden: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"] or "")
        if "math" in (attributes.get("class") or "").split():
            self.formulas += 1
        if tag == "mjx-container":
            self.typeset += 1
        if tag in self.HIDDEN:
            self._hidden.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._hidden and self._hidden[-1] == tag:
            self._hidden.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("name", PAGES)
def test_page_in_a_browser(name: str, server: Server) -> None:
    built = parse((site() / name).read_text(encoding="utf-8"))
    first = len(server.served)
    url = urljoin(server.url, name)
    opened = open_page(url)
    page = parse(opened.dom)
    served = server.served[first:]

    # no request left the machine
    outside = [
        u
        for u in opened.requested
        if not u.startswith((server.url, "data:", "blob:", "about:", "chrome:"))
    ]
    assert not outside, f"{name}: requests that left the machine: {outside}"
    assert url in opened.requested, f"{name}: the net log does not show the page itself"

    # math typeset: every formula of the built page became MathJax output, no TeX is left
    assert page.typeset >= built.formulas, (
        f"{name}: {built.formulas} formulas in the built page, {page.typeset} typeset by MathJax"
    )
    raw = [m.group(0) for m in RAW_TEX.finditer(" ".join(page.text))]
    assert not raw, f"{name}: TeX left in the visible text: {raw[:5]}"

    # every image loaded: requested, answered 200, with an image type
    for src in page.images:
        path = unquote(urlsplit(urljoin(url, src)).path)
        answers = [s for s in served if s.path == path]
        assert answers, f"{name}: <img src={src!r}> was never requested"
        assert answers[-1].status == 200 and answers[-1].content_type.startswith("image/"), (
            f"{name}: <img src={src!r}> answered {answers[-1].status} {answers[-1].content_type!r}"
        )


def test_the_chapters_have_math_and_pictures() -> None:
    """The checks above are not vacuous: the chapters do have formulas and images to check."""
    html = site()
    for name, formulas, images in [
        ("loss-and-cost.html", 5, 1),
        ("activations.html", 5, 1),
        ("backpropagation.html", 5, 0),
        ("initialization.html", 3, 2),
    ]:
        page = parse((html / name).read_text(encoding="utf-8"))
        assert page.formulas >= formulas and len(page.images) >= images, (
            f"{name}: {page.formulas} formulas and {len(page.images)} images, "
            f"expected at least {formulas} and {images}"
        )


def test_a_request_to_another_machine_is_caught(server: Server) -> None:
    """The negative control of the network check: a page that loads a picture from elsewhere."""
    probe = site() / "_probe_external.html"
    probe.write_text('<html><body><img src="http://example.org/x.png"></body></html>')
    try:
        opened = open_page(urljoin(server.url, probe.name))
    finally:
        probe.unlink()
    assert "http://example.org/x.png" in opened.requested, opened.requested


def test_raw_tex_is_caught() -> None:
    """The negative control: untypeset math is visible text and is found."""
    page = parse(
        r'<p>the cost <span class="math">\(\frac{1}{N}\)</span></p><script>"\frac"</script>'
    )
    assert page.formulas == 1 and page.typeset == 0
    assert [m.group(0) for m in RAW_TEX.finditer(" ".join(page.text))] == ["\\(", "\\frac"]
