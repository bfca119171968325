"""The manifest: every asset's hashed name and integrity, frozen for production.

``hashstatic manifest`` writes it and ``HashStatic(manifest=FILE)`` reads it, so that pages
are rewritten without touching the disk. The file is JSON, sorted and indented, so that the
same tree always gives the same bytes and a deploy's diff shows what changed::

    {"files": {"css/site.css": {"hashed": "css/site.3f2a9c1b7d4e.css", "integrity":
     "sha384-...", "md5": "<32 hex>", "size": 123}}, "hash_length": 12,
     "prefix": "/static/", "version": 1}
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hashstatic.cache import (
    Asset,
    DiskIndex,
    check_hash_length,
    has_body,
    is_safe_path,
    iter_files,
)
from hashstatic.naming import hashed_name

VERSION = 1
_WORKERS = min(8, os.cpu_count() or 1)  # threads that hash files for build_manifest
_BATCH = 32  # paths a thread takes at once: fewer hand-overs, and still an even share
_MD5 = re.compile(r"[0-9a-f]{32}")
_REGENERATE = "regenerate it with `hashstatic manifest --root DIR -o FILE`"


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    prefix: str  # the URL prefix the files were published under when it was built
    hash_length: int
    files: Mapping[str, Asset]  # asset path -> Asset (mtime_ns 0: a manifest has no clock)


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a usable URL path prefix, else ``ValueError`` saying how to fix it."""
    if not isinstance(prefix, str) or not prefix.startswith("/") or not prefix.endswith("/"):
        problem = "must start and end with '/'"
    elif "//" in prefix:
        problem = "has an empty segment ('//'), which browsers and servers treat differently"
    elif any(segment in (".", "..") for segment in prefix.split("/")):
        problem = "has a '.' or '..' segment, which browsers remove before sending the URL"
    elif any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in prefix):
        problem = "contains whitespace or a control character"
    elif any(c in prefix for c in "?#\\"):
        problem = "contains '?', '#' or '\\', which end or break a URL path"
    else:
        return prefix
    raise ValueError(
        f"prefix {prefix!r} {problem}: write the URL path it is served at, e.g. '/static/'"
    )


