"""Hostile and broken HTML: the rewriter never raises, only inserts hashes, and stays bounded.

The generated documents here are meant to break things rather than to agree with the oracle
(``test_html_properties`` does that on friendlier markup): tags, quotes, comments and raw-text
elements left open, NUL bytes and invalid UTF-8, character references that spell or almost
spell the asset prefix, ``<base>`` in odd places, broken srcsets, import maps and CSS, byte
order marks and charsets, random bytes, all mutated at random positions. For each document:

* no exception, whatever the input and chunking;
* the output is the input plus ``.<hash>`` insertions, each of them where the input names the
  asset whose hash it is;
* feeding it in 1-byte chunks, at random cuts or in random fixed sizes gives the whole-body
  output;
* rewriting the output again changes nothing;
* the pure-Python tokenizer (``HASHSTATIC_PURE_PYTHON=1``, in a worker process, since the
  choice is made at import) gives the same bytes as the C one.

The same properties are checked by ``fuzz/rewriter.py`` under atheris (coverage-guided), run
here for a bounded number of runs in each tokenizer.

Then pathological inputs (multi-megabyte attributes and data: URIs, unclosed comments, tags and
quotes followed by megabytes, 100,000 ``<`` or character references, repeated ``<base>``, a
10 MiB page) are each bounded in time, in both tokenizers, and in memory; their time must grow
linearly with the input; and what the caches shared by responses keep must not grow with
the pages served.

``HASHSTATIC_FUZZ=N`` sets the number of generated documents per property and
``HASHSTATIC_FUZZ_RUNS=N`` the number of atheris runs (defaults below). This file also runs as
``python -m tests.test_html_fuzz worker|measure ROOT``: the pure-Python side of the comparisons.
"""

from __future__ import annotations

import bisect
import functools
import gc
import hashlib
import html
import importlib.util
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import pytest
import webob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashstatic import HashStatic, tokenizer
from hashstatic.cache import DiskIndex
from tests.htmlcases import CDN, PAGE_UNDER_PREFIX, Setup, split_at

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("HASHSTATIC_FUZZ", "1500"))
MiB = 1 << 20

# --- the static root ---------------------------------------------------------------------------

# Names with a space, a non-ASCII letter, a quote and parentheses, next to ordinary ones. No
# stylesheet references anything, so every hash is the MD5 of the bytes on disk.
FILES: dict[str, bytes] = {
    "css/site.css": b"body { color: #333 }\n",
    "css/x(1).css": b"p { color: red }\n",
    "js/app.js": b"console.log('app');\n",
    "js/app.min.js": b"console.log(1)",
    "js/q'x.js": b"quote",
    "img/logo.png": b"\x89PNG\r\n\x1a\n logo",
    "img/a b.png": b"\x89PNG\r\n\x1a\n a b",
    "img/caf\u00e9.png": b"\x89PNG\r\n\x1a\n cafe",
    "LICENSE": b"MIT\n",
    "page.html": b"<!doctype html><p>a page</p>\n",
    "dir.css/inner.css": b"p { margin: 0 }\n",
}


