from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from hashstatic import cache
from hashstatic.cache import Asset, DiskIndex, FrozenIndex, is_safe_path, iter_files
from hashstatic.manifest import Manifest, build_manifest, load_manifest, write_manifest
from hashstatic.naming import hashed_name


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def write(path: Path, data: bytes, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


class CountingIndex(DiskIndex):
    """Counts how often file contents are read, through the documented hashing hook."""

    def __init__(self, root: Path, **options: Any) -> None:
        super().__init__(root, **options)
        self.reads = 0
        self._reads_lock = threading.Lock()

    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        with self._reads_lock:
            self.reads += 1
        return super()._digest(stream, integrity)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    write(static / "a.css", b"body { color: red }")
    write(static / "css" / "site.css", b"h1 {}")
    write(static / "css" / "deep" / "x.js", b"let x")
    write(static / "café.css", b"cafe")
    write(static / "name with space.css", b"space")
    write(static / ".env", b"SECRET=1")
    write(static / ".git" / "config", b"[core]")
    write(static / "css" / ".hidden.css", b"hidden")
    write(tmp_path / "secret.css", b"outside")
    return static


# -- hashing ---------------------------------------------------------------------------------


def test_lookup_describes_the_file(root: Path) -> None:
    index = DiskIndex(root)
    asset = index.lookup("css/site.css")
    assert asset == Asset(
        path="css/site.css",
        hashed=hashed_name("css/site.css", md5(b"h1 {}")[:12]),
        digest=md5(b"h1 {}"),
        size=5,
        mtime_ns=os.stat(root / "css" / "site.css").st_mtime_ns,
        integrity=None,
    )


def test_integrity_is_sha384_of_the_bytes(root: Path) -> None:
    asset = DiskIndex(root).lookup("a.css", integrity=True)
    assert asset is not None
    assert asset.integrity == sri(b"body { color: red }")


def test_integrity_is_remembered(root: Path) -> None:
    index = CountingIndex(root)
    first = index.lookup("a.css", integrity=True)
    assert index.lookup("a.css", integrity=True) is first
    assert index.lookup("a.css") is first
    assert index.reads == 1


def test_integrity_asked_later_reads_again_once(root: Path) -> None:
    index = CountingIndex(root)
    assert index.lookup("a.css") is not None
    later = index.lookup("a.css", integrity=True)
    assert later is not None
    assert later.integrity == sri(b"body { color: red }")
    assert index.lookup("a.css", integrity=True) is later
    assert index.reads == 2


def test_unchanged_file_is_not_read_again(root: Path) -> None:
    index = CountingIndex(root)
    first = index.lookup("a.css")
    assert first is not None
    assert index.lookup("a.css") is first
    assert index.lookup("a.css") is first
    assert index.reads == 1


def test_hash_length_sets_the_hashed_name(root: Path) -> None:
    asset = DiskIndex(root, hash_length=8).lookup("a.css")
    assert asset is not None
    assert asset.hashed == f"a.{md5(b'body { color: red }')[:8]}.css"
    assert asset.digest == md5(b"body { color: red }")


def test_changed_file_gets_new_digest(root: Path) -> None:
    index = DiskIndex(root)
    write(root / "a.css", b"old", mtime_ns=1_000_000_000_000_000_000)
    assert index.lookup("a.css") is not None
    # Same mtime (a coarse clock, or a restored backup): the size tells.
    write(root / "a.css", b"new content", mtime_ns=1_000_000_000_000_000_000)
    asset = index.lookup("a.css")
    assert asset is not None
    assert asset.digest == md5(b"new content")
    assert asset.size == 11


def test_same_size_change_is_noticed_by_mtime(root: Path) -> None:
    index = DiskIndex(root)
    write(root / "a.css", b"aaaa", mtime_ns=1_000_000_000_000_000_000)
    assert index.lookup("a.css") is not None
    write(root / "a.css", b"bbbb", mtime_ns=1_000_000_000_000_000_001)
    asset = index.lookup("a.css")
    assert asset is not None
    assert asset.digest == md5(b"bbbb")
    assert asset.mtime_ns == 1_000_000_000_000_000_001


def test_touched_file_is_read_again_and_keeps_its_digest(root: Path) -> None:
    index = CountingIndex(root)
    first = index.lookup("a.css")
    os.utime(root / "a.css", ns=(5_000_000_000, 5_000_000_000))
    second = index.lookup("a.css")
    assert first is not None
    assert second is not None
    assert second.digest == first.digest
    assert second.mtime_ns == 5_000_000_000
    assert index.reads == 2


def test_replaced_file_is_noticed_by_inode(root: Path) -> None:
    index = DiskIndex(root)
    write(root / "a.css", b"aaaa", mtime_ns=7_000_000_000)
    assert index.lookup("a.css") is not None
    write(root / "b.css", b"bbbb", mtime_ns=7_000_000_000)
    os.replace(root / "b.css", root / "a.css")  # same size and mtime, another file
    asset = index.lookup("a.css")
    assert asset is not None
    assert asset.digest == md5(b"bbbb")


def test_vanished_file_is_not_an_asset(root: Path) -> None:
    index = DiskIndex(root)
    assert index.lookup("a.css") is not None
    (root / "a.css").unlink()
    assert index.lookup("a.css") is None
    write(root / "a.css", b"back")
    asset = index.lookup("a.css")
    assert asset is not None
    assert asset.digest == md5(b"back")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_not_an_asset(root: Path) -> None:
    (root / "a.css").chmod(0)
    assert DiskIndex(root).lookup("a.css") is None


class ChangingIndex(CountingIndex):
    """Rewrites the file just after each of its first ``changes`` reads, as an editor would."""

    def __init__(self, root: Path, target: Path, changes: int) -> None:
        super().__init__(root)
        self.target = target
        self.changes = changes

    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        result = super()._digest(stream, integrity)
        if self.reads <= self.changes:
            with open(self.target, "r+b") as f:  # in place: same inode, new size and mtime
                f.write(b"version %d, longer than before" % self.reads)
            os.utime(self.target, ns=(self.reads * 10**9, self.reads * 10**9))
        return result


def test_file_changed_while_read_is_read_again(root: Path) -> None:
    index = ChangingIndex(root, root / "a.css", changes=1)
    asset = index.lookup("a.css")
    assert asset is not None
    assert asset.digest == md5((root / "a.css").read_bytes())
    assert index.reads == 2
    assert index.lookup("a.css") is asset
    assert index.reads == 2


def test_file_that_keeps_changing_is_answered_but_not_cached(root: Path) -> None:
    index = ChangingIndex(root, root / "a.css", changes=1000)
    assert index.lookup("a.css") is not None
    assert index.reads == cache._READ_ATTEMPTS
    index.changes = 0  # the file settles down
    settled = index.lookup("a.css")
    assert index.reads == cache._READ_ATTEMPTS + 1
    assert settled is not None
    assert settled.digest == md5((root / "a.css").read_bytes())


# -- what is an asset ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("a.css", id="top-level"),
        pytest.param("css/site.css", id="nested"),
        pytest.param("css/deep/x.js", id="deeper"),
        pytest.param("café.css", id="non-ascii"),
        pytest.param("name with space.css", id="space"),
    ],
)
def test_file_inside_root_is_an_asset(root: Path, path: str) -> None:
    asset = DiskIndex(root).lookup(path)
    assert asset is not None
    assert asset.path == path
    assert asset.digest == md5((root / path).read_bytes())


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("", id="empty"),
        pytest.param("css", id="directory"),
        pytest.param("missing.css", id="missing"),
        pytest.param("css//site.css", id="empty-segment"),
        pytest.param("/a.css", id="leading-slash"),
        pytest.param("a.css/", id="trailing-slash"),
        pytest.param("./a.css", id="dot-segment"),
        pytest.param("css/../a.css", id="dotdot-inside"),
        pytest.param("../secret.css", id="dotdot-outside"),
        pytest.param("css\\site.css", id="backslash"),
        pytest.param("a.css\x00.png", id="nul"),
        pytest.param(".env", id="dotfile"),
        pytest.param(".git/config", id="dot-directory"),
        pytest.param("css/.hidden.css", id="nested-dotfile"),
    ],
)
def test_path_that_is_not_an_asset(root: Path, path: str) -> None:
    assert DiskIndex(root).lookup(path) is None


