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
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hashstatic.cache import Asset, DiskIndex, check_hash_length, is_safe_path, iter_files
from hashstatic.naming import hashed_name

VERSION = 1
_WORKERS = min(8, os.cpu_count() or 1)  # threads that hash files for build_manifest
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
    index = DiskIndex(root, hash_length=hash_length, prefix=prefix)
    paths = list(iter_files(index.root))
    if progress is not None:
        progress(0, len(paths))
    files: dict[str, Asset] = {}
    # hashlib lets go of the GIL while it hashes, so files are hashed on every core; the
    # index hashes each file once whichever thread asks (stylesheets ask for what they name).
    workers = min(_WORKERS, max(1, len(paths)))
    with concurrent.futures.ThreadPoolExecutor(workers, "hashstatic-manifest") as pool:
        found = pool.map(lambda p: index.lookup(p, integrity=True), paths, chunksize=16)
        for done, (path, asset) in enumerate(zip(paths, found, strict=True), 1):
            if asset is None:
                # Leaving it out would publish its URL unhashed in production without a word.
                raise ManifestError(
                    f"cannot read {index.path_of(path)}: fix its permissions, or run again if "
                    "files were being changed"
                )
            files[path] = dataclasses.replace(asset, mtime_ns=0)  # a manifest has no clock
            if progress is not None:
                progress(done, len(paths))
    return Manifest(prefix=prefix, hash_length=hash_length, files=MappingProxyType(files))


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
