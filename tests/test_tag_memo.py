"""Tags are remembered, rewritten, across responses: never where the answer would differ."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hashstatic.cache import DiskIndex
from hashstatic.html import HtmlRewriter
from hashstatic.urls import UrlRewriter

TAG = b'<link rel="stylesheet" href="../static/site.css">'


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:12]


def rewrite(index: DiskIndex, memo: dict[Any, Any], page_url: str, doc: bytes) -> bytes:
    urls = UrlRewriter(prefix="/static/", page_url=page_url, lookup=index.lookup, memo=memo)
    return HtmlRewriter(urls).rewrite(doc)


def test_same_tag_in_other_directories_and_after_base(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(b"a {}")
    index = DiskIndex(tmp_path)
    memo: dict[Any, Any] = {}
    hashed = TAG.replace(b"site.css", f"site.{md5(b'a {}')}.css".encode())
    assert rewrite(index, memo, "http://h/docs/page.html", TAG) == hashed
    # The same bytes one directory deeper name /docs/static/site.css: no asset.
    assert rewrite(index, memo, "http://h/docs/deep/page.html", TAG) == TAG
    assert rewrite(index, memo, "http://h/docs/page.html", TAG) == hashed
    based = b'<base href="/docs/deep/">' + TAG
    assert rewrite(index, memo, "http://h/docs/page.html", based) == based
    based = b'<base href="/docs/">' + TAG
    assert rewrite(index, memo, "http://h/docs/deep/page.html", based) == (
        b'<base href="/docs/">' + hashed
    )


def test_a_changed_or_removed_asset_is_seen_by_the_next_response(tmp_path: Path) -> None:
    css = tmp_path / "site.css"
    css.write_bytes(b"a {}")
    index = DiskIndex(tmp_path)
    memo: dict[Any, Any] = {}
    url = "http://h/docs/page.html"
    first = rewrite(index, memo, url, TAG)
    assert md5(b"a {}").encode() in first
    css.write_bytes(b"b { color: red }")
    second = rewrite(index, memo, url, TAG)
    assert md5(b"b { color: red }").encode() in second
    css.unlink()
    assert rewrite(index, memo, url, TAG) == TAG
    css.write_bytes(b"a {}")
    assert rewrite(index, memo, url, TAG) == first


def test_an_already_hashed_url_stays_so_while_its_file_exists(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(b"a {}")
    index = DiskIndex(tmp_path)
    memo: dict[Any, Any] = {}
    url = "http://h/docs/page.html"
    hashed = rewrite(index, memo, url, TAG)
    assert rewrite(index, memo, url, hashed) == hashed
    # Once the file is gone, the hashed name is an ordinary missing file: still unchanged.
    (tmp_path / "site.css").unlink()
    assert rewrite(index, memo, url, hashed) == hashed


def test_with_a_manifest_remembered_tags_are_used_without_lookups(tmp_path: Path) -> None:
    from hashstatic.cache import FrozenIndex
    from hashstatic.manifest import build_manifest

    (tmp_path / "site.css").write_bytes(b"a {}")
    index = FrozenIndex(build_manifest(tmp_path))
    memo: dict[Any, Any] = {}
    asked: list[str] = []

    def lookup(path: str) -> Any:
        asked.append(path)
        return index.lookup(path)

    def once(frozen: bool) -> bytes:
        urls = UrlRewriter(
            prefix="/static/", page_url="http://h/docs/p.html", lookup=lookup, memo=memo
        )
        return HtmlRewriter(urls, frozen=frozen).rewrite(TAG)

    first = once(True)
    assert first == TAG.replace(b"site.css", f"site.{md5(b'a {}')}.css".encode())
    assert asked == ["site.css"]
    assert once(True) == first and asked == ["site.css"]  # remembered, not checked
    assert once(False) == first and asked == ["site.css", "site.css"]  # checked
