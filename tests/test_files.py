"""The file server: caching headers by kind of URL, unsafe paths, validators, conditional
requests, ranges, precompressed siblings and streaming -- every table in both modes (hashes
from the disk, and frozen in a manifest)."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

import pytest
from webob import Request, Response

from hashstatic import files
from hashstatic.cache import Asset, AssetIndex, DiskIndex, FrozenIndex
from hashstatic.files import IMMUTABLE, FileServer
from hashstatic.manifest import build_manifest
from hashstatic.mimetypes import content_type
from hashstatic.naming import hashed_name, split_hash
from tests.servers import running

PREFIX = "/static/"
T0 = 1_700_000_000  # every file's mtime, so Last-Modified is known
SECRET = b"TOP-SECRET next to the root"
DOT_SECRET = b"DOTFILE-SECRET inside the root"
CSS = b"body { color: red }\n"
JS = b"console.log('hello, world');\n" * 20
JS_GZ = gzip.compress(JS, mtime=0)
JS_BR = b"\x1b\x4c\x02\x00fake brotli bytes"
OWN = b"a build directory's copy"
BIG = bytes(range(256)) * 1000

FILES = {
    "css/site.css": CSS,
    "css/fonts.css": b'@font-face { src: url("../fonts/a.woff2") }\n',
    "js/app.js": JS,
    "js/app.js.br": JS_BR,
    "js/app.js.gz": JS_GZ,
    "js/app.min.js": b"min()",
    "img/logo.png": b"\x89PNG\r\n\x1a\nfake",
    "img/café.png": b"caf\xc3\xa9 bytes",
    "fonts/a.woff2": b"wOF2 fake",
    "LICENSE": b"MIT License\n",
    "data/empty.txt": b"",
    "data/big.bin": BIG,
    "index.html": b"<p>a page</p>",
    "vendor/lib.0123456789ab.js": b"a file whose name only looks hashed",
    f"vendor/own.{hashlib.md5(OWN).hexdigest()[:12]}.js": OWN,
    ".env": DOT_SECRET,
    ".git/config": DOT_SECRET,
    "css/.hidden.css": DOT_SECRET,
    "types/a.mjs": b"export {}",
    "types/a.svg": b"<svg/>",
    "types/a.json": b"{}",
    "types/a.json.gz": b"stale gzip of an older a.json",  # older than a.json
    "types/a.map": b"{}",
    "types/a.webmanifest": b"{}",
    "types/a.wasm": b"\x00asm",
    "types/a.ico": b"\x00\x00\x01\x00",
    "types/a.avif": b"avif",
    "types/a.webp": b"RIFF",
    "types/a.woff": b"wOFF",
    "types/a.unknown": b"?",
}
MTIMES = {"js/app.js.br": T0 + 10, "js/app.js.gz": T0 + 10, "types/a.json.gz": T0 - 10}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def h(name: str) -> str:
    return md5(FILES[name])[:12]


def wsgi(path: str) -> str:
    """A path as a WSGI server puts it in PATH_INFO: the URL's bytes, decoded as latin-1."""
    return path.encode("utf-8").decode("latin-1")


CSS_HASHED = f"css/site.{h('css/site.css')}.css"
JS_HASHED = f"js/app.{h('js/app.js')}.js"
JS_ETAG = f'"{md5(JS)}"'
LAST_MODIFIED = formatdate(T0, usegmt=True)


def make_tree(base: Path) -> Path:
    """The static root ``base/static``, with a secret next to it that must never be served."""
    static = base / "static"
    for name, data in FILES.items():
        path = static / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = MTIMES.get(name, T0) * 1_000_000_000
        os.utime(path, ns=(stamp, stamp))
    (base / "secret.txt").write_bytes(SECRET)
    (static / "emptydir").mkdir()
    (static / "img/logo.png.gz").mkdir()  # a sibling that is a directory
    (static / "img/logo.png.br").symlink_to(base / "secret.txt")  # one that leaves root
    (static / "inside.css").symlink_to("css/site.css")
    (static / "outside.txt").symlink_to(base / "secret.txt")
    (static / "outdir").symlink_to(base)
    return static


def make_index(root: Path, mode: str) -> AssetIndex:
    return DiskIndex(root) if mode == "disk" else FrozenIndex(build_manifest(root), root=root)


