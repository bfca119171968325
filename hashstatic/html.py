"""The HTML rewriter: byte-splicing around the places where the asset prefix occurs.

A page is never parsed into a tree nor serialized again. The rewriter searches the bytes for
the asset prefix (``UrlRewriter.needle``) and for character references that could spell part
of it, and only around those hits asks the tokenizer what the hit sits in; one call of
:func:`~hashstatic.tokenizer.collect` does both, returning the start tags that hold hits. A
hit in a URL attribute, a ``style`` attribute, a ``<style>`` element or an import map is
handed to :class:`~hashstatic.urls.UrlRewriter`; anything else (text, comments, scripts) is
left alone. A start tag's rewrite is remembered by its bytes and what its URLs resolve
against, and reused while every lookup it made gives the same asset: pages repeat their tags.
Where the page's base lies under the prefix, every relative URL may name an asset, so every
start tag is examined: the complete path, slower and never wrong.

The same engine serves whole bodies and streams: :meth:`HtmlRewriter.feed` keeps back only
the construct that straddles the end of a chunk, so memory is bounded by the longest tag
(a construct longer than :data:`MAX_CONSTRUCT` ends rewriting; the rest passes through).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.entities import html5

from hashstatic import tokenizer
from hashstatic.cache import Asset, Vouched
from hashstatic.css import url_spans
from hashstatic.speedups import speedup
from hashstatic.tokenizer import Attribute, Tag, advance, collect, markup_end, parse_start_tag
from hashstatic.urls import UrlRewriter, _PageFacts, decode_refs

MAX_CONSTRUCT = 1 << 20

_URL_ATTRS = frozenset((b"src", b"href", b"xlink:href", b"poster", b"data-src"))
_SRCSET_ATTRS = frozenset((b"srcset", b"imagesrcset", b"data-srcset"))
# Every attribute a plan reads: the rest of a tag's attributes are not even kept.
_WANTED = (
    _URL_ATTRS
    | _SRCSET_ATTRS
    | frozenset(
        (b"style", b"data", b"content", b"integrity", b"rel", b"crossorigin", b"type")
        + (b"property", b"name")
    )
)
_MEDIA_META = re.compile(
    r"(?:^|[:_-])(?:image|video|audio|tileimage|thumbnail)(?::(?:url|secure_url|src))?$"
)
_JSON_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"(\s*:)?', re.S)
_WS = " \t\n\r\f"
_BEYOND_LATIN1 = re.compile("[^\x00-\xff]")
_ASCII_WS = re.compile(r"[ \t\n\r\f]+")  # HTML splits tokens on ASCII whitespace only

DATA, RAW, COMMENT, DONE = range(4)

# (value start, value end, where an integrity attribute goes or -1, crossorigin may be added),
# offsets from the tag's "<".
_Site = tuple[int, int, int, bool]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a start tag's bytes say: its name and length, and where its URLs are."""

    name: bytes
    length: int
    self_closing: bool
    raw_kind: str  # what to do with the raw text after it: "style", "importmap" or ""
    sites: tuple[_Site, ...]


_PLANS: dict[bytes, _Plan] = {}
_PLANS_SIZE = 8192
_TAGS_SIZE = 4096  # per context
# Tags longer than this are not remembered (an inline data: image beside a srcset, say): the
# memos are shared by every response, and must stay small whatever the pages hold.
_MEMO_MAX = 4096
# Remembered rewrites a rewriter holds before it folds their assets into its own dictionary.
_HITS_HELD = 1024


@dataclass(slots=True)
class _Rewrite:
    """What became of a start tag, for a context: valid while every lookup gives the same."""

    text: bytes | None  # the rewritten tag, None when nothing changed
    looked_up: tuple[tuple[str, Asset | None], ...]  # every lookup made, with its answer
    rewritten: tuple[tuple[str, Asset], ...]
    raw_kind: str
    # A Vouched.state() as of which the kernel vouched for every answer in looked_up: the
    # tag is right, unlooked, for a response with that state. Set by any response that
    # checks the tag; each value written is true of it, so threads need not agree.
    vouched: object = None


