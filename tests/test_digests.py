"""Files read and hashed in C (``hashstatic._digests.digest_files``), many at a time through
``DiskIndex.lookup_unseen`` as build_manifest reads them, or one at a time by a cold lookup:
the same answers as the Python read, with anything C cannot read plainly left to it."""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hashstatic import cache
from hashstatic.cache import DiskIndex
from hashstatic.manifest import build_manifest, dumps_manifest
from tests.conftest import looked_up_one_at_a_time, write_files


def _digest_files() -> Callable[..., list[Any]] | None:
    """The C function, even with ``HASHSTATIC_PURE_PYTHON`` set, or None where not built."""
    try:
        module = importlib.import_module("hashstatic._digests")
    except ImportError:
        return None
    function: Callable[..., list[Any]] | None = getattr(module, "digest_files", None)
    return function


DIGEST_FILES = _digest_files()
needs_c = pytest.mark.skipif(DIGEST_FILES is None, reason="hashstatic._digests is not built")
# Whether an index reads in batches here (not with HASHSTATIC_PURE_PYTHON=1, nor without C).
batched = pytest.mark.skipif(
    cache._digest_files is None, reason="DiskIndex does not read in C here"
)


def digest_files(paths: list[Path], keep: bool, sha384: bool) -> list[Any]:
    assert DIGEST_FILES is not None
    return DIGEST_FILES([str(p) for p in paths], [keep] * len(paths), sha384)


def key_of(path: Path) -> tuple[int, int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


# -- the C function --------------------------------------------------------------------------


@needs_c
@pytest.mark.parametrize("keep", [False, True], ids=["hashed", "kept"])
@pytest.mark.parametrize("sha384", [False, True], ids=["md5", "md5+sha384"])
def test_digests_and_bytes_are_those_of_the_file(tmp_path: Path, keep: bool, sha384: bool) -> None:
    # Around hashlib's threshold for letting go of the lock, and the 256 KiB read size.
    sizes = [0, 1, 2047, 2048, 262_143, 262_144, 262_145, 1_000_003]
    files = [tmp_path / f"f{size}" for size in sizes]
    for path, size in zip(files, sizes, strict=True):
        path.write_bytes(os.urandom(size))
    answers = digest_files(files, keep, sha384)
    for path, answer in zip(files, answers, strict=True):
        data = path.read_bytes()
        key, md5, sha, kept = answer
        assert key == key_of(path)
        assert md5 == hashlib.md5(data).digest()
        assert sha == (hashlib.sha384(data).digest() if sha384 else None)
        assert kept == (data if keep else None)


@needs_c
def test_what_c_cannot_read_plainly_is_left_to_the_caller(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.png": b"a", "dir/b.png": b"b"})
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    (tmp_path / "linked").symlink_to(tmp_path / "dir")
    os.mkfifo(tmp_path / "pipe.png")
    paths = ["missing.png", "dir", "link.png", "linked/b.png", "pipe.png", "a.png", "dir/b.png"]
    started = time.monotonic()
    answers = digest_files([tmp_path / p for p in paths], True, True)
    assert time.monotonic() - started < 5  # a FIFO with no writer must not hold it
    found = {
        path: a if a is None or isinstance(a, int) else "read"
        for path, a in zip(paths, answers, strict=True)
    }
    assert found == {
        "missing.png": errno.ENOENT,  # the open's error, which says whether to look further
        "dir": None,  # opened, but not a regular file
        "link.png": errno.ELOOP,  # a symlink, even one inside the root: lookup checks it
        "linked/b.png": errno.ELOOP,
        "pipe.png": None,
        "a.png": "read",
        "dir/b.png": "read",
    }


@needs_c
def test_file_longer_than_its_fstat_said_is_left_to_the_caller() -> None:
    # /proc files say size 0 and then give bytes: the read outgrows what fstat counted, as a
    # file appended to while it is read does.
    status = Path(f"/proc/{os.getpid()}/status")
    if not status.is_file() or status.stat().st_size != 0:
        pytest.skip("no /proc file whose size says 0")
    assert status.read_bytes()
    assert digest_files([status], False, False) == [None]


@needs_c
def test_each_file_is_opened_as_audit_hooks_see_opens(
    tmp_path: Path, file_access: list[tuple[str, object]]
) -> None:
    write_files(tmp_path, {"a.png": b"a", "b.css": b"b {}"})
    names = [tmp_path / "a.png", tmp_path / "b.css", tmp_path / "none.png"]
    file_access.clear()  # the writes above
    digest_files(names, False, False)
    assert [p for event, p in file_access if event == "open"] == [str(n) for n in names]


@needs_c
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("a", [False], True), id="paths-not-a-list"),
        pytest.param(([b"a"], [False], True), id="path-not-str"),
        pytest.param((["a"], [], True), id="keep-shorter"),
        pytest.param((["a"], [False]), id="two-arguments"),
    ],
)
def test_bad_arguments_raise(args: tuple[Any, ...]) -> None:
    assert DIGEST_FILES is not None
    with pytest.raises((TypeError, ValueError)):
        DIGEST_FILES(*args)


