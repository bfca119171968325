"""The tokenizer grammar of ``advance``, and the C implementation checked against the regex.

``advance_py`` (the regular expression in ``hashstatic/tokenizer.py``) is the reference. The
table below runs every rule of the grammar through both implementations; the properties then
compare ``hashstatic._speedups.advance`` with ``advance_py`` on generated documents. The C
comparisons are skipped when the extension is not built.

A case is written ``case(consumed, stopped, beyond)``: the document is the three joined,
``advance`` runs from 0 to the end of ``stopped`` and must return ``len(consumed)``. So
``stopped`` is the unfinished construct that advance stops in front of (empty when it gets to
endpos), and ``beyond`` what follows endpos, which must make no difference.
"""

from __future__ import annotations

import ctypes
import importlib
import mmap
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashstatic import tokenizer
from hashstatic.tokenizer import RAW_TEXT, advance_py

Advance = Callable[..., int]


def c_function(name: str) -> Callable[..., Any] | None:
    """``hashstatic._speedups.<name>``, even with ``HASHSTATIC_PURE_PYTHON`` set (the tests
    compare it with the Python form), or None when the extension is not built."""
    try:
        module: Any = importlib.import_module("hashstatic._speedups")
    except ImportError:
        return None
    function: Callable[..., Any] = getattr(module, name)
    return function


C_ADVANCE: Advance | None = c_function("advance")
needs_c = pytest.mark.skipif(C_ADVANCE is None, reason="hashstatic._speedups is not built")

# Examples per property; HASHSTATIC_FUZZ=100000 for a long fuzzing run.
EXAMPLES = int(os.environ.get("HASHSTATIC_FUZZ", "300"))


def c_advance() -> Advance:
    if C_ADVANCE is None:
        pytest.skip("hashstatic._speedups is not built")
    return C_ADVANCE


@pytest.fixture(params=["python", "c"])
def advance(request: pytest.FixtureRequest) -> Advance:
    return advance_py if request.param == "python" else c_advance()


def case(
    consumed: bytes,
    stopped: bytes = b"",
    beyond: bytes = b"",
    *,
    xhtml: bool = False,
    id: str,
) -> Any:
    return pytest.param(consumed, stopped, beyond, xhtml, id=id)


