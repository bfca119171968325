"""``hashstatic build``: hashed copies, manifest, compression, atomic writes, retention."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from webob import Request

import hashstatic.build as build_module
from hashstatic import HashStatic
from hashstatic.build import LOG, build, raw_manifest
from hashstatic.cli import main
from hashstatic.manifest import load_manifest
from hashstatic.naming import split_hash

FILES = {
    "css/site.css": b"body { background: url(../img/bg.png); }\n",
    "img/bg.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "js/app.js": b"console.log('hello');\n" * 100,
    "LICENSE": b"MIT\n",
    ".env": b"SECRET=1\n",
}
DAY = 86400.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def files_under(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_every_file_is_named_by_the_md5_of_its_bytes(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(root, out)
    written = files_under(out)
    hashed = {name: data for name, data in written.items() if name not in ("manifest.json", LOG)}
    assert len(hashed) == 4  # the dotfile is not an asset
    for name, data in hashed.items():
        split = split_hash(name, 12)
        assert split is not None, name
        assert hashlib.md5(data).hexdigest()[:12] == split[1]


def test_stylesheets_are_written_rewritten(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = build(root, out).manifest
    css = (out / manifest.files["css/site.css"].hashed).read_bytes()
    assert css == FILES["css/site.css"].replace(
        b"bg.png", manifest.files["img/bg.png"].hashed.split("/")[-1].encode()
    )
    # A plain file is copied as it is.
    assert (out / manifest.files["js/app.js"].hashed).read_bytes() == FILES["js/app.js"]


def test_manifest_matches_the_written_files(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build(root, out)
    manifest = load_manifest(out / "manifest.json")
    assert dict(manifest.files) == dict(result.manifest.files)
    for asset in manifest.files.values():
        data = (out / asset.hashed).read_bytes()
        assert hashlib.md5(data).hexdigest() == asset.digest
        assert len(data) == asset.size


def test_rerun_writes_nothing(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(root, out, compress=True)
    assert len(first.written) >= 4
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second = build(root, out, compress=True)
    assert second.written == ()
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    hashed = {p for p in before if p.name not in ("manifest.json", LOG)}
    assert {p: after[p] for p in hashed} == {p: before[p] for p in hashed}


def test_a_changed_file_writes_only_itself(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(root, out)
    (root / "js/app.js").write_bytes(b"console.log('v2');\n")
    second = build(root, out)
    assert second.written == (second.manifest.files["js/app.js"].hashed,)


def test_compress_keeps_only_smaller_siblings_of_compressible_types(
    root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    files = build(root, out, compress=True).manifest.files
    js = out / (files["js/app.js"].hashed + ".gz")
    assert gzip.decompress(js.read_bytes()) == FILES["js/app.js"]
    assert not (out / (files["img/bg.png"].hashed + ".gz")).exists()  # png: compressed already
    assert not (out / (files["LICENSE"].hashed + ".gz")).exists()  # 4 bytes: gzip is larger


def test_an_interrupted_write_leaves_no_partial_file(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"

    def failing(path: str) -> Iterator[bytes]:
        yield b"half of it"
        raise OSError("disk full")

    monkeypatch.setattr(build_module, "_chunks", failing)
    with pytest.raises(OSError, match="disk full"):
        build(root, out)
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_out_inside_root_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="inside --root"):
        build(root, root / "build")


def _age(out: Path, days: float) -> None:
    when = time.time() - days * DAY
    for path in out.rglob("*"):
        os.utime(path, (when, when))


def _version(root: Path, out: Path, n: int, now: float, keep: int, days: float = 7) -> str:
    (root / "js/app.js").write_bytes(f"console.log({n});\n".encode())
    result = build(root, out, now=now, keep_builds=keep, keep_days=days)
    return result.manifest.files["js/app.js"].hashed


def test_files_of_the_last_builds_are_kept_however_old(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    now = time.time()
    names = [_version(root, out, n, now - 100 * DAY + n, 3) for n in range(5)]
    _age(out, 100)
    _version(root, out, 5, now, 3)
    present = {p.relative_to(out).as_posix() for p in out.rglob("*.js")}
    # Builds 3, 4 and 5 are the last three: 0, 1 and 2 are gone, being old.
    assert names[3] in present and names[4] in present
    assert not {names[0], names[1], names[2]} & present


def test_recent_files_are_kept_beyond_the_build_count(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    now = time.time()
    names = [_version(root, out, n, now - 1 * DAY + n, 1) for n in range(3)]
    _age(out, 100)  # only the build log knows they were used a day ago
    _version(root, out, 3, now, 1, days=2)
    present = {p.relative_to(out).as_posix() for p in out.rglob("*.js")}
    assert set(names) <= present  # referenced a day ago, kept for two
    _version(root, out, 4, now + 2 * DAY, 1, days=2)
    present = {p.relative_to(out).as_posix() for p in out.rglob("*.js")}
    assert not set(names) & present  # three days later they go


def test_retention_never_deletes_files_it_did_not_write(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "robots.txt").write_bytes(b"mine")
    _age(out, 100)
    build(root, out, keep_builds=1, keep_days=0)
    build(root, out, keep_builds=1, keep_days=0)
    assert (out / "robots.txt").read_bytes() == b"mine"


def test_build_log_records_each_build(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(root, out, keep_builds=2, keep_days=0)
    build(root, out, keep_builds=2, keep_days=0)
    build(root, out, keep_builds=2, keep_days=0)
    log = json.loads((out / LOG).read_text())
    assert len(log["builds"]) == 2
    assert sorted(log["builds"][-1]["files"]) == sorted(
        a.hashed for a in load_manifest(out / "manifest.json").files.values()
    )


def page_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [
        b'<link rel="stylesheet" href="/static/css/site.css">'
        b'<script src="/static/js/app.js"></script><img src="/static/img/bg.png">'
    ]


def render(root: Path, out: Path) -> list[str]:
    app = HashStatic(page_app, root=root, serve=False, manifest=out / "manifest.json")
    body = Request.blank("/").get_response(app).body
    return [u.decode() for u in re.findall(rb'"/static/([^"]+)"', body)]


def test_pages_of_the_previous_deploy_still_load(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(root, out)
    old_page = render(root, out)
    (root / "img/bg.png").write_bytes(b"\x89PNG new")  # changes the stylesheet's hash too
    build(root, out)
    new_page = render(root, out)
    assert len(old_page) == len(new_page) == 3
    changed = [(a, b) for a, b in zip(old_page, new_page, strict=True) if a != b]
    assert [a.split(".")[0] for a, _ in changed] == ["css/site", "img/bg"]
    for url in old_page + new_page:
        data = (out / url).read_bytes()
        split = split_hash(url, 12)
        assert split is not None
        assert hashlib.md5(data).hexdigest()[:12] == split[1]


def test_raw_manifest_hashes_stylesheets_as_they_are(root: Path) -> None:
    asset = raw_manifest(root).files["css/site.css"]
    assert asset.digest == hashlib.md5(FILES["css/site.css"]).hexdigest()


def test_cli_build_then_nginx(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["build", "--root", str(root), "--out", str(out), "--compress"]) == 0
    assert (out / "manifest.json").is_file()
    assert main(["nginx", "--root", str(out), "--build"]) == 0
    assert "immutable" in capsys.readouterr().out
    raw = tmp_path / "raw.json"
    argv = ["nginx", "--root", str(root), "--write-manifest", str(raw), "--upstream", "app:8000"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("server {")
    files = load_manifest(raw).files
    assert f'location = "/static/{files["css/site.css"].hashed}"' in text
    assert main(["nginx", "--root", str(root), "--manifest", str(raw)]) == 0
    snippet = capsys.readouterr().out
    assert snippet.startswith("# hashstatic: source root")
    assert f'location = "/static/{files["js/app.js"].hashed}"' in snippet


def test_cli_nginx_refuses_a_stale_manifest(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.json"
    assert main(["nginx", "--root", str(root), "--write-manifest", str(raw)]) == 0
    (root / "js/app.js").write_bytes(b"changed")
    assert main(["nginx", "--root", str(root), "--manifest", str(raw)]) == 1
    assert "js/app.js" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param(["--upstream", "no-port"], 2, id="upstream"),
        pytest.param(["--upstream", "app:80", "--listen", "80; evil"], 2, id="listen"),
        pytest.param(["--build"], 1, id="not-a-build"),
    ],
)
def test_cli_nginx_rejects_bad_input(
    root: Path, extra: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["nginx", "--root", str(root), *extra]) == status
    err = capsys.readouterr().err
    assert err.startswith("hashstatic nginx: error: ")
    assert "Traceback" not in err


def test_cli_build_is_quiet_off_a_terminal(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr() == ("", "")