def remembered_py(
    doc: bytes,
    found: list[tuple[int, int, int]],
    i: int,
    tags: dict[bytes, _Rewrite],
    check: bool,
    state: object,
    emitted: int,
    upto: int,
    out: list[bytes | memoryview],
    hits: list[_Rewrite],
) -> tuple[int, int]:
    """Splice the remembered rewrites of the start tags ``found[i:]``: a page's steady state.

    ``doc`` is written out (to ``out``) up to ``emitted``. Each tag is looked up by its bytes
    in ``tags``, and taken while its rewrite can be used as it is: remembered, with no raw
    text after it to rewrite, and, where lookups can change (``check``), vouched for with
    ``state``. Taken rewrites go to ``hits``; when any of them changes its tag, one piece goes
    to ``out``: the text before each changed tag and its new text, and, when every tag was
    taken, the rest of ``doc`` up to ``upto`` (-1: none). Returns the index of the first tag
    not taken (or ``len(found)``) and how far ``doc`` is then written out.
    ``hashstatic._speedups.remembered`` is the C form, with the same results.
    """
    parts: list[bytes] = []
    n = len(found)
    while i < n:
        start, end, _ = found[i]
        done = tags.get(doc[start:end])
        if done is None or done.raw_kind or (check and done.vouched != state):
            break
        if done.text is not None:
            parts.append(doc[emitted:start])
            parts.append(done.text)
            emitted = end
        hits.append(done)
        i += 1
    if parts:
        if i == n and upto > emitted:
            parts.append(doc[emitted:upto])
            emitted = upto
        out.append(b"".join(parts))
    return i, emitted


_remembered = speedup("remembered") or remembered_py
# A whole page's steady state in one C call (collect, then remembered, over the whole page);
# without C, rewrite() takes the general path, which gives the same bytes.
_splice = speedup("splice")


def splice_page(
    doc: bytes,
    needle: bytes,
    names: tuple[bytes, ...],
    tags: dict[bytes, _Rewrite],
    xhtml: bool,
    frozen: bool,
    state: object,
    hits: list[_Rewrite],
) -> bytes | None:
    """``doc`` rewritten in one C call when every start tag in it that holds a hit has a
    rewrite in ``tags`` usable as it is (``frozen`` lookups, or ones vouched for as of
    ``state``, a :meth:`Vouched.state` taken before this call), its rewrites added to
    ``hits``; ``None`` (and ``hits`` as it was) when the general path of
    :class:`HtmlRewriter` has more to do, or where the C extension is not built."""
    if _splice is None or type(doc) is not bytes or (state is None and not frozen):
        return None  # (no state: every lookup must look again)
    out: bytes | None = _splice(doc, needle, names, xhtml, tags, not frozen, state, hits)
    return out


def seen_tags(
    page: _PageFacts, integrity: bool, hash_length: int
) -> tuple[tuple[bytes, ...], dict[bytes, _Rewrite]] | None:
    """What :func:`splice_page` needs beside the page's needle for a page at the URL ``page``
    says, with no rewriter made: the reference names and the tags its rewriters remembered
    (``None`` when none has been made for it yet, or every start tag of it is looked at)."""
    setup: _Setup | None = page.derived.get((integrity, hash_length))
    if setup is None or setup[0]:
        return None
    return setup[2], setup[3]


def assets_of(hits: list[_Rewrite]) -> dict[str, Asset]:
    """The assets the remembered rewrites ``hits`` rewrote URLs to, by path."""
    assets: dict[str, Asset] = {}
    for done in hits:
        assets.update(done.rewritten)
    return assets


# Per page URL: whether every start tag must be examined, the character references to look
# for, their names, and the remembered tags.
_Setup = tuple[bool, re.Pattern[bytes], tuple[bytes, ...], dict[bytes, _Rewrite]]


@functools.cache
def _hiding_refs(chars: frozenset[int]) -> re.Pattern[bytes]:
    """Finds the character references that spell a byte of the prefix ("&sol;", "&#47;")."""
    if not chars:
        return re.compile(rb"(?!)")
    ordered = sorted(chars)
    dec = b"|".join(str(c).encode() for c in ordered)
    hexa = b"|".join(f"{c:x}".encode() for c in ordered)
    named = [re.escape(k) for k in _ref_names(chars)]
    return re.compile(
        rb"&(?:#(?:[xX]0*(?i:"
        + hexa
        + rb")(?![0-9a-fA-F])|0*(?:"
        + dec
        + rb")(?![0-9]))"
        + b"".join(b"|" + n for n in named)
        + rb")"
    )


