"""A watching index (inotify) answers with no ``stat`` and still notices every change at once.

The oracle is a fresh index that does not watch: after every change, with no pause, the
watching index must answer exactly as a fresh look at the disk does.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashstatic import watch
from hashstatic.cache import Asset, DiskIndex
from tests.conftest import write_files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

# What the tree's answers are compared on: everything a URL or a server takes from them.
Answer = tuple[str, str, int, int, bool] | None

PATHS = [
    "css/site.css",
    "css/base.css",
    "img/x.png",
    "img/deep/y.svg",
    "fonts/f.woff2",
    "js/app.js",
    "js/app.js.map",
    "new/made.css",
    "missing.js",
]


def answer(asset: Asset | None) -> Answer:
    if asset is None:
        return None
    return (asset.hashed, asset.digest, asset.size, asset.mtime_ns, asset.rewritten)


def fresh(root: Path, path: str) -> Answer:
    return answer(DiskIndex(root).lookup(path))


def make_tree(root: Path) -> None:
    files = {
        "css/site.css": b'@import "base.css";\nbody { background: url(../img/x.png) }\n',
        "css/base.css": b"@font-face { src: url(/static/fonts/f.woff2) }\n",
        "img/x.png": b"\x89PNG one",
        "img/deep/y.svg": b"<svg/>",
        "fonts/f.woff2": b"wOF2 one",
        "js/app.js": b"run();\n//# sourceMappingURL=app.js.map\n",
        "js/app.js.map": b'{"version":3}',
    }
    write_files(root, files)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tree(tmp_path)
    return tmp_path


@pytest.fixture
def stats(stat_calls: list[str]) -> list[str]:
    """Every ``os.stat`` made from now on (the calls a watching index exists to avoid)."""
    return stat_calls


def test_the_tests_run_where_watching_works(root: Path) -> None:
    assert DiskIndex(root, watch=True).watching
    assert not DiskIndex(root).watching  # off unless asked: builds and manifests hash once


def test_answers_known_unchanged_need_no_stat(
    root: Path, stats: list[str], file_access: list[Any]
) -> None:
    index = DiskIndex(root, watch=True, prefix="/static/")
    first = {path: answer(index.lookup(path)) for path in PATHS}
    assert first == {path: fresh(root, path) for path in PATHS}
    assert first["css/site.css"] is not None and first["css/site.css"][4]  # rewritten
    assert first["missing.js"] is None
    stats.clear()
    file_access.clear()
    again = {path: answer(index.lookup(path)) for path in PATHS}
    assert again == first
    # Nothing is remembered for a path with no file: those are looked for each time (a stat,
    # or an open where the directory is missing too and so cannot be watched), once each.
    looked = stats + [os.fsdecode(p) for event, p in file_access if event == "open"]
    assert sorted(looked) == sorted(str(root / p) for p, a in first.items() if a is None)


def _same_size_same_mtime(root: Path) -> None:
    target = root / "img/x.png"
    before = target.stat()
    target.write_bytes(b"\x89PNG two")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))


def _rename_over(root: Path) -> None:
    (root / "fonts/f.woff2.tmp").write_bytes(b"wOF2 two, longer")
    os.replace(root / "fonts/f.woff2.tmp", root / "fonts/f.woff2")


def _touch(root: Path) -> None:
    os.utime(root / "js/app.js", ns=(10**18, 10**18))


def _delete(root: Path) -> None:
    (root / "css/base.css").unlink()


def _create_in_missing_directory(root: Path) -> None:
    (root / "new").mkdir(exist_ok=True)
    (root / "new/made.css").write_bytes(b"a { color: red }")


def _create_missing_file(root: Path) -> None:
    (root / "missing.js").write_bytes(b"here now")


def clear(path: Path) -> None:
    """Remove whatever is at ``path``: a symlink, a file or a directory tree."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _swap_directory(root: Path) -> None:
    clear(root / "img-old")
    os.rename(root / "img", root / "img-old")
    (root / "img/deep").mkdir(parents=True)
    (root / "img/x.png").write_bytes(b"\x89PNG other")
    (root / "img/deep/y.svg").write_bytes(b"<svg id='2'/>")


def _directory_becomes_symlink(root: Path) -> None:
    clear(root / "img2")
    (root / "img2/deep").mkdir(parents=True)
    (root / "img2/x.png").write_bytes(b"\x89PNG linked")
    (root / "img2/deep/y.svg").write_bytes(b"<svg id='3'/>")
    clear(root / "img")
    os.symlink("img2", root / "img")


def _deep_dependency(root: Path) -> None:
    (root / "fonts/f.woff2").write_bytes(b"wOF2 changed in place")


def _map_changes(root: Path) -> None:
    with open(root / "js/app.js.map", "ab") as f:
        f.write(b" ")


def _remove_the_tree(root: Path) -> None:
    for child in root.iterdir():
        clear(child)
    make_tree(root)
    (root / "img/x.png").write_bytes(b"\x89PNG remade")


