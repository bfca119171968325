"""Responses prepared once for the hashed URLs served immutable, then sent without parsing.

Most static requests a page causes are for hashed URLs whose hash is current: a browser's
first visit fetches each once (200), and a reload asks again with the ETag it holds (304). The
first such request goes through :class:`~hashstatic.files.FileServer` in full; its answer is
then remembered here -- the asset it was for, the file it sent and that file's identity, and
the headers of the 200 and of the 304 -- under the request's ``PATH_INFO`` and
``Accept-Encoding`` header. A later request with the same two is answered from that, with no
WebOb and no header parsing, when:

* the method is ``GET`` or ``HEAD`` and there is no ``Range``;
* the asset is still the current one for the path: in development one ``stat`` of the file
  (:meth:`DiskIndex.peek`), with a manifest a dictionary lookup and no file access at all;
* for a 304, ``If-None-Match`` is exactly the ETag sent (any other conditional request takes
  the full path, which knows lists, weak tags and dates);
* for a 200, the file opened is the very version that was verified when the entry was made
  (device, inode, size, modification and change times from ``fstat``); a stylesheet served
  rewritten is sent from the bytes that were verified, which its hash names.

Anything else returns None, and the full path answers.

Small files are held. A file of at most ``hold_limit`` bytes (256 KiB) is read once, when its
entry is made, and later 200s send those bytes from memory: no open, no read, no
``wsgi.file_wrapper``. Under a threaded server each system call lets the other threads take
the interpreter lock, and waitress's file wrapper adds eight ``lseek`` to the ``read`` and the
two ``send`` of a response; a body already in memory goes out with the two ``send`` alone.
The bytes held are the bytes the hash names: read from the descriptor whose ``fstat`` was
verified, unchanged by the read (``fstat`` again), and for the file itself their MD5 is the
asset's digest, checked once; a precompressed sibling is held as the file path would send it.
A file rewritten in place after that is not sent torn, and, with a manifest, not sent at all:
the old bytes stay what its hash names. At most ``hold_budget`` bytes (32 MiB) are held per
file server; past that, entries send their file as above.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from hashstatic.cache import Asset

_MAX_ENTRIES = 4096
# Files up to this size are held in memory once verified, up to this many bytes in all.
HOLD_LIMIT = 256 * 1024
HOLD_BUDGET = 32 * 1024 * 1024
# How static files are opened, here and in hashstatic.files.
_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
# Opening a FIFO blocks until a writer appears; non-blocking open returns at once and the
# fstat after it then refuses it.
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# Siblings (.br, .gz) are never looked up in the index, so nothing else has checked where they
# lead: they must be regular files, not symlinks, next to their original.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

StartResponse = Callable[..., Any]


class _Index(Protocol):
    def peek(self, path: str) -> Asset | None: ...

    @property
    def fingerprint(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """One hashed URL's immutable response, as first sent."""

    asset: Asset
    file: str | None  # the file sent (the asset's own, or a precompressed sibling)
    follow: bool  # whether symlinks may lead to it (siblings are opened without)
    identity: tuple[int, ...] | None  # that file's fstat when it was verified
    body: bytes | None  # or the bytes sent, when they are not a file's (stylesheets)
    etag: str
    ok: list[tuple[str, str]]  # the 200's headers (HEAD's too)
    not_modified: list[tuple[str, str]]  # the 304's
    held: int = 0  # bytes of ``body`` read from ``file`` for this entry (see hold_limit)