CASES = [
    # --- text ---------------------------------------------------------------------------
    case(b"", id="empty"),
    case(b"plain text, no markup", id="text"),
    case(b"a < b, 1<2, a <= b, <\t<\n", id="lt-before-space-digit-equals"),
    case(b"caf\xc3\xa9 <\xc3\xa9 <\x00 \x00\xff", id="lt-before-non-ascii-and-nul"),
    case(b"text", b"<", id="lt-at-endpos-minus-1-of-document"),
    case(b"text", b"<", b"p>", id="lt-at-endpos-minus-1"),
    case(b"x", b"", b"<p", id="endpos-before-lt"),
    # --- start tags ---------------------------------------------------------------------
    case(b"<p>", id="start-tag"),
    case(b"<DIV CLASS=X><Br/><img src=x />", id="start-tags-any-case-self-closing"),
    case(b"<a href=\"x\" class='y' id=z hidden>", id="every-quoting"),
    case(b"<a title=\"a>b\" alt='c>d'>", id="quoted-values-hold-gt"),
    case(b"<a title=\"<b>\" alt='<!--'>", id="quoted-values-hold-lt"),
    case(b"", b'<a title="a>b', b'">', id="endpos-in-double-quoted-value-after-gt"),
    case(b"", b"<a title='a>b", b"'>", id="endpos-in-single-quoted-value-after-gt"),
    case(b"", b'<a title="<b>', b'">', id="endpos-in-quoted-value-after-tag-like"),
    case(b"", b'<a title="never closed>', id="quoted-value-never-closed"),
    case(b'<a b=x"y>', b"", b'"', id="quote-inside-unquoted-value-is-literal"),
    case(b'<a href = "x" \n\t>', id="whitespace-around-equals"),
    case(b"<a b==c d=e=f>", id="equals-inside-unquoted-value"),
    case(b"<a b=>", id="empty-unquoted-value"),
    case(b"", b"<a b= ", b">", id="endpos-after-equals"),
    case(b'<a ="x>', b"", b'"', id="name-starting-with-equals-holds-quote"),
    case(b"", b'<a b ="x>', b'">', id="equals-after-name-and-space-opens-value"),
    case(b"", b'<a b= "x>', b'">', id="space-after-equals-then-quoted-value"),
    case(b'<a b=="x>', b"", b'"', id="value-starting-with-equals-holds-quote"),
    case(b"<a / / b/>", id="slashes-between-attributes"),
    case(b"<a\thref=x\nclass=y\fid=z\rdata-q>", id="every-whitespace-separates"),
    case(b"<a\x0bb=c>", id="vertical-tab-is-no-whitespace"),
    case(b"<a\x00b \xff=\xfe>", id="nul-and-non-ascii-in-tag"),
    case(b"<p>", b"<img src=", b"x>", id="endpos-in-start-tag"),
    case(b"x", b"<span", b">", id="endpos-in-tag-name"),
    case(b"", b"<a", id="lt-letter-at-end"),
    # --- end tags -----------------------------------------------------------------------
    case(b"</p></P ></p\n>", id="end-tags"),
    case(b"</p class=\"a>b\" x='<'>", id="end-tag-with-attributes"),
    case(b"", b'</p title="x>', b'">', id="endpos-in-end-tag-quoted-value"),
    case(b"", b"</p", b">", id="endpos-in-end-tag-name"),
    case(b"a", b"</", b"p>", id="endpos-after-lt-slash"),
    case(b"</>x", id="lt-slash-gt-is-nothing"),
    case(b"</ x></1></=a>", id="bogus-end-tags"),
    case(b"", b"</ x", b">", id="endpos-in-bogus-end-tag"),
    # --- comments -----------------------------------------------------------------------
    case(b"<!-- c --><!----><!-- <a href='x'> -->", id="comments"),
    case(b"<!--><p>", id="abrupt-comment"),
    case(b"<!---><p>", id="abrupt-comment-with-dash"),
    case(b"<!-- a --!><p>", id="comment-closed-by-dash-dash-bang-gt"),
    case(b"<!-- a --!-- b ---->", id="comment-dash-dash-bang-does-not-close"),
    case(b"", b"<!-- a --! b", b"-->", id="endpos-after-dash-dash-bang"),
    case(b"", b"<!-- a -- > b", b" -->", id="dash-dash-space-gt-does-not-close"),
    case(b"<p>", b"<!-- <a> <img src=", b"x> -->", id="unfinished-comment-is-no-bogus-comment"),
    case(b"", b"<!-- never closed > at all", id="comment-never-closed"),
    case(b"", b"<!-", b"->", id="endpos-in-comment-opener"),
    case(b"", b"<!--", b">", id="endpos-after-comment-opener"),
    case(b"", b"<!---", b">", id="endpos-after-comment-opener-dash"),
    case(b"", b"<!-- x --", b">", id="endpos-before-comment-gt"),
    case(b"", b"<!-- x --!", b">", id="endpos-before-comment-bang-gt"),
    # --- bogus comments -----------------------------------------------------------------
    case(b"<!x><!DOCTYPE html><!><!-x->", id="bogus-comments"),
    case(b"<?x><?xml version='1.0'?>", id="processing-instructions-are-bogus-in-html"),
    case(b"<![CDATA[ <a> ]]", b"", b">", id="cdata-is-a-bogus-comment-in-html"),
    case(b"", b"<!x", b">", id="endpos-in-bogus-comment"),
    case(b"", b"<?x", b">", id="endpos-in-question-bogus-comment"),
    case(b"", b"<!", b">", id="endpos-after-lt-bang"),
    # --- raw text -----------------------------------------------------------------------
    case(b"<ScRiPt>x</sCrIpT>", id="raw-text-name-any-case"),
    case(b"", b"<script>a</scripty>b", b"</script>", id="longer-end-tag-does-not-close"),
    case(b"", b"<script>a</scrip>b", b"</script>", id="shorter-end-tag-does-not-close"),
    case(b"<script>a</script >", id="end-tag-followed-by-space"),
    case(b"<script>a</script/>", id="end-tag-followed-by-slash"),
    case(b"<script>a</script\t\n>", id="end-tag-followed-by-tab"),
    case(b"", b"<script>a</script", b">", id="endpos-after-raw-end-tag-name"),
    case(b"<script>a", b"</script ", b">", id="endpos-in-raw-end-tag"),
    case(b"", b"<script>a</script\x0b>", b"</script>", id="vertical-tab-after-end-tag-name"),
    case(b"", b"<script>x</\xc5\xbfcript>", b"</script>", id="end-tag-case-is-ascii-only"),
    case(b"<scripts><p>x", id="longer-name-is-no-raw-element"),
    case(b"<script\x0b><p>", id="vertical-tab-after-name-is-no-raw-element"),
    case(b"<script src=\"a>b\" x='</script>'>y</script>", id="raw-start-tag-attributes"),
    case(b"", b"<script src=", b"x></script>", id="endpos-in-raw-start-tag"),
    case(b"", b"<script/>x", b"</script>", id="self-closing-script-is-raw-in-html"),
    case(b"<title><script></title><p>", id="raw-text-holds-tags"),
    case(b"<textarea><!--</textarea>-->", id="raw-text-holds-comment-openers"),
    case(b"<p>", b"<style>p{}", id="raw-text-without-end-tag"),
    # --- base and plaintext -------------------------------------------------------------
    case(b"<p>", b"<base href='/x/'>", id="base"),
    case(b"", b"<BASE>", b"<p>", id="base-upper-case"),
    case(b"", b"<base/>", id="base-self-closing"),
    case(b"", b"<base\nhref=x", id="base-unfinished"),
    case(b"", b"<base", id="base-name-at-endpos"),
    case(b"<basefont><bases>", id="longer-names-are-no-base"),
    case(b"<p>", b"<plaintext>a</plaintext>", id="plaintext"),
    case(b"", b"<PlainText >", id="plaintext-any-case"),
    case(b"</base></plaintext>", id="base-and-plaintext-end-tags"),
    case(b'<a title="<base"><!-- <base> --><script><base></script>', id="base-in-others"),
    # --- XHTML --------------------------------------------------------------------------
    case(b"<script/><p>x<SCRIPT src='x' /><style/>", xhtml=True, id="xhtml-self-closing-raw"),
    case(b"<script src=x/><p>", xhtml=True, id="xhtml-slash-in-unquoted-value-closes"),
    case(b"", b"<script>x", b"</script>", xhtml=True, id="xhtml-raw-text"),
    case(b"", b"<script />x", b"", xhtml=False, id="html-script-space-slash-is-raw"),
    case(b"<![CDATA[ <a> > ]]><![CDATA[]]>", xhtml=True, id="xhtml-cdata"),
    case(b"", b"<![CDATA[ x ]]", b">", xhtml=True, id="xhtml-endpos-in-cdata"),
    case(b"", b"<![CDATA[ x ]>", b"]]>", xhtml=True, id="xhtml-cdata-bracket-gt-does-not-close"),
    case(b"", b"<![CDA", b"TA[ ]]>", xhtml=True, id="xhtml-endpos-in-cdata-opener"),
    case(b"<?pi a > b ?><??>", xhtml=True, id="xhtml-processing-instructions"),
    case(b"", b"<?pi a > b ?", b">", xhtml=True, id="xhtml-endpos-in-processing-instruction"),
    case(b"", b"<?>", xhtml=True, id="xhtml-question-gt-does-not-close"),
    case(b"<?>", xhtml=False, id="html-question-gt-closes"),
    case(b"<!x><!DOCTYPE html><!-- a --><!-->", xhtml=True, id="xhtml-comments"),
    case(b"", b"<!-- a > b", b"-->", xhtml=True, id="xhtml-unfinished-comment"),
    case(b"", b"<![CDATA[ never closed > ", xhtml=True, id="xhtml-cdata-never-closed"),
]


