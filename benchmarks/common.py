"""What the benchmarks share: command line, interleaved timing, servers, wrk, tables, JSON.

Every figure a benchmark reports is a median over interleaved rounds (each round runs every
candidate once, in an order that rotates), and comparisons are ratios of medians measured in
the same run: the development machines are shared and noisy, so a lone absolute time means
little. Results go to ``benchmarks/results/<name>.json`` (``--json`` to change it).

Run as ``python -m benchmarks.common serve MODULE:FACTORY JSON`` this module is the child
process that runs one WSGI application under waitress for the wrk measurements: it prints
``port N`` when it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

RESULTS = REPO / "benchmarks" / "results"
# One wrk thread with a few connections: on a 2-core machine wrk takes one core and the Python
# server (one GIL) the other. Every server is measured with the same settings.
WRK_THREADS = 1
WRK_CONNECTIONS = 8
WAITRESS_THREADS = 4

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


# --- command line and report ------------------------------------------------------------------


def parser(doc: str | None, name: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick`` and ``--json``."""
    # Progress goes to stderr as it happens; tables to stdout: keep the two in order.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    summary = (doc or name).strip().split("\n\n")[0]
    p = argparse.ArgumentParser(description=summary)
    p.add_argument(
        "--quick", action="store_true", help="small sizes and short runs: a smoke run, not figures"
    )
    p.add_argument(
        "--json",
        type=Path,
        default=RESULTS / f"{name}.json",
        help=f"where to write the results (benchmarks/results/{name}.json)",
    )
    return p


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was when the run started."""
    from hashstatic.tokenizer import ACCELERATED

    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "c_tokenizer": ACCELERATED,
    }


def goal(what: str, measured: float, target: float, *, at_least: bool = True) -> dict[str, Any]:
    """One of issue 6's goals, with the figure measured for it."""
    met = measured >= target if at_least else measured <= target
    sign = ">=" if at_least else "<="
    return {
        "goal": what,
        "target": f"{sign} {target:g}",
        "measured": round(measured, 3),
        "met": met,
    }


def write_report(path: Path, name: str, report: dict[str, Any], started: float) -> None:
    report = {
        "benchmark": name,
        **report,
        "seconds": round(time.monotonic() - started, 1),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print_goals(report.get("goals", []))
    print(f"\nwritten to {path} ({report['seconds']} s)")


def print_goals(goals: Sequence[dict[str, Any]]) -> None:
    if goals:
        print()
        table(
            ["goal (issue 6)", "target", "measured", "met"],
            [
                [g["goal"], g["target"], f"{g['measured']:g}", "yes" if g["met"] else "NO"]
                for g in goals
            ],
        )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join(
            [first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))]
        )

    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line([str(c) for c in row]))


# --- interleaved timing -----------------------------------------------------------------------


def rotated(names: Sequence[str], round_number: int) -> list[str]:
    k = round_number % len(names)
    return [*names[k:], *names[:k]]


def interleaved_rates(
    candidates: dict[str, Callable[[], object]], rounds: int, slice_seconds: float
) -> dict[str, list[float]]:
    """Calls per second of each candidate: in each round every candidate runs for
    ``slice_seconds`` in a rotating order; one figure per candidate and round."""
    clock = time.perf_counter
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for r in range(rounds):
        for name in rotated(list(candidates), r):
            fn = candidates[name]
            calls = 0
            start = clock()
            deadline = start + slice_seconds
            now = start
            while now < deadline:
                fn()
                calls += 1
                now = clock()
            rates[name].append(calls / (now - start))
    return rates


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summary(rates: Sequence[float]) -> dict[str, Any]:
    return {
        "median": round(median(rates), 1),
        "min": round(min(rates), 1),
        "max": round(max(rates), 1),
        "rounds": [round(r, 1) for r in rates],
    }


# --- in-process WSGI --------------------------------------------------------------------------