# -- DiskIndex.lookup_unseen -----------------------------------------------------------------

TREE = {
    "img/logo.png": b"\x89PNG logo",
    "img/empty.png": b"",
    "css/site.css": b"body { background: url(../img/logo.png) }\n",
    "css/plain.css": b"body { color: red }\n",
    "css/gone.css": b"body { background: url(../img/none.png) }\n",
    "js/app.js": b"let a = 1;\n//# sourceMappingURL=app.js.map\n",
    "js/app.js.map": b'{"version": 3}',
    "js/lib.js": b"let b = 2;\n",
    ".secret": b"key",
    "big.bin": b"0123456789" * 60_000,
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    write_files(root, TREE)
    (root / "alias.png").symlink_to(root / "img" / "logo.png")
    return root


ASKED = [*TREE, "alias.png", "img", "missing.png", "../static/img/logo.png"]


@batched
@pytest.mark.parametrize("integrity", [False, True], ids=["plain", "integrity"])
def test_reads_in_c_answer_as_reads_in_python(
    tree: Path, integrity: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as python_only:
        python_only.setattr(cache, "_digest_files", None)
        in_python = DiskIndex(tree)
        expected = [in_python.lookup(p, integrity=integrity) for p in ASKED]
        bodies = [in_python.body(p) for p in ASKED]
    one_by_one = DiskIndex(tree)  # each cold lookup a batch of one
    assert [one_by_one.lookup(p, integrity=integrity) for p in ASKED] == expected
    assert [one_by_one.body(p) for p in ASKED] == bodies
    index = DiskIndex(tree)
    assert index.batched
    answers = index.lookup_unseen(ASKED, integrity=integrity)
    assert answers == expected
    assert [index.body(p) for p in ASKED] == bodies
    rewritten = {p for p, a in zip(ASKED, answers, strict=True) if a is not None and a.rewritten}
    assert rewritten == {"css/site.css", "js/app.js"}  # the case the batch hands to lookup
    # What was read is remembered: asking again answers the same asset, with no read.
    for path, answer in zip(ASKED, answers, strict=True):
        if answer is not None:
            assert index.lookup(path, integrity=integrity) is answer


@batched
def test_lookup_unseen_reads_no_file_it_has_answered_for(
    tree: Path, file_access: list[tuple[str, object]]
) -> None:
    index = DiskIndex(tree)
    seen = index.lookup("img/logo.png")
    file_access.clear()
    answers = index.lookup_unseen(["img/logo.png", "js/lib.js"])
    assert answers[0] is seen
    assert [p for event, p in file_access if event == "open"] == [str(tree / "js" / "lib.js")]


@batched
@pytest.mark.parametrize("many", [False, True], ids=["lookup", "lookup_unseen"])
def test_a_path_with_no_file_is_opened_once(
    tree: Path, file_access: list[tuple[str, object]], many: bool
) -> None:
    index = DiskIndex(tree)
    file_access.clear()
    if many:
        assert index.lookup_unseen(["missing.png", "img/none/x.png"]) == [None, None]
    else:
        assert index.lookup("missing.png") is None
        assert index.lookup("img/none/x.png") is None
    opened = [p for event, p in file_access if event == "open"]
    assert opened == [str(tree / "missing.png"), str(tree / "img" / "none" / "x.png")]


def test_index_reads_in_batches_only_through_its_own_digest(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Counting(DiskIndex):
        reads = 0

        def _digest(self, stream: Any, integrity: bool) -> tuple[str, str | None, int]:
            Counting.reads += 1
            return super()._digest(stream, integrity)

    counting = Counting(tree)
    assert not counting.batched
    counting.lookup_unseen(["img/logo.png", "js/lib.js"])
    assert Counting.reads == 2  # a subclass that watches reads still sees every read
    wrapped = DiskIndex(tree)
    monkeypatch.setattr(wrapped, "_digest", counting._digest)  # as test_concurrency wraps it
    assert not wrapped.batched
    monkeypatch.setattr(cache, "_digest_files", None)
    assert not DiskIndex(tree).batched


@batched
def test_build_manifest_is_the_same_read_in_c_or_in_python(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tree / ".secret").unlink()
    (tree / "alias.png").unlink()  # lookups of symlinks are compared above
    for i in range(100):  # more than one batch
        write_files(tree, {f"many/m{i}.svg": b"<svg>%d</svg>" % i})
    in_c = build_manifest(tree)
    monkeypatch.setattr(cache, "_digest_files", None)
    in_python = build_manifest(tree)
    assert dumps_manifest(in_c) == dumps_manifest(in_python)
    assert dict(in_c.files) == looked_up_one_at_a_time(tree)
