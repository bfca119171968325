"""Stylesheets as they are served: their references rewritten to hashed URLs.

A stylesheet names fonts and images by URL; a browser that caches the stylesheet for a year
must get a new stylesheet URL when a font changes. So the bytes served for ``site.css`` have
every ``url(...)`` and ``@import`` that names an asset rewritten to its hashed form, and the
hash of ``site.css`` is the MD5 of those rewritten bytes.

Stylesheets may reference each other in a cycle (``a.css`` imports ``b.css`` which imports
``a.css``). No hash can cover itself, so references between stylesheets of one cycle (one
strongly connected component of the reference graph) are left as written: they revalidate
instead of being cached for a year. The rule depends only on the files, never on which one was
asked for first, so every process and every build agrees on the bytes.
"""

from __future__ import annotations

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
