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
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from hashstatic.cache import Asset

_MAX_ENTRIES = 4096
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


def identity(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class PreparedResponses:
    """The prepared responses of one file server, keyed by path and ``Accept-Encoding``."""

    def __init__(
        self, index: _Index, block_size: int, file_iter: Callable[[BinaryIO, int], Iterable[bytes]]
    ) -> None:
        self.index = index
        # A manifest never changes: what it called current stays so (no peek at all).
        self._peek = None if index.fingerprint is not None else index.peek
        self.block_size = block_size
        self._file_iter = file_iter  # for servers without wsgi.file_wrapper
        # Accept-Encoding header -> PATH_INFO -> the response prepared.
        self._tables: dict[str, dict[str, Prepared]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def remember(self, environ: dict[str, Any], prepared: Prepared) -> None:
        """Remember ``prepared`` for requests with the PATH_INFO and Accept-Encoding of
        ``environ``."""
        with self._lock:
            if self._count >= _MAX_ENTRIES:
                self._tables.clear()
                self._count = 0
            table = self._tables.setdefault(environ.get("HTTP_ACCEPT_ENCODING", ""), {})
            self._count += environ.get("PATH_INFO", "") not in table
            table[environ.get("PATH_INFO", "")] = prepared

    def respond(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The response to the request, or None for the full path to give."""
        # Every request through the middleware passes here first: kept lean on purpose.
        get = environ.get
        table = self._tables.get(get("HTTP_ACCEPT_ENCODING", ""))
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
            table.pop(path, None)  # changed, or gone: the full path finds out how
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
            table.pop(path, None)
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
