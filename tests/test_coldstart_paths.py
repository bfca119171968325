"""The index's read path, cut for cold starts: every file read with ``os.read`` on the
descriptor, a file no longer than its ``fstat`` said read in one call, and stylesheets and
scripts that name nothing not kept in memory. Each shortcut must keep the guarantees of
``hashstatic/cache.py``: a file that changes while it is read is read again, nothing outside
the root is read, a FIFO never blocks, and ``_digest`` stays the one place contents are read.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashstatic import cache
from hashstatic.cache import Asset, DiskIndex
from hashstatic.css import url_spans
from hashstatic.naming import hashed_name
from hashstatic.stylesheets import served_body
from tests.conftest import unprivileged

CHUNK = cache._CHUNK
ACCELERATED = cache._open_plain is not None and cache._file_key is not cache._fstat_key


@pytest.fixture(autouse=True, params=["c", "python"])
def opening(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs both ways: with the C accelerators (``openat2`` refusing symlinks,
    so no readlink is needed; ``fstat`` and the source map search in C), and without them
    (``open`` then a readlink of ``/proc/self/fd``), as where openat2 is missing or the
    extension is not built, and for any path a symlink is on."""
    if request.param == "c" and not ACCELERATED:
        pytest.skip("no openat2 here, or hashstatic._speedups is not built")
    if request.param == "python":
        monkeypatch.setattr(cache, "_open_plain", None)
        monkeypatch.setattr(cache, "_file_key", cache._fstat_key)
        monkeypatch.setattr(cache, "_find", bytes.find)
    return str(request.param)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def body(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ at every offset, so a misplaced read changes the digest."""
    block = hashlib.sha512(b"%d" % seed).digest()
    return (block * (size // len(block) + 1))[:size]


class Recording:
    """The stream ``_digest`` is given, wrapped: what each read returned, and a callback
    after each read (to change the file while it is being read)."""

    def __init__(self, stream: BinaryIO, after_read: Callable[[int], None] | None) -> None:
        self.stream = stream
        self.after_read = after_read
        self.chunks: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.chunks.append(data)
        if self.after_read is not None:
            self.after_read(len(self.chunks))
        return data


class WatchedIndex(DiskIndex):
    """Records the bytes of every read through the documented hook, ``_digest``; ``disturb``
    (read number, call number within it) runs after each ``read`` call of the first reads."""

    def __init__(self, root: Path, disturb: Callable[[int, int], None] | None = None) -> None:
        super().__init__(root)
        self.disturb = disturb
        self.reads: list[bytes] = []

    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        number = len(self.reads) + 1
        disturb = self.disturb
        recording = Recording(
            stream, None if disturb is None else lambda call: disturb(number, call)
        )
        result = super()._digest(recording, integrity)  # type: ignore[arg-type]
        self.reads.append(b"".join(recording.chunks))
        return result


@pytest.mark.parametrize(
    "size",
    [0, 1, 4095, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7],
    ids=lambda n: f"{n}B",
)
@pytest.mark.parametrize("name", ["img/a.bin", "js/a.js"])
def test_file_of_any_size_is_read_whole_once(tmp_path: Path, size: int, name: str) -> None:
    data = body(size)
    (tmp_path / name).parent.mkdir()
    (tmp_path / name).write_bytes(data)
    index = WatchedIndex(tmp_path)
    asset = index.lookup(name, integrity=True)
    assert asset is not None
    assert (asset.digest, asset.size, asset.integrity) == (md5(data), size, sri(data))
    assert index.reads == [data]
    assert index.lookup(name, integrity=True) is asset  # remembered: no second read
    assert len(index.reads) == 1


@pytest.mark.parametrize("size", [0, 10, CHUNK - 1, CHUNK], ids=lambda n: f"{n}B")
def test_file_that_grows_while_read_is_read_again_in_full(tmp_path: Path, size: int) -> None:
    """The first read ends where fstat said the file ends; what was appended meanwhile makes
    the fstat after differ, so the file is read again, to its new end."""
    target = tmp_path / "app.js"
    target.write_bytes(body(size))

    def append(number: int, call: int) -> None:
        if number == 1 and call == 1:
            with open(target, "ab") as f:
                f.write(b"// appended while it was read\n")

    index = WatchedIndex(tmp_path, append)
    asset = index.lookup("app.js")
    final = target.read_bytes()
    assert len(final) > size
    assert asset is not None
    assert (asset.digest, asset.size) == (md5(final), len(final))
    assert index.reads[-1] == final
    assert len(index.reads) == 2


def test_file_that_shrinks_while_read_is_read_again(tmp_path: Path) -> None:
    target = tmp_path / "font.woff2"
    target.write_bytes(body(2 * CHUNK + 5))

    def truncate(number: int, call: int) -> None:
        if number == 1 and call == 1:
            os.truncate(target, 10)

    index = WatchedIndex(tmp_path, truncate)
    asset = index.lookup("font.woff2")
    assert asset is not None
    assert (asset.digest, asset.size) == (md5(body(10)), 10)
    assert [len(read) for read in index.reads] == [CHUNK, 10]


def test_empty_file_that_gains_bytes_while_read_is_read_again(tmp_path: Path) -> None:
    target = tmp_path / "empty.css"
    target.write_bytes(b"")

    def fill(number: int, call: int) -> None:
        if number == 1 and call == 1:
            target.write_bytes(b"h1 { color: red }")  # in place: same inode

    index = WatchedIndex(tmp_path, fill)
    asset = index.lookup("empty.css")
    assert asset is not None
    assert asset.digest == md5(b"h1 { color: red }")
    assert index.reads == [b"", b"h1 { color: red }"]


def test_empty_file_is_an_asset(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    index = WatchedIndex(tmp_path)
    asset = index.lookup("empty.txt", integrity=True)
    assert asset is not None
    assert (asset.digest, asset.size, asset.integrity) == (md5(b""), 0, sri(b""))
    assert index.reads == [b""]


def test_digest_hook_may_read_the_whole_stream_at_once(tmp_path: Path) -> None:
    """The stream handed to ``_digest`` answers ``read()`` with no size, as a file does."""
    data = body(2 * CHUNK + 3)
    (tmp_path / "big.bin").write_bytes(data)
    whole: list[bytes] = []

    class Slurping(DiskIndex):
        def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
            whole.append(stream.read())
            return super()._digest(io.BytesIO(whole[-1]), integrity)

    asset = Slurping(tmp_path).lookup("big.bin")
    assert asset is not None
    assert whole == [data]
    assert asset.digest == md5(data)


# -- what is read, and where from ------------------------------------------------------------


def spoil_then(target: Path, swap: Callable[[], None]) -> Callable[[int, int], None]:
    """Rewrites ``target`` in place during its first read (so it must be read again), then
    runs ``swap`` to put something else at its name before the second open."""

    def disturb(number: int, call: int) -> None:
        if number == 1 and call == 1:
            with open(target, "r+b") as f:
                f.write(b"spoiled, longer than it was")
            swap()

    return disturb


def test_symlink_out_of_root_swapped_in_between_reads_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the root")
    target = root / "a.css"
    target.write_bytes(b"a {}")

    def swap() -> None:
        link = root / "link.tmp"
        link.symlink_to(secret)
        os.replace(link, target)

    index = WatchedIndex(root, spoil_then(target, swap))
    assert index.lookup("a.css") is None
    assert [read for read in index.reads if b"outside" in read] == []
    assert len(index.reads) == 1  # the spoiled read; the second open was refused unread
    assert index.lookup("a.css") is None  # and it is not remembered as an asset


def test_symlink_inside_root_is_read_through(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_bytes(b"h1 {}")
    (tmp_path / "alias.css").symlink_to("css/site.css")
    index = WatchedIndex(tmp_path)
    asset = index.lookup("alias.css")
    assert asset is not None
    assert asset.digest == md5(b"h1 {}")
    assert asset.hashed == hashed_name("alias.css", md5(b"h1 {}")[:12])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_swapped_in_between_reads_never_blocks(tmp_path: Path) -> None:
    target = tmp_path / "a.js"
    target.write_bytes(b"let a")
    fifo = tmp_path / "fifo.tmp"

    def swap() -> None:
        os.mkfifo(fifo)
        os.replace(fifo, target)

    index = WatchedIndex(tmp_path, spoil_then(target, swap))
    result: list[Asset | None] = []
    thread = threading.Thread(target=lambda: result.append(index.lookup("a.js")))
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked in open(): give it a writer so that it ends, then fail
        fd = os.open(target, os.O_WRONLY)
        os.close(fd)
        thread.join(10)
        pytest.fail("opening a FIFO swapped in for a file blocked the lookup")
    assert result == [None]
    assert len(index.reads) == 1


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX permissions")
def test_unreadable_file_is_not_an_asset_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tempfile.TemporaryDirectory() as name:  # pytest's tmp_path is root's alone
        root = Path(name)
        root.chmod(0o755)
        (root / "open.css").write_bytes(b"a {}")
        (root / "open.css").chmod(0o644)
        (root / "locked.css").write_bytes(b"b {}")
        (root / "locked.css").chmod(0)
        index = WatchedIndex(root)
        with caplog.at_level(logging.WARNING, logger="hashstatic"), unprivileged():
            answers = [index.lookup("locked.css") for _ in range(3)]
            readable = index.lookup("open.css")
        assert answers == [None, None, None]
        assert readable is not None and readable.digest == md5(b"a {}")
        assert index.reads == [b"a {}"]
        warnings = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(warnings) == 1 and "locked.css" in warnings[0]


# -- stylesheets and scripts that name nothing -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "rewritten"),
    [
        pytest.param("a.css", b"h1 { color: red }", False, id="css-plain"),
        pytest.param("a.css", b"h1 { color: rgba(0, 0, 0, .5) }", False, id="css-other-function"),
        pytest.param("a.css", b"h1 { background: URL(img.png) }", True, id="css-upper-url"),
        pytest.param("a.css", b"@IMPORT 'b.css';", True, id="css-upper-import"),
        pytest.param(
            "a.css", b'h1 { background: Image-Set("img.png" 1x) }', True, id="css-image-set"
        ),
        pytest.param("a.css", b"h1 {}\n/*# sourceMappingURL=a.css.map */", True, id="css-map"),
        pytest.param("a.js", b"let a = 'url(img.png)'", False, id="js-url-text"),
        pytest.param("a.js", b"let a\n//# sourceMappingURL=a.js.map", True, id="js-map"),
        pytest.param("a.mjs", b"export const a = 1", False, id="mjs-plain"),
    ],
)
def test_stylesheet_or_script_is_hashed_as_served(
    tmp_path: Path, name: str, text: bytes, rewritten: bool
) -> None:
    extras = {"img.png": b"png", "b.css": b"b {}", "a.css.map": b"{}", "a.js.map": b"{}"}
    for path, data in {**extras, name: text}.items():
        (tmp_path / path).write_bytes(data)
    index = DiskIndex(tmp_path)
    asset = index.lookup(name, integrity=True)
    assert asset is not None
    served = index.body(name)
    assert (served is not None) == rewritten
    expected = text if served is None else served
    assert (asset.digest, asset.integrity, asset.rewritten) == (
        md5(expected),
        sri(expected),
        rewritten,
    )
    if served is not None:  # the hashed names of what it names are in the bytes served
        named = [p for p in extras if p.encode() in text]
        for path in named:
            found = index.lookup(path)
            assert found is not None and found.hashed.encode() in served


_CSS_PIECES = [
    b"url(",
    b"URL (",
    b"uRl(",
    b"@import",
    b"@IMPORT ",
    b"@imports",
    b"image-set(",
    b"-WEBKIT-Image-Set(",
    b"my-url(",
    b"rgba(1,2,3,.5)",
    b"(",
    b")",
    b"@",
    b'"a.png"',
    b"'b.css'",
    b"a.png",
    b"b.css",
    b"/*",
    b"*/",
    b"\\",
    b" ",
    b"\n",
    b";",
    b"{",
    b"}",
    b"sourceMappingURL=",
    b"/*# sourceMappingURL=a.css.map */",
    b"//# sourceMappingURL=a.js.map",
    b"\xc3\xa9",
]


def _everything(path: str) -> Asset:
    """A lookup that finds every path, so that any reference found would be rewritten."""
    digest = md5(path.encode())
    return Asset(path, hashed_name(path, digest[:12]), digest, 1, 1, None)


def test_names_nothing_is_never_wrong(figures: Callable[[str], None]) -> None:
    """When the shortcut says a file names nothing, the full rewrite agrees: no URL found, the
    bytes served are the file's and no asset is named, whatever the lookup would answer."""
    said = {True: 0, False: 0}

    @settings(max_examples=2000, deadline=None)
    @given(
        pieces=st.lists(st.sampled_from(_CSS_PIECES) | st.binary(max_size=4), max_size=12),
        name=st.sampled_from(["a.css", "dir/A.CSS", "a.js", "a.mjs"]),
    )
    def check(pieces: list[bytes], name: str) -> None:
        data = b"".join(pieces)
        nothing = cache._names_nothing(name, data)
        said[nothing] += 1
        if nothing:
            if name.lower().endswith(".css"):
                assert url_spans(data) == []
            assert served_body(data, name, "/static/", _everything, lambda p: []) == (None, [])

    check()
    assert said[True] > 0 and said[False] > 0  # both answers were put to the test
    figures(
        f"{said[True] + said[False]} stylesheets/scripts generated, {said[True]} said to name "
        f"nothing (each confirmed by the full rewrite), {said[False]} sent the full way"
    )


def test_tree_of_every_kind_hashes_as_the_full_rewrite_would(tmp_path: Path) -> None:
    """Many small files of every kind, with and without references: each asset is the MD5 of
    the bytes served_body makes of the file (made here independently of the index)."""
    files: dict[str, bytes] = {"img/bg.png": body(3000, 1), "fonts/a.woff2": body(500, 2)}
    for i in range(40):
        files[f"css/s{i}.css"] = (
            b".a%d { color: red }\n" % i
            if i % 3
            else b".a%d { background: url(../img/bg.png) }\n" % i
        )
        files[f"js/m{i}.js"] = b"let m%d = %d;\n" % (i, i) + (
            b"//# sourceMappingURL=m.js.map\n" if i % 4 == 0 else b""
        )
        files[f"data/d{i}.json"] = body(i * 97, i)
    files["js/m.js.map"] = b"{}"
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    index = DiskIndex(tmp_path)

    def lookup(path: str) -> Asset | None:
        return index.lookup(path)

    for path, data in sorted(files.items()):
        asset = index.lookup(path)
        assert asset is not None
        made, _ = served_body(data, path, "/static/", lookup, lambda p: [])
        expected = data if made is None else made
        assert (asset.path, asset.digest, asset.size) == (path, md5(expected), len(expected))
        assert index.body(path) == made


def test_paths_without_symlinks_need_no_readlink(
    tmp_path: Path, opening: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With openat2 a readlink is made only where a symlink is on the way; without it, one
    per file opened."""
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_bytes(b"h1 {}")
    (tmp_path / "img.png").write_bytes(b"png")
    (tmp_path / "alias.css").symlink_to("css/site.css")
    links: list[str] = []
    real = os.readlink

    def counting(path: str, *args: object, **kwargs: object) -> str:
        links.append(path)
        return real(path)

    monkeypatch.setattr(os, "readlink", counting)
    index = DiskIndex(tmp_path)
    assert [index.lookup(p) is not None for p in ("css/site.css", "img.png")] == [True, True]
    assert len(links) == (0 if opening == "c" else 2)
    links.clear()
    alias = index.lookup("alias.css")
    assert alias is not None and alias.digest == md5(b"h1 {}")
    assert len(links) == 1


def test_names_with_no_file_leave_nothing_behind(tmp_path: Path) -> None:
    """A client asking for random names: a cold lookup opens before it makes anything for
    the path (its lock included), so that memory cannot grow with such requests."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes(b"png")
    index = DiskIndex(tmp_path)
    assert index.lookup("img/x.png") is not None
    kept = (dict(index._locks), dict(index._entries), dict(index._reads))
    for i in range(300):
        for name in (f"img/nothing-{i}.png", f"gone-{i}/a.css", f"img/x.png/{i}.js"):
            assert index.lookup(name) is None
    assert (index._locks, index._entries, index._reads) == kept


@pytest.mark.parametrize("size", [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
@pytest.mark.parametrize("change", [0, 1, 5000, -1, "empty"])
def test_tee_hashes_in_one_call_as_its_reads_would(
    tmp_path: Path, size: int, change: int | str
) -> None:
    """``_digest`` reads the index's own stream with one ``hash_into`` call instead of a
    ``read`` per chunk: the same reads, whatever the file did after its ``fstat``."""
    target = tmp_path / "a.js"
    after = b"" if change == "empty" else body(max(0, size + int(change)), seed=1)

    def run(whole: bool) -> tuple[str, int, bytes, list[int]]:
        target.write_bytes(body(size))
        fd = os.open(target, os.O_RDONLY)
        try:
            tee = cache._Tee(fd, os.fstat(fd).st_size, keep=True)
            target.write_bytes(after)  # same inode: what the descriptor reads changes
            md5_ = hashlib.md5()
            if whole:
                count = tee.hash_into(md5_, None)
            else:
                count = 0
                while chunk := tee.read(CHUNK):
                    md5_.update(chunk)
                    count += len(chunk)
            return md5_.hexdigest(), count, b"".join(tee.chunks), [len(c) for c in tee.chunks]
        finally:
            os.close(fd)

    assert run(whole=True) == run(whole=False)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_socket_in_the_root_is_no_asset_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Opened rather than stat'ed, a socket fails its open (ENXIO): that is "not a file", as
    the stat said before, not a file to fix the permissions of."""
    listening = socket.socket(socket.AF_UNIX)
    try:
        listening.bind(str(tmp_path / "a.sock"))
        with caplog.at_level(logging.WARNING, logger="hashstatic"):
            assert DiskIndex(tmp_path).lookup("a.sock") is None
    finally:
        listening.close()
    assert caplog.records == []