@pytest.mark.parametrize(("consumed", "stopped", "beyond", "xhtml"), CASES)
def test_grammar(
    advance: Advance, consumed: bytes, stopped: bytes, beyond: bytes, xhtml: bool
) -> None:
    doc = consumed + stopped + beyond
    endpos = len(consumed) + len(stopped)
    assert advance(doc, 0, endpos, xhtml) == len(consumed)
    # The same from a later position known to be in the data state.
    assert advance(b"<i>x" + doc, 4, 4 + endpos, xhtml) == 4 + len(consumed)


@needs_c
@pytest.mark.parametrize(("consumed", "stopped", "beyond", "xhtml"), CASES)
def test_case_every_endpos(consumed: bytes, stopped: bytes, beyond: bytes, xhtml: bool) -> None:
    doc = consumed + stopped + beyond
    c = c_advance()
    for pos in range(len(doc) + 1):
        for endpos in range(pos, len(doc) + 1):
            for mode in (False, True):
                assert c(doc, pos, endpos, mode) == advance_py(doc, pos, endpos, mode), (
                    pos,
                    endpos,
                    mode,
                )


@pytest.mark.parametrize("name", RAW_TEXT)
def test_raw_text_elements(advance: Advance, name: bytes) -> None:
    content = b"<b>a</b> <!-- </" + name + b"x> </" + name + b"-> <" + name + b">"
    doc = b"<" + name + b' a="</' + name + b'>">' + content + b"</" + name + b">"
    assert advance(doc, 0, len(doc)) == len(doc)
    end_tag = len(doc) - len(name) - 3
    assert advance(doc, 0, end_tag) == 0  # no end tag before endpos
    assert advance(doc, 0, end_tag + len(name) + 2) == 0  # "</name" at endpos
    assert advance(doc, 0, end_tag + len(name) + 3) == len(doc)
    upper = doc.upper()
    assert advance(upper, 0, len(upper)) == len(upper)
    assert advance(upper, 0, end_tag) == 0


