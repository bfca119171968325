"""Generated documents: the rewriter agrees with the oracle, in any chunking, and twice.

Documents are strings of fragments from a small grammar: tags whose URL attributes point at
files that exist, are missing, are directories, pages or already hashed, written in every URL
form, quoting and character-reference spelling; comments, bogus comments, raw-text elements,
``<style>``, import maps, srcsets, ``<base>``; and broken markup (unclosed tags, quotes and
comments, stray ``<``, arbitrary bytes).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from hashstatic.cache import DiskIndex
from tests.htmlcases import CDN, PAGE_UNDER_PREFIX, Setup, fill, make_root, split_at
from tests.oracle import RULES, oracle_rewrite

PATHS = [
    b"css/site.css",
    b"js/app.js",
    b"js/app.min.js",
    b"img/logo.png",
    b"img/a%20b.png",
    b"img/a b.png",
    b"fonts/x.woff2",
    b"LICENSE",
    b"dir.css/inner.css",
    b"img/missing.png",
    b"img/",
    b"img",
    b"dir.css",
    b"page.html",
    fill(b"js/app.{app}.js"),
    fill(b"img/logo.{logo}.png"),
    b"js/app.0123456789ab.js",
    b"",
]
FORMS = [
    b"/static/%s",
    b"/static/%s",
    b"../static/%s",
    b"%s",
    b"./%s",
    b"img/../%s",
    b"http://example.com/static/%s",
    b"HTTP://Example.com:80/static/%s",
    b"//example.com/static/%s",
    b"https://example.com/static/%s",
    b"http://other.example/static/%s",
    b"/STATIC/%s",
    b"/static/../%s",
    b"data:,/static/%s",
    b" /static/%s\n",
]
SUFFIXES = [b"", b"", b"?v=1", b"?a=1&amp;b=2", b"#x", b"?q#f"]
REFERENCES = {
    ord("/"): [b"&#47;", b"&#x2F;", b"&sol;", b"&#47"],
    ord("."): [b"&#46;", b"&period;"],
    ord("s"): [b"&#115;", b"&#x73;"],
    ord("t"): [b"&#116;"],
    ord(":"): [b"&colon;"],
}
TEXT = [
    b"",
    b"text",
    b" ",
    b"\n",
    b"a < b",
    b"<3",
    b"<",
    b">",
    b"&amp;",
    b"&",
    b'"',
    b"'",
    b"=",
    b"/static/js/app.js",
    b"caf\xc3\xa9",
    b"\xe9\xff",
    b"\x00",
]
ATTRIBUTE_NAMES = [
    b"src",
    b"SRC",
    b"href",
    b"HRef",
    b"xlink:href",
    b"poster",
    b"data",
    b"data-src",
    b"srcset",
    b"imagesrcset",
    b"data-srcset",
    b"style",
    b"content",
    b"alt",
    b"title",
    b"rel",
    b"type",
    b"property",
    b"name",
    b"integrity",
    b"crossorigin",
    b"=src",
]
TAG_NAMES = [
    b"img",
    b"IMG",
    b"script",
    b"link",
    b"a",
    b"meta",
    b"object",
    b"video",
    b"source",
    b"div",
    b"image",
    b"iframe",
    b"base",
    b"p",
]
RAW_TEXT = [b"script", b"script", b"style", b"style", b"textarea", b"title", b"xmp", b"noframes"]

SETUPS = [  # a cross-origin url_base twice: only it exercises crossorigin="anonymous"
    Setup(),
    Setup(page=PAGE_UNDER_PREFIX),
    Setup(xhtml=True),
    Setup(integrity=True),
    Setup(url_base=CDN, integrity=True),
    Setup(url_base=CDN, integrity=True),
    Setup(url_base="//example.com/assets/", integrity=True),
    Setup(page=PAGE_UNDER_PREFIX, url_base=CDN, xhtml=True, integrity=True),
]


@st.composite
def urls(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):  # half of the URLs name an asset in a form that reaches it
        url = draw(st.sampled_from(FORMS[:3])) % draw(st.sampled_from(PATHS[:9]))
    else:
        url = draw(st.sampled_from(FORMS)) % draw(st.sampled_from(PATHS))
    url += draw(st.sampled_from(SUFFIXES))
    if draw(st.integers(0, 3)) == 0:
        # Spell some characters as character references.
        spelled = bytearray()
        for byte in url:
            choices = REFERENCES.get(byte)
            if choices and draw(st.booleans()):
                spelled += draw(st.sampled_from(choices))
            else:
                spelled.append(byte)
        url = bytes(spelled)
    return url


META_NAMES = [
    b"og:image",
    b"twitter:image:src",
    b"og:video:secure_url",
    b"msapplication-TileImage",
    b"og:image:width",
    b"description",
    b"og&#58;image",
]
DESCRIPTORS = [b"", b" 1x", b" 480w", b" 2x (a, b)", b" (x", b" 1x ((a), ", b" )", b"&#32;2x"]
CANDIDATE_ENDS = [b", ", b",", b" , ", b",,", b"\n", b"&#44; ", b"&#44;", b"&NewLine;", b""]
CSS_SHAPES = [
    b"background:url(%s)",
    b"background:url('%s')",
    b'background:url("%s")',
    b"background:URL( %s )",
    b"background:url(&quot;%s&quot;)",
    b"@import '%s';",
    b'@import url("%s") screen;',
    b"/* url(%s) */",
    b"content:'url(%s)'",
    b"background:url&#40;%s&#41;",
    b"a{b:url(%s",
    b"a:&eacute;url(%s)",
    b"a:&#8364;url(%s)",
    b"a:\xe2\x82\xacurl(%s)",
    b"background:image-set('%s' 1x)",
]


@st.composite
def srcsets(draw: st.DrawFn) -> bytes:
    parts = [draw(st.sampled_from([b"", b" ", b",", b"\n "]))]
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(urls()))
        parts.append(draw(st.sampled_from(DESCRIPTORS)))
        parts.append(draw(st.sampled_from(CANDIDATE_ENDS)))
    return b"".join(parts)


@st.composite
def css(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        url = draw(urls())
        shape = draw(st.sampled_from(CSS_SHAPES))
        parts.append(shape % url)
    return draw(st.sampled_from([b";", b" ", b"}\n"])).join(parts)


@st.composite
def attribute_values(draw: st.DrawFn, name: bytes) -> bytes:
    lower = name.lower()
    if lower in (b"srcset", b"imagesrcset", b"data-srcset"):
        return draw(srcsets())
    if lower == b"style":
        return draw(css())
    if lower == b"rel":
        return draw(st.sampled_from([b"stylesheet", b"alternate StyleSheet", b"preload", b""]))
    if lower == b"type":
        return draw(st.sampled_from([b"importmap", b" ImportMap ", b"module", b"text/css"]))
    if lower in (b"property", b"name"):
        return draw(st.sampled_from(META_NAMES))
    if lower in (b"integrity", b"crossorigin"):
        return draw(st.sampled_from([b"sha384-x", b"anonymous", b""]))
    if lower in (b"alt", b"title"):
        return draw(st.one_of(urls(), st.sampled_from(TEXT)))
    return draw(urls())


@st.composite
def attributes(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(ATTRIBUTE_NAMES))
    separator = draw(st.sampled_from([b" ", b" ", b"\n\t", b"/", b""]))
    if draw(st.integers(0, 9)) == 0:
        return separator + name  # no value
    value = draw(attribute_values(name))
    equals = draw(st.sampled_from([b"=", b"=", b" = ", b"\n="]))
    quote = draw(st.sampled_from([b'"', b'"', b"'", b""]))
    if draw(st.integers(0, 19)) == 0:
        return separator + name + equals + quote + value  # the quote never closes
    return separator + name + equals + quote + value + quote


@st.composite
def start_tags(draw: st.DrawFn, name: bytes | None = None) -> bytes:
    if name is None:
        name = draw(st.sampled_from(TAG_NAMES))
    attrs = b"".join(draw(st.lists(attributes(), max_size=4)))
    end = draw(st.sampled_from([b">", b">", b" >", b"/>", b" />", b""]))
    return b"<" + name + attrs + end


@st.composite
def importmaps(draw: st.DrawFn) -> bytes:
    def string() -> bytes:
        return (
            b'"'
            + draw(st.one_of(urls(), st.sampled_from([b"a", b"\\/static\\/js\\/app.js"])))
            + b'"'
        )

    entries = []
    for _ in range(draw(st.integers(0, 3))):
        colon = draw(st.sampled_from([b": ", b":", b"\n : "]))
        entries.append(string() + colon + string())
    ws = draw(st.sampled_from([b"", b" ", b"\n"]))
    body = b'{"imports": {' + (b"," + ws).join(entries) + b"}"
    if draw(st.booleans()):
        body += b', "scopes": {' + string() + b": {" + string() + b": " + string() + b"}}"
    if draw(st.booleans()):
        body += b', "x": [' + string() + b", " + string() + b"]"
    return body + b"}"


@st.composite
def raw_text_elements(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(RAW_TEXT))
    if name == b"script" and draw(st.integers(0, 3)) > 0:  # mostly import maps
        opening = b"<script type=" + draw(st.sampled_from([b"importmap", b'" importMap"'])) + b">"
        text = draw(importmaps())
    else:
        opening = draw(start_tags(draw(st.sampled_from([name, name.upper()]))))
        if name == b"style":
            text = draw(css())
        else:
            text = b"".join(
                draw(st.lists(st.one_of(start_tags(), st.sampled_from(TEXT)), max_size=3))
            )
    closing = draw(
        st.sampled_from(
            [
                b"</" + name + b">",
                b"</" + name.upper() + b" >",
                b"</" + name + b"x>",
                b"</" + name,
                b"",
            ]
        )
    )
    return opening + text + closing


@st.composite
def comments(draw: st.DrawFn) -> bytes:
    inner = b"".join(draw(st.lists(st.one_of(start_tags(), st.sampled_from(TEXT)), max_size=3)))
    opening = draw(
        st.sampled_from([b"<!--", b"<!-- ", b"<!DOCTYPE ", b"<?", b"</ ", b"<![CDATA[", b"<!"])
    )
    closing = draw(st.sampled_from([b"-->", b"--!>", b"?>", b"]]>", b">", b"- ->", b""]))
    return draw(st.sampled_from([opening + inner + closing, b"<!-->", b"<!--->", b"<!---->"]))


@st.composite
def bases(draw: st.DrawFn) -> bytes:
    href = draw(
        st.sampled_from(
            [
                b"/static/",
                b"/static/img/",
                b"/docs/",
                b"http://example.com/static/css/",
                b"http://cdn.example.org/",
                b"/static&#47;js/",
                b"/&#115;tatic/img/",
                b"../static/",
                b"/static",
                b"",
            ]
        )
    )
    shape = draw(
        st.sampled_from(
            [
                b'<base href="%s">',
                b"<BASE HREF='%s'>",
                b"<base target=_top href=%s >",
                b"<base/href=%s>",
            ]
        )
    )
    return shape % href


@st.composite
def asset_tags(draw: st.DrawFn) -> bytes:
    """The tags the integrity rules are about, with the attributes they look at."""
    shape = draw(
        st.sampled_from(
            [
                b"<script src=%s%s></script>",
                b"<link rel=stylesheet href=%s%s>",
                b"<link href=%s%s rel='preload stylesheet'>",
                b"<SCRIPT SRC=%s%s crossorigin>",
            ]
        )
    )
    quote = draw(st.sampled_from([b'"', b"'", b""]))
    extra = draw(st.sampled_from([b"", b" integrity=sha384-x", b" crossorigin=anonymous"]))
    return shape % (quote + draw(urls()) + quote, extra)


@st.composite
def media_tags(draw: st.DrawFn) -> bytes:
    """Tags whose URL sits in an attribute only that tag (or a sibling attribute) makes one."""
    shape = draw(
        st.sampled_from(
            [
                b"<meta property=%(name)s content=%(url)s>",
                b"<META CONTENT=%(url)s name=%(name)s>",
                b"<object data=%(url)s type=image/png></object>",
                b"<video poster=%(url)s controls></video>",
                b"<svg><image xlink:href=%(url)s /></svg>",
                b"<img data-src=%(url)s data-srcset=%(srcset)s>",
                b"<div style=%(css)s></div>",
            ]
        )
    )
    quote = draw(st.sampled_from([b'"', b"'", b""]))
    values = {
        b"url": quote + draw(urls()) + quote,
        b"srcset": b'"' + draw(srcsets()) + b'"',
        b"name": quote + draw(st.sampled_from(META_NAMES[:4])) + quote,
        b"css": b'"' + draw(css()).replace(b'"', b"&quot;") + b'"',
    }
    return shape % values


fragments = st.one_of(
    asset_tags(),
    asset_tags(),
    media_tags(),
    start_tags(),
    start_tags(),
    raw_text_elements(),
    raw_text_elements(),
    comments(),
    bases(),
    bases(),
    st.sampled_from(TEXT),
    st.binary(max_size=6),
    st.sampled_from([b"</p>", b"</a href='/static/js/app.js'>", b"</>", b"<plaintext>"]),
)
# Bytes that change how the tokenizer reads what follows, scattered over a document.
SYNTAX = [b"<", b">", b'"', b"'", b"=", b"&", b"-", b"!", b"/", b" ", b"<!--", b"-->", b"?>"]


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    doc = b"".join(draw(st.lists(fragments, max_size=10)))
    if doc and draw(st.integers(0, 3)) == 0:
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(doc)))
            doc = doc[:at] + draw(st.sampled_from(SYNTAX)) + doc[at:]
    return doc


documents = mutated_documents()
setups = st.sampled_from(SETUPS)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> DiskIndex:
    return DiskIndex(make_root(tmp_path_factory.mktemp("static")))


SETTINGS = settings(max_examples=250, deadline=None)


@SETTINGS
@given(setup=setups, doc=documents)
def test_rewriter_agrees_with_oracle(index: DiskIndex, setup: Setup, doc: bytes) -> None:
    expected = oracle_rewrite(doc, setup.urls(index), xhtml=setup.xhtml, integrity=setup.integrity)
    assert setup.rewrite(index, doc) == expected


@SETTINGS
@given(setup=setups, doc=documents, cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_any_chunking_gives_the_same_bytes(
    index: DiskIndex, setup: Setup, doc: bytes, cuts: list[int]
) -> None:
    chunks = split_at(doc, [c % (len(doc) + 1) for c in cuts])
    assert setup.stream(index, chunks) == setup.rewrite(index, doc)


@SETTINGS
@given(setup=setups, doc=documents)
def test_rewriting_is_idempotent(index: DiskIndex, setup: Setup, doc: bytes) -> None:
    once = setup.rewrite(index, doc)
    assert setup.rewrite(index, once) == once


class AllRulesReached(Exception):
    pass


def test_generated_documents_reach_every_rule(index: DiskIndex) -> None:
    # The properties above hold vacuously for a rule that no generated document exercises: a
    # rule is reached when the oracle's output changes if the oracle leaves that rule out.
    reached: set[str] = set()

    @settings(max_examples=1000, derandomize=True, phases=[Phase.generate], deadline=None)
    @given(setup=setups, doc=documents)
    def collect(setup: Setup, doc: bytes) -> None:
        urls = setup.urls(index)
        full = oracle_rewrite(doc, urls, xhtml=setup.xhtml, integrity=setup.integrity)
        for rule in set(RULES) - reached:
            without = frozenset([rule])
            less = oracle_rewrite(
                doc, urls, xhtml=setup.xhtml, integrity=setup.integrity, without=without
            )
            if less != full:
                reached.add(rule)
        if reached == set(RULES):
            raise AllRulesReached  # no need to generate the remaining examples

    with contextlib.suppress(AllRulesReached):
        collect()
    assert set(RULES) - reached == set()
