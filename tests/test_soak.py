"""Load: a bounded soak of one server, with every answer checked and its memory watched.

``hashstatic serve`` runs in a process of its own (so that its resident memory can be read
from ``/proc``) with an app of pages in front of a static root. A few client threads, each on
one keep-alive connection, send a fixed number of mixed requests -- pages, pages revalidated
to 304, hashed assets, assets revalidated to 304, byte ranges, HEAD, unhashed and stale URLs,
a gzip sibling, and 404s for names never asked before -- and check each answer exactly.

Flat memory: the server's RSS once warmed up (after the first fifth of the requests) against
its RSS at the end. Measured on a loaded two-core machine: 36,000 requests grew it by 144 to
276 kB after warm-up over five runs, and 72,000 by about 400 kB, the growth slowing as it goes.
Each kind of request alone (16,000 of one kind) leaves the RSS flat to the kilobyte, ranges of
random sizes aside (+32 kB); the mix grows it more with more threads, and half as much with
``MALLOC_ARENA_MAX=1``: the high-water marks of glibc's per-thread heaps, not a leak. The limit
(RSS_GROWTH_LIMIT_KB, 2 MB) is seven times the worst growth seen; a leak of 75 bytes per request
crosses it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hashstatic.naming import split_hash

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="reads the server's memory from /proc"
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/static/"
REQUESTS = 36_000  # in all, across the clients: about 35 s here
CLIENTS = 4
WARM_UP = REQUESTS // 5
RSS_GROWTH_LIMIT_KB = 2048  # see the module's docstring

ASSETS = {
    "css/site.css": b'@import "base.css";\nbody { background: url(../img/bg.png) }\n'
    b"@font-face { font-family: a; src: url(../fonts/a.woff2) }\n",
    "css/base.css": b"h1 { color: #333 }\n",
    "js/app.js": b"console.log('app');\n" * 40,
    "img/bg.png": bytes(range(256)) * 4,
    "img/photo.jpg": random.Random(7).randbytes(96 * 1024),  # ranges land in several blocks
    "fonts/a.woff2": b"wOF2" + bytes(600),
}
GZIPPED = "js/app.js"  # has a .gz sibling

PAGES = {
    "/": b"""<!doctype html><html><head>
<link rel="stylesheet" href="/static/css/site.css">
<script src="/static/js/app.js"></script></head>
<body><img src="/static/img/photo.jpg" srcset="/static/img/bg.png 2x"></body></html>
""",
    "/about": b"""<!doctype html><html><head>
<link rel="stylesheet" href="static/css/base.css"></head>
<body><img src="/static/img/photo.jpg"><script src="/static/js/app.js"></script></body></html>
""",
}
_HASHED = re.compile(rb"""[^\s"'(),<>=]+\.[0-9a-f]{12}\.[a-z0-9]+(?=[\s"'(),<>])""")


def pages_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The app behind the middleware: a few pages with an ETag of their own."""
    path = environ["PATH_INFO"]
    page = PAGES.get(path)
    if page is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such page\n"]
    etag = f'"page-{hashlib.md5(page).hexdigest()[:8]}"'
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", [("ETag", etag)])
        return []
    headers = [("Content-Type", "text/html; charset=utf-8"), ("ETag", etag)]
    start_response("200 OK", [*headers, ("Content-Length", str(len(page)))])
    return [page]


# --- the server ---------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path  # its standard error: waitress logs there

    def stop(self) -> str:
        """Stop it as an operator would (SIGTERM): it must exit cleanly. Its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)
        assert self.process.returncode == 0
        return self.log.read_text()

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "static"
    for path, data in ASSETS.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / (GZIPPED + ".gz")).write_bytes(gzip.compress(ASSETS[GZIPPED], mtime=0))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "hashstatic", "serve", "tests.test_soak:pages_app"]
    log = tmp_path / "server.log"
    with open(log, "w") as stderr:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [*command, "--root", str(root), "--port", "0"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    port = 0
    deadline = time.monotonic() + 30
    while not port and time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stdout], [], [], 0.1)[0]:
            found = re.search(r":(\d+)/$", process.stdout.readline().strip())
            port = int(found.group(1)) if found else 0
    if not port:
        process.kill()
        process.communicate()
        pytest.fail(f"the server did not start: {log.read_text()}")
    server = Server(process, port, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


# --- the clients --------------------------------------------------------------------------------


@dataclass
class Known:
    """What the warm-up learned: each asset's hashed URL, bytes and ETag; each page's ETag."""

    assets: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # path -> ...
    page_etags: dict[str, str] = field(default_factory=dict)
    page_urls: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    reconnects: int = 0

    def done(self, kind: str) -> None:
        with self.lock:
            self.sent[kind] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.sent.values())

    def fail(self, message: str) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < 20:
                self.errors.append(message)


