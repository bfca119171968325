"""What ``hashstatic._speedups`` does in C for the index's read path: ``open_plain``, an
``openat2`` that follows no symlink, so that the file opened is the one at the path and no
readlink of ``/proc/self/fd`` is needed (Linux); ``file_key``, the parts of ``fstat`` the
index compares; and ``find``, the rewriter's needle search as ``bytes.find``. How the index
uses them, and the Python they replace, are tested in test_coldstart_paths (every test there
runs both ways)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashstatic import cache

needs_find = pytest.mark.skipif(cache._find is bytes.find, reason="no hashstatic._speedups")
needs_openat2 = pytest.mark.skipif(
    cache._open_plain is None or cache._file_key is cache._fstat_key,
    reason="no openat2 here, or hashstatic._speedups is not built",
)


@needs_openat2
def test_open_plain_opens_the_file_at_the_path(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_bytes(b"a {}")
    assert cache._open_plain is not None
    fd = cache._open_plain(str(tmp_path / "a.css"))
    try:
        assert os.read(fd, 100) == b"a {}"
        assert not os.get_inheritable(fd)
        assert os.get_blocking(fd) is False
    finally:
        os.close(fd)


@needs_openat2
def test_open_plain_declines_any_symlink_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.css").write_bytes(b"a {}")
    (tmp_path / "alias.css").symlink_to("real/a.css")
    (tmp_path / "dir").symlink_to("real")
    assert cache._open_plain is not None
    assert cache._open_plain(str(tmp_path / "alias.css")) == -1
    assert cache._open_plain(str(tmp_path / "dir" / "a.css")) == -1
    with pytest.raises(FileNotFoundError):
        cache._open_plain(str(tmp_path / "missing.css"))
    with pytest.raises(NotADirectoryError):
        cache._open_plain(str(tmp_path / "real" / "a.css" / "x"))


@needs_openat2
def test_open_plain_is_seen_by_audit_hooks(tmp_path: Path, file_access: list[object]) -> None:
    (tmp_path / "a.css").write_bytes(b"a {}")
    assert cache._open_plain is not None
    file_access.clear()
    os.close(cache._open_plain(str(tmp_path / "a.css")))
    assert file_access == [("open", str(tmp_path / "a.css"))]


@needs_openat2
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_file_key_is_fstat_for_files_and_none_for_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_bytes(b"a {}")
    os.mkfifo(tmp_path / "fifo")
    for name, expected in [("a.css", True), (".", False), ("fifo", False)]:
        fd = os.open(tmp_path / name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            key = cache._file_key(fd)
            assert key == (cache._key(os.fstat(fd)) if expected else None)
        finally:
            os.close(fd)


@needs_find
@pytest.mark.parametrize("needle", [b"sourceMappingURL=", b"static/", b"/s"])
def test_find_is_bytes_find_at_every_offset(needle: bytes) -> None:
    """Around the 64- and 16-byte blocks the search takes at a time (SSE2) and the bytes
    after the last whole block."""
    n = len(needle)
    sizes = (0, 1, n - 1, n, 16, 17, 31, 32, 33, 47, 48, 64, 65, 100, 62 + n, 63 + n, 64 + n)
    for size in (*sizes, 127 + n, 128 + n, 150 + n, 200):
        hay = bytes(range(32, 32 + size % 90)) * (size // 90 + 1)
        hay = hay[:size].replace(needle[:1], b"~")
        assert cache._find(hay, needle) == hay.find(needle) == -1
        for at in range(size - len(needle) + 1):
            placed = hay[:at] + needle + hay[at + len(needle) :]
            assert cache._find(placed, needle) == placed.find(needle), (size, at)
            # Near misses before it: the first and last bytes in place, the middle wrong.
            if len(needle) > 2 and at >= len(needle):
                miss = needle[:1] + b"~" * (len(needle) - 2) + needle[-1:]
                early = miss + placed[len(miss) :]
                assert cache._find(early, needle) == early.find(needle), (size, at)
    miss = b"x" * 40 + b"sourceMappingURL-=" + b"s" * 16 + b"=" * 20
    assert cache._find(miss, b"sourceMappingURL=") == -1
    assert cache._find(b"ab", b"") == 0
    assert cache._find(b"..sourceMappingURL=..", b"sourceMappingURL=") == 2
