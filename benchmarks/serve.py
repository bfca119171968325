"""Serving static files: hashstatic against WhiteNoise, like against like.

Two pairings, each for a small stylesheet (about 5 KB, naming an image and a font) and a
medium script (about 100 KB), answered 200 (no validator sent) and 304 (``If-None-Match``
with the ETag that server gave):

* **development**: ``HashStatic(app, root=...)`` (a ``DiskIndex``: one ``stat`` per request,
  hashes recomputed when a file changes) against ``WhiteNoise(app, root=...,
  autorefresh=True)`` (which looks the file up on disk at every request). hashstatic gets the
  hashed URL, since that is what the pages it rewrites ask for; WhiteNoise gets the plain URL,
  the only one it knows. The stylesheet hashstatic sends has its references rewritten (served
  from memory); WhiteNoise sends the file as it is.
* **manifest** (production without nginx): ``HashStatic(app, root=..., manifest=FILE)`` with a
  manifest written by ``hashstatic manifest``, against WhiteNoise's default (it scans the root
  once at startup and answers from a dictionary). Both get the *same hashed URL*: WhiteNoise
  serves the directory written by ``hashstatic build`` (hashed copies, stylesheets rewritten)
  with ``immutable_file_test`` matching hashed names, which is what a Django project gets from
  ``ManifestStaticFilesStorage`` plus WhiteNoise. So both send the same bytes with the same
  one-year ``immutable`` header; serving WhiteNoise the plain URL instead would compare a
  60-second cache lifetime against a one-year one.

No request sends ``Accept-Encoding`` and no precompressed siblings exist, so neither server
looks for any.

Measured two ways, interleaved, median requests per second and the ratio
hashstatic / WhiteNoise:

1. **in-process**: each WSGI app called directly with a minimal environ (no
   ``wsgi.file_wrapper``: the body is read by iterating, and closed), in rounds that rotate
   the order; this isolates the Python each one runs per request;
2. **waitress + wrk**: each app in two waitress processes of its own (4 threads each; one
   process can run 5-15% faster or slower than another with the same app, all its life),
   loaded in turn by ``wrk`` (1 thread, 8 keep-alive connections) on loopback; wrk and the
   server share the machine's two cores, as they would share a small server.

Under waitress every row also measures the **ceiling**: a WSGI app that answers the same URL
with the same bytes held in memory (a bare 304 to ``If-None-Match``), with no file system call
and almost no Python, under the same waitress settings. No app can be faster than it there, so
ceiling / WhiteNoise is the largest ratio any static server could reach in that row: where it is
below the goal, the goal is out of reach under waitress whoever serves the files. It sends one
header; waitress handles each header in Python, so the row also measures the same app sending
the headers hashstatic sends with a manifest (``ceiling_headers``): how near hashstatic comes to
what any server sending those headers could reach.

Needs ``whitenoise`` (``pip install -e '.[bench]'``) and ``wrk`` (installed with apt-get when
missing). This is not a test: it prints tables, writes ``benchmarks/results/serve.json`` and
never fails on speed.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, sites

NAME = "serve"
# Waitress processes per server: one process can run 5-15% faster or slower than another
# with the same app for its whole life; the median is taken over the runs of all of them.
PROCESSES = 2
FILES = {"css": sites.SMALL_CSS, "js": sites.MEDIUM_JS}
# Hashed names as hashstatic writes them (12 hex characters before the last extension).
IMMUTABLE_TEST = r"\.[0-9a-f]{12}(\.[^./]+)?$"
PAIRINGS = {
    "development": ("hashstatic_dev", "whitenoise_autorefresh"),
    "manifest": ("hashstatic_manifest", "whitenoise_default"),
}


# --- the four servers (module-level factories, also used by the waitress children) ---------


def hashstatic_dev(root: str) -> Any:
    from hashstatic import HashStatic

    return HashStatic(common.not_found_app, root=root, prefix="/static/")


def hashstatic_manifest(root: str, manifest: str) -> Any:
    from hashstatic import HashStatic

    return HashStatic(common.not_found_app, root=root, prefix="/static/", manifest=manifest)


def _whitenoise() -> Any:
    # Imported by name: WhiteNoise ships no type information, and is only a bench dependency.
    return importlib.import_module("whitenoise").WhiteNoise


def whitenoise_autorefresh(root: str) -> Any:
    WhiteNoise = _whitenoise()  # noqa: N806
    return WhiteNoise(common.not_found_app, root=root, prefix="/static/", autorefresh=True)


def whitenoise_default(root: str) -> Any:
    WhiteNoise = _whitenoise()  # noqa: N806
    return WhiteNoise(
        common.not_found_app, root=root, prefix="/static/", immutable_file_test=IMMUTABLE_TEST
    )


def ceiling(files: dict[str, str]) -> Any:
    """The least a WSGI app can do to answer ``files`` (URL -> file path): bytes read once,
    sent as one chunk; a 304, with no headers to build, to any ``If-None-Match``."""
    bodies = {url: Path(path).read_bytes() for url, path in files.items()}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = bodies.get(environ["PATH_INFO"])
        if body is None:
            return common.not_found_app(environ, start_response)
        if "HTTP_IF_NONE_MATCH" in environ:
            start_response("304 Not Modified", [])
            return []
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


def ceiling_headers(
    files: dict[str, str], headers: dict[str, dict[str, list[tuple[str, str]]]]
) -> Any:
    """:func:`ceiling`, sending for each URL the headers ``headers[url]`` gives for its 200
    and its 304 (those hashstatic sends with a manifest)."""
    bodies = {url: Path(path).read_bytes() for url, path in files.items()}
    # (Passed to a server process as JSON, so the pairs arrive as lists.)
    sent = {
        url: ([(k, v) for k, v in h["200"]], [(k, v) for k, v in h["304"]])
        for url, h in headers.items()
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = bodies.get(environ["PATH_INFO"])
        if body is None:
            return common.not_found_app(environ, start_response)
        ok, not_modified = sent[environ["PATH_INFO"]]
        if "HTTP_IF_NONE_MATCH" in environ:
            start_response("304 Not Modified", list(not_modified))
            return []
        start_response("200 OK", list(ok))
        return [body]

    return app


FACTORIES: dict[str, Callable[..., Any]] = {
    "hashstatic_dev": hashstatic_dev,
    "hashstatic_manifest": hashstatic_manifest,
    "whitenoise_autorefresh": whitenoise_autorefresh,
    "whitenoise_default": whitenoise_default,
    "ceiling": ceiling,
    "ceiling_headers": ceiling_headers,
}
# Not compared by themselves: the least an app could do under waitress (see under_wrk).
CEILINGS = ("ceiling", "ceiling_headers")


def prepare(work: Path) -> dict[str, Any]:
    """The site, its manifest and build directory; each server's arguments and URLs."""
    source = sites.static_site(work / "static")
    manifest = work / "manifest.json"
    build = work / "build"
    common.hashstatic_command("manifest", "--root", str(source), "-o", str(manifest))
    common.hashstatic_command("build", "--root", str(source), "--out", str(build))
    from hashstatic.manifest import load_manifest

    files = load_manifest(manifest).files
    hashed = {kind: "/static/" + files[path].hashed for kind, path in FILES.items()}
    plain = {kind: "/static/" + path for kind, path in FILES.items()}
    # The bytes hashstatic sends (the build's copies: stylesheets rewritten), and its headers
    # with the manifest, for the ceilings.
    served = {hashed[kind]: str(build / files[path].hashed) for kind, path in FILES.items()}
    ours = hashstatic_manifest(root=str(source), manifest=str(manifest))
    sent: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for url in hashed.values():
        response, _ = common.call(ours, common.environ(url))
        etag = response.header("ETag") or ""
        again, _ = common.call(ours, common.environ(url, {"If-None-Match": etag}))
        sent[url] = {"200": response.headers, "304": again.headers}
    return {
        "kwargs": {
            "hashstatic_dev": {"root": str(source)},
            "hashstatic_manifest": {"root": str(source), "manifest": str(manifest)},
            "whitenoise_autorefresh": {"root": str(source)},
            "whitenoise_default": {"root": str(build)},
            "ceiling": {"files": served},
            "ceiling_headers": {"files": served, "headers": sent},
        },
        "urls": {
            "hashstatic_dev": hashed,
            "hashstatic_manifest": hashed,
            "whitenoise_autorefresh": plain,
            "whitenoise_default": hashed,
            "ceiling": hashed,
            "ceiling_headers": hashed,
        },
        "sizes": {kind: (source / path).stat().st_size for kind, path in FILES.items()},
    }