class Client:
    def __init__(self, port: int, tally: Tally) -> None:
        self.port = port
        self.tally = tally
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.connection.request(method, url, headers=headers or {})
        response = self.connection.getresponse()
        body = response.read()
        if response.will_close:  # the server may say so; it may not just hang up
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self.tally.lock:
                self.tally.reconnects += 1
        return response.status, response.headers, body

    def close(self) -> None:
        self.connection.close()


def learn(client: Client) -> Known:
    """Fetch each page and each asset once, checking them, before the soak begins."""
    known = Known()
    for page in PAGES:
        status, headers, body = client.send("GET", page)
        assert status == 200
        known.page_etags[page] = headers["ETag"]
        known.page_urls[page] = {m.decode() for m in _HASHED.findall(body)}
        for url in known.page_urls[page]:
            path = url.rsplit("static/", 1)[1]
            split = split_hash(path, 12)
            assert split is not None
            status, headers, data = client.send("GET", PREFIX + path)
            assert status == 200
            assert hashlib.md5(data).hexdigest().startswith(split[1])
            assert "immutable" in headers["Cache-Control"]
            known.assets[split[0]] = (PREFIX + path, data, headers["ETag"])
    assert set(known.assets) == set(ASSETS) - {"fonts/a.woff2"}  # named by site.css alone
    return known


Check = Callable[[int, http.client.HTTPMessage, bytes], str | None]


def plan(
    rng: random.Random, known: Known, serial: int
) -> tuple[str, str, str, dict[str, str], Check]:
    """One request: (kind, method, URL, headers, check of the answer -> problem or None)."""
    path = rng.choice(sorted(known.assets))
    url, data, etag = known.assets[path]
    kind = rng.choices(
        ["page", "page 304", "asset", "asset 304", "range", "head", "plain", "stale", "gzip"]
        + ["missing asset", "missing page"],
        weights=[14, 5, 33, 14, 10, 5, 5, 3, 3, 5, 3],
    )[0]

    def expect(status: int, *, body: bytes | None = None, **headers: str) -> Check:
        def check(got: int, got_headers: http.client.HTTPMessage, got_body: bytes) -> str | None:
            if got != status:
                return f"status {got}, not {status}"
            if body is not None and got_body != body:
                return f"{len(got_body)} bytes, not the {len(body)} expected"
            for name, value in headers.items():
                if value not in (got_headers.get(name.replace("_", "-")) or ""):
                    return f"{name} {got_headers.get(name.replace('_', '-'))!r}, not {value!r}"
            return None

        return check

    if kind == "page":
        page = rng.choice(sorted(PAGES))

        def check_page(got: int, headers: http.client.HTTPMessage, body: bytes) -> str | None:
            if got != 200 or {m.decode() for m in _HASHED.findall(body)} != known.page_urls[page]:
                return f"status {got}, or not the hashed URLs of the warm-up"
            return None

        return kind, "GET", page, {}, check_page
    if kind == "page 304":
        page = rng.choice(sorted(PAGES))
        inm = {"If-None-Match": known.page_etags[page]}
        return kind, "GET", page, inm, expect(304, body=b"")
    if kind == "asset":
        return kind, "GET", url, {}, expect(200, body=data, Cache_Control="immutable")
    if kind == "asset 304":
        return kind, "GET", url, {"If-None-Match": etag}, expect(304, body=b"", ETag=etag)
    if kind == "range":
        start = rng.randrange(len(data))
        stop = rng.randrange(start, len(data))
        want = f"bytes {start}-{stop}/{len(data)}"
        headers = {"Range": f"bytes={start}-{stop}"}
        return (
            kind,
            "GET",
            url,
            headers,
            expect(206, body=data[start : stop + 1], Content_Range=want),
        )
    if kind == "head":
        return kind, "HEAD", url, {}, expect(200, body=b"", Content_Length=str(len(data)))
    if kind == "plain":
        return kind, "GET", PREFIX + path, {}, expect(200, body=data, Cache_Control="no-cache")
    if kind == "stale":
        stale = url.replace(url.rsplit(".", 2)[1], "0" * 12)
        return kind, "GET", stale, {}, expect(200, body=data, Cache_Control="no-cache")
    if kind == "gzip":
        gz_url = known.assets[GZIPPED][0]
        want_gz = gzip.compress(ASSETS[GZIPPED], mtime=0)
        headers = {"Accept-Encoding": "gzip"}
        return kind, "GET", gz_url, headers, expect(200, body=want_gz, Content_Encoding="gzip")
    if kind == "missing asset":  # a name never asked before: nothing may be kept for it
        return kind, "GET", f"{PREFIX}img/none-{serial}.{serial:012x}.png", {}, expect(404)
    return kind, "GET", f"/nothing/{serial}", {}, expect(404)


