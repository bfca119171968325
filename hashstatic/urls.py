"""One URL, as written in a page, to its hashed form.

The HTML rewriter hands over the bytes of a URL exactly as they appear in the document; this
module decides whether they name an asset and, if so, returns the same bytes with ``.<hash>``
inserted into the last path segment -- relative stays relative, character references and
percent-encoding stay as written, the query and fragment are kept.

Decisions, where the URL standard leaves room (also in the README):

* The prefix is matched as written (after character references are decoded); percent-encoding
  is decoded after the prefix, to find the file.
* URLs with a backslash, an embedded tab or newline, or user information are left alone:
  browsers repair them in ways that differ, and no correct page needs them.
* Only ``http`` and ``https`` URLs of the page's own origin (scheme, host, port; default ports
  implied) are candidates.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html.entities import html5
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from hashstatic.cache import Asset
from hashstatic.naming import is_html, unhashed_candidates

Lookup = Callable[[str], Asset | None]
Origin = tuple[str, str, int]
# What a URL's text says, independent of the files: (path under root, where the hash goes,
# where the URL's path starts and ends in the raw bytes, the files it may be a hashed name of).
_Located = tuple[str, int, int, int, tuple[str, ...]]
# One memo per middleware holds what its pages' URLs, page URLs and tags resolve to, each
# under keys of its own shape.
Memo = dict[object, Any]
_MEMO_SIZE = 8192
MEMO_MAX_URL = 2048  # longer URL texts (data: URIs) are resolved each time, not remembered

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_AUTHORITY = re.compile(r"//([^/?#]*)")
# Character references as the HTML tokenizer reads them in attribute values: numeric ones, and
# named ones -- of which the legacy names may omit the ";", except when followed by "=" or an
# alphanumeric (the attribute-value rule).
_CHARREF = re.compile(rb"&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|([A-Za-z][A-Za-z0-9]*;?))")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_URL_SAFE = "/-._~!$()*+,;=:@"


@dataclass(frozen=True, slots=True)
class Rewritten:
    text: bytes  # the replacement for the URL's bytes
    asset: Asset


def _numeric_ref(value: int) -> str:
    if value == 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    return chr(value)


def decode_refs(raw: bytes) -> tuple[str, Sequence[int]]:
    """Decode character references; ``starts[i]`` is where char ``i`` begins in ``raw``.

    Bytes other than references map one-to-one (Latin-1), so positions in the text map back
    to positions in the document; ``starts`` has one extra entry, ``len(raw)``. Without
    references it is a ``range``, whatever the length (a list would cost 40 bytes a byte).
    """
    if b"&" not in raw:
        return raw.decode("latin-1"), range(len(raw) + 1)
    # Runs of text (not characters) and machine integers: a value full of references must
    # not cost tens of bytes a byte.
    chars: list[str] = []
    starts = array("q")
    pos = 0
    for m in _CHARREF.finditer(raw):
        text = None
        # Beyond 8 digits (past U+10FFFF whatever the zeros) a reference is U+FFFD; int()
        # refuses thousands of decimal digits.
        if m.group(1) is not None:
            digits = m.group(1).lstrip(b"0")
            text = _numeric_ref(
                int(digits, 16) if 0 < len(digits) <= 8 else 0x110000 * bool(digits)
            )
        elif m.group(2) is not None:
            digits = m.group(2).lstrip(b"0")
            text = _numeric_ref(int(digits) if 0 < len(digits) <= 8 else 0x110000 * bool(digits))
        else:
            name = m.group(3).decode("ascii")
            # The longest known name that prefixes what was written, as the tokenizer does.
            while name and name not in html5:
                name = name[:-1]
            nxt = raw[m.start() + 1 + len(name) : m.start() + 2 + len(name)]
            if name and (name.endswith(";") or not (nxt == b"=" or nxt.isalnum())):
                text = html5[name]
                m_end = m.start() + 1 + len(name)
                _append(chars, starts, raw, pos, m.start())
                chars.append(text)
                starts.extend([m.start()] * len(text))
                pos = m_end
            continue
        _append(chars, starts, raw, pos, m.start())
        chars.append(text)
        starts.append(m.start())
        pos = m.end()
    _append(chars, starts, raw, pos, len(raw))
    starts.append(len(raw))
    return "".join(chars), starts


def _append(chars: list[str], starts: array[int], raw: bytes, a: int, b: int) -> None:
    chars.append(raw[a:b].decode("latin-1"))
    starts.extend(range(a, b))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, for an absolute path."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def split_url(url: str, page: Origin) -> tuple[Origin | None, str] | None:
    """``(origin, path)`` of an absolute or protocol-relative URL; origin None for a path.

    Returns None for URLs that are never rewritten (other schemes, user information).
    """
    m = _SCHEME.match(url)
    if m:
        scheme = url[: m.end() - 1].lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        rest = url[m.end() :]
        if not rest.startswith("//"):
            return None  # "http:foo" is relative to the base in browsers; too odd to touch
    elif url.startswith("//"):
        scheme, rest = page[0], url
    else:
        return (None, url)
    a = _AUTHORITY.match(rest)
    assert a is not None
    authority = a.group(1)
    if "@" in authority:
        return None
    if authority.startswith("["):  # an IPv6 literal
        host, _, port_text = authority.partition("]")
        host += "]"
        port_text = port_text[1:] if port_text.startswith(":") else port_text
    else:
        host, _, port_text = authority.partition(":")
    if port_text and not port_text.isdigit():
        return None
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    path = rest[a.end() :] or "/"
    return (scheme, host.lower(), port), path


def parse_origin(url: str) -> tuple[Origin, str]:
    """The origin and path of an absolute http(s) URL such as a request URL."""
    parts = split_url(url, ("http", "", 80))
    if parts is None or parts[0] is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    return parts[0], parts[1]


@dataclass(frozen=True, slots=True)
class _PageFacts:
    """What a page's URL, the prefix and ``url_base`` say, whatever the page holds."""

    prefix: str
    origin: Origin
    page_path: str
    page_key: tuple[str, Origin, str]
    url_base: bytes | None
    needle: bytes
    needle_chars: frozenset[int]
    cross_origin: bool
    # What a page's rewriter derives from these facts, kept with them (see HtmlRewriter).
    derived: dict[object, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(cls, prefix: str, page_url: str, url_base: str | None) -> _PageFacts:
        prefix = quote(prefix, safe=_URL_SAFE)
        origin, page_path = parse_origin(page_url)
        page_path = page_path.split("?", 1)[0].split("#", 1)[0]
        # The fast path searches for the prefix's last segment: any URL that resolves under
        # the prefix contains it, unless the page (or its base) already sits under the prefix.
        last = prefix.rstrip("/").rsplit("/", 1)[-1]
        cross_origin = False
        if url_base:
            base_parts = split_url(url_base, origin)
            cross_origin = base_parts is None or base_parts[0] not in (None, origin)
        return cls(
            prefix=prefix,
            origin=origin,
            page_path=page_path,
            page_key=(prefix, origin, page_path[: page_path.rfind("/") + 1]),
            url_base=url_base.encode("ascii") if url_base else None,
            needle=(last + "/").encode("ascii") if last else b"",
            needle_chars=frozenset((last + "/").encode("ascii")) if last else frozenset(),
            cross_origin=cross_origin,
        )


def page_facts(memo: Memo, prefix: str, page_url: str, url_base: str | None) -> _PageFacts:
    """What the page at ``page_url`` says (see :class:`_PageFacts`), kept in ``memo``."""
    url = page_url.partition("?")[0]
    if len(url) > MEMO_MAX_URL:  # a client can ask for endless long URLs: not kept
        return _PageFacts.of(prefix, page_url, url_base)
    key = ("page", prefix, url, url_base)
    page: _PageFacts | None = memo.get(key)
    if page is None:
        page = _PageFacts.of(prefix, page_url, url_base)
        remember(memo, key, page)
    return page


def remember(memo: Memo, key: object, value: Any) -> None:
    """Keep ``value`` in the shared ``memo``, which is emptied when full (its entries are all
    cheap to make again, and a bound keeps a site with endless URLs from growing it)."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value


class UrlRewriter:
    """Decides, for one page, which URLs name assets and how they are written hashed."""

    def __init__(
        self,
        *,
        prefix: str,
        page_url: str,
        lookup: Lookup,
        url_base: str | None = None,
        hash_length: int = 12,
        memo: Memo | None = None,
    ) -> None:
        # Pages of a site repeat the same URLs; how each resolves is shared across responses,
        # and so is what a page's own URL says.
        memo = {} if memo is None else memo
        self._adopt(page_facts(memo, prefix, page_url, url_base), lookup, hash_length, memo)

    @classmethod
    def for_page(
        cls, page: _PageFacts, *, lookup: Lookup, hash_length: int = 12, memo: Memo
    ) -> UrlRewriter:
        """The rewriter of a page whose facts the caller has found already, in ``memo``."""
        self = cls.__new__(cls)
        self._adopt(page, lookup, hash_length, memo)
        return self

    def _adopt(self, page: _PageFacts, lookup: Lookup, hash_length: int, memo: Memo) -> None:
        self.memo: Memo = memo
        self.lookup = lookup
        self.hash_length = hash_length
        self.page = page
        self.prefix = page.prefix
        self.origin = page.origin
        self.page_path = page.page_path
        self._page_key = page.page_key
        self.url_base = page.url_base
        self.needle = page.needle
        self.needle_chars = page.needle_chars
        self.cross_origin = page.cross_origin

    def context(self, base: str | None) -> object:
        """What a URL's rewritten form depends on beside its text and the lookups it makes."""
        where = self._page_key if base is None else (self.prefix, base)
        return (where, self.hash_length, self.url_base)

    def under_prefix(self, base: str | None) -> bool:
        """Whether relative URLs of this page (with this base) may resolve under the prefix."""
        if not self.needle:
            return True
        origin, path = (self.origin, self.page_path) if base is None else parse_origin(base)
        return origin == self.origin and path[: path.rfind("/") + 1].startswith(self.prefix)

    def resolve_base(self, raw: bytes) -> str | None:
        """The absolute URL a ``<base href>`` value sets, or None when it cannot be used."""
        text, _ = decode_refs(raw)
        text = text.strip(_C0_OR_SPACE)
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
            return None
        resolved = self._resolve(text, None)
        if resolved is None:
            return None
        origin, path = resolved
        scheme, host, port = origin
        return f"{scheme}://{host}:{port}{path}"

    def _resolve(self, url: str, base: str | None) -> tuple[Origin, str] | None:
        url = url.split("#", 1)[0].split("?", 1)[0]
        parts = split_url(url, self.origin)
        if parts is None:
            return None
        origin, path = parts
        if origin is not None:
            return origin, remove_dot_segments(path)
        base_origin, base_path = (
            (self.origin, self.page_path) if base is None else parse_origin(base)
        )
        if path.startswith("/"):
            return base_origin, remove_dot_segments(path)
        if not path:
            return None  # "" and "?x" name the page itself
        return base_origin, remove_dot_segments(base_path[: base_path.rfind("/") + 1] + path)

    def locate(self, raw: bytes, base: str | None = None, *, refs: bool = True) -> str | None:
        """The path under the root that the URL ``raw`` names, whether or not it exists."""
        found = self._located(raw, base, refs)
        return None if found is None else found[0]

    def _located(self, raw: bytes, base: str | None, refs: bool) -> _Located | None:
        if len(raw) > MEMO_MAX_URL:
            return self._locate(raw, base, refs)  # not kept: the memo is shared, and long
        key = (raw, refs, self._page_key if base is None else (self.prefix, base))
        try:
            found: _Located | None = self.memo[key]
        except KeyError:
            if len(self.memo) >= _MEMO_SIZE:
                self.memo.clear()
            found = self.memo[key] = self._locate(raw, base, refs)
        return found

    def rewrite_url(
        self, raw: bytes, base: str | None = None, *, refs: bool = True
    ) -> Rewritten | None:
        found = self._located(raw, base, refs)
        if found is None:
            return None
        relpath, insert_at, head_end, tail_start, unhashed = found
        if unhashed and any(self.lookup(c) is not None for c in unhashed):
            return None  # already hashed: rewriting is idempotent
        asset = self.lookup(relpath)
        if asset is None:
            return None
        if self.url_base is not None:
            hashed = quote(asset.hashed, safe=_URL_SAFE).encode("ascii")
            return Rewritten(raw[:head_end] + self.url_base + hashed + raw[tail_start:], asset)
        digest = asset.digest[: self.hash_length].encode("ascii")
        return Rewritten(raw[:insert_at] + b"." + digest + raw[insert_at:], asset)

    def _locate(self, raw: bytes, base: str | None, refs: bool) -> _Located | None:
        """Which file ``raw`` names and where its hash goes: no file access, so memoizable."""
        if refs:
            text, starts = decode_refs(raw)
        else:
            text, starts = raw.decode("latin-1"), range(len(raw) + 1)
        lead = len(text) - len(text.lstrip(_C0_OR_SPACE))
        end = len(text.rstrip(_C0_OR_SPACE))
        url = text[lead:end]
        if not url or "\\" in url or "\t" in url or "\n" in url or "\r" in url:
            return None
        resolved = self._resolve(url, base)
        if resolved is None:
            return None
        origin, path = resolved
        if origin != self.origin or not path.startswith(self.prefix):
            return None
        try:
            relpath = unquote_to_bytes(path[len(self.prefix) :]).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not relpath or relpath.endswith("/") or is_html(relpath):
            return None
        path_end = lead + min(
            (i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url)
        )
        insert = _insertion_point(text, text.rfind("/", lead, path_end) + 1, path_end)
        unhashed = tuple(unhashed_candidates(relpath, self.hash_length))
        return relpath, starts[insert], starts[lead], starts[path_end], unhashed


def _insertion_point(text: str, seg_start: int, seg_end: int) -> int:
    """Where ``.<hash>`` goes in the last segment: before its last dot (decoded), else at end."""
    dot = -1
    i = seg_start
    while i < seg_end:
        if text[i] == "%" and text[i + 1 : i + 3].lower() == "2e" and i + 3 <= seg_end:
            if i > seg_start:
                dot = i
            i += 3
            continue
        if text[i] == "." and i > seg_start:
            dot = i
        i += 1
    return dot if dot >= 0 else seg_end
