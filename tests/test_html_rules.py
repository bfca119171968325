"""Every rule of SPEC section 3, one row each, with the exact bytes expected.

Each row is checked four ways: the whole body through ``HtmlRewriter.rewrite``, the same body
fed one byte at a time, the output rewritten again (which must not change it), and the
reference rewriter in ``tests/oracle.py`` (so that the property tests compare against
something that is itself pinned to these rows). ``{logo}`` in a row stands for the first 12
hex digits of the MD5 of ``img/logo.png`` as written by ``tests/htmlcases.py``,
``{sri_app}`` for the Subresource Integrity string of ``js/app.js``, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hashstatic.cache import DiskIndex
from tests.htmlcases import (
    CDN,
    PAGE_UNDER_PREFIX,
    Setup,
    fill,
    make_root,
    one_byte_chunks,
)
from tests.oracle import oracle_rewrite

SAME = b""  # marks a row whose document must come out unchanged


@dataclass(frozen=True)
class Row:
    id: str
    doc: bytes
    expected: bytes


def case(id: str, doc: bytes, expected: bytes = SAME) -> Row:
    doc = fill(doc)
    return Row(id, doc, doc if expected is SAME else fill(expected))


PLACES = [
    case(
        "script-src-double-quoted",
        b'<script src="/static/js/app.js"></script>',
        b'<script src="/static/js/app.{app}.js"></script>',
    ),
    case(
        "script-src-single-quoted",
        b"<script src='/static/js/app.js'></script>",
        b"<script src='/static/js/app.{app}.js'></script>",
    ),
    case(
        "script-src-unquoted",
        b"<script src=/static/js/app.js></script>",
        b"<script src=/static/js/app.{app}.js></script>",
    ),
    case(
        "unquoted-value-before-self-closing-slash-keeps-it",
        b"<img src=/static/img/logo.png />",
        b"<img src=/static/img/logo.{logo}.png />",
    ),
    case(
        "link-href",
        b'<link rel="stylesheet" href="/static/css/site.css">',
        b'<link rel="stylesheet" href="/static/css/site.{site}.css">',
    ),
    case(
        "uppercase-tag-and-attribute-names",
        b'<IMG SRC="/static/img/logo.png">',
        b'<IMG SRC="/static/img/logo.{logo}.png">',
    ),
    case(
        "mixed-case-attribute-name",
        b'<link HRef="/static/css/site.css">',
        b'<link HRef="/static/css/site.{site}.css">',
    ),
    case(
        "whitespace-around-equals-sign",
        b'<img src \n=\t "/static/img/logo.png" >',
        b'<img src \n=\t "/static/img/logo.{logo}.png" >',
    ),
    case(
        "unquoted-with-whitespace-around-equals-sign",
        b"<img src = /static/img/logo.png>",
        b"<img src = /static/img/logo.{logo}.png>",
    ),
    case(
        "slash-separates-attributes",
        b'<img/src="/static/img/logo.png">',
        b'<img/src="/static/img/logo.{logo}.png">',
    ),
    case(
        "no-space-after-quoted-value",
        b'<img alt="x"src="/static/img/logo.png">',
        b'<img alt="x"src="/static/img/logo.{logo}.png">',
    ),
    case(
        "quoted-gt-inside-earlier-attribute",
        b'<img alt="a>b" src="/static/img/logo.png">',
        b'<img alt="a>b" src="/static/img/logo.{logo}.png">',
    ),
    case(
        "a-href",
        b'<a href="/static/fonts/x.woff2">font</a>',
        b'<a href="/static/fonts/x.{x}.woff2">font</a>',
    ),
    case(
        "svg-xlink-href",
        b'<svg><image xlink:href="/static/img/logo.png"/></svg>',
        b'<svg><image xlink:href="/static/img/logo.{logo}.png"/></svg>',
    ),
    case(
        "svg-href",
        b'<svg><use href="/static/img/logo.png#icon"></use></svg>',
        b'<svg><use href="/static/img/logo.{logo}.png#icon"></use></svg>',
    ),
    case(
        "video-poster",
        b'<video poster="/static/img/logo.png"></video>',
        b'<video poster="/static/img/logo.{logo}.png"></video>',
    ),
    case(
        "video-src-and-source-src",
        b'<video src="/static/fonts/x.woff2"><source src="/static/img/logo.png"></video>',
        b'<video src="/static/fonts/x.{x}.woff2"><source src="/static/img/logo.{logo}.png">'
        b"</video>",
    ),
    case(
        "object-data",
        b'<object data="/static/img/logo.png"></object>',
        b'<object data="/static/img/logo.{logo}.png"></object>',
    ),
    case("data-attribute-on-other-elements-is-left", b'<div data="/static/img/logo.png"></div>'),
    case(
        "lazy-data-src",
        b'<img data-src="/static/img/logo.png">',
        b'<img data-src="/static/img/logo.{logo}.png">',
    ),
    case("other-attributes-are-left", b'<img alt="/static/img/logo.png" title=/static/js/app.js>'),
    case(
        "only-the-url-attribute-of-several",
        b'<img alt="/static/img/logo.png" src="/static/img/logo.png">',
        b'<img alt="/static/img/logo.png" src="/static/img/logo.{logo}.png">',
    ),
    case(
        "several-url-attributes-in-one-tag",
        b'<video poster="/static/img/logo.png" src=/static/fonts/x.woff2'
        b" data-src='/static/js/app.js'>",
        b'<video poster="/static/img/logo.{logo}.png" src=/static/fonts/x.{x}.woff2 '
        b"data-src='/static/js/app.{app}.js'>",
    ),
    case(
        "duplicate-attribute-only-first-counts",
        b'<img src="/static/img/missing.png" src="/static/img/logo.png">',
    ),
    case(
        "duplicate-attribute-second-left",
        b'<img src="/static/img/logo.png" SRC="/static/img/logo.png">',
        b'<img src="/static/img/logo.{logo}.png" SRC="/static/img/logo.png">',
    ),
    case(
        "attribute-name-starting-with-equals-is-another-name", b'<img =src="/static/img/logo.png">'
    ),
    case("attribute-without-value", b"<img src><img src=>"),
    case("attributes-of-end-tags-are-left", b'</a href="/static/img/logo.png">'),
    case("tag-name-swallowing-the-attribute", b'<img"src="/static/img/logo.png">'),
    case(
        "iframe-src",
        b'<iframe src="/static/img/logo.png"></iframe>',
        b'<iframe src="/static/img/logo.{logo}.png"></iframe>',
    ),
]

SRCSET = [
    case(
        "srcset-with-descriptors",
        b'<img srcset="/static/img/logo.png 1x, /static/img/a%20b.png 2x">',
        b'<img srcset="/static/img/logo.{logo}.png 1x, /static/img/a%20b.{ab}.png 2x">',
    ),
    case(
        "srcset-width-descriptors-and-newlines",
        b'<img srcset="\n  /static/img/logo.png 480w,\n  /static/img/a%20b.png 800w\n">',
        b'<img srcset="\n  /static/img/logo.{logo}.png 480w,\n  /static/img/a%20b.{ab}.png'
        b' 800w\n">',
    ),
    case(
        "srcset-single-url-no-descriptor",
        b"<img srcset=/static/img/logo.png>",
        b"<img srcset=/static/img/logo.{logo}.png>",
    ),
    case(
        "imagesrcset",
        b'<link rel=preload as=image imagesrcset="/static/img/logo.png 480w, /static/img/a%20b.png'
        b' 2x">',
        b'<link rel=preload as=image imagesrcset="/static/img/logo.{logo}.png 480w, '
        b'/static/img/a%20b.{ab}.png 2x">',
    ),
    case(
        "data-srcset",
        b"<img data-srcset='/static/img/logo.png 2x'>",
        b"<img data-srcset='/static/img/logo.{logo}.png 2x'>",
    ),
    case(
        "srcset-comma-without-space-is-part-of-url",
        b'<img srcset="/static/img/logo.png,/static/img/a%20b.png">',
    ),
    case(
        "srcset-trailing-commas-end-the-candidate",
        b'<img srcset="/static/img/logo.png,, /static/img/a%20b.png,">',
        b'<img srcset="/static/img/logo.{logo}.png,, /static/img/a%20b.{ab}.png,">',
    ),
    case(
        "srcset-leading-commas-and-whitespace",
        b'<img srcset=" ,, /static/img/logo.png 1x">',
        b'<img srcset=" ,, /static/img/logo.{logo}.png 1x">',
    ),
    case(
        "srcset-comma-inside-parentheses-is-a-descriptor",
        b'<img srcset="/static/img/logo.png 1x (a, /static/img/a%20b.png), /static/fonts/x.woff2">',
        b'<img srcset="/static/img/logo.{logo}.png 1x (a, /static/img/a%20b.png), '
        b'/static/fonts/x.{x}.woff2">',
    ),
    case(
        "srcset-parentheses-do-not-nest",
        b'<img srcset="/static/img/logo.png 1x ((a), /static/img/a%20b.png ), '
        b'/static/fonts/x.woff2">',
        b'<img srcset="/static/img/logo.{logo}.png 1x ((a), /static/img/a%20b.{ab}.png ), '
        b'/static/fonts/x.{x}.woff2">',
    ),
    case(
        "srcset-descriptor-comma-with-no-space",
        b'<img srcset="/static/img/logo.png 2x,/static/img/a%20b.png 3x">',
        b'<img srcset="/static/img/logo.{logo}.png 2x,/static/img/a%20b.{ab}.png 3x">',
    ),
    case(
        "srcset-referenced-comma-ends-the-url",
        b'<img srcset="/static/img/logo.png&#44; /static/img/a%20b.png">',
        b'<img srcset="/static/img/logo.{logo}.png&#44; /static/img/a%20b.{ab}.png">',
    ),
    case(
        "srcset-missing-and-present",
        b'<img srcset="/static/img/nope.png 1x, /static/img/logo.png 2x">',
        b'<img srcset="/static/img/nope.png 1x, /static/img/logo.{logo}.png 2x">',
    ),
    case(
        "srcset-query-with-amp",
        b'<img srcset="/static/img/logo.png?a=1&amp;b=2 2x">',
        b'<img srcset="/static/img/logo.{logo}.png?a=1&amp;b=2 2x">',
    ),
]

META = [
    case(
        "meta-og-image",
        b'<meta property="og:image" content="/static/img/logo.png">',
        b'<meta property="og:image" content="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-twitter-image-absolute",
        b'<meta name="twitter:image" content="http://example.com/static/img/logo.png">',
        b'<meta name="twitter:image" content="http://example.com/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-content-before-property",
        b"<meta content=/static/img/logo.png property=og:image:secure_url>",
        b"<meta content=/static/img/logo.{logo}.png property=og:image:secure_url>",
    ),
    case(
        "meta-og-image-url",
        b'<meta property="og:image:url" content="/static/img/logo.png">',
        b'<meta property="og:image:url" content="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-twitter-image-src",
        b'<meta name="twitter:image:src" content="/static/img/logo.png">',
        b'<meta name="twitter:image:src" content="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-og-video-and-audio",
        b'<meta property="og:video" content="/static/fonts/x.woff2">'
        b'<meta property="og:audio:secure_url" content="/static/js/app.js">',
        b'<meta property="og:video" content="/static/fonts/x.{x}.woff2">'
        b'<meta property="og:audio:secure_url" content="/static/js/app.{app}.js">',
    ),
    case(
        "meta-tileimage-uppercase",
        b'<META NAME="msapplication-TileImage" CONTENT="/static/img/logo.png">',
        b'<META NAME="msapplication-TileImage" CONTENT="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-thumbnail",
        b'<meta name="thumbnail" content="/static/img/logo.png">',
        b'<meta name="thumbnail" content="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-itemprop-image-underscore",
        b'<meta name="og_image" content="/static/img/logo.png">',
        b'<meta name="og_image" content="/static/img/logo.{logo}.png">',
    ),
    case(
        "meta-image-width-is-left",
        b'<meta property="og:image:width" content="/static/img/logo.png">',
    ),
    case("meta-description-is-left", b'<meta name="description" content="/static/img/logo.png">'),
    case("meta-imagery-is-left", b'<meta name="imagery" content="/static/img/logo.png">'),
    case("meta-myimage-is-left", b'<meta name="myimage" content="/static/img/logo.png">'),
    case(
        "meta-image-src-underscore-is-left",
        b'<meta name="image_src" content="/static/img/logo.png">',
    ),
    case(
        "content-on-other-elements-is-left",
        b'<div property="og:image" content="/static/img/logo.png">',
    ),
    case("meta-without-name-is-left", b'<meta content="/static/img/logo.png">'),
]

STYLE = [
    case(
        "style-attribute-url",
        b'<div style="background: url(/static/img/logo.png)">',
        b'<div style="background: url(/static/img/logo.{logo}.png)">',
    ),
    case(
        "style-attribute-single-quoted-url-in-double-quotes",
        b"<div style=\"background:url('/static/img/logo.png') no-repeat\">",
        b"<div style=\"background:url('/static/img/logo.{logo}.png') no-repeat\">",
    ),
    case(
        "style-attribute-double-quoted-url-in-single-quotes",
        b"<div style='background:url( \"/static/img/a%20b.png\" )'>",
        b"<div style='background:url( \"/static/img/a%20b.{ab}.png\" )'>",
    ),
    case(
        "style-attribute-several-urls",
        b'<div style="background:url(/static/img/logo.png),url(/static/img/a%20b.png)">',
        b"<div"
        b' style="background:url(/static/img/logo.{logo}.png),url(/static/img/a%20b.{ab}.png)">',
    ),
    case(
        "style-attribute-quote-references-decoded",
        b'<div style="background:url(&quot;/static/img/logo.png&quot;)">',
        b'<div style="background:url(&quot;/static/img/logo.{logo}.png&quot;)">',
    ),
    case(
        "style-attribute-parenthesis-reference-decoded",
        b'<div style="background:url&#40;/static/img/logo.png&#x29;">',
        b'<div style="background:url&#40;/static/img/logo.{logo}.png&#x29;">',
    ),
    case(
        "style-attribute-amp-in-query",
        b'<div style="background:url(/static/img/logo.png?a=1&amp;b=2)">',
        b'<div style="background:url(/static/img/logo.{logo}.png?a=1&amp;b=2)">',
    ),
    case(
        "style-attribute-uppercase-url-function",
        b"<div STYLE='background:URL(/static/img/logo.png)'>",
        b"<div STYLE='background:URL(/static/img/logo.{logo}.png)'>",
    ),
    case(
        "style-attribute-reference-beyond-latin-1-joins-a-function-name",
        b'<div style="a:&#8364;url(/static/img/logo.png)">',
    ),
    case(
        "style-attribute-latin-1-reference-joins-a-function-name",
        b'<div style="a:&eacute;url(/static/img/logo.png)">',
    ),
    case(
        "style-attribute-css-comment-is-left",
        b'<div style="/* url(/static/img/logo.png) */ color:red">',
    ),
    case(
        "style-attribute-css-string-is-left", b"<div style=\"content:'url(/static/img/logo.png)'\">"
    ),
    case(
        "style-element-url",
        b"<style>body{background:url(/static/img/logo.png)}</style>",
        b"<style>body{background:url(/static/img/logo.{logo}.png)}</style>",
    ),
    case(
        "style-element-import-string",
        b'<style>@import "/static/css/site.css";</style>',
        b'<style>@import "/static/css/site.{site}.css";</style>',
    ),
    case(
        "style-element-import-url",
        b"<style>@import url('/static/css/site.css') screen;</style>",
        b"<style>@import url('/static/css/site.{site}.css') screen;</style>",
    ),
    case(
        "style-element-font-face",
        b'<style media="all">\n@font-face { src: url(/static/fonts/x.woff2) format("woff2")'
        b" }\n</style>",
        b'<style media="all">\n@font-face { src: url(/static/fonts/x.{x}.woff2) format("woff2")'
        b" }\n</style>",
    ),
    case("style-element-comment-is-left", b"<style>/* url(/static/img/logo.png) */</style>"),
    case(
        "style-element-references-are-not-decoded",
        b"<style>a{background:url(/static&#47;img/logo.png)}</style>",
    ),
    case(
        "style-element-amp-kept-as-written",
        b"<style>a{background:url(/static/img/logo.png?a&amp;b)}</style>",
        b"<style>a{background:url(/static/img/logo.{logo}.png?a&amp;b)}</style>",
    ),
    case(
        "style-element-uppercase-and-spaced-end-tag",
        b"<STYLE>a{background:url(/static/img/logo.png)}</STYLE ><img src=/static/js/app.js>",
        b"<STYLE>a{background:url(/static/img/logo.{logo}.png)}</STYLE ><img"
        b" src=/static/js/app.{app}.js>",
    ),
    case(
        "style-element-holds-markup-as-text",
        b'<style>/* <img src="/static/img/logo.png"> */</style>',
    ),
    case(
        "style-element-not-ended-by-longer-name",
        b"<style>a{}</styles>b{background:url(/static/img/logo.png)}</style>",
        b"<style>a{}</styles>b{background:url(/static/img/logo.{logo}.png)}</style>",
    ),
    case(
        "style-element-own-attribute-is-not-css",
        b'<style data-x="url(/static/img/logo.png)"></style>',
    ),
]

IMPORTMAPS = [
    case(
        "importmap-value",
        b'<script type="importmap">{"imports": {"app": "/static/js/app.js"}}</script>',
        b'<script type="importmap">{"imports": {"app": "/static/js/app.{app}.js"}}</script>',
    ),
    case(
        "importmap-key-is-left",
        b'<script type="importmap">{"imports": {"/static/js/app.js":'
        b' "/static/js/app.js"}}</script>',
        b'<script type="importmap">{"imports": {"/static/js/app.js":'
        b' "/static/js/app.{app}.js"}}</script>',
    ),
    case(
        "importmap-key-with-whitespace-before-colon-is-left",
        b'<script type="importmap">{"imports": {"/static/js/app.js"\n :\n"/static/js/app.min.js"}}'
        b"</script>",
        b'<script type="importmap">{"imports": {"/static/js/app.js"\n'
        b' :\n"/static/js/app.min.{min}.js"}}'
        b"</script>",
    ),
    case(
        "importmap-type-case-and-whitespace",
        b'<script type=" ImportMap\n">{"imports":{"a":"/static/js/app.js"}}</script>',
        b'<script type=" ImportMap\n">{"imports":{"a":"/static/js/app.{app}.js"}}</script>',
    ),
    case(
        "importmap-scopes",
        b'<script type="importmap">{"scopes": {"/static/": {"a": "../static/js/app.js"}}}</script>',
        b'<script type="importmap">{"scopes": {"/static/": {"a":'
        b' "../static/js/app.{app}.js"}}}</script>',
    ),
    case(
        "importmap-string-with-backslash-is-left",
        b'<script type="importmap">{"imports": {"a": "\\/static\\/js\\/app.js", '
        b'"b": "/static/js/app.js\\u0020"}}</script>',
    ),
    case(
        "importmap-escaped-quote-inside-key",
        b'<script type="importmap">{"imports": {"a\\":": "/static/js/app.js"}}</script>',
        b'<script type="importmap">{"imports": {"a\\":": "/static/js/app.{app}.js"}}</script>',
    ),
    case(
        "importmap-array-values",
        b'<script type="importmap">{"x": ["/static/js/app.js", "/static/css/site.css"]}</script>',
        b'<script type="importmap">{"x": ["/static/js/app.{app}.js",'
        b' "/static/css/site.{site}.css"]}</script>',
    ),
    case(
        "importmap-references-are-not-decoded",
        b'<script type="importmap">{"imports": {"a": "/static&#47;js/app.js"}}</script>',
    ),
    case(
        "module-script-text-is-left",
        b'<script type="module">import "/static/js/app.js";</script>',
    ),
    case(
        "importmap-lookalike-type-is-left",
        b'<script type="importmap2">{"imports": {"a": "/static/js/app.js"}}</script>',
    ),
    case(
        "importmap-src-and-text",
        b'<script type=importmap src="/static/js/app.js">{"a": "/static/css/site.css"}</script>',
        b'<script type=importmap src="/static/js/app.{app}.js">{"a":'
        b' "/static/css/site.{site}.css"}</script>',
    ),
]

NEVER = [
    case("comment", b'<!-- <img src="/static/img/logo.png"> -->'),
    case("comment-with-gt-inside", b'<!-- a > <img src="/static/img/logo.png"> -->'),
    case("comment-with-double-dash-gt-spaced", b"<!-- -- > <img src=/static/img/logo.png> -->"),
    case("script-text", b'<script>var u = "/static/js/app.js";</script>'),
    case(
        "script-text-with-markup",
        b'<script src="/static/js/app.js">document.write(\'<img src="/static/img/logo.png">'
        b"')</script>",
        b'<script src="/static/js/app.{app}.js">document.write(\'<img src="/static/img/logo.png">'
        b"')</script>",
    ),
    case(
        "script-text-ends-at-end-tag-only",
        b'<script>"</scripty><img src=/static/img/logo.png>"</script><img'
        b" src=/static/img/logo.png>",
        b'<script>"</scripty><img src=/static/img/logo.png>"</script><img'
        b" src=/static/img/logo.{logo}.png>",
    ),
    case("textarea", b'<textarea><img src="/static/img/logo.png"></textarea>'),
    case("title", b'<title><img src="/static/img/logo.png"></title>'),
    case("xmp", b"<xmp><img src=/static/img/logo.png></xmp>"),
    case(
        "noembed-and-noframes",
        b"<noembed><img src=/static/img/logo.png></noembed><noframes><a href=/static/x></noframes>",
    ),
    case("iframe-text", b"<iframe><img src=/static/img/logo.png></iframe>"),
    case("text-content", b"<p>/static/js/app.js and url(/static/img/logo.png)</p>"),
    case("doctype", b'<!DOCTYPE html SYSTEM "/static/js/app.js">'),
    case("bogus-comment-bang", b"<!x <img src=/static/img/logo.png>"),
    case("bogus-comment-question-mark", b"<?php <img src=/static/img/logo.png> ?>"),
    case("bogus-comment-end-tag", b"</ <img src=/static/img/logo.png>"),
    case("bogus-comment-cdata-in-html", b"<![CDATA[ <img src=/static/img/logo.png> ]]>"),
    case(
        "plaintext",
        b"<plaintext><img src=/static/img/logo.png></plaintext><img src=/static/img/logo.png>",
    ),
    case("unclosed-tag-at-end", b'<img src="/static/img/logo.png"'),
    case("unclosed-unquoted-tag-at-end", b"<img src=/static/img/logo.png"),
    case("unclosed-quote-at-end", b'<img src="/static/img/logo.png>'),
    case("unclosed-quote-runs-over-later-tags", b'<p title="a> <img src=/static/img/logo.png>'),
    case(
        "unclosed-single-quote-runs-over-later-tags", b"<p title='a> <img src=/static/img/logo.png>"
    ),
    case("unclosed-comment", b'<!-- <img src="/static/img/logo.png">'),
    case("unclosed-comment-with-gt", b'<!-- a > <img src="/static/img/logo.png">'),
    case("unclosed-bogus-comment", b"<!x <img src=/static/img/logo.png"),
    case(
        "unclosed-tag-after-rewritten-one",
        b"<img src=/static/img/logo.png><img src=/static/img/logo.png",
        b"<img src=/static/img/logo.{logo}.png><img src=/static/img/logo.png",
    ),
]

COMMENTS_AND_TEXT = [
    case(
        "comment-ends-at-first-close",
        b"<!-- a --><img src=/static/img/logo.png><!-- b -->",
        b"<!-- a --><img src=/static/img/logo.{logo}.png><!-- b -->",
    ),
    case(
        "abrupt-empty-comment",
        b"<!--><img src=/static/img/logo.png>",
        b"<!--><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "abrupt-empty-comment-with-dash",
        b"<!---><img src=/static/img/logo.png>",
        b"<!---><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "comment-closed-by-bang",
        b"<!-- x --!><img src=/static/img/logo.png>",
        b"<!-- x --!><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "comment-closed-by-triple-dash",
        b"<!-- x ---><img src=/static/img/logo.png>",
        b"<!-- x ---><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "after-bogus-comment",
        b"<!doctype html><? x ><img src=/static/img/logo.png>",
        b"<!doctype html><? x ><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "cdata-in-html-ends-at-first-gt",
        b"<![CDATA[ a > b ]]><img src=/static/img/logo.png>",
        b"<![CDATA[ a > b ]]><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "empty-end-tag",
        b"</><img src=/static/img/logo.png>",
        b"</><img src=/static/img/logo.{logo}.png>",
    ),
    case(
        "stray-less-than-signs",
        b"a < b <3 <= <img src=/static/img/logo.png> <",
        b"a < b <3 <= <img src=/static/img/logo.{logo}.png> <",
    ),
    case(
        "end-tag-with-quoted-gt",
        b'</p title=">"><img src=/static/img/logo.png>',
        b'</p title=">"><img src=/static/img/logo.{logo}.png>',
    ),
    case(
        "after-raw-text-elements",
        b"<textarea>x</textarea><title>t</title><img src=/static/img/logo.png>",
        b"<textarea>x</textarea><title>t</title><img src=/static/img/logo.{logo}.png>",
    ),
]

URL_FORMS = [
    case(
        "amp-in-query-kept",
        b'<img src="/static/img/logo.png?a=1&amp;b=2">',
        b'<img src="/static/img/logo.{logo}.png?a=1&amp;b=2">',
    ),
    case(
        "numeric-reference-hides-slash-of-prefix",
        b'<img src="/static&#47;img/logo.png">',
        b'<img src="/static&#47;img/logo.{logo}.png">',
    ),
    case(
        "numeric-reference-hides-letter-of-prefix",
        b'<img src="/&#115;tatic/img/logo.png">',
        b'<img src="/&#115;tatic/img/logo.{logo}.png">',
    ),
    case(
        "hex-reference-hides-prefix",
        b"<img src=/&#x73;&#X74;atic&#x2F;img/logo.png>",
        b"<img src=/&#x73;&#X74;atic&#x2F;img/logo.{logo}.png>",
    ),
    case(
        "named-reference-hides-slash",
        b'<img src="/static&sol;img/logo.png">',
        b'<img src="/static&sol;img/logo.{logo}.png">',
    ),
    case(
        "reference-in-file-name",
        b'<img src="/static/img/l&#111;go.png">',
        b'<img src="/static/img/l&#111;go.{logo}.png">',
    ),
    case(
        "percent-encoded-space-kept",
        b'<img src="/static/img/a%20b.png">',
        b'<img src="/static/img/a%20b.{ab}.png">',
    ),
    case(
        "percent-encoded-letter-kept",
        b'<img src="/static/img/%6Cogo.png">',
        b'<img src="/static/img/%6Cogo.{logo}.png">',
    ),
    case(
        "raw-space-in-quoted-url",
        b'<img src="/static/img/a b.png">',
        b'<img src="/static/img/a b.{ab}.png">',
    ),
    case(
        "relative-dot-dot",
        b'<link href="../static/css/site.css">',
        b'<link href="../static/css/site.{site}.css">',
    ),
    case(
        "relative-to-page-directory-is-outside-prefix",
        b'<link href="css/site.css"><link href="./css/site.css">',
    ),
    case(
        "absolute-path-with-dot-segments",
        b'<script src="/static/css/../js/app.js"></script>',
        b'<script src="/static/css/../js/app.{app}.js"></script>',
    ),
    case("leaving-the-prefix-is-left", b'<script src="/static/../js/app.js"></script>'),
    case(
        "same-origin-absolute",
        b'<link href="http://example.com/static/css/site.css">',
        b'<link href="http://example.com/static/css/site.{site}.css">',
    ),
    case(
        "same-origin-default-port",
        b'<link href="http://example.com:80/static/css/site.css">',
        b'<link href="http://example.com:80/static/css/site.{site}.css">',
    ),
    case(
        "same-origin-uppercase-scheme-and-host",
        b'<link href="HTTP://Example.COM/static/css/site.css">',
        b'<link href="HTTP://Example.COM/static/css/site.{site}.css">',
    ),
    case(
        "protocol-relative-same-host",
        b'<link href="//example.com/static/css/site.css">',
        b'<link href="//example.com/static/css/site.{site}.css">',
    ),
    case("other-scheme-is-left", b'<link href="https://example.com/static/css/site.css">'),
    case("other-port-is-left", b'<link href="http://example.com:8080/static/css/site.css">'),
    case("other-host-is-left", b'<link href="http://cdn.example.com/static/css/site.css">'),
    case(
        "protocol-relative-other-host-is-left",
        b'<link href="//cdn.example.com/static/css/site.css">',
    ),
    case(
        "query-and-fragment-kept",
        b'<link href="/static/css/site.css?v=1#x">',
        b'<link href="/static/css/site.{site}.css?v=1#x">',
    ),
    case(
        "fragment-only",
        b"<img src=/static/img/logo.png#top>",
        b"<img src=/static/img/logo.{logo}.png#top>",
    ),
    case(
        "data-url-is-left",
        b'<img src="data:image/png;base64,AAAA"><img src="data:,/static/img/logo.png">',
    ),
    case("javascript-url-is-left", b'<a href="javascript:/static/js/app.js">'),
    case("missing-file-is-left", b'<img src="/static/img/missing.png">'),
    case(
        "directory-is-left",
        b'<a href="/static/img/"></a><a href="/static/img"></a><a href="/static/empty"></a>',
    ),
    case("directory-named-like-a-file-is-left", b'<link href="/static/dir.css">'),
    case(
        "file-in-directory-named-like-a-file",
        b'<link href="/static/dir.css/inner.css">',
        b'<link href="/static/dir.css/inner.{dircss}.css">',
    ),
    case("html-page-is-left", b'<a href="/static/page.html">'),
    case("prefix-itself-is-left", b'<a href="/static/">'),
    case("prefix-is-case-sensitive", b'<img src="/STATIC/img/logo.png">'),
    case("already-hashed-is-left", b'<script src="/static/js/app.{app}.js"></script>'),
    case("stale-hash-names-no-file", b'<script src="/static/js/app.0123456789ab.js"></script>'),
    case(
        "file-without-extension",
        b'<a href="/static/LICENSE">',
        b'<a href="/static/LICENSE.{license}">',
    ),
    case(
        "double-extension",
        b'<script src="/static/js/app.min.js"></script>',
        b'<script src="/static/js/app.min.{min}.js"></script>',
    ),
    case(
        "tag-is-the-whole-document",
        b"<img src=/static/img/logo.png>",
        b"<img src=/static/img/logo.{logo}.png>",
    ),
]

BASE = [
    case(
        "base-under-prefix-makes-relative-urls-assets",
        b'<base href="/static/"><link href="css/site.css"><img src="./img/logo.png">',
        b'<base href="/static/"><link href="css/site.{site}.css"><img src="./img/logo.{logo}.png">',
    ),
    case(
        "base-applies-only-after-it",
        b'<link href="css/site.css"><base href="/static/"><link href="css/site.css">',
        b'<link href="css/site.css"><base href="/static/"><link href="css/site.{site}.css">',
    ),
    case(
        "first-base-wins",
        b'<base href="/other/"><base href="/static/"><img src="img/logo.png">',
    ),
    case(
        "first-base-with-href-wins",
        b'<base target="_blank"><base href="/static/img/"><img src="logo.png">',
        b'<base target="_blank"><base href="/static/img/"><img src="logo.{logo}.png">',
    ),
    case(
        "base-in-comment-is-ignored",
        b'<!-- <base href="/static/"> --><img src="img/logo.png">',
    ),
    case(
        "base-in-script-is-ignored",
        b'<script>"<base href=/static/>"</script><img src="img/logo.png">',
    ),
    case(
        "base-absolute-same-origin",
        b'<base href="http://example.com/static/img/"><img src="logo.png">',
        b'<base href="http://example.com/static/img/"><img src="logo.{logo}.png">',
    ),
    case(
        "base-of-other-origin-moves-absolute-paths-away",
        b'<base href="http://cdn.example.org/"><img src="/static/img/logo.png">',
    ),
    case(
        "base-href-itself-is-left",
        b'<base href="/static/css/site.css"><img src="../img/logo.png">',
        b'<base href="/static/css/site.css"><img src="../img/logo.{logo}.png">',
    ),
    case(
        "base-applies-to-style-element",
        b"<base href=/static/css/><style>a{background:url(../img/logo.png)}</style>",
        b"<base href=/static/css/><style>a{background:url(../img/logo.{logo}.png)}</style>",
    ),
    case(
        "base-applies-to-srcset-and-importmap",
        b'<base href=/static/img/><img srcset="logo.png 2x">'
        b'<script type=importmap>{"imports":{"a":"../js/app.js"}}</script>',
        b'<base href=/static/img/><img srcset="logo.{logo}.png 2x">'
        b'<script type=importmap>{"imports":{"a":"../js/app.{app}.js"}}</script>',
    ),
    case(
        "base-with-reference",
        b'<base href="/static&#47;img/"><img src="logo.png">',
        b'<base href="/static&#47;img/"><img src="logo.{logo}.png">',
    ),
    case(
        "uppercase-base",
        b'<BASE HREF="/static/img/"><img src="logo.png">',
        b'<BASE HREF="/static/img/"><img src="logo.{logo}.png">',
    ),
]

BYTES = [
    case(
        "bom-kept",
        b'\xef\xbb\xbf<img src="/static/img/logo.png">',
        b'\xef\xbb\xbf<img src="/static/img/logo.{logo}.png">',
    ),
    case(
        "latin-1-bytes-kept",
        b'<p>caf\xe9</p><img alt="\xe9t\xe9 \xff" src="/static/img/logo.png">\xe0',
        b'<p>caf\xe9</p><img alt="\xe9t\xe9 \xff" src="/static/img/logo.{logo}.png">\xe0',
    ),
    case(
        "utf-8-bytes-kept",
        "<p>\u00e9\u2603</p><img alt='\u2603' src=/static/img/logo.png>".encode(),
        "<p>\u00e9\u2603</p><img alt='\u2603' src=/static/img/logo.{logo}.png>".encode(),
    ),
    case(
        "crlf-and-tabs-kept",
        b'<img\r\n\tsrc="/static/img/logo.png"\r\n>\r\n',
        b'<img\r\n\tsrc="/static/img/logo.{logo}.png"\r\n>\r\n',
    ),
    case(
        "nul-bytes-kept",
        b"\x00<img src=/static/img/logo.png>\x00",
        b"\x00<img src=/static/img/logo.{logo}.png>\x00",
    ),
    case("empty-document", b""),
]

PAGE_UNDER_PREFIX_CASES = [
    case(
        "relative-to-page-under-prefix",
        b'<link href="css/site.css"><img src="./img/logo.png"><script src="js/../js/app.js">'
        b"</script>",
        b'<link href="css/site.{site}.css"><img src="./img/logo.{logo}.png">'
        b'<script src="js/../js/app.{app}.js"></script>',
    ),
    case(
        "relative-without-prefix-in-srcset-and-style",
        b'<img srcset="img/logo.png 2x" style="background:url(img/a%20b.png)">',
        b'<img srcset="img/logo.{logo}.png 2x" style="background:url(img/a%20b.{ab}.png)">',
    ),
    case(
        "relative-comment-still-left",
        b"<!-- <img src=img/logo.png> --><img src=img/logo.png>",
        b"<!-- <img src=img/logo.png> --><img src=img/logo.{logo}.png>",
    ),
    case("relative-html-page-left", b'<a href="page.html">'),
    case(
        "base-leaving-the-prefix",
        b'<img src="img/logo.png"><base href="/docs/"><img src="img/logo.png">',
        b'<img src="img/logo.{logo}.png"><base href="/docs/"><img src="img/logo.png">',
    ),
]

XHTML_CASES = [
    case(
        "xhtml-self-closing-script-holds-nothing",
        b'<script src="/static/js/app.js"/><img src="/static/img/logo.png"/>',
        b'<script src="/static/js/app.{app}.js"/><img src="/static/img/logo.{logo}.png"/>',
    ),
    case(
        "xhtml-self-closing-style-holds-nothing",
        b"<style/><img src=/static/img/logo.png />",
        b"<style/><img src=/static/img/logo.{logo}.png />",
    ),
    case(
        "xhtml-script-with-content",
        b'<script>"<img src=/static/img/logo.png>"</script><img src="/static/img/logo.png"/>',
        b'<script>"<img src=/static/img/logo.png>"</script><img'
        b' src="/static/img/logo.{logo}.png"/>',
    ),
    case("xhtml-cdata", b"<![CDATA[ a > b <img src=/static/img/logo.png> ]]>"),
    case(
        "xhtml-after-cdata",
        b'<![CDATA[ a > ]] b ]]><img src="/static/img/logo.png"/>',
        b'<![CDATA[ a > ]] b ]]><img src="/static/img/logo.{logo}.png"/>',
    ),
    case("xhtml-processing-instruction", b"<? a > <img src=/static/img/logo.png> ?>"),
    case(
        "xhtml-after-processing-instruction",
        b'<?xml version="1.0"?><img src="/static/img/logo.png"/>',
        b'<?xml version="1.0"?><img src="/static/img/logo.{logo}.png"/>',
    ),
    case("xhtml-unclosed-cdata", b"<![CDATA[ <img src=/static/img/logo.png>"),
]

HTML_COUNTERPARTS = [
    case(
        "html-self-closing-script-still-holds-text",
        b'<script src="/static/js/app.js"/><img src="/static/img/logo.png"/>',
        b'<script src="/static/js/app.{app}.js"/><img src="/static/img/logo.png"/>',
    ),
    case(
        "html-processing-instruction-ends-at-gt",
        b"<? a > <img src=/static/img/logo.png> ?>",
        b"<? a > <img src=/static/img/logo.{logo}.png> ?>",
    ),
]

INTEGRITY_CASES = [
    case(
        "integrity-script-double-quoted",
        b'<script src="/static/js/app.js"></script>',
        b'<script src="/static/js/app.{app}.js" integrity="{sri_app}"></script>',
    ),
    case(
        "integrity-script-unquoted",
        b"<script src=/static/js/app.js defer></script>",
        b'<script src=/static/js/app.{app}.js integrity="{sri_app}" defer></script>',
    ),
    case(
        "integrity-script-unquoted-last",
        b"<script src=/static/js/app.js></script>",
        b'<script src=/static/js/app.{app}.js integrity="{sri_app}"></script>',
    ),
    case(
        "integrity-script-single-quoted",
        b"<SCRIPT SRC='/static/js/app.js'></SCRIPT>",
        b"<SCRIPT SRC='/static/js/app.{app}.js' integrity=\"{sri_app}\"></SCRIPT>",
    ),
    case(
        "integrity-stylesheet-link",
        b'<link rel="stylesheet" href="/static/css/site.css">',
        b'<link rel="stylesheet" href="/static/css/site.{site}.css" integrity="{sri_site}">',
    ),
    case(
        "integrity-stylesheet-among-rel-tokens",
        b"<link href='/static/css/site.css' rel=\"alternate\tStyleSheet\">",
        b"<link href='/static/css/site.{site}.css' integrity=\"{sri_site}\""
        b' rel="alternate\tStyleSheet">',
    ),
    case(
        "integrity-not-for-preload-link",
        b'<link rel="preload" as="style" href="/static/css/site.css">',
        b'<link rel="preload" as="style" href="/static/css/site.{site}.css">',
    ),
    case(
        "integrity-not-for-rel-lookalike",
        b'<link rel="stylesheets" href="/static/css/site.css">',
        b'<link rel="stylesheets" href="/static/css/site.{site}.css">',
    ),
    case(
        "integrity-not-for-non-breaking-space-in-rel",
        b'<link rel="x\xa0stylesheet" href="/static/css/site.css">',
        b'<link rel="x\xa0stylesheet" href="/static/css/site.{site}.css">',
    ),
    case(
        "integrity-not-for-link-without-rel",
        b'<link href="/static/css/site.css">',
        b'<link href="/static/css/site.{site}.css">',
    ),
    case(
        "integrity-kept-when-present",
        b'<script integrity="sha256-x" src="/static/js/app.js"></script>',
        b'<script integrity="sha256-x" src="/static/js/app.{app}.js"></script>',
    ),
    case(
        "integrity-not-for-images",
        b'<img src="/static/img/logo.png">',
        b'<img src="/static/img/logo.{logo}.png">',
    ),
    case(
        "integrity-not-for-script-data-src",
        b'<script data-src="/static/js/app.js"></script>',
        b'<script data-src="/static/js/app.{app}.js"></script>',
    ),
    case(
        "integrity-not-for-missing-file",
        b'<script src="/static/js/missing.js"></script>',
    ),
    case(
        "integrity-not-for-already-hashed",
        b'<script src="/static/js/app.{app}.js"></script>',
    ),
    case(
        "integrity-same-origin-needs-no-crossorigin",
        b'<script src="http://example.com/static/js/app.js"></script>',
        b'<script src="http://example.com/static/js/app.{app}.js" integrity="{sri_app}"></script>',
    ),
    case(
        "integrity-each-tag",
        b'<script src="/static/js/app.js"></script><script src="/static/js/app.min.js"></script>',
        b'<script src="/static/js/app.{app}.js" integrity="{sri_app}"></script>'
        b'<script src="/static/js/app.min.{min}.js" integrity="{sri_min}"></script>',
    ),
]

CDN_CASES = [
    case(
        "url-base-replaces-origin-and-prefix",
        b'<img src="/static/img/logo.png">',
        b'<img src="https://cdn.example.com/static/img/logo.{logo}.png">',
    ),
    case(
        "url-base-for-relative-url-keeps-query-and-fragment",
        b'<img src="../static/img/logo.png?x=1#y">',
        b'<img src="https://cdn.example.com/static/img/logo.{logo}.png?x=1#y">',
    ),
    case(
        "url-base-for-same-origin-absolute-url",
        b"<img src=http://example.com/static/img/a%20b.png>",
        b"<img src=https://cdn.example.com/static/img/a%20b.{ab}.png>",
    ),
    case(
        "url-base-in-srcset-and-style",
        b'<img srcset="/static/img/logo.png 2x" style="background:url(/static/img/logo.png)">',
        b'<img srcset="https://cdn.example.com/static/img/logo.{logo}.png 2x" '
        b'style="background:url(https://cdn.example.com/static/img/logo.{logo}.png)">',
    ),
    case("url-base-leaves-missing-files", b'<img src="/static/img/missing.png">'),
]

CDN_INTEGRITY_CASES = [
    case(
        "cross-origin-url-base-adds-crossorigin",
        b'<script src="/static/js/app.js"></script>',
        b'<script src="https://cdn.example.com/static/js/app.{app}.js" integrity="{sri_app}" '
        b'crossorigin="anonymous"></script>',
    ),
    case(
        "cross-origin-unquoted",
        b"<link rel=stylesheet href=/static/css/site.css>",
        b"<link rel=stylesheet href=https://cdn.example.com/static/css/site.{site}.css"
        b' integrity="{sri_site}" '
        b'crossorigin="anonymous">',
    ),
    case(
        "existing-crossorigin-kept",
        b'<script crossorigin="use-credentials" src="/static/js/app.js"></script>',
        b'<script crossorigin="use-credentials"'
        b' src="https://cdn.example.com/static/js/app.{app}.js" '
        b'integrity="{sri_app}"></script>',
    ),
    case(
        "existing-bare-crossorigin-kept",
        b"<script src=/static/js/app.js crossorigin></script>",
        b'<script src=https://cdn.example.com/static/js/app.{app}.js integrity="{sri_app}"'
        b" crossorigin></script>",
    ),
]


SAME_ORIGIN_URL_BASE_CASES = [
    case(
        "same-origin-url-base-needs-no-crossorigin",
        b'<script src="/static/js/app.js"></script><img src=../static/img/logo.png>',
        b'<script src="http://example.com/assets/js/app.{app}.js" integrity="{sri_app}"></script>'
        b"<img src=http://example.com/assets/img/logo.{logo}.png>",
    ),
]


def _with(setup: Setup, rows: list[Row]) -> list[Any]:
    return [pytest.param(setup, row.doc, row.expected, id=row.id) for row in rows]


CASES = [
    *_with(Setup(), PLACES + SRCSET + META + STYLE + IMPORTMAPS + NEVER),
    *_with(Setup(), COMMENTS_AND_TEXT + URL_FORMS + BASE + BYTES + HTML_COUNTERPARTS),
    *_with(Setup(page=PAGE_UNDER_PREFIX), PAGE_UNDER_PREFIX_CASES),
    *_with(Setup(xhtml=True), XHTML_CASES),
    *_with(Setup(integrity=True), INTEGRITY_CASES),
    *_with(Setup(url_base=CDN), CDN_CASES),
    *_with(Setup(url_base=CDN, integrity=True), CDN_INTEGRITY_CASES),
    *_with(
        Setup(url_base="http://example.com/assets/", integrity=True), SAME_ORIGIN_URL_BASE_CASES
    ),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> DiskIndex:
    return DiskIndex(make_root(tmp_path_factory.mktemp("static")))


@pytest.mark.parametrize(("setup", "doc", "expected"), CASES)
def test_rewrites_to_exact_bytes(
    index: DiskIndex, setup: Setup, doc: bytes, expected: bytes
) -> None:
    assert setup.rewrite(index, doc) == expected


@pytest.mark.parametrize(("setup", "doc", "expected"), CASES)
def test_one_byte_chunks_give_the_same_bytes(
    index: DiskIndex, setup: Setup, doc: bytes, expected: bytes
) -> None:
    assert setup.stream(index, one_byte_chunks(doc)) == expected


@pytest.mark.parametrize(("setup", "doc", "expected"), CASES)
def test_rewriting_again_changes_nothing(
    index: DiskIndex, setup: Setup, doc: bytes, expected: bytes
) -> None:
    assert setup.rewrite(index, expected) == expected


@pytest.mark.parametrize(("setup", "doc", "expected"), CASES)
def test_oracle_gives_the_same_bytes(
    index: DiskIndex, setup: Setup, doc: bytes, expected: bytes
) -> None:
    urls = setup.urls(index)
    assert oracle_rewrite(doc, urls, xhtml=setup.xhtml, integrity=setup.integrity) == expected


def test_table_expects_changes() -> None:
    # A table where nothing is rewritten would pass against a rewriter that does nothing.
    changed = [p for p in CASES if p.values[1] != p.values[2]]
    assert len(changed) > len(CASES) // 2


def test_expected_hashes_are_computed_from_the_files(tmp_path: Path) -> None:
    index = DiskIndex(make_root(tmp_path))
    asset = index.lookup("img/logo.png")
    assert asset is not None
    assert fill(b"img/logo.{logo}.png").decode() == asset.hashed
