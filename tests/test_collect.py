"""``collect``: which start tags of a page hold a target, in C and in Python.

``collect_py`` is the reference, written with ``advance`` and the regular expressions of the
tokenizer; the table pins down what it returns, and the properties check that
``hashstatic._speedups.collect`` returns the same on generated documents, on real pages, and
without reading a byte outside the buffer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashstatic.html import _hiding_refs, _ref_names
from hashstatic.tokenizer import collect_py
from tests.test_tokenizer import (
    CORPUS,
    GUARDED,
    GuardedBuffer,
    c_function,
    document,
    property_settings,
)

NEEDLE = b"_static/"
REFS = _hiding_refs(frozenset(NEEDLE))
NAMES = _ref_names(frozenset(NEEDLE))
Found = tuple[list[tuple[int, int, int]], int]


C_COLLECT = c_function("collect")
needs_c = pytest.mark.skipif(C_COLLECT is None, reason="hashstatic._speedups is not built")


def py(
    doc: bytes | memoryview,
    pos: int = 0,
    xhtml: bool = False,
    to_end: bool = False,
    bases: bool = True,
) -> Found:
    return collect_py(bytes(doc), pos, NEEDLE, REFS, NAMES, xhtml, to_end, bases)


def c(
    doc: bytes | memoryview,
    pos: int = 0,
    xhtml: bool = False,
    to_end: bool = False,
    bases: bool = True,
) -> Found:
    if C_COLLECT is None:
        pytest.skip("hashstatic._speedups is not built")
    found, stop = C_COLLECT(doc, pos, NEEDLE, REFS, NAMES, xhtml, to_end, bases)
    return [tuple(t) for t in found], stop


@pytest.fixture(params=["python", "c"])
def collect(request: pytest.FixtureRequest) -> Callable[..., Found]:
    return py if request.param == "python" else c


def test_names_are_the_references_that_spell_needle_bytes() -> None:
    assert set(NAMES) == {b"lowbar;", b"UnderBar;", b"sol;"}


A = b'<a href="/_static/a.css">'
S = b'<script src="_static/a.js">'

CASES = [
    # (document, xhtml, expected triples, expected stop)
    pytest.param(b"no target at all <a href=x>", False, [], -1, id="nothing"),
    pytest.param(b"text _static/ text", False, [], -1, id="in-text"),
    pytest.param(b"x" + A + b"y", False, [(1, 1 + len(A), 1 + len(A))], -1, id="tag"),
    pytest.param(
        b'<link href="_static/a.css" data-x="_static/b">',
        False,
        [(0, 46, 46)],
        -1,
        id="two-hits-one-tag",
    ),
    pytest.param(A + A, False, [(0, 25, 25), (25, 50, 50)], -1, id="two-tags"),
    pytest.param(S + b"var x;</script>", False, [(0, 27, 33)], -1, id="script-tag"),
    pytest.param(
        b"<script>'_static/'</script><a href=_static/x>",
        False,
        [(0, 8, 18), (27, 45, 45)],
        -1,
        id="script-content-then-tag",
    ),
    pytest.param(S[:-1] + b"/>" + A, True, [(0, 28, 28), (28, 53, 53)], -1, id="xhtml-self-closed"),
    pytest.param(b"<!-- _static/ -->", False, [], 0, id="comment"),
    pytest.param(b"</a _static/>", False, [], 0, id="end-tag"),
    pytest.param(b"<base href=/>" + A, False, [], 0, id="base"),
    pytest.param(A + b"<plaintext>_static/", False, [(0, 25, 25)], 25, id="plaintext"),
    pytest.param(b'<a href="_static/', False, [], 0, id="unfinished-tag"),
    pytest.param(S + b"_static/", False, [], 0, id="unfinished-raw-text"),
    pytest.param(b"<a href=&#95;static/x>", False, [(0, 22, 22)], -1, id="decimal-ref"),
    pytest.param(b"<a href=_stati&#X0063;/x>", False, [(0, 25, 25)], -1, id="hex-ref"),
    pytest.param(b"<a href=_static&sol;x>", False, [(0, 22, 22)], -1, id="named-ref"),
    pytest.param(b"<a href=&#950;&#x5f0;&sola>", False, [], -1, id="refs-to-other-chars"),
    pytest.param(b"&#95;&lowbar; text", False, [], -1, id="refs-in-text"),
]


@pytest.mark.parametrize(("doc", "xhtml", "triples", "stop"), CASES)
def test_cases(
    collect: Callable[..., Found], doc: bytes, xhtml: bool, triples: list[Any], stop: int
) -> None:
    assert collect(doc, 0, xhtml) == (triples, stop)


TO_END_CASES = [
    pytest.param(b"text <a href=x> text", [], -1, id="to-the-end"),
    pytest.param(A + b"text <a href=x", [(0, 25, 25)], 30, id="unfinished-tag-after"),
    pytest.param(A + b"<!-- no end", [(0, 25, 25)], 25, id="unfinished-comment-after"),
    pytest.param(b"<script>x = 1;", [], 0, id="unfinished-raw-text"),
    pytest.param(b"<base href=/x/> text", [], 0, id="base"),
    pytest.param(b"<!-- _static/", [], 0, id="target-in-unfinished-comment"),
]


@pytest.mark.parametrize(("doc", "triples", "stop"), TO_END_CASES)
def test_to_end(collect: Callable[..., Found], doc: bytes, triples: list[Any], stop: int) -> None:
    assert collect(doc, 0, False, True) == (triples, stop)
    if stop == -1:
        assert collect(doc, 0, False, False) == (triples, -1)


def test_later_base_tags_are_ordinary_tags(collect: Callable[..., Found]) -> None:
    """Once the <base> that counts is seen, the others stop nothing (n of them must not
    cost n searches of the page)."""
    base = b'<base href="/x/">'
    doc = base + A + base + b"<base href=_static/x>" + b"<plaintext>"
    assert collect(doc, 0) == ([], 0)
    assert collect(doc, len(base)) == ([(17, 42, 42)], 42)
    assert collect(doc, 0, False, False, False) == ([(17, 42, 42), (59, 80, 80)], -1)
    assert collect(doc, 0, False, True, False) == ([(17, 42, 42), (59, 80, 80)], 80)
    assert collect(base * 3, 0, False, True, False) == ([], -1)


def test_starts_at_pos(collect: Callable[..., Found]) -> None:
    doc = A + b"text" + A
    assert collect(doc, len(A)) == ([(29, 54, 54)], -1)
    assert collect(doc, len(doc)) == ([], -1)


@needs_c
def test_c_checks_its_arguments() -> None:
    assert C_COLLECT is not None
    with pytest.raises(ValueError, match="needle"):
        C_COLLECT(b"x", 0, b"", REFS, NAMES)
    with pytest.raises(TypeError):
        C_COLLECT(b"x", 0, NEEDLE, REFS, ("sol;",))
    with pytest.raises(TypeError):
        C_COLLECT(b"x", 0, NEEDLE, REFS, [b"sol;"])
    assert C_COLLECT(b"x" + A, -5, NEEDLE, REFS, NAMES) == ([(1, 26, 26)], -1)
    assert C_COLLECT(A, 99, NEEDLE, REFS, NAMES) == ([], -1)


TARGETS = [
    NEEDLE,
    b"<base href=/a/>",
    b"<BASE ",
    b"/_static/a.css",
    b"&#95;",
    b"&#x5F",
    b"&#0095;",
    b"&sol;",
    b"&lowbar;",
    b"&UnderBar;",
    b"&#47",
    b"&#x2f;",
    b"&#1155;",
    b"&#x",
    b"&",
    b"_stat",
    b"ic/",
]
targeted = st.lists(st.one_of(document, st.sampled_from(TARGETS)), min_size=1, max_size=6).map(
    b"".join
)


@needs_c
@property_settings
@given(doc=targeted, data=st.data())
def test_c_agrees_on_generated_documents(doc: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(doc)), label="pos")
    for xhtml in (False, True):
        for to_end in (False, True):
            for bases in (False, True):
                assert c(doc, pos, xhtml, to_end, bases) == py(doc, pos, xhtml, to_end, bases)


@needs_c
@pytest.mark.skipif(sys.platform != "linux", reason="needs mprotect")
@property_settings
@given(doc=targeted)
def test_c_reads_nothing_outside_the_buffer(doc: bytes) -> None:
    if not GUARDED:
        GUARDED.append(GuardedBuffer())
    guarded = GUARDED[0]
    doc = doc[: guarded.page]
    for cut in range(len(doc) + 1):
        for xhtml in (False, True):
            expected = py(doc[:cut], 0, xhtml, True)
            assert c(guarded.ending_at_guard(doc[:cut]), 0, xhtml, True) == expected
            assert c(guarded.starting_at_guard(doc[:cut]), 0, xhtml, True) == expected


@needs_c
@pytest.mark.skipif(not CORPUS.is_dir(), reason="no corpus of real pages")
def test_real_pages_agree() -> None:
    pages = sorted(Path(CORPUS).rglob("*.html"))[::7]
    assert pages
    tags = 0
    for path in pages:
        doc = path.read_bytes()
        found = c(doc)
        assert found == py(doc), path
        assert c(doc, 0, False, True) == py(doc, 0, False, True)
        tags += len(found[0])
    assert tags > len(pages)  # the pages do reference their assets


NEEDLES = [b"x/", b"s/", b"ss/", b"js/", b"aaaa/", b"_static/", b"a-very-long-prefix-name/"]


@needs_c
@pytest.mark.skipif(sys.platform != "linux", reason="needs mprotect")
@pytest.mark.parametrize("needle", NEEDLES)
def test_the_needle_is_found_at_every_offset(needle: bytes) -> None:
    """The needle search tests 16 positions at a time for the needle's first and last bytes:
    a needle (or a near miss, with only those two bytes right) at each offset from either end
    of the buffer, as the only target or behind near misses, is found as the reference finds
    it, and nothing outside the buffer is read."""
    if not GUARDED:
        GUARDED.append(GuardedBuffer())
    guarded = GUARDED[0]
    refs, names = _hiding_refs(frozenset(needle)), _ref_names(frozenset(needle))
    near = needle[:1] + b"#" * (len(needle) - 2) + needle[-1:]
    tags = [b'<a href="' + needle + b'a">', b'<a href="' + near + b'a">']
    checked = 0
    for tag in tags:
        for filler in (b"", near * 3, needle[:-1] * 5):
            for before in range(40):
                for after in (0, 1, 15, 16, 17):
                    doc = b"x" * before + filler + tag + b"y" * after
                    expected = collect_py(doc, 0, needle, refs, names, False, True, True)
                    assert C_COLLECT is not None
                    for view in (doc, guarded.ending_at_guard(doc)):
                        got = C_COLLECT(view, 0, needle, refs, names, False, True, True)
                        assert got == expected, (doc, needle)
                    checked += 1
    assert checked == 2 * 3 * 40 * 5
