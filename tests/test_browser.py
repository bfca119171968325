"""The browser that does the caching: headless Chromium, driven through the DevTools protocol,
against a waitress server that counts the requests it receives."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashstatic import HashStatic

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")
waitress = pytest.importorskip("waitress")
from waitress import wasyncore  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
    ),
]

# Without the background-networking switches Chromium's own connections fail on offline hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",
]
_HASHED = re.compile(r"^/static/.*\.[0-9a-f]{12}\.[a-z0-9]+$")

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cache test</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/site.css">
<script src="/static/js/app.js"></script>
</head>
<body><img src="/static/img/logo.svg" alt="" width="16" height="16"><p id="text">Hello</p></body>
</html>
"""
LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="#06c"/></svg>\n'  # noqa: E501
DOT = b'<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"><rect width="1" height="1"/></svg>\n'  # noqa: E501
CSS_BEFORE = b"#text { color: rgb(10, 20, 30); }\nbody { background: url(../img/dot.svg); }\n"
CSS_AFTER = (
    b"#text { color: rgb(200, 100, 50); }\nbody { background: url(../img/dot.svg); }\n/**/\n"
)


def page_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    # The page itself is revalidated on each navigation, as a dynamic page would be.
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")]
    )
    return [PAGE]


class RequestCounter:
    """WSGI wrapper that counts the paths it sees, outside everything else."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self.lock:
            self.counts[environ["PATH_INFO"]] += 1
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def take(self) -> Counter[str]:
        """The counts since the last call, of /static/ paths only."""
        with self.lock:
            counts = Counter({p: n for p, n in self.counts.items() if p.startswith("/static/")})
            self.counts.clear()
        return counts


class DevTools:
    """A minimal DevTools protocol client over one page's websocket."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=15, suppress_origin=True)
        self.last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        ident = self.last_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(message.get("method") == event for message in self.events):
                self.events.clear()
                return
            self.socket.settimeout(max(0.01, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    for relative, data in {
        "css/site.css": CSS_BEFORE,
        "js/app.js": b'document.documentElement.dataset.ran = "yes";\n',
        "img/logo.svg": LOGO,
        "img/dot.svg": DOT,
    }.items():
        (static / relative).parent.mkdir(parents=True, exist_ok=True)
        (static / relative).write_bytes(data)
    return static


@pytest.fixture
def server(site: Path) -> Iterator[tuple[str, RequestCounter]]:
    counter = RequestCounter(HashStatic(page_app, root=site, prefix="/static/"))
    server = waitress.create_server(counter, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}/", counter
    server.task_dispatcher.shutdown()
    # Closed from the loop's own thread, so that the loop sees an empty map and returns.
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    thread.join(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    log_path = tmp_path / "chromium.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        devtools = DevTools(_page_websocket(log_path, process))
        try:
            yield devtools
        finally:
            devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _page_websocket(log_path: Path, process: subprocess.Popen[bytes]) -> str:
    """The DevTools websocket of the browser's first page, once it is listening."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        found = re.search(r"DevTools listening on ws://([^/\s]+)/", log)
        if found:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"http://{found.group(1)}/json/list", timeout=10) as response:
                targets = json.load(response)
            pages = [t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"]
            if pages:
                return str(pages[0])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    log = log_path.read_text(errors="replace")
    pytest.fail(f"chromium did not start:\n{log}")


def settle(counter: RequestCounter, quiet: float = 0.3) -> Counter[str]:
    """Wait until the server has seen no request for ``quiet`` seconds, then take the counts."""
    total: Counter[str] = Counter()
    while True:
        time.sleep(quiet)
        counts = counter.take()
        if not counts:
            return total
        total += counts


def visit(devtools: DevTools, url: str) -> None:
    devtools.call("Page.navigate", url=url)
    devtools.wait_for("Page.loadEventFired")


def reload_bypassing_cache(devtools: DevTools) -> None:
    devtools.call("Page.reload", ignoreCache=True)
    devtools.wait_for("Page.loadEventFired")


def text_color(devtools: DevTools) -> str:
    return str(devtools.evaluate("getComputedStyle(document.getElementById('text')).color"))


def test_browser_caches_hashed_assets_and_fetches_only_what_changed(
    server: tuple[str, RequestCounter], browser: DevTools, site: Path
) -> None:
    url, counter = server
    browser.call("Page.enable")

    # First visit: every asset once, each under its hashed URL.
    visit(browser, url)
    first = settle(counter)
    assert set(first.values()) == {1}
    assert all(_HASHED.match(path) for path in first)
    assert {path.split("/")[-1].split(".")[0] for path in first} == {"site", "app", "logo", "dot"}
    assert browser.evaluate("document.documentElement.dataset.ran") == "yes"
    assert text_color(browser) == "rgb(10, 20, 30)"

    # Back to the page: nothing under /static/ is asked for, not even revalidated.
    visit(browser, url)
    assert settle(counter) == Counter()

    # A changed stylesheet: fetched once under its new URL, applied, and nothing else fetched.
    (site / "css/site.css").write_bytes(CSS_AFTER)
    visit(browser, url)
    changed = settle(counter)
    assert list(changed.values()) == [1]
    (new_css,) = changed
    assert _HASHED.match(new_css) and new_css.startswith("/static/css/site.")
    assert new_css not in first
    assert text_color(browser) == "rgb(200, 100, 50)"

    # A reload that bypasses the cache fetches everything again: the counter does count.
    reload_bypassing_cache(browser)
    (old_css,) = (path for path in first if path.startswith("/static/css/"))
    current = (set(first) - {old_css}) | {new_css}
    assert settle(counter) == Counter(dict.fromkeys(current, 1))
