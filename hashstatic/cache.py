"""The hash cache: which asset a path names, and the MD5 of its bytes.

:class:`DiskIndex` hashes files under a root on first use and keeps the result until the
file's ``(device, inode, mtime_ns, size)`` changes, so a request costs one ``stat`` per file.
:class:`FrozenIndex` answers from a manifest and never touches the file system (production).
Both return :class:`Asset` records; everything that builds or serves hashed URLs reads them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from hashstatic.naming import hashed_name


def is_stylesheet(path: str) -> bool:
    """Stylesheets are served with their references rewritten, and hashed after that."""
    return path.lower().endswith(".css")


def has_body(path: str) -> bool:
    """Whether the bytes served for ``path`` may differ from the file's: stylesheets, and
    scripts whose source map comment is rewritten."""
    return path.lower().endswith((".css", ".js", ".mjs"))


if TYPE_CHECKING:
    from hashstatic.manifest import Manifest

_CHUNK = 256 * 1024
# A file rewritten while we hash it is hashed again; one still changing after this many reads
# is answered with the latest read, uncached, so the next request looks again.
_READ_ATTEMPTS = 3
# O_NONBLOCK: a FIFO swapped in after the stat must not hang a request thread on open().
# O_NOFOLLOW: we open the resolved path, so a symlink there now was swapped in after the check.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)

_Key = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Asset:
    path: str  # posix path relative to root, e.g. "css/site.css" (decoded, no leading slash)
    hashed: str  # naming.hashed_name(path, digest[:hash_length])
    digest: str  # full 32-hex MD5 of the bytes served
    size: int
    mtime_ns: int  # 0 when frozen from a manifest
    integrity: str | None  # "sha384-<base64>" of the same bytes, when asked for / known
    rewritten: bool = False  # the bytes served are not the file's (see stylesheets)


class AssetIndex(Protocol):
    hash_length: int

    def lookup(self, path: str, *, integrity: bool = False) -> Asset | None: ...

    @property
    def fingerprint(self) -> str | None: ...


def is_safe_path(path: str) -> bool:
    """Whether ``path`` is a relative posix path that could name an asset at all.

    No traversal (``.``/``..``), no absolute or empty segments, no backslash or NUL (which some
    layer below might read as a separator or terminator), and no dotfiles or dot-directories
    (``.git``, ``.env``): those are never published. Names that are not UTF-8 (undecodable
    bytes, kept as surrogates) are refused too: no URL or manifest can name them.
    """
    if not path or "\x00" in path or "\\" in path:
        return False
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return all(segment and segment[0] != "." for segment in path.split("/"))


def check_root(root: str | os.PathLike[str]) -> str:
    """The real path of ``root``, which must be an existing directory."""
    name = os.fspath(root)
    if not os.path.isdir(name):
        what = "is not a directory" if os.path.exists(name) else "does not exist"
        fix = "create it or pass" if what == "does not exist" else "pass"
        raise ValueError(
            f"static root {name!r} {what}: {fix} root= the directory that holds your assets"
        )
    return os.path.realpath(name)


def check_hash_length(hash_length: int) -> int:
    """``hash_length`` if it is a usable number of hex characters, else ``ValueError``."""
    if type(hash_length) is not int or not 8 <= hash_length <= 32:
        raise ValueError(
            f"hash_length {hash_length!r} is not allowed: give a whole number from 8 to 32 "
            "(hex characters of the MD5 kept in URLs; 12 is the default)"
        )
    return hash_length


def _key(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _inside(root: str, real: str) -> str | None:
    """``real`` relative to ``root`` as a posix path, if it is an asset path inside it."""
    base = root if root.endswith(os.sep) else root + os.sep
    if not real.startswith(base):
        return None
    relative = real[len(base) :].replace(os.sep, "/")
    # A symlink inside root that points at a dotfile must not publish it under another name.
    return relative if is_safe_path(relative) else None


@dataclass(frozen=True, slots=True)
class _Entry:
    key: _Key
    asset: Asset
    # Stylesheets: the bytes served (references hashed) and the (path, digest) of each asset
    # they name, so that a changed font changes the stylesheet.
    body: bytes | None = None
    deps: tuple[tuple[str, str], ...] = ()


def _fresh(entry: _Entry | None, key: _Key, integrity: bool) -> Asset | None:
    """The entry's asset if it was hashed from the file as ``key`` says it is now."""
    if entry is None or entry.key != key or (integrity and entry.asset.integrity is None):
        return None
    return entry.asset


