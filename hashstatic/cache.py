"""The hash cache: which asset a path names, and the MD5 of its bytes.

:class:`DiskIndex` hashes files under a root on first use and keeps the result until the
file's ``stat`` changes, so a request costs one ``stat`` per file. :class:`FrozenIndex` answers
from a manifest and never touches the file system (production). Both return :class:`Asset`
records; everything that builds or serves hashed URLs reads them.

What ``stat`` can tell. A file is taken to be unchanged while its device, inode, mtime, ctime
and size are. A rename over it (a new inode) is always noticed, even when the new file has
the old size and mtime (``cp -p``, ``rsync -t``, builds with fixed timestamps); so is a rewrite
in place that restores size and mtime, because nothing but the clock sets the ctime. What is
not noticed: two same-size writes to one file within one tick of the file system's clock, on a
kernel or file system without fine-grained timestamps (Linux before 6.13 ticks every 1-10 ms;
FAT every 2 s); the second write is seen at the file's next change. Deploy by rename.

Threads. Each version of a file is read and hashed once however many threads ask at once (a
lock per path, held only while that file is read). A stylesheet's served bytes name other
assets' hashes, so making them looks those assets up: no lock is held then, so that
stylesheets that name each other, or change while they are looked up, cannot deadlock.
"""

from __future__ import annotations

import binascii
import errno
import hashlib
import itertools
import logging
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from hashstatic.naming import with_hash
from hashstatic.speedups import speedup
from hashstatic.watch import Trust, local_watching

log = logging.getLogger(__name__)


class WarnOnce:
    """Logs a problem an operator must fix once per key (a path) and process, not on every
    request; past ``limit`` keys the memory of them starts again."""

    def __init__(self, logger: logging.Logger, limit: int = 1024) -> None:
        self.logger = logger
        self.limit = limit
        self._keys: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __call__(self, key: str, message: str, *args: object) -> None:
        if key in self._keys:
            return
        if len(self._keys) >= self.limit:
            self._keys.clear()
        self._keys.add(key)
        self.logger.warning(message, *args)


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
# Where an open file descriptor names its file, symlinks resolved (Linux).
_PROC_FD = (
    "/proc/self/fd/"
    if sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
    else None
)
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
_FOLLOW_FLAGS = _OPEN_FLAGS & ~getattr(os, "O_NOFOLLOW", 0)
# Errors of an open that mean "no such file" or "not a regular file" (a socket, a device with
# no driver), as a stat would have said: not warned of.
_ABSENT = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.ENXIO, errno.ENODEV}
)
# Of those, the ones an open that follows no symlink gets only where following them would not
# find a file either: a missing or non-directory part met before any symlink.
_NO_FILE = frozenset({errno.ENOENT, errno.ENOTDIR})


# openat2 with no symlinks followed (Linux 5.6+), or None.
_open_plain: Callable[[str], int] | None = speedup("open_plain")


def _fstat_key(fd: int) -> _Key | None:
    """The :func:`_key` of the open file ``fd``; ``None`` if it is not a regular file."""
    st = os.fstat(fd)
    return _key(st) if stat.S_ISREG(st.st_mode) else None


# _fstat_key, in C where it can be: it is asked twice per file read.
_file_key: Callable[[int], _Key | None] = speedup("file_key") or _fstat_key
# bytes.find, 64 positions at a time where it can be (a source map comment is rare).
_find: Callable[[bytes, bytes], int] = speedup("find") or bytes.find
# Many files opened as _open_plain opens, read and hashed in C with the interpreter lock let go
# once for them all (see DiskIndex.lookup_unseen), or None.
_digest_files: Callable[[list[str], list[bool], bool], list[Any]] | None = speedup(
    "digest_files", "_digests"
)

# (device, inode, mtime_ns, ctime_ns, size): what stat says about a version of a file.
_Key = tuple[int, int, int, int, int]


def _from_c(
    got: tuple[_Key, bytes, bytes | None, bytes | None],
) -> tuple[_Key, str, str | None, int, bytes | None]:
    """A file as hashstatic._digests answers it (its version, raw MD5 and SHA-384, kept
    bytes), as the index keeps it: version, MD5 in hex, SRI, size and bytes."""
    key, md5, sha, data = got
    return key, md5.hex(), None if sha is None else _sri(sha), key[4], data


