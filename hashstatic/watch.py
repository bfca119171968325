"""Change notices from the kernel, so that a development index need not ``stat`` every file on
every response to notice that it changed.

Linux's inotify reports each change under a watched directory as it happens: a write, a
change of metadata (``touch``, ``chmod``, a link count), a file created, deleted or renamed in
or out. The event is queued inside the system call that made the change, so once a lookup has
read the queue, every change finished before it began is known. A :class:`Trust` remembers
answers of :class:`~hashstatic.cache.DiskIndex` and gives them again, with no ``stat``, until
an event names a directory entry the answer depends on: each directory on the way from the
root to the file, the file itself, and for a stylesheet whatever the files it names depend
on. It does this only where the kernel's account is complete:

* the root is on a local file system (ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, F2FS, ZFS, and
  a few more). Network and shared-folder file systems (NFS, SMB, 9p, virtiofs, FUSE,
  VirtualBox shared folders) do not report changes made on the other side: there every lookup
  ``stat``-s, as without a watcher;
* the path holds no symlink and crosses no mount point; such paths are ``stat``-ed every time;
* watches can be added: past the kernel's limit (``fs.inotify.max_user_watches``) paths are
  ``stat``-ed, and a warning says which setting to raise.

What inotify cannot see, so neither can a watcher: writes through a shared memory map
(``mmap``), which report nothing until the file is closed, and file systems mounted over a
directory inside the root after it was watched. Deploy by rename, or pass ``watch=False``.

One inotify instance serves every index of a process; a forked child starts its own (the
parent's queue is not shared). Memory is bounded: past :data:`_MAX_ANSWERS` answers every
answer is dropped and the next lookups ``stat`` again.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hashstatic.speedups import speedup

if TYPE_CHECKING:
    from hashstatic.cache import Asset

log = logging.getLogger(__name__)

# <sys/inotify.h>
_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_UNMOUNT = 0x2000
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# What a directory watch reports: any change to an entry in it, and to the directory itself.
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
    | _IN_DONT_FOLLOW
)
# Events about the watched directory itself: every answer that goes through it is dropped.
_SELF = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT | _IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name, NUL-padded

# Local file systems whose every change passes through this kernel (statfs f_type, from
# <linux/magic.h>): ext2/3/4, XFS, Btrfs, tmpfs, ramfs, overlayfs, F2FS, ZFS, ReiserFS, JFS,
# bcachefs, NILFS.
_LOCAL = frozenset(
    {
        0xEF53,
        0x58465342,
        0x9123683E,
        0x01021994,
        0x858458F6,
        0x794C7630,
        0xF2F52010,
        0x2FC12FC1,
        0x52654973,
        0x3153464A,
        0xCA451A4E,
        0x3434,
    }
)
# Answers remembered per trust before all are dropped (a client asking for random names).
_MAX_ANSWERS = 65536
_READ_SIZE = 64 * 1024
_MAX_UNWATCHED = 4096  # paths remembered as not watchable before they are forgotten


class _Watcher:
    """The process's inotify instance: which directories are watched, and which remembered
    answers each directory entry (watch descriptor, name) vouches for."""

    def __init__(self, libc: Any) -> None:
        self._libc = libc
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        # Held while events are read and applied, and while answers are checked or stored.
        self.lock = threading.Lock()
        # (wd, name) -> the (trust, path) answers that depend on that directory entry.
        self.subs: dict[tuple[int, str], set[tuple[Trust, str]]] = {}
        self.names: dict[int, set[str]] = {}  # wd -> the names registered under it
        self.trusts: weakref.WeakSet[Trust] = weakref.WeakSet()
        self.serial = 0  # events applied so far
        # (self, serial) as Trust.state last gave it: one object while the serial stands, so
        # that the rewriter's comparisons of many remembered tags' states are identity tests.
        self.token: tuple[object, int] = (self, 0)

    def add(self, directory: str) -> int:
        """The watch descriptor of ``directory`` (watched from now on); -1 with ``errno``."""
        wd: int = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), _MASK)
        return wd

    def drain(self) -> None:
        """Apply every queued event: forget the answers they concern. Call with the lock.

        Asked on every response, so asked without releasing the interpreter lock where the C
        extension is built: under a threaded server a thread that lets go of it mid-request
        may wait a whole switch interval (5 ms) to have it back."""
        while _pending(self.fd) if _pending is not None else self._poll.poll(0):
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return
            self._apply(data)

    def _apply(self, data: bytes) -> None:
        offset, end = 0, len(data)
        while offset < end:
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            # The watch of a directory is removed some time after the directory went: that
            # was reported then (to its parent, and as DELETE_SELF). Nothing changed now.
            if not mask & _IN_IGNORED:
                self.serial += 1
            if mask & _IN_Q_OVERFLOW:
                self.forget_all()  # events were lost: anything may have changed
            elif mask & _SELF:
                for name in self.names.pop(wd, ()):
                    self._drop((wd, name))
            else:
                self._drop((wd, os.fsdecode(data[offset : offset + length].rstrip(b"\0"))))
            offset += length

    def _drop(self, pair: tuple[int, str]) -> None:
        for trust, path in self.subs.pop(pair, ()):
            trust.drop(path)

    def register(self, pair: tuple[int, str], trust: Trust, path: str) -> None:
        """Let an event on ``pair`` drop the answer of ``trust`` for ``path``. With the lock."""
        self.subs.setdefault(pair, set()).add((trust, path))
        self.names.setdefault(pair[0], set()).add(pair[1])

    def forget_all(self) -> None:
        self.subs.clear()
        self.names.clear()
        for trust in list(self.trusts):
            trust.clear()


# ioctl(FIONREAD) holding the GIL, or None (then select.poll).
_pending: Callable[[int], int] | None = speedup("pending")
_libc: Any = None
_watcher: _Watcher | None = None
_watcher_lock = threading.Lock()
_unavailable = False


def _current() -> _Watcher | None:
    """The process's watcher, made on first use; ``None`` where inotify cannot be had."""
    global _watcher, _unavailable, _libc
    if _watcher is not None or _unavailable:
        return _watcher
    with _watcher_lock:
        if _watcher is None and not _unavailable:
            try:
                if _libc is None:
                    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
                _watcher = _Watcher(_libc)
            except (OSError, AttributeError) as error:
                _unavailable = True
                log.warning(
                    "inotify is not available (%s): changed static files are noticed by a "
                    "stat per file per response instead",
                    error,
                )
    return _watcher


