"""How fast is the HTML rewriter, beside a plain byte scan and DOM-based rewrites?

On the documentation corpus built by ``../shared/corpus/build.sh`` (the Python, Django and
Flask manuals: real Sphinx pages that reference ``_static/...`` relatively), every page is
processed, in one run and interleaved, by:

* ``scan``: ``bytes.find`` of the needle ``_static/``, counting every hit -- the floor;
* ``whole``: hashstatic's ``HtmlRewriter.rewrite`` on the whole body;
* ``stream``: hashstatic fed the body in 4 KiB chunks;
* ``frozen``: hashstatic on the whole body with hashes from a manifest (production: no stat);
* ``selectolax`` and ``lxml``: parse, set the hashed URL on each ``src``/``href`` under the
  prefix, serialize.

Each site directory's ``_static`` is the static root, published at ``/_static/``; a page's
URL is ``http://bench.local/<its path in the site>``. Hashes come from one warm ``DiskIndex``,
looked up through a dictionary made afresh for each page, as the middleware does (one ``stat``
per distinct file per page); how URL texts resolve is remembered across pages, as the
middleware remembers it across responses. Each page is
timed on its own; a method's figure for a page is the median of the repeats. The same
measurement is then made in a subprocess with ``HASHSTATIC_PURE_PYTHON=1``.

This is not a test: it prints a table, writes ``benchmarks/results/rewrite.json`` and never
fails on speed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
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

SITES = ("django", "flask", "python")
PREFIX = "/_static/"
NEEDLE = b"_static/"
ORIGIN = "http://bench.local/"
CHUNK = 4096
HASHSTATIC = ("scan", "whole", "stream", "frozen")
ALL = (*HASHSTATIC, "selectolax", "lxml")
LABELS = {
    "scan": "bytes.find scan",
    "whole": "hashstatic, whole body",
    "stream": "hashstatic, 4 KiB chunks",
    "frozen": "hashstatic, whole, manifest",
    "selectolax": "selectolax rewrite",
    "lxml": "lxml.html rewrite",
}


@dataclass
class Page:
    site: str
    url: str
    body: bytes
    chunks: list[bytes]


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
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/rewrite.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not all((args.corpus / site).is_dir() for site in SITES):
        print(f"building the corpus into {args.corpus} with {args.build_script}", file=sys.stderr)
        subprocess.run(["sh", str(args.build_script), str(args.corpus)], check=True)
    pages, indexes = load(args.corpus, args.max_mb)

    if args.worker:
        methods = HASHSTATIC
        json.dump(measure(pages, indexes, methods, args.repeats), sys.stdout)
        return 0

    started = time.monotonic()
    results = {"accelerated": ACCELERATED, **measure(pages, indexes, ALL, args.repeats)}
    pure = None
    if ACCELERATED:
        env = dict(os.environ, HASHSTATIC_PURE_PYTHON="1")
        command = [sys.executable, __file__, "--worker", *sys.argv[1:]]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        pure = json.loads(out)
    report = {
        "corpus": str(args.corpus),
        "pages": len(pages),
        "bytes": sum(len(p.body) for p in pages),
        "repeats": args.repeats,
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


def load(corpus: Path, max_mb: float) -> tuple[list[Page], dict[str, Any]]:
    """An even sample of each site's pages, at most ``max_mb`` MB per site."""
    pages: list[Page] = []
    indexes = {}
    for site in SITES:
        root = corpus / site
        files = sorted(p for p in root.rglob("*.html") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        step = max(1, -(-total // int(max_mb * 1e6)))  # ceiling division
        for path in files[::step]:
            body = path.read_bytes()
            url = ORIGIN + path.relative_to(root).as_posix()
            chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
            pages.append(Page(site, url, body, chunks))
        indexes[site] = DiskIndex(root / "_static", prefix=PREFIX)
        FROZEN[site] = FrozenIndex(build_manifest(root / "_static", prefix=PREFIX))
    return pages, indexes


FROZEN: dict[str, FrozenIndex] = {}
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
    body, hits = page.body, 0
    at = body.find(NEEDLE)
    while at != -1:
        hits += 1
        at = body.find(NEEDLE, at + 1)
    return hits


def rewriter(page: Page, index: Any) -> HtmlRewriter:
    memo = URL_MEMOS.setdefault(id(index), {})
    urls = UrlRewriter(prefix=PREFIX, page_url=page.url, lookup=memoized(index), memo=memo)
    return HtmlRewriter(urls)


def whole(page: Page, index: Any) -> int:
    r = rewriter(page, index)
    r.rewrite(page.body)
    return len(r.assets)


def stream(page: Page, index: Any) -> int:
    r = rewriter(page, index)
    out = [r.feed(chunk) for chunk in page.chunks]
    out.append(r.close())
    return len(r.assets)


def frozen(page: Page, index: Any) -> int:
    return whole(page, FROZEN[page.site])


def hashed_value(value: str, page_url: str, lookup: Lookup, found: set[str]) -> str | None:
    """The hashed form of one attribute value, for the DOM-based rewrites."""
    resolved = urlsplit(urljoin(page_url, value))
    if f"{resolved.scheme}://{resolved.netloc}/" != ORIGIN:
        return None
    if not resolved.path.startswith(PREFIX):
        return None
    asset = lookup(unquote(resolved.path[len(PREFIX) :]))
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
    tree = LexborHTMLParser(page.body)
    for node in tree.css("[src], [href]"):
        for name in ("src", "href"):
            value = node.attributes.get(name)
            if value and NEEDLE.decode() in value:
                new = hashed_value(value, page.url, lookup, found)
                if new is not None:
                    node.attrs[name] = new
    (tree.html or "").encode()
    return len(found)


def lxml(page: Page, index: Any) -> int:
    import lxml.html

    lookup = memoized(index)
    found: set[str] = set()
    doc = lxml.html.document_fromstring(page.body)
    for element in doc.xpath("//*[@src or @href]"):
        for name in ("src", "href"):
            value = element.get(name)
            if value and NEEDLE.decode() in value:
                new = hashed_value(value, page.url, lookup, found)
                if new is not None:
                    element.set(name, new)
    lxml.html.tostring(doc)
    return len(found)


FUNCTIONS: dict[str, Callable[[Page, Any], int]] = {
    "scan": scan,
    "whole": whole,
    "stream": stream,
    "frozen": frozen,
    "selectolax": selectolax,
    "lxml": lxml,
}


def measure(
    pages: list[Page], indexes: dict[str, Any], methods: tuple[str, ...], repeats: int
) -> dict[str, Any]:
    # The first pass warms the hash cache and counts what each method found.
    found = {m: sum(FUNCTIONS[m](p, indexes[p.site]) for p in pages) for m in methods}
    for p in pages:
        r = rewriter(p, indexes[p.site])
        if b"".join([*map(r.feed, p.chunks), r.close()]) != whole_output(p, indexes[p.site]):
            raise SystemExit(f"streamed output differs from whole-body output for {p.url}")
    times = {m: [[0] * repeats for _ in pages] for m in methods}
    clock = time.perf_counter_ns
    for rep in range(repeats):
        # Interleaved: every page goes through every method, in an order that rotates.
        order = methods[rep % len(methods) :] + methods[: rep % len(methods)]
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
    for m in methods:
        per_page = [statistics.median(t) for t in times[m]]
        sites = {}
        for site in SITES:
            ns = sum(t for t, p in zip(per_page, pages, strict=True) if p.site == site)
            size = sum(len(p.body) for p in pages if p.site == site)
            sites[site] = size / ns * 1e3 if ns else 0.0
        total_ns = sum(per_page)
        result["methods"][m] = {
            "mb_s": sum(len(p.body) for p in pages) / total_ns * 1e3,
            "total_ms": total_ns / 1e6,
            "page_p50_us": statistics.median(per_page) / 1e3,
            "page_p90_us": statistics.quantiles(per_page, n=10)[-1] / 1e3,
            "sites_mb_s": sites,
        }
    return result


def whole_output(page: Page, index: Any) -> bytes:
    return rewriter(page, index).rewrite(page.body)


def print_table(report: dict[str, Any]) -> None:
    main, pure = report["main"], report["pure_python"]
    kind = "C tokenizer" if main["accelerated"] else "pure-Python tokenizer (C one not built)"
    print(
        f"{report['pages']} pages, {report['bytes'] / 1e6:.1f} MB from {report['corpus']}; "
        f"median of {report['repeats']} interleaved runs per page; {kind}; "
        f"Python {report['python']}"
    )
    header = (
        f"{'method':<34}{'MB/s':>8}"
        + "".join(f"{s:>9}" for s in SITES)
        + f"{'p50 µs':>9}{'p90 µs':>9}{'x scan':>8}"
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
            f"{label:<34}{row['mb_s']:>8.0f}"
            + "".join(f"{row['sites_mb_s'][s]:>9.0f}" for s in SITES)
            + f"{row['page_p50_us']:>9.0f}{row['page_p90_us']:>9.0f}"
            + f"{row['total_ms'] / scan_row['total_ms']:>8.1f}"
        )
    whole_ms = main["methods"]["whole"]["total_ms"]
    print()
    for other in ("selectolax", "lxml"):
        ratio = main["methods"][other]["total_ms"] / whole_ms
        print(f"speedup of hashstatic (whole body) over the {LABELS[other]}: {ratio:.1f}x")
    found = ", ".join(f"{m} {n}" for m, n in main["found"].items() if m != "scan")
    hits = main["found"]["scan"]
    print(f"assets found (distinct per page, summed): {found}; needle hits: {hits}")
    print(f"took {report['seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
