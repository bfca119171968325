from __future__ import annotations

import hashlib

import pytest

from hashstatic.cache import Asset
from hashstatic.urls import UrlRewriter, decode_refs, remove_dot_segments

FILES = {
    "css/site.css": b"body{}",
    "js/app.min.js": b"x=1",
    "img/a b.png": b"png",
    "img/caf\u00e9.png": b"cafe",
    "LICENSE": b"MIT",
    "deep/x.y/z": b"z",
}


def _asset(path: str) -> Asset | None:
    if path not in FILES:
        return None
    digest = hashlib.md5(FILES[path]).hexdigest()
    head, _, last = path.rpartition("/")
    dot = last.rfind(".")
    name = f"{last}.{digest[:12]}" if dot <= 0 else f"{last[:dot]}.{digest[:12]}{last[dot:]}"
    return Asset(path, f"{head}/{name}" if head else name, digest, len(FILES[path]), 0, "sha384-x")


def h(path: str) -> str:
    return hashlib.md5(FILES[path]).hexdigest()[:12]


def rewriter(page: str = "http://example.com/docs/page.html", **kw: object) -> UrlRewriter:
    return UrlRewriter(prefix="/static/", page_url=page, lookup=_asset, **kw)  # type: ignore[arg-type]


S = h("css/site.css")
J = h("js/app.min.js")
A = h("img/a b.png")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("/static/css/site.css", f"/static/css/site.{S}.css", id="absolute-path"),
        pytest.param("../static/css/site.css", f"../static/css/site.{S}.css", id="relative-up"),
        pytest.param(
            "../../static/css/site.css", f"../../static/css/site.{S}.css", id="above-root"
        ),
        pytest.param("/static/js/app.min.js", f"/static/js/app.min.{J}.js", id="two-dots"),
        pytest.param("/static/LICENSE", f"/static/LICENSE.{h('LICENSE')}", id="no-extension"),
        pytest.param(
            "/static/deep/x.y/z", f"/static/deep/x.y/z.{h('deep/x.y/z')}", id="dotted-dir"
        ),
        pytest.param("/static/img/a%20b.png", f"/static/img/a%20b.{A}.png", id="percent-kept"),
        pytest.param("/static/img/a%20b%2Epng", f"/static/img/a%20b.{A}%2Epng", id="encoded-dot"),
        pytest.param(
            "/static/img/caf%C3%A9.png",
            f"/static/img/caf%C3%A9.{h('img/café.png')}.png",
            id="utf8-percent",
        ),
        pytest.param(
            "/static/css/site.css?v=1#x", f"/static/css/site.{S}.css?v=1#x", id="query-frag"
        ),
        pytest.param("/static/css/site.css#x", f"/static/css/site.{S}.css#x", id="fragment"),
        pytest.param(
            "/static/css/site.css?a=1&amp;b=2", f"/static/css/site.{S}.css?a=1&amp;b=2", id="amp"
        ),
        pytest.param("&#47;static/css/site.css", f"&#47;static/css/site.{S}.css", id="ref-slash"),
        pytest.param(
            "/static/css/site&period;css", f"/static/css/site.{S}&period;css", id="ref-dot"
        ),
        pytest.param("  /static/css/site.css ", f"  /static/css/site.{S}.css ", id="spaces"),
        pytest.param("http://example.com/static/css/site.css", None, id="same-origin-kept"),
        pytest.param("HTTP://EXAMPLE.COM:80/static/css/site.css", None, id="default-port"),
        pytest.param("//example.com/static/css/site.css", None, id="protocol-relative"),
        pytest.param("https://example.com/static/css/site.css", "", id="other-scheme"),
        pytest.param("http://example.com:8080/static/css/site.css", "", id="other-port"),
        pytest.param("http://cdn.example.com/static/css/site.css", "", id="other-host"),
        pytest.param("http://u@example.com/static/css/site.css", "", id="userinfo"),
        pytest.param("data:text/css,/static/css/site.css", "", id="data"),
        pytest.param("javascript:/static/css/site.css", "", id="javascript"),
        pytest.param("/static/missing.css", "", id="missing"),
        pytest.param("/static/css/", "", id="directory"),
        pytest.param("/static/css", "", id="directory-no-slash"),
        pytest.param("/static/page.html", "", id="html"),
        pytest.param(f"/static/css/site.{S}.css", "", id="already-hashed"),
        pytest.param("/static\\css\\site.css", "", id="backslash"),
        pytest.param("/sta\ntic/css/site.css", "", id="newline"),
        pytest.param("/other/css/site.css", "", id="other-prefix"),
        pytest.param("/static/%ff.css", "", id="invalid-utf8"),
        pytest.param("", "", id="empty"),
        pytest.param("?x=1", "", id="query-only"),
        pytest.param("#top", "", id="fragment-only"),
        pytest.param("/%73tatic/css/site.css", "", id="percent-in-prefix"),
    ],
)
def test_rewrite_url(raw: str, expected: str | None) -> None:
    if expected is None:  # same origin, written absolute: kept absolute
        expected = raw.replace("site.css", f"site.{S}.css")
    done = rewriter().rewrite_url(raw.encode("latin-1"))
    assert (done.text.decode("latin-1") if done else "") == expected


