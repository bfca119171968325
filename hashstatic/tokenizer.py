"""Where does a byte of HTML sit: text, a tag, a comment or raw text?

The rewriter never tokenizes a whole page if it can avoid it. It finds the asset prefix with
``bytes.find`` and then asks this module two questions about each hit:

* :func:`advance` -- starting from a position known to be in the data state, how far can the
  tokenizer get before reaching a given position?  It returns the start of the construct (tag,
  comment, raw-text element) that straddles that position, or the position itself when it is
  in text.  It also stops in front of every ``<base`` start tag, whose ``href`` changes how
  later relative URLs resolve.
* :func:`construct_at` -- what is the construct that starts here, and where does it end?

The grammar is the HTML tokenizer's, simplified where the difference cannot change which
attribute values exist (documented in the README under "What counts as HTML"):

* text runs to the next ``<`` that is followed by a letter, ``/``, ``!`` or ``?``;
* a start or end tag ends at the first ``>`` outside a quoted attribute value;
* ``<!--`` opens a comment closed by ``-->`` or ``--!>`` (``<!-->`` and ``<!--->`` are empty);
* other ``<!`` and ``<?`` (and ``</`` not followed by a letter) are bogus comments closed by
  the next ``>`` (XHTML: ``<![CDATA[`` runs to ``]]>`` and ``<?`` to ``?>``);
* ``script``, ``style``, ``textarea``, ``title``, ``xmp``, ``iframe``, ``noembed`` and
  ``noframes`` hold raw text up to their end tag (``</name`` followed by whitespace, ``/`` or
  ``>``); ``plaintext`` holds raw text to the end of the document; in XHTML a self-closing
  ``<script/>`` holds nothing.

:func:`advance` has a C implementation in ``hashstatic._speedups``; both follow this grammar
and the tests run them against each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hashstatic.speedups import speedup

WS = rb"\t\n\f\r "
RAW_TEXT = (b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes")

# One attribute, by the tokenizer's rules: a name may start with "=", a value may be
# double-, single- or un-quoted, and whitespace may surround "=". A quote opens a quoted value
# even when it is not closed before endpos: the value then runs to endpos and the tag cannot end
# there (never an unquoted value that happens to begin with a quote).
_ATTR_NAME = rb"[^" + WS + rb"/>][^" + WS + rb"/>=]*+"
_ATTR_VALUE = rb"""(?:"[^"]*+"?+|'[^']*+'?+|[^""" + WS + rb""">]++)"""
_ATTR = _ATTR_NAME + rb"(?:[" + WS + rb"]*+=[" + WS + rb"]*+" + _ATTR_VALUE + rb"?+)?+"
# Everything between a tag's name and its closing ">".
_TAG_BODY = rb"(?:[" + WS + rb"/]++|" + _ATTR + rb")*+"
_TAG_NAME = rb"[A-Za-z][^" + WS + rb"/>]*+"


# Start tags that advance() does not step over as ordinary tags.
_NOT_PLAIN = b"|".join((b"base", b"plaintext", *RAW_TEXT))
_NOT_PLAIN_BUT_BASE = b"|".join((b"plaintext", *RAW_TEXT))


def _raw_name(name: bytes) -> bytes:
    return rb"(?i:" + name + rb")(?=[" + WS + rb"/>])"


def _grammar(xhtml: bool, bases: bool = True) -> re.Pattern[bytes]:
    raw_elements = b"".join(
        rb"|<" + _raw_name(n) + _TAG_BODY + rb">.*?(?=</" + _raw_name(n) + rb")" for n in RAW_TEXT
    )
    if xhtml:
        # XML rules: a self-closing raw-text element has no content; CDATA and processing
        # instructions have their own terminators.
        raw_elements = (
            b"".join(rb"|<" + _raw_name(n) + _TAG_BODY + rb"(?<=/)>" for n in RAW_TEXT)
            + raw_elements
        )
        markup = rb"|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!(?!\[CDATA\[|--)[^>]*+>"
    else:
        markup = rb"|<(?:!(?!--)|\?)[^>]*+>"  # "<!--" is a comment even when not closed yet
    return re.compile(
        rb"(?:[^<]++"
        rb"|<!--(?:-?>|.*?--!?>)"  # comments, including the abrupt <!--> and <!--->
        + markup
        + raw_elements
        + rb"|<(?!(?i:"
        + (_NOT_PLAIN if bases else _NOT_PLAIN_BUT_BASE)
        + rb")(?=["
        + WS
        + rb"/>]))"
        + _TAG_NAME
        + _TAG_BODY
        + rb">"
        rb"|</" + _TAG_NAME + _TAG_BODY + rb">"
        rb"|</>|</(?=[^A-Za-z>])[^>]*+>"
        rb"|<(?=[^A-Za-z!?/])"  # a "<" that opens nothing is text
        rb")*+",
        re.S,
    )


