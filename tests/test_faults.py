"""Faults, through the real middleware: applications that raise before, after and while
sending, clients that go away, files that cannot be read, a root that disappears. Each must
give correct WSGI behaviour (the error reaches the server, the app's iterable is closed
exactly once, nothing is left open) and, where hashstatic degrades, one clear log line."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
from webob import Request

from hashstatic import HashStatic, watch
from tests.conftest import unprivileged
from tests.servers import running
from tests.test_middleware import wrap

FILES = {
    "js/app.js": b"console.log('app');\n" * 20,
    "img/logo.png": b"\x89PNG fake",
    "data/big.bin": bytes(range(256)) * 4096,  # 1 MiB
}
PAGE = b'<p>page</p><script src="/static/js/app.js"></script><img src="/static/img/logo.png">'
HTML = [("Content-Type", "text/html; charset=utf-8")]


class Boom(Exception):
    """The application's own failure."""


@pytest.fixture(autouse=True)
def no_descriptor_is_left_open() -> Iterator[None]:
    """Every test ends with as many open file descriptors as it started with."""
    if not os.path.isdir("/proc/self/fd"):
        yield
        return
    # The process's one inotify descriptor is made on first use and kept: make it first.
    watch._current()
    before = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    for name, data in FILES.items():
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_bytes(data)
    return static


@pytest.fixture(params=["dev", "manifest"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What hashstatic logged at WARNING or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] == "hashstatic" and r.levelno >= logging.WARNING
    ]


# --- an application that fails, and a server-side driver --------------------------------------


@dataclass
class Body:
    """An app's body: ``chunks``, then ``error`` (if any) instead of the next one; ``endless``
    repeats the chunks (up to a bound). Counts close() calls."""

    chunks: list[bytes]
    error: BaseException | None = None
    endless: bool = False
    closes: int = 0
    sent: int = 0
    closed: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.endless and self.sent < 100_000:
            self.sent += 1
            # A body made at about 64 MB/s, not as fast as memory goes: waitress then finds
            # the client gone on a write of its own, rather than racing its worker's flush.
            time.sleep(0.001)
            return self.chunks[self.sent % len(self.chunks)]
        if self.sent < len(self.chunks):
            self.sent += 1
            return self.chunks[self.sent - 1]
        if self.error is not None:
            raise self.error
        raise StopIteration

    def close(self) -> None:
        self.closes += 1
        self.closed.set()