@functools.cache
def _ref_names(chars: frozenset[int]) -> tuple[bytes, ...]:
    """The named references (after "&") whose text is made of bytes of ``chars``."""
    return tuple(k.encode() for k, v in sorted(html5.items()) if set(v.encode()) <= chars)


def srcset_spans(value: str) -> list[tuple[int, int]]:
    """Spans of the candidate URLs in a srcset value (the HTML standard's parsing steps)."""
    spans: list[tuple[int, int]] = []
    n = len(value)
    pos = 0
    while True:
        while pos < n and (value[pos] in _WS or value[pos] == ","):
            pos += 1
        if pos >= n:
            return spans
        start = pos
        while pos < n and value[pos] not in _WS:
            pos += 1
        end = pos
        if value[end - 1] == ",":
            while end > start and value[end - 1] == ",":
                end -= 1
            if end > start:
                spans.append((start, end))
            continue
        spans.append((start, end))
        in_parens = False  # descriptors run to the next comma outside parentheses (no nesting)
        while pos < n:
            c = value[pos]
            if c == "(":
                in_parens = True
            elif c == ")":
                in_parens = False
            elif c == "," and not in_parens:
                pos += 1
                break
            pos += 1


class HtmlRewriter:
    """Rewrites one HTML (or XHTML) document, whole or chunk by chunk."""

    def __init__(
        self,
        urls: UrlRewriter,
        *,
        xhtml: bool = False,
        integrity: bool = False,
        frozen: bool = False,
        vouched: Vouched | None = None,
    ) -> None:
        self.urls = urls
        self.xhtml = xhtml
        self.integrity = integrity
        # Lookups that can never change their answers (a manifest's): a remembered tag needs
        # no check before it is used again.
        self.frozen = frozen
        # The kernel's word on the lookups' answers (a watching index), for this response: a
        # remembered tag it vouched for with the same state needs no check either.
        self.vouched = vouched
        self._assets: dict[str, Asset] = {}  # assets URLs were rewritten to, outside _hits
        self._hits: list[_Rewrite] = []  # remembered rewrites used, with their assets
        self._base: str | None = None
        self._base_seen = False
        self._needle = urls.needle
        # What the page's URL says, worked out once for all its responses. Tags are
        # remembered, rewritten, by their bytes, in a dictionary for what their URLs resolve
        # against, kept in the middleware's memo.
        derived, key = urls.page.derived, (integrity, urls.hash_length)
        setup: _Setup | None = derived.get(key)
        if setup is None:
            setup = derived[key] = (
                urls.under_prefix(None),
                _hiding_refs(urls.needle_chars),
                _ref_names(urls.needle_chars),
                self._tags_for(urls.context(None)),
            )
        self._complete, self._refs, self._ref_names, self._tags = setup
        self._rewritten: list[tuple[str, Asset]] = []
        self._buf = b""
        self._pos = 0  # the tokenizer's position in _buf
        self._emitted = 0  # _buf up to here has been written out
        self._out: list[bytes | memoryview] = []
        self._mode = DATA
        self._raw_name = b""
        self._raw_kind = ""  # "style", "importmap" or "" (content left alone)
        self._raw_start = 0
        self._at = 0  # where the tag being looked at starts
        self._waiting = False  # an unfinished start tag waits for a ">"

    # --- public API -------------------------------------------------------------------------

    @property
    def assets(self) -> dict[str, Asset]:
        """Every asset a URL was rewritten to, by path."""
        self._fold_hits()
        return self._assets

    def rewrite(self, doc: bytes, *, splice: bool = True) -> bytes:
        """The whole document at once: nothing after its last hit needs tokenizing.
        ``splice=False`` when the caller has tried :func:`splice_page` on ``doc`` with this
        page's remembered tags (:func:`seen_tags`) already."""
        if self._mode == DONE:
            return doc
        if splice and not self._buf and not self._complete:
            # A page whose every tag with a hit was rewritten before, usable as it is: one
            # call. Anything else (a tag new or to check, a <base>, raw text to rewrite)
            # gives None, and the general path below.
            hits = self._hits
            vouched = None if self.frozen else self.vouched
            out = splice_page(
                doc,
                self._needle,
                self._ref_names,
                self._tags,
                self.xhtml,
                self.frozen,
                None if vouched is None else vouched.state(),  # before the tags are used
                hits,
            )
            if out is not None:
                if len(hits) > _HITS_HELD:
                    self._fold_hits()
                return out
        self._buf += doc
        return self.close()

    def feed(self, chunk: bytes) -> bytes:
        if self._mode == DONE:
            return chunk
        self._buf += chunk
        if self._waiting:
            # An unfinished start tag is kept back: look again once a ">" arrives.
            if chunk.find(b">") < 0 and len(self._buf) - self._pos <= MAX_CONSTRUCT:
                return b""
            self._waiting = False
        self._run(final=False)
        return self._flush()

    def close(self) -> bytes:
        self._waiting = False
        if self._mode != DONE:
            self._run(final=True)
        self._pos = len(self._buf)
        return self._flush()

    # --- the engine -------------------------------------------------------------------------

    def _flush(self) -> bytes:
        keep = self._raw_start if self._mode == RAW and self._raw_kind else self._pos
        keep = min(keep, len(self._buf))
        if self._mode == DONE:
            keep = len(self._buf)
        buf = self._buf
        if not self._out and self._emitted == 0 and keep == len(buf):
            out = buf  # nothing was spliced: no copy
        else:
            if keep > self._emitted:
                # A long tail is joined from a view, not copied twice.
                tail = buf[self._emitted : keep] if keep - self._emitted < 4096 else None
                self._out.append(memoryview(buf)[self._emitted : keep] if tail is None else tail)
            out = b"".join(self._out)  # one piece is itself: no copy
            self._out.clear()
        self._buf = buf[keep:]
        self._pos -= keep
        self._raw_start -= keep
        self._emitted = max(0, self._emitted - keep)
        return out

    def _splice(self, start: int, end: int, text: bytes) -> None:
        self._out.append(self._buf[self._emitted : start])
        self._out.append(text)
        self._emitted = end

    def _run(self, final: bool) -> None:
        buf = self._buf
        n = len(buf)
        end = -1  # advance() runs to just past the next place to look at
        while True:
            if self._mode == RAW:
                if not self._raw_text(final):
                    return
                continue
            if self._mode == COMMENT:
                m = tokenizer.COMMENT_END.search(buf, self._pos)
                if m is None:
                    self._pos = n if final else max(self._pos, n - 3)
                    return
                self._pos = m.end()
                self._mode = DATA
                continue
            if self._mode == DONE:
                self._pos = n
                return
            if not self._complete:
                # Only the start tags that hold a hit matter; collect() finds them in one call.
                # A stream needs to know where the next chunk starts: to_end.
                found, stop = collect(
                    buf,
                    self._pos,
                    self._needle,
                    self._refs,
                    self._ref_names,
                    self.xhtml,
                    not final,
                    not self._base_seen,  # later <base> tags change nothing: not stops
                )
                if found:
                    # With nothing left to look at (stop < 0), the rest goes out as it is.
                    self._found(found, n if stop < 0 else -1)
                    if self._mode == DONE:
                        continue
                if stop < 0:
                    self._pos = n
                    return
                if not self._construct(stop, final):
                    return
                continue
            # The complete path: every start tag may hold a URL of an asset.
            if end <= self._pos:
                target = buf.find(b"<", self._pos)
                if target >= 0:
                    end = target + 1
                elif final:
                    self._pos = n
                    return
                else:
                    end = n  # step over what is left, keeping back an unfinished construct
            s = advance(buf, self._pos, end, self.xhtml)
            if s == end:
                self._pos = s
                if s == n:
                    return
            elif not self._construct(s, final):
                return

    def _construct(self, s: int, final: bool) -> bool:
        """Handle the construct at ``s``; False when it must wait for more input."""
        buf = self._buf
        n = len(buf)
        nxt = buf[s + 1 : s + 2]
        if nxt and not (nxt.isalpha() or nxt in b"!?/"):
            self._pos = s + 1  # a "<" that opens nothing is text
            return True
        if nxt.isalpha():
            # Pages repeat their tags: what a tag's bytes say is remembered by those bytes.
            gt = buf.find(b">", s)
            if gt < 0:
                return self._unfinished_tag(s, final)  # no ">" yet: not a whole tag
            plan = _PLANS.get(buf[s : gt + 1])
            if plan is None:
                tag = parse_start_tag(buf, s, _WANTED)
                if tag is None:
                    return self._unfinished_tag(s, final)
                self._at = s
                if tag.name == b"base":
                    self._set_base(tag)
                plan = self._planned(s, tag)
            if plan.length > MAX_CONSTRUCT:
                self._mode = DONE  # as when streamed (see _incomplete)
                return True
            self._apply(s, plan)
            self._rewritten.clear()
            self._pos = s + plan.length
            if plan.name == b"plaintext":
                self._mode = DONE
            elif plan.name in tokenizer.RAW_TEXT and not (self.xhtml and plan.self_closing):
                self._mode = RAW
                self._raw_name = plan.name
                self._raw_start = s + plan.length
                self._raw_kind = plan.raw_kind
            return True
        end = markup_end(buf, s, n, self.xhtml)
        if end >= 0:
            self._pos = end
            return True
        if buf.startswith(b"<!--", s) and n - s >= 6:
            self._mode = COMMENT  # a long comment streams through
            self._pos = s + 4
            return True
        return self._incomplete(s, final)

    def _tags_for(self, context: object) -> dict[bytes, _Rewrite]:
        key = ("tags", context, self.integrity)
        memo = self.urls.memo
        tags: dict[bytes, _Rewrite] | None = memo.get(key)
        if tags is None:
            tags = memo[key] = {}
        return tags

    def _found(self, found: list[tuple[int, int, int]], upto: int) -> None:
        """Rewrite the complete start tags that hold hits, ``(start, end, content_end)``,
        where a raw-text element's content runs to ``content_end``; ``_buf`` up to ``upto``
        (-1: nowhere) is then to go out as it is."""
        buf, out, tags, hits = self._buf, self._out, self._tags, self._hits
        lookup = self.urls.lookup
        check = not self.frozen
        vouched = self.vouched if check else None
        # Taken before any answer below is checked or given (see Vouched).
        state = None if vouched is None else vouched.state()
        vouches = None if vouched is None or state is None else vouched.vouches
        # Remembered tags usable unchecked are spliced in bulk; the rest are done one by one.
        bulk = not check or vouches is not None
        emitted = self._emitted
        i, n = 0, len(found)
        while i < n:
            if bulk:
                i, emitted = _remembered(
                    buf, found, i, tags, check, state, emitted, upto, out, hits
                )
                if i == n:
                    break
            s, end, content_end = found[i]
            i += 1
            tag = buf[s:end]
            done = tags.get(tag)
            if done is not None and check and (vouches is None or done.vouched != state):
                for path, asset in done.looked_up:
                    if lookup(path) is not asset:
                        done = None  # an asset changed since: do it again
                        break
                else:
                    if vouches is not None and vouches(done.looked_up):
                        done.vouched = state
            if done is None:
                if end - s > MAX_CONSTRUCT:
                    # As when streamed (see _incomplete): an absurd tag ends rewriting.
                    self._emitted = emitted
                    self._pos = s
                    self._mode = DONE
                    return
                self._emitted = emitted
                done = self._rewrite_tag(s, end)
                emitted = self._emitted
                if end - s <= _MEMO_MAX:
                    if vouches is not None and vouches(done.looked_up):
                        done.vouched = state
                    if len(tags) >= _TAGS_SIZE:
                        tags.clear()
                    tags[tag] = done
            if done.text is not None:
                out.append(buf[emitted:s])
                out.append(done.text)
                emitted = end
            hits.append(done)
            if done.raw_kind:
                self._emitted = emitted
                self._raw_start = end
                # As when streamed: content too long to hold is left alone.
                self._raw_kind = done.raw_kind if content_end - end <= MAX_CONSTRUCT else ""
                self._raw_content(content_end)
                emitted = self._emitted
        self._emitted = emitted
        self._pos = found[-1][2]
        if len(hits) > _HITS_HELD:
            self._fold_hits()  # a stream goes on: keep its assets by path, not by tag used

    def _fold_hits(self) -> None:
        """Move the assets of the remembered rewrites used into ``_assets``."""
        self._assets.update(assets_of(self._hits))
        self._hits.clear()

    def _rewrite_tag(self, s: int, end: int) -> _Rewrite:
        buf = self._buf
        plan = _PLANS.get(buf[s:end])
        if plan is None:
            tag = parse_start_tag(buf, s, _WANTED)
            assert tag is not None and tag.length == end - s  # collect() found it complete
            plan = self._planned(s, tag)
        self._out.append(buf[self._emitted : s])
        self._emitted = s
        mark = len(self._out)
        looked_up: list[tuple[str, Asset | None]] = []
        lookup = self.urls.lookup

        def recorded(path: str) -> Asset | None:
            asset = lookup(path)
            looked_up.append((path, asset))
            return asset

        self.urls.lookup = recorded
        self._rewritten.clear()
        try:
            self._apply(s, plan)
        finally:
            self.urls.lookup = lookup
        text = None
        if self._emitted > s:
            text = b"".join(self._out[mark:]) + buf[self._emitted : end]
            del self._out[mark:]
            self._emitted = s
        return _Rewrite(text, tuple(looked_up), tuple(self._rewritten), plan.raw_kind)

    def _unfinished_tag(self, s: int, final: bool) -> bool:
        waiting = self._incomplete(s, final)
        if not waiting:
            # Only a ">" can finish it: until one arrives, feed() need not look again (a long
            # tag arriving in small chunks would otherwise be parsed again at every chunk).
            self._waiting = True
        return waiting

    def _incomplete(self, s: int, final: bool) -> bool:
        self._pos = s
        if final or len(self._buf) - s > MAX_CONSTRUCT:
            self._mode = DONE  # unfinished at the end, or absurdly long: leave the rest alone
            return True
        return False

    def _raw_kind_of(self, tag: Tag) -> str:
        if tag.name == b"style":
            return "style"
        if tag.name == b"script":
            t = tag.get(b"type")
            if t is not None and self._value(t).strip(_WS).lower() == "importmap":
                return "importmap"
        return ""

    def _raw_text(self, final: bool) -> bool:
        """Find the end of a raw-text element; False when it must wait for more input."""
        buf = self._buf
        pattern = tokenizer.raw_end_pattern(self._raw_name)
        frm = self._raw_start if self._raw_kind else self._pos
        m = pattern.search(buf, frm)
        if m is None and not final:
            if self._raw_kind and len(buf) - self._raw_start > MAX_CONSTRUCT:
                self._raw_kind = ""  # too long to hold: let it pass unrewritten
            if not self._raw_kind:
                self._pos = max(self._pos, len(buf) - len(self._raw_name) - 3)
            return False
        end = len(buf) if m is None else m.start()
        if end - self._raw_start > MAX_CONSTRUCT:
            self._raw_kind = ""  # as when streamed: too long to hold, left alone
        self._raw_content(end)
        self._mode = DATA
        return True

    def _raw_content(self, end: int) -> None:
        """Rewrite a ``<style>`` or import map's content, from ``_raw_start`` to ``end``."""
        buf = self._buf
        if self._raw_kind == "style":
            for a, b in url_spans(buf[self._raw_start : end]):
                self._url(self._raw_start + a, self._raw_start + b, refs=False)
        elif self._raw_kind == "importmap":
            self._importmap(self._raw_start, end)
        self._pos = end
        self._raw_kind = ""
        self._rewritten.clear()  # only tags remember what they rewrote

    # --- what is rewritten in a tag ---------------------------------------------------------

    def _raw(self, attr: Attribute) -> bytes:
        return self._buf[self._at + attr.value_start : self._at + attr.value_end]

    def _value(self, attr: Attribute) -> str:
        return decode_refs(self._raw(attr))[0]

    def _url(self, start: int, end: int, *, refs: bool = True) -> Asset | None:
        done = self.urls.rewrite_url(self._buf[start:end], self._base, refs=refs)
        if done is None:
            return None
        self._splice(start, end, done.text)
        self._assets[done.asset.path] = done.asset
        self._rewritten.append((done.asset.path, done.asset))
        return done.asset

    def _set_base(self, tag: Tag) -> None:
        href = tag.get(b"href")
        if href is not None and not self._base_seen:
            self._base_seen = True
            self._base = self.urls.resolve_base(self._raw(href))
            self._complete = self._complete or self.urls.under_prefix(self._base)
            self._tags = self._tags_for(self.urls.context(self._base))

    def _planned(self, s: int, tag: Tag) -> _Plan:
        """The plan of ``tag``, at ``s``, remembered by the tag's bytes: not a <base> (each
        must reach _construct, which applies the first) nor a tag too long to keep."""
        self._at = s
        plan = self._plan(tag)
        if tag.length <= _MEMO_MAX and tag.name != b"base":
            if len(_PLANS) >= _PLANS_SIZE:
                _PLANS.clear()
            _PLANS[self._buf[s : s + tag.length]] = plan
        return plan

    def _plan(self, tag: Tag) -> _Plan:
        """Where the URLs of ``tag`` (at ``self._at``) are: a function of its bytes alone."""
        sites: list[_Site] = []
        for attr in tag.attrs:
            if not attr.has_value:
                continue
            name = attr.name
            if name in _URL_ATTRS:
                if tag.name != b"base":
                    sites.append((attr.value_start, attr.value_end, *self._sri(tag, attr)))
            elif name in _SRCSET_ATTRS:
                self._spans(sites, attr, srcset_spans(self._value(attr)))
            elif name == b"style":
                text, _ = decode_refs(self._raw(attr))
                # One byte per character; beyond Latin-1 any non-ASCII byte will do, as CSS
                # reads all of them as name characters.
                css = _BEYOND_LATIN1.sub("\xff", text).encode("latin-1")
                self._spans(sites, attr, url_spans(css))
            elif (name == b"data" and tag.name == b"object") or (
                name == b"content" and tag.name == b"meta" and self._media_meta(tag)
            ):
                sites.append((attr.value_start, attr.value_end, -1, False))
        return _Plan(tag.name, tag.length, tag.self_closing, self._raw_kind_of(tag), tuple(sites))

    def _apply(self, s: int, plan: _Plan) -> None:
        for start, end, sri_at, anonymous in plan.sites:
            asset = self._url(s + start, s + end)
            if asset is not None and sri_at >= 0 and asset.integrity is not None and self.integrity:
                extra = b' integrity="' + asset.integrity.encode("ascii") + b'"'
                if anonymous and self.urls.cross_origin:
                    extra += b' crossorigin="anonymous"'
                self._splice(s + sri_at, s + sri_at, extra)

    def _spans(self, sites: list[_Site], attr: Attribute, spans: list[tuple[int, int]]) -> None:
        if spans:
            _, starts = decode_refs(self._raw(attr))
            vs = attr.value_start
            sites.extend((vs + starts[a], vs + starts[b], -1, False) for a, b in spans)

    def _media_meta(self, tag: Tag) -> bool:
        for key in (b"property", b"name"):
            a = tag.get(key)
            if a is not None and _MEDIA_META.search(self._value(a).strip(_WS).lower()):
                return True
        return False

    def _sri(self, tag: Tag, attr: Attribute) -> tuple[int, bool]:
        """Where an integrity attribute would go after ``attr`` (-1: not for this URL), and
        whether crossorigin="anonymous" may come with it."""
        if tag.get(b"integrity") is not None:
            return -1, False
        if tag.name == b"link":
            rel = tag.get(b"rel")
            if attr.name != b"href" or rel is None:
                return -1, False
            if "stylesheet" not in _ASCII_WS.split(self._value(rel).lower()):
                return -1, False
        elif tag.name != b"script" or attr.name != b"src":
            return -1, False
        return attr.value_end + (1 if attr.quote else 0), tag.get(b"crossorigin") is None

    def _importmap(self, start: int, end: int) -> None:
        for m in _JSON_STRING.finditer(self._buf, start, end):
            if m.group(2) is None and b"\\" not in m.group(1):  # a value, not a key
                self._url(m.start(1), m.end(1), refs=False)