_GRAMMAR = {(x, b): _grammar(x, b) for x in (False, True) for b in (True, False)}


def advance_py(doc: bytes, pos: int, endpos: int, xhtml: bool = False, bases: bool = True) -> int:
    """Consume whole constructs from ``pos`` (data state); stop before ``endpos``.

    Returns the start of the first construct that does not end by ``endpos``, of the first
    ``<base`` or ``<plaintext`` start tag, or ``endpos`` when everything up to it is text or
    complete constructs.
    """
    m = _GRAMMAR[xhtml, bases].match(doc, pos, endpos)
    assert m is not None  # the pattern matches the empty string
    return m.end()


def collect_py(
    doc: bytes,
    pos: int,
    needle: bytes,
    refs: re.Pattern[bytes],
    names: tuple[bytes, ...],
    xhtml: bool = False,
    to_end: bool = False,
    bases: bool = True,
) -> tuple[list[tuple[int, int, int]], int]:
    """The start tags from ``pos`` (data state) that hold a target, and where to look next.

    A target is an occurrence of ``needle`` or a match of ``refs`` (a character reference
    that could spell a byte of the needle; ``names`` lists the same named references for the
    C form). Constructs are consumed as :func:`advance` consumes them; each start tag that
    holds a target is returned as ``(start, end, content_end)``, where ``content_end`` is the
    ``<`` of the end tag of a raw-text element and ``end`` otherwise, and the search goes on
    from ``content_end``. It stops, returning that position, at a construct that holds a
    target and is not such a complete start tag (a comment, an end tag, a tag or raw text
    not finished in ``doc``) and at every ``<base`` and ``<plaintext``; it returns -1 when
    no target is left. With ``to_end`` (a stream, which must know where the next chunk
    starts), it then advances to the end of ``doc`` and returns where :func:`advance` stops,
    or -1 when that is the end. Without ``bases`` (the base that counts has been seen), a
    ``<base`` is an ordinary start tag.
    """
    found: list[tuple[int, int, int]] = []
    n = len(doc)
    p = max(0, min(pos, n))
    next_hit = next_ref = -1
    while True:
        if next_hit < p:
            next_hit = doc.find(needle, p)
            if next_hit < 0:
                next_hit = n
        if next_ref < p:
            m = refs.search(doc, p)
            next_ref = n if m is None else m.start()
        target = min(next_hit, next_ref)
        if target >= n:
            if to_end:
                p = advance_py(doc, p, n, xhtml, bases)
                return found, -1 if p == n else p
            return found, -1
        q = advance_py(doc, p, target + 1, xhtml, bases)
        if q == target + 1:
            p = q
            continue
        if not doc[q + 1 : q + 2].isalpha():
            return found, q
        tag = parse_start_tag(doc, q, _NO_NAMES)
        if tag is None or tag.name == b"plaintext" or (bases and tag.name == b"base"):
            return found, q
        end = content_end = q + tag.length
        if tag.name in RAW_TEXT and not (xhtml and tag.self_closing):
            m = _RAW_END[tag.name].search(doc, end)
            if m is None:
                return found, q
            content_end = m.start()
        found.append((q, end, content_end))
        p = content_end


Advance = Callable[[bytes, int, int, bool], int]
Collect = Callable[
    [bytes, int, bytes, re.Pattern[bytes], tuple[bytes, ...], bool, bool, bool],
    tuple[list[tuple[int, int, int]], int],
]


def _load() -> tuple[Advance, Collect, bool]:
    advance_c, collect_c = speedup("advance"), speedup("collect")
    if advance_c is None or collect_c is None:
        return advance_py, collect_py, False
    return advance_c, collect_c, True


