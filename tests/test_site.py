"""``hashstatic.site.Site``: a directory served as a website at ``/``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from webob import Request, Response

from hashstatic.site import Site
from tests.conftest import write_files

PAGE = b"<!doctype html><title>Home</title>\n"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    root = tmp_path / "www"
    files = {
        "index.html": PAGE,
        "docs/index.html": b"<p>docs</p>",
        "docs/page.html": b"<p>page</p>",
        "empty/readme.txt": b"no index here",
        "css/site.css": b"body{}",
        "js/app.js": b"1;",
        "fonts/a.woff2": b"wOF2",
        "caf\u00e9.html": b"<p>utf-8 name</p>",
        ".env": b"SECRET=1",
        ".git/config": b"[core]",
    }
    write_files(root, files)
    (tmp_path / "secret.txt").write_bytes(b"outside the root")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(root / "docs" / "page.html", root / "alias.html")
    return Site(root)


def get(site: Site, path: str, **kwargs: Any) -> Response:
    response = Request.blank(path, **kwargs).get_response(site)
    response.body  # noqa: B018 -- reading the body closes the file, as a server would
    return response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/", PAGE, id="root-index"),
        pytest.param("/index.html", PAGE, id="page"),
        pytest.param("/docs/", b"<p>docs</p>", id="directory-index"),
        pytest.param("/docs/page.html", b"<p>page</p>", id="nested-page"),
        pytest.param("/caf%C3%A9.html", b"<p>utf-8 name</p>", id="utf-8-name"),
        pytest.param("/alias.html", b"<p>page</p>", id="symlink-inside-root"),
        pytest.param("/docs//page.html", b"<p>page</p>", id="empty-segment"),
    ],
)
def test_serves_files_and_directory_indexes(site: Site, path: str, body: bytes) -> None:
    response = get(site, path)
    assert response.status_int == 200
    assert response.body == body
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.content_length == len(body)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        pytest.param("/css/site.css", "text/css; charset=utf-8", id="css"),
        pytest.param("/js/app.js", "text/javascript; charset=utf-8", id="js"),
        pytest.param("/fonts/a.woff2", "font/woff2", id="font"),
        pytest.param("/empty/readme.txt", "text/plain; charset=utf-8", id="text"),
    ],
)
def test_content_type_follows_the_extension(site: Site, path: str, content_type: str) -> None:
    assert get(site, path).headers["Content-Type"] == content_type


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/missing.html", id="missing"),
        pytest.param("/empty/", id="directory-without-index"),
        pytest.param("/../secret.txt", id="dot-dot"),
        pytest.param("/%2e%2e/secret.txt", id="encoded-dot-dot"),
        pytest.param("/docs/..%2f..%2fsecret.txt", id="encoded-slash"),
        pytest.param("/docs\\..\\..\\secret.txt", id="backslash"),
        pytest.param("/index.html%00.txt", id="nul"),
        pytest.param("/leak.txt", id="symlink-out-of-root"),
        pytest.param("/.env", id="dotfile"),
        pytest.param("/.git/config", id="dot-directory"),
        pytest.param("/caf%E9.html", id="not-utf-8"),
    ],
)
def test_never_serves_what_is_not_a_published_file(site: Site, path: str) -> None:
    response = get(site, path)
    assert response.status_int == 404
    assert b"outside the root" not in response.body
    assert b"SECRET" not in response.body


def test_a_directory_url_without_slash_redirects_keeping_the_query(site: Site) -> None:
    response = get(site, "/docs?x=1")
    assert response.status_int == 301
    assert response.location == "http://localhost/docs/?x=1"


def test_other_methods_are_not_allowed(site: Site) -> None:
    response = get(site, "/", method="POST")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_head_sends_headers_only(site: Site) -> None:
    response = get(site, "/", method="HEAD")
    assert response.status_int == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == str(len(PAGE))


def test_range_of_one_byte(site: Site) -> None:
    response = get(site, "/", headers={"Range": "bytes=0-0"})
    assert response.status_int == 206
    assert response.body == PAGE[:1]
    assert response.headers["Content-Range"] == f"bytes 0-0/{len(PAGE)}"


def test_validators_answer_304(site: Site) -> None:
    first = get(site, "/")
    assert first.etag
    again = get(site, "/", headers={"If-None-Match": f'"{first.etag}"'})
    assert again.status_int == 304
    assert again.body == b""


def test_a_changed_page_gets_a_new_etag(site: Site) -> None:
    first = get(site, "/docs/page.html")
    path = Path(site.root) / "docs" / "page.html"
    path.write_bytes(b"<p>page, edited</p>")
    second = get(site, "/docs/page.html", headers={"If-None-Match": f'"{first.etag}"'})
    assert second.status_int == 200
    assert second.body == b"<p>page, edited</p>"


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a directory: give an existing --root"):
        Site(tmp_path / "nope")
