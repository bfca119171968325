"""``splice``: a whole page's steady state in one C call.

Its reference is what the general path of ``HtmlRewriter`` does with a whole page: ``collect``
from the start, then ``remembered`` over every tag found. The properties check that the one
call gives the same page and the same rewrites, and ``None`` (with ``hits`` as it was)
wherever the general path would have more to do; the rewriter tests check that a page rewritten
through it is the page the general path writes, with the same assets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashstatic import html
from hashstatic.cache import DiskIndex, FrozenIndex
from hashstatic.html import HtmlRewriter, _Rewrite, remembered_py
from hashstatic.manifest import build_manifest
from hashstatic.tokenizer import collect_py, markup_end
from hashstatic.urls import UrlRewriter
from tests.test_collect import NAMES, NEEDLE, REFS, targeted
from tests.test_tokenizer import CORPUS_LIKE, c_function, property_settings

C_SPLICE = c_function("splice")
needs_c = pytest.mark.skipif(C_SPLICE is None, reason="hashstatic._speedups is not built")

STATE = (object(), 7)  # a Vouched.state(): the watcher and its change count
OTHER_STATE = (STATE[0], 8)
SENTINEL = _Rewrite(None, (), (), "")  # in hits before the call: must stay, alone, on None


def found_whole(doc: bytes, xhtml: bool) -> tuple[list[tuple[int, int, int]], bool]:
    """The start tags holding a hit in the whole page, as the general path meets them, and
    whether it gets through the page (or meets a construct it must look at itself)."""
    found: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        more, stop = collect_py(doc, pos, NEEDLE, REFS, NAMES, xhtml, False, True)
        found += more
        if stop < 0:
            return found, True
        # A comment or an end tag holding a hit is stepped over (see HtmlRewriter._construct);
        # anything else is for the rewriter to look at itself.
        end = -1 if doc[stop + 1 : stop + 2].isalpha() else markup_end(doc, stop, len(doc), xhtml)
        if end < 0:
            return found, False
        pos = end


def reference(
    doc: bytes, xhtml: bool, tags: dict[bytes, _Rewrite], check: bool, hits: list[Any]
) -> bytes | None:
    """What the general path does with a whole page, when all of it is remembered."""
    found, through = found_whole(doc, xhtml)
    if not through:
        return None
    out: list[Any] = []
    taken: list[Any] = []
    i, _ = remembered_py(doc, found, 0, tags, check, STATE, 0, len(doc), out, taken)
    if i < len(found):
        return None  # a tag to rewrite or check anew
    hits.extend(taken)
    return out[0] if out else doc


# Whole constructs that hold a hit, between the generated fragments: tags to take, and the
# comments, end tags and raw text the one call steps over.
HOLDING = [
    b'<link href="/_static/a.css">',
    b"<img src=_static/c.png>",
    b'<script src="_static/b.js"></script>',
    b"<script>'_static/'</script>",
    b"<!-- _static/ -->",
    b"</p _static/>",
    b"<style>a { b: url(_static/d.png) }</style>",
    b'<a href="&#95;static/e">',
]


@st.composite
def pages(draw: st.DrawFn) -> tuple[bytes, bool, dict[bytes, _Rewrite], bool]:
    """A page, whether it is XHTML, a memo of rewrites for (some of) its tags, and check."""
    parts = st.one_of(targeted, st.sampled_from(HOLDING), st.sampled_from(HOLDING))
    doc = b"".join(draw(st.lists(parts, min_size=1, max_size=8)))
    xhtml = draw(st.booleans())
    found, _ = found_whole(doc, xhtml)
    tags: dict[bytes, _Rewrite] = {}
    for start, end, _ in found:
        if draw(st.integers(0, 5)) == 0:
            continue  # not remembered
        text = draw(st.none() | st.binary(max_size=30))
        rewrite = _Rewrite(text, (), (), draw(st.sampled_from(["", "", "", "style"])))
        rewrite.vouched = draw(st.sampled_from([None, STATE, STATE, STATE, OTHER_STATE]))
        tags[doc[start:end]] = rewrite
    return doc, xhtml, tags, draw(st.booleans())


@needs_c
@property_settings
@given(page=pages())
def test_c_gives_what_the_general_path_gives(
    page: tuple[bytes, bool, dict[bytes, _Rewrite], bool],
) -> None:
    assert C_SPLICE is not None
    doc, xhtml, tags, check = page
    expected_hits: list[Any] = [SENTINEL]
    expected = reference(doc, xhtml, tags, check, expected_hits)
    hits: list[Any] = [SENTINEL]
    got = C_SPLICE(doc, NEEDLE, NAMES, xhtml, tags, check, STATE, hits)
    assert got == expected
    assert hits == expected_hits  # None leaves hits as it was
    if expected is doc:
        assert got is doc  # nothing changed: no copy


A = b'<a href="/_static/a.css">'
B = b'<img src="_static/b.png">'


@needs_c
@pytest.mark.parametrize(
    ("doc", "expected", "taken"),
    [
        pytest.param(b"x" + A + b"y" + B + b"z", b"x<A>y<B>z", "AB", id="both"),
        pytest.param(A + b"<!-- " + B + b" -->", b"<A><!-- " + B + b" -->", "A", id="comment"),
        pytest.param(b"</p " + B + b">" + A, b"</p " + B + b"><A>", "A", id="end-tag"),
        pytest.param(b"<!-- " + B, None, "", id="unfinished-comment"),
        pytest.param(
            b"<script>" + B + b"</script>" + A,
            b"<script>" + B + b"</script><A>",
            "SA",
            id="script-content",
        ),
        pytest.param(B + b"<br>" + B, b"<B><br><B>", "BB", id="twice"),
        pytest.param(b"no hit at all", b"no hit at all", "", id="no-hit"),
        pytest.param(A + b"<img src=_static/new.png>", None, "", id="a-tag-not-remembered"),
        pytest.param(b'<base href="/x/">' + A, None, "", id="base"),
        pytest.param(A + b"<plaintext>" + B, None, "", id="plaintext"),
        pytest.param(A + b'<a href="_static/', None, "", id="unfinished-tag"),
        pytest.param(b"<style>" + A, None, "", id="style-to-rewrite"),
    ],
)
def test_cases(doc: bytes, expected: bytes | None, taken: str) -> None:
    assert C_SPLICE is not None
    tags = {
        A: _Rewrite(b"<A>", (), (), ""),
        B: _Rewrite(b"<B>", (), (), ""),
        b"<style>": _Rewrite(None, (), (), "style"),
        b"<script>": _Rewrite(None, (), (), ""),
    }
    named = {"A": A, "B": B, "S": b"<script>"}
    hits: list[Any] = [SENTINEL]
    assert C_SPLICE(doc, NEEDLE, NAMES, False, tags, False, None, hits) == expected
    # In the order taken (compared as objects: two rewrites may be equal as values).
    assert list(map(id, hits)) == list(map(id, [SENTINEL, *(tags[named[n]] for n in taken)]))


@needs_c
def test_vouched_rewrites_need_the_same_state_when_checked() -> None:
    assert C_SPLICE is not None
    rewrite = _Rewrite(b"<A>", (), (), "")
    rewrite.vouched = STATE
    tags = {A: rewrite}
    assert C_SPLICE(A, NEEDLE, NAMES, False, tags, True, STATE, []) == b"<A>"
    assert C_SPLICE(A, NEEDLE, NAMES, False, tags, True, OTHER_STATE, []) is None
    assert C_SPLICE(A, NEEDLE, NAMES, False, tags, False, OTHER_STATE, []) == b"<A>"


@needs_c
def test_grows_past_its_first_room_and_holds_no_reference_after() -> None:
    assert C_SPLICE is not None
    text = b'<a href="/_static/a.0123456789ab.css">'
    rewrite = _Rewrite(text, (), (), "")
    doc = b"x".join([A] * 300)
    before = sys.getrefcount(text), sys.getrefcount(rewrite), sys.getrefcount(doc)
    for _ in range(3):
        hits: list[Any] = []
        assert C_SPLICE(doc, NEEDLE, NAMES, False, {A: rewrite}, False, None, hits) == b"x".join(
            [text] * 300
        )
        assert len(hits) == 300
        del hits
    # A tag not remembered after 300 that are: the 300 taken are let go again.
    hits = []
    assert C_SPLICE(doc + B, NEEDLE, NAMES, False, {A: rewrite}, False, None, hits) is None
    assert hits == []
    assert (sys.getrefcount(text), sys.getrefcount(rewrite), sys.getrefcount(doc)) == before


@needs_c
@pytest.mark.parametrize(
    "change",
    [
        {0: bytearray(A)},
        {1: "_static/"},
        {1: b""},
        {2: [b"sol;"]},
        {2: ("sol;",)},
        {4: []},
        {7: ()},
    ],
)
def test_refuses_what_the_rewriter_never_passes(change: dict[int, Any]) -> None:
    assert C_SPLICE is not None
    args: list[Any] = [A, NEEDLE, NAMES, False, {}, False, None, []]
    for at, value in change.items():
        args[at] = value
    with pytest.raises((TypeError, ValueError)):
        C_SPLICE(*args)
    with pytest.raises(TypeError):
        C_SPLICE(*args[:7])


@needs_c
def test_a_remembered_text_that_is_not_bytes_is_refused_by_its_own_name() -> None:
    """The error names what is wrong, not the other function that shares the check."""
    tags = {A: _Rewrite("text", (), (), "")}  # type: ignore[arg-type]
    assert C_SPLICE is not None
    hits: list[Any] = [SENTINEL]
    with pytest.raises(TypeError, match=r"^a remembered rewrite's text must be bytes$"):
        C_SPLICE(A, NEEDLE, NAMES, False, tags, False, None, hits)
    assert hits == [SENTINEL]


# --- through the rewriter ------------------------------------------------------------------


def _site(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "js").mkdir()
    (root / "css" / "site.css").write_bytes(b"body { color: red }")
    (root / "css" / "theme.css").write_bytes(b'@import "site.css";')
    (root / "js" / "app.js").write_bytes(b"go()")
    (root / "logo.png").write_bytes(b"\x89PNG")
    return root


PAGE = (
    b'<!DOCTYPE html><html><head><link rel="stylesheet" href="/static/css/site.css">'
    b'<link rel=stylesheet href="/static/css/theme.css"><style>p { background: '
    b'url(/static/logo.png) }</style></head><body><!-- <img src="/static/logo.png"> -->'
    b'<script src="/static/js/app.js"></script><p>static/ in text</p>'
    b'<img src="/static/logo.png" srcset="/static/logo.png 2x"><a href="/static/missing.png">'
    b"</a><script>var u = '/static/js/app.js';</script></body></html>"
)


def _rewrite_twice(
    index: Any,
    page: bytes,
    xhtml: bool,
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
    url: str = "http://h/docs/",
    prefix: str = "/static/",
) -> tuple[list[bytes], list[dict[str, str]], int]:
    """The page rewritten three times with one memo (with or without the one C call): the
    bodies, their assets, and how many of the three that call wrote."""
    calls = 0
    real = C_SPLICE  # the C function even where HASHSTATIC_PURE_PYTHON turned it off
    assert real is not None

    def counted(*args: Any) -> bytes | None:
        nonlocal calls
        out: bytes | None = real(*args)
        calls += out is not None
        return out

    monkeypatch.setattr(html, "_splice", counted if fast else None)
    memo: dict[Any, Any] = {}
    bodies, assets = [], []
    frozen = isinstance(index, FrozenIndex)
    for _ in range(3):
        seen: dict[str, Any] = {}

        def lookup(path: str, seen: dict[str, Any] = seen) -> Any:
            if path not in seen:
                seen[path] = index.lookup(path, seen=seen)
            return seen[path]

        urls = UrlRewriter(prefix=prefix, page_url=url, lookup=lookup, memo=memo)
        vouched = None if frozen else index.vouched(seen)
        rewriter = HtmlRewriter(urls, xhtml=xhtml, frozen=frozen, vouched=vouched)
        bodies.append(rewriter.rewrite(page))
        assets.append({path: a.digest for path, a in rewriter.assets.items()})
    monkeypatch.undo()
    return bodies, assets, calls


PLAIN = PAGE.replace(b"<style>p { background: url(/static/logo.png) }</style>", b"").replace(
    b'<a href="/static/missing.png"></a>', b""
)


def counts(manifest: int, watching: int) -> dict[str, int]:
    """How many of a page's three responses the one call writes, by the kind of index: none
    where every lookup must stat again."""
    return {"manifest": manifest, "watching": watching, "stat": 0}


PAGES = [
    pytest.param(PLAIN, False, counts(2, 2), id="page"),
    pytest.param(PLAIN, True, counts(2, 2), id="xhtml"),
    # A file that is not there is looked for on each response where files can change.
    pytest.param(PLAIN + b'<img src="/static/missing.png">', False, counts(2, 0), id="missing"),
    # A <style> holding a URL is rewritten on each response, and so is a page with a <base>.
    pytest.param(PAGE, False, counts(0, 0), id="style"),
    pytest.param(
        PLAIN.replace(b"<head>", b'<head><base href="/">'), False, counts(0, 0), id="base"
    ),
    # Nothing to look at: the one call from the first response.
    *(
        pytest.param(page, xhtml, counts(3, 3), id=param_id)
        for page, xhtml, param_id in ((p.values[0], p.values[1], p.id) for p in CORPUS_LIKE)
    ),
]


@needs_c
@pytest.mark.parametrize("kind", ["watching", "stat", "manifest"])
@pytest.mark.parametrize(("page", "xhtml", "calls"), PAGES)
def test_pages_come_out_as_the_general_path_writes_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    page: bytes,
    xhtml: bool,
    calls: dict[str, int],
) -> None:
    root = _site(tmp_path)

    def index() -> Any:
        if kind == "manifest":
            return FrozenIndex(build_manifest(root, prefix="/static/"))
        index = DiskIndex(root, watch=kind == "watching")
        if kind == "watching" and not index.watching:
            pytest.skip("no inotify here")
        return index

    general = _rewrite_twice(index(), page, xhtml, False, monkeypatch)
    fast = _rewrite_twice(index(), page, xhtml, True, monkeypatch)
    assert fast[:2] == general[:2]
    assert general[2] == 0
    assert fast[2] == calls[kind]
    if b"/static/" in page:
        assert general[0][0] != page  # something was rewritten


@needs_c
def test_a_changed_file_is_seen_on_the_next_page(tmp_path: Path) -> None:
    """Through the one call too, a watching index notices a file written between pages."""
    root = _site(tmp_path)
    index = DiskIndex(root, watch=True)
    if not index.watching:
        pytest.skip("no inotify here")
    memo: dict[Any, Any] = {}
    page = b'<script src="/static/js/app.js"></script>'

    def once() -> bytes:
        seen: dict[str, Any] = {}

        def lookup(path: str) -> Any:
            if path not in seen:
                seen[path] = index.lookup(path, seen=seen)
            return seen[path]

        urls = UrlRewriter(prefix="/static/", page_url="http://h/", lookup=lookup, memo=memo)
        return HtmlRewriter(urls, vouched=index.vouched(seen)).rewrite(page)

    first = once()
    assert once() == first
    (root / "js" / "app.js").write_bytes(b"go(2)")
    assert once() != first
    import hashlib

    assert hashlib.md5(b"go(2)").hexdigest()[:12].encode() in once()


def test_without_c_the_general_path_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _site(tmp_path)
    monkeypatch.setattr(html, "_splice", None)
    index = FrozenIndex(build_manifest(root, prefix="/static/"))
    memo: dict[Any, Any] = {}
    bodies = []
    for _ in range(2):
        urls = UrlRewriter(prefix="/static/", page_url="http://h/", lookup=index.lookup, memo=memo)
        bodies.append(HtmlRewriter(urls, frozen=True).rewrite(PAGE))
    assert bodies[0] == bodies[1] != PAGE


CORPUS = Path(os.environ.get("HASHSTATIC_CORPUS", "/tmp/corpus"))


@needs_c
@pytest.mark.skipif(not (CORPUS / "python" / "_static").is_dir(), reason="no corpus of pages")
@pytest.mark.parametrize("kind", ["watching", "manifest"])
def test_real_pages_come_out_as_the_general_path_writes_them(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Pages of the benchmark's corpus (built by test_corpus when it is missing)."""
    taken = 0
    for site in ("django", "flask", "python"):
        root = CORPUS / site / "_static"
        pages = sorted((CORPUS / site).rglob("*.html"))[::40]
        index: Any = (
            FrozenIndex(build_manifest(root, prefix="/_static/"))
            if kind == "manifest"
            else DiskIndex(root, prefix="/_static/", watch=True)
        )
        for page in pages:
            url = "http://h/" + page.relative_to(CORPUS / site).as_posix()
            doc = page.read_bytes()
            general = _rewrite_twice(index, doc, False, False, monkeypatch, url, "/_static/")
            fast = _rewrite_twice(index, doc, False, True, monkeypatch, url, "/_static/")
            assert fast[:2] == general[:2], page
            assert fast[0][0] != doc or b"_static/" not in doc, page
            taken += fast[2]
    assert taken > 0
