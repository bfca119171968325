"""The first ``url_spans`` of hashstatic.css, one regular expression searched at every
token: slow (about 10 MB/s) and simple, kept as the reference the fast one must agree with.

Where the URLs are in a piece of CSS.

Used for ``<style>`` elements and ``style`` attributes in pages (and for stylesheets served
by the middleware).  A URL is the argument of ``url(...)`` (quoted or not, with spaces around
it), the string after ``@import``, or a string inside ``image-set(...)``.  Comments and other
strings are skipped, so ``/* url(old.png) */`` and ``content: "url(x)"`` are left alone.
"""

from __future__ import annotations

import re

# What follows a token is read by the same helpers as in hashstatic.css: only the way tokens
# are found differs, and that is what this reference is for.
from hashstatic.css import _skip_ws, _string_end, _url_argument

_IDENT_CHAR = re.compile(rb"[A-Za-z0-9_\-\\\x80-\xff]")
_NEXT = re.compile(
    rb"/\*|[\"']|(?i:url)\(|@(?i:import)(?![A-Za-z0-9_\-])|(?i:-webkit-)?(?i:image-set)\(|[()]"
)


def url_spans(text: bytes) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of every URL in ``text``, quotes and spaces excluded."""
    spans: list[tuple[int, int]] = []
    image_set_depth = 0  # > 0 inside image-set(...): its strings are URLs
    depth = 0
    pos = 0
    while True:
        m = _NEXT.search(text, pos)
        if m is None:
            return spans
        tok = m.group()
        start = m.start()
        if tok == b"/*":
            end = text.find(b"*/", m.end())
            if end < 0:
                return spans
            pos = end + 2
        elif tok in (b'"', b"'"):
            end = _string_end(text, start)
            if end < 0:
                pos = start + 1
                continue
            if image_set_depth and depth == image_set_depth:
                spans.append((start + 1, end - 1))
            pos = end
        elif tok == b"(":
            depth += 1
            pos = m.end()
        elif tok == b")":
            if depth == image_set_depth:
                image_set_depth = 0
            depth = max(depth - 1, 0)
            pos = m.end()
        elif start > 0 and _IDENT_CHAR.match(text, start - 1):
            pos = m.end()  # part of a longer name, e.g. "myurl(" or "x@import"
        elif tok[0:1] == b"@":
            p = _skip_ws(text, m.end())
            if text[p : p + 1] in (b'"', b"'"):
                end = _string_end(text, p)
                if end > 0:
                    spans.append((p + 1, end - 1))
                    pos = end
                    continue
            pos = p
        elif tok.lower().endswith(b"image-set("):
            depth += 1
            image_set_depth = depth
            pos = m.end()
        else:  # url(
            pos = _url_argument(text, m.end(), spans)
