"""Prepared responses: a hashed URL served immutable once is answered again from what was
sent -- byte for byte what the full path answers, refused whenever that could differ; small
files from the bytes held in memory, larger ones (and all of them with ``hold_limit=0``) from
the file opened again."""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from hashstatic.cache import AssetIndex
from hashstatic.files import IMMUTABLE, FileServer
from hashstatic.middleware import HashStatic
from hashstatic.prepared import hold, identity
from tests.servers import running
from tests.test_files import (
    FILES,
    JS,
    JS_ETAG,
    JS_HASHED,
    PREFIX,
    app_for,
    h,
    make_index,
    make_tree,
    md5,
)

Answer = tuple[str, list[tuple[str, str]], bytes]


def environ(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    request = Request.blank("/", method=method, headers=headers or {})
    request.environ["PATH_INFO"] = PREFIX + path
    return request.environ


def full(server: FileServer, path: str, **request: Any) -> Answer:
    env = environ(path, **request)
    responder = server.serve(env, path)
    assert responder is not None
    return call(lambda e, s: responder(e, s), env)


def prepared(server: FileServer, path: str, **request: Any) -> Answer | None:
    env = environ(path, **request)
    started: list[Any] = []
    body = server.respond_prepared(env, lambda s, h, e=None: started.append((s, h)))
    if body is None:
        assert not started
        return None
    return read(started, body)


def call(app: Any, env: dict[str, Any]) -> Answer:
    started: list[Any] = []
    body = app(env, lambda s, h, e=None: started.append((s, h)))
    return read(started, body)


def read(started: list[Any], body: Iterable[bytes]) -> Answer:
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    ((status, headers),) = started
    return status, list(headers), data


@pytest.fixture(params=["disk", "frozen"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


@pytest.fixture
def index(root: Path, mode: str) -> AssetIndex:
    return make_index(root, mode)


@pytest.fixture(params=["held", "opened"])
def holding(request: pytest.FixtureRequest) -> str:
    """Whether small files are held in memory (the default) or opened for every 200."""
    return str(request.param)


@pytest.fixture
def make_server(holding: str) -> Callable[[AssetIndex, Path], FileServer]:
    def make(index: AssetIndex, root: Path) -> FileServer:
        return FileServer(index, root, hold_limit=2**20 if holding == "held" else 0)

    return make


FONTS_CSS = "css/fonts.css"  # served rewritten: its url() names the font's hash


def hashed(index: AssetIndex, path: str) -> str:
    asset = index.lookup(path)
    assert asset is not None
    return asset.hashed


URLS = [
    pytest.param("js/app.js", {}, None, id="script"),
    pytest.param("js/app.js", {"Accept-Encoding": "gzip"}, "gzip", id="gzip-sibling"),
    pytest.param("js/app.js", {"Accept-Encoding": "br, gzip"}, "br", id="br-sibling"),
    pytest.param("img/logo.png", {}, None, id="image"),
    pytest.param(FONTS_CSS, {}, None, id="stylesheet-rewritten"),
    pytest.param("fonts/a.woff2", {}, None, id="font"),
]


@pytest.mark.parametrize(("path", "headers", "coding"), URLS)
def test_prepared_answers_are_the_full_answers(
    index: AssetIndex,
    root: Path,
    make_server: Callable[[AssetIndex, Path], FileServer],
    path: str,
    headers: dict[str, str],
    coding: str | None,
) -> None:
    server = make_server(index, root)
    url = hashed(index, path)
    assert prepared(server, url, headers=headers) is None  # nothing sent yet
    first = full(server, url, headers=headers)
    assert first[0] == "200 OK" and ("Cache-Control", IMMUTABLE) in first[1]
    assert (("Content-Encoding", coding) in first[1]) == (coding is not None)
    etag = dict(first[1])["ETag"]
    for method, extra in [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"If-None-Match": etag}),
        ("HEAD", {"If-None-Match": etag}),
    ]:
        request = {"method": method, "headers": {**headers, **extra}}
        again = prepared(server, url, **request)
        assert again is not None, (method, extra)
        assert again == full(server, url, **request)
    assert prepared(server, url, headers=headers, method="GET")[2] == first[2]  # type: ignore[index]


REFUSED = [
    pytest.param("GET", {"Range": "bytes=0-3"}, id="range"),
    pytest.param("POST", {}, id="post"),
    pytest.param("GET", {"If-None-Match": '"other"'}, id="other-etag"),
    pytest.param("GET", {"If-None-Match": f'"x", {JS_ETAG}'}, id="etag-list"),
    pytest.param("GET", {"If-None-Match": f"W/{JS_ETAG}"}, id="weak-etag"),
    pytest.param("GET", {"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"}, id="date"),
    pytest.param("GET", {"Accept-Encoding": "gzip"}, id="other-accept-encoding"),
]


@pytest.mark.parametrize(("method", "headers"), REFUSED)
def test_what_the_full_path_must_answer_is_refused(
    index: AssetIndex,
    root: Path,
    make_server: Callable[[AssetIndex, Path], FileServer],
    method: str,
    headers: dict[str, str],
) -> None:
    server = make_server(index, root)
    full(server, JS_HASHED)
    assert prepared(server, JS_HASHED) is not None
    assert prepared(server, JS_HASHED, method=method, headers=headers) is None
    # The full path still answers these, as the file server always did.
    assert full(server, JS_HASHED, method=method, headers=headers)[0] != ""


def test_unhashed_and_stale_urls_are_never_prepared(index: AssetIndex, root: Path) -> None:
    server = FileServer(index, root)
    for url in ("js/app.js", "js/app.0123456789ab.js"):
        answer = full(server, url)
        assert ("Cache-Control", "no-cache") in answer[1]
        assert prepared(server, url) is None


def test_a_changed_file_is_never_sent_from_the_prepared_answer(
    index: AssetIndex,
    root: Path,
    mode: str,
    holding: str,
    make_server: Callable[[AssetIndex, Path], FileServer],
) -> None:
    """In development the stat sees the change and the full path answers, revalidated. With
    a manifest (no stat) the held bytes, still the ones the hash names, are sent; a file that
    is opened again is refused, having another identity."""
    server = make_server(index, root)
    full(server, JS_HASHED)
    assert prepared(server, JS_HASHED) is not None
    new = b"console.log('changed, same length!!');\n" * 20
    assert len(new) != len(FILES["js/app.js"])
    temp = root / "js/app.js.new"
    temp.write_bytes(new)
    os.replace(temp, root / "js/app.js")
    again = prepared(server, JS_HASHED)
    if mode == "frozen" and holding == "held":
        assert again is not None and again[2] == JS
        assert f'"{md5(again[2])}"' == dict(again[1])["ETag"]
    else:
        assert again is None
    status, headers, body = full(server, JS_HASHED)
    assert ("Cache-Control", IMMUTABLE) not in headers
    assert body == new


def test_same_size_replacement_in_a_manifest_deploy(
    root: Path, holding: str, make_server: Callable[[AssetIndex, Path], FileServer]
) -> None:
    """With a manifest, a file replaced with one of the same size is never sent from the
    prepared answer: the held bytes are the old ones, the hash's; a file opened again has
    another identity and is refused (the full path judges it by size, as it always has with
    a manifest, which records no times)."""
    index = make_index(root, "frozen")
    server = make_server(index, root)
    full(server, JS_HASHED)
    old = FILES["js/app.js"]
    (root / "js/app.js.new").write_bytes(old.upper())
    os.replace(root / "js/app.js.new", root / "js/app.js")
    again = prepared(server, JS_HASHED)
    if holding == "held":
        assert again is not None and again[2] == old
    else:
        assert again is None


def test_bytes_not_matching_the_digest_are_never_immutable(root: Path) -> None:
    """A file that fstat says is the version hashed, but whose bytes are not: with a
    manifest, which records no times, a same-size file deployed without its manifest (from
    disk, the same happens when a reused inode, the same size and mtime and ctimes within one
    clock tick meet). A small file is read and its MD5 checked before it is called
    immutable: it is sent no-cache, and never answered again from memory or file."""
    index = make_index(root, "frozen")
    (root / "js/app.js.new").write_bytes(JS.upper())
    os.replace(root / "js/app.js.new", root / "js/app.js")
    server = FileServer(index, root)
    status, headers, body = full(server, JS_HASHED)
    assert body == JS.upper()
    assert dict(headers)["Cache-Control"] == "no-cache"
    assert prepared(server, JS_HASHED) is None
    os.replace(root / "js/app.js", root / "js/app.js.upper")
    (root / "js/app.js").write_bytes(JS)  # the bytes hashed again: immutable again
    status, headers, body = full(server, JS_HASHED)
    assert (body, dict(headers)["Cache-Control"]) == (JS, IMMUTABLE)


def test_hold_takes_only_the_version_verified(tmp_path: Path) -> None:
    path = tmp_path / "a.js"
    path.write_bytes(JS)
    with open(path, "rb", buffering=0) as file:
        verified = identity(os.fstat(file.fileno()))
        file.seek(7)
        assert hold(file, len(JS), verified, md5(JS)) == JS
        assert file.tell() == 7  # the full path streams the same file afterwards
        assert hold(file, len(JS), verified, None) == JS  # a sibling: no digest to check
        assert hold(file, len(JS), verified, md5(b"other bytes")) is None
        assert hold(file, len(JS) - 1, verified, None) is None  # longer than verified
        with open(path, "ab") as writer:  # written in place: another size and ctime
            writer.write(b"// more\n")
        assert hold(file, len(JS), verified, None) is None
        assert hold(file, len(JS) + 8, identity(os.fstat(file.fileno())), None) is not None


class Counted:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("stat", "open", "lstat"):
            real = getattr(os, name)
            monkeypatch.setattr(os, name, self.counting(name, real))

    def counting(self, name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return real(*args, **kwargs)

        return wrapper


def test_file_system_calls_per_request(
    root: Path,
    mode: str,
    holding: str,
    make_server: Callable[[AssetIndex, Path], FileServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Development: one stat to know the hash is current (a stylesheet's dependencies are
    not looked at again), and one open for a 200 of a file not held. Manifest: nothing for a
    304, one open for a 200 of a file not held; a rewritten stylesheet is sent from memory."""
    index = make_index(root, mode)
    server = make_server(index, root)
    css = hashed(index, FONTS_CSS)
    for url in (JS_HASHED, css):
        full(server, url)
    counted = Counted(monkeypatch)
    stat = ["stat"] if mode == "disk" else []
    opened = [] if holding == "held" else ["open"]
    expected = {JS_HASHED: (stat + opened, stat), css: (stat, stat)}
    for url in (JS_HASHED, css):
        ok, not_modified = expected[url]
        counted.calls.clear()
        answer = prepared(server, url)
        assert answer is not None and answer[0] == "200 OK"
        assert counted.calls == ok, url
        counted.calls.clear()
        tag = dict(answer[1])["ETag"]
        assert prepared(server, url, headers={"If-None-Match": tag}) is not None
        assert counted.calls == not_modified, url


SMALL = ["js/app.js", "img/logo.png", "fonts/a.woff2"]


def test_files_past_the_limit_or_the_budget_are_opened(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held bytes are counted: what does not fit is sent from its file, and the room an entry
    leaves when its file changes is used by the next entry made."""
    index = make_index(root, "disk")
    js, logo, font = (len(FILES[path]) for path in SMALL)
    server = FileServer(index, root, hold_limit=js, hold_budget=js + logo + font - 1)
    urls = [hashed(index, path) for path in SMALL]
    for url in urls:
        full(server, url)
    data = root / "data/big.bin"  # over the limit, whatever the room
    full(server, hashed(index, "data/big.bin"))
    counted = Counted(monkeypatch)

    def opens(url: str) -> int:
        counted.calls.clear()
        answer = prepared(server, url)
        assert answer is not None and answer[0] == "200 OK"
        return counted.calls.count("open")

    assert [opens(url) for url in urls] == [0, 0, 1]  # the font did not fit
    assert opens(hashed(index, "data/big.bin")) == 1 and data.stat().st_size > js
    (root / "js/app.js.new").write_bytes(b"changed();\n")
    os.replace(root / "js/app.js.new", root / "js/app.js")
    assert prepared(server, urls[0]) is None  # forgotten: its bytes no longer count
    full(server, urls[2])  # the font's entry made again, now with room
    assert opens(urls[2]) == 0


def test_the_middleware_answers_from_prepared_responses(
    root: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not here"]

    manifest = None
    if mode == "frozen":
        from hashstatic.manifest import build_manifest, write_manifest

        manifest = root.parent / "manifest.json"
        write_manifest(build_manifest(root), manifest)
    app = HashStatic(page, root, manifest=manifest)
    url = PREFIX + f"js/app.{h('js/app.js')}.js"
    first = Request.blank(url).get_response(app)
    assert first.status_int == 200 and first.body == FILES["js/app.js"]
    counted = Counted(monkeypatch)
    second = Request.blank(url, headers={"If-None-Match": first.headers["ETag"]}).get_response(app)
    assert second.status_int == 304
    # At most one stat: none where the kernel reports changes (see hashstatic.watch).
    watching = getattr(app.index, "watching", True)
    assert counted.calls == (["stat"] if mode == "disk" and not watching else [])
    assert md5(first.body) == first.headers["ETag"].strip('"')


def test_a_changed_stylesheet_makes_its_old_hash_stale(root: Path) -> None:
    """In development a stylesheet is sent from memory: whether its hash is still current is
    what the stat tells, and an old hash gets the new bytes, revalidated."""
    index = make_index(root, "disk")
    server = FileServer(index, root)
    url = hashed(index, FONTS_CSS)
    full(server, url)
    assert prepared(server, url) is not None
    (root / FONTS_CSS).write_bytes(b'@font-face { src: url("../fonts/a.woff2") } /* 2 */\n')
    assert prepared(server, url) is None
    status, headers, body = full(server, url)
    assert ("Cache-Control", "no-cache") in headers and body.endswith(b"/* 2 */\n")


def test_held_answers_over_waitress_keep_the_connection(
    mode: str, root: Path, figures: Callable[[str], None]
) -> None:
    """Through a real server, a held body goes out with its Content-Length on a connection
    that stays open, byte for byte the file's, for GET and HEAD, 304 after."""
    index = make_index(root, mode)
    answers: list[tuple[str, int, http.client.HTTPMessage, bytes]] = []
    sockets: set[int] = set()
    with running(app_for(FileServer(index, root)), threads=2) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for method in ["GET", "GET", "HEAD", "GET"] * 5:
                connection.request(method, PREFIX + JS_HASHED)
                response = connection.getresponse()
                answers.append((method, response.status, response.headers, response.read()))
                assert not response.will_close
                sockets.add(id(connection.sock))
            connection.request("GET", PREFIX + JS_HASHED, headers={"If-None-Match": JS_ETAG})
            not_modified = connection.getresponse()
            assert (not_modified.status, not_modified.read()) == (304, b"")
        finally:
            connection.close()
    assert len(sockets) == 1  # never closed, never reopened
    for method, status, message, body in answers:
        assert (status, body) == (200, JS if method == "GET" else b"")
        assert message["Content-Length"] == str(len(JS))
        assert message["ETag"] == JS_ETAG and message["Cache-Control"] == IMMUTABLE
    figures(f"{len(answers) + 1} requests served on one waitress connection, 0 errors")
