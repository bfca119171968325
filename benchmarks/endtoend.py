"""End to end: an HTML page through waitress, with the middleware and without it.

A plain WSGI app answers ``/`` with a 50 KB page holding 16 asset references (4 stylesheets,
6 scripts, 6 images; see ``sites.page``). It runs under waitress six ways: alone, behind
``HashStatic`` in development (hashes from disk, as ``HashStatic`` makes them: a watching
index), behind ``HashStatic`` with a manifest (no file touched per page), and three floors.
The first scans the page once with ``bytes.find`` for the prefix before answering, as the
rewriting benchmark's floor does. The second runs hashstatic's own scan alone (the C
tokenizer's ``collect``, which finds every hit and the start tag that holds it) and answers
with the app's own headers and body: the least this design does on a page, with nothing
rewritten, no header changed and no byte copied. The third adds what any rewriting of the
page costs beside the scan: it holds back the app's headers, writes the page anew in one
copy (each tag found put back as it was) and answers with a new ``Content-Length``. Each
way is served by two waitress processes (one process may run 5-15% faster or slower than
another with the same app, all its life) and loaded by ``wrk`` on loopback, interleaved, and
requests per second are given as a ratio to the app alone, at two loads: one connection (one
request at a time: the cost per request) and eight connections on waitress's four threads
(throughput; the threads hand the interpreter lock to each other, and the figures move by
2x between runs).

Two body shapes, because the middleware takes two paths: a ``list`` (rewritten whole, with an
exact ``Content-Length``), and a one-chunk iterator, which is what frameworks return (Django's
``HttpResponse``, Werkzeug's ``ClosingIterator``): the middleware reads up to two chunks of it
to tell a whole page from a stream, then rewrites this one whole too. The same
comparison is also made in-process (each WSGI app called directly) to show the Python cost
without the server's.

This is not a test: it prints tables, writes ``benchmarks/results/endtoend.json`` and never
fails on speed.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, sites

NAME = "endtoend"
SHAPES = ("list", "iterator")
MODES = ("none", "development", "manifest", "floor", "scan", "splice")
LABELS = {
    "none": "app alone",
    "development": "HashStatic, development",
    "manifest": "HashStatic, manifest",
    "floor": "app + one bytes.find scan",
    "scan": "app + hashstatic's scan alone",
    "splice": "app + scan, page written anew",
}
CONNECTIONS = (1, common.WRK_CONNECTIONS)
# Server processes per way of serving: one process can run 5-15% faster or slower than
# another serving the same app, for the whole of its life (where its memory and threads
# land); a median over several is steadier than more runs against one.
PROCESSES = 2
HASHED = re.compile(rb"/static/[^\"]+\.[0-9a-f]{12}\.[a-z0-9]+\"")


class _Body:
    """A one-chunk body that is not a list, as frameworks return."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        pass


def page_app(shape: str) -> Callable[..., Iterable[bytes]]:
    body = sites.page()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", list(headers))
        return [body] if shape == "list" else _Body([body])

    return app


