"""Serving one published file: caching headers, validators, conditional requests, ranges and
precompressed encodings.

Which paths are served. The path after the prefix is decoded from UTF-8 (invalid or overlong
UTF-8 is a 404) and must be a plain relative path: a segment that is empty (a leading or
doubled slash), ``.`` or ``..``, or starts with a dot (dotfiles and dot-directories such as
``.git`` or ``.env``), or contains a backslash or NUL, makes the request a 404 before any file
is touched. Percent signs are ordinary characters here: the server has already decoded the URL
once, and decoding it twice is how ``%252e%252e`` escapes, so ``%2e%2e`` left in a path is a
file name, never a parent directory. A symlink is followed when its target is inside the root
(so a linked-in vendor directory works) and never when it leads outside it (404); the check is
made on the file actually opened, so a manifest written before a symlink appeared cannot be used
to read outside the root either. Directories, missing files and HTML pages (``.html``,
``.htm``: pages are navigated to, not cached as assets) are not served here: they go to the
wrapped application, which may have routes of its own.

Which responses are immutable. ``name.<hash>.ext`` is served with the one-year ``immutable``
lifetime only when ``<hash>`` is the current hash of the file and the file opened is the one
that was hashed: same size and modification time, checked with ``fstat`` on the open file, so
a change between the lookup and the open cannot pin new bytes under an old name. (A manifest
records sizes but no times, so in frozen mode only a change of size is noticed: deploy files
and manifest together.) A hash that is not current still gets the current content, with
``Cache-Control: no-cache``, so that pages rendered before a deploy keep loading;
``strict=True`` makes it a 404. Unhashed names are served with ``no-cache`` and validators, so
browsers revalidate them on every use.

Precompressed siblings. ``file.ext.br`` and ``file.ext.gz`` next to ``file.ext`` are sent to
clients that accept them, by quality value (``br`` first at equal quality), with their own ETag;
the hash in the URL always names the uncompressed bytes. In development a sibling older than
its original is taken to be left over from an earlier version and is not used; with a manifest
(which records no modification times) siblings are trusted as they are, as nginx's
``gzip_static`` trusts them: regenerate them with the files at each build.

Stylesheets. When the index serves a stylesheet with its references rewritten (it has a
``body(path)``, as :class:`~hashstatic.cache.DiskIndex` does), those bytes are sent from memory,
tagged with their own MD5, never from a precompressed sibling (which holds the file as written),
and revalidated by ETag only: a changed font changes the stylesheet without touching its mtime.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import BinaryIO
from wsgiref.types import WSGIApplication, WSGIEnvironment

from webob import Request, Response
from webob.acceptparse import AcceptEncodingValidHeader
from webob.exc import HTTPMethodNotAllowed, HTTPNotFound

from hashstatic.cache import _PROC_FD, Asset, AssetIndex, WarnOnce, is_safe_path
from hashstatic.conditional import parse_http_date, split_etags, weak_match
from hashstatic.mimetypes import content_type
from hashstatic.naming import is_html, split_hash
from hashstatic.prepared import (
    _O_FLAGS,
    _O_NONBLOCK,
    HOLD_BUDGET,
    HOLD_LIMIT,
    Prepared,
    PreparedResponses,
    StartResponse,
    hold,
    identity,
    open_file,
)

__all__ = ["IMMUTABLE", "REVALIDATE", "FileServer", "serve"]

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Content-Encoding -> sibling suffix, in order of preference at equal quality (brotli files
# are smaller).
_SIBLINGS = {"br": ".br", "gzip": ".gz"}
# One byte range. WebOb's Range.parse matches only a prefix: "bytes=0-1,5-6" becomes the first
# range, "bytes=-0" becomes the whole file, and "bytes=-" raises ValueError. Matched against
# the stripped header, and no two runs of spaces may meet around an empty number: such a pattern
# backtracks quadratically, seconds of CPU for a 64 KiB header of spaces.
_BYTE_RANGE = re.compile(r"bytes\s*=\s*(?:(\d+)\s*)?-\s*(\d*)", re.IGNORECASE | re.ASCII)
# Offsets longer than this are past the end of any file (and int() refuses 4300 digits).
_MAX_DIGITS = 20


class _Unsatisfiable:
    """The range asks only for bytes the file does not have."""


_UNSATISFIABLE = _Unsatisfiable()


# Files up to this size have their bytes checked against the digest before they are called
# immutable (and are then held, see prepared); larger ones are taken on fstat's word.
_CHECKED_UP_TO = HOLD_LIMIT


@dataclass(frozen=True)
class _Representation:
    """An open file about to be sent, and what the response says about it."""

    file: BinaryIO
    coding: str | None  # Content-Encoding, None for the file itself
    size: int
    mtime: int  # whole seconds, as Last-Modified and If-Modified-Since have them
    etag: str
    verified: bool  # the bytes are the ones the asset's digest describes
    # Whether Last-Modified validates the bytes. A rewritten stylesheet changes when a file it
    # references does, its own mtime staying put: only its ETag can tell.
    dated: bool = True
    # For prepared responses: the file opened and its identity, or the bytes held.
    path: str | None = None
    follow: bool = True
    identity: tuple[int, ...] | None = None
    body: bytes | None = None
    # A small file's bytes, read to check that their MD5 is the asset's: what it would hold.
    checked: bytes | None = None


class FileServer:
    """Answer requests for the files that ``index`` publishes from ``root``."""

    def __init__(
        self,
        index: AssetIndex,
        root: str | os.PathLike[str],
        *,
        strict: bool = False,
        block_size: int = 64 * 1024,
        hold_limit: int = HOLD_LIMIT,
        hold_budget: int = HOLD_BUDGET,
    ) -> None:
        # Hashes come from the index (which knows the hash length); files are opened under
        # the real root, resolved once, so that each opened file can be checked to be in it.
        self.index = index
        self.root = _real_root(os.fspath(root))
        # Refuse hashes that are not current (404) instead of serving the current content.
        self.strict = strict
        # Read size when streaming without wsgi.file_wrapper.
        self.block_size = block_size
        # Paths whose refusal was logged, and whether the root was found missing: problems
        # an operator must fix are logged once, not on every request.
        self._warned = WarnOnce(log)
        self._root_missing = False
        # Hashed URLs served immutable once are answered again from what was sent; files
        # of at most hold_limit bytes from memory, hold_budget bytes in all (see prepared).
        self.prepared = PreparedResponses(
            _Peek(index),
            block_size,
            lambda f, n: _FileIter(f, n, block_size),
            hold_limit=hold_limit,
            hold_budget=hold_budget,
        )

    def respond_prepared(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The response from a prepared one (see :mod:`hashstatic.prepared`), or None."""
        return self.prepared.respond(environ, start_response)

    def serve(self, environ: WSGIEnvironment, path: str) -> WSGIApplication | None:
        """The response for ``path`` (PATH_INFO after the prefix), or None to pass the
        request on to the wrapped application."""
        rel = _decode(path)
        if rel is None:
            return _not_found()
        if rel == "" or rel.endswith("/"):
            # A directory URL: the app's, unless it is unsafe ("a//", "../").
            return None if rel == "" or is_safe_path(rel[:-1]) else _not_found()
        if not is_safe_path(rel):
            return _not_found()
        if is_html(rel):
            return None
        split = split_hash(rel, self.index.hash_length)
        found = self._resolve(rel, split)
        if found is None:
            names = [rel] if split is None else [rel, split[0]]
            return None if all(self._nothing_at(name) for name in names) else _not_found()
        asset, current = found
        if asset is None:
            return _not_found()
        request = Request(environ)
        if request.method not in ("GET", "HEAD"):
            return HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})  # type: ignore[no-any-return]
        rep = self._open(asset, _accepted_codings(request))
        if rep is None:
            # Deleted since the lookup, or (with a manifest, which opens nothing before this)
            # a file that cannot be opened: as if it were not there, the reason logged.
            self._nothing_at(asset.path, listed=True)
            return None
        cache_control = IMMUTABLE if current and rep.verified else REVALIDATE
        if cache_control == IMMUTABLE and "HTTP_RANGE" not in environ:
            self._prepare(environ, asset, rep)
        try:
            return self._respond(request, asset, rep, cache_control)
        except BaseException:
            rep.file.close()
            raise

    def _resolve(self, rel: str, split: tuple[str, str] | None) -> tuple[Asset | None, bool] | None:
        """``(asset, hash in the URL is current)``; ``(None, False)`` for a stale hash in
        strict mode; None when the index publishes nothing at ``rel``."""
        base = None
        if split is not None:
            base = self.index.lookup(split[0])
            if base is not None and base.hashed == rel:
                return base, True
        # A file whose own name looks hashed is served as itself, and is immutable when that
        # hash is of its own bytes (a build directory's copy).
        literal = self.index.lookup(rel)
        if literal is not None:
            return literal, split is not None and literal.digest.startswith(split[1])
        if base is not None:  # a hash that is not current
            return (None, False) if self.strict else (base, False)
        return None

    def _nothing_at(self, rel: str, *, listed: bool = False) -> bool:
        """Whether a path the index refused (or ``listed`` in it, but not openable) is missing
        or a directory (the app's business), rather than a file it will not publish: a
        symlink out of the root, a FIFO, an unreadable file, a file added after the manifest.
        Those are 404 here, and the first request for each logs why."""
        path = os.path.join(self.root, *rel.split("/"))
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            if not self._root_exists() or not listed or self.index.fingerprint is None:
                return True  # an ordinary miss, or a deletion racing the request: no log
            self._warn_once(
                rel,
                "static file %r is in the manifest but missing under %s: deploy the files "
                "with the manifest that names them",
                rel,
                self.root,
            )
            return True
        if stat.S_ISDIR(info.st_mode):
            return True
        if rel not in self._warned:
            reason = self._refusal(rel, path, info)
            if reason is not None:
                self._warn_once(rel, "static file %r is not served (404): %s", rel, reason)
        return False

    def _refusal(self, rel: str, path: str, info: os.stat_result) -> str | None:
        """Why the file at ``path``, which exists, is not published; None if it now is."""
        if not stat.S_ISREG(info.st_mode):
            return "it is not a regular file (a FIFO, socket or device)"
        real = os.path.realpath(path)
        if not real.startswith(self.root.rstrip(os.sep) + os.sep):
            return (
                f"it leads outside the static root {self.root} (to {real}); symlinks are "
                "followed only within the root: copy the file in, or link to it from inside"
            )
        if not is_safe_path(real[len(self.root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")):
            return "it leads to a dotfile or dot-directory, which is never published"
        try:
            os.close(os.open(path, _O_FLAGS | _O_NONBLOCK))
        except OSError as error:
            return f"it cannot be opened ({error.strerror}): fix its permissions"
        if self.index.fingerprint is not None and self.index.lookup(rel) is None:
            return (
                "it is not in the manifest: regenerate the manifest (`hashstatic manifest` or "
                "`hashstatic build`) with the files you deploy"
            )
        return None

    def _root_exists(self) -> bool:
        """Whether the root is still there; its disappearance is logged once (again only
        after a request has found it back)."""
        exists = os.path.isdir(self.root)
        if not exists and not self._root_missing:
            log.warning(
                "static root %s no longer exists: asset requests pass to the application, "
                "and pages keep their asset URLs unhashed, until it is back",
                self.root,
            )
        self._root_missing = not exists
        return exists

    def _warn_once(self, rel: str, message: str, *args: object) -> None:
        self._warned(rel, message, *args)

    def _open(self, asset: Asset, codings: list[str]) -> _Representation | None:
        body_of = getattr(self.index, "body", None)
        body = body_of(asset.path) if body_of is not None else None
        if body is not None:
            return _in_memory(asset, body)
        path = os.path.join(self.root, *asset.path.split("/"))
        for coding in codings:
            opened = _open_regular(path + _SIBLINGS[coding], self.root, follow=False)
            if opened is None:
                continue
            file, info = opened
            if info.st_mtime_ns < asset.mtime_ns:  # never true with a manifest (mtime_ns 0)
                file.close()  # older than its original: compressed from an earlier version
                continue
            # The sibling's size is in its tag: recompressing gives other bytes, and ranges
            # of those must not be spliced onto ranges of the old ones.
            etag = f'"{asset.digest}-{coding}-{info.st_size:x}"'
            return _Representation(
                file,
                coding,
                info.st_size,
                _seconds(info),
                etag,
                True,
                path=path + _SIBLINGS[coding],
                follow=False,
                identity=identity(info),
            )
        opened = _open_regular(path, self.root)
        if opened is None:
            return None
        file, info = opened
        # The version hashed, as far as fstat can tell (with a manifest: the same size), and
        # for a small file as far as its MD5 can: two versions can share all that fstat says
        # (a reused inode, the same size and mtime, ctimes within one tick of the clock).
        described = asset.describes(info)
        checked = None
        if described and info.st_size <= _CHECKED_UP_TO:
            checked = hold(file, info.st_size, None, asset.digest)
        if described and (checked is not None or info.st_size > _CHECKED_UP_TO):
            etag = f'"{asset.digest}"'
            return _Representation(
                file,
                None,
                info.st_size,
                _seconds(info),
                etag,
                True,
                path=path,
                identity=identity(info),
                checked=checked,
            )
        # Changed since it was hashed: the digest does not describe these bytes. Tag them by
        # what fstat says, as nginx does, until the index catches up.
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        return _Representation(file, None, info.st_size, _seconds(info), etag, False)

    def _prepare(self, environ: WSGIEnvironment, asset: Asset, rep: _Representation) -> None:
        if rep.body is None and rep.identity is None:
            return
        if self.prepared.knows(environ, asset, rep.identity, rep.size):
            return  # a request the prepared path declined (a date, a list of tags)
        body, held = rep.body, 0
        if body is None and rep.identity is not None and self.prepared.wants(rep.size):
            # A small file is sent from memory from now on (see prepared): the bytes this
            # file holds now, if they are still the version verified and, for the file
            # itself, the bytes its digest names (read already when it was opened).
            digest = asset.digest if rep.coding is None else None
            body = rep.checked
            if body is None:
                body = hold(rep.file, rep.size, rep.identity, digest)
            if body is None and digest is not None:
                return  # not the bytes hashed after all: nothing to answer again
            held = 0 if body is None else rep.size
        headers = _headers(asset, rep, IMMUTABLE)
        headers.append(("Content-Length", str(rep.size)))
        prepared = Prepared(
            asset=asset,
            file=rep.path,
            follow=rep.follow,
            identity=rep.identity,
            body=body,
            etag=rep.etag,
            ok=headers,
            not_modified=_cache_headers(rep, IMMUTABLE),
            held=held,
        )
        self.prepared.remember(environ, prepared)

    def _respond(
        self, request: Request, asset: Asset, rep: _Representation, cache_control: str
    ) -> WSGIApplication:
        if _not_modified(request, rep):
            rep.file.close()
            cache_headers = _cache_headers(rep, cache_control)
            return Response(status=304, headerlist=cache_headers, app_iter=[])  # type: ignore[no-any-return]
        headers = _headers(asset, rep, cache_control)
        # RFC 9110 14.2: GET is the only method with range semantics; HEAD gets the 200 headers.
        byte_range = _byte_range(request, rep) if request.method == "GET" else None
        if byte_range is _UNSATISFIABLE:
            rep.file.close()
            body = f"Range not satisfiable: the file has {rep.size} bytes\n".encode()
            status_416 = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Content-Range", f"bytes */{rep.size}"),
                ("Vary", "Accept-Encoding"),
            ]
            return Response(status=416, headerlist=status_416, app_iter=[body])  # type: ignore[no-any-return]
        if isinstance(byte_range, tuple):
            start, stop = byte_range
            headers += [
                ("Content-Range", f"bytes {start}-{stop - 1}/{rep.size}"),
                ("Content-Length", str(stop - start)),
            ]
            rep.file.seek(start)
            body_206 = _FileIter(rep.file, stop - start, self.block_size, asset.path)
            return Response(status=206, headerlist=headers, app_iter=body_206)  # type: ignore[no-any-return]
        headers.append(("Content-Length", str(rep.size)))
        if request.method == "HEAD":
            rep.file.close()
            return Response(status=200, headerlist=headers, app_iter=[])  # type: ignore[no-any-return]
        wrapper = request.environ.get("wsgi.file_wrapper")
        stream: Iterable[bytes]
        if wrapper is not None and not isinstance(rep.file, io.BytesIO):
            stream = wrapper(rep.file, self.block_size)
        else:
            stream = _FileIter(rep.file, rep.size, self.block_size, asset.path)
        return Response(status=200, headerlist=headers, app_iter=stream)  # type: ignore[no-any-return]


def _cache_headers(rep: _Representation, cache_control: str) -> list[tuple[str, str]]:
    # RFC 9110 15.4.5: a 304 carries the validators and the cache policy, nothing about the
    # body; Last-Modified is left out because the ETag is always there.
    return [("ETag", rep.etag), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding")]


def _headers(asset: Asset, rep: _Representation, cache_control: str) -> list[tuple[str, str]]:
    """A 200's headers but Content-Length."""
    headers = [
        ("Content-Type", content_type(asset.path)),
        *_cache_headers(rep, cache_control),
        ("Last-Modified", formatdate(rep.mtime, usegmt=True)),
        ("Accept-Ranges", "bytes"),
    ]
    if rep.coding is not None:
        headers.append(("Content-Encoding", rep.coding))
    return headers


class _Peek:
    """Whether an asset is current, as cheaply as the index can tell (see prepared)."""

    def __init__(self, index: AssetIndex) -> None:
        peek = getattr(index, "peek", None)
        self.peek: Callable[[str], Asset | None] = peek if peek is not None else index.lookup
        self.fingerprint = index.fingerprint


def _in_memory(asset: Asset, body: bytes) -> _Representation:
    """A stylesheet as served: its references rewritten, so not the bytes on disk (and not
    what precompressed siblings hold, which are never used for it)."""
    # The index keeps the body of its latest lookup, which another thread may have made after
    # ours; hashing a stylesheet is cheap, and then the tag is right whatever happened.
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
    mtime = asset.mtime_ns // 1_000_000_000
    verified = digest == asset.digest
    return _Representation(
        io.BytesIO(body), None, len(body), mtime, f'"{digest}"', verified, False, body=body
    )


class _FileIter:
    """Read ``length`` bytes from ``file`` in blocks; ``close()`` closes the file, whether
    or not the server iterated to the end."""

    def __init__(self, file: BinaryIO, length: int, block_size: int, name: str = "") -> None:
        self.file = file
        self.length = self.remaining = length
        self.block_size = block_size
        self.name = name  # for the log

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.remaining <= 0:
            raise StopIteration
        data = self.file.read(min(self.block_size, self.remaining))
        if not data:
            # Truncated under us: stop short; the server sees the body end before
            # Content-Length and closes the connection, which is all it can do now.
            log.warning(
                "static file %r shrank while it was being sent (%d of %d bytes sent): "
                "deploy by renaming new files into place, not by writing over them",
                self.name,
                self.length - self.remaining,
                self.length,
            )
            raise StopIteration
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.file.close()


def _decode(path: str) -> str | None:
    """PATH_INFO as text; None for bytes that are not UTF-8 (overlong forms included)."""
    try:
        # WSGI hands over the URL's bytes as latin-1; Python's UTF-8 decoder refuses overlong
        # forms and encoded surrogates.
        return path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def _not_found() -> WSGIApplication:
    return HTTPNotFound()  # type: ignore[no-any-return]


# realpath costs an lstat per path segment: once per root and process is enough, and the
# process then keeps serving the directory it started with even if a "current" symlink is
# re-pointed by a deploy (as DiskIndex does).
_real_root = functools.lru_cache(maxsize=16)(os.path.realpath)


def serve(
    environ: WSGIEnvironment,
    path: str,
    index: AssetIndex,
    root: str | os.PathLike[str],
    *,
    strict: bool = False,
) -> WSGIApplication | None:
    """:meth:`FileServer.serve` for callers that do not keep a :class:`FileServer`."""
    return FileServer(index, root, strict=strict).serve(environ, path)


def _open_regular(
    path: str, real_root: str, *, follow: bool = True
) -> tuple[BinaryIO, os.stat_result] | None:
    """The open file at ``path`` and its fstat, when it is a regular file inside
    ``real_root``; None otherwise (missing, a directory, a FIFO, outside the root, or a
    symlink when not ``follow``)."""
    try:
        return open_file(
            path,
            follow=follow,
            wanted=lambda fd, info: stat.S_ISREG(info.st_mode) and _inside(fd, real_root),
        )
    except OSError as error:
        # An open descriptor that cannot be examined (a stale network mount): as good as gone.
        log.warning("static file %s cannot be examined: %s", path, error)
        return None


def _inside(fd: int, real_root: str) -> bool:
    """Whether the open file ``fd`` lies under ``real_root``, symlinks resolved."""
    if _PROC_FD is None:
        # Elsewhere the index's own check (made when it looked the path up, or when the
        # manifest was built) stands alone: realpath here would cost a stat per path segment
        # on every request. Siblings are opened without following symlinks everywhere.
        return True
    try:
        target = os.readlink(f"{_PROC_FD}{fd}")
    except OSError:
        return True  # /proc not mounted: as above
    return target.startswith(real_root.rstrip(os.sep) + os.sep)


def _seconds(info: os.stat_result) -> int:
    return info.st_mtime_ns // 1_000_000_000


def _accepted_codings(request: Request) -> list[str]:
    """The sibling codings worth trying, best first."""
    header = request.accept_encoding
    if not isinstance(header, AcceptEncodingValidHeader):
        # No header, or one that does not parse. WebOb then calls every coding acceptable,
        # but a client that says nothing (curl, many bots) wants the file itself.
        return []
    # WebOb ranks an unmentioned "identity" at q=1, above "gzip;q=0.8"; a client that names
    # only codings prefers them to nothing, so identity competes only when it (or "*") is
    # named, and loses ties.
    stated = {coding.lower(): q for coding, q in reversed(header.parsed)}
    identity_q = stated.get("identity", stated.get("*", 0.0))
    offers = header.acceptable_offers(list(_SIBLINGS))
    return [coding for coding, q in offers if q >= identity_q]


def _not_modified(request: Request, rep: _Representation) -> bool:
    none_match = request.headers.get("If-None-Match")
    if none_match is not None:
        # Hand-rolled: WebOb drops tags after a comma with no space and treats "*" as false.
        # Weak comparison (RFC 9110 13.1.2): W/ is ignored on both sides.
        return weak_match(split_etags(none_match), rep.etag)
    since = parse_http_date(request.headers.get("If-Modified-Since")) if rep.dated else None
    if since is None:
        return False
    # A date in the future is invalid (RFC 9110 13.1.3) and would pin the current content.
    return since <= time.time() and rep.mtime <= since


def _byte_range(request: Request, rep: _Representation) -> tuple[int, int] | _Unsatisfiable | None:
    """``(start, stop)`` to send, ``_UNSATISFIABLE``, or None for the whole file."""
    header = request.headers.get("Range")
    if header is None or not _if_range_holds(request.headers.get("If-Range"), rep):
        return None
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None:  # another unit, several ranges, or garbage: the whole file
        return None
    first, last = match.groups()
    size = rep.size
    if first is None:
        if last == "":
            return None
        suffix = _offset(last)
        if suffix == 0 or size == 0:
            return _UNSATISFIABLE
        return max(size - suffix, 0), size
    start = _offset(first)
    if last != "" and _offset(last) < start:
        return None  # invalid, so ignored (RFC 9110 14.1.1)
    if start >= size:
        return _UNSATISFIABLE
    stop = size if last == "" else min(_offset(last) + 1, size)
    return start, stop


def _offset(digits: str) -> int:
    """A byte position; one too long to convert is past the end of any file, and order is
    kept between such numbers and the rest."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _if_range_holds(header: str | None, rep: _Representation) -> bool:
    # Hand-rolled: WebOb sends the range when the date is not older than Last-Modified;
    # RFC 9110 13.1.5 asks for an exact match, and a strong comparison for tags.
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"'):
        return header == rep.etag
    if header.startswith("W/"):
        return False
    return rep.dated and parse_http_date(header) == rep.mtime
