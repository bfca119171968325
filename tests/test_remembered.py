"""``remembered``: a page's remembered tags spliced in one call, in C and in Python.

``remembered_py`` is the reference. The properties check that it writes out every byte of the
page once, with exactly the tags it took changed, and that ``hashstatic._speedups.remembered``
gives the same results, the same pieces and the same rewrites, however many tags there are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashstatic.html import _Rewrite, remembered_py
from tests.test_tokenizer import c_function, property_settings

C_REMEMBERED = c_function("remembered")
needs_c = pytest.mark.skipif(C_REMEMBERED is None, reason="hashstatic._speedups is not built")

STATE = (object(), 7)  # a Vouched.state(): the watcher and its change count
OTHER_STATE = (STATE[0], 8)
POOL = [b'<link href="/s/a.css">', b'<script src="/s/b.js">', b"<img src=/s/c.png>", b"<style>"]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A page of text and pool tags, the tags found in it, a memo, and where the call starts."""
    doc = b""
    found: list[tuple[int, int, int]] = []
    for _ in range(draw(st.integers(0, 80))):
        doc += draw(st.binary(max_size=12))
        tag = draw(st.sampled_from(POOL))
        found.append((len(doc), len(doc) + len(tag), len(doc) + len(tag)))
        doc += tag
    doc += draw(st.binary(max_size=12))
    tags: dict[bytes, _Rewrite] = {}
    for tag in POOL:
        if draw(st.booleans()) or draw(st.booleans()):
            text = draw(st.none() | st.binary(max_size=30))
            rewrite = _Rewrite(text, (), (), draw(st.sampled_from(["", "", "style"])))
            rewrite.vouched = draw(st.sampled_from([None, STATE, STATE, OTHER_STATE]))
            tags[tag] = rewrite
    i = draw(st.integers(0, len(found)))
    low = found[i - 1][1] if i else 0
    high = found[i][0] if i < len(found) else len(doc)
    emitted = draw(st.integers(low, high))
    last = found[-1][1] if found else 0
    upto = draw(st.sampled_from([-1, len(doc), max(last, emitted)]))
    return {
        "doc": doc,
        "found": found,
        "i": i,
        "tags": tags,
        "check": draw(st.booleans()),
        "state": STATE,
        "emitted": emitted,
        "upto": upto,
    }


def _call(fn: Callable[..., Any], case: dict[str, Any]) -> tuple[Any, list[bytes], list[Any]]:
    out: list[bytes] = []
    hits: list[Any] = []
    c = case
    got = fn(
        c["doc"], c["found"], c["i"], c["tags"], c["check"], c["state"], c["emitted"],
        c["upto"], out, hits,
    )  # fmt: skip
    return got, out, hits


def _usable(rewrite: _Rewrite | None, check: bool) -> bool:
    if rewrite is None or rewrite.raw_kind:
        return False
    return not check or rewrite.vouched == STATE


@given(cases())
@property_settings
def test_every_byte_goes_out_once_with_exactly_the_taken_tags_changed(case: dict[str, Any]) -> None:
    (stop, emitted), out, hits = _call(remembered_py, case)
    doc, found, tags = case["doc"], case["found"], case["tags"]
    # Taken: the tags from i while each is usable; stop is the first that is not.
    taken = []
    for k in range(case["i"], len(found)):
        rewrite = tags.get(doc[found[k][0] : found[k][1]])
        if not _usable(rewrite, case["check"]):
            break
        taken.append((found[k], rewrite))
    assert stop == case["i"] + len(taken)
    assert hits == [rewrite for _, rewrite in taken]
    # What was out before, what went out now, and what is left is the page with the taken
    # tags replaced by their texts.
    expected, at = b"", 0
    for (start, end, _), rewrite in taken:
        if rewrite.text is not None:
            expected += doc[at:start] + rewrite.text
            at = end
    expected += doc[at:]
    assert doc[: case["emitted"]] + b"".join(out) + doc[emitted:] == expected
    assert len(out) <= 1
    changed = any(r.text is not None for _, r in taken)
    assert bool(out) == changed
    if not changed:
        assert emitted == case["emitted"]
    elif stop == len(found) and case["upto"] > 0:
        assert emitted == case["upto"]  # the rest up to upto went along
    else:
        assert emitted == max(end for (_, end, _), r in taken if r.text is not None)


@needs_c
@given(cases())
@property_settings
def test_c_gives_what_python_gives(case: dict[str, Any]) -> None:
    assert C_REMEMBERED is not None
    assert _call(C_REMEMBERED, case) == _call(remembered_py, case)


@needs_c
def test_c_grows_past_its_first_room_and_holds_no_reference_after() -> None:
    assert C_REMEMBERED is not None
    tag = b'<img src="/s/a.png">'
    text = b'<img src="/s/a.0123456789ab.png">'
    doc = b"x".join([tag] * 300)
    found = [(k * (len(tag) + 1), k * (len(tag) + 1) + len(tag), 0) for k in range(300)]
    found = [(s, e, e) for s, e, _ in found]
    rewrite = _Rewrite(text, (), (), "")
    case = {
        "doc": doc, "found": found, "i": 0, "tags": {tag: rewrite}, "check": False,
        "state": None, "emitted": 0, "upto": len(doc),
    }  # fmt: skip
    before = sys.getrefcount(text), sys.getrefcount(rewrite)
    for _ in range(3):
        (stop, emitted), out, hits = _call(C_REMEMBERED, case)
        assert (stop, emitted) == (300, len(doc))
        assert out == [b"x".join([text] * 300)]
        assert len(hits) == 300
        del out, hits
    assert (sys.getrefcount(text), sys.getrefcount(rewrite)) == before


@needs_c
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"doc": bytearray(b"<a>")}, TypeError),
        ({"found": [(0, 3)]}, TypeError),
        ({"found": [(2, 1, 1)]}, ValueError),
        ({"found": [(0, 9, 9)]}, ValueError),
        ({"i": -1}, ValueError),
        ({"emitted": 1}, ValueError),  # the tag starts before what is already out
        ({"tags": {b"<a>": object()}}, AttributeError),
        ({"tags": {b"<a>": _Rewrite("text", (), (), "")}}, TypeError),  # type: ignore[arg-type]
    ],
)
def test_c_refuses_what_the_engine_never_passes(change: dict[str, Any], error: type) -> None:
    assert C_REMEMBERED is not None
    case = {
        "doc": b"<a>", "found": [(0, 3, 3)], "i": 0, "tags": {b"<a>": _Rewrite(b"<b>", (), (), "")},
        "check": False, "state": None, "emitted": 0, "upto": -1,
    }  # fmt: skip
    case.update(change)
    with pytest.raises(error):
        _call(C_REMEMBERED, case)