def test_symlink_leaving_root_is_not_an_asset(root: Path) -> None:
    (root / "evil.css").symlink_to(root.parent / "secret.css")
    assert DiskIndex(root).lookup("evil.css") is None


def test_directory_symlink_leaving_root_is_not_an_asset(root: Path) -> None:
    (root / "out").symlink_to(root.parent)
    assert DiskIndex(root).lookup("out/secret.css") is None


def test_symlink_inside_root_is_an_asset(root: Path) -> None:
    (root / "alias.css").symlink_to("css/site.css")
    asset = DiskIndex(root).lookup("alias.css")
    assert asset is not None
    assert asset.path == "alias.css"
    assert asset.hashed == f"alias.{md5(b'h1 {}')[:12]}.css"


def test_symlink_to_a_dotfile_is_not_an_asset(root: Path) -> None:
    (root / "public.txt").symlink_to(".env")
    assert DiskIndex(root).lookup("public.txt") is None


def test_symlink_retargeted_outside_root_is_no_longer_an_asset(root: Path) -> None:
    index = DiskIndex(root)
    (root / "alias.css").symlink_to("a.css")
    assert index.lookup("alias.css") is not None
    (root / "alias.css").unlink()
    (root / "alias.css").symlink_to(root.parent / "secret.css")
    assert index.lookup("alias.css") is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_not_an_asset(root: Path) -> None:
    os.mkfifo(root / "pipe.css")
    assert DiskIndex(root).lookup("pipe.css") is None


