"""Validators of rewritten pages.

A page's bytes depend on the hashes it was rewritten with, so the ETag a client holds must
name the asset state too: we append ``-hs<fingerprint>`` inside the app's ETag. A client that
cached a page before an asset changed then sends a tag whose fingerprint is no longer current
and can never be told 304 for it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from webob.datetime_utils import parse_date

_TAG = re.compile(r'\s*(?:(\*)|((?:W/)?"[^"]*"))\s*(?:,|$)')
_SUFFIX = re.compile(r'-hs([0-9a-f]{12})"$')


def split_etags(header: str) -> list[str]:
    """The entity tags of an If-None-Match header (``*`` included); malformed parts skipped."""
    tags: list[str] = []
    pos = 0
    while pos < len(header):
        m = _TAG.match(header, pos)
        if m is None:
            nxt = header.find(",", pos)
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        tags.append(m.group(1) or m.group(2))
        pos = m.end()
    return tags


def parse_http_date(value: str | None) -> int | None:
    """Whole seconds since the epoch of an HTTP date; None when there is none or it is not a
    date (RFC 9110 13.1.3: an invalid date is ignored)."""
    if value is None:
        return None
    try:
        # WebOb returns None for most garbage but raises for a year it cannot represent
        # ("01 Jan 10000").
        date = parse_date(value)
        return None if date is None else int(date.timestamp())
    except (ValueError, OverflowError, TypeError):
        return None


def fingerprint(items: Iterable[tuple[str, str]]) -> str:
    """12 hex characters naming a set of ``(path, digest)`` pairs."""
    h = hashlib.md5(usedforsecurity=False)
    for path, digest in sorted(items):
        h.update(path.encode("utf-8", "surrogateescape") + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()[:12]


def add_fingerprint(etag: str, fp: str) -> str:
    """``"abc"`` -> ``"abc-hs<fp>"``, weak tags stay weak; anything malformed gets a new tag."""
    etag = etag.strip()
    if etag.endswith('"') and (etag.startswith('"') or etag.startswith('W/"')) and len(etag) > 1:
        return f'{etag[:-1]}-hs{fp}"'
    return f'"{fp}-hs{fp}"'


def strip_fingerprint(tag: str) -> tuple[str, str] | None:
    """``"abc-hs<fp>"`` -> ``('"abc"', fp)``; None for tags we did not make."""
    m = _SUFFIX.search(tag)
    if m is None:
        return None
    return tag[: m.start()] + '"', m.group(1)


def weak_match(tags: Iterable[str], etag: str) -> bool:
    """If-None-Match comparison (RFC 9110 13.1.2): weak, ``*`` matches anything."""
    opaque = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == opaque for t in tags)
