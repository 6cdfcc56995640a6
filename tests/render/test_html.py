"""The built HTML book, opened in headless Chromium like a reader would.

For every page in ``_toc.yml``: the page exists, its title is rendered, MathJax typeset
its equations (no raw ``$$`` left, ``mjx-container`` elements present where the source has
math), figures are there, and no output shows an error traceback. One screenshot per page
is kept in ``_build/screenshots/`` for people to look at.

Needs ``make html`` first (``make test`` does it) and Debian's ``chromium``
(``make browser`` installs it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--virtual-time-budget=15000"]


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: run `make browser` (Debian package chromium)")
        pytest.skip("chromium not installed (make browser)")
    return exe


def _source_text(page: str) -> str:
    for ext in (".ipynb", ".md"):
        p = ROOT / f"{page}{ext}"
        if p.exists():
            if ext == ".ipynb":
                return "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                                 if c["cell_type"] == "markdown")
            return p.read_text()
    raise FileNotFoundError(page)


class _Text(HTMLParser):
    """Visible text of the article, with the text inside MathJax output removed."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0
        self.h1: list[str] = []
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "mjx-container", "mjx-assistive-mml") or self.skip:
            self.skip += 1
        if tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag):
        if self.skip:
            self.skip -= 1
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)
            if self._in_h1:
                self.h1.append(data)


@pytest.fixture(scope="module")
def chromium():
    if not (HTML / "index.html").exists():
        pytest.fail("no built book: run `make html` first")
    return _chromium()


@pytest.mark.render
@pytest.mark.parametrize("page", _pages())
def test_page_renders(page, chromium):
    path = HTML / f"{page}.html"
    assert path.exists(), f"{path} was not built"
    dom = subprocess.run([chromium, *CHROME_FLAGS, "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<article" in dom, "Chromium returned no page"
    parser = _Text()
    parser.feed(dom)
    text = "".join(parser.parts)
    title = " ".join("".join(parser.h1).split())
    src = _source_text(page)
    expected = next(line[2:].strip() for line in src.splitlines() if line.startswith("# "))
    assert " ".join(expected.split()) in title, f"title {expected!r} not rendered (h1: {title!r})"
    if "$" in src:
        assert dom.count("<mjx-container") > 0, "equations were not typeset by MathJax"
        assert "$$" not in text, "raw $$ left in the page"
        assert "<mjx-merror" not in dom, "MathJax reported an error in an equation"
    assert "Traceback (most recent call last)" not in text, "an output shows an error traceback"
    if page.startswith("chapters/") and path.with_suffix("").name[:2].isdigit():
        nb = ROOT / f"{page}.ipynb"
        if nb.exists() and '"image/png"' in nb.read_text():
            assert re.search(r"<img[^>]+src=\"[^\"]*(_images|data:image)", dom), "figures missing"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{page.replace('/', '__')}.png"
    subprocess.run([chromium, *CHROME_FLAGS, "--window-size=1280,1600", f"--screenshot={shot}",
                    path.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, "screenshot failed"
