from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hashstatic import manifest as manifest_module
from hashstatic.cache import Asset
from hashstatic.manifest import (
    Manifest,
    ManifestError,
    build_manifest,
    check_prefix,
    dumps_manifest,
    load_manifest,
    write_manifest,
)
from hashstatic.naming import hashed_name
from tests.conftest import looked_up_one_at_a_time

FIX = "regenerate it with `hashstatic manifest --root DIR -o FILE`"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def asset(path: str, data: bytes, hash_length: int = 12) -> Asset:
    return Asset(
        path, hashed_name(path, md5(data)[:hash_length]), md5(data), len(data), 0, sri(data)
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_bytes(b"h1 {}")
    (static / "LICENSE").write_bytes(b"MIT")
    (static / "café.js").write_bytes(b"1")
    (static / ".env").write_bytes(b"SECRET=1")
    return static


# -- building --------------------------------------------------------------------------------


def test_build_manifest_lists_every_asset_with_integrity(root: Path) -> None:
    manifest = build_manifest(root, prefix="/assets/", hash_length=10)
    assert manifest.prefix == "/assets/"
    assert manifest.hash_length == 10
    assert dict(manifest.files) == {
        "LICENSE": asset("LICENSE", b"MIT", 10),
        "café.js": asset("café.js", b"1", 10),
        "css/site.css": asset("css/site.css", b"h1 {}", 10),
    }


@pytest.mark.skipif(sys.platform != "linux", reason="needs byte file names")
def test_build_manifest_leaves_out_names_that_are_not_utf8(root: Path, tmp_path: Path) -> None:
    (root / os.fsdecode(b"\xff.css")).write_bytes(b"")
    manifest = build_manifest(root)
    write_manifest(manifest, tmp_path / "manifest.json")
    assert sorted(load_manifest(tmp_path / "manifest.json").files) == [
        "LICENSE",
        "café.js",
        "css/site.css",
    ]


def test_build_manifest_reports_progress(root: Path) -> None:
    calls: list[tuple[int, int]] = []
    build_manifest(root, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_build_manifest_of_an_empty_root_reports_zero(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    manifest = build_manifest(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert dict(manifest.files) == {}
    assert calls == [(0, 0)]


def test_build_manifest_rejects_a_bad_prefix(root: Path) -> None:
    with pytest.raises(ValueError, match="must start and end with '/'"):
        build_manifest(root, prefix="static")


def test_build_manifest_rejects_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist: create it"):
        build_manifest(tmp_path / "nope")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_build_manifest_names_an_unreadable_file(root: Path) -> None:
    (root / "LICENSE").chmod(0)
    with pytest.raises(ManifestError, match="cannot read .*LICENSE: fix its permissions"):
        build_manifest(root)


def test_build_manifest_names_a_file_that_vanished_during_the_build(root: Path) -> None:
    def remove_license(done: int, total: int) -> None:
        if done == 0:  # after the walk, before the hashing
            (root / "LICENSE").unlink()

    with pytest.raises(ManifestError, match="cannot read .*LICENSE: .*run again"):
        build_manifest(root, progress=remove_license)


# -- many files, on several threads ----------------------------------------------------------


@pytest.fixture
def big_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Enough files for every worker to take several batches, with three workers whatever the
    machine (so one core still runs the threaded path); stylesheets name shared images, so
    threads ask for the same files at once."""
    monkeypatch.setattr(manifest_module, "_WORKERS", 3)
    static = tmp_path / "static"
    for i in range(12):
        write_file(static / "img" / f"i{i}.png", b"png %d" % i * (i + 1))
    for i in range(300):
        if i % 5 == 0:
            data = b".c%d { background: url(../img/i%d.png) }" % (i, i % 12)
            write_file(static / "css" / f"s{i:03d}.css", data)
        elif i % 5 == 1:
            write_file(static / "js" / f"m{i:03d}.js", b"let m = %d;\n" % i)
        else:
            write_file(static / "data" / f"d{i:03d}.bin", os.urandom(i * 37))
    return static


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_build_manifest_on_threads_equals_one_lookup_at_a_time(
    big_root: Path, file_access: list[Any], figures: Callable[[str], None]
) -> None:
    manifest = build_manifest(big_root)
    opens = Counter(p for event, p in file_access if event == "open" and isinstance(p, str))
    expected = looked_up_one_at_a_time(big_root)
    assert dict(manifest.files) == expected
    # Each file was read once, however many threads wanted it (stylesheets want the images).
    real_root = os.path.realpath(big_root)
    files = [os.path.join(real_root, *p.split("/")) for p in expected]
    assert {opens[name] for name in files} == {1}
    figures(f"{len(files)} files hashed on 3 threads, each opened once")


def test_build_manifest_on_threads_reports_every_file_in_order(big_root: Path) -> None:
    calls: list[tuple[int, int, str]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total, threading.current_thread().name))

    manifest = build_manifest(big_root, progress=progress)
    total = len(manifest.files)
    assert total == 312
    assert [(d, t) for d, t, _ in calls] == [(d, total) for d in range(total + 1)]
    assert {name for _, _, name in calls} == {threading.current_thread().name}


def test_build_manifest_on_threads_names_a_file_that_vanished(big_root: Path) -> None:
    last = big_root / "js" / "m296.js"  # in the last batch: a helper thread may hash it

    def remove(done: int, total: int) -> None:
        if done == 0:
            last.unlink()

    with pytest.raises(ManifestError, match="cannot read .*m296.js: .*run again"):
        build_manifest(big_root, progress=remove)


def test_error_in_progress_stops_the_threads_and_is_raised(big_root: Path) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done == 40:
            raise Stop

    before = threading.active_count()
    with pytest.raises(Stop):
        build_manifest(big_root, progress=progress)
    assert threading.active_count() == before


# -- writing ---------------------------------------------------------------------------------


def test_dumps_manifest_is_sorted_indented_json_with_a_newline() -> None:
    a, b = asset("a.css", b"a"), asset("b/é.js", b"b")
    manifest = Manifest("/static/", 12, {"b/é.js": b, "a.css": a})
    entry = '    "{0}": {{\n      "hashed": "{1}",\n      "integrity": "{2}",\n'
    entry += '      "md5": "{3}",\n      "size": 1\n    }}'
    expected = (
        "{\n"
        '  "files": {\n'
        + entry.format(a.path, a.hashed, a.integrity, a.digest)
        + ",\n"
        + entry.format(b.path, b.hashed, b.integrity, b.digest)
        + "\n  },\n"
        '  "hash_length": 12,\n'
        '  "prefix": "/static/",\n'
        '  "version": 1\n'
        "}\n"
    )
    assert dumps_manifest(manifest) == expected


def test_dumps_manifest_does_not_depend_on_insertion_order() -> None:
    a, b = asset("a.css", b"a"), asset("b.css", b"b")
    forward = Manifest("/static/", 12, {"a.css": a, "b.css": b})
    backward = Manifest("/static/", 12, {"b.css": b, "a.css": a})
    assert dumps_manifest(forward) == dumps_manifest(backward)


def test_building_twice_gives_the_same_text(root: Path) -> None:
    assert dumps_manifest(build_manifest(root)) == dumps_manifest(build_manifest(root))


def test_write_then_load_round_trips(root: Path, tmp_path: Path) -> None:
    manifest = build_manifest(root)
    write_manifest(manifest, tmp_path / "manifest.json")
    assert load_manifest(tmp_path / "manifest.json") == manifest
    assert load_manifest(str(tmp_path / "manifest.json")) == manifest


def test_written_manifest_is_utf8(root: Path, tmp_path: Path) -> None:
    write_manifest(build_manifest(root), tmp_path / "manifest.json")
    assert '"café.js"'.encode() in (tmp_path / "manifest.json").read_bytes()


def test_write_manifest_replaces_the_old_file_and_leaves_no_temporary(
    root: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "manifest.json"
    target.parent.mkdir()
    target.write_text("old")
    write_manifest(build_manifest(root), target)
    assert json.loads(target.read_text("utf-8"))["version"] == 1
    assert os.listdir(target.parent) == ["manifest.json"]


def test_failed_write_leaves_no_temporary(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "manifest.json"
    target.mkdir(parents=True)  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_manifest(build_manifest(root), target)
    assert os.listdir(target.parent) == ["manifest.json"]
    assert target.is_dir()


@pytest.mark.skipif(os.name != "posix", reason="posix file modes")
def test_written_manifest_has_the_usual_file_mode(root: Path, tmp_path: Path) -> None:
    # Servers running as another user must be able to read it, as any file the user writes.
    old = os.umask(0o027)
    try:
        write_manifest(build_manifest(root), tmp_path / "manifest.json")
    finally:
        os.umask(old)
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o640


# -- loading ---------------------------------------------------------------------------------


def valid_document() -> dict[str, Any]:
    manifest = Manifest("/static/", 12, {"a.css": asset("a.css", b"a")})
    document: dict[str, Any] = json.loads(dumps_manifest(manifest))
    return document


def with_entry(**changes: Any) -> dict[str, Any]:
    document = valid_document()
    document["files"]["a.css"].update(changes)
    return document


def without(key: str) -> dict[str, Any]:
    document = valid_document()
    del document[key]
    return document


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"\xff\xfe", "is not UTF-8 text", id="not-utf8"),
        pytest.param(b"{", "is not JSON (Expecting", id="not-json"),
        pytest.param([], "is not a JSON object", id="array"),
        pytest.param({**valid_document(), "version": 2}, "has version 2;", id="newer-version"),
        pytest.param(without("version"), "has version None;", id="no-version"),
        pytest.param({**valid_document(), "prefix": "static"}, "bad prefix", id="bad-prefix"),
        pytest.param(without("prefix"), "bad prefix", id="no-prefix"),
        pytest.param({**valid_document(), "hash_length": 7}, "bad hash_length", id="short-hash"),
        pytest.param({**valid_document(), "hash_length": "12"}, "bad hash_length", id="str-hash"),
        pytest.param(without("files"), 'has no "files" object', id="no-files"),
        pytest.param({**valid_document(), "files": []}, 'has no "files" object', id="files-array"),
        pytest.param(
            {**valid_document(), "files": {"a.css": "x"}}, "not a JSON object", id="entry-str"
        ),
        pytest.param(
            {**valid_document(), "files": {"../a.css": valid_document()["files"]["a.css"]}},
            "'../a.css': not a relative asset path",
            id="traversal",
        ),
        pytest.param(
            {**valid_document(), "files": {".env": valid_document()["files"]["a.css"]}},
            "'.env': not a relative asset path",
            id="dotfile",
        ),
        pytest.param(with_entry(md5="ABC"), '"md5" is not 32', id="short-md5"),
        pytest.param(with_entry(md5=md5(b"a").upper()), '"md5" is not 32', id="upper-md5"),
        pytest.param(with_entry(md5=md5(b"b")), '"hashed" does not match', id="md5-mismatch"),
        pytest.param(with_entry(hashed="a.css"), '"hashed" does not match', id="not-hashed"),
        pytest.param(with_entry(size=-1), '"size" is not a byte count', id="negative-size"),
        pytest.param(with_entry(size=True), '"size" is not a byte count', id="bool-size"),
        pytest.param(with_entry(size="1"), '"size" is not a byte count', id="str-size"),
        pytest.param(with_entry(integrity="sha256-AAAA"), '"integrity" is not', id="sha256"),
        pytest.param(with_entry(integrity="sha384-!!"), '"integrity" is not', id="bad-base64"),
        pytest.param(
            with_entry(integrity="sha384-" + base64.b64encode(b"short").decode()),
            '"integrity" is not',
            id="short-digest",
        ),
    ],
)
def test_bad_manifest_names_the_file_and_the_problem(
    tmp_path: Path, content: Any, problem: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    message = str(raised.value)
    assert message.startswith(f"manifest '{path}' ")
    assert problem in message
    assert message.endswith(FIX)


def test_missing_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as raised:
        load_manifest(tmp_path / "nope.json")
    assert str(raised.value) == f"manifest '{tmp_path / 'nope.json'}' does not exist: {FIX}"


def test_unreadable_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot be read"):
        load_manifest(tmp_path)  # a directory


def test_manifest_error_is_a_value_error() -> None:
    assert issubclass(ManifestError, ValueError)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(with_entry(integrity=None), id="null"),
        pytest.param(valid_document(), id="present"),
    ],
)
def test_loaded_integrity_may_be_null_or_present(tmp_path: Path, document: dict[str, Any]) -> None:
    expected = document["files"]["a.css"]["integrity"]
    (tmp_path / "m.json").write_text(json.dumps(document))
    loaded = load_manifest(tmp_path / "m.json").files["a.css"]
    assert loaded.integrity == expected
    assert loaded.mtime_ns == 0


def test_missing_integrity_loads_as_none(tmp_path: Path) -> None:
    document = valid_document()
    del document["files"]["a.css"]["integrity"]
    (tmp_path / "m.json").write_text(json.dumps(document))
    assert load_manifest(tmp_path / "m.json").files["a.css"].integrity is None


# -- prefixes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("/static/", id="usual"),
        pytest.param("/", id="site-root"),
        pytest.param("/a/b/", id="nested"),
        pytest.param("/%7Euser/", id="percent-encoded"),
        pytest.param("/..static/", id="dots-inside-a-segment"),
    ],
)
def test_good_prefix_is_returned(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        pytest.param("", "must start and end with '/'", id="empty"),
        pytest.param("static/", "must start and end with '/'", id="no-leading-slash"),
        pytest.param("/static", "must start and end with '/'", id="no-trailing-slash"),
        pytest.param("//", "empty segment", id="double-slash"),
        pytest.param("/a//b/", "empty segment", id="empty-segment"),
        pytest.param("/../", "'.' or '..' segment", id="dotdot"),
        pytest.param("/a/./", "'.' or '..' segment", id="dot"),
        pytest.param("/a b/", "whitespace or a control character", id="space"),
        pytest.param("/a\t/", "whitespace or a control character", id="tab"),
        pytest.param("/a\x7f/", "whitespace or a control character", id="delete"),
        pytest.param("/a?x/", "'?', '#' or '\\'", id="query"),
        pytest.param("/a#/", "'?', '#' or '\\'", id="fragment"),
        pytest.param("/a\\b/", "'?', '#' or '\\'", id="backslash"),
    ],
)
def test_bad_prefix_explains_the_fix(prefix: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        check_prefix(prefix)
    message = str(raised.value)
    assert message.startswith(f"prefix {prefix!r} ")
    assert problem in message
    assert message.endswith("write the URL path it is served at, e.g. '/static/'")


def test_rewritten_entries_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_bytes(b"a{background:url(i.png)}")
    (tmp_path / "i.png").write_bytes(b"png")
    (tmp_path / "plain.css").write_bytes(b"a{}")
    manifest = build_manifest(tmp_path)
    assert manifest.files["a.css"].rewritten and not manifest.files["plain.css"].rewritten
    text = dumps_manifest(manifest)
    assert text.count('"rewritten": true') == 1
    write_manifest(manifest, tmp_path / "m.json")
    assert load_manifest(tmp_path / "m.json").files == manifest.files