def environ(path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Environ:
    """A minimal WSGI environ, as a server would build it (no ``wsgi.file_wrapper``: the
    caller reads the body itself)."""
    env: Environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


class Captured:
    status = ""
    headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def hashstatic_command(*args: str) -> None:
    """Run ``python -m hashstatic ARGS`` from this checkout (its output discarded); raise if
    it fails."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "hashstatic", *args]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def site_with_manifest(work: Path) -> tuple[Path, Path]:
    """``sites.static_site`` under ``work/static`` and its manifest, ``work/manifest.json``,
    made by the command line as a deploy makes it."""
    from benchmarks import sites

    root = sites.static_site(work / "static")
    manifest = work / "manifest.json"
    hashstatic_command("manifest", "--root", str(root), "-o", str(manifest))
    return root, manifest


def call(app: WSGIApp, env: Environ) -> tuple[Captured, bytes]:
    """Call ``app`` with a copy of ``env``, read and close the body; (response, body)."""
    captured = Captured()
    result = app(dict(env), captured)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured, body


def requester(app: WSGIApp, env: Environ) -> Callable[[], object]:
    """A zero-argument function making one request, for :func:`interleaved_rates`."""

    def request() -> int:
        result = app(dict(env), _discard)
        size = 0
        for chunk in result:
            size += len(chunk)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return size

    return request


def _write(data: bytes) -> None:
    pass


def _discard(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _write


# --- servers and wrk --------------------------------------------------------------------------


class Servers:
    """Child processes serving WSGI apps under waitress, stopped on exit."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()

    def start(self, command: list[str], ready: re.Pattern[str], cwd: Path = REPO) -> int:
        """Run ``command``; the port is group 1 of ``ready`` on one of its stdout lines."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        for line in process.stdout:
            found = ready.search(line)
            if found:
                return int(found.group(1))
        raise RuntimeError(f"{' '.join(command)} exited before listening")

    def waitress(self, factory: str, **kwargs: Any) -> int:
        """Serve ``factory(**kwargs)`` (``module:function``) under waitress; its port."""
        command = [sys.executable, "-m", "benchmarks.common", "serve", factory, json.dumps(kwargs)]
        return self.start(command, re.compile(r"^port (\d+)$"))


def _serve_child(factory: str, kwargs_json: str) -> None:
    import waitress

    module, _, name = factory.partition(":")
    app = getattr(importlib.import_module(module), name)(**json.loads(kwargs_json))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=WAITRESS_THREADS)
    print(f"port {server.effective_port}", flush=True)
    server.run()


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One request over a socket; the response with its body read (``.data``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.data = response.read()  # type: ignore[attr-defined]
        return response
    finally:
        connection.close()


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``, installing the Debian ``package`` when it is missing (as
    ``.ci/test`` installs nginx)."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {package} (apt-get install {package})", file=sys.stderr)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env=env,
    )
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise SystemExit(f"{command} is still missing after apt-get install {package}")
    return found


def ensure_wrk() -> str:
    return ensure_command("wrk", "wrk")


_WRK_FIELDS = {
    "requests": re.compile(r"^\s*(\d+) requests in"),
    "requests_per_s": re.compile(r"^Requests/sec:\s*([\d.]+)"),
    "bad_status": re.compile(r"Non-2xx or 3xx responses:\s*(\d+)"),
}
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(
    port: int,
    path: str,
    seconds: int,
    headers: dict[str, str] | None = None,
    *,
    connections: int = WRK_CONNECTIONS,
) -> float:
    """Requests per second wrk gets from ``http://127.0.0.1:port/path`` in ``seconds``.

    Fails (rather than report a figure for something else) on any error or 4xx/5xx.
    """
    command = [
        ensure_wrk(),
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {}
    for line in out.splitlines():
        for key, pattern in _WRK_FIELDS.items():
            found = pattern.search(line)
            if found:
                figures[key] = float(found.group(1))
        errors = _WRK_ERRORS.search(line)
        if errors and any(int(n) for n in errors.groups()):
            raise RuntimeError(f"wrk saw socket errors on {path}:\n{out}")
    if figures.get("bad_status") or "requests_per_s" not in figures:
        raise RuntimeError(f"wrk on {path} got error responses or no figure:\n{out}")
    return figures["requests_per_s"]


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    print(f"  {label}: {time.monotonic() - start:.1f} s", file=sys.stderr)


def not_found_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    """The wrapped app of the serving benchmarks: static requests must never reach it."""
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve_child(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: python -m benchmarks.common serve MODULE:FACTORY JSON")