def failing_app(
    body: Body | None = None,
    *,
    before: BaseException | None = None,
    after: BaseException | None = None,
    headers: list[tuple[str, str]] = HTML,
) -> Callable[..., Iterable[bytes]]:
    """Raises ``before`` start_response, or ``after`` it, or returns ``body``."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if before is not None:
            raise before
        start_response("200 OK", list(headers))
        if after is not None:
            raise after
        assert body is not None
        return body

    return app


@dataclass
class Served:
    status: str | None = None  # what reached the server's start_response
    body: bytes = b""
    error: BaseException | None = None  # what reached the server


def drive(app: Any, path: str = "/page", **environ: Any) -> Served:
    """Run ``app`` (checked by wsgiref's validator) as a WSGI server would: call it, iterate
    the body, close it whatever happens, and keep the error that reached the server."""
    env = Request.blank(path).environ
    env.update(environ)
    served = Served()
    chunks: list[bytes] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
        served.status = status
        return chunks.append

    try:
        result = validator(app)(env, start_response)
    except Boom as error:
        served.error = error
        return served
    try:
        for chunk in result:
            chunks.append(chunk)
    except Boom as error:
        served.error = error
    finally:
        result.close()  # type: ignore[attr-defined]
    served.body = b"".join(chunks)
    return served


# --- the app raising --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html", "text/plain"])
def test_error_before_start_response_reaches_the_server(
    root: Path, mode: str, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = Boom("before start_response")
    app = wrap(failing_app(before=error, headers=[("Content-Type", content_type)]), root, mode)
    served = drive(app)
    assert served.error is error
    assert served.status is None  # the server is free to send its own 500
    assert ours(caplog) == []  # the server logs it; hashstatic neither hides nor repeats it


@pytest.mark.parametrize("content_type", ["text/html", "text/plain"])
def test_error_after_start_response_reaches_the_server(
    root: Path, mode: str, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = Boom("after start_response")
    app = wrap(failing_app(after=error, headers=[("Content-Type", content_type)]), root, mode)
    served = drive(app)
    assert served.error is error
    # Nothing reached the server yet (the middleware waits for the app's first body), so it
    # can still answer 500 instead of a half-sent 200.
    assert served.status is None
    assert ours(caplog) == []


BODIES = [
    pytest.param(HTML, id="html-streamed"),
    pytest.param([*HTML, ("ETag", '"v1"')], id="html-with-etag"),
    pytest.param([("Content-Type", "text/plain")], id="untouched"),
]


@pytest.mark.parametrize("headers", BODIES)
@pytest.mark.parametrize("after", [0, 2], ids=["before-first-chunk", "mid-stream"])
def test_error_in_the_body_reaches_the_server_and_closes_once(
    root: Path, mode: str, headers: list[tuple[str, str]], after: int
) -> None:
    chunks = [PAGE[:20], PAGE[20:], b"<p>more</p>"]
    whole = drive(wrap(failing_app(Body(chunks), headers=headers), root, mode)).body
    error = Boom("mid-stream")
    body = Body(chunks[:after], error=error)
    served = drive(wrap(failing_app(body, headers=headers), root, mode))
    assert served.error is error
    assert body.closes == 1
    # What was sent before the error is a prefix of the full answer, never other bytes.
    assert whole.startswith(served.body)
    assert len(whole) > len(served.body)


def test_failing_file_wrapper_closes_the_file(root: Path) -> None:
    # A server whose file_wrapper fails: the error reaches it, and the file opened is closed
    # (the autouse fixture counts descriptors).
    def broken_wrapper(file: Any, block_size: int) -> Any:
        raise Boom("file_wrapper")

    app = HashStatic(failing_app(Body([])), root)
    served = drive(app, "/static/js/app.js", **{"wsgi.file_wrapper": broken_wrapper})
    assert isinstance(served.error, Boom)


def test_error_under_waitress_is_a_500_and_the_server_logs_it(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    error = Boom("the app failed before its first byte")
    body = Body([], error=error)
    with running(HashStatic(failing_app(body), root), threads=1) as port:
        status, data, _ = fetch(port, "/page")
        assert body.closed.wait(10)
    assert status == 500
    assert b"the app failed" not in data  # no traceback for the client
    assert body.closes == 1
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is error]
    assert [r.name for r in logged] == ["waitress"]
    assert "/page" in logged[0].getMessage()
    assert ours(caplog) == []


@pytest.mark.parametrize("headers", BODIES[::2])
def test_error_mid_stream_under_waitress_cuts_the_response(
    root: Path, headers: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    error = Boom("the app failed mid-stream")
    body = Body([PAGE, b"x" * 100_000], error=error)
    with running(HashStatic(failing_app(body, headers=headers), root), threads=1) as port:
        status, data, problem = fetch(port, "/page")
        assert body.closed.wait(10)
    # The headers were out: the client must see a cut response, never a complete one.
    assert status == 200
    assert isinstance(problem, http.client.IncompleteRead)
    assert body.closes == 1
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [error]


@pytest.mark.parametrize("content_type", ["text/html", "text/plain"])
def test_headers_the_server_refuses_still_close_the_body(
    root: Path, mode: str, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The middleware hands the app's headers to the server only once the app has returned
    # its body; when the server then refuses them, that body must still be closed.
    headers = [("Content-Type", content_type), ("X-Bad", "line\nbreak")]
    body = Body([PAGE])
    with running(wrap(failing_app(body, headers=headers), root, mode), threads=1) as port:
        status, _, _ = fetch(port, "/page")
    assert status == 500
    assert body.closes == 1
    assert any(r.name == "waitress" and r.exc_info for r in caplog.records)


def fetch(port: int, path: str) -> tuple[int, bytes, Exception | None]:
    """GET over HTTP/1.1 with keep-alive, so that a cut chunked body shows."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        try:
            return response.status, response.read(), None
        except http.client.IncompleteRead as problem:
            return response.status, problem.partial, problem
    finally:
        connection.close()


# --- clients that go away ---------------------------------------------------------------------


def disconnect_after_first_bytes(port: int, path: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # Reset, not a polite close: the server finds out on its next write.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


@pytest.mark.parametrize("headers", BODIES[::2])
def test_client_gone_mid_response_closes_the_body_once(
    root: Path, headers: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = Body([PAGE, b"<p>" + b"x" * 65536 + b"</p>"], endless=True)
    with running(HashStatic(failing_app(body, headers=headers), root), threads=1) as port:
        disconnect_after_first_bytes(port, "/page")
        assert body.closed.wait(10)
        # The server stopped asking for chunks long before the body's end.
        assert body.sent < 100_000
    assert body.closes == 1
    assert any("disconnected" in r.getMessage() for r in caplog.records if r.name == "waitress")
    assert ours(caplog) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_client_gone_while_a_file_streams_closes_the_file(root: Path) -> None:
    (root / "data/huge.bin").write_bytes(b"\0" * (32 << 20))
    with running(HashStatic(failing_app(Body([])), root), threads=1) as port:
        idle = len(os.listdir("/proc/self/fd"))
        disconnect_after_first_bytes(port, "/static/data/huge.bin")
        # The server drops the file when it notices the client has gone, while it runs on
        # (the fixture checks again once it has stopped).
        deadline = time.monotonic() + 10
        while len(os.listdir("/proc/self/fd")) > idle:
            if time.monotonic() > deadline:
                pytest.fail("a descriptor was still open 10 s after the client left")
            time.sleep(0.02)


# --- files that cannot be served --------------------------------------------------------------


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A root that an unprivileged user can reach (pytest's tmp_path is root's alone)."""
    with tempfile.TemporaryDirectory() as name:
        base = Path(name)
        base.chmod(0o755)
        static = base / "static"
        for path, data in FILES.items():
            (static / path).parent.mkdir(parents=True, exist_ok=True)
            (static / path).write_bytes(data)
        for directory in (static, static / "js", static / "img", static / "data"):
            directory.chmod(0o755)
        yield static


def page_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/page":
        start_response("200 OK", list(HTML))
        return [PAGE]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"the app's own 404"]


def test_unreadable_file_is_404_logged_once_and_left_unhashed(
    open_root: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    (open_root / "js/app.js").chmod(0)  # before anything hashes it (root reads it anyway)
    app = wrap(page_app, open_root, mode)
    asset = "/static/js/app." + hashlib.md5(FILES["js/app.js"]).hexdigest()[:12] + ".js"
    with unprivileged():
        pages = [drive(app, "/page") for _ in range(3)]
        answers = [drive(app, path) for path in ("/static/js/app.js", asset, asset)]
    for page in pages:
        assert page.status == "200 OK"
        assert page.error is None
        # Development: the URL is left as it was; a manifest still names the hashed file.
        assert (b'"/static/js/app.js"' in page.body) == (mode == "dev")
        assert b"/static/img/logo." in page.body
    for answer in answers:
        assert answer.error is None
        assert answer.status is not None and answer.status.startswith("404")
        assert FILES["js/app.js"] not in answer.body
    [line] = ours(caplog)
    assert "js/app.js" in line
    assert "cannot be opened (Permission denied)" in line


def test_fifo_in_the_root_is_404_logged_and_never_blocks(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(root / "js/pipe.js")
    app = HashStatic(page_app, root)
    answers = [drive(app, "/static/js/pipe.js") for _ in range(2)]
    assert [a.status for a in answers] == ["404 Not Found"] * 2
    [line] = ours(caplog)
    assert "js/pipe.js" in line
    assert "not a regular file" in line


def test_symlink_out_of_the_root_is_logged_once(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "elsewhere.js").write_bytes(b"outside")
    (root / "js/linked.js").symlink_to(tmp_path / "elsewhere.js")
    app = HashStatic(page_app, root)
    answers = [drive(app, "/static/js/linked.js") for _ in range(3)]
    assert [a.body for a in answers if b"outside" in a.body] == []
    assert {a.status for a in answers} == {"404 Not Found"}
    [line] = ours(caplog)
    assert "js/linked.js" in line
    assert "leads outside the static root" in line


def test_file_added_after_the_manifest_is_logged(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = wrap(page_app, root, "manifest")
    (root / "js/late.js").write_bytes(b"late")
    assert drive(app, "/static/js/late.js").status == "404 Not Found"
    [line] = ours(caplog)
    assert "js/late.js" in line
    assert "not in the manifest" in line


def test_file_in_the_manifest_missing_on_disk_is_logged(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = wrap(page_app, root, "manifest")
    asset = app.url("js/app.js")
    (root / "js/app.js").unlink()
    answers = [drive(app, path) for path in (asset, asset, "/static/js/app.js")]
    assert {a.body for a in answers} == {b"the app's own 404"}
    [line] = ours(caplog)
    assert "js/app.js" in line
    assert "in the manifest but missing" in line


def test_ordinary_misses_and_refusals_log_nothing(
    root: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    (root / ".env").write_bytes(b"dotfile")
    app = wrap(page_app, root, mode)
    for path in (
        "/static/js/missing.js",
        "/static/js/missing.0123456789ab.js",
        "/static/js/app.0123456789ab.js",
        "/static/js/",
        "/static/../secret",
        "/static/.env",
        "/static/%ff",
        "/nothing",
    ):
        assert drive(app, path).error is None
    assert ours(caplog) == []


def test_file_cut_short_while_sent_is_logged(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = HashStatic(page_app, root)
    env = Request.blank("/static/data/big.bin").environ

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
        return lambda data: None

    result = app(env, start_response)
    try:
        first = next(iter(result))
        (root / "data/big.bin").write_bytes(b"")
        rest = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    assert len(first + rest) < len(FILES["data/big.bin"])
    [line] = ours(caplog)
    assert "data/big.bin" in line
    assert "shrank while it was being sent" in line


# --- the root removed at run time -------------------------------------------------------------


def test_root_removed_at_run_time(root: Path, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    app = wrap(page_app, root, mode)
    hashed = app.url("js/app.js")
    before = drive(app, "/page")
    assert hashed.encode() in before.body
    saved = root.parent / "saved"
    shutil.copytree(root, saved)
    shutil.rmtree(root)

    pages = [drive(app, "/page") for _ in range(3)]
    assets = [drive(app, path) for path in (hashed, "/static/js/app.js", hashed)]
    for page in pages:
        assert (page.status, page.error) == ("200 OK", None)
        # Development: URLs are left alone (nothing to hash); a manifest keeps its names.
        expected = hashed if mode == "manifest" else "/static/js/app.js"
        assert f'"{expected}"'.encode() in page.body
    for answer in assets:
        # Passed to the application, as any missing file is: here its own 404.
        assert (answer.status, answer.body, answer.error) == (
            "404 Not Found",
            b"the app's own 404",
            None,
        )
    [gone] = ours(caplog)
    assert str(root) in gone
    assert "no longer exists" in gone

    shutil.copytree(saved, root)
    assert drive(app, hashed).body == FILES["js/app.js"]
    assert hashed.encode() in drive(app, "/page").body
    assert stat.S_ISDIR(os.stat(root).st_mode)


def test_pages_without_the_file_server_log_what_the_index_cannot_read(
    open_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """serve=False: nothing serves the files, so the index itself says once why a URL stays
    unhashed (a file it cannot read, a root that is gone)."""
    root = open_root / "static"
    (root / "css").mkdir(parents=True)
    secret = root / "css/locked.css"
    secret.write_bytes(b"b {}")
    secret.chmod(0o600)
    (root / "css/open.css").write_bytes(b"a {}")
    for path in (root, root / "css"):
        path.chmod(0o755)
    (root / "css/open.css").chmod(0o644)
    page = b'<link href="/static/css/locked.css"><link href="/static/css/open.css">'

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [page]

    mw = HashStatic(app, root, serve=False)
    with caplog.at_level(logging.WARNING, logger="hashstatic"), unprivileged():
        first = Request.blank("/").get_response(mw).body
        second = Request.blank("/").get_response(mw).body
    assert b"locked.css" in first and b"open.css" not in first and first == second
    unreadable = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(unreadable) == 1 and "locked.css" in unreadable[0].getMessage()
    caplog.clear()
    gone = open_root / "gone"
    root.rename(gone)
    with caplog.at_level(logging.WARNING, logger="hashstatic"):
        for _ in range(2):
            assert Request.blank("/").get_response(mw).body == page
    missing = [r for r in caplog.records if "no longer exists" in r.getMessage()]
    assert len(missing) == 1