def build_manifest(
    root: str | os.PathLike[str],
    *,
    prefix: str = "/static/",
    hash_length: int = 12,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Hash every asset under ``root`` (with integrity); ``progress(done, total)`` as it goes.

    Stylesheets and scripts are hashed as they are served, their references rewritten;
    such entries say ``"rewritten": true``.
    """
    check_prefix(prefix)
    index = _ManifestIndex(root, hash_length=hash_length, prefix=prefix)
    paths = list(iter_files(index.root))
    if progress is not None:
        progress(0, len(paths))
    found = _hash_all(index, paths, progress)
    files: dict[str, Asset] = {}
    for path, asset in zip(paths, found, strict=True):
        if asset is None:
            # Leaving it out would publish its URL unhashed in production without a word.
            raise ManifestError(
                f"cannot read {index.path_of(path)}: fix its permissions, or run again if "
                "files were being changed"
            )
        files[path] = asset
    return Manifest(prefix=prefix, hash_length=hash_length, files=MappingProxyType(files))


def _hash_all(
    index: DiskIndex, paths: list[str], progress: Callable[[int, int], None] | None
) -> list[Asset | None]:
    """``index.lookup`` of every path, with integrity, on up to ``_WORKERS`` threads.

    Files are hashed on every core, since the hashing is done without the GIL; the index
    hashes each file once whichever thread asks. Threads take files in batches. Where the
    index reads a batch in C (``DiskIndex.batched``) it lets go of the GIL once per batch,
    so the threads take batches in the order of the walk. Otherwise each file lets go of it
    several times, and the files are sorted by size: the calling thread hashes the smallest
    first, the others the largest first, until they meet, so that a thread on large files
    spends most of its time in hashlib and the two seldom wait for each other (0.70x
    ``md5sum`` against 0.62x for the walk's order, measured on two cores; in C, sorting
    costs a ``stat`` a file and gains nothing: 0.87x against 0.92x). The calling thread
    reports ``progress`` for every file done, in order.

    Files served as they are are all hashed before any stylesheet or script: those look up
    what they name without integrity, and a file first hashed that way is read again for it.
    """
    found: list[Asset | None] = [None] * len(paths)
    done = [0] * min(_WORKERS, max(1, len(paths) // _BATCH))  # per worker, written by it alone
    reported = 0

    def report() -> None:
        nonlocal reported
        assert progress is not None
        for count in range(reported + 1, sum(done) + 1):
            progress(count, len(paths))
        reported = max(reported, sum(done))

    def work(worker: int, queue: _Queue) -> None:
        tell = report if worker == 0 and progress is not None else None
        while batch := queue.take(smallest=worker == 0):
            answers = index.lookup_unseen([paths[i] for i in batch], integrity=True)
            for i, asset in zip(batch, answers, strict=True):
                found[i] = asset
            done[worker] += len(batch)
            if tell is not None:
                tell()

    base = index.root + os.sep  # the paths come from iter_files: asset paths already

    def size(i: int) -> int:
        try:
            return os.stat(base + paths[i]).st_size
        except (OSError, ValueError):
            return 0  # gone: its lookup says so

    plain: list[int] = []
    served: list[int] = []
    for i, path in enumerate(paths):
        (served if has_body(path) else plain).append(i)
    with concurrent.futures.ThreadPoolExecutor(
        max(1, len(done) - 1), "hashstatic-manifest"
    ) as pool:
        later = None
        if len(done) > 1 and not index.batched:
            # A helper sorts the stylesheets and scripts while the calling thread begins on
            # the files served as they are.
            later = pool.submit(sorted, served, key=size)
            plain.sort(key=size)
        for group in (plain, served):
            if group is served and later is not None:
                group = later.result()
            queue = _Queue(group)
            helpers = [pool.submit(work, w, queue) for w in range(1, len(done))]
            try:
                work(0, queue)
            finally:
                queue.clear()  # after an error here, the helpers stop after their batch
                for helper in helpers:
                    helper.result()  # an error in a helper is raised here
    if progress is not None:
        report()
    return found


class _Queue:
    """Indices of files (sorted by size, or in the walk's order), handed out in batches from
    either end."""

    def __init__(self, items: list[int]) -> None:
        self._items = items
        self._low = 0
        self._high = len(items)
        self._lock = threading.Lock()

    def take(self, *, smallest: bool) -> list[int]:
        with self._lock:
            if smallest:  # small files: many to a batch, so that the lock is taken seldom
                end = min(self._low + _BATCH, self._high)
                batch, self._low = self._items[self._low : end], end
            else:  # large ones: a few, so that the ends meet evenly
                start = max(self._high - _BATCH // 8, self._low)
                batch, self._high = self._items[start : self._high], start
            return batch

    def clear(self) -> None:
        with self._lock:
            self._low = self._high


class _ManifestIndex(DiskIndex):
    """The index a manifest is hashed with: its assets have no clock (``mtime_ns`` 0), as a
    manifest's have, so that they need not be made again without it."""

    _clocked = False


def dumps_manifest(manifest: Manifest) -> str:
    files = {
        path: {
            "hashed": asset.hashed,
            "integrity": asset.integrity,
            "md5": asset.digest,
            "size": asset.size,
            **({"rewritten": True} if asset.rewritten else {}),
        }
        for path, asset in manifest.files.items()
    }
    document = {
        "version": VERSION,
        "prefix": manifest.prefix,
        "hash_length": manifest.hash_length,
        "files": files,
    }
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write atomically: a server reading the manifest sees the old file or the new one."""
    target = os.fspath(path)
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    data = dumps_manifest(manifest).encode("utf-8")
    # os.open with 0o666 lets the umask decide the mode, as for any file the user writes.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    name = os.fspath(path)

    def fail(problem: str) -> ManifestError:
        return ManifestError(f"manifest {name!r} {problem}: {_REGENERATE}")

    try:
        with open(name, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        raise fail("does not exist") from None
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror or error})") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise fail(
            f"is not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    if not isinstance(document, dict):
        raise fail("is not a JSON object")
    if document.get("version") != VERSION:
        raise fail(f"has version {document.get('version')!r}; this hashstatic reads version 1")
    raw_prefix: Any = document.get("prefix")
    try:
        prefix = check_prefix(raw_prefix)
    except ValueError as error:
        raise fail(f"has a bad prefix: {error}") from None
    raw_length: Any = document.get("hash_length")
    try:
        hash_length = check_hash_length(raw_length)
    except ValueError as error:
        raise fail(f"has a bad hash_length: {error}") from None
    entries = document.get("files")
    if not isinstance(entries, dict):
        raise fail('has no "files" object')
    files: dict[str, Asset] = {}
    for asset_path, entry in sorted(entries.items()):
        problem = _entry_problem(asset_path, entry, hash_length)
        if problem is not None:
            raise fail(f"has a bad entry for {asset_path!r}: {problem}")
        files[asset_path] = Asset(
            path=asset_path,
            hashed=entry["hashed"],
            digest=entry["md5"],
            size=entry["size"],
            mtime_ns=0,
            integrity=entry.get("integrity"),
            rewritten=entry.get("rewritten") is True,
        )
    return Manifest(prefix=prefix, hash_length=hash_length, files=MappingProxyType(files))


def _entry_problem(path: str, entry: Any, hash_length: int) -> str | None:
    if not is_safe_path(path):
        return "not a relative asset path"
    if not isinstance(entry, dict):
        return "not a JSON object"
    digest = entry.get("md5")
    if not isinstance(digest, str) or not _MD5.fullmatch(digest):
        return '"md5" is not 32 lowercase hex digits'
    if entry.get("hashed") != hashed_name(path, digest[:hash_length]):
        # The invariant: the hash in a URL is the MD5 of the bytes served there.
        return '"hashed" does not match the path and md5'
    size = entry.get("size")
    if type(size) is not int or size < 0:
        return '"size" is not a byte count'
    integrity = entry.get("integrity")
    if integrity is not None and not _is_sha384(integrity):
        return '"integrity" is not a sha384-<base64> digest'
    return None


def _is_sha384(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("sha384-"):
        return False
    try:
        return len(base64.b64decode(value[7:], validate=True)) == 48
    except binascii.Error:
        return False
