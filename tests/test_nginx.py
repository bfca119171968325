"""The generated nginx configuration, run by a real nginx with a waitress app behind it."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import waitress
from webob import Request

from hashstatic import HashStatic
from hashstatic.build import build, raw_manifest
from hashstatic.manifest import load_manifest, write_manifest
from hashstatic.nginx import IMMUTABLE, ConfigError, nginx_config

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
MIME_TYPES = "/etc/nginx/mime.types"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/test installs it)"),
]

SITE = {
    "css/site.css": b'@import "base.css";\nbody { background: url(../img/bg.png); }\n',
    "css/base.css": b"html { color: #123; }\n" * 200,  # big enough to be worth a .gz
    "img/bg.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "js/app.js": b"console.log('hello');\n" * 100,
    "LICENSE": b"MIT\n",
    "a b.txt": b"spaced\n",
    ".env": b"SECRET_IN_DOTFILE\n",
}
SECRET = b"SECRET_OUTSIDE_ROOT\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1
        return values[0] if values else None


def get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        # http.client sends the path as written: no normalization on the client side.
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, response.getheaders(), body)
    finally:
        connection.close()


@dataclass
class App:
    """A WSGI page that links to assets, counting the requests it is sent."""

    paths: list[str] = field(default_factory=list)

    def __call__(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])
        page = (
            b'<link rel="stylesheet" href="/static/css/site.css">'
            b'<script src="/static/js/app.js"></script><img src="/static/img/bg.png">'
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    for name, data in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (tmp_path / "secret").write_bytes(SECRET)
    (root / "escape.txt").symlink_to(tmp_path / "secret")
    (root / "js/again.js").symlink_to("app.js")  # inside the root: an asset like any other
    return root


@pytest.fixture
def waitress_app() -> Iterator[Callable[..., int]]:
    servers = []

    def start(app: object) -> int:
        server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
        servers.append(server)
        threading.Thread(target=server.run, daemon=True).start()
        return int(server.effective_port)

    yield start
    for server in servers:
        server.close()


class Nginx:
    """``nginx(servers, port)`` runs nginx with ``servers`` inside ``http``; ``check`` is -t."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[subprocess.Popen[bytes]] = []

    def conf(self, servers: str) -> Path:
        work = self.work
        temp = " ".join(
            f"{kind}_temp_path {work / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        text = (
            f"daemon off; master_process off; pid {work / 'nginx.pid'};\n"
            f"error_log {work / 'error.log'} warn;\n"
            "events { worker_connections 64; }\n"
            f"http {{\n include {MIME_TYPES}; default_type application/octet-stream;\n"
            f" access_log off; {temp}\n{servers}\n}}\n"
        )
        path = work / "nginx.conf"
        path.write_text(text)
        return path

    def check(self, servers: str) -> subprocess.CompletedProcess[str]:
        path = self.conf(servers)
        return subprocess.run(
            [str(NGINX), "-t", "-q", "-p", str(self.work), "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=20,
        )

    def __call__(self, servers: str, port: int) -> int:
        path = self.conf(servers)
        process = subprocess.Popen(
            [str(NGINX), "-p", str(self.work), "-c", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"nginx exited: {process.communicate()[1].decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                time.sleep(0.02)
        pytest.fail("nginx did not start listening")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.communicate(timeout=10)


@pytest.fixture
def run_nginx(tmp_path: Path) -> Iterator[Nginx]:
    work = tmp_path / "nginx"
    work.mkdir()
    nginx = Nginx(work)
    yield nginx
    nginx.stop()


def snippet_server(snippet: str, port: int = 0) -> str:
    return f"server {{\n listen 127.0.0.1:{port or _free_port()};\n{snippet}}}\n"


def _builds(site: Path, tmp_path: Path, compress: bool = True) -> Path:
    out = tmp_path / "build"
    build(site, out, compress=compress)
    return out


# --- nginx -t ---------------------------------------------------------------------------------


def test_nginx_accepts_every_shape(site: Path, tmp_path: Path, run_nginx) -> None:
    out = _builds(site, tmp_path)
    manifest = raw_manifest(site)
    configs = {
        "build snippet": snippet_server(nginx_config(out, build=True)),
        "build server": nginx_config(out, build=True, upstream="127.0.0.1:9", listen="8081"),
        "source snippet": snippet_server(nginx_config(site, manifest=manifest)),
        "source server": nginx_config(
            site, manifest=manifest, upstream="127.0.0.1:9", listen="127.0.0.1:8082"
        ),
    }
    for name, config in configs.items():
        result = run_nginx.check(config)
        assert result.returncode == 0, (name, result.stderr)


def test_output_is_deterministic(site: Path, tmp_path: Path) -> None:
    out = _builds(site, tmp_path)
    assert nginx_config(out, build=True) == nginx_config(out, build=True)
    first = nginx_config(site, manifest=raw_manifest(site), upstream="app:8000")
    assert first == nginx_config(site, manifest=raw_manifest(site), upstream="app:8000")


def test_source_shape_refuses_a_manifest_of_rewritten_stylesheets(site: Path) -> None:
    from hashstatic.manifest import build_manifest

    # build_manifest hashes stylesheets after rewriting: nginx would send other bytes.
    with pytest.raises(ConfigError, match=r"site\.css"):
        nginx_config(site, manifest=build_manifest(site))


# --- build directory shape --------------------------------------------------------------------


@pytest.fixture
def build_server(site: Path, tmp_path: Path, run_nginx, waitress_app):
    out = _builds(site, tmp_path)
    app = App()
    app_port = waitress_app(HashStatic(app, root=site, serve=False, manifest=out / "manifest.json"))
    port = _free_port()
    config = nginx_config(
        out, build=True, upstream=f"127.0.0.1:{app_port}", listen=f"127.0.0.1:{port}"
    )
    return run_nginx(config, port), out, app


def test_hashed_urls_are_exact_bytes_immutable_and_never_reach_python(build_server) -> None:
    port, out, app = build_server
    manifest = load_manifest(out / "manifest.json")
    assert manifest.files
    for asset in manifest.files.values():
        reply = get(port, "/static/" + asset.hashed.replace(" ", "%20"))
        assert reply.status == 200, asset.hashed
        assert hashlib.md5(reply.body).hexdigest() == asset.digest
        assert reply.all("Cache-Control") == [IMMUTABLE]
    assert app.paths == []


def test_pages_through_nginx_load_every_hashed_asset(build_server) -> None:
    port, out, app = build_server
    page = get(port, "/")
    assert page.status == 200
    urls = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page.body)
    assert len(urls) == 3
    for url in urls:
        reply = get(port, url.decode())
        assert reply.status == 200
        assert reply.all("Cache-Control") == [IMMUTABLE]
        digest = hashlib.md5(reply.body).hexdigest()
        assert digest[:12].encode() in url
    # The stylesheet nginx sends names its font and image by their hashed URLs too.
    css = get(port, urls[0].decode()).body
    assert re.search(rb"bg\.[0-9a-f]{12}\.png", css)
    assert app.paths == ["/"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/static/js/app.0123456789ab.js", id="wrong-hash"),
        pytest.param("/static/js/app.js", id="unhashed"),
        pytest.param("/static/manifest.json", id="manifest"),
        pytest.param("/static/.hashstatic-builds.json", id="build-log"),
    ],
)
def test_build_shape_never_makes_other_urls_immutable(build_server, path: str) -> None:
    port, _, app = build_server
    reply = get(port, path)
    assert reply.status == 404
    assert IMMUTABLE not in reply.all("Cache-Control")
    assert app.paths == []


def test_precompressed_gzip_is_sent_to_clients_that_accept_it(build_server) -> None:
    port, out, _ = build_server
    asset = load_manifest(out / "manifest.json").files["css/base.css"]
    assert (out / (asset.hashed + ".gz")).is_file()
    url = "/static/" + asset.hashed
    zipped = get(port, url, {"Accept-Encoding": "gzip"})
    assert zipped.one("Content-Encoding") == "gzip"
    assert zipped.all("Cache-Control") == [IMMUTABLE]
    assert "Accept-Encoding" in (zipped.one("Vary") or "")
    assert gzip.decompress(zipped.body) == SITE["css/base.css"]
    plain = get(port, url)
    assert plain.one("Content-Encoding") is None
    assert plain.body == SITE["css/base.css"]


def test_text_types_are_labelled(build_server) -> None:
    port, out, _ = build_server
    files = load_manifest(out / "manifest.json").files
    css = get(port, "/static/" + files["css/site.css"].hashed)
    assert css.one("Content-Type") == "text/css; charset=utf-8"
    png = get(port, "/static/" + files["img/bg.png"].hashed)
    assert png.one("Content-Type") == "image/png"


# --- source root shape ------------------------------------------------------------------------


@pytest.fixture
def source_server(site: Path, tmp_path: Path, run_nginx, waitress_app):
    manifest = raw_manifest(site)
    write_manifest(manifest, tmp_path / "raw.json")
    app = App()
    app_port = waitress_app(HashStatic(app, root=site, serve=False, manifest=tmp_path / "raw.json"))
    port = _free_port()
    config = nginx_config(
        site, manifest=manifest, upstream=f"127.0.0.1:{app_port}", listen=f"127.0.0.1:{port}"
    )
    return run_nginx(config, port), manifest, app


def test_source_shape_serves_current_hashes_immutable(source_server, site: Path) -> None:
    port, manifest, app = source_server
    for path, asset in manifest.files.items():
        reply = get(port, "/static/" + asset.hashed.replace(" ", "%20"))
        assert reply.status == 200, path
        assert reply.body == (site / path).read_bytes()
        assert reply.all("Cache-Control") == [IMMUTABLE]
    assert app.paths == []


def test_source_shape_pages_load_every_hashed_asset(source_server) -> None:
    port, _, app = source_server
    urls = re.findall(rb'(?:href|src)="(/static/[^"]+)"', get(port, "/").body)
    assert len(urls) == 3
    for url in urls:
        reply = get(port, url.decode())
        assert reply.all("Cache-Control") == [IMMUTABLE]
        assert hashlib.md5(reply.body).hexdigest()[:12].encode() in url
    assert app.paths == ["/"]


def test_source_shape_unhashed_urls_revalidate(source_server, site: Path) -> None:
    port, _, _ = source_server
    reply = get(port, "/static/js/app.js")
    assert reply.status == 200
    assert reply.body == SITE["js/app.js"]
    assert reply.all("Cache-Control") == ["no-cache"]
    assert reply.one("ETag") is not None


def test_source_shape_wrong_hash_is_never_immutable(source_server) -> None:
    port, _, _ = source_server
    reply = get(port, "/static/js/app.0123456789ab.js")
    assert reply.status == 404
    assert IMMUTABLE not in reply.all("Cache-Control")


# --- traversal --------------------------------------------------------------------------------

TRAVERSALS = [
    "/static/../secret",
    "/static/%2e%2e/secret",
    "/static/%2E%2E%2Fsecret",
    "/static/..%2fsecret",
    "/static/..%5csecret",
    "/static/%5c..%5csecret",
    "/static/css/../../secret",
    "/static//../secret",
    "/static/.env",
    "/static/%2eenv",
    "/static/css/..%2f.env",
    "/static/escape.txt",
    "/static/escape.txt%00",
]


@pytest.mark.parametrize("shape", ["build", "source"])
def test_traversal_never_reads_outside_the_root(
    shape: str,
    site: Path,
    tmp_path: Path,
    run_nginx,
    waitress_app,
) -> None:
    if shape == "build":
        out = _builds(site, tmp_path)
        (out / ".env").write_bytes(SITE[".env"])
        (out / "escape.txt").symlink_to(tmp_path / "secret")
        (out / "escape.0123456789ab.txt").symlink_to(tmp_path / "secret")
        snippet = nginx_config(out, build=True)
    else:
        snippet = nginx_config(site, manifest=raw_manifest(site))
    # The app behind it answers everything else with a page that holds no secret.
    port = _free_port()
    run_nginx(snippet_server(snippet + " location / { return 418; }\n", port), port)
    for path in [*TRAVERSALS, "/static/escape.0123456789ab.txt"]:
        reply = get(port, path)
        assert b"SECRET" not in reply.body, path
        assert reply.status in (400, 403, 404, 418), (path, reply.status)


def test_symlinked_files_are_left_out_of_exact_locations(site: Path) -> None:
    # iter_files skips a symlink that leaves the root, so the manifest never names it.
    assert "escape.txt" not in raw_manifest(site).files
    assert "escape" not in nginx_config(site, manifest=raw_manifest(site))


def test_a_page_of_the_previous_build_still_loads_after_a_deploy(
    site: Path, tmp_path: Path, run_nginx: Nginx
) -> None:
    out = tmp_path / "build"

    def render() -> list[str]:
        app = HashStatic(App(), root=site, serve=False, manifest=out / "manifest.json")
        page = Request.blank("/").get_response(app).body
        return [url.decode() for url in re.findall(rb'"(/static/[^"]+)"', page)]

    build(site, out)
    old_page = render()
    (site / "img/bg.png").write_bytes(b"\x89PNG version 2")
    build(site, out)
    new_page = render()
    assert old_page[0] != new_page[0]  # the stylesheet names the new image
    port = _free_port()
    run_nginx(snippet_server(nginx_config(out, build=True), port), port)
    for url in old_page + new_page:
        reply = get(port, url)
        assert reply.status == 200, url
        assert reply.all("Cache-Control") == [IMMUTABLE]
        assert hashlib.md5(reply.body).hexdigest()[:12] in url