def soak(client: Client, known: Known, tally: Tally, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(count):
        kind, method, url, headers, check = plan(rng, known, seed * REQUESTS + i)
        try:
            status, got_headers, body = client.send(method, url, headers)
        except (OSError, http.client.HTTPException) as error:
            tally.fail(f"{kind} {url}: {error!r}")
            client.close()
            client.connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
            continue
        problem = check(status, got_headers, body)
        if problem is not None:
            tally.fail(f"{kind} {method} {url}: {problem}")
        tally.done(kind)


@pytest.mark.slow
def test_soak_serves_every_request_right_in_flat_memory(
    server: Server, figures: Callable[[str], None]
) -> None:
    tally = Tally()
    clients = [Client(server.port, tally) for _ in range(CLIENTS)]
    known = learn(clients[0])
    samples: list[tuple[int, int]] = []  # (requests done, RSS kB)
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.5):
            samples.append((tally.total(), server.rss_kb()))

    watcher = threading.Thread(target=watch)
    workers = [
        threading.Thread(target=soak, args=(c, known, tally, REQUESTS // CLIENTS, i + 1))
        for i, c in enumerate(clients)
    ]
    started = time.monotonic()
    watcher.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    seconds = time.monotonic() - started
    finished.set()
    watcher.join()
    end_rss = server.rss_kb()
    for client in clients:
        client.close()
    warm = [rss for done, rss in samples if done >= WARM_UP]
    served = sum(tally.sent.values())
    base_rss = warm[0] if warm else end_rss
    log = server.stop()
    figures(
        f"{served} requests served in {seconds:.0f} s by {CLIENTS} keep-alive clients "
        f"({dict(sorted(tally.sent.items()))}), {tally.error_count} errors, "
        f"{tally.reconnects} reconnects (waitress closes the connection after a 304); "
        f"server RSS {base_rss / 1024:.1f} MB after warm-up, {end_rss / 1024:.1f} MB at the "
        f"end ({end_rss - base_rss:+d} kB), peak {max([end_rss, *warm]) / 1024:.1f} MB; "
        f"server log {len(log.splitlines())} lines, {log.count('Traceback')} tracebacks"
    )
    assert not any(worker.is_alive() for worker in workers)
    assert tally.errors == []
    assert served == REQUESTS // CLIENTS * CLIENTS
    assert len(warm) >= 3  # the RSS was watched through the run, not just at its ends
    assert end_rss - base_rss < RSS_GROWTH_LIMIT_KB
    assert "Traceback" not in log
    assert "Exception" not in log