@dataclass(frozen=True, slots=True)
class Asset:
    path: str  # posix path relative to root, e.g. "css/site.css" (decoded, no leading slash)
    hashed: str  # naming.hashed_name(path, digest[:hash_length])
    digest: str  # full 32-hex MD5 of the bytes served
    size: int
    mtime_ns: int  # 0 when frozen from a manifest
    integrity: str | None  # "sha384-<base64>" of the same bytes, when asked for / known
    rewritten: bool = False  # the bytes served are not the file's (see stylesheets)
    # The file as it was hashed (see _key); None from a manifest. Not compared: assets of the
    # same bytes are equal wherever they came from.
    file_key: _Key | None = field(default=None, compare=False, repr=False)

    def describes(self, st: os.stat_result) -> bool:
        """Whether the open file whose ``fstat`` is ``st`` is the version this asset was hashed
        from, as far as ``stat`` can tell: what a server checks before it calls the bytes it is
        about to send immutable. A manifest has no clock: there only the size is compared."""
        if self.file_key is None or self.mtime_ns == 0:
            return st.st_size == self.size
        return _key(st) == self.file_key


# What one response has been told: path -> asset (or None), see DiskIndex.lookup.
Seen = dict[str, Asset | None]
# In a Seen: the kernel's reports of changes were read when the response began (no asset path
# is empty).
_BEGUN = ""


class AssetIndex(Protocol):
    hash_length: int

    def lookup(
        self, path: str, *, integrity: bool = False, seen: Seen | None = None
    ) -> Asset | None: ...

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
    # Each segment is not empty and does not start with a dot (no "/" at either end, no "//").
    return path[0] not in "./" and path[-1] != "/" and "/." not in path and "//" not in path


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
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _inside(root: str, real: str) -> str | None:
    """``real`` relative to ``root`` as a posix path, if it is an asset path inside it."""
    base = root if root.endswith(os.sep) else root + os.sep
    if not real.startswith(base):
        return None
    relative = real[len(base) :].replace(os.sep, "/")
    # A symlink inside root that points at a dotfile must not publish it under another name.
    return relative if is_safe_path(relative) else None


@dataclass(slots=True)  # not frozen: made once per file read, and never changed
class _Read:
    """One version of a file, as read and hashed."""

    key: _Key  # the file while it was read (fstat after reading)
    seq: int  # order of reads of this path: a later read describes a later version
    digest: str
    integrity: str | None
    size: int
    data: bytes | None  # the bytes, for files that may be served rewritten (has_body)
    stable: bool  # the file did not change while it was read: fit to be remembered


@dataclass(slots=True)  # not frozen: made once per file read, and never changed
class _Entry:
    key: _Key
    seq: int
    asset: Asset
    # Stylesheets: the bytes served (references hashed) and the (path, digest) of each asset
    # they name, so that a changed font changes the stylesheet; and the read they were made
    # from, so that they are made again without reading the file again.
    body: bytes | None = None
    deps: tuple[tuple[str, str], ...] = ()
    read: _Read | None = None


def _covers(asset: Asset, integrity: bool) -> bool:
    return asset.integrity is not None or not integrity


class Vouched:
    """What the kernel says, for one response (its ``seen``), of answers already given: a
    page's remembered tags need not look their assets up again while nothing has changed.

    A tag remembered with :meth:`state` ``s``, when :meth:`vouches` for all its answers after
    ``s`` was taken, is still right for a response whose :meth:`state` is ``s``: each answer
    was one the kernel reports any change of, and no change at all was reported between.
    """

    __slots__ = ("_seen", "_state", "_trust")

    def __init__(self, trust: Trust, seen: Seen) -> None:
        self._trust = trust
        self._seen = seen
        self._state: object = _UNREAD

    def state(self) -> object:
        """The kernel's count of changes so far, as a token (``None`` when it cannot tell);
        read once per response, after the reports that came before it."""
        if self._state is _UNREAD:
            self._state = self._trust.state()
            self._seen[_BEGUN] = None  # its lookups need not read the reports again
        return self._state

    def vouches(self, answers: Iterable[tuple[str, Asset | None]]) -> bool:
        """Whether each ``(path, asset)`` is the kernel-vouched answer for its path now (an
        absent file, a symlink, a mount point never are: those are looked at every time)."""
        known = self._trust.known
        return all(asset is not None and known(path) is asset for path, asset in answers)