def _after_fork() -> None:
    """A child shares its parent's inotify queue: events one reads the other never sees."""
    global _watcher
    if _watcher is not None:
        with contextlib.suppress(OSError):
            os.close(_watcher.fd)
    _watcher = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _fs_type(path: str) -> int | None:
    """``statfs``'s f_type for ``path`` (a native long at the start of struct statfs)."""
    assert _libc is not None
    buffer = ctypes.create_string_buffer(256)
    if _libc.statfs(os.fsencode(path), buffer) != 0:
        return None
    return ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF


def local_watching(root: str) -> bool:
    """Whether changes under ``root`` can be learnt from inotify (Linux, a local disk)."""
    if not sys.platform.startswith("linux") or _current() is None:
        return False
    return _fs_type(root) in _LOCAL


class Trust:
    """The answers of one index that need no ``stat`` until the kernel reports a change.

    Protocol. The caller looks at a file (``stat``, maybe reads it) and finds an asset; then
    :meth:`arm` watches every directory on the way to it; the caller checks once more that the
    file is the version it found and hands the asset to :meth:`settle`, which keeps it unless
    any event at all was reported since the arm. A change made after the arm is reported, and
    one made before it is seen by the check. Nothing is kept for a path with no file: a client
    asking for random names leaves no trace.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.dev = os.stat(root).st_dev  # files elsewhere (a mount) are not trusted
        self._watcher = _current()
        self._answers: dict[str, Asset] = {}
        # path -> the directory entries its answer depends on (a stylesheet: its deps' too).
        self._pairs: dict[str, tuple[tuple[int, str], ...]] = {}
        self._full = False  # a watch could not be added: warned once
        # Paths through a symlink or a mount point -> the watcher's serial when found so.
        self._unwatched: dict[str, int] = {}
        if self._watcher is not None:
            with self._watcher.lock:
                self._watcher.trusts.add(self)

    def _fresh(self) -> _Watcher | None:
        """The watcher, after a fork the child's own (everything known is dropped)."""
        watcher = _watcher
        if watcher is not self._watcher:
            watcher = self._watcher = _current()
            self.clear()
            if watcher is not None:
                with watcher.lock:
                    watcher.trusts.add(self)
        return watcher

    def get(self, path: str) -> Asset | None:
        """The trusted answer for ``path``, or ``None`` when the caller must look."""
        watcher = self._watcher if self._watcher is _watcher else self._fresh()
        if watcher is None:
            return None
        with watcher.lock:
            watcher.drain()
            return self._answers.get(path)

    def state(self) -> tuple[object, int] | None:
        """After reading the reports: a value equal to one taken earlier only if the kernel
        reported no change at all in between (to any index of the process); ``None`` when
        there is no watcher. Read with the lock, so never between an event's count and the
        answers it drops."""
        watcher = self._watcher if self._watcher is _watcher else self._fresh()
        if watcher is None:
            return None
        with watcher.lock:
            watcher.drain()
            token = watcher.token  # the watcher too: a forked child counts anew
            if token[1] != watcher.serial:
                token = watcher.token = (watcher, watcher.serial)
            return token

    def known(self, path: str) -> Asset | None:
        """:meth:`get` without reading the events that came since the last: for the lookups
        of one response after its first, which see the files as they were when it began."""
        return self._answers.get(path) if self._watcher is _watcher else None

    def arm(self, path: str) -> tuple[tuple[tuple[int, str], ...], int] | None:
        """Watch the directories ``path`` goes through, before the caller looks at the file;
        a token for :meth:`settle`, or ``None`` when the path cannot be watched: a directory
        on the way is missing or a symlink (a watch refuses both), or no watch can be had."""
        watcher = self._fresh()
        if watcher is None:
            return None
        with watcher.lock:
            watcher.drain()
            serial = watcher.serial
        if self._unwatched.get(path) == serial:
            return None  # found unwatchable, and nothing has changed since
        pairs: list[tuple[int, str]] = []
        directory = self.root
        for name in path.split("/"):
            wd = watcher.add(directory)
            if wd < 0:
                code = ctypes.get_errno()
                if code == errno.ENOTDIR:
                    self._unwatchable(path, serial)  # a symlink where a directory was
                else:
                    self._cannot_watch(directory, code)
                return None
            pairs.append((wd, name))
            directory += os.sep + name
        return tuple(pairs), serial

    def unwatchable(self, path: str, token: tuple[tuple[tuple[int, str], ...], int]) -> None:
        """The caller found a symlink or another file system at the end of ``path``."""
        self._unwatchable(path, token[1])

    def _unwatchable(self, path: str, serial: int) -> None:
        """Remember not to try again until something changes: a path through a symlink is
        stat'ed, not watched."""
        if len(self._unwatched) >= _MAX_UNWATCHED:
            self._unwatched.clear()
        self._unwatched[path] = serial

    def settle(
        self,
        path: str,
        token: tuple[tuple[tuple[int, str], ...], int],
        answer: Asset,
        deps: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Trust ``answer``, checked after :meth:`arm` gave ``token``, unless an event was
        reported since. ``deps``: the (path, digest) of each asset a stylesheet answer names;
        each must be trusted with that digest, and its changes drop this answer too."""
        watcher = self._watcher
        if watcher is None or watcher is not _watcher:
            return
        own, serial = token
        with watcher.lock:
            watcher.drain()
            if watcher.serial != serial:
                return  # something changed meanwhile: look again next time
            pairs = set(own)
            for dep, digest in deps:
                known = self._answers.get(dep)
                if known is None or known.digest != digest:
                    return  # not trusted, or trusted as another version
                pairs.update(self._pairs[dep])
            if len(self._answers) >= _MAX_ANSWERS or len(watcher.subs) >= 4 * _MAX_ANSWERS:
                watcher.forget_all()
            for pair in pairs:
                watcher.register(pair, self, path)
            self._pairs[path] = tuple(pairs)
            self._answers[path] = answer

    def drop(self, path: str) -> None:
        """Forget the answer for ``path`` (an event concerned it). Called with the lock."""
        self._answers.pop(path, None)
        self._pairs.pop(path, None)

    def clear(self) -> None:
        """Forget every answer. Called with the lock."""
        self._answers.clear()
        self._pairs.clear()

    def _cannot_watch(self, directory: str, code: int) -> None:
        # A directory removed meanwhile needs no word: the lookup finds nothing there either.
        if self._full or code not in (errno.ENOSPC, errno.ENOMEM):
            return
        self._full = True
        log.warning(
            "inotify cannot watch %s: the limit of watches is reached; raise "
            "fs.inotify.max_user_watches (sysctl). Until then the files there are stat'ed on "
            "every response",
            directory,
        )
