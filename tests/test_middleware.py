from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from webob import Request, Response

from hashstatic import HashStatic
from hashstatic.cache import DiskIndex
from hashstatic.manifest import build_manifest, write_manifest

FILES = {
    "css/site.css": b"body { color: red }\n",
    "js/app.js": b"console.log(1)\n",
    "img/logo.png": b"\x89PNG fake",
}
PAGE = (
    b'<!doctype html><link rel="stylesheet" href="/static/css/site.css">'
    b'<script src="/static/js/app.js"></script><!-- /static/js/app.js -->'
    b'<img src="/static/img/logo.png" alt="">'
)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:12]


def hashed_page(files: dict[str, bytes] = FILES) -> bytes:
    return (
        PAGE.replace(b"site.css", f"site.{md5(files['css/site.css'])}.css".encode())
        .replace(b'app.js"', f'app.{md5(files["js/app.js"])}.js"'.encode())
        .replace(b"logo.png", f"logo.{md5(files['img/logo.png'])}.png".encode())
    )


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


def wrap(app: Any, root: Path, mode: str, **kw: Any) -> HashStatic:
    if mode == "manifest":
        path = root.parent / "manifest.json"
        write_manifest(build_manifest(root, prefix=kw.get("prefix", "/static/")), path)
        return HashStatic(app, root, manifest=path, **kw)
    return HashStatic(app, root, **kw)


def html_app(
    body: bytes = PAGE, content_type: str = "text/html", headers: dict[str, str] | None = None
) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", content_type), *(headers or {}).items()])
        return [body]

    return app


