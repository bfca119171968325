"""A slow reference HTML rewriter, written to be checked by eye rather than to be fast.

``oracle_rewrite`` walks the whole document one construct at a time with a plain state
machine that follows the grammar in the docstring of ``hashstatic/tokenizer.py`` (and the
HTML standard's tokenizer where that docstring is silent). It shares no code with
``hashstatic.html`` or ``hashstatic.tokenizer``: only the URL decisions
(``UrlRewriter.rewrite_url`` and ``resolve_base``) and the CSS URL finder (``url_spans``) are
borrowed, because those are tested on their own.

Choices where the rules leave room, so that a disagreement can be judged:

* A construct that is not finished at the end of the document (a tag, a quoted attribute
  value, a comment, a bogus comment, CDATA) runs to the end and nothing after its start is
  rewritten. In particular an unclosed quote is not reread as an unquoted value.
* A raw-text element without an end tag holds the rest of the document, which is still that
  element's text: a ``<style>`` or import map is rewritten to the end.
* Attribute values that are read for their meaning (``rel``, ``type``, ``property``,
  ``name``) and the values parsed for their structure (``srcset``, ``style``) have their
  character references decoded first, as the HTML standard does; a URL found in them is
  handed to ``rewrite_url`` as the raw bytes it came from.
* The ``<base>`` that counts is the first start tag named ``base`` that has an ``href``
  attribute; it applies from that tag on (to a ``srcset`` or ``style`` on the ``<base>``
  itself too, which nothing renders). None of the URL attributes of a ``<base>`` (``href``,
  ``src``...) is rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html.entities import html5
from urllib.parse import urlsplit

from hashstatic.cache import Asset
from hashstatic.css import url_spans
from hashstatic.urls import UrlRewriter

WHITESPACE = b" \t\n\f\r"
RAW_TEXT_ELEMENTS = frozenset(
    (b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes")
)
URL_ATTRIBUTES = frozenset((b"src", b"href", b"xlink:href", b"poster", b"data-src"))
SRCSET_ATTRIBUTES = frozenset((b"srcset", b"imagesrcset", b"data-srcset"))
MEDIA_META = re.compile(
    rb"(?:^|[:_-])(?:image|video|audio|tileimage|thumbnail)(?::(?:url|secure_url|src))?\Z"
)
JSON_WHITESPACE = b" \t\n\r"
LONGEST_ENTITY_NAME = max(len(name) for name in html5)
# The rules oracle_rewrite(without=...) can leave out.
RULES = (
    "src",
    "href",
    "xlink:href",
    "poster",
    "data-src",
    "object data",
    "srcset",
    "style attribute",
    "meta",
    "style element",
    "import map",
    "base",
    "integrity",
    "crossorigin",
)


def is_letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


# --- tags ------------------------------------------------------------------------------------


@dataclass
class Attr:
    name: bytes  # lowercased
    start: int  # offsets of the value in the document, quotes excluded
    end: int
    quoted: bool


@dataclass
class ParsedTag:
    name: bytes  # lowercased
    end: int  # just after ">"
    attrs: dict[bytes, Attr]  # the first of each name only
    self_closing: bool


def read_tag(doc: bytes, name_start: int) -> ParsedTag | None:
    """Read a start or end tag whose name starts at ``name_start``; None if it never ends."""
    n = len(doc)
    i = name_start
    while i < n and doc[i] not in WHITESPACE and doc[i] not in b"/>":
        i += 1
    name = doc[name_start:i].lower()
    attrs: dict[bytes, Attr] = {}
    while True:
        if i >= n:
            return None
        c = doc[i]
        if c == ord(">"):
            return ParsedTag(name, i + 1, attrs, doc[i - 1] == ord("/"))
        if c in WHITESPACE or c == ord("/"):
            i += 1
            continue
        # An attribute name: its first character may be "=", later ones may not.
        attr_start = i
        i += 1
        while i < n and doc[i] not in WHITESPACE and doc[i] not in b"/>=":
            i += 1
        attr_name = doc[attr_start:i].lower()
        j = i
        while j < n and doc[j] in WHITESPACE:
            j += 1
        if j < n and doc[j] == ord("="):
            j += 1
            while j < n and doc[j] in WHITESPACE:
                j += 1
            if j >= n:
                return None
            if doc[j] in b"\"'":
                close = doc.find(doc[j : j + 1], j + 1)
                if close < 0:
                    return None  # the quoted value, and so the tag, runs to the end
                attr = Attr(attr_name, j + 1, close, True)
                i = close + 1
            else:
                k = j
                while k < n and doc[k] not in WHITESPACE and doc[k] != ord(">"):
                    k += 1
                attr = Attr(attr_name, j, k, False)
                i = k
        else:
            attr = Attr(attr_name, i, i, False)  # no value; i stays after the name
        if attr_name not in attrs:
            attrs[attr_name] = attr


def raw_text_end(doc: bytes, name: bytes, start: int) -> int:
    """Where the text of raw-text element ``name`` opened before ``start`` ends."""
    n = len(doc)
    j = start
    while True:
        k = doc.find(b"</", j)
        if k < 0:
            return n
        after = k + 2 + len(name)
        if doc[k + 2 : after].lower() == name and after < n and doc[after] in WHITESPACE + b"/>":
            return k
        j = k + 1


def comment_end(doc: bytes, i: int) -> int:
    """End of the comment opened by ``<!--`` at ``i``; -1 when it never closes."""
    if doc[i + 4 : i + 5] == b">":
        return i + 5
    if doc[i + 4 : i + 6] == b"->":
        return i + 6
    j = i + 4
    while True:
        k = doc.find(b"--", j)
        if k < 0:
            return -1
        if doc[k + 2 : k + 3] == b">":
            return k + 3
        if doc[k + 2 : k + 4] == b"!>":
            return k + 4
        j = k + 1


def find_end(doc: bytes, terminator: bytes, frm: int) -> int:
    k = doc.find(terminator, frm)
    return -1 if k < 0 else k + len(terminator)


# --- character references --------------------------------------------------------------------


def numeric_reference(value: int) -> str:
    if value == 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    if 0x80 <= value <= 0x9F:
        # The standard's table for these is windows-1252; its five holes stay as they are.
        try:
            return bytes([value]).decode("cp1252")
        except UnicodeDecodeError:
            return chr(value)
    return chr(value)


def decode_attribute(raw: bytes) -> tuple[bytes, list[int]]:
    """Decode character references the way the tokenizer does inside an attribute value.

    Returns the decoded bytes (references as UTF-8, other bytes as they were) and, for each
    decoded byte plus one past the end, the offset in ``raw`` of the byte or reference it
    came from.
    """
    out = bytearray()
    starts: list[int] = []
    i = 0
    n = len(raw)
    while i < n:
        if raw[i] != ord("&"):
            out.append(raw[i])
            starts.append(i)
            i += 1
            continue
        text, length = reference_at(raw, i)
        if text is None:
            out.append(raw[i])
            starts.append(i)
            i += 1
            continue
        encoded = text.encode("utf-8")
        out += encoded
        starts.extend([i] * len(encoded))
        i += length
    starts.append(n)
    return bytes(out), starts


def reference_at(raw: bytes, i: int) -> tuple[str | None, int]:
    """The text of the character reference at ``raw[i] == "&"`` and its length in bytes."""
    j = i + 1
    if raw[j : j + 1] == b"#":
        j += 1
        hexadecimal = raw[j : j + 1] in (b"x", b"X")
        if hexadecimal:
            j += 1
        digits_start = j
        digits = b"0123456789abcdefABCDEF" if hexadecimal else b"0123456789"
        while j < len(raw) and raw[j] in digits:
            j += 1
        if j == digits_start:
            return None, 0
        value = int(raw[digits_start:j], 16 if hexadecimal else 10)
        if raw[j : j + 1] == b";":
            j += 1
        return numeric_reference(value), j - i
    for length in range(min(LONGEST_ENTITY_NAME, len(raw) - j), 0, -1):
        name = raw[j : j + length].decode("latin-1")
        if name in html5:
            following = raw[j + length : j + length + 1]
            if not name.endswith(";") and (following == b"=" or following.isalnum()):
                return None, 0  # the attribute-value rule for legacy names without ";"
            return html5[name], 1 + length
    return None, 0


def decoded_value(doc: bytes, attr: Attr | None) -> bytes | None:
    if attr is None:
        return None
    return decode_attribute(doc[attr.start : attr.end])[0]


# --- srcset and import maps ------------------------------------------------------------------


def srcset_urls(value: bytes) -> list[tuple[int, int]]:
    """Spans of the candidate URLs, by the HTML standard's srcset parsing algorithm."""
    spans: list[tuple[int, int]] = []
    n = len(value)
    pos = 0
    while True:
        while pos < n and (value[pos] in WHITESPACE or value[pos] == ord(",")):
            pos += 1
        if pos >= n:
            return spans
        url_start = pos
        while pos < n and value[pos] not in WHITESPACE:
            pos += 1
        url_end = pos
        if value[url_end - 1] == ord(","):
            while value[url_end - 1] == ord(","):
                url_end -= 1
            spans.append((url_start, url_end))
            continue  # no descriptors: the commas ended the candidate
        spans.append((url_start, url_end))
        # The descriptor tokenizer's states, kept only to find where the candidate ends.
        state = "in descriptor"
        while pos < n:
            c = value[pos]
            pos += 1
            if state == "in descriptor":
                if c in WHITESPACE:
                    state = "after descriptor"
                elif c == ord(","):
                    break
                elif c == ord("("):
                    state = "in parens"
            elif state == "in parens":
                if c == ord(")"):
                    state = "in descriptor"
            elif c not in WHITESPACE:  # after descriptor: start the next one
                state = "in descriptor"
                pos -= 1


