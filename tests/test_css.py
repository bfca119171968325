"""Where the URLs are in CSS: a table, and the fast scanner against the reference one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashstatic.css import url_spans
from tests import css_oracle


@pytest.mark.parametrize(
    ("css", "urls"),
    [
        pytest.param(b"a{background:url(x.png)}", [b"x.png"], id="unquoted"),
        pytest.param(b'a{background:url("x.png")}', [b"x.png"], id="double"),
        pytest.param(b"a{background:url('x.png')}", [b"x.png"], id="single"),
        pytest.param(b'a{background:url(  "x.png"\n )}', [b"x.png"], id="spaces"),
        pytest.param(b"a{background:URL(x.png)}", [b"x.png"], id="uppercase"),
        pytest.param(b'@import "a.css";', [b"a.css"], id="import-string"),
        pytest.param(b"@import url(a.css) screen;", [b"a.css"], id="import-url"),
        pytest.param(b"@IMPORT 'a.css';", [b"a.css"], id="import-uppercase"),
        pytest.param(b"/* url(x.png) */ b{}", [], id="comment"),
        pytest.param(b'a{content:"url(x.png)"}', [], id="in-string"),
        pytest.param(b"a{b:myurl(x.png)}", [], id="longer-name"),
        pytest.param(b"a{b:url(x.png#frag)}", [b"x.png#frag"], id="fragment"),
        pytest.param(b"a{b:url(x.eot?#iefix)}", [b"x.eot?#iefix"], id="iefix"),
        pytest.param(b"a{b:url(a b)}", [], id="space-inside-unquoted"),
        pytest.param(b'a{b:url("x', [], id="unterminated"),
        pytest.param(b"a{b:url(x.png", [], id="unclosed"),
        pytest.param(
            b'a{b:image-set("a.png" 1x, url(b.png) 2x)}', [b"a.png", b"b.png"], id="image-set"
        ),
        pytest.param(b'a{b:-webkit-image-set("a.png" 1x)}', [b"a.png"], id="webkit-image-set"),
        pytest.param(b'a{b:x("a.png")}', [], id="string-in-other-function"),
        pytest.param(b"a{b:url('it\\'s.png')}", [b"it\\'s.png"], id="escaped-quote"),
        pytest.param(b"/* open comment url(x.png)", [], id="open-comment"),
    ],
)
def test_url_spans(css: bytes, urls: list[bytes]) -> None:
    assert [css[a:b] for a, b in url_spans(css)] == urls


CSS_PIECES = [
    b"url(",
    b"URL(",
    b"myurl(",
    b"url( ",
    b"image-set(",
    b"-webkit-image-set(",
    b"x-webkit-image-set(",
    b"webkit-image-set(",
    b"@import",
    b"@IMPORT ",
    b"@imports",
    b"x@import",
    b"(",
    b")",
    b'"',
    b"'",
    b'"a.png"',
    b"'b.png' 1x",
    b"/*",
    b"*/",
    b"/",
    b"\\",
    b"\n",
    b" ",
    b",",
    b";",
    b"a.png",
    b"u",
    b"rl",
    b"-",
    b"\xc3\xa9",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(CSS_PIECES) | st.binary(max_size=3), max_size=24))
def test_agrees_with_the_reference_scanner(pieces: list[bytes]) -> None:
    text = b"".join(pieces)
    assert url_spans(text) == css_oracle.url_spans(text)