def check(server: str, kind: str, status: int, cache_control: str | None, size: int) -> None:
    """Refuse to measure a server that does not answer as the pairing assumes."""
    immutable = "immutable" in (cache_control or "")
    wants_immutable = server in ("hashstatic_dev", "hashstatic_manifest", "whitenoise_default")
    if status != 200 or immutable != wants_immutable or size == 0:
        raise SystemExit(
            f"{server} answered {kind} with {status}, Cache-Control {cache_control!r}, "
            f"{size} bytes: not the response this benchmark compares"
        )


def in_process(setup: dict[str, Any], rounds: int, slice_seconds: float) -> list[dict[str, Any]]:
    apps = {
        name: FACTORIES[name](**setup["kwargs"][name]) for name in FACTORIES if name not in CEILINGS
    }
    rows = []
    for pairing, (ours, theirs) in PAIRINGS.items():
        for kind in FILES:
            for status in (200, 304):
                candidates = {}
                for name in (ours, theirs):
                    url = setup["urls"][name][kind]
                    response, body = common.call(apps[name], common.environ(url))
                    cache_control = response.header("Cache-Control")
                    check(name, kind, int(response.status[:3]), cache_control, len(body))
                    headers = {}
                    if status == 304:
                        headers["If-None-Match"] = response.header("ETag") or ""
                        again, _ = common.call(apps[name], common.environ(url, headers))
                        if not again.status.startswith("304"):
                            raise SystemExit(f"{name} did not answer 304 to its own ETag")
                    candidates[name] = common.requester(apps[name], common.environ(url, headers))
                rates = common.interleaved_rates(candidates, rounds, slice_seconds)
                rows.append(_row(pairing, kind, status, ours, theirs, rates))
                print(
                    f"  in-process {pairing} {kind} {status}: ratio {rows[-1]['ratio']:.2f}",
                    file=sys.stderr,
                )
    return rows