class DiskIndex:
    """Hashes of the files under ``root``, computed on demand and revalidated by ``stat``."""

    def __init__(
        self, root: str | os.PathLike[str], *, hash_length: int = 12, prefix: str = "/static/"
    ) -> None:
        self.root = check_root(root)
        self.hash_length = check_hash_length(hash_length)
        self.prefix = prefix  # where root is published: stylesheets' absolute URLs need it
        self._base = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._entries: dict[str, _Entry] = {}
        # One lock per path, so that concurrent first requests for a file hash it once while
        # requests for other files go ahead.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @property
    def fingerprint(self) -> str | None:
        return None  # the disk can change under us: there is no fixed state to name

    def path_of(self, path: str) -> str:
        """The file-system path of the asset ``path`` (which :meth:`lookup` accepted)."""
        if not is_safe_path(path):
            raise ValueError(f"{path!r} is not a relative asset path")
        return self._base + path

    def lookup(self, path: str, *, integrity: bool = False) -> Asset | None:
        """The asset ``path`` names, hashed as it is now; ``None`` for anything else."""
        entry = self._entries.get(path)
        # Only paths that passed the check get entries, so a hit needs no second look.
        if entry is None and not is_safe_path(path):
            return None
        try:
            st = os.stat(self._base + path)
        except (OSError, ValueError):
            self._entries.pop(path, None)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = _key(st)
        asset = _fresh(entry, key, integrity)
        if asset is not None and self._deps_fresh(entry):
            return asset
        with self._locks_lock:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            # Another thread may have hashed it while we waited.
            entry = self._entries.get(path)
            asset = _fresh(entry, key, integrity)
            if asset is not None and self._deps_fresh(entry):
                return asset
            return self._compute(path, integrity)

    def _deps_fresh(self, entry: _Entry | None) -> bool:
        # The references of a stylesheet form no cycle (see stylesheets), so this terminates.
        for path, digest in entry.deps if entry is not None else ():
            asset = self.lookup(path)
            if asset is None or asset.digest != digest:
                return False
        return True

    def body(self, path: str) -> bytes | None:
        """The bytes served for ``path`` when they are not the file's (stylesheets, scripts
        with a source map), as of the last :meth:`lookup` of it."""
        entry = self._entries.get(path)
        return None if entry is None else entry.body

    def _references(self, path: str) -> list[str]:
        """The paths a stylesheet names, read from the file as it is (for cycle detection)."""
        from hashstatic.stylesheets import stylesheet_references

        try:
            with open(self._base + path, "rb") as f:
                css = f.read()
        except (OSError, ValueError):
            return []
        return stylesheet_references(css, path, self.prefix)

    def _compute(self, path: str, integrity: bool) -> Asset | None:
        try:
            real = os.path.realpath(self._base + path)
        except (OSError, ValueError):
            return None
        if _inside(self.root, real) is None:
            return None
        asset: Asset | None = None
        for _ in range(_READ_ATTEMPTS):
            try:
                fd = os.open(real, _OPEN_FLAGS)
            except OSError:
                return None
            try:
                with open(fd, "rb", buffering=0) as stream:
                    before = os.fstat(fd)
                    if not stat.S_ISREG(before.st_mode):
                        return None
                    tee = _Tee(stream, keep=has_body(path))
                    digest, sri, size = self._digest(cast(BinaryIO, tee), integrity)
                    after = os.fstat(fd)
            except OSError:
                return None
            body: bytes | None = None
            deps: tuple[tuple[str, str], ...] = ()
            if has_body(path):
                body, deps = self._served(path, b"".join(tee.chunks))
                if body is not None:
                    digest, sri, size = _hash(body, integrity)
            asset = Asset(
                path=path,
                hashed=hashed_name(path, digest[: self.hash_length]),
                digest=digest,
                size=size,
                mtime_ns=after.st_mtime_ns,
                integrity=sri,
                rewritten=body is not None,
            )
            if _key(before) == _key(after):
                self._entries[path] = _Entry(_key(after), asset, body, deps)
                return asset
        return asset

    def _served(self, path: str, raw: bytes) -> tuple[bytes | None, tuple[tuple[str, str], ...]]:
        from hashstatic.stylesheets import served_body, stylesheet_references

        def references(p: str) -> list[str]:
            if p == path:
                return stylesheet_references(raw, path, self.prefix)
            return self._references(p)

        body, used = served_body(raw, path, self.prefix, self.lookup, references)
        return body, tuple(sorted({(a.path, a.digest) for a in used}))

    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        """MD5 hex, SRI string (when asked) and length of the bytes read from ``stream``.

        The one place file contents are read, so a subclass can wrap it (the tests count and
        disturb reads this way).
        """
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha384() if integrity else None
        size = 0
        while chunk := stream.read(_CHUNK):
            md5.update(chunk)
            if sha is not None:
                sha.update(chunk)
            size += len(chunk)
        sri = None if sha is None else "sha384-" + base64.b64encode(sha.digest()).decode("ascii")
        return md5.hexdigest(), sri, size


