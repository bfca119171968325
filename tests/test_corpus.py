"""Real pages nobody here wrote: the Sphinx manuals of Python, Django and Flask, served through
two stacked HashStatic layers (``/_static/``, ``/_images/``).

The corpus is built by ``../shared/corpus/build.sh`` (from Debian's documentation packages)
into ``$HASHSTATIC_CORPUS`` or ``/tmp/corpus``, the directory the benchmark uses, when missing.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from webob import Request

from hashstatic import HashStatic
from hashstatic.site import Site

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT.parent / "shared" / "corpus" / "build.sh"
CORPUS = Path(os.environ.get("HASHSTATIC_CORPUS", "/tmp/corpus"))
SITES = ["django", "flask", "python"]
# Every SAMPLE-th page of each site in sorted order, and every page that shows an image from
# _images/: deterministic, and a few seconds per site (all pages take about 20 s).
SAMPLE = 5
PREFIXES = ("/_static/", "/_images/")

_ATTRIBUTE_URL = re.compile(rb"""\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_INSERTED_HASH = re.compile(rb"\.[0-9a-f]{12}(?=\.[A-Za-z0-9]+(?:[?#\"')\s]|$))")
_HASHED_NAME = re.compile(r"^(.*)\.([0-9a-f]{12})(\.[^./]+)$")


@pytest.fixture(scope="module")
def corpus() -> Path:
    built = all((CORPUS / site / "index.html").is_file() for site in SITES)
    if not built or not all((CORPUS / site / "_static").is_dir() for site in SITES):
        if not BUILD_SCRIPT.is_file():
            pytest.skip(f"no corpus in {CORPUS} and no {BUILD_SCRIPT} to build it with")
        subprocess.run(["sh", str(BUILD_SCRIPT), str(CORPUS)], check=True, timeout=900)
    return CORPUS


def stacked(site: Path) -> HashStatic:
    inner = HashStatic(Site(site), root=site / "_static", prefix="/_static/")
    return HashStatic(inner, root=site / "_images", prefix="/_images/")


def sample_pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"), key=lambda path: path.relative_to(site).as_posix())
    return [
        page
        for index, page in enumerate(pages)
        if index % SAMPLE == 0 or b"_images/" in page.read_bytes()
    ]


def attribute_urls(page: bytes) -> Iterator[str]:
    for match in _ATTRIBUTE_URL.finditer(page):
        value = match.group(1) if match.group(1) is not None else match.group(2)
        yield value.decode("utf-8", "replace")


def asset_file(site: Path, url: str) -> Path | None:
    """The file an (unhashed) URL names under one of the prefixes, if it is an asset."""
    path = unquote(urlsplit(url).path)
    if not path.startswith(PREFIXES) or path.endswith((".html", ".htm")):
        return None
    file = site / path.lstrip("/")
    return file if file.is_file() else None


class Checker:
    """Fetches each hashed URL once and checks what it serves."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.app = stacked(site)
        self.served: dict[str, Path] = {}

    def page(self, page: Path) -> int:
        relative = page.relative_to(self.site).as_posix()
        page_url = "http://localhost/" + relative
        original = page.read_bytes()
        response = Request.blank("/" + relative).get_response(self.app)
        assert response.status_int == 200, relative
        rewritten = response.body
        # Byte-identical apart from the inserted ".<hash>" segments.
        assert _INSERTED_HASH.sub(b"", rewritten) == _INSERTED_HASH.sub(b"", original), relative
        before = list(attribute_urls(original))
        after = list(attribute_urls(rewritten))
        assert len(before) == len(after), relative
        hashed = 0
        for old, new in zip(before, after, strict=True):
            file = asset_file(self.site, urljoin(page_url, html.unescape(old)))
            if file is None or _HASHED_NAME.match(urlsplit(old).path):
                assert new == old, f"{relative}: {old} was rewritten to {new}"
                continue
            # The same URL (relative stays relative, query kept) with a hash in its last segment.
            assert _INSERTED_HASH.sub(b"", new.encode()) == old.encode(), f"{relative}: {new}"
            assert new != old, f"{relative}: {old} was not hashed"
            self.follow(urljoin(page_url, html.unescape(new)), file)
            hashed += 1
        return hashed

    def follow(self, url: str, file: Path) -> None:
        path = urlsplit(url).path
        if path in self.served:
            assert self.served[path] == file
            return
        self.served[path] = file
        found = _HASHED_NAME.match(path)
        assert found is not None, path
        response = Request.blank(path).get_response(self.app)
        assert response.status_int == 200, path
        assert "immutable" in response.headers["Cache-Control"], path
        body = response.body
        assert hashlib.md5(body).hexdigest()[:12] == found.group(2), path
        if path.endswith(".css"):
            # Stylesheets are served with their own references hashed, and nothing else changed.
            assert _INSERTED_HASH.sub(b"", body) == file.read_bytes(), path
        else:
            assert body == file.read_bytes(), path


@pytest.mark.slow
@pytest.mark.parametrize("name", SITES)
def test_sphinx_pages_link_hashed_assets_that_serve_their_bytes(corpus: Path, name: str) -> None:
    checker = Checker(corpus / name)
    pages = sample_pages(corpus / name)
    assert pages
    hashed = sum(checker.page(page) for page in pages)
    # Each page links its theme's stylesheets and scripts at least.
    assert hashed >= 3 * len(pages)
    assert any(path.endswith(".css") for path in checker.served)
    assert any(path.endswith(".js") for path in checker.served)
    assert any(path.startswith("/_images/") for path in checker.served)