def md5_12(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest()[:12].encode("ascii")


# Pages are never hashed: an inserted hash of page.html would be a foreign byte.
HASH_OF = {path: md5_12(data) for path, data in FILES.items() if path != "page.html"}
PATH_OF = {h: path for path, h in HASH_OF.items()}
assert len(PATH_OF) == len(HASH_OF)  # the files' contents differ, and so do their hashes


def make_root(directory: Path) -> Path:
    for path, data in FILES.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (directory / "empty").mkdir()
    return directory


# The rewriting setups whose output is the input plus hashes (no url_base, no integrity), and
# all of them for the other properties.
PLAIN = [Setup(), Setup(page=PAGE_UNDER_PREFIX), Setup(xhtml=True)]
SETUPS = [*PLAIN, Setup(url_base=CDN, integrity=True), Setup(page=PAGE_UNDER_PREFIX, xhtml=True)]

# --- hostile markup ----------------------------------------------------------------------------
# Hypothesis draws a document's outline -- which fragments, in what order, and where it is
# mutated -- and each fragment is spelled out by a seeded random.Random from the grammar below.
# Drawing every byte choice through Hypothesis costs ten times more than rewriting the document;
# this way shrinking still removes fragments and mutations and simplifies the rest. Tuples
# repeat their ordinary entries to weight them, so that most documents still get far enough
# for something to be rewritten.

ASSETS = (
    b"css/site.css",
    b"css/x(1).css",
    b"css/x%281%29.css",
    b"js/app.js",
    b"js/app.min.js",
    b"js/q'x.js",
    b"js/q%27x.js",
    b"img/logo.png",
    b"img/a%20b.png",
    b"img/a b.png",
    b"img/caf%C3%A9.png",
    b"LICENSE",
    b"dir.css/inner.css",
)
NOT_ASSETS = (
    b"img/caf\xc3\xa9.png",  # raw UTF-8: read as Latin-1 text, so no such file
    b"img/missing.png",
    b"img/",
    b"empty",
    b"dir.css",
    b"page.html",
    b"js/app.%s.js" % HASH_OF["js/app.js"],  # already hashed
    b"js/app.0123456789ab.js",
    b"",
)
REACHING = (  # forms that reach the asset from the default page
    b"/static/%s",
    b"http://example.com/static/%s",
    b"//example.com/static/%s",
    b"../static/%s",
)
FORMS = (
    *REACHING,
    b"%s",
    b"./%s",
    b"/static/./%s",
    b"/static/x/../%s",
    b"/static//%s",
    b"HTTP://EXAMPLE.COM:80/static/%s",
    b"https://example.com/static/%s",
    b"/%73tatic/%s",
    b"/static%2f%s",
    b"/STATIC/%s",
    b"/stati/%s",
    b"/static%s",
    b"\x00/static/%s",
    b"/static/%s\x00",
    b" \t/static/%s\n",
    b"/static\\%s",
    b"data:text/plain,/static/%s",
    b"javascript:'/static/%s'",
    b"http://user@example.com/static/%s",
    b"http://other.example/static/%s",
)
SUFFIXES = (b"", b"", b"", b"", b"?v=1", b"?a=1&amp;b=2", b"#x", b"?#", b"?q=/static/js/app.js")
NAMED = {
    ord("/"): (b"&sol;", b"&SOL;"),
    ord("."): (b"&period;", b"&period"),
    ord(":"): (b"&colon;", b"&Colon;"),
    ord("("): (b"&lpar;", b"&lpar"),
    ord(")"): (b"&rpar;", b"&rpar"),
    ord(","): (b"&comma;", b"&comma"),
    ord("?"): (b"&quest;", b"&quest"),
    ord("#"): (b"&num;", b"&num"),
    ord("%"): (b"&percnt;", b"&percnt"),
    ord("'"): (b"&apos;", b"&apos"),
    ord("&"): (b"&amp;", b"&amp"),
    ord(" "): (b"&nbsp;", b"&nbsp"),
}


def reference(form: int, byte: int) -> bytes:
    """Character reference number ``form`` for ``byte``: the first six spell it, the others
    almost do (they decode to something else, or not at all)."""
    named = NAMED.get(byte, (b"&#%d;" % byte, b"&#%d;" % byte))
    return (
        b"&#%d;" % byte,
        b"&#%d" % byte,  # no semicolon
        b"&#x%x;" % byte,
        b"&#X%X" % byte,
        b"&#%s%d;" % (b"0" * 30, byte),
        named[0],
        named[1],  # upper case, or a name that needs its semicolon
        b"&#%d ;" % byte,
        b"&#x%xg;" % byte,
        b"&#;",
        b"&#x110000;",
        b"&#xD800;",
        b"&#0;",
    )[form]


def spelled(r: random.Random, text: bytes) -> bytes:
    """``text`` with a few bytes written as character references, correct or nearly so."""
    if not text or r.random() < 0.8:
        return text
    form = r.randrange(13)
    out = text
    for at in sorted({r.randrange(len(text)) for _ in range(r.randint(1, 4))}, reverse=True):
        out = out[:at] + reference(form, text[at]) + out[at + 1 :]
    return out


def url(r: random.Random) -> bytes:
    if r.random() < 0.75:
        written = r.choice(REACHING).replace(b"%s", r.choice(ASSETS))
    else:
        written = r.choice(FORMS).replace(b"%s", r.choice(ASSETS + NOT_ASSETS))
    return spelled(r, written + r.choice(SUFFIXES))


SEPARATORS = (*[b" "] * 12, b"\n", b"\t", b"\x0c", b"/", b"", b"\x00", b"\r\n", b"\x0b", b" / ")
EQUALS = (*[b"="] * 5, b" = ", b"\n=\n", b"==", b"= ", b"=\x00")
TAG_ENDS = (*[b">"] * 12, b"/>", b" / >", b"//>", b"", b"\x00>", b" ", b"<")
QUOTES = (b'"', b'"', b'"', b"'", b"'", b"", b"", b"`")
URL_ATTRIBUTES = (
    *[b"src", b"href", b"xlink:href", b"poster", b"data-src"] * 4,
    b"data",
    b"content",
    b"SRC",
    b"HrEf",
    b'"src',
    b"'src",
    b"<src",
    b"=src",
    b"src\x00",
    b"s\x00rc",
)
SRCSET_ATTRIBUTES = (b"srcset", b"imagesrcset", b"data-srcset", b"SrcSet")
TAGS = (
    *[b"img", b"script", b"link", b"a", b"source", b"video", b"image"] * 3,
    b"object",
    b"meta",
    b"IMG",
    b"base",
    b"svg:image",
    b"iframe",
    b"x-y",
    b"img\x00",
    b"\xffimg",
)
OTHER_ATTRIBUTES = (
    b"rel=stylesheet",
    b"type=importmap",
    b"property=og:image",
    b"name='twitter:image'",
    b"integrity=sha384-x",
    b"crossorigin",
    b"alt",
    b"alt=''",
    b'title="a > b"',
    b"title='<!--'",
    b'data-x="</script>"',
    b"src=/static/js/app.js",
)


def quoted(r: random.Random, value: bytes) -> bytes:
    """``value`` in one of the quoting forms, closed or not."""
    quote = r.choice(QUOTES)
    form = r.randrange(25)
    if form == 0:
        return quote + value  # never closed
    if form == 1 and quote:
        other = b"'" if quote == b'"' else b'"'
        return quote + other + value + quote  # the other quote inside
    return quote + value + quote


SRCSET_STARTS = (b"", b"", b" ", b",", b", ,")
DESCRIPTORS = (b"", b" 1x", b" 480w", b" 1x 2x", b" -1x", b" x", b" (", b" )", b" 2x (a,")
CANDIDATE_ENDS = (b",", b", ", b",,", b" ,", b"", b"&#44;", b"\x00,")


def srcset(r: random.Random) -> bytes:
    parts = [r.choice(SRCSET_STARTS)]
    for _ in range(r.randint(1, 3)):
        parts += [url(r), r.choice(DESCRIPTORS), r.choice(CANDIDATE_ENDS)]
    return b"".join(parts)


CSS_SHAPES = (
    *[b"background:url(%s)", b"background:url( '%s' )", b'background:url("%s")'] * 2,
    b'background:url("%s"',
    b"background:url(%s",
    b"background:URL(%s)",
    b"background:u\\rl(%s)",
    b"@import '%s';",
    b"@import url(%s) screen",
    b"/* url(%s) */",
    b"/* url(%s)",
    b"content:'url(%s)",
    b"a{b:url(%s)}}}",
    b"background:image-set('%s' 1x, '%s' 2x)",
    b"background:url(\\2f static/js/app.js)",
)


def css(r: random.Random) -> bytes:
    parts = [r.choice(CSS_SHAPES).replace(b"%s", url(r)) for _ in range(r.randint(1, 3))]
    return r.choice((b";", b" ", b"}\n", b"\x00")).join(parts)


def importmap(r: random.Random) -> bytes:
    def string() -> bytes:
        inner = url(r) if r.random() < 0.7 else r.choice((b"a", b"\\/static\\/js\\/app.js"))
        return b'"' + inner + r.choice((b'"', b'"', b'"', b'\\"', b""))

    entries = [string() + b": " + string() for _ in range(r.randint(0, 3))]
    return b'{"imports": {' + b", ".join(entries) + r.choice((b"}}", b"}}", b"}", b"", b"]}"))


def url_tag(r: random.Random) -> bytes:
    attrs = []
    for _ in range(r.randint(1, 3)):
        sep = r.choice(SEPARATORS)
        kind = r.randrange(10)
        if kind < 2:
            attrs.append(sep + r.choice(SRCSET_ATTRIBUTES))
            value = srcset(r)
        elif kind < 4:
            attrs.append(sep + r.choice((b"style", b"STYLE")))
            value = css(r).replace(b'"', b"&quot;") if r.random() < 0.8 else css(r)
        elif kind < 5:
            attrs.append(sep + r.choice(OTHER_ATTRIBUTES))
            continue
        else:
            attrs.append(sep + r.choice(URL_ATTRIBUTES))
            value = url(r)
        if r.random() < 0.9:
            attrs.append(r.choice(EQUALS) + quoted(r, value))
    return b"<" + r.choice(TAGS) + b"".join(attrs) + r.choice(TAG_ENDS)


RAW = (
    *[b"script", b"style", b"textarea", b"title"] * 2,
    b"SCRIPT",
    b"Style",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"noscript",
    b"plaintext",
)
TEXT = (b"", b" ", b"text", b"a < b", b"<3", b"1 > 0", b"caf\xc3\xa9", b"caf\xe9", b"static/")


def inner(r: random.Random) -> bytes:
    return b"".join(
        url_tag(r) if r.random() < 0.5 else r.choice(TEXT) for _ in range(r.randrange(4))
    )


def raw_element(r: random.Random) -> bytes:
    name = r.choice(RAW)
    lower = name.lower()
    opening = b"<" + name + r.choice((b">", b">", b" >", b"/>", b" type=importmap>"))
    if lower == b"style":
        content = css(r)
    elif lower == b"script" and b"importmap" in opening:
        content = importmap(r)
    else:
        content = inner(r)
    if lower == b"script":
        content = r.choice((b"", b"", b"<!--", b"<!-- <script>", b"</scriptx>")) + content
    closings = (
        b"</" + lower + b">",
        b"</" + lower.upper() + b" x=y>",
        b"</" + lower + b"\x00>",
        b"</" + lower + b"/>",
        b"</" + lower + b"x>",
        b"</ " + lower + b">",
        b"</" + lower,
        b"<\\/" + lower + b">",
        b"",
    )
    return opening + content + (closings[0] if r.random() < 0.6 else r.choice(closings))


def comment(r: random.Random) -> bytes:
    text = inner(r)
    forms = (
        b"<!--" + text + b"-->",
        b"<!-->" + text,
        b"<!--->" + text,
        b"<!---->" + text,
        b"<!--" + text + b"--!>",
        b"<!--" + text + b"-- >",
        b"<!--" + text + b"--->",
        b"<!--" + text,
        b"<!-" + text + b"->",
        b"<!--<!--" + text + b"-->-->",
        b"<!DOCTYPE " + text + b">",
        b"<!" + text,
        b"<?" + text + b"?>",
        b"<?xml " + text,
        b"</ " + text + b">",
        b"</>" + text,
        b"<![CDATA[" + text + b"]]>",
        b"<![CDATA[" + text,
    )
    return r.choice(forms)


BASE_HREFS = (
    b"/static/",
    b"/static/img/",
    b"/static/js/app.js",
    b"/docs/",
    b"http://example.com/static/css/",
    b"//example.com/static/",
    b"http://other.example/static/",
    b"/&#115;tatic/img/",
    b"&sol;static&sol;",
    b"../static/",
    b"javascript:alert(1)",
    b"http://[::1/",
    b"http://example.com:99999/",
    b"\x00",
    b"",
)
BASE_SHAPES = (
    b'<base href="%s">',
    b"<BASE HREF='%s'>",
    b"<base target=_top href=%s >",
    b"<base/href=%s/>",
    b"<base href>",
    b"<base href=%s",
    b"<base\x00href=%s>",
    b"<basefont href=%s>",
)
JUNK = (
    b"\x00",
    b"\xff",
    b"\xfe\xff",
    b"\xc0\xaf",  # an overlong "/"
    b"\xed\xa0\x80",  # a UTF-8 encoded surrogate
    b"\xc3",
    b"\xe2\x82",
    b"\xef\xbb\xbf",
    b"\r",
    b"\x0b",
    b"\x0c",
    b"\x1b[0m",
    b"/\x00s\x00t\x00a\x00t\x00i\x00c\x00/\x00",  # UTF-16
    b"&",
    b"&#",
    b"&#x",
    b"&amp",
    b"&#47",
    b"&sol",
    b"</p>",
    b"</a href=/static/js/app.js>",
    b"<",
    b">",
    b"<<",
    b"<a<img",
)
OPENINGS = (  # byte order marks and declared charsets, valid or not
    b"",
    b"",
    b"",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"<!DOCTYPE html>",
    b"<!doctype html><meta charset=utf-8>",
    b'<meta charset="iso-8859-1">',
    b'<meta http-equiv=Content-Type content="text/html; charset=shift_jis">',
    b'<?xml version="1.0" encoding="latin-1"?>',
    b"<meta charset=utf-16>",
)
# What a fragment can be; Hypothesis shrinks towards the first.
FRAGMENT_KINDS: tuple[Callable[[random.Random], bytes], ...] = (
    lambda r: r.choice(TEXT),
    url_tag,
    url_tag,
    url_tag,
    url_tag,
    raw_element,
    comment,
    lambda r: r.choice(BASE_SHAPES).replace(b"%s", r.choice(BASE_HREFS)),
    lambda r: r.choice(JUNK),
    lambda r: r.randbytes(r.randrange(17)),
)
SYNTAX = (b"<", b">", b'"', b"'", b"=", b"&", b"-", b"!", b"/", b" ", b"\x00", b"<!--", b"-->")


def mutate(r: random.Random, doc: bytes) -> bytes:
    at = r.randrange(len(doc) + 1)
    change = r.randrange(6)
    if change < 3:
        return doc[:at] + r.choice(SYNTAX) + doc[at:]
    if change == 3:
        return doc[:at] + doc[at + r.randint(1, 8) :]  # a few bytes cut out
    if change == 4:
        return doc[:at]  # the document ends abruptly
    return doc[:at] + doc[at : at + 40] + doc[at:]  # a stutter


SEEDS = st.integers(0, (1 << 32) - 1)
OUTLINES = st.tuples(
    st.integers(0, len(OPENINGS) - 1),
    st.lists(st.tuples(st.integers(0, len(FRAGMENT_KINDS) - 1), SEEDS), max_size=10),
    st.lists(SEEDS, max_size=3),
)


def build(outline: tuple[int, list[tuple[int, int]], list[int]]) -> bytes:
    opening, fragments, mutations = outline
    doc = OPENINGS[opening]
    doc += b"".join(FRAGMENT_KINDS[kind](random.Random(seed)) for kind, seed in fragments)
    for seed in mutations:
        doc = mutate(random.Random(seed), doc)
    return doc


hostile_documents = OUTLINES.map(build)
CUTS = st.lists(st.integers(0, 1 << 16), max_size=12)
STEPS = st.integers(2, 97)


@st.composite
def documents_and_chunkings(draw: st.DrawFn) -> tuple[bytes, list[list[int]]]:
    """A document and three ways to cut it (as cut points): 1-byte chunks, random cuts, and
    random fixed-size chunks."""
    doc = draw(hostile_documents)
    size = len(doc)
    cuts = sorted(c % (size + 1) for c in draw(CUTS))
    return doc, [list(range(size + 1)), cuts, list(range(0, size, draw(STEPS)))]


# --- checking one output -----------------------------------------------------------------------

_INSERTED = re.compile(rb"(?=\.(" + b"|".join(HASH_OF.values()) + rb"))")


def common_run(a: bytes, i: int, b: bytes, j: int, limit: int) -> int:
    """How many bytes ``a[i:]`` and ``b[j:]`` have in common, up to ``limit`` (by halving, so
    that megabyte documents are compared at memcmp speed)."""
    if a[i : i + limit] == b[j : j + limit]:
        return limit
    lo, hi = 0, limit  # a[i:i+lo] == b[j:j+lo], a[i:i+hi] != b[j:j+hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[i + lo : i + mid] == b[j + lo : j + mid]:
            lo = mid
        else:
            hi = mid
    return lo


def insertions(doc: bytes, out: bytes) -> list[tuple[int, bytes]] | None:
    """Where ``out`` is ``doc`` with ``.<hash>`` (of a root file) inserted: the insertions as
    (offset in doc, hash); None when ``out`` is not ``doc`` plus such insertions.

    The input may itself contain hashes (already-hashed URLs), so this is a search over the
    ways to delete them, with each (doc offset, out offset) state visited once.
    """
    marks = {m.start(): m.group(1) for m in _INSERTED.finditer(out)}
    stops = sorted(marks)
    stack: list[tuple[int, int, tuple[tuple[int, bytes], ...]]] = [(0, 0, ())]
    seen: set[tuple[int, int]] = set()
    n, m = len(doc), len(out)
    while stack:
        i, j, done = stack.pop()
        while (i, j) not in seen:
            seen.add((i, j))
            if j in marks:
                stack.append((i, j + 13, (*done, (i, marks[j]))))
            # Step over the common run, up to the next place where a hash may have gone in.
            k = bisect.bisect_right(stops, j)
            nxt = stops[k] if k < len(stops) else m
            run = common_run(doc, i, out, j, min(n - i, nxt - j))
            if run == 0:
                break
            i, j = i + run, j + run
        if i == n and j == m:
            return list(done)
    return None


def _decoded(raw: bytes) -> str:
    return unquote(html.unescape(raw.decode("latin-1")), errors="replace")


def misplaced(doc: bytes, found: list[tuple[int, bytes]]) -> list[tuple[int, str]]:
    """The insertions that are not between the stem and the extension of the file's name as
    the input writes it (references and percent-encoding decoded)."""
    wrong = []
    for at, digest in found:
        name = PATH_OF[digest].rsplit("/", 1)[-1]
        dot = name.rfind(".")
        stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
        before = _decoded(doc[max(0, at - 400) : at])
        after = _decoded(doc[at : at + 400])
        # A name may also be written in raw UTF-8 (read here as Latin-1).
        stems = (stem, stem.encode("utf-8").decode("latin-1"))
        if not (before.endswith(stems) and after.startswith(ext)):
            wrong.append((at, PATH_OF[digest]))
    return wrong


def stream(setup: Setup, index: DiskIndex, doc: bytes, cuts: list[int]) -> bytes:
    return setup.stream(index, split_at(doc, cuts) if cuts else [doc])


# --- the pure-Python worker ----------------------------------------------------------------


def _worker(root: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answers (setup number, document, chunkings) with what the rewriter makes of them."""
    index = DiskIndex(root)
    pickle.dump({"accelerated": tokenizer.ACCELERATED}, replies)
    replies.flush()
    while True:
        try:
            number, doc, cuts_list = pickle.load(requests)
        except EOFError:
            return
        setup = SETUPS[number]
        try:
            whole = setup.rewrite(index, doc)
            reply: dict[str, Any] = {
                "whole": whole,
                "streamed": [stream(setup, index, doc, cuts) for cuts in cuts_list],
                "again": setup.rewrite(index, whole),
            }
        except Exception:  # reported to the test, which fails with it
            reply = {"error": traceback.format_exc()}
        pickle.dump(reply, replies)
        replies.flush()


def _pure_env() -> dict[str, str]:
    env = dict(os.environ)
    env["HASHSTATIC_PURE_PYTHON"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class PureWorker:
    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.test_html_fuzz", "worker", str(root)],
            cwd=REPO_ROOT,
            env=_pure_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = self.process.stdin
        self.replies = self.process.stdout
        self.accelerated = pickle.load(self.replies)["accelerated"]

    def ask(self, number: int, doc: bytes, cuts_list: list[list[int]]) -> dict[str, Any]:
        pickle.dump((number, doc, cuts_list), self.requests)
        self.requests.flush()
        reply: dict[str, Any] = pickle.load(self.replies)
        return reply

    def stop(self) -> str:
        _, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err.decode(errors="replace")
        return err.decode(errors="replace")


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="module")
def index(root: Path) -> DiskIndex:
    index = DiskIndex(root)
    for path, digest in HASH_OF.items():  # what the checks below take the hashes to be
        asset = index.lookup(path)
        assert asset is not None and asset.digest[:12].encode() == digest
    return index


@pytest.fixture(scope="module")
def pure(root: Path) -> Iterator[PureWorker]:
    worker = PureWorker(root)
    try:
        yield worker
    finally:
        worker.stop()


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the properties ------------------------------------------------------------------------


def test_checker_finds_misplaced_and_foreign_bytes() -> None:
    # The checks the properties rest on must be able to fail.
    app = HASH_OF["js/app.js"]
    doc = b'<script src="/static/js/app.js"></script>'
    good = doc.replace(b"app.js", b"app." + app + b".js")
    assert insertions(doc, good) == [(doc.index(b".js"), app)]
    assert misplaced(doc, insertions(doc, good) or []) == []
    assert insertions(doc, good.replace(b"<script", b"<Script")) is None
    assert insertions(doc, doc + b"." + app) == [(len(doc), app)]
    assert misplaced(doc, [(len(doc), app)]) == [(len(doc), "js/app.js")]
    wrong_file = doc.replace(b"app.js", b"app." + HASH_OF["js/app.min.js"] + b".js")
    at = doc.index(b".js")
    assert misplaced(doc, insertions(doc, wrong_file) or []) == [(at, "js/app.min.js")]
    page = md5_12(FILES["page.html"])
    assert insertions(doc, doc.replace(b"app.js", b"app." + page + b".js")) is None
    hashed = good.replace(b"<script", b"<img src=js/app." + app + b".js><script")
    assert insertions(hashed.replace(b"app." + app + b'.js"', b'app.js"'), hashed) is not None


def test_hostile_markup_only_gains_hashes_where_assets_are_named(
    index: DiskIndex, figures: Callable[[str], None]
) -> None:
    count = {"docs": 0, "insertions": 0}

    @FUZZ
    @given(number=st.integers(0, len(PLAIN) - 1), doc=hostile_documents)
    def check(number: int, doc: bytes) -> None:
        out = PLAIN[number].rewrite(index, doc)
        found = insertions(doc, out)
        assert found is not None, out
        assert misplaced(doc, found) == []
        count["docs"] += 1
        count["insertions"] += len(found)

    check()
    figures(
        f"{count['docs']:,} hostile documents rewritten whole, {count['insertions']:,} hashes "
        "inserted, 0 foreign or misplaced bytes"
    )


def test_hostile_markup_gives_the_same_bytes_in_any_chunking(
    index: DiskIndex, figures: Callable[[str], None]
) -> None:
    count = {"docs": 0, "feeds": 0}

    @FUZZ
    @given(number=st.integers(0, len(SETUPS) - 1), doc_cuts=documents_and_chunkings())
    def check(number: int, doc_cuts: tuple[bytes, list[list[int]]]) -> None:
        doc, cuts_list = doc_cuts
        setup = SETUPS[number]
        whole = setup.rewrite(index, doc)
        for cuts in cuts_list:
            assert stream(setup, index, doc, cuts) == whole, cuts
            count["feeds"] += len(split_at(doc, cuts))
        count["docs"] += 1

    check()
    figures(
        f"{count['docs']:,} hostile documents x 3 chunkings (1-byte, random cuts, random size), "
        f"{count['feeds']:,} chunks fed, 0 differences from the whole-body output"
    )


def test_rewriting_hostile_markup_is_idempotent(
    index: DiskIndex, figures: Callable[[str], None]
) -> None:
    count = {"docs": 0, "changed": 0}

    @FUZZ
    @given(number=st.integers(0, len(SETUPS) - 1), doc=hostile_documents)
    def check(number: int, doc: bytes) -> None:
        setup = SETUPS[number]
        once = setup.rewrite(index, doc)
        assert setup.rewrite(index, once) == once
        count["docs"] += 1
        count["changed"] += once != doc

    check()
    figures(
        f"{count['docs']:,} hostile documents rewritten twice ({count['changed']:,} changed by "
        "the first pass), 0 changed by the second"
    )


def test_pure_python_tokenizer_gives_the_same_bytes(
    index: DiskIndex, pure: PureWorker, figures: Callable[[str], None]
) -> None:
    assert not pure.accelerated  # the worker really runs the pure-Python tokenizer
    if not tokenizer.ACCELERATED:
        pytest.skip("hashstatic._speedups is not built: there is only one implementation")
    count = {"docs": 0}

    @FUZZ
    @given(number=st.integers(0, len(SETUPS) - 1), doc_cuts=documents_and_chunkings())
    def check(number: int, doc_cuts: tuple[bytes, list[list[int]]]) -> None:
        doc, cuts_list = doc_cuts
        expected = SETUPS[number].rewrite(index, doc)
        reply = pure.ask(number, doc, cuts_list)
        assert "error" not in reply, reply.get("error")
        assert reply["whole"] == expected
        assert reply["streamed"] == [expected] * len(cuts_list)
        assert reply["again"] == expected
        count["docs"] += 1

    check()
    figures(
        f"{count['docs']:,} hostile documents x (whole + 3 chunkings + rewrite again) in the "
        "pure-Python tokenizer, 0 differences from the C tokenizer"
    )


# --- pathological inputs --------------------------------------------------------------------

REF = b'<script src="/static/js/app.js"></script>'
SECONDS = 2.0  # for any one whole-body rewrite or stream, on a loaded 2-core machine
STREAM_PEAK = 4 * MiB  # memory a stream may hold, whatever its length (+ 3 chunks)


def with_hash(written: bytes, path: str) -> bytes:
    """``written`` (a URL or a piece of markup ending in one) with the hash of ``path``."""
    slash = written.rfind(b"/") + 1
    dot = written.rfind(b".", slash)
    at = dot if dot > slash else len(written)
    return written[:at] + b"." + HASH_OF[path] + written[at:]


@dataclass(frozen=True)
class Pathology:
    """A hostile document of about ``n`` units (bytes, tags, references...)."""

    build: Callable[[int], bytes]
    n: int
    rewritten: tuple[tuple[bytes, str], ...] = ()  # (as written, asset path) hashed everywhere
    chunks: tuple[int, ...] = (64 * 1024,)  # streamed in chunks of these sizes
    over_max: bool = False  # holds a construct too long to keep back while streaming
    scaled: int = 0  # the scaling check streams in chunks of this size (0: whole body)
    # ... and compares n with n / factor; megabyte inputs compare against inputs that are
    # still larger than a CPU cache, which would otherwise make the smaller one look cheap.
    factor: int = 8

    def expected(self, doc: bytes) -> bytes:
        for written, path in self.rewritten:
            doc = doc.replace(written, with_hash(written, path))
        return doc


APP = ((b"/static/js/app.js", "js/app.js"),)
LOGO = ((b"/static/img/logo.png", "img/logo.png"),)


def _data_uri(n: int) -> bytes:
    return b"data:image/png;base64," + b"iVBORw0KGgo=" * (n // 12)


PATHOLOGIES = {
    "5 MiB attribute value": Pathology(
        lambda n: b'<img alt="' + b"x" * n + b'" src="/static/img/logo.png">' + REF,
        5 * MiB,
        (),  # a start tag over MAX_CONSTRUCT ends rewriting, whole or streamed
        over_max=True,
        factor=4,
    ),
    "2 MiB data: URI beside a srcset": Pathology(
        lambda n: (
            b'<img src="'
            + _data_uri(n)
            + b'" srcset="/static/img/logo.png 2x">'
            + REF.replace(b"<script", b"<script data-src='" + _data_uri(n // 4) + b"'")
        ),
        2 * MiB,
        (),  # a start tag over MAX_CONSTRUCT ends rewriting, whole or streamed
        over_max=True,
        factor=4,
    ),
    "unclosed comment, then 5 MiB": Pathology(
        lambda n: b"<!-- " + (REF + b"." * 1000) * (n // 1040),
        5 * MiB,
        chunks=(4096, 65536),
        factor=4,
    ),
    "unclosed tag, then 5 MiB": Pathology(
        lambda n: b"<img src=/static/img/logo.png " + b"x=/static/js/app.js " * (n // 20),
        5 * MiB,
        factor=4,
    ),
    "unclosed quote, then 5 MiB": Pathology(
        lambda n: b'<img src="/static/img/logo.png" alt="' + b"/static/js/app.js <p> " * (n // 22),
        5 * MiB,
        factor=4,
    ),
    "unclosed <style>, then 2 MiB": Pathology(
        lambda n: b"<style>" + b"a{b:c}" * (n // 6) + b"b{background:url(/static/img/logo.png)}",
        2 * MiB,
        (),  # a <style> over MAX_CONSTRUCT is left alone, whole or streamed
        over_max=True,
        factor=4,
    ),
    "unclosed <script>, then 5 MiB": Pathology(
        lambda n: b"<script>" + (REF.replace(b"</script>", b"") + b" " * 1000) * (n // 1040),
        5 * MiB,
        factor=4,
        chunks=(4096, 65536),
    ),
    "100,000 <": Pathology(lambda n: b"<" * n + REF, 100_000, APP, chunks=(4096,)),
    "100,000 <a": Pathology(lambda n: b"<a" * n + REF, 100_000, APP, chunks=(4096,)),
    "100,000 </": Pathology(lambda n: b"</" * n + REF, 100_000, chunks=(4096,)),
    "100,000 <!--": Pathology(lambda n: b"<!--" * n + REF, 100_000, chunks=(4096,)),
    "100,000 <a href=": Pathology(lambda n: b"<a href=" * n + b"/static/js/app.js>", 100_000),
    "100,000 character references in text": Pathology(
        lambda n: b"&#47;" * n + REF, 100_000, APP, chunks=(4096,)
    ),
    "100,000 character references in alt": Pathology(
        lambda n: b'<img alt="' + b"&sol;" * n + b'" src="/static/img/logo.png">',
        100_000,
        LOGO,
    ),
    "20,000 character references in a URL": Pathology(
        lambda n: b'<img src="' + b"&#47;" * n + b'static/img/logo.png">', 20_000
    ),
    "100,000 &": Pathology(lambda n: b"&" * n + REF, 100_000, APP, chunks=(4096,)),
    "srcset of 50,000 empty candidates": Pathology(
        lambda n: b'<img srcset="' + b"&#44; " * n + b'/static/img/logo.png 2x">', 50_000, LOGO
    ),
    "tag of 50,000 attributes": Pathology(
        lambda n: (
            b"<img " + b" ".join(b"a%d" % i for i in range(n)) + b" src=/static/img/logo.png>"
        ),
        50_000,
        LOGO,
    ),
    "1,500 <base> tags before a 540 KB page": Pathology(
        lambda n: b'<base href="/docs/">' * n + b"<p>hello world</p>" * (20 * n) + REF,
        1_500,
        APP,
        chunks=(4096,),
    ),
    "5,000 <base> tags under the prefix": Pathology(
        lambda n: b'<base href="/static/img/">' * n + b"<img src=logo.png>" * (n // 20),
        5_000,
        ((b"src=logo.png>", "img/logo.png"),),
        chunks=(4096,),
    ),
    "10 MiB page, one reference at the end": Pathology(
        lambda n: b"<p>hello world</p>\n" * (n // 19) + REF,
        10 * MiB,
        APP,
        chunks=(4096, 65536),
        factor=4,
    ),
    # Streaming byte by byte costs microseconds per byte in Python: 128 KiB, not megabytes.
    "128 KiB of markup streamed byte by byte": Pathology(
        lambda n: (b"<p class=x>a &amp; <b>b</b> a < b <!-- c --></p>\n" + REF) * (n // 93),
        128 * 1024,
        APP,
        chunks=(1,),
    ),
    "192 KiB tag streamed in 1 KiB chunks": Pathology(
        lambda n: b"<img " + b"a=b " * (n // 4) + b' srcset="/static/img/logo.png 2x">',
        192 * 1024,
        LOGO,
        chunks=(1024,),
        scaled=1024,
    ),
}


def _streamed(setup: Setup, index: DiskIndex, doc: bytes, size: int, keep: bool) -> bytes:
    rewriter = setup.rewriter(index)
    out: list[bytes] = []
    digest = hashlib.md5()
    for at in range(0, len(doc), size):
        piece = rewriter.feed(doc[at : at + size])
        if keep:
            out.append(piece)
        else:
            digest.update(piece)
    tail = rewriter.close()
    return b"".join([*out, tail]) if keep else digest.digest()


def _seconds(action: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def _peak(action: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(case: Pathology, index: DiskIndex, *, memory: bool) -> dict[str, Any]:
    """Time, correctness and (if ``memory``) peak memory of one pathology, whole and streamed,
    in this process's tokenizer: plain data, that the pure-Python side sends back as JSON.

    Memory is traced for the C tokenizer only, and not for streams in chunks under 1 KiB:
    tracemalloc slows allocation-heavy runs down tenfold, and neither tokenizer allocates
    Python objects of its own."""
    setup = Setup()
    doc = case.build(case.n)
    expected = case.expected(doc)
    assert expected != doc or not case.rewritten  # the case names URLs that are in it
    result: dict[str, Any] = {"size": len(doc), "streams": {}}
    out = b""

    def whole() -> None:
        nonlocal out
        out = setup.rewrite(index, doc)

    result["whole_seconds"] = _seconds(whole)
    result["whole_right"] = out == expected
    if memory:
        result["whole_peak"] = _peak(lambda: setup.rewrite(index, doc))
    for size in case.chunks:
        streamed = b""

        def stream_it(size: int = size) -> None:
            nonlocal streamed
            streamed = _streamed(setup, index, doc, size, keep=True)

        result["streams"][size] = {
            "seconds": _seconds(stream_it),
            "as_whole": streamed == out,
            "preserving": insertions(doc, streamed) is not None,
        }
        if memory and size >= 1024:
            result["streams"][size]["peak"] = _peak(
                functools.partial(_streamed, setup, index, doc, size, keep=False)
            )
    # Time should grow linearly: an eighth of the input, about an eighth of the time.
    small = case.build(case.n // case.factor)

    def run(d: bytes) -> object:
        if case.scaled:
            return _streamed(setup, index, d, case.scaled, keep=False)
        return setup.rewrite(index, d)

    full = result["streams"][case.scaled]["seconds"] if case.scaled else result["whole_seconds"]
    # The best of three: the first runs over megabytes pay for page faults and cold caches.
    result["scaling"] = (
        case.factor,
        _seconds(lambda: run(small), 3),
        min(full, _seconds(lambda: run(doc), 2)),
    )
    return result


_MEASURED: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def pure_measures(root: Path) -> dict[str, dict[str, Any]]:
    """Every pathology measured in a process that runs the pure-Python tokenizer."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_html_fuzz", "measure", str(root)],
        cwd=REPO_ROOT,
        env=_pure_env(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    measures: dict[str, Any] = json.loads(done.stdout)
    assert measures.pop("accelerated") is False
    for m in measures.values():
        m["streams"] = {int(k): v for k, v in m["streams"].items()}
    return measures


def _in_process(index: DiskIndex, name: str) -> dict[str, Any]:
    if name not in _MEASURED:
        _MEASURED[name] = measure(PATHOLOGIES[name], index, memory=True)
    return _MEASURED[name]


@pytest.fixture(params=["c", "pure"])
def timings(request: pytest.FixtureRequest, index: DiskIndex) -> Callable[[str], dict[str, Any]]:
    """timings(name): the figures of one pathology, in the C or the pure-Python tokenizer."""
    if request.param == "pure":
        table = request.getfixturevalue("pure_measures")
        return lambda name: table[name]
    if not tokenizer.ACCELERATED:
        pytest.skip("hashstatic._speedups is not built")
    return lambda name: _in_process(index, name)


@pytest.fixture
def memories(index: DiskIndex) -> Callable[[str], dict[str, Any]]:
    """memories(name): the figures of one pathology, with peak memory, in this process."""
    return lambda name: _in_process(index, name)


def cases(marked: dict[str, pytest.MarkDecorator]) -> list[Any]:
    return [pytest.param(name, id=name, marks=marked.get(name, ())) for name in PATHOLOGIES]


@pytest.mark.parametrize("name", cases({}))
def test_pathological_input_is_rewritten_right_in_bounded_time(
    name: str, timings: Callable[[str], dict[str, Any]], figures: Callable[[str], None]
) -> None:
    m = timings(name)
    assert m["whole_right"]
    assert m["whole_seconds"] < SECONDS
    for size, s in m["streams"].items():
        # Past MAX_CONSTRUCT rewriting stops (or a style is left alone), whole or streamed.
        assert s["as_whole"], size
        assert s["seconds"] < SECONDS, size
    streams = ", ".join(f"{k:,} B chunks {v['seconds']:.3f} s" for k, v in m["streams"].items())
    figures(f"{m['size']:,} bytes: whole {m['whole_seconds']:.3f} s; {streams}")


@pytest.mark.parametrize("name", cases({}))
def test_pathological_input_takes_bounded_memory(
    name: str, memories: Callable[[str], dict[str, Any]], figures: Callable[[str], None]
) -> None:
    # Whole: a small multiple of the document. Streamed: bounded whatever the document's size.
    m = memories(name)
    assert m["whole_peak"] < 8 * m["size"] + MiB
    traced = {k: v["peak"] for k, v in m["streams"].items() if "peak" in v}
    for size, peak in traced.items():
        assert peak < STREAM_PEAK + 3 * size, size
    streams = "".join(f"; {k:,} B chunks {v / MiB:.2f}" for k, v in traced.items())
    figures(f"{m['size']:,} bytes: peak MiB whole {m['whole_peak'] / MiB:.2f}{streams}")


@pytest.mark.parametrize("name", cases({}))
def test_pathological_input_takes_linear_time(
    name: str, timings: Callable[[str], dict[str, Any]], figures: Callable[[str], None]
) -> None:
    # k times the input (k = 8, or 4 for megabytes): k times the time if linear, k * k if
    # quadratic. 2k leaves room for noise on a loaded machine; and a run at memory speed
    # (4 ns a byte, plus 5 ms) passes whatever the ratio, since caches make small inputs
    # cheaper per byte and no quadratic algorithm runs that fast on these sizes.
    m = timings(name)
    k, small, big = m["scaling"]
    assert big < 2 * k * small + 0.005 + 4e-9 * m["size"]
    figures(f"1/{k} of it {small:.4f} s, all {big:.4f} s: x{big / max(small, 1e-9):.1f}")


@pytest.mark.parametrize("name", [n for n, c in PATHOLOGIES.items() if c.over_max])
def test_constructs_longer_than_max_construct_are_rewritten_alike_whole_and_streamed(
    name: str, timings: Callable[[str], dict[str, Any]]
) -> None:
    m = timings(name)
    assert all(s["as_whole"] for s in m["streams"].values())


def test_pages_with_distinct_large_tags_leave_bounded_memory_behind(
    tmp_path: Path, figures: Callable[[str], None]
) -> None:
    # 16 pages, each with its own 128 KiB inline image next to a srcset that names an asset,
    # through the middleware: what stays allocated afterwards must not grow with the pages.
    root = make_root(tmp_path / "static")
    pages = 16

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        number = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
        uri = b"data:image/png;base64," + b"%08d" % number * 16384
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b'<img src="' + uri + b'" srcset="/static/img/logo.png 2x">']

    middleware = HashStatic(app, root=root)
    logo = with_hash(b"/static/img/logo.png", "img/logo.png")
    assert logo in webob.Request.blank("/page/0").get_response(middleware).body
    gc.collect()
    tracemalloc.start()
    try:
        for number in range(1, pages + 1):
            body = webob.Request.blank(f"/page/{number}").get_response(middleware).body
            assert logo in body
            del body
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    figures(f"{pages} pages of 128 KiB rewritten, {retained / MiB:.2f} MiB retained")
    assert retained < MiB


# --- atheris --------------------------------------------------------------------------------

FUZZ_RUNS = int(os.environ.get("HASHSTATIC_FUZZ_RUNS", "3000"))
_LIBFUZZER_DONE = re.compile(rb"#(\d+)\s+DONE\s+cov: (\d+)")


def seed_corpus(directory: Path, count: int = 64) -> Path:
    """Documents from the grammar above, each behind the two bytes the harness reads first
    (setup number, chunk size), so that the fuzzer starts from markup rather than nothing."""
    directory.mkdir()
    r = random.Random(7)
    for number in range(count):
        fragments = [
            (r.randrange(len(FRAGMENT_KINDS)), r.randrange(1 << 32)) for _ in range(r.randint(1, 8))
        ]
        doc = build((r.randrange(len(OPENINGS)), fragments, []))
        (directory / f"seed-{number}").write_bytes(bytes([number, r.randrange(256)]) + doc)
    return directory


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_coverage_guided_fuzzing_breaks_no_property(
    root: Path, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    # fuzz/rewriter.py under libFuzzer, in each tokenizer at once (two processes), for a
    # bounded number of runs; a broken property makes it exit non-zero with a crash file.
    seeds = seed_corpus(tmp_path / "seeds")
    processes = {}
    for mode in ("C", "pure Python"):
        work = tmp_path / mode.replace(" ", "-")
        corpus = work / "corpus"
        shutil.copytree(seeds, corpus)
        env = dict(os.environ, HASHSTATIC_FUZZ_ROOT=str(root))
        if mode != "C":
            env = _pure_env() | {"HASHSTATIC_FUZZ_ROOT": str(root)}
        elif not tokenizer.ACCELERATED:
            continue
        command = [
            sys.executable,
            str(REPO_ROOT / "fuzz" / "rewriter.py"),
            f"-runs={FUZZ_RUNS}",
            "-max_len=1024",
            f"-dict={REPO_ROOT / 'fuzz' / 'html.dict'}",
            f"-artifact_prefix={work}/",
            str(corpus),
        ]
        processes[mode] = (
            work,
            subprocess.Popen(
                command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ),
        )
    for mode, (work, process) in processes.items():
        out, err = process.communicate(timeout=600)
        # A crash, leak or timeout leaves its input beside the corpus; say what it was.
        found = {p.name: p.read_bytes() for p in work.iterdir() if p.name != "corpus"}
        tail = (out[-3000:] + b"\n" + err[-3000:]).decode(errors="replace")
        report = f"{mode}: {found!r}\n{tail}"
        assert process.returncode == 0, report
        assert found == {}, report
        assert f"hashstatic tokenizer: {mode}".encode() in out
        done = _LIBFUZZER_DONE.search(err)
        assert done is not None, err[-2000:]
        runs, edges = int(done.group(1)), int(done.group(2))
        assert runs == FUZZ_RUNS
        figures(
            f"{mode} tokenizer: {runs:,} libFuzzer runs from {len(list(seeds.iterdir()))} seeds, "
            f"{edges} coverage edges, 0 broken properties"
        )


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_fuzz_harness_fails_on_a_broken_property(tmp_path: Path) -> None:
    # A root whose app.js is not the one the checks know: the harness must see that the
    # inserted hash is none of the expected ones, and libFuzzer must save the input.
    root = make_root(tmp_path / "static")
    (root / "js" / "app.js").write_bytes(b"changed")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    case = bytes([0, 0]) + REF  # the default page, whole chunks
    (corpus / "input").write_bytes(case)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "fuzz" / "rewriter.py"),
            "-runs=10",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=tmp_path,
        env=dict(os.environ, HASHSTATIC_FUZZ_ROOT=str(root)),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert b"is not b'<script src=\"/static/js/app.js\"></script>' plus hashes" in done.stdout
    assert [p.read_bytes() for p in tmp_path.glob("crash-*")] == [case]


def _measure_all(root: str) -> dict[str, Any]:
    index = DiskIndex(root)
    table: dict[str, Any] = {"accelerated": tokenizer.ACCELERATED}
    for name, case in PATHOLOGIES.items():
        table[name] = measure(case, index, memory=False)
    return table


def main(argv: list[str]) -> int:
    command, root = argv
    if command == "worker":
        _worker(root, sys.stdin.buffer, sys.stdout.buffer)
        return 0
    if command == "measure":
        json.dump(_measure_all(root), sys.stdout)
        return 0
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
