"""Memory: peak growth while 200 MB of HTML streams through the middleware.

A WSGI app yields HTML (the 50 KB benchmark page, 16 asset references each, over and over)
as a generator, so the middleware streams it through the rewriter chunk by chunk, and the
test reads and drops every chunk it gets back. Each configuration runs in a fresh
subprocess, which first streams 8 MB the same way (imports, caches, the allocator's arenas),
then resets its RSS high-water mark (``/proc/self/clear_refs``) and streams the 200 MB:

* **RSS growth**: ``VmHWM`` at the end minus ``VmHWM`` just after the reset (the RSS then)
  -- what the operating system had to give the process;
* **tracemalloc growth**: a second pass under ``tracemalloc``, peak minus the traced memory
  at its start -- what Python objects held at once.

Chunk sizes: 512 B (a template engine flushing small pieces; 1-byte chunks would take hours
for 200 MB and say nothing more), 4 KiB (a typical write buffer), 64 KiB (waitress's and
many servers' send size), 1 MiB (a body read from a file), and ``mixed``: sizes drawn from 1 B
to 128 KiB, so that URLs and tags are cut at every possible place. One huge chunk would not
be streaming: it is the whole body in memory by construction.

Beside the goal's rows (development mode, no ``ETag``), two for information: manifest mode,
and a development-mode app that sends an ``ETag``: by design (see the README's "HTML
responses with validators") such a page is rewritten whole before it is sent, since its new
ETag needs the whole body, so its growth is the body's size.

This is not a test: it prints a table, writes ``benchmarks/results/memory.json`` and never
fails on size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, sites

NAME = "memory"
MB = 1_000_000
CHUNKS: dict[str, int] = {"512 B": 512, "4 KiB": 4096, "64 KiB": 65536, "1 MiB": 1 << 20}
MIXED = "mixed 1 B..128 KiB"
# (label, chunk, mode); mode "etag" is development with an app that sends an ETag.
CONFIGS = [
    *((label, label, "development") for label in [*CHUNKS, MIXED]),
    ("64 KiB, manifest", "64 KiB", "manifest"),
    ("64 KiB, app sends ETag", "64 KiB", "etag"),
]
INSERTED = 13  # "." and 12 hex characters per rewritten URL


def chunks(page: bytes, cycle: bytes, total: int, chunk: str) -> Iterator[bytes]:
    """``total`` bytes of ``page`` repeated (``cycle`` is ``page`` repeated to more than
    2 MiB, made once), in chunks of the named size."""
    rng = random.Random(512)
    sent = 0
    while sent < total:
        size = CHUNKS[chunk] if chunk in CHUNKS else rng.randrange(1, 128 * 1024 + 1)
        size = min(size, total - sent)
        start = sent % len(page)
        yield cycle[start : start + size]
        sent += size


def stream(app_of: Callable[[int], Any], total: int) -> tuple[int, float]:
    """Stream ``total`` bytes through the middleware; (bytes out, seconds)."""
    app = app_of(total)
    start = time.perf_counter()
    result = app(common.environ("/"), _start_response)
    out = 0
    try:
        for piece in result:
            out += len(piece)
    finally:
        close = getattr(result, "close", None)  # a body rewritten whole is a list
        if close is not None:
            close()
    return out, time.perf_counter() - start


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if not status.startswith("200"):
        raise SystemExit(f"the middleware answered {status}")
    return lambda data: None


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"/proc/self/status has no {field}")


def child(config: dict[str, Any]) -> dict[str, Any]:
    from hashstatic import HashStatic

    page = sites.page()
    cycle = page * (2 + (2 << 20) // len(page))  # any slice of up to 2 MiB, from any offset
    etag = config["mode"] == "etag"

    def app_of(total: int) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            headers = [("Content-Type", "text/html; charset=utf-8")]
            if etag:
                headers.append(("ETag", '"page"'))
            start_response("200 OK", headers)
            return chunks(page, cycle, total, config["chunk"])

        if config["mode"] == "manifest":
            return HashStatic(app, root=config["root"], manifest=config["manifest"])
        return HashStatic(app, root=config["root"])

    total, warm = config["total"], config["warm"]
    stream(app_of, warm)
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False  # then the growth below is an upper bound
    baseline = _status("VmHWM")  # the current RSS after a reset
    out, seconds = stream(app_of, total)
    rss_growth = _status("VmHWM") - baseline
    # Every whole page in the stream has its 16 references rewritten (the last may be cut).
    rewritten = (out - total) / INSERTED
    if rewritten < 16 * (total // len(page)):
        raise SystemExit(f"only {rewritten:.0f} URLs rewritten in {total} bytes")

    tracemalloc.start()
    stream(app_of, warm)
    gc.collect()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    stream(app_of, total)
    traced_growth = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return {
        "rss_growth": rss_growth,
        "hwm_reset": reset,
        "tracemalloc_growth": traced_growth,
        "rewritten_urls": round(rewritten),
        "mb_s": round(total / seconds / MB, 1),
    }


def main() -> int:
    p = common.parser(__doc__, NAME)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        json.dump(child(json.loads(args.child)), sys.stdout)
        return 0
    started = time.monotonic()
    total, warm = (10 * MB, 2 * MB) if args.quick else (200 * MB, 8 * MB)
    report: dict[str, Any] = {
        "machine": common.machine(),
        "quick": args.quick,
        "stream_bytes": total,
        "warm_up_bytes": warm,
        "page_bytes": len(sites.page()),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="hashstatic-bench-") as work:
        root, manifest = common.site_with_manifest(Path(work))
        env = dict(os.environ, PYTHONPATH=str(common.REPO))
        for label, chunk, mode in CONFIGS:
            config = {
                "root": str(root),
                "manifest": str(manifest),
                "chunk": chunk,
                "mode": mode,
                "total": total,
                "warm": warm,
            }
            command = [sys.executable, __file__, "--child", json.dumps(config)]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            rows.append({"config": label, "chunk": chunk, "mode": mode, **json.loads(out.stdout)})
            print(f"  {label} done", file=sys.stderr)
    report["rows"] = rows
    print(
        f"{total / MB:.0f} MB of HTML streamed through HashStatic after a {warm / MB:.0f} MB "
        "warm-up, one subprocess per row"
    )
    common.table(
        ["chunks", "mode", "RSS growth MB", "tracemalloc growth MB", "MB/s", "URLs rewritten"],
        [
            [
                r["chunk"] if r["chunk"] != MIXED else "mixed",
                "development, ETag" if r["mode"] == "etag" else r["mode"],
                f"{r['rss_growth'] / MB:.1f}" + ("" if r["hwm_reset"] else " (upper bound)"),
                f"{r['tracemalloc_growth'] / MB:.2f}",
                f"{r['mb_s']:.0f}",
                f"{r['rewritten_urls']}",
            ]
            for r in rows
        ],
    )
    streaming = [r for r in rows if r["mode"] != "etag"]
    report["goals"] = [
        common.goal(
            f"memory, worst RSS growth streaming {total / MB:.0f} MB (MB)",
            max(r["rss_growth"] for r in streaming) / MB,
            16,
            at_least=False,
        ),
        common.goal(
            f"memory, worst tracemalloc growth streaming {total / MB:.0f} MB (MB)",
            max(r["tracemalloc_growth"] for r in streaming) / MB,
            16,
            at_least=False,
        ),
    ]
    common.write_report(args.json, NAME, report, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