def identity(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class PreparedResponses:
    """The prepared responses of one file server, keyed by path and ``Accept-Encoding``."""

    def __init__(
        self,
        index: _Index,
        block_size: int,
        file_iter: Callable[[BinaryIO, int], Iterable[bytes]],
        *,
        hold_limit: int = HOLD_LIMIT,
        hold_budget: int = HOLD_BUDGET,
    ) -> None:
        self.index = index
        # A manifest never changes: what it called current stays so (no peek at all).
        self._peek = None if index.fingerprint is not None else index.peek
        self.block_size = block_size
        self._file_iter = file_iter  # for servers without wsgi.file_wrapper
        # Files this small are sent from memory; this many bytes at most are held in all.
        self.hold_limit = hold_limit
        self.hold_budget = hold_budget
        # Accept-Encoding header -> PATH_INFO -> the response prepared.
        self._tables: dict[str, dict[str, Prepared]] = {}
        self._count = 0
        self._held = 0
        self._lock = threading.Lock()

    def wants(self, size: int) -> bool:
        """Whether a file of ``size`` bytes would be held, were it read (see :func:`hold`)."""
        return size <= self.hold_limit and self._held + size <= self.hold_budget

    def knows(
        self, environ: dict[str, Any], asset: Asset, file: tuple[int, ...] | None, size: int
    ) -> bool:
        """Whether the request's entry is already made, for ``asset`` sent from the file of
        identity ``file`` (or from memory), ``size`` bytes, and would be made no better now:
        then it need not be made (nor its file read) again."""
        table = self._tables.get(environ.get("HTTP_ACCEPT_ENCODING", ""))
        known = None if table is None else table.get(environ.get("PATH_INFO", ""))
        if known is None or known.asset is not asset or known.identity != file:
            return False
        # One that sends its file is made again when there is room to hold the bytes now.
        return known.body is not None or not self.wants(size)

    def remember(self, environ: dict[str, Any], prepared: Prepared) -> None:
        """Remember ``prepared`` for requests with the PATH_INFO and Accept-Encoding of
        ``environ``."""
        path = environ.get("PATH_INFO", "")
        with self._lock:
            if self._count >= _MAX_ENTRIES:
                self._tables.clear()
                self._count = 0
                self._held = 0
            table = self._tables.setdefault(environ.get("HTTP_ACCEPT_ENCODING", ""), {})
            old = table.get(path)
            self._count += old is None
            self._held -= 0 if old is None else old.held
            if prepared.held and self._held + prepared.held > self.hold_budget:
                # Another thread filled the budget since wants() was asked: send the file.
                prepared = dataclasses.replace(prepared, body=None, held=0)
            self._held += prepared.held
            table[path] = prepared

    def _forget(self, coding: str, path: str, prepared: Prepared) -> None:
        # Looked up again under the lock: the tables may have been emptied (and the bytes held
        # counted afresh) since this entry was found.
        with self._lock:
            table = self._tables.get(coding)
            if table is not None and table.get(path) is prepared:
                del table[path]
                self._held -= prepared.held

    def respond(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The response to the request, or None for the full path to give."""
        # Every request through the middleware passes here first: kept lean on purpose.
        get = environ.get
        coding = get("HTTP_ACCEPT_ENCODING", "")
        table = self._tables.get(coding)
        if table is None:
            return None
        path: str = get("PATH_INFO", "")
        prepared = table.get(path)
        if prepared is None:
            return None
        method = get("REQUEST_METHOD")
        if (method != "GET" and method != "HEAD") or "HTTP_RANGE" in environ:
            return None
        peek = self._peek
        if peek is not None and peek(prepared.asset.path) is not prepared.asset:
            self._forget(coding, path, prepared)  # changed, or gone: the full path finds out how
            return None
        tag = get("HTTP_IF_NONE_MATCH")
        if tag is not None:
            if tag != prepared.etag:
                return None
            start_response("304 Not Modified", prepared.not_modified.copy())
            return []
        if "HTTP_IF_MODIFIED_SINCE" in environ:
            return None
        if prepared.body is not None:
            start_response("200 OK", prepared.ok.copy())
            return [] if method == "HEAD" else [prepared.body]
        file = self._open(prepared)
        if file is None:
            self._forget(coding, path, prepared)
            return None
        if method == "HEAD":
            file.close()
            start_response("200 OK", prepared.ok.copy())
            return []
        try:
            wrapper = environ.get("wsgi.file_wrapper")
            stream = (
                wrapper(file, self.block_size)
                if wrapper is not None
                else self._file_iter(file, prepared.asset.size)
            )
            start_response("200 OK", prepared.ok.copy())
        except BaseException:
            file.close()
            raise
        return stream

    def _open(self, prepared: Prepared) -> BinaryIO | None:
        """The file, when it is still the version that was verified (then it is also still
        inside the root: it was when verified, and it is the same file)."""
        assert prepared.file is not None
        try:
            opened = open_file(
                prepared.file,
                follow=prepared.follow,
                wanted=lambda fd, info: identity(info) == prepared.identity,
            )
        except OSError:
            return None
        return None if opened is None else opened[0]


def hold(
    file: BinaryIO, size: int, verified: tuple[int, ...] | None, digest: str | None
) -> bytes | None:
    """The ``size`` bytes of the open ``file`` (its position kept), when they are the version
    verified: the file has that size and, unless ``verified`` is None, that ``fstat``
    identity after the read, and, when a ``digest`` is given, their MD5 is it. None
    otherwise, and on any error."""
    fd = file.fileno()
    try:
        if hasattr(os, "pread"):
            data = os.pread(fd, size + 1, 0)  # one byte more: a file that grew is refused
        else:  # pragma: no cover - Windows has no pread
            position = file.tell()
            file.seek(0)
            data = file.read(size + 1)
            file.seek(position)
        unchanged = verified is None or identity(os.fstat(fd)) == verified
    except (OSError, ValueError):
        return None
    if len(data) != size or not unchanged:
        return None
    if digest is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != digest:
        return None
    return data


def open_file(
    path: str, *, follow: bool, wanted: Callable[[int, os.stat_result], bool]
) -> tuple[BinaryIO, os.stat_result] | None:
    """The file at ``path`` opened (never blocking on a FIFO), with its fstat, when
    ``wanted(fd, fstat)`` says so; None when it cannot be opened or is not wanted. An error
    of fstat on the open descriptor (a stale network mount) is raised, the file closed."""
    flags = _O_FLAGS | _O_NONBLOCK | (0 if follow else _O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):  # ValueError: an embedded NUL that slipped through
        return None
    try:
        info = os.fstat(fd)
        if wanted(fd, info):
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
            return io.FileIO(fd, "rb"), info
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None
