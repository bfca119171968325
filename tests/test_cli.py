"""The ``hashstatic`` command: ``manifest`` output, ``serve`` end to end, and its errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from hashstatic.cli import main
from tests.conftest import REPO_ROOT, write_files

SITE = REPO_ROOT / "examples" / "site"
IMMUTABLE = "public, max-age=31536000, immutable"


def short_md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:12]


def with_hash(path: str, data: bytes) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.{short_md5(data)}.{ext}"


def site_assets() -> dict[str, bytes]:
    """The files of examples/site that its pages reference, by path."""
    paths = ("css/site.css", "fonts/pixel.woff2", "img/stripes.svg", "img/logo.svg", "js/app.js")
    return {path: (SITE / path).read_bytes() for path in paths}


def fetch(url: str) -> tuple[bytes, Any]:
    with urlopen(url, timeout=10) as response:
        return response.read(), response.headers


def expect_rewritten(page: bytes, urls: dict[str, str]) -> bytes:
    """``page`` with each attribute value ``url`` (double-quoted) replaced by ``urls[url]``."""
    for old, new in urls.items():
        assert f'="{old}"'.encode() in page
        page = page.replace(f'="{old}"'.encode(), f'="{new}"'.encode())
    return page


# --- manifest --------------------------------------------------------------------------------


@pytest.fixture
def static(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    files = {
        "js/app.js": b"console.log(1)\n",
        "css/b.css": b"body { color: red }\n",
        "a.txt": b"alpha\n",
        "LICENSE": b"MIT\n",
        "img/deep/logo.svg": b"<svg/>",
    }
    write_files(root, files)
    return root


def keys_in_order(text: str) -> list[list[str]]:
    """The keys of every JSON object in ``text``, in the order they were written."""
    seen: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.append([key for key, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return seen


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*map(strings, value.values()))
    if isinstance(value, list):
        return set().union(*map(strings, value))
    return {value} if isinstance(value, str) else set()


def test_manifest_is_sorted_json_naming_every_hashed_file(
    static: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "--root", str(static)]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress bar when stderr is not a terminal
    for keys in keys_in_order(out):
        assert keys == sorted(keys)
    found = strings(json.loads(out))
    for path in ("js/app.js", "css/b.css", "a.txt", "LICENSE", "img/deep/logo.svg"):
        data = (static / path).read_bytes()
        hashed = f"{path}.{short_md5(data)}" if path == "LICENSE" else with_hash(path, data)
        assert path in found
        assert hashed in found


def test_manifest_output_is_deterministic(
    static: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "--root", str(static)]) == 0
    first = capsys.readouterr().out
    # Rewriting a file with the same bytes (a new mtime) changes nothing.
    (static / "a.txt").write_bytes((static / "a.txt").read_bytes())
    assert main(["manifest", "--root", str(static)]) == 0
    assert capsys.readouterr().out == first
    assert main(["manifest", "--root", str(static), "-o", str(tmp_path / "m.json")]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "m.json").read_text().rstrip("\n") == first.rstrip("\n")


def test_manifest_hash_length_and_prefix_are_honoured(
    static: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["manifest", "--root", str(static), "--prefix", "/assets/", "--hash-length", "20"]
    assert main(argv) == 0
    found = strings(json.loads(capsys.readouterr().out))
    digest = hashlib.md5(b"console.log(1)\n").hexdigest()[:20]
    assert f"js/app.{digest}.js" in found
    assert "/assets/" in found


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_manifest_draws_progress_on_a_terminal(
    static: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["manifest", "--root", str(static)]) == 0
    drawn = terminal.getvalue()
    assert drawn.startswith("\rhashing [")
    assert drawn.endswith("] 5/5 files\n")
    assert json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--root", "{missing}"], "does not exist", id="missing-root"),
        pytest.param(["--root", "{file}"], "is not a directory", id="root-is-a-file"),
        pytest.param(["--root", "{root}", "--prefix", "static"], "prefix", id="bad-prefix"),
        pytest.param(["--root", "{root}", "--hash-length", "4"], "8 to 32", id="short-hash"),
        pytest.param(
            ["--root", "{root}", "-o", "{missing}/m.json"], "cannot write", id="unwritable"
        ),
    ],
)
def test_manifest_errors_say_what_to_fix(
    argv: list[str], message: str, static: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    places = {"missing": static / "nope", "file": static / "a.txt", "root": static}
    argv = [arg.format(**places) for arg in argv]
    code = main(["manifest", *argv])
    err = capsys.readouterr().err
    assert code == (1 if message == "cannot write" else 2)
    assert err.startswith("hashstatic manifest: error: ")
    assert message in err


# --- serve -----------------------------------------------------------------------------------


def served_hashes(base: str, assets: dict[str, bytes]) -> dict[str, str]:
    """The hashed path of each asset, as served under ``base``; checks what is served there.

    Every asset but the stylesheet is served as it is on disk, so its hash is the MD5 of the
    file. A stylesheet may be served with its url() references hashed (SPEC 4): its hash is
    the MD5 of the bytes served, which must still be the file's apart from inserted hashes.
    """
    hashed = {
        path: with_hash(path, data) for path, data in assets.items() if path != "css/site.css"
    }
    for path, name in hashed.items():
        body, headers = fetch(base + name)
        assert body == assets[path]
        assert headers["Cache-Control"] == IMMUTABLE
    served, _ = fetch(base + "css/site.css")
    assert re.sub(rb"\.[0-9a-f]{12}(\.(?:woff2|svg)\b)", rb"\1", served) == assets["css/site.css"]
    hashed["css/site.css"] = with_hash("css/site.css", served)
    body, headers = fetch(base + hashed["css/site.css"])
    assert body == served
    assert headers["Cache-Control"] == IMMUTABLE
    return hashed


@pytest.mark.slow
def test_serve_a_directory_rewrites_its_pages_and_serves_the_hashed_files(
    hashstatic_server: Callable[..., str],
) -> None:
    base = hashstatic_server("--root", str(SITE))
    hashed = served_hashes(base, site_assets())
    page, headers = fetch(base)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert page == expect_rewritten(
        (SITE / "index.html").read_bytes(),
        {
            "/css/site.css": "/" + hashed["css/site.css"],
            "img/logo.svg": hashed["img/logo.svg"],
            "js/app.js": hashed["js/app.js"],
        },
    )
    about, _ = fetch(base + "about/")
    assert about == expect_rewritten(
        (SITE / "about/index.html").read_bytes(),
        {
            "../css/site.css": "../" + hashed["css/site.css"],
            "/img/logo.svg": "/" + hashed["img/logo.svg"],
            "../img/logo.svg": "../" + hashed["img/logo.svg"],
            "../js/app.js": "../" + hashed["js/app.js"],
        },
    )


@pytest.mark.slow
def test_serve_an_app_hashes_the_urls_of_its_pages(
    hashstatic_server: Callable[..., str],
) -> None:
    base = hashstatic_server("plain_wsgi:app", "--root", "site", cwd=REPO_ROOT / "examples")
    hashed = served_hashes(base + "static/", site_assets())
    page, _ = fetch(base)
    css = hashed["css/site.css"]
    assert page == f'<link rel="stylesheet" href="/static/{css}"><h1>Hello</h1>'.encode()


def test_serve_missing_root_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hashstatic serve: error: --root ")
    assert "does not exist" in err


def test_serve_bad_prefix_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--root", str(SITE), "--prefix", "static"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hashstatic serve: error: ")
    assert "'static'" in err


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write a module into a fresh current directory; returns its (unique) name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def write(source: str) -> str:
        name = "app_" + uuid.uuid4().hex
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return write


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("{module}", "is not MODULE:APP", id="no-colon"),
        pytest.param("{module}:", "is not MODULE:APP", id="no-app"),
        pytest.param(":app", "is not MODULE:APP", id="no-module"),
        pytest.param(
            "no_such_module_7f3a:app", "no module named 'no_such_module_7f3a'", id="module"
        ),
        pytest.param("{module}:nothing", "has no attribute 'nothing'", id="attribute"),
        pytest.param("{module}:NUMBER", "is not a WSGI application", id="not-callable"),
    ],
)
def test_serve_bad_app_spec_exits_2(
    spec: str,
    message: str,
    importable: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = importable("NUMBER = 3\n")
    Path("static").mkdir()
    assert main(["serve", spec.format(module=module), "--root", "static"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hashstatic serve: error: ")
    assert message in err


def test_serve_app_spec_may_name_a_nested_attribute(importable: Callable[[str], str]) -> None:
    from hashstatic.cli import load_app

    module = importable("class Holder:\n    def wsgi(environ, start_response):\n        pass\n")
    app = load_app(f"{module}:Holder.wsgi")
    assert app is sys.modules[module].Holder.wsgi


def test_serve_shows_the_import_error_inside_the_app_module(
    importable: Callable[[str], str],
) -> None:
    module = importable("import dependency_that_is_not_installed_c41d\n")
    Path("static").mkdir()
    with pytest.raises(ModuleNotFoundError, match="dependency_that_is_not_installed_c41d"):
        main(["serve", f"{module}:app", "--root", "static"])


@pytest.mark.slow
def test_serve_on_a_busy_port_exits_1() -> None:
    # In a process of its own: waitress leaves its half-made server unclosed on this error.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = ["-m", "hashstatic", "serve", "--root", str(SITE), "--port", str(port)]
        done = subprocess.run(
            [sys.executable, *command],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "choose another --port" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no-command"),
        pytest.param(["serve"], id="serve-without-root"),
        pytest.param(["serve", "--root", "x", "--port", "eighty"], id="bad-port"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: hashstatic" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "serve" in out
    assert "manifest" in out


def test_commands_other_than_serve_start_without_webob_or_waitress() -> None:
    """A deploy script runs ``hashstatic manifest``, ``build`` and ``nginx`` often: they do
    not import the middleware (WebOb) or the server, which cost more than a small manifest."""
    probe = (
        "import sys, hashstatic.cli, hashstatic.build, hashstatic.nginx\n"
        "print(sorted(m for m in ('webob', 'waitress', 'hashstatic.middleware') "
        "if m in sys.modules))\n"
        "from hashstatic import HashStatic\n"
        "print(HashStatic.__module__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "hashstatic.middleware"]