_UNREAD = object()


class DiskIndex:
    """Hashes of the files under ``root``, computed on demand and revalidated by ``stat``."""

    # Whether assets carry the file's mtime (a manifest has no clock: see manifest).
    _clocked = True

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        hash_length: int = 12,
        prefix: str = "/static/",
        watch: bool = False,
    ) -> None:
        self.root = check_root(root)
        self.hash_length = check_hash_length(hash_length)
        self.prefix = prefix  # where root is published: stylesheets' absolute URLs need it
        self._base = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._entries: dict[str, _Entry] = {}
        # One lock per path, held while that file is read, so that concurrent first requests
        # for a file hash it once while requests for other files go ahead.
        self._locks: dict[str, threading.Lock] = {}
        # The latest read of a file served rewritten, until the entry made from it is stored:
        # a thread that waited for the lock takes these bytes instead of reading them again.
        self._reads: dict[str, _Read] = {}
        self._seq = itertools.count()
        # Per thread: the paths whose slow lookups are under way (see _refresh).
        self._local = threading.local()
        self._warned = WarnOnce(log)
        # Whether to log them (a file server in front logs its own account instead).
        self.warn = True
        # With ``watch``, answers the kernel vouches for are given again with no stat (watch).
        self._trust = Trust(self.root) if watch and local_watching(self.root) else None

    @property
    def watching(self) -> bool:
        """Whether changes are learnt from the kernel rather than by a ``stat`` per lookup."""
        return self._trust is not None

    def state(self) -> object:
        """:meth:`Vouched.state` for a response that makes no lookup: ``None`` when this
        index does not watch."""
        return None if self._trust is None else self._trust.state()

    def vouched(self, seen: Seen) -> Vouched | None:
        """The kernel's word for the response whose lookups share ``seen``; ``None`` when
        this index does not watch."""
        return None if self._trust is None else Vouched(self._trust, seen)

    @property
    def fingerprint(self) -> str | None:
        return None  # the disk can change under us: there is no fixed state to name

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if self.warn:  # once per path (the root: "")
            self._warned(key, message, *args)

    def path_of(self, path: str) -> str:
        """The file-system path of the asset ``path`` (which :meth:`lookup` accepted)."""
        if not is_safe_path(path):
            raise ValueError(f"{path!r} is not a relative asset path")
        return self._base + path

    def lookup(
        self, path: str, *, integrity: bool = False, seen: Seen | None = None
    ) -> Asset | None:
        """The asset ``path`` names, hashed as it is now; ``None`` for anything else.

        ``seen`` holds the answers already given to one response (path -> asset, asked with
        the same ``integrity``): the files a stylesheet names are checked through it and
        added to it, so that a response stats each distinct file at most once. When the index
        watches, an answer the kernel has reported no change for since is given with no
        ``stat`` at all; the reports are read by a response's first lookup, so that the
        response sees the files as they were when it began.
        """
        trust = self._trust
        if trust is None:
            return self._look(path, integrity, seen)[0]
        if seen is None:
            known = trust.get(path)
        elif _BEGUN in seen:
            known = trust.known(path)  # the events were read when the response began
        else:
            known = trust.get(path)
            seen[_BEGUN] = None
        if known is not None and _covers(known, integrity):
            return known
        if not is_safe_path(path):
            return None
        # Watched from before the look, so that any change after the look is reported.
        token = trust.arm(path)
        if token is None:
            return self._look(path, integrity, seen)[0]
        asset, info = self._look(path, integrity, seen, follow=False)
        if asset is not None and info is not None:
            entry = self._entries.get(path)
            if stat.S_ISLNK(info.st_mode) or info.st_dev != trust.dev:
                trust.unwatchable(path, token)  # the file is elsewhere: stat'ed every time
            elif entry is not None and entry.asset is asset:
                trust.settle(path, token, asset, entry.deps)
        return asset

    @property
    def _reads_in_c(self) -> bool:
        """Whether files are read and hashed by hashstatic._digests: it is built, the kernel
        has ``openat2`` (the open :meth:`_open` makes first), and reads do not go through a
        ``_digest`` of a subclass's or set on this index (such a hook sees every read)."""
        return (
            _digest_files is not None
            and _open_plain is not None
            and _PROC_FD is not None
            and getattr(self._digest, "__func__", None) is DiskIndex._digest
        )

    @property
    def batched(self) -> bool:
        """Whether :meth:`lookup_unseen` reads the files it is given in C, all at once (it
        also needs no watch armed: lookups arm them)."""
        return self._trust is None and self._reads_in_c

    def lookup_unseen(self, paths: list[str], *, integrity: bool = False) -> list[Asset | None]:
        """:meth:`lookup` of each of ``paths``, for a caller that asks for many files at once,
        most of them not asked for before (build_manifest, on several threads).

        The answers are those of :meth:`lookup`. The files this index knows nothing of are
        read and hashed together in C, with the interpreter lock let go once for them all
        rather than four to six times a file (see hashstatic._digests), where :attr:`batched`
        says so: the C module is built, the kernel has ``openat2`` (the open :meth:`_open`
        makes first), no watch is to be armed, and ``_digest`` is the index's own (a subclass
        that wraps it sees every read). Any file that C could not read so (a symlink on the
        way, a file changed while it was read, an error) is looked up as usual, which reads
        it again and says why.
        """
        digest_files = _digest_files if self.batched else None
        if digest_files is None:
            return [self.lookup(path, integrity=integrity) for path in paths]
        unseen = [p for p in paths if p not in self._entries and is_safe_path(p)]
        kept = list(map(has_body, unseen))  # stylesheets and scripts: their bytes are needed
        answers = digest_files([self._base + p for p in unseen], kept, integrity)
        read = dict(zip(unseen, answers, strict=True))
        found: list[Asset | None] = []
        for path in paths:
            got = read.get(path)
            if isinstance(got, tuple):
                found.append(self._adopt(path, integrity, *_from_c(got)))
            elif isinstance(got, int) and got in _NO_FILE:
                found.append(None)  # nothing there: a lookup would only open it again
            else:
                found.append(self.lookup(path, integrity=integrity))
        return found

    def _adopt(
        self,
        path: str,
        integrity: bool,
        key: _Key,
        digest: str,
        sri: str | None,
        size: int,
        data: bytes | None,
    ) -> Asset | None:
        """What :meth:`_read` makes of a version of ``path`` it has read and hashed, for one
        read and hashed by :meth:`lookup_unseen` (``key``: the file, unchanged while read)."""
        with self._lock(path):
            known = self._known(path, key, integrity)  # another thread may have read it since
            if known is None:
                seq = next(self._seq)
                if data is None or _names_nothing(path, data):
                    asset = self._asset(path, key, digest, sri, size, digest)
                    self._entries[path] = _Entry(key, seq, asset)
                    return asset
                known = self._reads[path] = _Read(key, seq, digest, sri, size, data, True)
        if isinstance(known, Asset):
            return known
        # A stylesheet or script that names assets: made as lookup makes it, from this read.
        return self._refresh(path, key, integrity, None)

    def _look(
        self, path: str, integrity: bool, seen: Seen | None, *, follow: bool = True
    ) -> tuple[Asset | None, os.stat_result | None]:
        """:meth:`lookup` by ``stat``; also what ``stat`` said (with ``follow=False``, of the
        path itself: a symlink there is then followed with a second ``stat``)."""
        entry = self._entries.get(path)
        if entry is None:
            # Only paths that passed the check get entries, so a hit needs no second look.
            if not is_safe_path(path):
                return None, None
            if follow:  # nothing to compare a stat with: the open file is looked at instead
                found = self._read(path, None, integrity)
                if found is None or isinstance(found, Asset):
                    return found, None  # served as it is: it names nothing, no loop to watch
                return self._refresh(path, found.key, integrity, seen), None
        try:
            info = st = os.stat(self._base + path, follow_symlinks=follow)
            if stat.S_ISLNK(st.st_mode):
                st = os.stat(self._base + path)
        except (OSError, ValueError):
            if entry is not None:
                self._forget(path, entry)
                if not os.path.isdir(self.root):
                    self._warn_once(
                        "",
                        "static root %s no longer exists: asset URLs stay unhashed until it "
                        "is back",
                        self.root,
                    )
            return None, None
        if not stat.S_ISREG(st.st_mode):
            return None, info
        key = _key(st)
        if (
            entry is not None
            and entry.key == key
            and not entry.deps
            and _covers(entry.asset, integrity)
        ):
            return entry.asset, info
        return self._refresh(path, key, integrity, seen), info

    def body(self, path: str) -> bytes | None:
        """The bytes served for ``path`` when they are not the file's (stylesheets, scripts
        with a source map), as of the last :meth:`lookup` of it."""
        entry = self._entries.get(path)
        return None if entry is None else entry.body

    def peek(self, path: str) -> Asset | None:
        """The asset last answered for ``path`` if the file is still that version: one
        ``stat``, and the files a stylesheet names are not looked at. For a server about to
        send again bytes whose hash it already checked (see prepared), not for pages."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        if self._trust is not None and self._trust.get(path) is entry.asset:
            return entry.asset  # nothing it depends on has changed since it was answered
        try:
            st = os.stat(self._base + path)
        except (OSError, ValueError):
            return None
        return entry.asset if _key(st) == entry.key else None

    def _lock(self, path: str) -> threading.Lock:
        # setdefault is one step (str keys run no Python code): two threads get one lock.
        return self._locks.get(path) or self._locks.setdefault(path, threading.Lock())

    def _refresh(self, path: str, key: _Key, integrity: bool, seen: Seen | None) -> Asset | None:
        """The slow half of :meth:`lookup`: the file is new or changed, or it names assets
        that may have changed.

        Checking and making a stylesheet looks up what it names, which may be stylesheets that
        name it: entries made from files that changed in between can name each other although
        the files no longer do. A lookup of a path whose slow lookup this thread is already in
        is such a loop: it answers ``None`` (the URL stays as written) and, unless the path
        names itself, nothing made until the loop unwinds is remembered.
        """
        local = self._local
        active: list[str] | None = getattr(local, "active", None)
        if active is None:
            active = local.active = []
            local.loops = 0
        if path in active:
            if path != active[-1]:
                local.loops += 1
            return None
        active.append(path)
        try:
            return self._update(path, key, integrity, seen)
        finally:
            active.pop()

    def _update(self, path: str, key: _Key, integrity: bool, seen: Seen | None) -> Asset | None:
        entry = self._entries.get(path)
        if entry is not None and entry.key == key and entry.read is not None:
            # The file is as it was read; the assets it names may not be.
            if _covers(entry.asset, integrity) and self._deps_fresh(entry, integrity, seen):
                return entry.asset
            return self._rewrite(path, entry.read, integrity, seen)
        found = self._read(path, key, integrity)
        if found is None or isinstance(found, Asset):
            return found
        return self._rewrite(path, found, integrity, seen)

    def _deps_fresh(self, entry: _Entry, integrity: bool, seen: Seen | None) -> bool:
        for path, digest in entry.deps:
            if seen is None:
                asset = self.lookup(path, integrity=integrity)
            elif path in seen:
                asset = seen[path]
            else:
                asset = seen[path] = self.lookup(path, integrity=integrity, seen=seen)
            if asset is None or asset.digest != digest:
                return False
        return True

    def _known(self, path: str, key: _Key, integrity: bool) -> Asset | _Read | None:
        """What is already known of the version ``key`` of ``path``, if anything."""
        # The pending read first: its thread stores the entry before it drops the read.
        read = self._reads.get(path)
        if read is not None and read.key == key:
            return read
        entry = self._entries.get(path)
        if entry is not None and entry.key == key:
            if entry.read is not None:
                return entry.read
            if _covers(entry.asset, integrity):
                return entry.asset
        return None

    def _read(self, path: str, key: _Key | None, integrity: bool) -> Asset | _Read | None:
        """Read and hash ``path`` under its lock, unless another thread just did. ``key`` is
        what a ``stat`` just said of the file, ``None`` when it was not stat'ed."""
        with self._lock(path):
            if key is not None:
                known = self._known(path, key, integrity)
                if known is not None:
                    return known
            real = self._base + path
            if _PROC_FD is None:
                # Where an open file cannot tell its own path, resolve before opening.
                try:
                    real = os.path.realpath(real)
                except (OSError, ValueError):
                    return None
                if _inside(self.root, real) is None:
                    return None
            keep = has_body(path)
            was: _Key | None
            now: _Key | None
            got = self._read_in_c(real, keep, integrity)
            if isinstance(got, int):  # the open failed
                if got in _NO_FILE:
                    self._no_file(path)
                    return None
                got = None  # the Python read warns of what it must, or follows symlinks
            if got is not None:
                was = now = got[0]  # unchanged while it was read
                digest, sri, size, data = got[1:]
                if now != key:
                    # The file read may be newer than the caller's stat, and known.
                    known = self._known(path, now, integrity)
                    if known is not None:
                        return known
            else:
                for attempt in range(_READ_ATTEMPTS):
                    fd = self._open(path, real)
                    if fd is None:
                        self._no_file(path)
                        return None
                    try:
                        try:
                            was = _file_key(fd)
                            if was is None:
                                return None  # not a regular file
                            if attempt == 0 and was != key:
                                # The file opened may be newer than the caller's stat, and known.
                                known = self._known(path, was, integrity)
                                if known is not None:
                                    return known
                            tee = _Tee(fd, was[4], keep=keep)
                            digest, sri, size = self._digest(cast(BinaryIO, tee), integrity)
                            now = _file_key(fd)
                            if now is None:
                                return None
                        finally:
                            os.close(fd)
                    except OSError:
                        return None
                    if now == was:
                        break
                data = b"".join(tee.chunks) if keep else None
            # A file still changing after the last attempt is answered with that read,
            # not remembered, so that the next request looks again.
            assert now is not None  # each attempt returned unless it read a regular file
            stable = now == was
            seq = next(self._seq)
            if data is not None and not _names_nothing(path, data):
                read = _Read(now, seq, digest, sri, size, data, stable)
                if stable:
                    self._reads[path] = read
                return read
            # Served as it is: nothing to rewrite, nothing to keep.
            asset = self._asset(path, now, digest, sri, size, digest)
            if stable:
                self._entries[path] = _Entry(now, seq, asset)
            return asset

    def _no_file(self, path: str) -> None:
        """A read (holding the path's lock) found no file at ``path``."""
        if path not in self._entries and path not in self._reads:
            # A name with no file keeps nothing, not even its lock: memory cannot grow with
            # requests for random names.
            self._locks.pop(path, None)

    def _read_in_c(
        self, real: str, keep: bool, integrity: bool
    ) -> tuple[_Key, str, str | None, int, bytes | None] | int | None:
        """The file at ``real`` read and hashed in one C call, with the interpreter lock let
        go once: its version (unchanged while read), MD5, SRI, size and, with ``keep``, its
        bytes; the errno when it could not be opened. None where C does not read files or
        could not read this one plainly: the Python read then says why, or reads a file that
        changes again until it holds still."""
        digest_files = _digest_files if self._reads_in_c else None
        got = None if digest_files is None else digest_files([real], [keep], integrity)[0]
        return got if got is None or isinstance(got, int) else _from_c(got)

    def _open(self, path: str, real: str) -> int | None:
        """A descriptor for the file at ``real`` (the asset ``path``), if that file is under
        the root; ``None`` if there is none (or it cannot be opened, which is warned of)."""
        try:
            if _open_plain is not None and _PROC_FD is not None:
                # With no symlink on the way the file is the one at that path: no readlink.
                fd = _open_plain(real)
                if fd >= 0:
                    return fd
            # With /proc the open file is checked, so symlinks may be followed.
            fd = os.open(real, _OPEN_FLAGS if _PROC_FD is None else _FOLLOW_FLAGS)
        except (OSError, ValueError) as error:
            if getattr(error, "errno", None) not in _ABSENT:
                self._warn_once(
                    path,
                    "static file %s cannot be read (%s): its URL stays unhashed; fix its "
                    "permissions",
                    real,
                    getattr(error, "strerror", None) or error,
                )
            return None
        # What was opened, symlinks resolved, must be an asset path under root: checked on
        # the open file, one readlink instead of an lstat per segment.
        if _PROC_FD is not None and not self._opened_inside(fd, path):
            os.close(fd)
            return None
        return fd

    def _opened_inside(self, fd: int, path: str) -> bool:
        try:
            target = os.readlink(f"{_PROC_FD}{fd}")
        except OSError:
            target = os.path.realpath(self._base + path)  # /proc not mounted after all
        # Mostly the very path asked for (no symlink on the way), which lookup has accepted.
        return target == self._base + path or _inside(self.root, target) is not None

    def _rewrite(self, path: str, read: _Read, integrity: bool, seen: Seen | None) -> Asset:
        """The asset served for a file read with its bytes: rewritten, if it names assets.
        No lock is held here: the lookups of what it names may read other files."""
        assert read.data is not None
        local = self._local
        loops = local.loops
        body, deps = self._served(path, read.data, integrity, seen)
        if body is None:
            digest, sri, size = read.digest, read.integrity, read.size
            if integrity and sri is None:
                sri = _hash(read.data, True)[1]
        else:
            digest, sri, size = _hash(body, integrity)
        asset = self._asset(path, read.key, digest, sri, size, read.digest)
        if read.stable and local.loops == loops:
            # Kept to make the body again, without reading the file, when a dep changes.
            kept = read if body is not None or deps else None
            return self._store(path, _Entry(read.key, read.seq, asset, body, deps, kept))
        return asset

    def _asset(
        self, path: str, key: _Key, digest: str, sri: str | None, size: int, raw: str
    ) -> Asset:
        """The asset of the file version ``key`` (whose own MD5 is ``raw``), serving bytes of
        MD5 ``digest``."""
        return Asset(
            path,
            with_hash(path, digest[: self.hash_length]),
            digest,
            size,
            key[2] if self._clocked else 0,
            sri,
            digest != raw,
            key,
        )

    def _store(self, path: str, entry: _Entry) -> Asset:
        """Remember ``entry``; the asset to answer with (one object per version)."""
        with self._lock(path):
            current = self._entries.get(path)
            if current is not None and current.seq == entry.seq and current.asset == entry.asset:
                return current.asset  # another thread made the same version first
            # A slow rewrite must not put back a version older than one stored meanwhile.
            if current is None or current.seq <= entry.seq:
                self._entries[path] = entry
            pending = self._reads.get(path)
            if pending is not None and pending.seq <= entry.seq:
                del self._reads[path]
            return entry.asset

    def _forget(self, path: str, entry: _Entry) -> None:
        """Drop the entry of a file that is gone, unless a newer one was stored meanwhile."""
        with self._lock(path):
            if self._entries.get(path) is entry:
                del self._entries[path]

    def _served(
        self, path: str, raw: bytes, integrity: bool, seen: Seen | None
    ) -> tuple[bytes | None, tuple[tuple[str, str], ...]]:
        from hashstatic.stylesheets import served_body, stylesheet_references

        def references(p: str) -> list[str]:
            if p == path:
                return stylesheet_references(raw, path, self.prefix)
            return self._references(p)

        def lookup(p: str) -> Asset | None:
            if seen is None:
                return self.lookup(p)
            if p not in seen:  # asked as the response asks, so that its answers stay alike
                seen[p] = self.lookup(p, integrity=integrity, seen=seen)
            return seen[p]

        body, used = served_body(raw, path, self.prefix, lookup, references)
        return body, tuple(sorted({(a.path, a.digest) for a in used}))

    def _references(self, path: str) -> list[str]:
        """The paths a stylesheet names, read from the file as it is (for cycle detection)."""
        from hashstatic.stylesheets import stylesheet_references

        try:
            with open(self._base + path, "rb") as f:
                css = f.read()
        except (OSError, ValueError):
            return []
        return stylesheet_references(css, path, self.prefix)

    def _digest(self, stream: BinaryIO, integrity: bool) -> tuple[str, str | None, int]:
        """MD5 hex, SRI string (when asked) and length of the bytes read from ``stream``.

        The one place file contents are read, so a subclass can wrap it (the tests count and
        disturb reads this way).
        """
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha384() if integrity else None
        if isinstance(stream, _Tee):  # the index's own: read to the end in one call, not per read
            size = stream.hash_into(md5, sha)
        else:
            size = 0
            while chunk := stream.read(_CHUNK):
                md5.update(chunk)
                if sha is not None:
                    sha.update(chunk)
                size += len(chunk)
        return md5.hexdigest(), None if sha is None else _sri(sha.digest()), size