def test_root_behind_a_symlink_is_resolved(root: Path) -> None:
    (root.parent / "link").symlink_to(root)
    index = DiskIndex(root.parent / "link")
    assert index.root == os.path.realpath(root)
    assert index.lookup("a.css") is not None


def test_path_of_names_the_file_under_root(root: Path) -> None:
    index = DiskIndex(root)
    assert index.path_of("css/site.css") == os.path.join(os.path.realpath(root), "css", "site.css")
    with pytest.raises(ValueError, match="not a relative asset path"):
        index.path_of("../secret.css")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("a/b.css", True, id="nested"),
        pytest.param("a/.b", False, id="dotfile"),
        pytest.param("a/../b", False, id="dotdot"),
        pytest.param("a\\b", False, id="backslash"),
        pytest.param("a//b", False, id="empty-segment"),
        pytest.param("café/ü.css", True, id="utf8"),
        pytest.param("\udcff.css", False, id="undecodable-byte"),
    ],
)
def test_is_safe_path(path: str, expected: bool) -> None:
    assert is_safe_path(path) is expected


# -- construction ----------------------------------------------------------------------------


def test_missing_root_says_how_to_fix_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = (
        f"static root '{missing}' does not exist: create it or pass root= the directory "
        "that holds your assets"
    )
    with pytest.raises(ValueError) as raised:
        DiskIndex(missing)
    assert str(raised.value) == message


def test_root_that_is_a_file_says_how_to_fix_it(root: Path) -> None:
    with pytest.raises(ValueError, match="is not a directory: pass root= the directory"):
        DiskIndex(root / "a.css")


@pytest.mark.parametrize(
    "hash_length",
    [
        pytest.param(7, id="too-short"),
        pytest.param(33, id="too-long"),
        pytest.param(True, id="bool"),
        pytest.param(12.0, id="float"),
        pytest.param("12", id="str"),
    ],
)
def test_bad_hash_length_names_the_range(root: Path, hash_length: Any) -> None:
    with pytest.raises(ValueError, match="from 8 to 32"):
        DiskIndex(root, hash_length=hash_length)


