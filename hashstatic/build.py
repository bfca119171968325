"""The build directory: every asset under its hashed name, for nginx to serve as it is.

``hashstatic build --root static --out build`` copies each asset to ``build/<hashed name>``
with the bytes the middleware would serve (stylesheets with their references rewritten), so
the hash in every name is the MD5 of the file's own bytes, and writes ``build/manifest.json``
from the same reads. Only hashed names are written: a name that embeds the MD5 of its bytes
never changes content, so any file there may be cached for a year, and files of earlier builds
stay next to the new ones so that pages rendered before a deploy keep loading their assets.

Every file is written to a temporary name in its directory and renamed into place after its
MD5 was checked, so an interrupted build never leaves a half-written file under a final name;
a file already present with the right size is left alone (a rerun writes only what changed).

Retention. ``.hashstatic-builds.json`` lists what each build referenced. A hashed file (or its
``.gz``/``.br`` sibling, or a temporary file left by a crash) is deleted when none of the last
``keep_builds`` builds referenced it and it has not been referenced or written for
``keep_days`` days. Other files in the directory are never touched.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import hashlib
import importlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from types import MappingProxyType
from typing import Any

from hashstatic.cache import Asset, DiskIndex, check_hash_length, check_root, iter_files
from hashstatic.manifest import Manifest, ManifestError, check_prefix, write_manifest
from hashstatic.naming import hashed_name, split_hash

MANIFEST = "manifest.json"
LOG = ".hashstatic-builds.json"
_CHUNK = 256 * 1024
_ATTEMPTS = 3  # a file changing under us is read again this many times before we give up
# Formats that are compressed already: gzip would only make them bigger or barely smaller.
_COMPRESSED = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".avif",
        ".heic",
        ".ico",
        ".woff",
        ".woff2",
        ".zip",
        ".gz",
        ".br",
        ".zst",
        ".bz2",
        ".xz",
        ".7z",
        ".rar",
        ".mp4",
        ".m4v",
        ".webm",
        ".mov",
        ".mkv",
        ".mp3",
        ".m4a",
        ".aac",
        ".ogg",
        ".oga",
        ".opus",
        ".flac",
    ]
)
ProgressFn = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class BuildResult:
    manifest: Manifest
    written: tuple[str, ...]  # paths under out written by this run (files and siblings)
    deleted: tuple[str, ...]  # paths under out removed by retention


def _brotli() -> Any:
    # Optional: `pip install brotli` adds .br siblings; without it only .gz are made.
    try:
        return importlib.import_module("brotli")
    except ImportError:
        return None


def _chunks(path: str) -> Iterator[bytes]:
    """The bytes of the file ``path``, in chunks (the one place a build reads an asset)."""
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def write_atomic(target: str, chunks: Iterable[bytes], expect_md5: str | None = None) -> bool:
    """Write ``chunks`` to ``target`` through a temporary file renamed into place.

    Returns False, leaving ``target`` as it was, when ``expect_md5`` is given and the bytes
    do not have it (the source changed while it was read). Any error removes the temporary
    file, so ``target`` is either absent, the old file, or complete.
    """
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    md5 = hashlib.md5(usedforsecurity=False)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as stream:
            for chunk in chunks:
                md5.update(chunk)
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        if expect_md5 is not None and md5.hexdigest() != expect_md5:
            os.unlink(temporary)
            return False
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def raw_manifest(
    root: str | os.PathLike[str],
    *,
    prefix: str = "/static/",
    hash_length: int = 12,
    progress: ProgressFn | None = None,
) -> Manifest:
    """The manifest of the files as they are on disk, stylesheets included (not rewritten).

    This is the manifest of the source-root nginx shape, where nginx sends the files' own
    bytes: the hash must be theirs (SPEC 2's invariant), not that of a rewritten stylesheet.
    """
    check_prefix(prefix)
    check_hash_length(hash_length)
    base = check_root(root) + os.sep
    paths = list(iter_files(base))
    if progress is not None:
        progress(0, len(paths))
    files: dict[str, Asset] = {}
    for done, path in enumerate(paths, 1):
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha384()
        size = 0
        try:
            for chunk in _chunks(base + path):
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
        except OSError as error:
            raise ManifestError(
                f"cannot read {base + path} ({error.strerror or error}): fix its permissions"
            ) from None
        digest = md5.hexdigest()
        files[path] = Asset(
            path=path,
            hashed=hashed_name(path, digest[:hash_length]),
            digest=digest,
            size=size,
            mtime_ns=0,
            integrity="sha384-" + base64.b64encode(sha.digest()).decode("ascii"),
        )
        if progress is not None:
            progress(done, len(paths))
    return Manifest(prefix=prefix, hash_length=hash_length, files=MappingProxyType(files))


def build(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    prefix: str = "/static/",
    hash_length: int = 12,
    # .gz (and .br with the brotli package) siblings for nginx's gzip_static.
    compress: bool = False,
    # Retention: files of this many latest builds are always kept ...
    keep_builds: int = 5,
    # ... and any other hashed file until it has been unused this long.
    keep_days: float = 7.0,
    progress: ProgressFn | None = None,
    now: float | None = None,  # the clock, for tests of retention
) -> BuildResult:
    check_prefix(prefix)
    index = DiskIndex(root, hash_length=hash_length, prefix=prefix)
    if keep_builds < 1 or keep_days < 0:
        raise ValueError("keep_builds must be at least 1 and keep_days at least 0")
    out_dir = os.path.realpath(os.fspath(out))
    if out_dir == index.root or out_dir.startswith(index.root + os.sep):
        # The next build would publish this build's files as assets of their own.
        raise ValueError(f"--out {out_dir} is inside --root {index.root}: build somewhere else")
    os.makedirs(out_dir, exist_ok=True)
    now = time.time() if now is None else now
    paths = list(iter_files(index.root))
    if progress is not None:
        progress(0, len(paths))
    files: dict[str, Asset] = {}
    written: list[str] = []
    referenced: list[str] = []
    for done, path in enumerate(paths, 1):
        asset, new = _build_one(index, out_dir, path)
        files[path] = asset
        referenced.append(asset.hashed)
        written.extend(new)
        if compress:
            written.extend(_compress(out_dir, asset.hashed))
        # Siblings of earlier --compress builds stay with their file, whatever this build does.
        referenced.extend(
            asset.hashed + ext
            for ext in (".gz", ".br")
            if os.path.isfile(os.path.join(out_dir, *(asset.hashed + ext).split("/")))
        )
        if progress is not None:
            progress(done, len(paths))
    manifest = Manifest(prefix=prefix, hash_length=hash_length, files=MappingProxyType(files))
    write_manifest(manifest, os.path.join(out_dir, MANIFEST))
    deleted = _retain(out_dir, sorted(set(referenced)), now, keep_builds, keep_days)
    return BuildResult(manifest, tuple(written), tuple(deleted))


def _build_one(index: DiskIndex, out_dir: str, path: str) -> tuple[Asset, list[str]]:
    for _ in range(_ATTEMPTS):
        asset = index.lookup(path, integrity=True)
        if asset is None:
            break
        asset = dataclasses.replace(asset, mtime_ns=0)
        target = os.path.join(out_dir, *asset.hashed.split("/"))
        with contextlib.suppress(OSError):
            if os.stat(target).st_size == asset.size:
                return asset, []  # the name is the content's MD5: same size, same file
        os.makedirs(os.path.dirname(target), exist_ok=True)
        body = index.body(path)
        chunks = [body] if body is not None else _chunks(index.path_of(path))
        if write_atomic(target, chunks, expect_md5=asset.digest):
            return asset, [asset.hashed]
    raise ManifestError(
        f"cannot read {index.path_of(path)} steadily: fix its permissions, or build again "
        "when files are not being changed"
    )


def _compress(out_dir: str, hashed: str) -> list[str]:
    """Write the missing ``.gz``/``.br`` siblings of ``hashed`` that are smaller than it."""
    if os.path.splitext(hashed)[1].lower() in _COMPRESSED:
        return []
    target = os.path.join(out_dir, *hashed.split("/"))
    coders: list[tuple[str, Callable[[bytes], bytes]]] = [
        # mtime=0: the same file always gives the same bytes (builds are reproducible).
        (".gz", lambda data: gzip.compress(data, compresslevel=9, mtime=0))
    ]
    brotli = _brotli()
    if brotli is not None:
        coders.append((".br", lambda data: bytes(brotli.compress(data))))
    made: list[str] = []
    data: bytes | None = None
    for ext, encode in coders:
        if os.path.exists(target + ext):
            continue
        if data is None:
            with open(target, "rb") as stream:
                data = stream.read()
        packed = encode(data)
        if len(packed) < len(data) and write_atomic(target + ext, [packed]):
            made.append(hashed + ext)
    return made


def _read_log(out_dir: str) -> list[dict[str, Any]]:
    try:
        with open(os.path.join(out_dir, LOG), "rb") as stream:
            document = json.loads(stream.read().decode("utf-8"))
        builds = document["builds"]
        if isinstance(builds, list) and all(isinstance(b, dict) for b in builds):
            return builds
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return []  # no log (first build) or an unreadable one: only file ages protect files


def _retain(
    out_dir: str, referenced: list[str], now: float, keep_builds: int, keep_days: float
) -> list[str]:
    history = [*_read_log(out_dir), {"time": now, "files": referenced}]
    limit = now - keep_days * 86400
    builds = history[-keep_builds:]
    # The log remembers the last builds and any within keep_days: their files are in use.
    logged = [
        entry
        for i, entry in enumerate(history)
        if i >= len(history) - keep_builds or _when(entry) > limit
    ]
    # When each file was last referenced by a logged build (older builds were forgotten).
    last_used: dict[str, float] = {}
    for entry in history:
        for name in entry.get("files", ()):
            if isinstance(name, str):
                last_used[name] = max(last_used.get(name, 0.0), _when(entry))
    kept = {name for entry in builds for name in entry.get("files", ())}
    data = json.dumps({"version": 1, "builds": logged}, indent=1, sort_keys=True) + "\n"
    write_atomic(os.path.join(out_dir, LOG), [data.encode("utf-8")])
    deleted: list[str] = []
    for name, st in _ours(out_dir):
        if name in kept or max(st.st_mtime, last_used.get(name, 0.0)) > limit:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out_dir, *name.split("/")))
            deleted.append(name)
    return deleted


def _when(entry: dict[str, Any]) -> float:
    when = entry.get("time")
    return float(when) if isinstance(when, (int, float)) else 0.0


def _ours(out_dir: str) -> Iterator[tuple[str, os.stat_result]]:
    """Files under ``out_dir`` that a build writes: hashed names, their siblings, temporaries."""
    for directory, subdirs, names in os.walk(out_dir):
        subdirs.sort()
        relative = os.path.relpath(directory, out_dir).replace(os.sep, "/")
        for name in sorted(names):
            path = name if relative == "." else f"{relative}/{name}"
            if path == LOG:
                continue
            temporary = name.startswith(".") and name.endswith(".tmp")
            plain = path[:-3] if path.endswith((".gz", ".br")) else path
            hashed = any(split_hash(p, n) for p in (path, plain) for n in range(8, 33))
            if not (temporary or hashed):
                continue
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(directory, name))
                if stat.S_ISREG(st.st_mode):
                    yield path, st
