"""Prepared responses: a hashed URL served immutable once is answered again from what was
sent -- byte for byte what the full path answers, refused whenever that could differ."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from hashstatic.cache import AssetIndex
from hashstatic.files import IMMUTABLE, FileServer
from hashstatic.middleware import HashStatic
from tests.test_files import FILES, JS_ETAG, JS_HASHED, PREFIX, h, make_index, make_tree, md5

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
    index: AssetIndex, root: Path, path: str, headers: dict[str, str], coding: str | None
) -> None:
    server = FileServer(index, root)
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
    index: AssetIndex, root: Path, method: str, headers: dict[str, str]
) -> None:
    server = FileServer(index, root)
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
    index: AssetIndex, root: Path, mode: str
) -> None:
    server = FileServer(index, root)
    full(server, JS_HASHED)
    assert prepared(server, JS_HASHED) is not None
    new = b"console.log('changed, same length!!');\n" * 20
    assert len(new) != len(FILES["js/app.js"])
    temp = root / "js/app.js.new"
    temp.write_bytes(new)
    os.replace(temp, root / "js/app.js")
    assert prepared(server, JS_HASHED) is None
    status, headers, body = full(server, JS_HASHED)
    assert ("Cache-Control", IMMUTABLE) not in headers
    assert body == new


def test_same_size_replacement_in_a_manifest_deploy(root: Path) -> None:
    """With a manifest, the prepared answer checks the file's identity, so a file replaced
    with one of the same size is not sent from it (the full path judges it by size, as it
    always has with a manifest, which records no times)."""
    index = make_index(root, "frozen")
    server = FileServer(index, root)
    full(server, JS_HASHED)
    old = FILES["js/app.js"]
    (root / "js/app.js.new").write_bytes(old.upper())
    os.replace(root / "js/app.js.new", root / "js/app.js")
    assert prepared(server, JS_HASHED) is None


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
    root: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Development: one stat to know the hash is current (a stylesheet's dependencies are
    not looked at again), and one open for a 200. Manifest: nothing for a 304, one open for a
    200; a rewritten stylesheet is sent from memory."""
    index = make_index(root, mode)
    server = FileServer(index, root)
    css = hashed(index, FONTS_CSS)
    for url in (JS_HASHED, css):
        full(server, url)
    counted = Counted(monkeypatch)
    expected = {
        ("disk", JS_HASHED): (["stat", "open"], ["stat"]),
        ("disk", css): (["stat"], ["stat"]),
        ("frozen", JS_HASHED): (["open"], []),
        ("frozen", css): ([], []),
    }
    for url in (JS_HASHED, css):
        ok, not_modified = expected[(mode, url)]
        counted.calls.clear()
        answer = prepared(server, url)
        assert answer is not None and answer[0] == "200 OK"
        assert counted.calls == ok, url
        counted.calls.clear()
        tag = dict(answer[1])["ETag"]
        assert prepared(server, url, headers={"If-None-Match": tag}) is not None
        assert counted.calls == not_modified, url


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
    # From disk, one stat; none where the index watches and the kernel reports no change.
    watching = getattr(app.index, "watching", False)
    assert counted.calls == (["stat"] if mode == "disk" and not watching else [])
    if mode == "disk":
        assert watching  # the test tree is on a local disk, where HashStatic watches
        without = HashStatic(page, root, watch=False)
        assert Request.blank(url).get_response(without).body == first.body
        counted.calls.clear()
        tag = {"If-None-Match": first.headers["ETag"]}
        assert Request.blank(url, headers=tag).get_response(without).status_int == 304
        assert counted.calls == ["stat"]
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