def scanning(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app``, finding every ``static/`` in its page before answering, as the rewriting
    benchmark's floor does."""

    def scanned(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = app(environ, start_response)
        chunks = list(body)
        hits = 0
        for chunk in chunks:
            at = chunk.find(b"static/")
            while at != -1:
                hits += 1
                at = chunk.find(b"static/", at + 1)
        environ["scan.hits"] = hits
        return chunks

    return scanned


def own_scanner() -> Callable[[bytes], list[tuple[int, int, int]]]:
    """hashstatic's tokenizing scan of a whole page for ``/static/``, set up as a page's
    rewriter sets it up: the start tags holding a hit, ``(start, end, content_end)``."""
    from hashstatic import tokenizer
    from hashstatic.html import HtmlRewriter
    from hashstatic.urls import UrlRewriter

    urls = UrlRewriter(prefix="/static/", page_url="http://localhost/", lookup=lambda p: None)
    rewriter = HtmlRewriter(urls)
    needle, refs, names = rewriter._needle, rewriter._refs, rewriter._ref_names

    def found_in(page: bytes) -> list[tuple[int, int, int]]:
        found, _ = tokenizer.collect(page, 0, needle, refs, names, False, False, True)
        return found

    return found_in


def own_scan(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app``, its page run through hashstatic's tokenizing scan for ``/static/`` before
    answering, and nothing else: what a page costs the rewriter before any rewriting."""
    found_in = own_scanner()

    def scanned(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunks = list(app(environ, start_response))
        hits = 0
        for chunk in chunks:
            hits += len(found_in(chunk))
        environ["scan.hits"] = hits
        return chunks

    return scanned


def splicing(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` behind the least a rewriting middleware does: it holds back the app's
    ``start_response``, runs hashstatic's scan, writes the page anew (each start tag found
    put back as it was, in one copy of the page) and sends the app's headers with the
    new ``Content-Length``. Nothing is looked up and nothing is remembered."""
    found_in = own_scanner()

    def spliced(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        held: list[tuple[str, list[tuple[str, str]]]] = []
        chunks = list(
            app(environ, lambda status, headers, exc_info=None: held.append((status, headers)))
        )
        page = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        found = found_in(page)
        view, pieces, emitted = memoryview(page), [], 0
        for start, end, _ in found:
            pieces.append(view[emitted:start])
            pieces.append(view[start:end])
            emitted = end
        pieces.append(view[emitted:])
        out = b"".join(pieces)
        environ["scan.hits"] = len(found)
        status, headers = held[0]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(out)))])
        return [out]

    return spliced


def server(shape: str, mode: str, root: str, manifest: str) -> Any:
    """The app in ``shape``, alone or behind HashStatic in ``mode`` (a waitress factory)."""
    from hashstatic import HashStatic

    app = page_app(shape)
    if mode == "none":
        return app
    if mode == "floor":
        return scanning(app)
    if mode == "scan":
        return own_scan(app)
    if mode == "splice":
        return splicing(app)
    if mode == "development":
        return HashStatic(app, root=root, prefix="/static/")
    return HashStatic(app, root=root, prefix="/static/", manifest=manifest)


def check(mode: str, body: bytes, status: int) -> None:
    found = len(HASHED.findall(body))
    wanted = 16 if mode in ("development", "manifest") else 0
    if status != 200 or found != wanted:
        raise SystemExit(f"{mode}: status {status}, {found} hashed URLs in the page, not {wanted}")


