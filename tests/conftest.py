"""Fixtures shared by the test modules."""

from __future__ import annotations

import dataclasses
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r" on (http://\S+/)$")


_FIGURES: list[str] = []

if TYPE_CHECKING:
    from hashstatic.cache import Asset


def looked_up_one_at_a_time(root: Path) -> dict[str, Asset]:
    """Every file under ``root`` as a fresh index looks it up alone, with integrity, in the
    form a manifest holds it (no clock): what build_manifest must agree with."""
    from hashstatic.cache import DiskIndex, iter_files

    index = DiskIndex(root)
    found = {}
    for path in iter_files(root):
        asset = index.lookup(path, integrity=True)
        assert asset is not None
        found[path] = dataclasses.replace(asset, mtime_ns=0)  # a manifest has no clock
    return found


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) under ``root``, making directories."""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block as a user that permissions apply to (root reads anything)."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)  # nobody
    except PermissionError:
        pytest.skip("running as root without the right to change user: chmod cannot bite")
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


# What the audit hook records while a test asks (see file_access); None between tests.
_FILE_ACCESS: list[tuple[str, object]] | None = None


def _audit_file_access(event: str, args: tuple[Any, ...]) -> None:
    if _FILE_ACCESS is not None and event in ("open", "os.listdir", "os.scandir"):
        _FILE_ACCESS.append((event, args[0] if args else None))


@pytest.fixture
def file_access() -> Iterator[list[tuple[str, object]]]:
    """Every ``open``, ``listdir`` and ``scandir`` while the test runs, in any thread, as
    (event, path): an audit hook, which cannot be removed, so it is installed once."""
    global _FILE_ACCESS
    if not getattr(sys, "_hashstatic_file_audit", False):
        sys.addaudithook(_audit_file_access)
        sys._hashstatic_file_audit = True  # type: ignore[attr-defined]
    _FILE_ACCESS = []
    try:
        yield _FILE_ACCESS
    finally:
        _FILE_ACCESS = None


@pytest.fixture
def stat_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every ``os.stat`` made from now on: what SPEC 7 counts per response."""
    made: list[str] = []
    real = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        made.append(os.fsdecode(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    return made


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures(text)`` records a line that the run prints at its end, under the test's name.

    The hardening tests report what they tried and saw (attacks sent, documents fuzzed,
    requests served, errors seen) this way, so the figures appear in every CI log.
    """

    def record(text: str) -> None:
        _FIGURES.append(f"{request.node.nodeid}: {text}")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def hashstatic_server() -> Iterator[Callable[..., str]]:
    """Start ``python -m hashstatic serve ARGS --port 0`` and return its base URL.

    Servers are stopped with SIGTERM at teardown, and must exit with status 0.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: str | os.PathLike[str] = REPO_ROOT, timeout: float = 20) -> str:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "hashstatic", "serve", *args, "--port", "0"]
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.1)
            if not ready:
                continue
            line = process.stdout.readline()
            if not line:
                break  # the server exited
            found = _LISTENING.search(line.rstrip("\n"))
            if found:
                return found.group(1)
        process.kill()
        _, err = process.communicate()
        processes.remove(process)
        pytest.fail(f"{' '.join(command)} did not start:\n{err}")

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