MUTATIONS: dict[str, Callable[[Path], None]] = {
    "in place, same size and mtime": _same_size_same_mtime,
    "rename over": _rename_over,
    "touch": _touch,
    "delete": _delete,
    "create in a missing directory": _create_in_missing_directory,
    "create a missing file": _create_missing_file,
    "swap a directory": _swap_directory,
    "a directory becomes a symlink": _directory_becomes_symlink,
    "a dependency's dependency": _deep_dependency,
    "a source map": _map_changes,
    "the tree removed and made again": _remove_the_tree,
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_change_is_seen_by_the_next_lookup(root: Path, mutate: Callable[[Path], None]) -> None:
    index = DiskIndex(root, watch=True)
    before = {path: answer(index.lookup(path)) for path in PATHS}
    assert {path: answer(index.lookup(path)) for path in PATHS} == before  # trusted now
    mutate(root)
    after = {path: answer(index.lookup(path)) for path in PATHS}
    expected = {path: fresh(root, path) for path in PATHS}
    assert after == expected
    assert after != before  # the mutation changed something visible


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_state_is_one_object_until_a_change_is_reported(
    root: Path, mutate: Callable[[Path], None]
) -> None:
    """Remembered tags compare their state with a response's: while nothing changed it is the
    same object (an identity test), and any reported change gives a state unequal to it."""
    index = DiskIndex(root, watch=True)
    for path in PATHS:
        index.lookup(path)  # every directory on the way watched from now on
    states = [index.vouched({}).state() for _ in range(3)]  # type: ignore[union-attr]
    assert states[0] is states[1] is states[2] is not None
    mutate(root)
    after = index.vouched({}).state()  # type: ignore[union-attr]
    assert after != states[0]
    assert index.vouched({}).state() is after  # type: ignore[union-attr]


def test_symlinked_paths_are_looked_at_every_time(root: Path, stats: list[str]) -> None:
    _directory_becomes_symlink(root)
    index = DiskIndex(root, watch=True)
    assert index.lookup("img/x.png") is not None
    stats.clear()
    got = answer(index.lookup("img/x.png"))
    assert stats == [str(root / "img/x.png")]
    assert got == fresh(root, "img/x.png")
    (root / "img2/x.png").write_bytes(b"\x89PNG changed behind the link")
    assert answer(index.lookup("img/x.png")) == fresh(root, "img/x.png")


def test_random_changes_against_a_fresh_look(
    root: Path, stats: list[str], figures: Callable[[str], None]
) -> None:
    """Random changes, each followed at once by lookups of every path: the watching index
    answers as a fresh index does, and most answers cost no stat."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    index = DiskIndex(root, watch=True)
    kinds = list(MUTATIONS.items())
    lookups = stat_free = 0
    counts: dict[str, int] = {}
    for _ in range(150):
        name, mutate = rng.choice(kinds)
        if rng.random() < 0.3:
            name, mutate = "restore", make_tree
        try:
            mutate(root)
        except FileNotFoundError:
            name = "skipped: " + name  # not possible in this state
        counts[name] = counts.get(name, 0) + 1
        for look in range(3):  # the first look after a change; then trusted answers
            for path in rng.sample(PATHS, len(PATHS)):
                before = len(stats)
                got = answer(index.lookup(path))
                free = len(stats) == before
                stat_free += free
                lookups += 1
                assert got == fresh(root, path), (seed, name, path)
                del stats[before:]  # the oracle's own stats
                if look and got is not None and not path.endswith(".css"):
                    # Found, and nothing changed since: known, unless a symlink is on the way.
                    real = os.path.realpath(root / path) == str(root / path)
                    assert free == real, (seed, name, path)
    figures(
        f"seed {seed}: 150 changes {counts}, {lookups} lookups, {stat_free} answered with no "
        "stat, 0 differences from a fresh index"
    )


def test_a_lost_queue_forgets_everything(root: Path) -> None:
    """More events than the kernel queues (fs.inotify.max_queued_events) between two
    lookups: the queue overflows and every remembered answer is dropped."""
    index = DiskIndex(root, watch=True)
    before = answer(index.lookup("img/x.png"))
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"max_queued_events is {limit}: too many writes to overflow it")
    a, b = root / "js/app.js", root / "img/deep/y.svg"
    with open(a, "ab", buffering=0) as fa, open(b, "ab", buffering=0) as fb:
        for _ in range(limit // 2 + 10):  # alternate, so the kernel cannot merge events
            fa.write(b" ")
            fb.write(b" ")
    os.utime(root / "img/x.png", ns=(1, 1))  # after the overflow: its event is lost too
    assert answer(index.lookup("img/x.png")) == fresh(root, "img/x.png") != before


def test_names_of_nothing_leave_no_trace(
    root: Path, stats: list[str], file_access: list[Any]
) -> None:
    """A client asking for random names: nothing is remembered for a path with no file, so
    memory cannot grow with them; each such lookup is one stat, or one open where the
    directory is missing too."""
    index = DiskIndex(root, watch=True)
    trust = index._trust
    assert trust is not None
    watcher = trust._watcher
    assert watcher is not None
    index.lookup("img/x.png")
    subs = len(watcher.subs)
    for i in range(500):
        stats.clear()
        file_access.clear()
        assert index.lookup(f"nothing-{i}.css") is None
        assert index.lookup(f"img/nothing/{i}.png") is None
        assert len(stats) + len(file_access) == 2
    assert list(trust._answers) == ["img/x.png"]
    assert len(watcher.subs) == subs


def test_answers_kept_are_bounded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "_MAX_ANSWERS", 50)
    for i in range(200):
        (root / f"many/{i}.txt").parent.mkdir(exist_ok=True)
        (root / f"many/{i}.txt").write_bytes(b"%d" % i)
    index = DiskIndex(root, watch=True)
    trust = index._trust
    assert trust is not None
    for i in range(200):
        assert answer(index.lookup(f"many/{i}.txt")) == fresh(root, f"many/{i}.txt")
        assert len(trust._answers) <= 50
    assert answer(index.lookup("img/x.png")) == fresh(root, "img/x.png")


def test_a_forked_child_watches_for_itself(root: Path) -> None:
    """The child shares the parent's inotify queue: it must start its own, and the parent
    must still see the child's changes."""
    index = DiskIndex(root, watch=True)
    index.lookup("img/x.png")
    index.lookup("css/site.css")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            (root / "img/x.png").write_bytes(b"\x89PNG from the child")
            ok = answer(index.lookup("css/site.css")) == fresh(root, "css/site.css")
            ok = ok and answer(index.lookup("img/x.png")) == fresh(root, "img/x.png")
            (root / "img/x.png").write_bytes(b"\x89PNG from the child, twice")
            ok = ok and answer(index.lookup("img/x.png")) == fresh(root, "img/x.png")
            os.write(writer, b"ok" if ok else b"stale")
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    try:
        _, status = os.waitpid(pid, 0)
        said = os.read(reader, 16)
    finally:
        os.close(reader)
    assert os.waitstatus_to_exitcode(status) == 0
    assert said == b"ok"
    assert answer(index.lookup("img/x.png")) == fresh(root, "img/x.png")
    assert answer(index.lookup("css/site.css")) == fresh(root, "css/site.css")


def test_file_systems_without_a_complete_account_are_not_watched() -> None:
    # procfs and sysfs change without inotify events; like network file systems, they are
    # not in the list of local file systems, so an index there stats every time.
    assert not watch.local_watching("/proc/sys/kernel")
    assert not DiskIndex("/proc/sys/kernel", watch=True).watching


@pytest.fixture
def no_inotify(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(watch, "_watcher", None)
    monkeypatch.setattr(watch, "_unavailable", True)
    yield


def test_without_inotify_lookups_stat(root: Path, no_inotify: None, stats: list[str]) -> None:
    index = DiskIndex(root, watch=True)
    assert not index.watching
    assert index.lookup("img/x.png") is not None
    stats.clear()
    index.lookup("img/x.png")
    assert stats == [str(root / "img/x.png")]


def test_a_response_sees_the_files_as_they_were_when_it_began(root: Path) -> None:
    """The kernel's reports are read by a response's first lookup (an empty ``seen``); its
    later lookups answer from what was known then, and the next response sees the change."""
    index = DiskIndex(root, watch=True)
    before = index.lookup("img/x.png")
    seen: dict[str, Any] = {}
    assert index.lookup("js/app.js", seen=seen) is not None
    (root / "img/x.png").write_bytes(b"\x89PNG changed during a response")
    assert index.lookup("img/x.png", seen=seen) is before
    after = index.lookup("img/x.png", seen={})
    assert answer(after) == fresh(root, "img/x.png") != answer(before)


@pytest.mark.parametrize("accelerated", [True, False], ids=["ioctl", "poll"])
def test_changes_are_seen_with_and_without_the_c_extension(
    root: Path, monkeypatch: pytest.MonkeyPatch, accelerated: bool
) -> None:
    """Whether events are waiting is asked with ``_speedups.pending`` (FIONREAD, the lock
    held) or, without the C extension, with ``poll``: both see a change."""
    if not accelerated:
        monkeypatch.setattr(watch, "_pending", None)
    elif watch._pending is None:
        pytest.skip("hashstatic._speedups is not built")
    index = DiskIndex(root, watch=True)
    before = answer(index.lookup("js/app.js"))
    (root / "js/app.js").write_bytes(b"changed();\n")
    assert answer(index.lookup("js/app.js")) == fresh(root, "js/app.js") != before


def test_pending_counts_the_bytes_waiting() -> None:
    if watch._pending is None:
        pytest.skip("hashstatic._speedups is not built")
    reader, writer = os.pipe()
    try:
        assert watch._pending(reader) == 0
        os.write(writer, b"12345")
        assert watch._pending(reader) == 5
    finally:
        os.close(reader)
        os.close(writer)
    with pytest.raises(OSError):
        watch._pending(reader)  # closed now
