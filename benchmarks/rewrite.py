"""How fast is the HTML rewriter, beside a plain byte scan and DOM-based rewrites?

On the documentation corpus built by ``../shared/corpus/build.sh`` (the Python, Django and
Flask manuals: real Sphinx pages that reference ``_static/...`` relatively) plus a dense page
(a Django-admin-like list of 100 rows, about 90 KB with about 300 references), every page is
processed, in one run and interleaved, by:

* ``scan``: ``bytes.find`` of the needle (``_static/``, ``static/`` for the dense page),
  counting every hit -- the floor;
* ``frozen`` / ``frozen_stream``: hashstatic with hashes from a manifest (production: no file
  access), the whole body at once / fed in 4 KiB chunks;
* ``whole`` / ``stream``: the same with hashes from disk, as ``HashStatic`` makes them in
  development: a watching index (inotify), which answers with no ``stat`` while the kernel
  reports no change;
* ``whole_stat`` / ``stream_stat``: the same with ``watch=False`` (or where inotify cannot be
  had): a ``stat`` per distinct file per page, and per stylesheet dependency;
* ``selectolax`` and ``lxml``: parse, set the hashed URL on each ``src``/``href`` under the
  prefix, serialize. These two are interleaved with each other in a pass of their own: what an
  lxml parse leaves behind slows the call after it (measured: 3.7x), which in a rotation is
  always the same method.

Each site directory's ``_static`` is the static root, published at ``/_static/``; a page's
URL is ``http://bench.local/<its path in the site>``. Hashes come from one warm index, looked
up through a dictionary made afresh for each page, as the middleware does; what URL texts and
tags resolve to is remembered across pages, as the middleware remembers it across responses.
Each page is timed on its own; a method's figure for a page is the median of the repeats.

Then the per-page latency of three pages, each timed alone many times: a 50 KB page with 16
references (``python/library/smtpd.html``), the dense page, and the same 50 KB page with its
references renamed away (``_statix/``), so that it holds none.

The whole measurement is then made again in a subprocess with ``HASHSTATIC_PURE_PYTHON=1``.
This is not a test: it prints a table, writes ``benchmarks/results/rewrite.json`` and never
fails on speed. ``--quick`` measures a small sample, for a smoke run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from hashstatic.cache import DiskIndex, FrozenIndex  # noqa: E402
from hashstatic.html import HtmlRewriter  # noqa: E402
from hashstatic.manifest import build_manifest  # noqa: E402
from hashstatic.tokenizer import ACCELERATED  # noqa: E402
from hashstatic.urls import UrlRewriter  # noqa: E402

SITES = ("django", "flask", "python", "dense")
PREFIXES = {"django": "/_static/", "flask": "/_static/", "python": "/_static/"}
DENSE_PREFIX = "/static/"
ORIGIN = "http://bench.local/"
CHUNK = 4096
HASHSTATIC = ("scan", "frozen", "frozen_stream", "whole", "stream", "whole_stat", "stream_stat")
ALL = (*HASHSTATIC, "selectolax", "lxml")
LABELS = {
    "scan": "bytes.find scan",
    "frozen": "hashstatic, manifest, whole body",
    "frozen_stream": "hashstatic, manifest, 4 KiB chunks",
    "whole": "hashstatic, from disk, whole body",
    "stream": "hashstatic, from disk, 4 KiB chunks",
    "whole_stat": "from disk, stat per file, whole body",
    "stream_stat": "from disk, stat per file, 4 KiB",
    "selectolax": "selectolax rewrite",
    "lxml": "lxml.html rewrite",
}
DOM = ("selectolax", "lxml")
LATENCY_PAGES = ("50 KB, 16 refs", "dense, ~300 refs", "50 KB, no refs")
LATENCY_METHODS = ("scan", "frozen", "frozen_stream", "whole", "whole_stat", "selectolax")


@dataclass
class Page:
    site: str
    url: str
    body: bytes
    chunks: list[bytes]

    @property
    def prefix(self) -> str:
        return PREFIXES[self.site]

    @property
    def needle(self) -> bytes:
        return self.prefix.strip("/").rsplit("/", 1)[-1].encode() + b"/"


Lookup = Callable[[str], Any]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/corpus"))
    parser.add_argument(
        "--build-script",
        type=Path,
        default=REPO.parent / "shared" / "corpus" / "build.sh",
        help="builds the corpus when it is missing (default: ../shared/corpus/build.sh)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timings per page and method")
    parser.add_argument(
        "--max-mb", type=float, default=8.0, help="MB of pages per site, an even sample (8)"
    )
    parser.add_argument(
        "--latency-repeats", type=int, default=300, help="timings per latency page (300)"
    )
    parser.add_argument("--quick", action="store_true", help="a small sample, for a smoke run")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/rewrite.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_mb, args.latency_repeats = 2, 0.5, 20

    if not all((args.corpus / site).is_dir() for site in SITES if site != "dense"):
        print(f"building the corpus into {args.corpus} with {args.build_script}", file=sys.stderr)
        subprocess.run(["sh", str(args.build_script), str(args.corpus)], check=True)
    with tempfile.TemporaryDirectory(prefix="hashstatic-dense-") as dense_root:
        pages, indexes, latency = load(args.corpus, args.max_mb, Path(dense_root))
        if args.worker:
            methods = HASHSTATIC
            result = measure(pages, indexes, methods, args.repeats)
            result["latency"] = measure_latency(latency, indexes, args.latency_repeats)
            json.dump(result, sys.stdout)
            return 0

        started = time.monotonic()
        results = {"accelerated": ACCELERATED, **measure(pages, indexes, ALL, args.repeats)}
        results["latency"] = measure_latency(latency, indexes, args.latency_repeats)
    pure = None
    if ACCELERATED:
        env = dict(os.environ, HASHSTATIC_PURE_PYTHON="1")
        command = [sys.executable, __file__, "--worker", *sys.argv[1:]]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        pure = json.loads(out)
    report = {
        "benchmark": "rewrite",
        "corpus": str(args.corpus),
        "pages": len(pages),
        "bytes": sum(len(p.body) for p in pages),
        "repeats": args.repeats,
        "latency_repeats": args.latency_repeats,
        "python": sys.version.split()[0],
        "main": results,
        "pure_python": pure,
        "seconds": round(time.monotonic() - started, 1),
    }
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


def load(
    corpus: Path, max_mb: float, dense_root: Path
) -> tuple[list[Page], dict[str, Any], dict[str, Page]]:
    """An even sample of each site's pages (at most ``max_mb`` MB per site), the dense page,
    and the pages whose latency is measured."""
    pages: list[Page] = []
    indexes = {}
    for site in SITES:
        if site == "dense":
            continue
        root = corpus / site
        files = sorted(p for p in root.rglob("*.html") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        step = max(1, -(-total // int(max_mb * 1e6)))  # ceiling division
        for path in files[::step]:
            url = ORIGIN + path.relative_to(root).as_posix()
            pages.append(page(site, url, path.read_bytes()))
        indexes[site] = DiskIndex(root / "_static", prefix=PREFIXES[site], watch=True)
        STATTING[site] = DiskIndex(root / "_static", prefix=PREFIXES[site])
        FROZEN[site] = FrozenIndex(build_manifest(root / "_static", prefix=PREFIXES[site]))
    PREFIXES["dense"] = DENSE_PREFIX
    dense = page("dense", ORIGIN + "admin/auth/user/", dense_page(dense_root))
    indexes["dense"] = DiskIndex(dense_root, prefix=DENSE_PREFIX, watch=True)
    STATTING["dense"] = DiskIndex(dense_root, prefix=DENSE_PREFIX)
    FROZEN["dense"] = FrozenIndex(build_manifest(dense_root, prefix=DENSE_PREFIX))
    pages.append(dense)
    typical_path = corpus / "python/library/smtpd.html"
    typical = page("python", ORIGIN + "library/smtpd.html", typical_path.read_bytes())
    none = page("python", typical.url, typical.body.replace(b"_static/", b"_statix/"))
    latency = dict(zip(LATENCY_PAGES, (typical, dense, none), strict=True))
    return pages, indexes, latency


def page(site: str, url: str, body: bytes) -> Page:
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    return Page(site, url, body, chunks)


DENSE_ASSETS = {
    "admin/css/base.css": b"body { background: url(../img/icon-yes.svg) }\n" * 40,
    "admin/css/changelists.css": b".paginator { margin: 0 }\n" * 80,
    "admin/css/responsive.css": b"@media (max-width: 767px) { td { padding: 0 } }\n" * 60,
    "admin/img/icon-yes.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "admin/img/icon-no.svg": b'<svg xmlns="http://www.w3.org/2000/svg" id="n"/>\n',
    "admin/img/icon-changelink.svg": b'<svg xmlns="http://www.w3.org/2000/svg" id="c"/>\n',
    "admin/img/tooltag-add.svg": b'<svg xmlns="http://www.w3.org/2000/svg" id="a"/>\n',
    "admin/js/jquery.init.js": b"window.django = {jQuery: window.jQuery};\n" * 20,
    "admin/js/actions.js": b"'use strict';\n" * 300,
    "admin/js/core.js": b"function quickElement() {}\n" * 200,
}


def dense_page(root: Path) -> bytes:
    """A Django-admin-like list of 100 users, about 90 KB with about 300 references; its
    assets are written under ``root``."""
    for name, data in DENSE_ASSETS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    head = "".join(
        f'<link rel="stylesheet" href="/static/{n}">'
        if n.endswith(".css")
        else f'<script src="/static/{n}"></script>'
        for n in DENSE_ASSETS
        if not n.endswith(".svg")
    )
    rows = []
    for i in range(100):
        flag = "yes" if i % 3 else "no"
        rows.append(
            f'<tr class="row{i % 2 + 1}"><td class="action-checkbox">'
            f'<input type="checkbox" name="_selected_action" value="{i}" '
            f'class="action-select" aria-label="Select this object for an action - user{i}">'
            f'</td><th class="field-username"><a href="/admin/auth/user/{i}/change/">user{i}</a>'
            f'<a href="/admin/auth/user/{i}/change/" title="Change">'
            f'<img src="/static/admin/img/icon-changelink.svg" alt="Change"></a></th>'
            f'<td class="field-email">user{i}@example.com</td>'
            f'<td class="field-first_name">First{i}</td><td class="field-last_name">Last{i}</td>'
            f'<td class="field-is_staff"><img src="/static/admin/img/icon-{flag}.svg" '
            f'alt="{flag == "yes"}"></td><td class="field-is_active">'
            f'<img src="/static/admin/img/icon-yes.svg" alt="True"></td>'
            f'<td class="field-date_joined nowrap">Jan. {i % 28 + 1}, 2026, 10:{i % 60:02} a.m.'
            "</td></tr>\n"
        )
    return (
        '<!DOCTYPE html><html lang="en-us" dir="ltr"><head><title>Select user to change | '
        "Django site admin</title>"
        + head
        + '<meta name="viewport" content="width=device-width, initial-scale=1.0"></head>'
        '<body class=" app-auth model-user change-list" data-admin-utc-offset="0">'
        '<div id="container"><div id="content" class="flex"><h1>Select user to change</h1>'
        '<ul class="object-tools"><li><a href="/admin/auth/user/add/" class="addlink">'
        '<img src="/static/admin/img/tooltag-add.svg" alt="">Add user</a></li></ul>'
        '<table id="result_list"><thead><tr><th scope="col" class="action-checkbox-column">'
        "</th><th>Username</th><th>Email address</th><th>First name</th><th>Last name</th>"
        "<th>Staff status</th><th>Active</th><th>Date joined</th></tr></thead><tbody>\n"
        + "".join(rows)
        + "</tbody></table></div></div></body></html>\n"
    ).encode()


FROZEN: dict[str, FrozenIndex] = {}
STATTING: dict[str, DiskIndex] = {}  # indexes that do not watch: a stat per file per page
URL_MEMOS: dict[int, Any] = {}  # per index, as each HashStatic keeps one


def memoized(index: Any) -> Lookup:
    # One dictionary per page: each distinct file is looked up once, as in the middleware.
    memo: dict[str, Any] = {}

    def lookup(path: str) -> Any:
        try:
            return memo[path]
        except KeyError:
            found = memo[path] = index.lookup(path)
            return found

    return lookup


def scan(page: Page, index: Any) -> int:
    body, needle, hits = page.body, page.needle, 0
    at = body.find(needle)
    while at != -1:
        hits += 1
        at = body.find(needle, at + 1)
    return hits


def rewriter(page: Page, index: Any) -> HtmlRewriter:
    memo = URL_MEMOS.setdefault(id(index), {})
    urls = UrlRewriter(prefix=page.prefix, page_url=page.url, lookup=memoized(index), memo=memo)
    return HtmlRewriter(urls, frozen=isinstance(index, FrozenIndex))


def whole(page: Page, index: Any) -> int:
    r = rewriter(page, index)
    r.rewrite(page.body)
    return len(r.assets)


def stream(page: Page, index: Any) -> int:
    r = rewriter(page, index)
    out = [r.feed(chunk) for chunk in page.chunks]
    out.append(r.close())
    return len(r.assets)


def whole_stat(page: Page, index: Any) -> int:
    return whole(page, STATTING[page.site])


def stream_stat(page: Page, index: Any) -> int:
    return stream(page, STATTING[page.site])


def frozen(page: Page, index: Any) -> int:
    return whole(page, FROZEN[page.site])


def frozen_stream(page: Page, index: Any) -> int:
    return stream(page, FROZEN[page.site])


def hashed_value(value: str, page: Page, lookup: Lookup, found: set[str]) -> str | None:
    """The hashed form of one attribute value, for the DOM-based rewrites."""
    resolved = urlsplit(urljoin(page.url, value))
    if f"{resolved.scheme}://{resolved.netloc}/" != ORIGIN:
        return None
    if not resolved.path.startswith(page.prefix):
        return None
    asset = lookup(unquote(resolved.path[len(page.prefix) :]))
    if asset is None:
        return None
    found.add(asset.hashed)
    parts = urlsplit(value)
    path = parts.path[: parts.path.rfind("/") + 1] + asset.hashed.rsplit("/", 1)[-1]
    return urlunsplit(parts._replace(path=path))


def selectolax(page: Page, index: Any) -> int:
    from selectolax.lexbor import LexborHTMLParser

    lookup = memoized(index)
    found: set[str] = set()
    needle = page.needle.decode()
    tree = LexborHTMLParser(page.body)
    for node in tree.css("[src], [href]"):
        for name in ("src", "href"):
            value = node.attributes.get(name)
            if value and needle in value:
                new = hashed_value(value, page, lookup, found)
                if new is not None:
                    node.attrs[name] = new
    (tree.html or "").encode()
    return len(found)


def lxml(page: Page, index: Any) -> int:
    import lxml.html

    lookup = memoized(index)
    found: set[str] = set()
    needle = page.needle.decode()
    doc = lxml.html.document_fromstring(page.body)
    for element in doc.xpath("//*[@src or @href]"):
        for name in ("src", "href"):
            value = element.get(name)
            if value and needle in value:
                new = hashed_value(value, page, lookup, found)
                if new is not None:
                    element.set(name, new)
    lxml.html.tostring(doc)
    return len(found)


FUNCTIONS: dict[str, Callable[[Page, Any], int]] = {
    "scan": scan,
    "whole": whole,
    "stream": stream,
    "frozen": frozen,
    "frozen_stream": frozen_stream,
    "whole_stat": whole_stat,
    "stream_stat": stream_stat,
    "selectolax": selectolax,
    "lxml": lxml,
}


def measure(
    pages: list[Page], indexes: dict[str, Any], methods: tuple[str, ...], repeats: int
) -> dict[str, Any]:
    # The first pass warms the hash cache and counts what each method found.
    found = {m: sum(FUNCTIONS[m](p, indexes[p.site]) for p in pages) for m in methods}
    for p in pages:
        for index in (indexes[p.site], FROZEN[p.site]):
            r = rewriter(p, index)
            if b"".join([*map(r.feed, p.chunks), r.close()]) != whole_output(p, index):
                raise SystemExit(f"streamed output differs from whole-body output for {p.url}")
    times = {m: [[0] * repeats for _ in pages] for m in methods}
    clock = time.perf_counter_ns
    # The DOM rewrites are interleaved among themselves, apart: a call that follows an lxml
    # parse was measured up to 3.7x slower (whatever lxml leaves behind in the allocator),
    # and in a rotation the same method always follows it.
    groups = [
        tuple(m for m in methods if m not in DOM),
        tuple(m for m in methods if m in DOM),
    ]
    for group in filter(None, groups):
        for rep in range(repeats):
            # Interleaved: every page goes through every method, in an order that rotates.
            order = group[rep % len(group) :] + group[: rep % len(group)]
            gc.collect()
            gc.disable()
            try:
                for i, page in enumerate(pages):
                    index = indexes[page.site]
                    for m in order:
                        fn = FUNCTIONS[m]
                        t0 = clock()
                        fn(page, index)
                        times[m][i][rep] = clock() - t0
            finally:
                gc.enable()
    result: dict[str, Any] = {"found": found, "methods": {}}
    corpus = [i for i, p in enumerate(pages) if p.site != "dense"]
    for m in methods:
        per_page = [statistics.median(t) for t in times[m]]
        sites = {}
        for site in SITES:
            ns = sum(t for t, p in zip(per_page, pages, strict=True) if p.site == site)
            size = sum(len(p.body) for p in pages if p.site == site)
            sites[site] = size / ns * 1e3 if ns else 0.0
        total_ns = sum(per_page[i] for i in corpus)
        result["methods"][m] = {
            "mb_s": sum(len(pages[i].body) for i in corpus) / total_ns * 1e3,
            "total_ms": total_ns / 1e6,
            "page_p50_us": statistics.median(per_page[i] for i in corpus) / 1e3,
            "page_p90_us": statistics.quantiles([per_page[i] for i in corpus], n=10)[-1] / 1e3,
            "sites_mb_s": sites,
        }
    return result


def measure_latency(
    latency: dict[str, Page], indexes: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """Median µs per call for each latency page and method, calls interleaved."""
    methods = [m for m in LATENCY_METHODS if m in FUNCTIONS and (m != "selectolax" or _has_dom())]
    times: dict[str, dict[str, list[int]]] = {n: {m: [] for m in methods} for n in latency}
    clock = time.perf_counter_ns
    for name, p in latency.items():
        index = indexes[p.site]
        for m in methods:
            FUNCTIONS[m](p, index)  # warm
        # As in measure(): the DOM rewrite in a pass of its own.
        for group in ([m for m in methods if m not in DOM], [m for m in methods if m in DOM]):
            if not group:
                continue
            gc.collect()
            gc.disable()
            try:
                for rep in range(repeats):
                    order = group[rep % len(group) :] + group[: rep % len(group)]
                    for m in order:
                        t0 = clock()
                        FUNCTIONS[m](p, index)
                        times[name][m].append(clock() - t0)
            finally:
                gc.enable()
    return {
        name: {
            "bytes": len(latency[name].body),
            "refs": scan(latency[name], None),
            "us": {m: statistics.median(t) / 1e3 for m, t in per.items()},
        }
        for name, per in times.items()
    }


def _has_dom() -> bool:
    try:
        import selectolax  # noqa: F401
    except ImportError:
        return False
    return True


def whole_output(page: Page, index: Any) -> bytes:
    return rewriter(page, index).rewrite(page.body)


def print_table(report: dict[str, Any]) -> None:
    main, pure = report["main"], report["pure_python"]
    kind = "C tokenizer" if main["accelerated"] else "pure-Python tokenizer (C one not built)"
    print(
        f"{report['pages'] - 1} corpus pages and the dense page, "
        f"{report['bytes'] / 1e6:.1f} MB from {report['corpus']}; "
        f"median of {report['repeats']} interleaved runs per page; {kind}; "
        f"Python {report['python']}. MB/s, p50, p90 and x scan are over the corpus pages."
    )
    header = (
        f"{'method':<38}{'MB/s':>7}"
        + "".join(f"{s:>8}" for s in SITES)
        + f"{'p50 µs':>8}{'p90 µs':>8}{'x scan':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    rows = [(LABELS[m], main["methods"][m], main["methods"]["scan"]) for m in ALL]
    if pure is not None:
        rows += [
            (LABELS[m] + " (pure)", pure["methods"][m], pure["methods"]["scan"])
            for m in HASHSTATIC
            if m != "scan"
        ]
    for label, row, scan_row in rows:
        print(
            f"{label:<38}{row['mb_s']:>7.0f}"
            + "".join(f"{row['sites_mb_s'][s]:>8.0f}" for s in SITES)
            + f"{row['page_p50_us']:>8.0f}{row['page_p90_us']:>8.0f}"
            + f"{row['total_ms'] / scan_row['total_ms']:>8.1f}"
        )
    print()
    for mode in ("frozen", "whole"):
        ms = main["methods"][mode]["total_ms"]
        for other in ("selectolax", "lxml"):
            ratio = main["methods"][other]["total_ms"] / ms
            print(f"{LABELS[mode]} is {ratio:.1f}x faster than the {LABELS[other]}")
    found = ", ".join(f"{m} {n}" for m, n in main["found"].items() if m != "scan")
    print(
        f"assets found (distinct per page, summed): {found}; needle hits: {main['found']['scan']}"
    )
    print()
    print("per-page latency, median µs of the interleaved calls (x scan):")
    latency = main["latency"]
    methods = list(next(iter(latency.values()))["us"])
    print(f"{'page':<28}" + "".join(f"{LABELS[m][:22]:>24}" for m in methods))
    for name, row in latency.items():
        scan_us = row["us"]["scan"]
        cells = "".join(f"{row['us'][m]:>14.1f} ({row['us'][m] / scan_us:>5.1f}x)" for m in methods)
        print(f"{name + ' (' + str(row['refs']) + ' hits)':<28}{cells}")
    print(f"took {report['seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
