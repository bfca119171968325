"""The production path: the same hashed file from nginx and from the development server.

The static site of the serving benchmark is built with ``hashstatic build`` and served by
nginx (``/usr/sbin/nginx``, one process: ``master_process off``) with the snippet
``hashstatic nginx --root BUILD --build`` prints, inside a ``server`` of an ``http`` block
like Debian's packaged ``nginx.conf`` (``include mime.types``, ``sendfile on``,
``tcp_nopush on``, access log off). Against it, on the same hashed URLs (a 5 KB stylesheet
and a 100 KB script, 200 and 304):

* ``hashstatic serve MODULE:APP --root SOURCE``: the development server (waitress, HashStatic
  with hashes from disk), the command the README gives;
* waitress running ``HashStatic(..., manifest=FILE)``: production without nginx, for
  reference.

Every server sends the same bytes (checked by MD5) with the one-year ``immutable`` lifetime.
wrk (1 thread, 8 connections) loads each in turn, interleaved; the ratio is nginx's requests
per second to the development server's: the reason to deploy nginx.

This is not a test: it prints a table, writes ``benchmarks/results/nginx.json`` and never
fails on speed.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, sites

NAME = "nginx"
FILES = {"css": sites.SMALL_CSS, "js": sites.MEDIUM_JS}
SERVERS = ("nginx", "dev_server", "manifest")
LABELS = {
    "nginx": "nginx, generated config",
    "dev_server": "hashstatic serve (dev)",
    "manifest": "waitress + HashStatic manifest",
}
MIME_TYPES = "/etc/nginx/mime.types"


def manifest_app(root: str, manifest: str) -> Any:
    from hashstatic import HashStatic

    return HashStatic(common.not_found_app, root=root, prefix="/static/", manifest=manifest)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_conf(work: Path, snippet: str, port: int) -> Path:
    temp = " ".join(
        f"{kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = (
        f"daemon off; master_process off; pid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f" include {MIME_TYPES}; default_type application/octet-stream;\n"
        f" sendfile on; tcp_nopush on; access_log off; {temp}\n"
        f" server {{\n  listen 127.0.0.1:{port};\n{snippet} }}\n"
        "}\n"
    )
    path = work / "nginx.conf"
    path.write_text(text)
    return path


def start_nginx(servers: common.Servers, nginx: str, work: Path, snippet: str) -> int:
    port = free_port()
    conf = nginx_conf(work, snippet, port)
    check = subprocess.run(
        [nginx, "-t", "-q", "-p", str(work), "-c", str(conf)], capture_output=True
    )
    if check.returncode != 0:
        raise SystemExit(f"nginx -t refused the configuration:\n{check.stderr.decode()}")
    process = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    servers.processes.append(process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited; see {work / 'error.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port
        except OSError:
            time.sleep(0.02)
    raise SystemExit("nginx did not start listening")


def main() -> int:
    args = common.parser(__doc__, NAME).parse_args()
    started = time.monotonic()
    rounds, seconds = (1, 1) if args.quick else (3, 3)
    report: dict[str, Any] = {
        "machine": common.machine(),
        "settings": {
            "rounds": rounds,
            "seconds": seconds,
            "threads": common.WRK_THREADS,
            "connections": common.WRK_CONNECTIONS,
            "quick": args.quick,
        },
    }
    nginx = common.ensure_command("nginx", "nginx")
    common.ensure_wrk()
    hashstatic = [sys.executable, "-m", "hashstatic"]
    env = dict(os.environ, PYTHONPATH=str(common.REPO))
    rates: dict[tuple[str, int], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hashstatic-bench-") as tmp:
        work = Path(tmp)
        source = sites.static_site(work / "static")
        build = work / "build"
        subprocess.run(
            [*hashstatic, "build", "--root", str(source), "--out", str(build)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        snippet = subprocess.run(
            [*hashstatic, "nginx", "--root", str(build), "--build"],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        ).stdout
        from hashstatic.manifest import load_manifest

        files = load_manifest(build / "manifest.json").files
        urls = {kind: "/static/" + files[path].hashed for kind, path in FILES.items()}
        (work / "nginx").mkdir()
        with common.Servers() as servers:
            ports = {
                "nginx": start_nginx(servers, nginx, work / "nginx", snippet),
                "dev_server": servers.start(
                    [
                        *hashstatic,
                        "serve",
                        "benchmarks.common:not_found_app",
                        "--root",
                        str(source),
                        "--port",
                        "0",
                    ],
                    re.compile(r" on http://127\.0\.0\.1:(\d+)/"),
                ),
                "manifest": servers.waitress(
                    "benchmarks.nginx:manifest_app",
                    root=str(source),
                    manifest=str(build / "manifest.json"),
                ),
            }
            targets = _check(ports, urls)
            if not args.quick:
                for port in ports.values():
                    common.wrk(port, urls["css"], 1)  # warm-up, not measured
            for r in range(rounds):
                for kind in ["css"] if args.quick else FILES:  # wrk runs whole seconds
                    for status in (200, 304):
                        by_server = rates.setdefault((kind, status), {s: [] for s in SERVERS})
                        for name in common.rotated(list(SERVERS), r):
                            etag = targets[name, kind][2]
                            headers = {"If-None-Match": etag} if status == 304 else {}
                            rate = common.wrk(ports[name], urls[kind], seconds, headers)
                            by_server[name].append(rate)
                print(f"  round {r + 1}/{rounds} done", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for (kind, status), by_server in rates.items():
        dev = common.median(by_server["dev_server"])
        rows.append(
            {
                "file": kind,
                "status": status,
                **{name: common.summary(values) for name, values in by_server.items()},
                "nginx_x_dev": round(common.median(by_server["nginx"]) / dev, 2),
                "manifest_x_dev": round(common.median(by_server["manifest"]) / dev, 2),
            }
        )
    report["rows"] = rows
    report["urls"] = urls
    print(
        f"wrk -t{common.WRK_THREADS} -c{common.WRK_CONNECTIONS}: median req/s of {rounds} "
        f"interleaved {seconds} s runs per server"
    )
    common.table(
        ["file", "status", *(f"{LABELS[s]} req/s" for s in SERVERS), "nginx x dev"],
        [
            [
                r["file"],
                str(r["status"]),
                *(f"{r[s]['median']:.0f}" for s in SERVERS),
                f"{r['nginx_x_dev']:.1f}x",
            ]
            for r in rows
        ],
    )
    common.write_report(args.json, NAME, report, started)
    return 0


def _check(ports: dict[str, int], urls: dict[str, str]) -> dict[tuple[str, str], Any]:
    """Each server's (status, digest, ETag) per file; all must send the same bytes, immutable."""
    found: dict[tuple[str, str], Any] = {}
    for kind, url in urls.items():
        digests = set()
        for name, port in ports.items():
            reply = common.fetch(port, url)
            body = reply.data  # type: ignore[attr-defined]
            cache_control = reply.getheader("Cache-Control") or ""
            etag = reply.getheader("ETag") or ""
            if reply.status != 200 or "immutable" not in cache_control or not etag:
                raise SystemExit(f"{name} answered {url} with {reply.status}, {cache_control!r}")
            if common.fetch(port, url, {"If-None-Match": etag}).status != 304:
                raise SystemExit(f"{name} did not answer 304 to its own ETag for {url}")
            digests.add(hashlib.md5(body).hexdigest())
            found[name, kind] = (reply.status, digests, etag)
        if len(digests) != 1:
            raise SystemExit(f"the servers sent different bytes for {url}")
    return found


if __name__ == "__main__":
    raise SystemExit(main())
