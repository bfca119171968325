"""Where the URLs are in a piece of CSS.

Used for ``<style>`` elements and ``style`` attributes in pages (and for stylesheets served
by the middleware).  A URL is the argument of ``url(...)`` (quoted or not, with spaces around
it), the string after ``@import``, or a string inside ``image-set(...)``.  Comments and other
strings are skipped, so ``/* url(old.png) */`` and ``content: "url(x)"`` are left alone.
"""

from __future__ import annotations

import re

_IDENT = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-\\"
) | frozenset(range(0x80, 0x100))
# Only these bytes can begin or end what matters: a comment, a string, "url(", "@import",
# "image-set(" (found from its "("), or a parenthesis. A copy of the text with those bytes
# made 1 and every other byte 0 is searched with memchr, far faster than any pattern.
_STOP = bytes(1 if chr(b) in "/\"'@()" else 0 for b in range(256))
_WORD = re.compile(rb"[A-Za-z0-9_\-]")
_WS = b" \t\n\r\f"


def _string_end(text: bytes, pos: int) -> int:
    """End (after the closing quote) of the string opening at ``pos``; -1 if unterminated."""
    quote = text[pos : pos + 1]
    i = pos + 1
    while True:
        hits = [
            k for k in (text.find(quote, i), text.find(b"\\", i), text.find(b"\n", i)) if k >= 0
        ]
        if not hits:
            return -1
        j = min(hits)
        if text[j] == 0x5C:  # a backslash escapes the next byte
            i = j + 2
        elif text[j] == 0x0A:  # a newline ends a string badly
            return -1
        else:
            return j + 1


def _skip_ws(text: bytes, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _ident_before(text: bytes, pos: int) -> bool:
    return pos > 0 and text[pos - 1] in _IDENT


def _function_before(text: bytes, paren: int, lo: int) -> str:
    """Which function the "(" at ``paren`` opens, by its name at or after ``lo``: "url",
    "image-set", "" for another one, or "name" when that is the end of a longer name
    ("myurl(")."""
    word = text[max(lo, paren - 17) : paren].lower()
    if word.endswith(b"url"):
        return "name" if _ident_before(text, paren - 3) else "url"
    if word.endswith(b"-webkit-image-set"):
        return "name" if _ident_before(text, paren - 17) else "image-set"
    if word.endswith(b"image-set"):
        return "name" if _ident_before(text, paren - 9) else "image-set"
    return ""


def url_spans(text: bytes) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of every URL in ``text``, quotes and spaces excluded."""
    spans: list[tuple[int, int]] = []
    image_set_depth = 0  # > 0 inside image-set(...): its strings are URLs
    depth = 0
    pos = 0
    find = text.translate(_STOP).find
    while True:
        start = find(b"\x01", pos)
        if start < 0:
            return spans
        lo = pos
        c = text[start]
        pos = start + 1
        if c == 0x2F:  # "/"
            if text[pos : pos + 1] == b"*":
                end = text.find(b"*/", pos + 1)
                if end < 0:
                    return spans
                pos = end + 2
        elif c == 0x22 or c == 0x27:  # a quote
            end = _string_end(text, start)
            if end < 0:
                continue
            if image_set_depth and depth == image_set_depth:
                spans.append((start + 1, end - 1))
            pos = end
        elif c == 0x40:  # "@"
            if text[pos : pos + 6].lower() != b"import" or _ident_before(text, start):
                continue
            if _WORD.match(text, pos + 6):
                continue
            p = _skip_ws(text, pos + 6)
            if text[p : p + 1] in (b'"', b"'"):
                end = _string_end(text, p)
                if end > 0:
                    spans.append((p + 1, end - 1))
                    pos = end
                    continue
            pos = p
        elif c == 0x28:  # "("
            kind = _function_before(text, start, lo)
            if kind == "url":
                pos = _url_argument(text, pos, spans)
            elif kind == "image-set":
                depth += 1
                image_set_depth = depth
            elif kind == "":
                depth += 1
        else:  # ")"
            if depth == image_set_depth:
                image_set_depth = 0
            depth = max(depth - 1, 0)


def _url_argument(text: bytes, pos: int, spans: list[tuple[int, int]]) -> int:
    p = _skip_ws(text, pos)
    if text[p : p + 1] in (b'"', b"'"):
        end = _string_end(text, p)
        if end < 0:
            return p + 1
        close = _skip_ws(text, end)
        if text[close : close + 1] == b")":
            spans.append((p + 1, end - 1))
            return close + 1
        return end
    q = p
    while q < len(text) and text[q] not in b" \t\n\r\f)\"'(":
        q += 1
    close = _skip_ws(text, q)
    if text[close : close + 1] == b")" and q > p:
        spans.append((p, q))
        return close + 1
    return max(q, p + 1) if q < len(text) else len(text)