def under_wrk(
    setup: dict[str, Any], rounds: int, seconds: int, quick: bool
) -> list[dict[str, Any]]:
    common.ensure_wrk()
    rows = []
    processes = 1 if quick else PROCESSES
    with common.Servers() as servers:
        each = {
            name: [servers.waitress(f"benchmarks.serve:{name}", **kw) for _ in range(processes)]
            for name, kw in setup["kwargs"].items()
        }
        for name, ports_of in each.items():
            for port in ports_of:
                if not quick:
                    common.wrk(port, setup["urls"][name]["css"], 1)  # warm-up, not measured
        ports = {name: ports_of[0] for name, ports_of in each.items()}  # for the checks
        for pairing, (ours, theirs) in PAIRINGS.items():
            # wrk runs whole seconds: a quick run loads the stylesheet only.
            for kind in ["css"] if quick else FILES:
                for status in (200, 304):
                    targets = {}
                    for name in (ours, theirs):
                        url = setup["urls"][name][kind]
                        reply = common.fetch(ports[name], url)
                        body = reply.data  # type: ignore[attr-defined]
                        check(name, kind, reply.status, reply.getheader("Cache-Control"), len(body))
                        headers = {}
                        if status == 304:
                            headers["If-None-Match"] = reply.getheader("ETag") or ""
                            if common.fetch(ports[name], url, headers).status != 304:
                                raise SystemExit(f"{name} did not answer 304 to its own ETag")
                        targets[name] = (url, headers)
                    for name in CEILINGS:
                        url = setup["urls"][name][kind]
                        targets[name] = (url, {"If-None-Match": '"any"'} if status == 304 else {})
                    rates: dict[str, list[float]] = {name: [] for name in targets}
                    for r in range(rounds):
                        for name in common.rotated(list(targets), r):
                            url, headers = targets[name]
                            for port in each[name]:
                                rates[name].append(common.wrk(port, url, seconds, headers))
                    row = _row(pairing, kind, status, ours, theirs, rates)
                    reach = common.median(rates["ceiling"]) / row["whitenoise"]["median"]
                    row["ceiling"] = {"server": "ceiling", **common.summary(rates["ceiling"])}
                    row["ceiling_ratio"] = round(reach, 3)
                    same = common.median(rates["ceiling_headers"]) / row["whitenoise"]["median"]
                    row["ceiling_headers"] = {
                        "server": "ceiling_headers",
                        **common.summary(rates["ceiling_headers"]),
                    }
                    row["ceiling_headers_ratio"] = round(same, 3)
                    rows.append(row)
                    print(
                        f"  wrk {pairing} {kind} {status}: ratio {row['ratio']:.2f} "
                        f"(ceiling {row['ceiling_ratio']:.2f}, with hashstatic's headers "
                        f"{row['ceiling_headers_ratio']:.2f})",
                        file=sys.stderr,
                    )
    return rows