def _hash(data: bytes, integrity: bool) -> tuple[str, str | None, int]:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    sri = (
        "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode() if integrity else None
    )
    return md5, sri, len(data)


class _Tee:
    """Keeps what is read through it when the bytes are needed after hashing (stylesheets)."""

    def __init__(self, stream: BinaryIO, *, keep: bool) -> None:
        self.stream = stream
        self.keep = keep
        self.chunks: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if self.keep:
            self.chunks.append(data)
        return data


class FrozenIndex:
    """Hashes frozen in a manifest: lookups never stat or read a file."""

    def __init__(self, manifest: Manifest, *, root: str | os.PathLike[str] | None = None) -> None:
        self.manifest = manifest
        self.hash_length = manifest.hash_length
        self._files = manifest.files
        self._fingerprint = _fingerprint(manifest)
        # Only for serving: the files whose bytes are not the file's (stylesheets) are made
        # once from root, as the manifest's build made them; pages never need it.
        self.root = None if root is None else check_root(root)
        self._bodies: dict[str, tuple[_Key, bytes | None]] = {}
        self._bodies_lock = threading.Lock()

    @property
    def fingerprint(self) -> str | None:
        return self._fingerprint

    def lookup(self, path: str, *, integrity: bool = False) -> Asset | None:
        # The manifest carries integrity for every file it was built with; nothing to compute.
        return self._files.get(path)

    def body(self, path: str) -> bytes | None:
        """The rewritten bytes of a stylesheet or script, made from the file under root (again
        when it changes: one ``stat``); the assets it names are the manifest's."""
        asset = self._files.get(path)
        if self.root is None or asset is None or not asset.rewritten:
            return None  # served from the file: no stat spent here
        try:
            key = _key(os.stat(self.root + os.sep + path))
        except (OSError, ValueError):
            return None  # gone: the server finds nothing either
        with self._bodies_lock:
            known = self._bodies.get(path)
            if known is None or known[0] != key:
                known = self._bodies[path] = (key, self._served(path))
            return known[1]

    def _served(self, path: str) -> bytes | None:
        from hashstatic.stylesheets import served_body, stylesheet_references

        assert self.root is not None
        base = self.root + os.sep

        def read(p: str) -> bytes | None:
            try:
                with open(base + p, "rb") as f:
                    return f.read()
            except (OSError, ValueError):
                return None

        raw = read(path)
        if raw is None:
            return None
        prefix = self.manifest.prefix

        def references(p: str) -> list[str]:
            css = raw if p == path else read(p)
            return [] if css is None else stylesheet_references(css, p, prefix)

        return served_body(raw, path, prefix, self.lookup, references)[0]


def _fingerprint(manifest: Manifest) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for path in sorted(manifest.files):
        asset = manifest.files[path]
        fields = (path, asset.hashed, asset.digest, str(asset.size), asset.integrity or "")
        md5.update("\0".join(fields).encode("utf-8", "surrogatepass") + b"\n")
    return md5.hexdigest()


def iter_files(root: str | os.PathLike[str]) -> Iterator[str]:
    """Every path under ``root`` that :meth:`DiskIndex.lookup` accepts, in sorted order.

    Directory symlinks that stay inside ``root`` are followed (as lookups follow them), except
    into a directory already being walked, which would repeat forever.
    """
    real_root = check_root(root)
    found: list[str] = []
    _walk(real_root, real_root, "", (real_root,), found)
    yield from sorted(found)


def _walk(
    root: str, directory: str, prefix: str, walking: tuple[str, ...], found: list[str]
) -> None:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return  # unreadable: lookups under it fail too
    for entry in entries:
        relative = prefix + entry.name
        if not is_safe_path(relative):
            continue  # a dotfile, or a name with a backslash: never an asset
        try:
            real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            st = os.stat(real)
        except (OSError, ValueError):
            continue
        if _inside(root, real) is None:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append(relative)
        elif stat.S_ISDIR(st.st_mode) and real not in walking:
            _walk(root, real, relative + "/", (*walking, real), found)