@pytest.mark.parametrize("name", [*RAW_TEXT, b"base", b"plaintext"])
def test_special_name_prefixes_and_extensions(advance: Advance, name: bytes) -> None:
    for other in (name[:-1], name + b"s", name[1:], b"x" + name):
        doc = b"<" + other + b">text<" + other + b"/>"
        assert advance(doc, 0, len(doc)) == len(doc), other


def test_endpos_equal_to_pos(advance: Advance) -> None:
    doc = b"<p title='x'>text<!-- c --><script>s</script>"
    for pos in range(len(doc) + 1):
        for xhtml in (False, True):
            assert advance(doc, pos, pos, xhtml) == pos


def test_positions_are_clamped_as_by_re(advance: Advance) -> None:
    doc = b"<p>x<a"
    assert advance(doc, -5, 100) == 4
    assert advance(doc, 0, -1) == 0
    assert advance(doc, 100, 200) == len(doc)
    assert advance(doc, 3, 1) == 3  # endpos before pos: nothing consumed


# --- the C implementation's interface -----------------------------------------------------


@needs_c
def test_c_is_used_when_built() -> None:
    forced = bool(os.environ.get("HASHSTATIC_PURE_PYTHON"))
    assert tokenizer.ACCELERATED is not forced
    assert (tokenizer.advance is C_ADVANCE) is not forced


@needs_c
def test_c_takes_any_contiguous_buffer() -> None:
    c = c_advance()
    data = b'xx<a title="a>b">t<!-- c'
    expected = advance_py(data, 0, len(data))
    assert expected == len(b'xx<a title="a>b">t')
    assert c(data, 0, len(data)) == expected
    assert c(bytearray(data), 0, len(data)) == expected
    assert c(memoryview(data), 0, len(data)) == expected
    assert c(memoryview(b"<!-- " + data)[5:], 0, len(data)) == expected  # offsets in the view
    assert c(doc=data, pos=0, endpos=len(data), xhtml=True) == expected
    assert c(data, 0, len(data), 1) == expected


@needs_c
def test_c_rejects_what_is_no_contiguous_buffer() -> None:
    c = c_advance()
    with pytest.raises(TypeError):
        c("<p>", 0, 3)
    with pytest.raises((TypeError, BufferError)):
        c(memoryview(b"<p><p>")[::2], 0, 3)
    with pytest.raises(TypeError):
        c(b"<p>", 0)
    with pytest.raises(TypeError):
        c(b"<p>", 0.0, 3)
    with pytest.raises(OverflowError):
        c(b"<p>", 0, 1 << 70)