def _row(
    pairing: str, kind: str, status: int, ours: str, theirs: str, rates: dict[str, list[float]]
) -> dict[str, Any]:
    a, b = common.median(rates[ours]), common.median(rates[theirs])
    return {
        "pairing": pairing,
        "file": kind,
        "status": status,
        "hashstatic": {"server": ours, **common.summary(rates[ours])},
        "whitenoise": {"server": theirs, **common.summary(rates[theirs])},
        "ratio": round(a / b, 3),
    }


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print()
    print(title)
    header = ["pairing", "file", "status", "hashstatic req/s", "WhiteNoise req/s", "ratio"]
    ceilings = all("ceiling" in r for r in rows)
    if ceilings:
        header += ["ceiling req/s", "ceiling / WhiteNoise", "with our headers / WhiteNoise"]
    table = []
    for r in rows:
        line = [
            r["pairing"],
            r["file"],
            str(r["status"]),
            f"{r['hashstatic']['median']:.0f}",
            f"{r['whitenoise']['median']:.0f}",
            f"{r['ratio']:.2f}x",
        ]
        if ceilings:
            line += [
                f"{r['ceiling']['median']:.0f}",
                f"{r['ceiling_ratio']:.2f}x",
                f"{r['ceiling_headers_ratio']:.2f}x",
            ]
        table.append(line)
    common.table(header, table)


def goals(rows: list[dict[str, Any]], how: str) -> list[dict[str, Any]]:
    out = []
    for pairing in PAIRINGS:
        for status in (200, 304):
            ratios = [r["ratio"] for r in rows if r["pairing"] == pairing and r["status"] == status]
            if not ratios:
                continue
            worst = min(ratios)
            what = f"serving {pairing} {status} ({how}, worst file), x WhiteNoise"
            out.append(common.goal(what, worst, 1.5))
    return out


def main() -> int:
    parser = common.parser(__doc__, NAME)
    parser.add_argument(
        "--wrk-only", action="store_true", help="skip the in-process rounds (waitress + wrk only)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    report: dict[str, Any] = {"machine": common.machine()}
    if args.quick:
        rounds, slice_seconds, wrk_rounds, wrk_seconds = 3, 0.03, 1, 1
    else:
        rounds, slice_seconds, wrk_rounds, wrk_seconds = 15, 0.2, 3, 2
    report["settings"] = {
        "in_process": {"rounds": rounds, "slice_seconds": slice_seconds},
        "wrk": {
            "rounds": wrk_rounds,
            "seconds": wrk_seconds,
            "threads": common.WRK_THREADS,
            "connections": common.WRK_CONNECTIONS,
            "waitress_threads": common.WAITRESS_THREADS,
            "processes_per_server": 1 if args.quick else PROCESSES,
        },
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="hashstatic-bench-") as work:
        setup = prepare(Path(work))
        report["file_bytes"] = setup["sizes"]
        report["urls"] = setup["urls"]
        report["in_process"] = [] if args.wrk_only else in_process(setup, rounds, slice_seconds)
        report["wrk"] = under_wrk(setup, wrk_rounds, wrk_seconds, args.quick)
    sizes = ", ".join(f"{k} {v / 1000:.1f} KB" for k, v in setup["sizes"].items())
    print(f"files: {sizes}; Python {report['machine']['python']}")
    print_rows(
        f"in-process: median of {rounds} interleaved rounds of {slice_seconds} s per app",
        report["in_process"],
    )
    print_rows(
        f"waitress + wrk: median of {wrk_rounds} interleaved rounds of a {wrk_seconds} s run on "
        f"each of {1 if args.quick else PROCESSES} processes per server "
        f"(wrk -t{common.WRK_THREADS} -c{common.WRK_CONNECTIONS})",
        report["wrk"],
    )
    report["goals"] = goals(report["in_process"], "in-process") + goals(report["wrk"], "wrk")
    common.write_report(args.json, NAME, report, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