@pytest.mark.parametrize("hash_length", [pytest.param(8, id="8"), pytest.param(32, id="32")])
def test_hash_length_bounds_are_allowed(root: Path, hash_length: int) -> None:
    asset = DiskIndex(root, hash_length=hash_length).lookup("a.css")
    assert asset is not None
    assert asset.hashed == hashed_name("a.css", asset.digest[:hash_length])


def test_disk_index_has_no_fingerprint(root: Path) -> None:
    assert DiskIndex(root).fingerprint is None


# -- threads ---------------------------------------------------------------------------------


class SlowIndex(CountingIndex):
    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        time.sleep(0.2)  # long enough for every thread to arrive while the first one reads
        return super()._digest(stream, integrity)


def run_threads(count: int, target: Any) -> list[Any]:
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = target(i)
        except BaseException as error:  # surfaced in the main thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_lookups_hash_a_file_once(root: Path) -> None:
    index = SlowIndex(root)
    results = run_threads(8, lambda i: index.lookup("a.css"))
    assert index.reads == 1
    assert all(result is results[0] for result in results)
    assert isinstance(results[0], Asset)


def test_lookups_of_different_files_do_not_wait_for_each_other(root: Path) -> None:
    both_reading = threading.Barrier(2, timeout=10)

    class MeetingIndex(DiskIndex):
        def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
            both_reading.wait()  # breaks if one read waits for the other to finish
            return super()._digest(stream, integrity)

    index = MeetingIndex(root)
    results = run_threads(2, lambda i: index.lookup(["a.css", "css/site.css"][i]))
    assert [type(result) for result in results] == [Asset, Asset]


# -- walking ---------------------------------------------------------------------------------


def test_iter_files_lists_assets_in_sorted_order(root: Path) -> None:
    write(root / "a" / "b.css", b"")
    assert list(iter_files(root)) == [
        "a.css",
        "a/b.css",
        "café.css",
        "css/deep/x.js",
        "css/site.css",
        "name with space.css",
    ]


def test_iter_files_follows_only_symlinks_that_stay_inside(root: Path) -> None:
    (root / "alias.css").symlink_to("a.css")
    (root / "linked").symlink_to("css/deep")
    (root / "evil.css").symlink_to(root.parent / "secret.css")
    (root / "out").symlink_to(root.parent)
    (root / "public.txt").symlink_to(".env")
    found = list(iter_files(root))
    assert "alias.css" in found
    assert "linked/x.js" in found
    assert not [path for path in found if path.startswith(("evil", "out", "public"))]


def test_iter_files_survives_a_symlink_loop(root: Path) -> None:
    (root / "css" / "deep" / "up").symlink_to("..")  # css/deep/up/deep/up/... forever
    found = list(iter_files(root))
    assert "css/site.css" in found
    assert "css/deep/up/site.css" not in found


def test_iter_files_skips_a_dot_named_symlink_to_an_asset(root: Path) -> None:
    (root / ".alias.css").symlink_to("a.css")
    (root / "css" / ".dir").symlink_to("deep")
    found = list(iter_files(root))
    assert "a.css" in found
    assert ".alias.css" not in found
    assert "css/.dir/x.js" not in found


@pytest.mark.skipif(sys.platform != "linux", reason="needs byte file names")
def test_iter_files_skips_names_that_are_not_utf8(root: Path) -> None:
    (root / os.fsdecode(b"\xff.css")).write_bytes(b"")
    name = os.fsdecode(b"\xff.css")
    assert name in os.listdir(root)
    assert name not in list(iter_files(root))
    assert DiskIndex(root).lookup(name) is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_iter_files_skips_what_lookup_rejects(root: Path) -> None:
    os.mkfifo(root / "pipe.css")
    write(root / "back\\slash.css", b"")
    found = list(iter_files(root))
    assert "pipe.css" not in found
    assert "back\\slash.css" not in found
    index = DiskIndex(root)
    assert all(index.lookup(path) is not None for path in found)