class Streamed:
    """An app body that is not a list, and counts close() calls."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed += 1


def test_html_response_is_rewritten(root: Path, mode: str) -> None:
    res = Request.blank("/").get_response(wrap(html_app(), root, mode))
    assert res.status_int == 200
    assert res.body == hashed_page()
    assert res.headers["Content-Length"] == str(len(res.body))


@pytest.mark.parametrize(
    "ctype",
    [
        pytest.param("text/html; charset=utf-8", id="html-charset"),
        pytest.param("TEXT/HTML", id="uppercase"),
        pytest.param(" text/html ;charset=utf-8", id="spaces"),
        pytest.param("application/xhtml+xml", id="xhtml"),
    ],
)
def test_html_types_are_rewritten(root: Path, mode: str, ctype: str) -> None:
    mw = wrap(html_app(content_type=ctype), root, mode)
    for _ in range(2):  # the type read, then as remembered
        assert Request.blank("/").get_response(mw).body == hashed_page()


def test_identity_encoding_is_rewritten(root: Path, mode: str) -> None:
    app = html_app(headers={"Content-Encoding": " Identity "})
    assert Request.blank("/").get_response(wrap(app, root, mode)).body == hashed_page()


@pytest.mark.parametrize(
    ("ctype", "headers"),
    [
        pytest.param("application/json", {}, id="json"),
        pytest.param("text/plain", {}, id="text"),
        pytest.param("text/html-fragment", {}, id="another-type"),
        pytest.param("text/html", {"Content-Encoding": "gzip"}, id="compressed"),
    ],
)
def test_other_responses_pass_untouched(
    root: Path, mode: str, ctype: str, headers: dict[str, str]
) -> None:
    mw = wrap(html_app(content_type=ctype, headers=headers), root, mode)
    for _ in range(2):  # the type read, then as remembered
        assert Request.blank("/").get_response(mw).body == PAGE


def test_streamed_body_is_rewritten_without_content_length(root: Path, mode: str) -> None:
    body = Streamed([PAGE[i : i + 7] for i in range(0, len(PAGE), 7)])

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))]
        )
        return body

    res = Request.blank("/").get_response(wrap(app, root, mode))
    assert res.body == hashed_page()
    assert "Content-Length" not in res.headers or res.headers["Content-Length"] == str(
        len(res.body)
    )
    assert body.closed == 1


def test_close_is_called_once_when_body_is_read_whole(root: Path) -> None:
    body = Streamed([PAGE])

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), ("ETag", '"v1"')])
        return body

    res = Request.blank("/").get_response(HashStatic(app, root))  # dev + ETag: read whole
    assert res.body == hashed_page()
    assert body.closed == 1


def test_close_is_called_once_for_untouched_bodies(root: Path) -> None:
    body = Streamed([b"{}"])

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return body

    res = Request.blank("/").get_response(HashStatic(app, root))
    assert res.body == b"{}"
    assert body.closed == 1


def test_write_callable_output_is_rewritten(root: Path, mode: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(PAGE[:40])
        write(PAGE[40:90])
        return [PAGE[90:]]

    res = Request.blank("/").get_response(wrap(app, root, mode))
    assert res.body == hashed_page()


def test_error_page_after_exc_info_is_rewritten(root: Path) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            start_response(
                "500 Internal Server Error", [("Content-Type", "text/html")], sys.exc_info()
            )
        return [PAGE]

    res = Request.blank("/").get_response(HashStatic(app, root))
    assert res.status_int == 500
    assert res.body == hashed_page()


def test_exc_info_after_body_started_reraises(root: Path) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(b"<p>")
        try:
            raise RuntimeError("late")
        except RuntimeError:
            import sys

            start_response(
                "500 Internal Server Error", [("Content-Type", "text/html")], sys.exc_info()
            )
        return []

    with pytest.raises(RuntimeError, match="late"):
        Request.blank("/").get_response(HashStatic(app, root))


def test_head_sends_no_stale_content_length(root: Path, mode: str) -> None:
    app = html_app(headers={"Content-Length": str(len(PAGE))})
    res = Request.blank("/", method="HEAD").get_response(wrap(app, root, mode))
    assert res.status_int == 200
    assert "Content-Length" not in res.headers


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_bodiless_statuses_pass(root: Path, status: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "text/html")])
        return []

    res = Request.blank("/").get_response(HashStatic(app, root))
    assert res.status == status and res.body == b""


def test_environ_url_and_url_method(root: Path, mode: str) -> None:
    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen["url"] = environ["hashstatic.url"]("js/app.js")
        seen["missing"] = environ["hashstatic.url"]("js/none.js")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    mw = wrap(app, root, mode)
    Request.blank("/").get_response(mw)
    assert seen["url"] == f"/static/js/app.{md5(FILES['js/app.js'])}.js"
    assert seen["missing"] == "/static/js/none.js"
    assert mw.url("/js/app.js") == seen["url"]


def test_url_base_and_integrity(root: Path, mode: str) -> None:
    app = html_app(b'<script src="/static/js/app.js"></script>')
    mw = wrap(app, root, mode, url_base="https://cdn.example.com/s/", integrity=True)
    res = Request.blank("/").get_response(mw)
    import base64

    sri = "sha384-" + base64.b64encode(hashlib.sha384(FILES["js/app.js"]).digest()).decode()
    h = md5(FILES["js/app.js"])
    assert (
        res.body
        == (
            f'<script src="https://cdn.example.com/s/js/app.{h}.js" integrity="{sri}" '
            'crossorigin="anonymous"></script>'
        ).encode()
    )


def test_stacked_layers_rewrite_each_prefix_once(tmp_path: Path, root: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.jpg").write_bytes(b"jpeg")
    page = b'<img src="/media/a.jpg"><img src="/static/img/logo.png">'
    inner = HashStatic(html_app(page), root)
    twice = HashStatic(HashStatic(inner, media, "/media/"), root)
    res = Request.blank("/").get_response(twice)
    assert (
        res.body
        == (
            f'<img src="/media/a.{md5(b"jpeg")}.jpg">'
            f'<img src="/static/img/logo.{md5(FILES["img/logo.png"])}.png">'
        ).encode()
    )


def test_changed_asset_changes_page(root: Path) -> None:
    mw = HashStatic(html_app(), root)
    first = Request.blank("/").get_response(mw).body
    (root / "css/site.css").write_bytes(b"body { color: blue }\n")
    os.utime(root / "css/site.css", ns=(1, 2_000_000_000))
    second = Request.blank("/").get_response(mw).body
    assert first != second
    assert second == hashed_page({**FILES, "css/site.css": b"body { color: blue }\n"})


def test_development_pages_look_up_nothing_the_kernel_vouches_for(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mw = HashStatic(html_app(), root)
    if not isinstance(mw.index, DiskIndex) or not mw.index.watching:
        pytest.skip("no inotify on this file system: every lookup stats")
    asked: list[str] = []
    real_lookup = mw.index.lookup

    def counted(path: str, **kw: Any) -> Any:
        asked.append(path)
        return real_lookup(path, **kw)

    monkeypatch.setattr(mw.index, "lookup", counted)
    assert Request.blank("/").get_response(mw).body == hashed_page()
    assert sorted(asked) == sorted(FILES)
    for _ in range(3):
        assert Request.blank("/").get_response(mw).body == hashed_page()
    assert sorted(asked) == sorted(FILES)  # the page's tags were used as remembered
    (root / "js/app.js").write_bytes(b"console.log(2)\n")
    changed = {**FILES, "js/app.js": b"console.log(2)\n"}
    assert Request.blank("/").get_response(mw).body == hashed_page(changed)
    assert len(asked) == 2 * len(FILES)  # any change: every tag checked again, once


def test_a_page_seen_before_is_rewritten_with_no_rewriter_made(
    root: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole page whose tags were all rewritten before, usable as they are, goes through
    one C call (html.splice_page): the same bytes and headers, no rewriter made."""
    from hashstatic import html, middleware

    if html._splice is None:
        pytest.skip("hashstatic._speedups is not built")
    made: list[object] = []

    class Counted(html.HtmlRewriter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(middleware, "HtmlRewriter", Counted)
    page_app = etag_app()
    mw = wrap(lambda env, sr: Streamed(list(page_app(env, sr))), root, mode)
    if mode == "dev" and not (isinstance(mw.index, DiskIndex) and mw.index.watching):
        pytest.skip("no inotify on this file system: every lookup stats")
    first = Request.blank("/").get_response(mw)
    assert first.body == hashed_page() and len(made) == 1
    for _ in range(3):
        again = Request.blank("/").get_response(mw)
        assert (again.status, again.headerlist, again.body) == (
            first.status,
            first.headerlist,
            first.body,
        )
    assert len(made) == 1
    if mode == "dev":
        (root / "js/app.js").write_bytes(b"console.log(2)\n")
        changed = Request.blank("/").get_response(mw)
        assert changed.body == hashed_page({**FILES, "js/app.js": b"console.log(2)\n"})
        assert changed.headers["ETag"] != first.headers["ETag"]
        assert len(made) == 2  # the changed tag is rewritten anew, by a rewriter
        assert Request.blank("/").get_response(mw).headers["ETag"] == changed.headers["ETag"]
        assert len(made) == 2


def test_a_page_the_one_call_cannot_do_is_scanned_by_it_once(
    root: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page with a reference in a <style> takes the general path every time; the one C
    call that finds so is tried once a response, not again by the rewriter made next."""
    from hashstatic import html

    if html._splice is None:
        pytest.skip("hashstatic._speedups is not built")
    calls: list[object] = []
    real = html._splice

    def counted(*args: Any) -> Any:
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(html, "_splice", counted)
    page = PAGE + b'<style>body { background: url("/static/img/logo.png") }</style>'
    mw = wrap(html_app(page), root, mode)
    if mode == "dev" and not (isinstance(mw.index, DiskIndex) and mw.index.watching):
        pytest.skip("no inotify on this file system: every lookup stats")
    bodies = set()
    for _ in range(4):
        before = len(calls)
        bodies.add(Request.blank("/").get_response(mw).body)
        assert calls[before:] == [None]  # tried once, and it could not
    hashed = f"logo.{md5(FILES['img/logo.png'])}.png".encode()
    style = b'<style>body { background: url("/static/img/' + hashed + b'") }</style>'
    assert bodies == {hashed_page() + style}


def etag_app(etag: str = '"v1"') -> Any:
    """A page app that answers conditional requests itself, as WebOb apps do."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        res = Response(body=PAGE, content_type="text/html", conditional_response=True)
        res.etag = etag.strip('"')
        return res(environ, start_response)  # type: ignore[no-any-return]

    return app


def test_page_cached_before_asset_change_is_not_304(root: Path, mode: str) -> None:
    mw = wrap(etag_app(), root, mode)
    first = Request.blank("/").get_response(mw)
    etag = first.headers["ETag"]
    assert etag != '"v1"' and "-hs" in etag
    again = Request.blank("/", headers={"If-None-Match": etag}).get_response(mw)
    assert again.status_int == 304 and again.body == b""
    assert again.headers["ETag"] == etag
    if mode == "dev":
        (root / "css/site.css").write_bytes(b"body { color: green }\n")
        after = Request.blank("/", headers={"If-None-Match": etag}).get_response(mw)
        assert after.status_int == 200
        assert after.headers["ETag"] != etag
        assert after.body == hashed_page({**FILES, "css/site.css": b"body { color: green }\n"})


def last_modified_app(when: int) -> Any:
    """A page app that sends Last-Modified and answers If-Modified-Since itself."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        res = Response(body=PAGE, content_type="text/html", conditional_response=True)
        res.last_modified = when
        return res(environ, start_response)  # type: ignore[no-any-return]

    return app


def test_development_drops_last_modified_and_never_passes_if_modified_since(root: Path) -> None:
    # The page's bytes change when an asset does, whatever the app's clock says.
    mw = wrap(last_modified_app(1_000_000_000), root, "dev")
    res = Request.blank("/").get_response(mw)
    assert "Last-Modified" not in res.headers
    assert res.body == hashed_page()
    later = formatdate(2_000_000_000, usegmt=True)
    res = Request.blank("/", headers={"If-Modified-Since": later}).get_response(mw)
    assert res.status_int == 200 and res.body == hashed_page()


@pytest.mark.parametrize("app_is_newer", [False, True], ids=["app-older", "app-newer"])
def test_manifest_last_modified_is_never_older_than_the_manifest(
    root: Path, app_is_newer: bool
) -> None:
    manifest = root.parent / "manifest.json"
    write_manifest(build_manifest(root), manifest)
    built = 1_500_000_000
    os.utime(manifest, (built, built))
    app_time = 1_600_000_000 if app_is_newer else 1_000_000_000
    mw = HashStatic(last_modified_app(app_time), root, manifest=manifest)
    res = Request.blank("/").get_response(mw)
    assert res.headers["Last-Modified"] == formatdate(max(app_time, built), usegmt=True)
    assert res.body == hashed_page()
    # A date from before the manifest cannot be a page rewritten with it: not passed on.
    older = formatdate(built - 1, usegmt=True)
    res = Request.blank("/", headers={"If-Modified-Since": older}).get_response(mw)
    assert res.status_int == 200
    newest = formatdate(max(app_time, built), usegmt=True)
    res = Request.blank("/", headers={"If-Modified-Since": newest}).get_response(mw)
    assert res.status_int == 304


def test_tag_from_an_older_manifest_is_never_304(root: Path) -> None:
    mw = wrap(etag_app(), root, "manifest")
    stale = '"v1-hs000000000000"'
    res = Request.blank("/", headers={"If-None-Match": stale}).get_response(mw)
    assert res.status_int == 200 and res.body == hashed_page()


def test_app_etag_without_our_fingerprint_passes_to_app(root: Path) -> None:
    res = Request.blank("/", headers={"If-None-Match": '"v1"'}).get_response(
        HashStatic(etag_app(), root)
    )
    assert res.status_int == 304  # the app's own decision: it never saw a rewritten page


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"prefix": "static"}, "prefix", id="prefix-no-slash"),
        pytest.param({"hash_length": 4}, "8 to 32", id="hash-too-short"),
        pytest.param({"hash_length": True}, "8 to 32", id="hash-bool"),
        pytest.param({"url_base": "cdn.example.com"}, "url_base", id="url-base"),
    ],
)
def test_construction_errors_name_the_fix(root: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HashStatic(html_app(), root, **kwargs)


def test_missing_root_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        HashStatic(html_app(), tmp_path / "nowhere")


def test_unreadable_manifest_names_the_file(root: Path) -> None:
    bad = root.parent / "manifest.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json"):
        HashStatic(html_app(), root, manifest=bad)


def test_manifest_prefix_mismatch(root: Path) -> None:
    path = root.parent / "manifest.json"
    write_manifest(build_manifest(root, prefix="/assets/"), path)
    with pytest.raises(ValueError, match="/assets/"):
        HashStatic(html_app(), root, manifest=path)


def test_page_under_mount_point_uses_script_name(root: Path, mode: str) -> None:
    page = b'<link href="/app/static/css/site.css"><link href="static/css/site.css">'
    req = Request.blank("/", base_url="http://localhost/app")
    res = req.get_response(wrap(html_app(page), root, mode))
    h = md5(FILES["css/site.css"])
    expected = f'<link href="/app/static/css/site.{h}.css"><link href="static/css/site.{h}.css">'
    assert res.body == expected.encode()


@pytest.mark.parametrize(
    "path_info",
    ["/docs/page.html", "/docs/a b/page.html", "/docs/\xc3\xbc/page.html", "/docs/%7E;x=1/p"],
)
def test_relative_urls_resolve_against_the_page_path_quoted(
    root: Path, mode: str, path_info: str
) -> None:
    # PATH_INFO is the raw path, decoded as latin-1 (PEP 3333); the page URL is its quoted form.
    page = b'<link href="../static/css/site.css"><link href="../../static/css/site.css">'
    req = Request.blank("/")
    req.environ["PATH_INFO"] = path_info
    res = req.get_response(wrap(html_app(page), root, mode))
    h = md5(FILES["css/site.css"])
    depth = path_info.count("/") - 1  # directories between the root and the page
    expected = [b"../static/css/site.css", b"../../static/css/site.css"]
    for up in range(depth, 3):  # enough "../" to reach the root (more stay there)
        expected[up - 1] = expected[up - 1].replace(b"site.css", f"site.{h}.css".encode())
    assert res.body == b'<link href="%s"><link href="%s">' % tuple(expected)


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("a@b", "http"),  # userinfo: no host a browser would send
        ("h:port", "http"),  # a port that is not a number
        ("h/static", "http"),  # a path in the Host header would move the page under the prefix
        ("h?x", "http"),
        ("a b", "http"),
        ("[::1", "http"),
        ("h\x00", "http"),
        ("\xfc", "http"),
        ("", "gopher"),  # a scheme the server should not have passed
    ],
)
def test_a_hostile_host_or_scheme_neither_fails_nor_moves_the_page(
    root: Path, mode: str, host: str, scheme: str
) -> None:
    """What the server says it is stands in for a Host header that names no host."""
    page = b'<link href="css/site.css"><link href="http://example.org/static/css/site.css">'
    mw = wrap(html_app(page), root, mode)
    for _ in range(2):  # the first response, and one of a page seen before
        req = Request.blank("/static/", environ={"wsgi.url_scheme": scheme})
        req.environ.update(SERVER_NAME="example.org", SERVER_PORT="80")
        req.environ["HTTP_HOST"] = host
        req.environ["PATH_INFO"] = "/page/"  # a page outside the prefix
        res = req.get_response(mw)
        assert res.status_int == 200
        hashed = f"site.{md5(FILES['css/site.css'])}.css".encode()
        # Relative URLs resolve against /page/ (no asset there); the absolute one names the
        # server's own origin, so it is an asset.
        assert res.body == page.replace(b"static/css/site.css", b"static/css/" + hashed)


def test_each_request_url_is_answered_as_a_fresh_middleware_answers_it(
    root: Path, mode: str
) -> None:
    """What a page's URL says is remembered by the request's parts that make the URL: a page
    asked for under another host, scheme, server, port, mount point or path is answered as
    a middleware that never saw the others answers it."""
    page = (
        b'<link href="../static/css/site.css"><link href="/static/css/site.css">'
        b'<link href="http://a.example/static/css/site.css">'
        b'<link href="https://a.example/static/css/site.css">'
        b'<link href="http://a.example:8080/static/css/site.css">'
        b'<link href="http://b.example/static/css/site.css">'
        b'<link href="http://b.example/app/static/css/site.css">'
    )
    # Pages outside the prefix, where a page seen before is answered in one C call.
    requests: list[dict[str, str]] = [
        {"HTTP_HOST": "a.example", "PATH_INFO": "/page/"},
        {"HTTP_HOST": "b.example", "PATH_INFO": "/page/"},
        {"HTTP_HOST": "a.example", "PATH_INFO": "/page/", "wsgi.url_scheme": "https"},
        {"HTTP_HOST": "a.example:8080", "PATH_INFO": "/page/"},
        {"SERVER_NAME": "a.example", "SERVER_PORT": "80", "PATH_INFO": "/page/"},
        {"SERVER_NAME": "b.example", "SERVER_PORT": "80", "PATH_INFO": "/page/"},
        {"SERVER_NAME": "a.example", "SERVER_PORT": "8080", "PATH_INFO": "/page/"},
        {"HTTP_HOST": "b.example", "SCRIPT_NAME": "/app", "PATH_INFO": "/page/"},
        {"HTTP_HOST": "b.example", "SCRIPT_NAME": "/app", "PATH_INFO": "/"},
        {"HTTP_HOST": "a.example", "PATH_INFO": "/a/page/"},
    ]

    def ask(mw: HashStatic, parts: dict[str, str]) -> tuple[str, bytes]:
        req = Request.blank("/")
        req.environ.pop("HTTP_HOST", None)
        req.environ.update(parts)
        res = req.get_response(mw)
        return res.status, res.body

    alone = {i: ask(wrap(html_app(page), root, mode), parts) for i, parts in enumerate(requests)}
    assert len(set(alone.values())) >= 6  # the requests do give different pages
    shared = wrap(html_app(page), root, mode)
    for _ in range(2):  # first sight of each page, then every page seen before
        for i, parts in enumerate(requests):
            assert ask(shared, parts) == alone[i], parts


def test_pages_at_long_urls_are_not_remembered(root: Path, mode: str) -> None:
    """A client chooses the page URL: a run of distinct long ones must not pile up in the
    middleware's memory (before, each stayed in its memo, up to 8,192 of them)."""
    import tracemalloc

    mw = wrap(html_app(b'<link href="/static/css/site.css">'), root, mode)
    hashed = f"site.{md5(FILES['css/site.css'])}.css".encode()

    def ask(path: str) -> None:
        req = Request.blank("/")
        req.environ["PATH_INFO"] = path
        res = req.get_response(mw)
        assert res.body == b'<link href="/static/css/' + hashed + b'">'

    ask("/warm-up/")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(60):
            ask(f"/{i}/" + "x" * 100_000)  # 6 MB of URLs
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000


def test_a_question_mark_in_the_page_path_stays_in_its_directory(root: Path, mode: str) -> None:
    # Requested as /docs%3Fx/page.html: "?" is part of the path, and "static/..." resolves to
    # /docs%3Fx/static/..., not an asset (unquoted, the page would seem to sit at /docs).
    page = b'<link href="static/css/site.css"><link href="../static/css/site.css">'
    req = Request.blank("/")
    req.environ["PATH_INFO"] = "/docs?x/page.html"
    res = req.get_response(wrap(html_app(page), root, mode))
    h = md5(FILES["css/site.css"])
    expected = f'<link href="static/css/site.css"><link href="../static/css/site.{h}.css">'
    assert res.body == expected.encode()


def test_manifest_mode_rewrites_pages_with_no_file_access(
    root: Path, file_access: list[Any]
) -> None:
    import shutil

    path = root.parent / "manifest.json"
    write_manifest(build_manifest(root), path)
    mw = HashStatic(html_app(), root, serve=False, manifest=path)
    shutil.rmtree(root)  # production app hosts need no static files at all
    file_access.clear()
    res = Request.blank("/").get_response(mw)
    assert res.body == hashed_page()
    assert [p for _, p in file_access if isinstance(p, str) and p.startswith(str(root))] == []


@pytest.mark.parametrize("watch", [False, True])
def test_a_page_stats_each_distinct_file_once(
    tmp_path: Path, request: pytest.FixtureRequest, watch: bool
) -> None:
    """Two stylesheets naming the same image, and the image itself in the page: each of the
    three files is stat'ed at most once for the response, dependencies included (SPEC 7).
    With a watcher, none is while the kernel reports no change, and after a change to the
    image each is again, once."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img/x.png").write_bytes(b"png")
    (tmp_path / "a.css").write_bytes(b"a { background: url(img/x.png) }")
    (tmp_path / "b.css").write_bytes(b"b { background: url(img/x.png) }")
    page = (
        b'<link rel="stylesheet" href="/static/a.css"><link rel="stylesheet" '
        b'href="/static/b.css"><img src="/static/img/x.png">'
    )
    mw = HashStatic(html_app(page), tmp_path, watch=watch)
    assert isinstance(mw.index, DiskIndex) and mw.index.watching is watch
    warm = Request.blank("/").get_response(mw).body
    assert warm.count(b"/static/") == 3 and b"a.css" not in warm
    calls: list[str] = request.getfixturevalue("stat_calls")  # counted from here on

    def stats() -> list[str]:
        return sorted(os.path.basename(path) for path in calls)

    assert Request.blank("/").get_response(mw).body == warm
    assert stats() == ([] if watch else ["a.css", "b.css", "x.png"])
    (tmp_path / "img/x.png").write_bytes(b"PNG")
    calls.clear()
    changed = Request.blank("/").get_response(mw).body
    assert changed != warm and changed.count(b"/static/") == 3
    assert stats() == ["a.css", "b.css", "x.png"]


@pytest.mark.parametrize(
    ("chunks", "whole"),
    [
        pytest.param([], True, id="no-chunk"),
        pytest.param([PAGE], True, id="one-chunk"),
        pytest.param([PAGE[:40], PAGE[40:]], False, id="two-chunks"),
        pytest.param([PAGE[:10], PAGE[10:50], b"", PAGE[50:]], False, id="four-chunks"),
    ],
)
def test_a_one_chunk_iterator_is_sent_whole(root: Path, chunks: list[bytes], whole: bool) -> None:
    """What frameworks return for a rendered page gets a Content-Length (so the server need
    not chunk it or close the connection); a real stream streams."""
    body = Streamed(chunks)
    started: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "1")])
        return body

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    result = HashStatic(app, root)(Request.blank("/").environ, start_response)
    out = b"".join(result)
    getattr(result, "close", lambda: None)()
    headers = dict(started[0][1])
    assert out == (hashed_page() if chunks else b"")
    assert ("Content-Length" in headers) == whole
    if whole:
        assert headers["Content-Length"] == str(len(out))
    assert body.closed == 1
