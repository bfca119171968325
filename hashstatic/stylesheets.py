"""Stylesheets (and scripts) as they are served: their references rewritten to hashed URLs.

A stylesheet names fonts and images by URL; a browser that caches the stylesheet for a year
must get a new stylesheet URL when a font changes. So the bytes served for ``site.css`` have
every ``url(...)`` and ``@import`` that names an asset rewritten to its hashed form, and the
hash of ``site.css`` is the MD5 of those rewritten bytes.

Stylesheets may reference each other in a cycle (``a.css`` imports ``b.css`` which imports
``a.css``). No hash can cover itself, so references between stylesheets of one cycle (one
strongly connected component of the reference graph) are left as written: they revalidate
instead of being cached for a year. The rule depends only on the files, never on which one was
asked for first, so every process and every build agrees on the bytes.

A script's or stylesheet's ``sourceMappingURL`` comment is rewritten the same way when the map
exists (a missing map is left alone), so a changed map changes the script's URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from hashstatic.cache import Asset, is_stylesheet
from hashstatic.css import url_spans
from hashstatic.urls import UrlRewriter

_ORIGIN = "http://stylesheet.invalid"


def _urls(path: str, prefix: str, lookup: Callable[[str], Asset | None]) -> UrlRewriter:
    # References resolve against the stylesheet's own URL under the prefix.
    page = _ORIGIN + quote(prefix + path, safe="/-._~!$()*+,;=:@")
    return UrlRewriter(prefix=prefix, page_url=page, lookup=lookup)


def stylesheet_references(css: bytes, path: str, prefix: str) -> list[str]:
    """The paths under the root that ``css`` (the stylesheet at ``path``) names."""
    urls = _urls(path, prefix, lambda _: None)
    found = (urls.locate(css[a:b], refs=False) for a, b in url_spans(css))
    return [p for p in found if p is not None]


def rewrite_stylesheet(
    css: bytes,
    path: str,
    prefix: str,
    lookup: Callable[[str], Asset | None],
    *,
    keep: frozenset[str] = frozenset(),
) -> tuple[bytes, list[Asset]]:
    """``css`` with its references hashed, and the assets it now names.

    References to paths in ``keep`` (the stylesheet's own reference cycle) stay as written.
    """
    urls = _urls(path, prefix, lambda p: None if p in keep else lookup(p))
    out: list[bytes] = []
    used: list[Asset] = []
    pos = 0
    for a, b in url_spans(css):
        done = urls.rewrite_url(css[a:b], refs=False)
        if done is not None:
            out += (css[pos:a], done.text)
            used.append(done.asset)
            pos = b
    out.append(css[pos:])
    return b"".join(out), used


def reference_cycle(start: str, references: Callable[[str], list[str]]) -> frozenset[str]:
    """The stylesheets in ``start``'s strongly connected component (itself included when it
    references itself), following ``references`` between stylesheets."""
    # Tarjan's algorithm, iterative, over the graph reachable from start.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    work: list[tuple[str, list[str]]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, [r for r in references(node) if is_stylesheet(r)]))

    visit(start)
    component: frozenset[str] = frozenset()
    while work:
        node, todo = work[-1]
        if todo:
            nxt = todo.pop()
            if nxt not in index:
                visit(nxt)
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
            continue
        work.pop()
        if work:
            parent = work[-1][0]
            low[parent] = min(low[parent], low[node])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if start in members:
                component = frozenset(members)
    if component == {start} and start not in references(start):
        return frozenset()
    return component


# The source map comment of a script or a stylesheet; only the last one counts.
_SCRIPT_MAP = re.compile(rb"//[#@][ \t]*sourceMappingURL=([^\s'\"]+)[ \t]*$", re.M)
_STYLE_MAP = re.compile(rb"/\*[#@][ \t]*sourceMappingURL=([^\s*]+)[ \t]*\*/")


def _source_map(
    data: bytes, path: str, prefix: str, lookup: Callable[[str], Asset | None]
) -> tuple[bytes, list[Asset]]:
    if b"sourceMappingURL=" not in data:
        return data, []  # most files: one fast search, not a regex over every "/"
    pattern = _STYLE_MAP if is_stylesheet(path) else _SCRIPT_MAP
    last = None
    for last in pattern.finditer(data):  # noqa: B007  (the last match is the one)
        pass
    if last is None:
        return data, []
    done = _urls(path, prefix, lookup).rewrite_url(last.group(1), refs=False)
    if done is None:
        return data, []  # a missing map is left alone
    a, b = last.span(1)
    return data[:a] + done.text + data[b:], [done.asset]


def served_body(
    raw: bytes,
    path: str,
    prefix: str,
    lookup: Callable[[str], Asset | None],
    references: Callable[[str], list[str]],
) -> tuple[bytes | None, list[Asset]]:
    """The bytes served for ``path`` when they differ from ``raw``, and the assets they name.

    Stylesheets get their references hashed (``references`` gives any stylesheet's references,
    for the cycle rule); stylesheets and scripts get their source map comment hashed.
    """
    used: list[Asset] = []
    body = raw
    if is_stylesheet(path):
        body, used = rewrite_stylesheet(
            raw, path, prefix, lookup, keep=reference_cycle(path, references)
        )
    body, mapped = _source_map(body, path, prefix, lookup)
    return (None if body == raw else body), used + mapped