def _hash(data: bytes, integrity: bool) -> tuple[str, str | None, int]:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return md5, _sri(hashlib.sha384(data).digest()) if integrity else None, len(data)


def _sri(sha384: bytes) -> str:
    """The Subresource Integrity string of a SHA-384 digest."""
    return "sha384-" + binascii.b2a_base64(sha384, newline=False).decode("ascii")


def _names_nothing(path: str, data: bytes) -> bool:
    """Whether the stylesheet or script ``data`` certainly names no asset, so that it is served
    as it is and need not be kept (most scripts; stylesheets without ``url(``).

    A cheap test that may say False wrongly, never True wrongly: what it looks for is what
    stylesheets.served_body needs to rewrite anything (a source map comment, and the
    ``url(``, ``@import`` and ``image-set(`` that css.url_spans finds, in any case).
    """
    if _find(data, b"sourceMappingURL=") >= 0:
        return False
    if not is_stylesheet(path) or (b"(" not in data and b"@" not in data):
        return True
    low = data.lower()
    return b"url(" not in low and b"@import" not in low and b"image-set(" not in low


class _Tee:
    """A file opened by the index, read as :meth:`DiskIndex._digest` reads it: ``os.read`` on
    the descriptor, with no file object around it; keeps what is read when the bytes are needed
    after hashing (stylesheets, scripts)."""

    __slots__ = ("chunks", "ended", "fd", "keep", "left")

    def __init__(self, fd: int, size: int, *, keep: bool) -> None:
        self.fd = fd
        self.left = size  # bytes still to come, as the fstat before reading counted them
        self.ended = False
        self.keep = keep
        self.chunks: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        if self.ended:
            return b""
        # One byte more than fstat counted: a shorter read that ends there is the end of the
        # file, so a small file takes one read, not a second one that returns nothing. (A file
        # that grew meanwhile is read on; one that changed at all fails the fstat after.)
        want = size if self.left < 0 else min(size, self.left + 1)
        data = os.read(self.fd, want)
        self.left -= len(data)
        self.ended = self.left == 0 and len(data) < want
        if self.keep:
            self.chunks.append(data)
        return data

    def hash_into(self, md5: Any, sha: Any) -> int:
        """Read to the end as :meth:`read` reads (the same sizes), updating ``md5`` and
        ``sha`` (unless ``None``) with each chunk; the number of bytes read."""
        fd, left, keep, chunks = self.fd, self.left, self.keep, self.chunks
        size = 0
        while not self.ended:
            want = _CHUNK if left < 0 else min(_CHUNK, left + 1)
            data = os.read(fd, want)
            md5.update(data)
            if sha is not None:
                sha.update(data)
            if keep:
                chunks.append(data)
            size += len(data)
            left -= len(data)
            self.ended = not data or (left == 0 and len(data) < want)
        self.left = left
        return size


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

    def lookup(
        self, path: str, *, integrity: bool = False, seen: Seen | None = None
    ) -> Asset | None:
        # The manifest carries integrity for every file it was built with; nothing to compute.
        return self._files.get(path)

    def peek(self, path: str) -> Asset | None:
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
            if not entry.is_symlink():
                # What the directory listing says (no stat on most file systems); a
                # directory walked here is inside root, being below one that is.
                if entry.is_file(follow_symlinks=False):
                    found.append(relative)
                elif entry.is_dir(follow_symlinks=False):
                    _walk(root, entry.path, relative + "/", (*walking, entry.path), found)
                continue
            real = os.path.realpath(entry.path)
            st = os.stat(real)
        except (OSError, ValueError):
            continue
        if _inside(root, real) is None:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append(relative)
        elif stat.S_ISDIR(st.st_mode) and real not in walking:
            _walk(root, real, relative + "/", (*walking, real), found)
