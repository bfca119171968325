"""A static root, its expected hashes, and the ways the HTML tests run the rewriter."""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hashstatic.cache import DiskIndex
from hashstatic.html import HtmlRewriter
from hashstatic.urls import UrlRewriter

PAGE = "http://example.com/docs/page.html"
PAGE_UNDER_PREFIX = "http://example.com/static/page.html"
CDN = "https://cdn.example.com/static/"

# The published tree: path -> bytes. No stylesheet references another file, so that every
# hash is the MD5 of the bytes on disk whichever way the index treats stylesheets.
FILES: dict[str, bytes] = {
    "css/site.css": b"body { color: #333 }\n",
    "js/app.js": b"console.log('app');\n",
    "js/app.min.js": b"console.log(1)",
    "img/a b.png": b"\x89PNG\r\n\x1a\n a b",
    "img/logo.png": b"\x89PNG\r\n\x1a\n logo",
    "fonts/x.woff2": b"wOF2 x",
    "LICENSE": b"MIT\n",
    "page.html": b"<!doctype html><p>a page</p>\n",
    "dir.css/inner.css": b"p { margin: 0 }\n",  # a directory whose name looks like a file
}

# Short names for the hashes used in expected outputs: "{logo}" in a template.
NAMES = {
    "site": "css/site.css",
    "app": "js/app.js",
    "min": "js/app.min.js",
    "ab": "img/a b.png",
    "logo": "img/logo.png",
    "x": "fonts/x.woff2",
    "license": "LICENSE",
    "dircss": "dir.css/inner.css",
}


def md5_12(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:12]


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


HASHES = {key: md5_12(FILES[path]).encode() for key, path in NAMES.items()}
INTEGRITY = {"sri_" + key: sri(FILES[path]).encode() for key, path in NAMES.items()}
_PLACEHOLDER = re.compile(rb"\{(\w+)\}")


def fill(template: bytes) -> bytes:
    """Replace ``{logo}``, ``{sri_app}``... with the hash or integrity of that file."""
    table = {**HASHES, **INTEGRITY}
    return _PLACEHOLDER.sub(lambda m: table.get(m.group(1).decode(), m.group(0)), template)


def make_root(directory: Path) -> Path:
    for path, data in FILES.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (directory / "empty").mkdir()
    return directory


@dataclass(frozen=True)
class Setup:
    """How one document is rewritten: the request it answers and the rewriter's options."""

    page: str = PAGE
    url_base: str | None = None
    xhtml: bool = False
    integrity: bool = False

    def urls(self, index: DiskIndex) -> UrlRewriter:
        lookup = functools.partial(index.lookup, integrity=self.integrity)
        return UrlRewriter(
            prefix="/static/", page_url=self.page, lookup=lookup, url_base=self.url_base
        )

    def rewriter(self, index: DiskIndex) -> HtmlRewriter:
        return HtmlRewriter(self.urls(index), xhtml=self.xhtml, integrity=self.integrity)

    def rewrite(self, index: DiskIndex, doc: bytes) -> bytes:
        return self.rewriter(index).rewrite(doc)

    def stream(self, index: DiskIndex, chunks: Iterable[bytes]) -> bytes:
        rewriter = self.rewriter(index)
        out = [rewriter.feed(chunk) for chunk in chunks]
        out.append(rewriter.close())
        return b"".join(out)


def one_byte_chunks(doc: bytes) -> list[bytes]:
    return [doc[i : i + 1] for i in range(len(doc))]


def split_at(doc: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(doc)) for c in cuts})
    bounds = [0, *points, len(doc)]
    return [doc[a:b] for a, b in itertools.pairwise(bounds)]