def test_relative_url_resolves_against_page_directory() -> None:
    page = rewriter("http://example.com/static/index.html")
    done = page.rewrite_url(b"css/site.css")
    assert done is not None and done.text == f"css/site.{S}.css".encode()
    assert page.under_prefix(None)


def test_relative_url_resolves_against_base() -> None:
    r = rewriter()
    base = r.resolve_base(b"/static/css/")
    assert base == "http://example.com:80/static/css/"
    done = r.rewrite_url(b"site.css", base)
    assert done is not None and done.text == f"site.{S}.css".encode()
    assert r.rewrite_url(b"site.css") is None  # without the base it names /docs/site.css


def test_base_on_other_origin_stops_relative_urls() -> None:
    r = rewriter()
    base = r.resolve_base(b"https://cdn.example.com/static/")
    assert r.rewrite_url(b"css/site.css", base) is None
    assert r.rewrite_url(b"/static/css/site.css", base) is None  # path resolves on cdn too


def test_url_base_replaces_origin_and_prefix() -> None:
    r = rewriter(url_base="https://cdn.example.com/assets/")
    done = r.rewrite_url(b"../static/img/a%20b.png?x#y")
    assert done is not None
    assert done.text == f"https://cdn.example.com/assets/img/a%20b.{A}.png?x#y".encode()
    assert r.cross_origin


def test_same_origin_url_base_is_not_cross_origin() -> None:
    assert not rewriter(url_base="/assets/").cross_origin
    assert not rewriter(url_base="http://example.com/assets/").cross_origin


def test_needle_is_last_prefix_segment() -> None:
    r = UrlRewriter(prefix="/a/_static/", page_url="http://x/", lookup=_asset)
    assert r.needle == b"_static/"
    root = UrlRewriter(prefix="/", page_url="http://x/", lookup=_asset)
    assert root.needle == b"" and root.under_prefix(None)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param(b"a&amp;b", "a&b", id="amp"),
        pytest.param(b"a&amp b", "a& b", id="legacy-without-semicolon"),
        pytest.param(b"a&amp=b", "a&amp=b", id="legacy-before-equals"),
        pytest.param(b"a&ampx1", "a&ampx1", id="legacy-before-alnum"),
        pytest.param(b"&#x2F;&#47;&#0;", "//\ufffd", id="numeric"),
        pytest.param(b"&notin;&notit;", "\u2209&notit;", id="legacy-prefix-before-alnum"),
        pytest.param(b"&not x", "\u00ac x", id="legacy-prefix"),
        pytest.param(b"&bogus;", "&bogus;", id="unknown"),
    ],
)
def test_decode_refs(raw: bytes, text: str) -> None:
    decoded, starts = decode_refs(raw)
    assert decoded == text
    assert len(starts) == len(decoded) + 1 and starts[-1] == len(raw)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/../c", "/a/c"),
        ("/a/./b", "/a/b"),
        ("/../a", "/a"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/a//b", "/a//b"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_numeric_references_of_any_length() -> None:
    """Thousands of digits are one U+FFFD, as browsers read them (int() alone would refuse
    a decimal number that long); zeros in front change nothing."""
    from hashstatic.urls import decode_refs

    raw = b"a&#" + b"9" * 5000 + b";b&#x" + b"f" * 5000 + b";c&#0000065;"
    text, starts = decode_refs(raw)
    assert text == "a\ufffdb\ufffdcA"
    assert list(starts) == [0, 1, 5004, 5005, 10009, 10010, len(raw)]