def main() -> int:
    args = common.parser(__doc__, NAME).parse_args()
    started = time.monotonic()
    if args.quick:
        rounds, slice_seconds, wrk_rounds, wrk_seconds, processes = 3, 0.03, 1, 1, 1
    else:
        rounds, slice_seconds, wrk_rounds, wrk_seconds, processes = 15, 0.2, 3, 2, PROCESSES
    report: dict[str, Any] = {
        "machine": common.machine(),
        "settings": {
            "in_process": {"rounds": rounds, "slice_seconds": slice_seconds},
            "wrk": {
                "rounds": wrk_rounds,
                "seconds": wrk_seconds,
                "threads": common.WRK_THREADS,
                "connections": list(CONNECTIONS),
                "waitress_threads": common.WAITRESS_THREADS,
                "processes_per_server": processes,
            },
            "quick": args.quick,
        },
        "page_bytes": len(sites.page()),
        "references": 16,
    }
    with tempfile.TemporaryDirectory(prefix="hashstatic-bench-") as work:
        root, manifest = common.site_with_manifest(Path(work))
        kwargs = {"root": str(root), "manifest": str(manifest)}

        # In-process.
        inproc: dict[str, dict[str, list[float]]] = {}
        for shape in SHAPES:
            candidates = {}
            for mode in MODES:
                app = server(shape, mode, **kwargs)
                response, body = common.call(app, common.environ("/"))
                check(mode, body, int(response.status[:3]))
                if mode in ("floor", "scan", "splice"):
                    environ = common.environ("/")
                    app(environ, lambda *args: None)
                    if environ["scan.hits"] != 16:
                        raise SystemExit(f"{mode}: {environ['scan.hits']} references, not 16")
                candidates[mode] = common.requester(app, common.environ("/"))
            inproc[shape] = common.interleaved_rates(candidates, rounds, slice_seconds)
            print(f"  in-process {shape} done", file=sys.stderr)

        # waitress + wrk, at each load.
        common.ensure_wrk()
        under_wrk: dict[int, dict[str, dict[str, list[float]]]] = {
            c: {s: {m: [] for m in MODES} for s in SHAPES} for c in CONNECTIONS
        }
        with common.Servers() as servers:
            ports = {
                (shape, mode): [
                    servers.waitress("benchmarks.endtoend:server", shape=shape, mode=mode, **kwargs)
                    for _ in range(processes)
                ]
                for shape in SHAPES
                for mode in MODES
            }
            for (_, mode), each in ports.items():
                for port in each:
                    reply = common.fetch(port, "/")
                    check(mode, reply.data, reply.status)  # type: ignore[attr-defined]
                    if not args.quick:
                        common.wrk(port, "/", 1)  # warm-up, not measured
            for r in range(wrk_rounds):
                for connections in CONNECTIONS:
                    for shape in SHAPES:
                        for mode in common.rotated(list(MODES), r):
                            for port in ports[shape, mode]:
                                rate = common.wrk(port, "/", wrk_seconds, connections=connections)
                                under_wrk[connections][shape][mode].append(rate)
                print(f"  wrk round {r + 1} done", file=sys.stderr)

    report["in_process"] = _rows(inproc)
    report["wrk_one"] = _rows(under_wrk[1])  # one connection: one request at a time
    report["wrk"] = _rows(under_wrk[common.WRK_CONNECTIONS])
    print(f"page: {report['page_bytes'] / 1000:.1f} KB, 16 asset references")
    _print(
        "in-process",
        report["in_process"],
        f"median of {rounds} interleaved rounds of {slice_seconds} s",
        ratio=False,
    )
    for key, connections in (("wrk_one", 1), ("wrk", common.WRK_CONNECTIONS)):
        _print(
            "waitress + wrk",
            report[key],
            f"median of {wrk_rounds} interleaved rounds of a {wrk_seconds} s run on each of "
            f"{processes} server processes (wrk -t{common.WRK_THREADS} -c{connections}, "
            f"waitress {common.WAITRESS_THREADS} threads)",
        )
    report["goals"] = [
        common.goal(
            f"end to end {mode} (wrk -c{connections}, worst shape), x app alone",
            min(r["ratio"] for r in report[key] if r["mode"] == mode),
            0.9,
        )
        for key, connections in (("wrk_one", 1), ("wrk", common.WRK_CONNECTIONS))
        for mode in ("development", "manifest")
    ]
    # Not goals: how near the goal a rewriter could come (it must at least find the prefix),
    # and this design's own least: its scan, with nothing rewritten, and its scan with the
    # page written anew and the headers changed, as any rewriting of it must.
    for mode in ("floor", "scan", "splice"):
        report[mode] = {
            f"wrk -c{connections}": min(r["ratio"] for r in report[key] if r["mode"] == mode)
            for key, connections in (("wrk_one", 1), ("wrk", common.WRK_CONNECTIONS))
        }
        print(
            f"{LABELS[mode]}, x app alone: "
            + ", ".join(f"{load} {ratio:.2f}x" for load, ratio in report[mode].items())
        )
    common.write_report(args.json, NAME, report, started)
    return 0


def _rows(rates: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for shape, by_mode in rates.items():
        alone = common.median(by_mode["none"])
        for mode, values in by_mode.items():
            rows.append(
                {
                    "shape": shape,
                    "mode": mode,
                    **common.summary(values),
                    "ratio": round(common.median(values) / alone, 3),
                    "added_us": round((1 / common.median(values) - 1 / alone) * 1e6, 1),
                }
            )
    return rows


def _print(title: str, rows: list[dict[str, Any]], how: str, *, ratio: bool = True) -> None:
    # In-process the app alone costs next to nothing, so a ratio to it says nothing there:
    # the time the middleware adds per request does.
    print()
    print(f"{title}: {how}")
    common.table(
        ["body", "server", "req/s", *(["x app alone"] if ratio else []), "added µs/request"],
        [
            [
                r["shape"],
                LABELS[r["mode"]],
                f"{r['median']:.0f}",
                *([f"{r['ratio']:.2f}x"] if ratio else []),
                "" if r["mode"] == "none" else f"{r['added_us']:.0f}",
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