# -- frozen ----------------------------------------------------------------------------------


def frozen_asset(path: str, data: bytes) -> Asset:
    return Asset(path, hashed_name(path, md5(data)[:12]), md5(data), len(data), 0, sri(data))


def test_frozen_index_answers_from_the_manifest() -> None:
    asset = frozen_asset("css/a.css", b"x")
    index = FrozenIndex(Manifest(prefix="/static/", hash_length=12, files={"css/a.css": asset}))
    assert index.lookup("css/a.css") is asset
    assert index.lookup("css/a.css", integrity=True) is asset
    assert index.lookup("css/b.css") is None
    assert index.hash_length == 12


def test_frozen_fingerprint_follows_the_files() -> None:
    def fingerprint(data: bytes) -> str | None:
        files = {"a.css": frozen_asset("a.css", data)}
        return FrozenIndex(Manifest("/static/", 12, files)).fingerprint

    assert fingerprint(b"one") == fingerprint(b"one")
    assert fingerprint(b"one") != fingerprint(b"two")
    assert len(fingerprint(b"one") or "") == 32


def test_frozen_index_touches_no_file(
    root: Path, tmp_path: Path, file_access: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(build_manifest(root), tmp_path / "manifest.json")
    index = FrozenIndex(load_manifest(tmp_path / "manifest.json"))
    shutil.rmtree(root)

    def no_stat(*args: Any, **kwargs: Any) -> os.stat_result:
        raise AssertionError("stat during a frozen lookup")

    file_access.clear()
    with monkeypatch.context() as patch:
        patch.setattr(os, "stat", no_stat)
        patch.setattr(os, "lstat", no_stat)
        found = index.lookup("css/site.css", integrity=True)
        missing = index.lookup("missing.css")
    assert file_access == []
    assert found is not None
    assert found.digest == md5(b"h1 {}")
    assert found.integrity == sri(b"h1 {}")
    assert missing is None


def test_audit_hook_sees_disk_lookups(root: Path, file_access: list[Any]) -> None:
    # The check above is only worth something if the hook would catch a disk lookup.
    DiskIndex(root).lookup("a.css")
    assert "open" in [event for event, _ in file_access]


def test_one_response_stats_each_file_once(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two stylesheets naming the same image, and the image itself: three files, three stats,
    when the lookups of one response share what they were told."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img/x.png").write_bytes(b"png")
    (tmp_path / "a.css").write_bytes(b"a { background: url(img/x.png) }")
    (tmp_path / "b.css").write_bytes(b"b { background: url(img/x.png) }")
    index = DiskIndex(tmp_path)
    warm = [index.lookup(p) for p in ("a.css", "b.css", "img/x.png")]
    assert all(a is not None for a in warm)
    stats: list[str] = request.getfixturevalue("stat_calls")  # counted from here on
    seen: dict[str, Asset | None] = {}
    for path in ("a.css", "b.css", "img/x.png"):
        if path not in seen:
            seen[path] = index.lookup(path, seen=seen)
    assert [seen[p] for p in ("a.css", "b.css", "img/x.png")] == warm
    assert sorted(Path(p).name for p in stats) == ["a.css", "b.css", "x.png"]
    # Without a shared memo each stylesheet checks the image again.
    stats.clear()
    for path in ("a.css", "b.css", "img/x.png"):
        index.lookup(path)
    assert sorted(Path(p).name for p in stats) == ["a.css", "b.css", "x.png", "x.png", "x.png"]
    # A changed image is still noticed through the memo, and changes both stylesheets.
    (tmp_path / "img/x.png").write_bytes(b"png, changed")
    seen = {}
    a = index.lookup("a.css", seen=seen)
    assert a is not None and a.digest != warm[0].digest  # type: ignore[union-attr]
    assert (
        seen["img/x.png"] is not None
        and seen["img/x.png"].digest == cache._hash(b"png, changed", False)[0]
    )