def json_string_values(text: bytes) -> list[tuple[int, int]]:
    """Spans of the contents of JSON strings that are not object keys and have no escapes."""
    spans: list[tuple[int, int]] = []
    n = len(text)
    i = 0
    while True:
        open_quote = text.find(b'"', i)
        if open_quote < 0:
            return spans
        j = open_quote + 1
        escaped = False
        while j < n and text[j] != ord('"'):
            if text[j] == ord("\\"):
                escaped = True
                j += 1
            j += 1
        if j >= n:
            return spans  # an unterminated string ends the search
        k = j + 1
        while k < n and text[k] in JSON_WHITESPACE:
            k += 1
        is_key = text[k : k + 1] == b":"
        if not is_key and not escaped:
            spans.append((open_quote + 1, j))
        i = j + 1


# --- the rewriter ----------------------------------------------------------------------------


class Oracle:
    def __init__(
        self,
        doc: bytes,
        urls: UrlRewriter,
        xhtml: bool,
        integrity: bool,
        without: frozenset[str] = frozenset(),
    ) -> None:
        self.doc = doc
        self.urls = urls
        self.xhtml = xhtml
        self.integrity = integrity
        self.without = without
        self.base: str | None = None
        self.base_found = False
        self.edits: list[tuple[int, int, bytes]] = []

    def cross_origin(self) -> bool:
        url_base = getattr(self.urls, "url_base", None)
        if not url_base:
            return False
        text = url_base.decode("ascii") if isinstance(url_base, bytes) else url_base
        parts = urlsplit(text)
        if not parts.netloc:
            return False
        scheme = parts.scheme.lower() or self.urls.origin[0]
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        return (scheme, (parts.hostname or "").lower(), port) != tuple(self.urls.origin)

    def run(self) -> bytes:
        doc = self.doc
        n = len(doc)
        i = 0
        while i < n:
            if doc[i] != ord("<") or i + 1 >= n:
                i += 1
                continue
            nxt = doc[i + 1]
            if is_letter(nxt):
                tag = read_tag(doc, i + 1)
                if tag is None:
                    break
                i = self.start_tag(tag)
            elif nxt == ord("/"):
                if i + 2 >= n:
                    break
                if is_letter(doc[i + 2]):
                    tag = read_tag(doc, i + 2)
                    if tag is None:
                        break
                    i = tag.end
                elif doc[i + 2] == ord(">"):
                    i += 3
                else:
                    i = find_end(doc, b">", i + 2)
            elif nxt == ord("!"):
                if doc.startswith(b"<!--", i):
                    i = comment_end(doc, i)
                elif self.xhtml and doc.startswith(b"<![CDATA[", i):
                    i = find_end(doc, b"]]>", i + 9)
                else:
                    i = find_end(doc, b">", i + 2)
            elif nxt == ord("?"):
                i = find_end(doc, b"?>" if self.xhtml else b">", i + 2)
            else:
                i += 1
            if i < 0:
                break
        return self.apply()

    def apply(self) -> bytes:
        out: list[bytes] = []
        pos = 0
        for start, end, text in sorted(self.edits, key=lambda e: (e[0], e[1])):
            assert start >= pos, "overlapping edits"
            out.append(self.doc[pos:start])
            out.append(text)
            pos = end
        out.append(self.doc[pos:])
        return b"".join(out)

    def start_tag(self, tag: ParsedTag) -> int:
        """Rewrite one start tag and the raw text it opens; return where data resumes."""
        doc = self.doc
        if tag.name == b"base" and not self.base_found and b"href" in tag.attrs:
            if "base" in self.without:
                return tag.end  # pretend this tag does not exist
            href = tag.attrs[b"href"]
            self.base_found = True
            self.base = self.urls.resolve_base(doc[href.start : href.end])
        for attr in tag.attrs.values():
            self.attribute(tag, attr)
        if tag.name == b"plaintext":
            return len(doc)
        if tag.name not in RAW_TEXT_ELEMENTS or (self.xhtml and tag.self_closing):
            return tag.end
        end = raw_text_end(doc, tag.name, tag.end)
        if tag.name == b"style" and "style element" not in self.without:
            for a, b in url_spans(doc[tag.end : end]):
                self.url(tag.end + a, tag.end + b, refs=False)
        elif tag.name == b"script" and "import map" not in self.without:
            kind = decoded_value(doc, tag.attrs.get(b"type"))
            if kind is not None and kind.strip(WHITESPACE).lower() == b"importmap":
                for a, b in json_string_values(doc[tag.end : end]):
                    self.url(tag.end + a, tag.end + b, refs=False)
        return end

    def url(self, start: int, end: int, *, refs: bool = True) -> Asset | None:
        done = self.urls.rewrite_url(self.doc[start:end], self.base, refs=refs)
        if done is None:
            return None
        self.edits.append((start, end, done.text))
        return done.asset

    def spans(self, attr: Attr, find: Callable[[bytes], list[tuple[int, int]]]) -> None:
        decoded, starts = decode_attribute(self.doc[attr.start : attr.end])
        for a, b in find(decoded):
            self.url(attr.start + starts[a], attr.start + starts[b])

    def attribute(self, tag: ParsedTag, attr: Attr) -> None:
        name = attr.name
        if name in URL_ATTRIBUTES or (name == b"data" and tag.name == b"object"):
            if tag.name == b"base":
                return  # its href is the base itself; a base has no other URL to load
            if ("object data" if name == b"data" else name.decode()) in self.without:
                return
            asset = self.url(attr.start, attr.end)
            if asset is not None and asset.integrity and self.wants_integrity(tag, attr):
                self.add_integrity(tag, attr, asset.integrity)
        elif name in SRCSET_ATTRIBUTES and "srcset" not in self.without:
            self.spans(attr, srcset_urls)
        elif name == b"style" and "style attribute" not in self.without:
            self.spans(attr, url_spans)
        elif (
            name == b"content"
            and tag.name == b"meta"
            and self.names_media(tag)
            and "meta" not in self.without
        ):
            self.url(attr.start, attr.end)

    def names_media(self, tag: ParsedTag) -> bool:
        for key in (b"property", b"name"):
            value = decoded_value(self.doc, tag.attrs.get(key))
            if value is not None and MEDIA_META.search(value.strip(WHITESPACE).lower()):
                return True
        return False

    def wants_integrity(self, tag: ParsedTag, attr: Attr) -> bool:
        if not self.integrity or b"integrity" in tag.attrs or "integrity" in self.without:
            return False
        if tag.name == b"script":
            return attr.name == b"src"
        if tag.name == b"link" and attr.name == b"href":
            rel = decoded_value(self.doc, tag.attrs.get(b"rel")) or b""
            return b"stylesheet" in re.split(rb"[\t\n\f\r ]+", rel.lower())
        return False

    def add_integrity(self, tag: ParsedTag, attr: Attr, integrity: str) -> None:
        extra = b' integrity="' + integrity.encode("ascii") + b'"'
        if (
            self.cross_origin()
            and b"crossorigin" not in tag.attrs
            and "crossorigin" not in self.without
        ):
            extra += b' crossorigin="anonymous"'
        at = attr.end + 1 if attr.quoted else attr.end
        self.edits.append((at, at, extra))


def oracle_rewrite(
    doc: bytes,
    urls: UrlRewriter,
    *,
    xhtml: bool = False,
    integrity: bool = False,
    without: frozenset[str] = frozenset(),
) -> bytes:
    """The document with its asset URLs hashed, by the slow and simple route.

    ``without`` names rules to leave out (see :data:`RULES`): the property tests use it to
    check that their documents reach every rule.
    """
    return Oracle(doc, urls, xhtml, integrity, without).run()