@needs_c
def test_c_long_document_agrees() -> None:
    # Longer than the length from which the GIL is released.
    doc = b'<p class="x">text <a href="/_statiq/a.css">a</a></p><!-- c -->\n' * 4000
    doc += b"<script>" + b"x<y " * 20000 + b"</script><p>"
    for xhtml in (False, True):
        for endpos in (len(doc), len(doc) - 3, len(doc) // 2, 70000):
            assert c_advance()(doc, 0, endpos, xhtml) == advance_py(doc, 0, endpos, xhtml)


# --- whole documents ----------------------------------------------------------------------

SPHINX_PAGE = b"""<!DOCTYPE html>
<html lang="en" data-content_root="../">
  <head>
    <meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>tokenizer &#8212; hashstatic 0.1 documentation</title>
    <link rel="stylesheet" type="text/css" href="../_statiq/pygments.css?v=d1102ebc" />
    <link rel="stylesheet" type="text/css" href="../_statiq/alabaster.css?v=12dfc556" />
    <script src="../_statiq/documentation_options.js?v=2709fde1"></script>
    <script>DOCUMENTATION_OPTIONS.x = "</p>" < 3 && a > b;</script>
    <style type="text/css">img { content: url("../_statiq/a.png") } /* <b> */</style>
    <!--[if lt IE 9]><script src="../_statiq/html5shiv.js"></script><![endif]-->
  </head><body>
<div class="highlight-python notranslate"><div class="highlight"><pre><span></span>
<span class="kn">import</span> <span class="nn">re</span>
<span class="n">x</span> <span class="o">=</span> <span class="mi">1</span>
<span class="o">&lt;</span> 2
</pre></div></div>
<p>See <a class="reference internal" href="#id1" title="a &lt;b&gt; c"><code class="xref \
py py-func docutils literal notranslate"><span class="pre">advance()</span></code></a>.</p>
<svg viewBox="0 0 10 10"><use xlink:href="../_statiq/icons.svg#x"/><title>i</title></svg>
<form action="/search" method=get><input type=text name=q autocomplete=off>
<input type="submit" value="Go" onclick='return a > b'></form>
<textarea rows=2><a href="x"></textarea><noscript><img src=../_statiq/n.gif></noscript>
<iframe src="x.html"></iframe><xmp><b></xmp>
</body></html>
"""

XHTML_PAGE = b"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title>
<script type="text/javascript" src="_statiq/a.js"/>
<script type="text/javascript">//<![CDATA[
if (a < b && c > d) {}
//]]></script>
<?xml-stylesheet href="_statiq/s.css" ?>
</head><body><p>x<br/><img src="_statiq/i.png" alt="a &gt; b"/></p>
<![CDATA[ <not> a tag ]]></body></html>
"""

CORPUS_LIKE = [
    pytest.param(SPHINX_PAGE, False, id="sphinx-page"),
    pytest.param(SPHINX_PAGE.replace(b"\n", b"\r\n"), False, id="sphinx-page-crlf"),
    pytest.param(XHTML_PAGE, True, id="xhtml-page"),
    pytest.param(b"<html><body>" + b"<p>caf\xc3\xa9 \xe2\x82\xac</p>" * 50, False, id="utf8"),
]


@pytest.mark.parametrize(("doc", "xhtml"), CORPUS_LIKE)
def test_corpus_like_documents_are_consumed(advance: Advance, doc: bytes, xhtml: bool) -> None:
    assert advance(doc, 0, len(doc), xhtml) == len(doc)
    # And the hits of the asset prefix sit where the rewriter expects them.
    hit = doc.find(b"_statiq/")
    while hit >= 0:
        stop = advance(doc, 0, hit, xhtml)
        assert stop == hit or doc[stop : stop + 1] == b"<"
        hit = doc.find(b"_statiq/", hit + 1)


CORPUS = Path(os.environ.get("HASHSTATIC_CORPUS", "/tmp/corpus"))


@needs_c
@pytest.mark.skipif(not CORPUS.is_dir(), reason="no corpus of real pages")
def test_real_pages_agree() -> None:
    """Pages of real documentation sites (the benchmark's corpus), when they are there."""
    pages = sorted(CORPUS.glob("**/*.html"))[::37]
    assert pages
    c = c_advance()
    for page in pages:
        doc = page.read_bytes()
        assert c(doc, 0, len(doc)) == advance_py(doc, 0, len(doc)) == len(doc), page
        for endpos in range(0, len(doc), max(1, len(doc) // 13)):
            assert c(doc, 0, endpos) == advance_py(doc, 0, endpos), (page, endpos)


# --- generated documents ------------------------------------------------------------------

TAG_NAMES = [
    b"a",
    b"p",
    b"img",
    b"span",
    b"x-y",
    b"base",
    b"BaSe",
    b"basefont",
    b"plaintext",
    b"scripts",
    b"scrip",
    b"a\x00",
    *RAW_TEXT,
    b"ScRiPt",
    b"TITLE",
]
SEPARATORS = [b" ", b"  ", b"\t", b"\n", b"\f", b"\r", b"/", b" / ", b"\x0b", b""]
TEXTS = [
    b"",
    b"x",
    b"a b",
    b">",
    b"<",
    b"a>b",
    b"<b>",
    b"'",
    b'"',
    b"=",
    b"/",
    b"-->",
    b"--!>",
    b"]]>",
    b"?>",
    b"</script>",
    b"</title ",
    b"<base>",
    b"\x00\xff",
    b"caf\xc3\xa9",
    b"\r\n",
]


def mixed_case(draw: st.DrawFn, name: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(
        c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True)
    )


@st.composite
def attribute(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from([b"href", b"src", b"class", b"=", b"=x", b'"q', b"'", b"<", b"a"]))
    text = draw(st.sampled_from(TEXTS))
    quoting = draw(st.integers(0, 7))
    if quoting == 0:
        return name
    equals = draw(st.sampled_from([b"=", b" = ", b"=\n", b" =", b"= "]))
    if quoting == 1:
        value = b'"' + text.replace(b'"', b"") + b'"'
    elif quoting == 2:
        value = b"'" + text.replace(b"'", b"") + b"'"
    elif quoting == 3:
        value = b'"' + text  # not closed in the fragment: perhaps later
    elif quoting == 4:
        value = b"'" + text
    elif quoting == 5:
        value = b""
    else:
        value = bytes(c for c in text if c not in b" \t\n\f\r>")
    return name + equals + value


def tag_body(draw: st.DrawFn) -> bytes:
    parts = []
    for attr in draw(st.lists(attribute(), max_size=3)):
        parts += [draw(st.sampled_from(SEPARATORS)), attr]
    parts.append(draw(st.sampled_from([b"", b" ", b"/", b" /"])))
    parts.append(draw(st.sampled_from([b">", b">", b">", b""])))  # sometimes unfinished
    return b"".join(parts)


@st.composite
def tag(draw: st.DrawFn) -> bytes:
    opener = draw(st.sampled_from([b"<", b"</"]))
    return opener + mixed_case(draw, draw(st.sampled_from(TAG_NAMES))) + tag_body(draw)


@st.composite
def raw_element(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(RAW_TEXT))
    start = b"<" + mixed_case(draw, name) + tag_body(draw)
    pieces = [*TEXTS, b"</" + name + b"x", b"</" + name]
    content = b"".join(draw(st.lists(st.sampled_from(pieces), max_size=4)))
    close = draw(st.sampled_from([b">", b" >", b"/>", b"\t", b"x>", b"", b" a='>'>"]))
    end = b"</" + mixed_case(draw, name) + close if draw(st.booleans()) else b""
    return start + content + end


MARKUP = [
    b"<!---->",
    b"<!-->",
    b"<!--->",
    b"<!-- x -->",
    b"<!-- x --!>",
    b"<!--",
    b"<!-- <a href='x'> --",
    b"<!-- --!x -- >",
    b"-->",
    b"<!x>",
    b"<!DOCTYPE html>",
    b"<!",
    b"<!-",
    b"<?x>",
    b"<?pi ?>",
    b"<?",
    b"?>",
    b"<![CDATA[ <a> ]]>",
    b"<![CDATA[",
    b"]]>",
    b"</>",
    b"</ x>",
    b"</1",
    b"</",
    b"<",
    b"< ",
    b"<1",
    b"<=",
    b"<\xc3\xa9",
    b"<\x00",
    b">",
    b"text",
    b"_statiq/a.css",
]

fragment = st.one_of(
    tag(),
    raw_element(),
    st.sampled_from(MARKUP),
    st.sampled_from(TEXTS),
    st.binary(max_size=6),
)
document = st.lists(fragment, max_size=14).map(b"".join)
property_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@needs_c
@property_settings
@given(doc=document, data=st.data())
def test_c_agrees_on_generated_documents(doc: bytes, data: st.DataObject) -> None:
    c = c_advance()
    endpos = data.draw(st.integers(0, len(doc)), label="endpos")
    for xhtml in (False, True):
        expected = advance_py(doc, 0, endpos, xhtml)
        assert c(doc, 0, endpos, xhtml) == expected
        assert 0 <= expected <= endpos
        assert expected == endpos or doc[expected : expected + 1] == b"<"
        assert c(doc, 0, len(doc), xhtml) == advance_py(doc, 0, len(doc), xhtml)


@needs_c
@property_settings
@given(doc=document, data=st.data())
def test_c_agrees_from_any_position(doc: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(doc)), label="pos")
    endpos = data.draw(st.integers(pos, len(doc)), label="endpos")
    xhtml = data.draw(st.booleans(), label="xhtml")
    assert c_advance()(doc, pos, endpos, xhtml) == advance_py(doc, pos, endpos, xhtml)


class GuardedBuffer:
    """Memory between two inaccessible pages: reading past a buffer placed there crashes."""

    def __init__(self) -> None:
        self.page = mmap.PAGESIZE
        self.map = mmap.mmap(-1, 3 * self.page)
        anchor = ctypes.c_char.from_buffer(self.map)
        address = ctypes.addressof(anchor)
        del anchor  # the map stays exported otherwise
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        for guard in (address, address + 2 * self.page):
            if libc.mprotect(guard, self.page, 0) != 0:  # PROT_NONE
                raise OSError(ctypes.get_errno(), "mprotect")

    def ending_at_guard(self, data: bytes) -> memoryview:
        start = 2 * self.page - len(data)
        self.map[start : 2 * self.page] = data
        return memoryview(self.map)[start : 2 * self.page]

    def starting_at_guard(self, data: bytes) -> memoryview:
        self.map[self.page : self.page + len(data)] = data
        return memoryview(self.map)[self.page : self.page + len(data)]


GUARDED: list[GuardedBuffer] = []


@needs_c
@pytest.mark.skipif(sys.platform != "linux", reason="needs mprotect")
@property_settings
@given(doc=document, data=st.data())
def test_c_reads_nothing_outside_pos_endpos(doc: bytes, data: st.DataObject) -> None:
    """The document cut at every endpos, flush against a page that cannot be read."""
    if not GUARDED:
        GUARDED.append(GuardedBuffer())
    guarded = GUARDED[0]
    doc = doc[: guarded.page]
    pos = data.draw(st.integers(0, len(doc)), label="pos")
    c = c_advance()
    for endpos in range(len(doc) + 1):
        for xhtml in (False, True):
            expected = advance_py(doc, 0, endpos, xhtml)
            assert c(guarded.ending_at_guard(doc[:endpos]), 0, endpos, xhtml) == expected
            assert c(guarded.starting_at_guard(doc[:endpos]), 0, endpos, xhtml) == expected
            if pos <= endpos:
                expected = advance_py(doc, pos, endpos, xhtml)
                assert c(guarded.ending_at_guard(doc[:endpos]), pos, endpos, xhtml) == expected


@needs_c
@property_settings
@given(doc=st.binary(max_size=64), pos=st.integers(-3, 70), endpos=st.integers(-3, 70))
def test_c_agrees_on_arbitrary_bytes(doc: bytes, pos: int, endpos: int) -> None:
    c = c_advance()
    for xhtml in (False, True):
        assert c(doc, pos, endpos, xhtml) == advance_py(doc, pos, endpos, xhtml)