advance, collect, ACCELERATED = _load()


# --- the construct at a position -----------------------------------------------------------

START_TAG, END_TAG, COMMENT, RAW = "start", "end", "comment", "raw"

_START_TAG = re.compile(rb"<(" + _TAG_NAME + rb")(" + _TAG_BODY + rb")>", re.S)
_ATTRIBUTE = re.compile(
    rb"(" + _ATTR_NAME + rb")(?:[" + WS + rb"]*+=[" + WS + rb"]*+(" + _ATTR_VALUE + rb"?+))?+"
    rb"|[" + WS + rb"/]++",
    re.S,
)


@dataclass(frozen=True, slots=True)
class Attribute:
    name: bytes  # lowercased
    value_start: int  # the value's text, quotes excluded, as offsets from the tag's "<"
    value_end: int
    quote: bytes  # b'"', b"'" or b"" (unquoted or absent)
    has_value: bool


@dataclass(frozen=True, slots=True)
class Tag:
    """A start tag's shape; offsets are relative to its "<", so what is learnt from a tag
    holds wherever the same bytes recur (the rewriter remembers tags by their bytes)."""

    name: bytes  # lowercased
    length: int  # from "<" to just after ">"
    attrs: tuple[Attribute, ...]
    self_closing: bool

    def get(self, name: bytes) -> Attribute | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None


_NO_NAMES: frozenset[bytes] = frozenset()  # collect_py needs a tag's name and length only


def parse_start_tag(doc: bytes, pos: int, names: frozenset[bytes] | None = None) -> Tag | None:
    """Parse the start tag at ``pos``; None when it is not complete in ``doc``.

    With ``names``, only attributes of those (lowercase) names are kept: a tag of fifty
    thousand attributes costs no fifty thousand objects when two of them matter.
    """
    m = _START_TAG.match(doc, pos)
    if m is None:
        return None
    attrs: list[Attribute] = []
    seen: set[bytes] = set()
    body_start, body_end = m.span(2)
    for a in _ATTRIBUTE.finditer(doc, body_start, body_end):
        if a.group(1) is None:
            continue
        name = a.group(1).lower()
        if name in seen or (names is not None and name not in names):
            continue  # the tokenizer keeps the first of duplicated attributes
        seen.add(name)
        if a.group(2) is None:
            attrs.append(Attribute(name, a.end() - pos, a.end() - pos, b"", False))
            continue
        vs, ve = a.span(2)
        quote = doc[vs : vs + 1]
        if quote in (b'"', b"'"):
            attrs.append(Attribute(name, vs + 1 - pos, ve - 1 - pos, quote, True))
        else:
            attrs.append(Attribute(name, vs - pos, ve - pos, b"", True))
    self_closing = doc[m.end() - 2 : m.end() - 1] == b"/"
    return Tag(m.group(1).lower(), m.end() - pos, tuple(attrs), self_closing)


_RAW_END = {n: re.compile(rb"</" + _raw_name(n), re.S) for n in RAW_TEXT}


def _markup(xhtml: bool) -> re.Pattern[bytes]:
    other = (
        rb"|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!(?!\[CDATA\[|--)[^>]*+>"
        if xhtml
        else rb"|<(?:!(?!--)|\?)[^>]*+>"
    )
    return re.compile(
        rb"<!--(?:-?>|.*?--!?>)" + other + rb"|</" + _TAG_NAME + _TAG_BODY + rb">"
        rb"|</>|</(?=[^A-Za-z>])[^>]*+>",
        re.S,
    )


_MARKUP = {False: _markup(False), True: _markup(True)}
COMMENT_END = re.compile(rb"--!?>")


def markup_end(doc: bytes, pos: int, endpos: int, xhtml: bool = False) -> int:
    """End of the comment, bogus comment or end tag at ``pos``; -1 if not complete by endpos."""
    m = _MARKUP[xhtml].match(doc, pos, endpos)
    return -1 if m is None else m.end()


def raw_end_pattern(name: bytes) -> re.Pattern[bytes]:
    """Finds the end tag that closes the raw-text element ``name`` (lowercase)."""
    return _RAW_END[name]
