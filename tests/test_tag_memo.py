"""Tags are remembered, rewritten, across responses: never where the answer would differ."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

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


def watched_rewrite(index: DiskIndex, memo: dict[Any, Any], asked: list[str], doc: bytes) -> bytes:
    """One response, as the middleware makes it with a watching index: a path is looked up
    once (``asked``), the lookups share a ``seen``, and the kernel's word on them is asked
    once."""
    seen: dict[str, Any] = {}
    answers: dict[str, Any] = {}

    def lookup(path: str) -> Any:
        if path not in answers:
            asked.append(path)
            answers[path] = index.lookup(path, seen=seen)
        return answers[path]

    urls = UrlRewriter(
        prefix="/static/", page_url="http://h/docs/page.html", lookup=lookup, memo=memo
    )
    return HtmlRewriter(urls, vouched=index.vouched(seen)).rewrite(doc)


def watching(root: Path) -> DiskIndex:
    index = DiskIndex(root, watch=True)
    if not index.watching:
        pytest.skip("no inotify on this file system: every lookup stats")
    return index


def test_with_a_watching_index_vouched_tags_are_used_without_lookups_until_a_change(
    tmp_path: Path,
) -> None:
    css = tmp_path / "site.css"
    css.write_bytes(b"a {}")
    index = watching(tmp_path)
    memo: dict[Any, Any] = {}
    asked: list[str] = []
    first = watched_rewrite(index, memo, asked, TAG)
    assert md5(b"a {}").encode() in first and asked == ["site.css"]
    # Nothing changed: the kernel vouches for the remembered tag, which is used unlooked.
    assert watched_rewrite(index, memo, asked, TAG) == first and asked == ["site.css"]
    css.write_bytes(b"b { color: red }")
    changed = watched_rewrite(index, memo, asked, TAG)
    assert md5(b"b { color: red }").encode() in changed and asked == ["site.css"] * 2
    assert watched_rewrite(index, memo, asked, TAG) == changed and asked == ["site.css"] * 2
    css.unlink()
    assert watched_rewrite(index, memo, asked, TAG) == TAG


def test_a_tag_the_kernel_cannot_vouch_for_is_looked_up_every_time(tmp_path: Path) -> None:
    # A file reached through a symlink, and a missing one behind a symlinked directory: no
    # watch covers either (the directories they are in were never watched), so a change
    # there is reported to nobody and only a lookup sees it.
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "real.css").write_bytes(b"a {}")
    (tmp_path / "link.css").symlink_to("hidden/real.css")
    (tmp_path / "ln").symlink_to("hidden")
    linked = TAG.replace(b"site.css", b"link.css")
    missing = TAG.replace(b"site.css", b"ln/new.css")
    index = watching(tmp_path)
    memo: dict[Any, Any] = {}
    asked: list[str] = []
    for _ in range(2):
        assert md5(b"a {}").encode() in watched_rewrite(index, memo, asked, linked)
        assert watched_rewrite(index, memo, asked, missing) == missing
    assert asked == ["link.css", "ln/new.css"] * 2
    (tmp_path / "hidden" / "real.css").write_bytes(b"b { color: red }")
    (tmp_path / "hidden" / "new.css").write_bytes(b"c {}")
    assert md5(b"b { color: red }").encode() in watched_rewrite(index, memo, asked, linked)
    assert md5(b"c {}").encode() in watched_rewrite(index, memo, asked, missing)


def test_a_long_stream_holds_what_its_assets_are_not_each_tag_used(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(b"a {}")
    (tmp_path / "app.js").write_bytes(b"go()")
    index = DiskIndex(tmp_path)
    memo: dict[Any, Any] = {}
    url = "http://h/docs/page.html"
    script = b'<script src="../static/app.js"></script>'
    urls = UrlRewriter(prefix="/static/", page_url=url, lookup=index.lookup, memo=memo)
    rewriter = HtmlRewriter(urls)
    out = [rewriter.feed(b"<p>" + TAG + script) for _ in range(5000)]
    out.append(rewriter.close())
    # Folded (no fold: a list as long as the stream), and nothing lost by folding.
    assert b"".join(out).count(md5(b"go()").encode()) == 5000
    assert len(rewriter._hits) <= 1024  # of the 10,000 remembered tags used
    assert {path: asset.digest for path, asset in rewriter.assets.items()} == {
        "site.css": hashlib.md5(b"a {}").hexdigest(),
        "app.js": hashlib.md5(b"go()").hexdigest(),
    }