@pytest.fixture(scope="module", params=["disk", "frozen"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree for the tests that do not change it (most of them), built once."""
    return make_tree(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def shared_index(shared_root: Path, mode: str) -> AssetIndex:
    return make_index(shared_root, mode)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A tree of the test's own, to change."""
    return make_tree(tmp_path)


def passthrough(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


def app_for(server: FileServer) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path.startswith(PREFIX):
            response = server.serve(environ, path[len(PREFIX) :])
            if response is not None:
                return response(environ, start_response)
        return passthrough(environ, start_response)

    return app


@pytest.fixture
def make_app(shared_root: Path, shared_index: AssetIndex, mode: str) -> Callable[..., Any]:
    """An app serving the shared tree, or ``root=`` (indexed in this mode), or ``index=``."""

    def make(index: AssetIndex | None = None, root: Path | None = None, **options: Any) -> Any:
        if root is None:
            root = shared_root
            index = index or shared_index
        return app_for(FileServer(index or make_index(root, mode), root, **options))

    return make


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


def get(app: Any, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    """Request ``PREFIX + path`` with ``path`` put into PATH_INFO exactly as given."""
    request = Request.blank("/", method=method, headers=headers or {})
    request.environ["PATH_INFO"] = PREFIX + path
    response = request.get_response(app)
    response.body  # noqa: B018  -- read and close the body, as a server would
    return response


# --- Cache-Control by kind of URL -----------------------------------------------------------

CACHING = [
    pytest.param(CSS_HASHED, False, 200, IMMUTABLE, CSS, id="current-hash-immutable"),
    pytest.param(CSS_HASHED, True, 200, IMMUTABLE, CSS, id="current-hash-strict"),
    pytest.param("css/site.css", False, 200, "no-cache", CSS, id="unhashed-revalidates"),
    pytest.param("css/site.css", True, 200, "no-cache", CSS, id="unhashed-strict"),
    pytest.param("css/site.0123456789ab.css", False, 200, "no-cache", CSS, id="stale-hash"),
    pytest.param("css/site.0123456789ab.css", True, 404, None, None, id="stale-hash-strict"),
    pytest.param(
        f"js/app.min.{h('js/app.min.js')}.js", False, 200, IMMUTABLE, b"min()", id="two-dots"
    ),
    pytest.param(f"LICENSE.{h('LICENSE')}", False, 200, IMMUTABLE, FILES["LICENSE"], id="no-ext"),
    pytest.param(
        f"img/café.{h('img/café.png')}.png",
        False,
        200,
        IMMUTABLE,
        FILES["img/café.png"],
        id="utf8-name",
    ),
    pytest.param(
        "vendor/lib.0123456789ab.js",
        False,
        200,
        "no-cache",
        FILES["vendor/lib.0123456789ab.js"],
        id="literal-name-looks-hashed",
    ),
    pytest.param(
        f"vendor/own.{md5(OWN)[:12]}.js", False, 200, IMMUTABLE, OWN, id="literal-own-hash"
    ),
    pytest.param("inside.css", False, 200, "no-cache", CSS, id="symlink-inside-root"),
    pytest.param(
        f"inside.{h('css/site.css')}.css", False, 200, IMMUTABLE, CSS, id="symlink-inside-hashed"
    ),
]


@pytest.mark.parametrize(("path", "strict", "status", "cache_control", "body"), CACHING)
def test_cache_control_by_kind_of_url(
    make_app: Any, path: str, strict: bool, status: int, cache_control: str | None, body: bytes
) -> None:
    response = get(make_app(strict=strict), wsgi(path))
    assert response.status_code == status
    if status == 200:
        assert response.headers["Cache-Control"] == cache_control
        assert response.body == body
    else:
        assert body is None
        assert CSS not in response.body


def test_stale_hash_is_never_immutable(app: Any) -> None:
    for path in ("css/site.0123456789ab.css", f"css/site.{h('js/app.js')}.css"):
        response = get(app, path)
        assert "immutable" not in response.headers["Cache-Control"]
        assert "max-age" not in response.headers["Cache-Control"]


# --- what is not served here ----------------------------------------------------------------

FALLS_THROUGH = [
    pytest.param("css/missing.css", id="missing"),
    pytest.param("css/missing.0123456789ab.css", id="missing-hashed"),
    pytest.param(f"css/site.{h('css/site.css').upper()}.css", id="uppercase-hash-is-not-a-hash"),
    pytest.param("css", id="directory"),
    pytest.param("css/", id="directory-slash"),
    pytest.param("emptydir", id="empty-directory"),
    pytest.param("", id="prefix-itself"),
    pytest.param("index.html", id="html-page"),
    pytest.param("INDEX.HTM", id="htm-page-any-case"),
    pytest.param(f"index.{h('index.html')}.html", id="hashed-html-page"),
    pytest.param("css/site.css/", id="file-with-trailing-slash"),
    pytest.param("%2e%2e/secret.txt", id="double-encoded-dots-are-a-name"),
    pytest.param("outdir/", id="directory-symlink-out-slash"),
]


@pytest.mark.parametrize("path", FALLS_THROUGH)
def test_falls_through_to_the_app(app: Any, path: str) -> None:
    response = get(app, path)
    assert (response.status_code, response.body) == (200, b"app")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_on_nothing_fall_through(app: Any, method: str) -> None:
    response = get(app, "css/missing.css", method=method)
    assert response.body == b"app"


UNSAFE = [
    pytest.param("../secret.txt", id="dotdot"),
    pytest.param("css/../../secret.txt", id="dotdot-deeper"),
    pytest.param("css/../site.css", id="dotdot-that-stays-inside"),
    pytest.param("..", id="dotdot-alone"),
    pytest.param("../", id="dotdot-slash"),
    pytest.param("./css/site.css", id="dot-segment"),
    pytest.param("{secret}", id="absolute-path"),
    pytest.param("/secret.txt", id="leading-double-slash"),
    pytest.param("css//site.css", id="double-slash"),
    pytest.param("css//", id="double-slash-directory"),
    pytest.param("..\\secret.txt", id="backslash-dotdot"),
    pytest.param("css\\site.css", id="backslash"),
    pytest.param("css/site.css\x00.png", id="nul"),
    pytest.param("\xc0\xae\xc0\xae/secret.txt", id="overlong-utf8-dots"),
    pytest.param("\xc0\xaf", id="overlong-utf8-slash"),
    pytest.param("\xed\xa0\x80.css", id="utf8-surrogate"),
    pytest.param("\xff.css", id="not-utf8"),
    pytest.param(".env", id="dotfile"),
    pytest.param(".git/config", id="dot-directory"),
    pytest.param("css/.hidden.css", id="nested-dotfile"),
    pytest.param(f".env.{md5(DOT_SECRET)[:12]}", id="hashed-dotfile"),
    pytest.param("outside.txt", id="symlink-leaving-root"),
    pytest.param(f"outside.{md5(SECRET)[:12]}.txt", id="symlink-leaving-root-hashed"),
    pytest.param("outdir/secret.txt", id="directory-symlink-leaving-root"),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_404_and_read_nothing(
    app: Any, shared_root: Path, path: str, method: str
) -> None:
    response = get(app, path.format(secret=shared_root.parent / "secret.txt"), method=method)
    assert response.status_code == 404
    assert SECRET not in response.body
    assert DOT_SECRET not in response.body
    assert CSS not in response.body


# Through Request.blank, which percent-decodes the URL as a WSGI server does.
ENCODED = [
    pytest.param("/static/%2e%2e/secret.txt", 404, id="encoded-dots"),
    pytest.param("/static/%2E%2E%2Fsecret.txt", 404, id="encoded-dots-and-slash"),
    pytest.param("/static/..%2f..%2fsecret.txt", 404, id="encoded-slash"),
    pytest.param("/static/..%5csecret.txt", 404, id="encoded-backslash"),
    pytest.param("/static/css%2f..%2f..%2fsecret.txt", 404, id="encoded-slash-deeper"),
    pytest.param("/static/%00", 404, id="encoded-nul"),
    pytest.param("/static/%c0%ae%c0%ae/secret.txt", 404, id="encoded-overlong"),
    pytest.param("/static/%252e%252e/secret.txt", 200, id="double-encoded-dots"),
    pytest.param("/static/%252e%252e%252fsecret.txt", 200, id="double-encoded-slash"),
]


@pytest.mark.parametrize(("url", "status"), ENCODED)
def test_encoded_traversal_never_escapes(app: Any, url: str, status: int) -> None:
    response = Request.blank(url).get_response(app)
    assert response.status_code == status
    assert SECRET not in response.body
    assert response.body == b"app" or status == 404


def test_file_added_after_the_manifest(root: Path, mode: str, make_app: Any) -> None:
    app = make_app(root=root)
    (root / "late.css").write_bytes(b"late")
    response = get(app, "late.css")
    # Frozen: the manifest does not publish it, and a regular file is not the app's either.
    expected = 200 if mode == "disk" else 404
    assert response.status_code == expected
    assert (response.body == b"late") == (mode == "disk")


# --- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["css/site.css", CSS_HASHED, "css/site.0123456789ab.css"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_on_an_asset_are_405(app: Any, path: str, method: str) -> None:
    response = get(app, path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert CSS not in response.body


def test_post_to_a_stale_hash_in_strict_mode_is_404(make_app: Any) -> None:
    response = get(make_app(strict=True), "css/site.0123456789ab.css", method="POST")
    assert response.status_code == 404


# --- headers --------------------------------------------------------------------------------


def test_headers_of_a_file_response(app: Any) -> None:
    response = get(app, JS_HASHED)
    assert response.status_code == 200
    assert dict(response.headerlist) == {
        "Content-Type": "text/javascript; charset=utf-8",
        "Content-Length": str(len(JS)),
        "ETag": JS_ETAG,
        "Last-Modified": LAST_MODIFIED,
        "Cache-Control": IMMUTABLE,
        "Vary": "Accept-Encoding",
        "Accept-Ranges": "bytes",
    }


def test_one_etag_for_the_hashed_and_unhashed_url(app: Any) -> None:
    assert get(app, JS_HASHED).headers["ETag"] == get(app, "js/app.js").headers["ETag"]


def test_head_sends_the_get_headers_without_body(app: Any) -> None:
    for path in (JS_HASHED, "css/site.css", "data/big.bin"):
        got, head = get(app, path), get(app, path, method="HEAD")
        assert head.status_code == 200
        assert head.headerlist == got.headerlist
        assert head.body == b""


TYPES = [
    pytest.param("js/app.js", "text/javascript; charset=utf-8", id="js"),
    pytest.param("types/a.mjs", "text/javascript; charset=utf-8", id="mjs"),
    pytest.param("css/site.css", "text/css; charset=utf-8", id="css"),
    pytest.param("types/a.svg", "image/svg+xml; charset=utf-8", id="svg"),
    pytest.param("types/a.json", "application/json; charset=utf-8", id="json"),
    pytest.param("types/a.map", "application/json; charset=utf-8", id="map"),
    pytest.param(
        "types/a.webmanifest", "application/manifest+json; charset=utf-8", id="webmanifest"
    ),
    pytest.param("types/a.wasm", "application/wasm", id="wasm"),
    pytest.param("fonts/a.woff2", "font/woff2", id="woff2"),
    pytest.param("types/a.woff", "font/woff", id="woff"),
    pytest.param("types/a.avif", "image/avif", id="avif"),
    pytest.param("types/a.webp", "image/webp", id="webp"),
    pytest.param("types/a.ico", "image/x-icon", id="ico"),
    pytest.param("img/logo.png", "image/png", id="png"),
    pytest.param("LICENSE", "application/octet-stream", id="no-extension"),
    pytest.param("types/a.unknown", "application/octet-stream", id="unknown"),
    pytest.param("js/app.js.gz", "application/gzip", id="gz-asked-for-by-name"),
]


@pytest.mark.parametrize(("path", "expected"), TYPES)
def test_content_type(app: Any, path: str, expected: str) -> None:
    assert get(app, path).headers["Content-Type"] == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("A.JS", "text/javascript; charset=utf-8", id="case-insensitive"),
        pytest.param("x.tar.gz", "application/gzip", id="gz-is-a-type-not-an-encoding"),
        pytest.param(".htaccess", "application/octet-stream", id="dotfile-has-no-extension"),
        pytest.param("dir.d/file", "application/octet-stream", id="dot-in-directory"),
        pytest.param("a.txt", "text/plain; charset=utf-8", id="txt"),
        pytest.param("a.xml", "application/xml; charset=utf-8", id="xml"),
        pytest.param("a.pdf", "application/pdf", id="pdf"),
    ],
)
def test_content_type_table(name: str, expected: str) -> None:
    assert content_type(name) == expected


# --- conditional requests -------------------------------------------------------------------

FUTURE = formatdate(time.time() + 10 * 365 * 86400, usegmt=True)
CONDITIONAL = [
    pytest.param({"If-None-Match": JS_ETAG}, 304, id="inm-exact"),
    pytest.param({"If-None-Match": "W/" + JS_ETAG}, 304, id="inm-weak-compares-weakly"),
    pytest.param({"If-None-Match": f'"x", {JS_ETAG}'}, 304, id="inm-list"),
    pytest.param({"If-None-Match": f'"x",{JS_ETAG}'}, 304, id="inm-list-no-space"),
    pytest.param({"If-None-Match": f'W/"x" ,W/{JS_ETAG} '}, 304, id="inm-weak-list"),
    pytest.param({"If-None-Match": "*"}, 304, id="inm-star"),
    pytest.param({"If-None-Match": '"x"'}, 200, id="inm-other"),
    pytest.param({"If-None-Match": md5(JS)}, 200, id="inm-unquoted"),
    pytest.param({"If-None-Match": f'"{md5(JS)}-gzip-{len(JS_GZ):x}"'}, 200, id="inm-gzip-tag"),
    pytest.param({"If-Modified-Since": LAST_MODIFIED}, 304, id="ims-equal"),
    pytest.param({"If-Modified-Since": formatdate(T0 + 3600, usegmt=True)}, 304, id="ims-later"),
    pytest.param({"If-Modified-Since": formatdate(T0 - 1, usegmt=True)}, 200, id="ims-earlier"),
    pytest.param({"If-Modified-Since": FUTURE}, 200, id="ims-in-the-future"),
    pytest.param({"If-Modified-Since": "yesterday"}, 200, id="ims-garbage"),
    # WebOb's parse_date raises on a year it cannot represent.
    pytest.param({"If-Modified-Since": "Sat, 01 Jan 10000 00:00:00 GMT"}, 200, id="ims-year-10000"),
    pytest.param({"If-Modified-Since": "Mon, 01 Jan 0001 00:00:00 GMT"}, 200, id="ims-year-1"),
    pytest.param(
        {"If-None-Match": '"x"', "If-Modified-Since": LAST_MODIFIED}, 200, id="inm-beats-ims"
    ),
    pytest.param(
        {"If-None-Match": JS_ETAG, "If-Modified-Since": formatdate(T0 - 9, usegmt=True)},
        304,
        id="inm-match-beats-old-ims",
    ),
    pytest.param({"If-None-Match": JS_ETAG, "Range": "bytes=0-0"}, 304, id="304-beats-range"),
]


@pytest.mark.parametrize("path", [JS_HASHED, "js/app.js"])
@pytest.mark.parametrize(("headers", "status"), CONDITIONAL)
def test_conditional_get(app: Any, path: str, headers: dict[str, str], status: int) -> None:
    response = get(app, path, headers=headers)
    assert response.status_code == status
    assert response.body == (b"" if status == 304 else JS)


def test_304_keeps_only_validators_and_cache_policy(app: Any) -> None:
    for method in ("GET", "HEAD"):
        response = get(app, JS_HASHED, method=method, headers={"If-None-Match": JS_ETAG})
        assert response.status_code == 304
        assert dict(response.headerlist) == {
            "ETag": JS_ETAG,
            "Cache-Control": IMMUTABLE,
            "Vary": "Accept-Encoding",
        }
        assert response.body == b""


def test_304_of_an_unhashed_url_says_no_cache(app: Any) -> None:
    response = get(app, "js/app.js", headers={"If-None-Match": JS_ETAG})
    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "no-cache"


# --- ranges ---------------------------------------------------------------------------------

N = len(BIG)
RANGES = [
    pytest.param("bytes=0-0", {}, 206, (0, 1), id="first-byte"),
    pytest.param("bytes=10-19", {}, 206, (10, 20), id="closed"),
    pytest.param("bytes=250000-", {}, 206, (250000, N), id="open-ended"),
    pytest.param("bytes=-100", {}, 206, (N - 100, N), id="suffix"),
    pytest.param(f"bytes=-{N * 2}", {}, 206, (0, N), id="suffix-longer-than-file"),
    pytest.param(f"bytes=100-{N * 2}", {}, 206, (100, N), id="end-past-the-file"),
    pytest.param(f"bytes={N - 1}-", {}, 206, (N - 1, N), id="last-byte"),
    pytest.param("BYTES=1-2", {}, 206, (1, 3), id="unit-any-case"),
    pytest.param("bytes=999-3001", {}, 206, (999, 3002), id="across-blocks"),
    pytest.param(f"bytes={N}-", {}, 416, None, id="start-at-length"),
    pytest.param(f"bytes={N + 5}-{N + 9}", {}, 416, None, id="start-past-length"),
    pytest.param("bytes=-0", {}, 416, None, id="empty-suffix"),
    pytest.param("bytes=0-1,5-6", {}, 200, None, id="multi-range-whole-file"),
    pytest.param("bytes=5-2", {}, 200, None, id="reversed-ignored"),
    pytest.param("bytes=-", {}, 200, None, id="no-numbers"),
    pytest.param("items=0-1", {}, 200, None, id="other-unit"),
    pytest.param("bytes=1-2x", {}, 200, None, id="garbage-after"),
    # Python refuses to convert numbers of more than 4300 digits.
    pytest.param("bytes=" + "9" * 5000 + "-", {}, 416, None, id="start-of-5000-digits"),
    pytest.param("bytes=0-" + "9" * 5000, {}, 206, (0, N), id="end-of-5000-digits"),
    pytest.param("bytes=-" + "9" * 5000, {}, 206, (0, N), id="suffix-of-5000-digits"),
    pytest.param("bytes=" + "0" * 5000 + "1-2", {}, 206, (1, 3), id="5000-leading-zeros"),
    pytest.param("bytes=１-２", {}, 200, None, id="non-ascii-digits"),
    pytest.param("bytes=0-0", {"If-Range": f'"{md5(BIG)}"'}, 206, (0, 1), id="if-range-etag"),
    pytest.param("bytes=0-0", {"If-Range": '"other"'}, 200, None, id="if-range-other-etag"),
    pytest.param("bytes=0-0", {"If-Range": f'W/"{md5(BIG)}"'}, 200, None, id="if-range-weak"),
    pytest.param("bytes=0-0", {"If-Range": LAST_MODIFIED}, 206, (0, 1), id="if-range-date"),
    pytest.param(
        "bytes=0-0",
        {"If-Range": formatdate(T0 + 60, usegmt=True)},
        200,
        None,
        id="if-range-later-date-is-not-exact",
    ),
    pytest.param("bytes=0-0", {"If-Range": "garbage"}, 200, None, id="if-range-garbage"),
    pytest.param(
        "bytes=0-0",
        {"If-Range": "Sat, 01 Jan 10000 00:00:00 GMT"},
        200,
        None,
        id="if-range-year-10000",
    ),
    pytest.param(f"bytes={N}-", {"If-Range": '"other"'}, 200, None, id="if-range-fails-no-416"),
]


@pytest.mark.parametrize(("header", "extra", "status", "part"), RANGES)
def test_range(
    make_app: Any,
    header: str,
    extra: dict[str, str],
    status: int,
    part: tuple[int, int] | None,
) -> None:
    app = make_app(block_size=1000)
    response = get(app, "data/big.bin", headers={"Range": header, **extra})
    assert response.status_code == status
    if status == 206:
        assert part is not None
        start, stop = part
        assert response.body == BIG[start:stop]
        assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{N}"
        assert response.headers["Content-Length"] == str(stop - start)
        assert response.headers["ETag"] == f'"{md5(BIG)}"'
    elif status == 416:
        assert response.headers["Content-Range"] == f"bytes */{N}"
        assert BIG[:100] not in response.body
    else:
        assert response.body == BIG
        assert "Content-Range" not in response.headers


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=0-" + " " * 65536 + "x", id="spaces-after-the-dash"),
        pytest.param("bytes=" + " " * 65536 + "x", id="spaces-after-the-equals-sign"),
    ],
)
def test_range_parsing_takes_linear_time(app: Any, header: str) -> None:
    # Servers accept headers of 64 KiB and more; a backtracking pattern once spent tens of
    # seconds of CPU on each of these (quadratic in the run of spaces).
    started = time.perf_counter()
    response = get(app, "data/big.bin", headers={"Range": header})
    assert time.perf_counter() - started < 2
    assert (response.status_code, response.body) == (200, BIG)


def test_range_of_an_empty_file_is_416(app: Any) -> None:
    response = get(app, "data/empty.txt", headers={"Range": "bytes=0-0"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */0"


def test_empty_file_is_served(app: Any) -> None:
    response = get(app, f"data/empty.{md5(b'')[:12]}.txt")
    assert (response.status_code, response.body) == (200, b"")
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Cache-Control"] == IMMUTABLE


def test_range_keeps_the_cache_policy(app: Any) -> None:
    response = get(app, JS_HASHED, headers={"Range": "bytes=0-4"})
    assert response.status_code == 206
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.body == JS[:5]


def test_head_ignores_range(app: Any) -> None:
    response = get(app, "data/big.bin", method="HEAD", headers={"Range": "bytes=0-0"})
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(N)
    assert response.body == b""


# --- precompressed siblings -----------------------------------------------------------------

ENCODINGS = [
    pytest.param(None, None, id="no-header"),
    pytest.param("gzip", "gzip", id="gzip"),
    pytest.param("br", "br", id="br"),
    pytest.param("gzip, deflate, br", "br", id="br-preferred-at-equal-q"),
    pytest.param("gzip;q=1.0, br;q=1", "br", id="br-preferred-at-equal-explicit-q"),
    pytest.param("br;q=0.5, gzip", "gzip", id="higher-q-wins"),
    pytest.param("gzip;q=0.8", "gzip", id="lone-coding-with-low-q"),
    pytest.param("GZIP", "gzip", id="case-insensitive"),
    pytest.param("gzip;q=0", None, id="gzip-refused"),
    pytest.param("br;q=0, gzip", "gzip", id="br-refused"),
    pytest.param("br;q=0, gzip;q=0", None, id="both-refused"),
    pytest.param("*", "br", id="star"),
    pytest.param("gzip;q=0, *", "br", id="star-except-gzip"),
    pytest.param("*;q=0", None, id="star-refused"),
    pytest.param("identity", None, id="identity-only"),
    pytest.param("gzip;q=0.5, identity", None, id="identity-preferred"),
    pytest.param("identity;q=0.5, gzip;q=0.5", "gzip", id="coding-wins-tie-with-identity"),
    pytest.param("deflate", None, id="no-such-sibling"),
    pytest.param("gzip;;q", None, id="invalid-header"),
]


@pytest.mark.parametrize("path", [JS_HASHED, "js/app.js"])
@pytest.mark.parametrize(("accept", "coding"), ENCODINGS)
def test_precompressed_choice(app: Any, path: str, accept: str | None, coding: str | None) -> None:
    headers = {} if accept is None else {"Accept-Encoding": accept}
    response = get(app, path, headers=headers)
    body = {None: JS, "gzip": JS_GZ, "br": JS_BR}[coding]
    assert response.status_code == 200
    assert response.body == body
    assert response.headers.get("Content-Encoding") == coding
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Vary"] == "Accept-Encoding"
    expected_cc = IMMUTABLE if path == JS_HASHED else "no-cache"
    assert response.headers["Cache-Control"] == expected_cc


def test_each_encoding_has_its_own_etag(app: Any) -> None:
    tags = {
        coding: get(app, JS_HASHED, headers={"Accept-Encoding": coding}).headers["ETag"]
        for coding in ("identity", "gzip", "br")
    }
    assert len(set(tags.values())) == 3
    assert tags["identity"] == JS_ETAG
    # Each tag validates its own representation only.
    for coding, tag in tags.items():
        for other in ("identity", "gzip", "br"):
            response = get(app, JS_HASHED, headers={"Accept-Encoding": other, "If-None-Match": tag})
            assert response.status_code == (304 if other == coding else 200)


def test_range_applies_to_the_encoded_bytes(app: Any) -> None:
    response = get(app, JS_HASHED, headers={"Accept-Encoding": "gzip", "Range": "bytes=0-3"})
    assert response.status_code == 206
    assert response.body == JS_GZ[:4]
    assert response.headers["Content-Range"] == f"bytes 0-3/{len(JS_GZ)}"
    assert response.headers["Content-Encoding"] == "gzip"


def test_sibling_that_is_not_a_file_inside_root_is_skipped(app: Any) -> None:
    # logo.png.gz is a directory, logo.png.br a symlink to the secret outside the root.
    response = get(app, "img/logo.png", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert response.body == FILES["img/logo.png"]
    assert "Content-Encoding" not in response.headers
    assert response.headers["Vary"] == "Accept-Encoding"


def test_sibling_older_than_its_file_is_skipped_in_development(app: Any, mode: str) -> None:
    response = get(app, f"types/a.{h('types/a.json')}.json", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Cache-Control"] == IMMUTABLE
    if mode == "disk":
        assert (response.body, response.headers.get("Content-Encoding")) == (b"{}", None)
    else:  # a manifest has no clock: siblings are trusted, as nginx's gzip_static does
        assert response.body == FILES["types/a.json.gz"]
        assert response.headers["Content-Encoding"] == "gzip"


# --- stylesheets ----------------------------------------------------------------------------

# What the disk index serves for css/fonts.css: its reference hashed.
FONTS_CSS = f'@font-face {{ src: url("../fonts/a.{h("fonts/a.woff2")}.woff2") }}\n'.encode()


def test_rewritten_stylesheet_is_served_as_the_index_hashed_it(
    app: Any, mode: str, shared_index: AssetIndex
) -> None:
    asset = shared_index.lookup("css/fonts.css")
    assert asset is not None
    response = get(app, asset.hashed)
    assert response.status_code == 200
    # Both modes: the manifest was built from the rewritten bytes, and they are what is sent.
    assert response.body == FONTS_CSS
    assert asset.hashed == f"css/fonts.{md5(FONTS_CSS)[:12]}.css"
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers["ETag"] == f'"{md5(FONTS_CSS)}"'
    assert response.headers["Content-Length"] == str(len(FONTS_CSS))
    if mode == "disk":
        assert response.headers["Last-Modified"] == LAST_MODIFIED


def test_rewritten_stylesheet_validates_by_etag_only(app: Any, mode: str) -> None:
    # A font change changes the stylesheet's bytes but not its mtime.
    response = get(app, "css/fonts.css", headers={"If-Modified-Since": LAST_MODIFIED})
    assert response.status_code == 200
    etag = get(app, "css/fonts.css").headers["ETag"]
    assert get(app, "css/fonts.css", headers={"If-None-Match": etag}).status_code == 304


def test_rewritten_stylesheet_supports_ranges_and_head(app: Any, mode: str) -> None:
    served = FONTS_CSS
    response = get(app, "css/fonts.css", headers={"Range": "bytes=-6"})
    assert (response.status_code, response.body) == (206, served[-6:])
    head = get(app, "css/fonts.css", method="HEAD")
    assert (head.body, head.headers["Content-Length"]) == (b"", str(len(served)))


def test_rewritten_stylesheet_never_uses_a_sibling_of_the_raw_file(
    make_app: Any, root: Path, mode: str
) -> None:
    gz = root / "css/fonts.css.gz"
    gz.write_bytes(gzip.compress(FILES["css/fonts.css"]))
    os.utime(gz, ns=((T0 + 10) * 10**9, (T0 + 10) * 10**9))
    response = get(make_app(root=root), "css/fonts.css", headers={"Accept-Encoding": "gzip"})
    assert (response.body, response.headers.get("Content-Encoding")) == (FONTS_CSS, None)


def test_a_changed_font_changes_the_stylesheet_url(make_app: Any, root: Path, mode: str) -> None:
    app = make_app(root=root)
    old = f"css/fonts.{md5(FONTS_CSS)[:12]}.css"
    (root / "fonts/a.woff2").write_bytes(b"wOF2 another font")
    response = get(app, old)
    assert response.status_code == 200
    # Disk: the stylesheet is rehashed, so the old URL is stale. Frozen: the manifest's hashes
    # stand until the next build, so the stylesheet still names the font it was built with.
    if mode == "disk":
        assert response.headers["Cache-Control"] == "no-cache"
        assert h("fonts/a.woff2").encode() not in response.body
        assert md5(b"wOF2 another font")[:12].encode() in response.body
    else:
        assert response.body == FONTS_CSS
        assert response.headers["Cache-Control"] == IMMUTABLE


# --- the invariant ---------------------------------------------------------------------------


def test_immutable_only_when_the_url_hash_is_the_md5_of_the_body(
    app: Any, shared_index: AssetIndex
) -> None:
    published = [a for a in map(shared_index.lookup, FILES) if a is not None]
    urls = [a.hashed for a in published]
    urls += [hashed_name(a.path, "0123456789ab") for a in published] + list(FILES)
    immutable = 0
    for url in urls:
        response = get(app, wsgi(url))
        if "immutable" in response.headers.get("Cache-Control", ""):
            split = split_hash(url, 12)
            assert split is not None
            assert md5(response.body).startswith(split[1])
            immutable += 1
    assert immutable >= len(published) - 1  # all but the page


# --- files changing under the server --------------------------------------------------------


def test_changed_file_old_hash_is_never_immutable(make_app: Any, root: Path) -> None:
    app = make_app(root=root)
    assert get(app, CSS_HASHED).headers["Cache-Control"] == IMMUTABLE
    (root / "css/site.css").write_bytes(b"body { color: blue; }\n")
    response = get(app, CSS_HASHED)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.body == b"body { color: blue; }\n"
    assert response.headers["ETag"] != f'"{md5(CSS)}"'


def test_changed_file_is_not_304_for_the_old_etag(make_app: Any, root: Path) -> None:
    app = make_app(root=root)
    (root / "css/site.css").write_bytes(b"body { color: green; }\n")
    response = get(app, CSS_HASHED, headers={"If-None-Match": f'"{md5(CSS)}"'})
    assert response.status_code == 200
    assert response.body == b"body { color: green; }\n"


class RacingIndex:
    """An index whose file changes (or goes) right after it has been looked up."""

    def __init__(self, index: AssetIndex, change: Callable[[], None]) -> None:
        self.index = index
        self.change = change
        self.hash_length = index.hash_length
        self.fingerprint = index.fingerprint

    def lookup(self, path: str, *, integrity: bool = False) -> Asset | None:
        asset = self.index.lookup(path, integrity=integrity)
        if asset is not None:
            self.change()
        return asset


def test_file_changed_between_lookup_and_open_is_not_immutable(
    root: Path, mode: str, make_app: Any
) -> None:
    def change() -> None:
        (root / "css/site.css").write_bytes(b"body { color: orange; }\n")

    app = make_app(RacingIndex(make_index(root, mode), change), root)
    response = get(app, CSS_HASHED)
    assert response.status_code == 200
    assert response.body == b"body { color: orange; }\n"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"] != f'"{md5(CSS)}"'


@pytest.mark.parametrize("path", [CSS_HASHED, "css/site.css", "css/site.0123456789ab.css"])
def test_deleted_file_falls_through(make_app: Any, root: Path, path: str) -> None:
    app = make_app(root=root)
    assert get(app, path).body == CSS
    (root / "css/site.css").unlink()
    response = get(app, path)
    assert (response.status_code, response.body) == (200, b"app")


def test_file_deleted_between_lookup_and_open_falls_through(
    root: Path, mode: str, make_app: Any
) -> None:
    app = make_app(RacingIndex(make_index(root, mode), (root / "css/site.css").unlink), root)
    response = get(app, CSS_HASHED)
    assert (response.status_code, response.body) == (200, b"app")


# --- streaming ------------------------------------------------------------------------------


def close(result: Any) -> None:
    if hasattr(result, "close"):  # PEP 3333: close() when there is one
        result.close()


def call(app: Any, path: str, **environ: Any) -> tuple[str, list[tuple[str, str]], Any]:
    """Call the app as a server would, returning the unconsumed body iterable."""
    env = Request.blank("/", **environ).environ
    env["PATH_INFO"] = PREFIX + path
    started: list[Any] = []
    result = app(env, lambda status, headers, exc_info=None: started.append((status, headers)))
    return started[0][0], started[0][1], result


def test_uses_wsgi_file_wrapper(app: Any) -> None:
    status, _, result = call(app, JS_HASHED, environ={"wsgi.file_wrapper": FileWrapper})
    try:
        assert status == "200 OK"
        assert isinstance(result, FileWrapper)
        assert b"".join(result) == JS
    finally:
        close(result)


def test_streams_in_blocks(make_app: Any) -> None:
    status, headers, result = call(make_app(block_size=1000), "data/big.bin")
    try:
        chunks = list(result)
    finally:
        close(result)
    assert status == "200 OK"
    assert b"".join(chunks) == BIG
    assert len(chunks) == N // 1000
    assert ("Content-Length", str(N)) in headers


def test_range_is_not_sent_through_the_file_wrapper(app: Any) -> None:
    # A file wrapper may send to the end of the file whatever Content-Length says.
    env = {"wsgi.file_wrapper": FileWrapper}
    status, _, result = call(app, "data/big.bin", environ=env, headers={"Range": "bytes=5-9"})
    try:
        assert status == "206 Partial Content"
        assert b"".join(result) == BIG[5:10]
    finally:
        close(result)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_every_file_is_closed(app: Any) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    cases: list[dict[str, Any]] = [
        {},
        {"method": "HEAD"},
        {"headers": {"If-None-Match": JS_ETAG}},
        {"headers": {"Range": "bytes=0-0"}},
        {"headers": {"Range": "bytes=999999-"}},
        {"headers": {"Accept-Encoding": "gzip"}},
        {"environ": {"wsgi.file_wrapper": FileWrapper}},
    ]
    for environ in cases:
        _, _, result = call(app, JS_HASHED, **environ)
        close(result)  # a client gone before the body was read
    for environ in cases:
        _, _, result = call(app, JS_HASHED, **environ)
        try:
            b"".join(result)
        finally:
            close(result)
    assert open_fds() == before


def test_file_truncated_while_streaming_ends_short(make_app: Any, root: Path) -> None:
    status, headers, result = call(make_app(root=root, block_size=1000), "data/big.bin")
    try:
        first = next(iter(result))
        (root / "data/big.bin").write_bytes(b"")
        rest = b"".join(result)
    finally:
        close(result)
    assert status == "200 OK"
    assert ("Content-Length", str(N)) in headers
    assert first + rest == BIG[:1000]


def test_file_that_cannot_be_examined_falls_through(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fstat(fd: int) -> os.stat_result:
        raise OSError("stale NFS handle")

    monkeypatch.setattr(os, "fstat", failing_fstat)
    response = get(app, JS_HASHED)
    monkeypatch.undo()
    assert (response.status_code, response.body) == (200, b"app")


@pytest.mark.parametrize("proc", [None, "/nonexistent/"], ids=["no-proc", "proc-not-mounted"])
def test_without_proc_the_index_check_stands(
    app: Any, monkeypatch: pytest.MonkeyPatch, proc: str | None
) -> None:
    monkeypatch.setattr(files, "_PROC_FD", proc)
    assert get(app, CSS_HASHED).headers["Cache-Control"] == IMMUTABLE
    assert get(app, "inside.css").body == CSS
    assert get(app, "outside.txt").status_code == 404
    # The sibling symlink to the secret is refused by O_NOFOLLOW, /proc or not.
    response = get(app, "img/logo.png", headers={"Accept-Encoding": "br"})
    assert response.body == FILES["img/logo.png"]


# --- cost -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        pytest.param(JS_HASHED, None, id="hashed"),
        pytest.param("js/app.js", None, id="unhashed"),
        pytest.param(JS_HASHED, "br, gzip", id="precompressed"),
    ],
)
def test_one_stat_per_request_beyond_the_index(
    app: Any, mode: str, monkeypatch: pytest.MonkeyPatch, path: str, accept: str | None
) -> None:
    headers = {} if accept is None else {"Accept-Encoding": accept}
    get(app, path, headers=headers)  # the disk index hashes on first use
    calls: list[str] = []
    for name in ("stat", "lstat", "fstat"):
        real = getattr(os, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(os, name, counting)
    response = get(app, path, headers=headers)
    monkeypatch.undo()
    assert response.status_code == 200
    # The disk index stats the file once to validate its hash; the server fstats what it opens.
    assert calls == (["stat", "fstat"] if mode == "disk" else ["fstat"])


# --- the module-level entry point -----------------------------------------------------------


def test_serve_function(shared_root: Path, shared_index: AssetIndex) -> None:
    root, index = shared_root, shared_index
    environ = Request.blank("/").environ
    response = files.serve(environ, CSS_HASHED, index, str(root))
    assert response is not None
    answer = Request(environ).get_response(response)
    assert answer.body == CSS
    assert answer.headers["Cache-Control"] == IMMUTABLE
    assert files.serve(environ, "css/missing.css", index, str(root)) is None
    stale = files.serve(environ, "css/site.0123456789ab.css", index, root, strict=True)
    assert isinstance(stale, Response)
    assert stale.status_code == 404


# --- end to end over a real server ----------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_over_waitress(make_app: Any) -> None:
    with running(make_app(), threads=2) as port:

        def fetch(method: str, target: str, **headers: str) -> tuple[int, Any, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                # http.client sends the target as given: no normalisation of "..%2f".
                connection.request(method, target, headers=headers)
                response = connection.getresponse()
                return response.status, response.headers, response.read()
            finally:
                connection.close()

        status, headers, body = fetch("GET", PREFIX + JS_HASHED)
        assert (status, body) == (200, JS)
        assert headers["Cache-Control"] == IMMUTABLE
        assert headers["Content-Length"] == str(len(JS))

        status, headers, body = fetch("HEAD", PREFIX + JS_HASHED)
        assert (status, body) == (200, b"")
        assert headers["Content-Length"] == str(len(JS))
        assert headers["ETag"] == JS_ETAG

        status, headers, body = fetch("GET", PREFIX + JS_HASHED, **{"If-None-Match": JS_ETAG})
        assert (status, body) == (304, b"")

        status, headers, body = fetch("GET", PREFIX + "data/big.bin", Range="bytes=100-199")
        assert (status, body) == (206, BIG[100:200])
        assert headers["Content-Range"] == f"bytes 100-199/{N}"

        status, headers, body = fetch("GET", PREFIX + JS_HASHED, **{"Accept-Encoding": "gzip"})
        assert (status, body, headers["Content-Encoding"]) == (200, JS_GZ, "gzip")

        status, headers, body = fetch("POST", PREFIX + "css/site.css")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")

        status, headers, body = fetch("GET", PREFIX + "css/site.0123456789ab.css")
        assert (status, body, headers["Cache-Control"]) == (200, CSS, "no-cache")

        traversals = [
            "/static/..%2f..%2fsecret.txt",
            "/static/..%2fsecret.txt",
            "/static/%2e%2e/secret.txt",
            "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/static/..%5csecret.txt",
            "/static/outside.txt",
            "/static/.env",
            "/static//secret.txt",
        ]
        answers = {target: fetch("GET", target) for target in traversals}
        assert {target: status for target, (status, _, _) in answers.items()} == dict.fromkeys(
            traversals, 404
        )
        assert not [body for _, _, body in answers.values() if SECRET in body or DOT_SECRET in body]
