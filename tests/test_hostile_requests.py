"""Hostile requests against real servers: a generated corpus of path attacks and malformed
headers, sent over raw sockets (so that nothing on the client side normalises them) to waitress
running ``HashStatic``, and the same path attacks to nginx running the generated configuration.

Every answer must be a 4xx, or a 200/206/304/416 whose bytes are those of a file published
inside the root; never a 5xx, never a byte of the secret that lies next to the root, never a
byte of a dotfile, and never the one-year lifetime for bytes the URL's hash does not name.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import re
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from hashstatic import HashStatic
from hashstatic.build import build, raw_manifest
from hashstatic.cache import iter_files
from hashstatic.files import IMMUTABLE
from hashstatic.manifest import build_manifest, write_manifest
from hashstatic.nginx import nginx_config
from tests.servers import running
from tests.test_nginx import NGINX, Nginx

pytestmark = pytest.mark.slow

# Unique per run, so that no other text on the machine can contain them by chance.
MARKER = b"OUTSIDE-" + secrets.token_hex(16).encode()
DOT_MARKER = b"DOTFILE-" + secrets.token_hex(16).encode()
HASH = 12

SITE = {
    "js/app.js": b"console.log('app');\n" * 50,
    "js/app.js.gz": b"\x1f\x8b gzip of app.js (any bytes will do here)",
    "js/app.js.br": b"brotli of app.js (any bytes will do here)",
    "css/site.css": b"body { background: url(../img/logo.png) }\n",
    "img/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "data/big.bin": bytes(range(256)) * 400,
    "LICENSE": b"MIT\n",
    "index.html": b"<p>a page, not an asset</p>",
    ".env": DOT_MARKER,
    ".git/config": DOT_MARKER,
    "css/.hidden.css": DOT_MARKER,
    "js/.app.js": DOT_MARKER,
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def h(name: str) -> str:
    return md5(SITE[name])[:HASH]


def make_site(base: Path) -> Path:
    """``base/static`` with the files above, and next to it the secret, reachable from inside
    through a file symlink and a directory symlink."""
    root = base / "static"
    for name, data in SITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (base / "secret.txt").write_bytes(MARKER)
    (base / f"secret.{md5(MARKER)[:HASH]}.txt").write_bytes(MARKER)
    add_escapes(root, base)
    (root / "inside.js").symlink_to("js/app.js")  # stays inside: served like any file
    (root / "lib").symlink_to("js")
    return root


def add_escapes(root: Path, base: Path) -> None:
    (root / "outside.txt").symlink_to(base / "secret.txt")
    (root / f"outside.{md5(MARKER)[:HASH]}.txt").symlink_to(base / "secret.txt")
    (root / "outdir").symlink_to(base)
    (root / "css/up.css").symlink_to(base / "secret.txt")
    (root / "dotlink.txt").symlink_to(".env")  # inside, but a dotfile by another name


# --- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    target: bytes  # the request-target, sent byte for byte
    escape: bool  # aims at bytes that must never be served: only a 4xx will do
    method: bytes = b"GET"
    headers: tuple[tuple[bytes, bytes], ...] = ()


DOTDOTS = {
    "plain": "..",
    "enc": "%2e%2e",
    "enc-upper": "%2E%2E",
    "half-enc-1": ".%2e",
    "half-enc-2": "%2e.",
    "double-enc": "%252e%252e",
    "double-enc-upper": "%252E%252E",
    "overlong-2": "%c0%ae%c0%ae",
    "overlong-3": "%e0%80%ae%e0%80%ae",
    "overlong-mixed": ".%c0%ae",
    "iis-u": "%u002e%u002e",
    "fullwidth": "%ef%bc%8e%ef%bc%8e",
    "triple": "...",
}
SEPARATORS = {
    "slash": "/",
    "enc": "%2f",
    "enc-upper": "%2F",
    "double-enc": "%252f",
    "backslash": "\\",
    "enc-backslash": "%5c",
    "enc-backslash-upper": "%5C",
    "overlong-slash": "%c0%af",
    "overlong-slash-3": "%e0%80%af",
    "overlong-backslash": "%c1%9c",
    "double-slash": "//",
    "dot-slash": "/./",
    "semicolon": ";/",
}
STARTS = ["", "css/", "js/", "missing/", "lib/"]


def traversals(secret_abs: str) -> Iterator[Attack]:
    """Every encoding of ``..`` with every separator, from several directories, deep enough to
    reach the secret next to the root."""
    for (dn, dots), (sn, sep), start in itertools.product(
        DOTDOTS.items(), SEPARATORS.items(), STARTS
    ):
        depth = start.count("/") + 1
        for extra in (0, 2):
            path = start + (dots + sep) * (depth + extra) + "secret.txt"
            yield Attack(f"dotdot-{dn}-{sn}-{start or 'root'}-{extra}", _target(path), True)
    # Mixed encodings within one traversal.
    for a, b in itertools.product(DOTDOTS.values(), repeat=2):
        yield Attack(f"dotdot-mixed-{a}-{b}", _target(f"css/{a}/{b}/secret.txt"), True)
    for sep in ("", "/", "%2f", "%2F", "//"):
        yield Attack(f"absolute-{sep}", _target(sep + secret_abs.lstrip("/")), True)
        yield Attack(f"absolute-enc-{sep}", _target(sep + secret_abs.replace("/", "%2f")), True)
    # Off-by-slash (nginx's classic alias bug): "/static../" is outside the prefix.
    yield Attack("off-by-slash", b"/static../secret.txt", True)
    yield Attack("off-by-slash-enc", b"/static%2e%2e/secret.txt", True)
    yield Attack("prefix-dotdot", b"/static/..", True)
    yield Attack("prefix-dotdot-slash", b"/static/../", True)


def _target(path: str) -> bytes:
    return ("/static/" + path).encode("latin-1")


def symlinks() -> Iterator[Attack]:
    secret_hash = md5(MARKER)[:HASH]
    for path in (
        "outside.txt",
        f"outside.{secret_hash}.txt",
        "outside.txt%00",
        "outdir/secret.txt",
        f"outdir/secret.{secret_hash}.txt",
        "outdir%2fsecret.txt",
        "outdir/static/outside.txt",
        "outdir/",
        "css/up.css",
        f"css/up.{secret_hash}.css",
        "dotlink.txt",
        f"dotlink.{md5(DOT_MARKER)[:HASH]}.txt",
    ):
        yield Attack(f"symlink-{path}", _target(path), True)


def dotfiles() -> Iterator[Attack]:
    dot_hash = md5(DOT_MARKER)[:HASH]
    for path in (
        ".env",
        f".env.{dot_hash}",
        "%2eenv",
        "%2Eenv",
        "%252eenv",
        "%c0%aeenv",
        ".env/",
        ".env%00",
        ".env.",
        ".git/config",
        f".git/config.{dot_hash}",
        ".git%2fconfig",
        ".git%5cconfig",
        "%2egit/config",
        "css/.hidden.css",
        f"css/.hidden.{dot_hash}.css",
        "css/%2ehidden.css",
        "css/./.hidden.css",
        "js/.app.js",
        f"js/.app.{dot_hash}.js",
        "js/..app.js",
        "lib/.app.js",
        ".ENV",
        ".Git/config",
    ):
        yield Attack(f"dotfile-{path}", _target(path), True)


def nul_and_utf8() -> Iterator[Attack]:
    for name, path, escape in (
        ("nul-end", "js/app.js%00", False),
        ("nul-ext", "js/app.js%00.png", False),
        ("nul-start", "%00../secret.txt", True),
        ("nul-mid", "js%00/app.js", False),
        ("nul-dotdot", "..%00/secret.txt", True),
        ("utf8-ff", "%ff.js", False),
        ("utf8-overlong-a", "js/%c1%a1pp.js", False),
        ("utf8-surrogate", "js/%ed%a0%80.js", False),
        ("utf8-truncated", "js/app%e2%82.js", False),
        ("utf8-continuation", "js/%80app.js", False),
        ("utf8-5-byte", "js/%f8%88%80%80%80.js", False),
        ("utf8-beyond-max", "js/%f4%90%80%80.js", False),
        ("utf8-bom", "%ef%bb%bfjs/app.js", False),
        ("utf8-nbsp-dotdot", "%c2%a0../secret.txt", True),
    ):
        yield Attack(name, _target(path), escape)
    # Raw bytes in the request line, where the server lets them through.
    for name, raw, escape in (
        ("raw-nul", b"/static/js/app.js\x00.png", False),
        ("raw-nul-dotdot", b"/static/..\x00/secret.txt", True),
        ("raw-ff", b"/static/\xff.js", False),
        ("raw-overlong-dots", b"/static/\xc0\xae\xc0\xae/secret.txt", True),
        ("raw-overlong-slash", b"/static/..\xc0\xafsecret.txt", True),
        ("raw-surrogate", b"/static/\xed\xa0\x80.js", False),
        ("raw-latin1", b"/static/caf\xe9.png", False),
        ("raw-tab", b"/static/js/app.js\t", False),
        ("raw-del", b"/static/js/app.js\x7f", False),
        ("raw-cr", b"/static/js/app.js\r", False),
    ):
        yield Attack(name, raw, escape)


def long_paths() -> Iterator[Attack]:
    yield Attack("long-64k-segments", _target("a/" * 32768 + "app.js"), False)
    yield Attack("long-64k-segment", _target("a" * 65536), False)
    yield Attack("long-segment-256", _target("js/" + "a" * 256 + ".js"), False)
    yield Attack("long-segment-4096", _target("js/" + "a" * 4096 + ".js"), False)
    yield Attack("long-dotdots", _target("../" * 20000 + "secret.txt"), True)
    yield Attack("long-dotdots-enc", _target("%2e%2e%2f" * 7000 + "secret.txt"), True)
    yield Attack("long-many-slashes", _target("/" * 60000 + "secret.txt"), True)
    yield Attack("long-query", _target("js/app.js?" + "q" * 60000), False)
    yield Attack("long-hash", _target("js/app." + "a" * 10000 + ".js"), False)


def tricks() -> Iterator[Attack]:
    app, css = h("js/app.js"), h("css/site.css")
    for path in (
        "js/app.js",  # the files themselves, so that every run shows some 200s
        f"js/app.{app}.js",
        "JS/APP.JS",
        "js/APP.js",
        "js/app.JS",
        f"js/app.{app.upper()}.js",
        f"js/app.{app}.JS",
        f"js/APP.{app}.js",
        "js/app.0123456789ab.js",  # a wrong hash: current bytes, revalidated
        f"js/app.{css}.js",  # the hash of another file
        f"js/app.{app}.{app}.js",  # double hash
        f"js/app.{app[:-1]}.js",  # too short
        f"js/app.{app}0.js",  # too long
        f"js/app.{app[:-1]}g.js",  # not hex
        f"js.{app}/app.js",  # hash on a directory name
        f"js.{app}/",
        f"js/app.{app}.js/",
        f"js/app.{app}.js.gz",
        f"js/app.js.{app}.gz",
        f"lib/app.{app}.js",  # through a directory symlink inside the root
        f"inside.{app}.js",
        "outdir/static/js/app.js",  # out through a symlink and back in: inside after all
        "js//app.js",
        "js/./app.js",
        "js/app.js/",
        "js/app.js/.",
        "js/app.js;",
        "js;/app.js",
        "js/app.js;.png",
        "js/app.js%3b.png",
        "js/app.js#fragment",
        "js/app.js?x=../../secret.txt",
        "js/%61pp.js",  # an encoded plain letter: the same file
        "js%2fapp.js",
        "js/",
        "js",
        "",
        "index.html",
        f"index.{md5(SITE['index.html'])[:HASH]}.html",
        "manifest.json",
    ):
        yield Attack(f"trick-{path or 'empty'}", _target(path), False)
    yield Attack("no-slash-prefix", b"/static", False)
    yield Attack("double-prefix", b"//static/js/app.js", False)
    yield Attack("absolute-form", b"http://127.0.0.1/static/../secret.txt", True)
    yield Attack("asterisk", b"*", False)
    for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH", b"get", b"FOO"):
        yield Attack(f"method-{method.decode()}", _target(f"js/app.{app}.js"), False, method)
        yield Attack(f"method-{method.decode()}-escape", _target("../secret.txt"), True, method)


def path_attacks(secret_abs: str) -> list[Attack]:
    return [
        *traversals(secret_abs),
        *symlinks(),
        *dotfiles(),
        *nul_and_utf8(),
        *long_paths(),
        *tricks(),
    ]


def header_attacks() -> list[Attack]:
    """Malformed and extreme conditional, range and encoding headers on files that exist."""
    targets = [
        _target(f"js/app.{h('js/app.js')}.js"),
        _target("data/big.bin"),
        _target(f"css/site.{'0' * HASH}.css"),
        b"/",  # a page, whose validators the middleware rewrites
    ]
    n = len(SITE["data/big.bin"])
    values: list[tuple[bytes, bytes]] = []
    for value in (
        "garbage",
        "bytes=",
        "bytes=-",
        "bytes=-0",
        "bytes=0-0",
        "bytes=-1",
        "bytes=1-0",
        "bytes=--1",
        "bytes=-1-2",
        "bytes=1--2",
        "bytes=0-1,2-3",
        "bytes=0-0," * 2000 + "0-0",
        "bytes=0-1, 0-1, 0-1",
        f"bytes={n}-",
        f"bytes={n - 1}-",
        f"bytes=-{n * 10}",
        "bytes=" + "9" * 30 + "-",
        "bytes=0-" + "9" * 30,
        "bytes=" + "9" * 5000 + "-",
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "9" * 5000,
        "bytes=" + "0" * 5000 + "1-2",
        "bytes=18446744073709551616-18446744073709551617",
        "bytes=0-" + " " * 20000 + "x",
        "bytes=" + " " * 20000 + "x",
        "bytes = 1 - 2",
        "bytes=1.5-2",
        "bytes=0x10-0x20",
        "bytes=１-２",
        "bits=0-1",
        "bytes=" + "0-0," * 20000,
    ):
        values.append((b"Range", value.encode()))
    for value in (
        "garbage",
        '"',
        '"unbalanced',
        'unbalanced"',
        '""',
        '"a""b"',
        "*",
        "*, *",
        'W/"x", *',
        "W/",
        'W/"',
        ",,,,",
        '"a",' * 5000,
        '"' + "," * 20000,
        "W/" * 20000,
        '"x" ' * 10000,
        f'"{md5(SITE["js/app.js"])}',
        f'{md5(SITE["js/app.js"])}"',
    ):
        values.append((b"If-None-Match", value.encode()))
    for value in (
        "garbage",
        "",
        "0",
        "-1",
        formatdate(4102444800, usegmt=True),  # 2100
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sat, 01 Jan 10000 00:00:00 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "Mon, 01 Jan 1900 00:00:00 GMT",
        "Mon, 32 Jan 2020 25:61:61 GMT",
        "Mon, 01 Jan 2020 00:00:00 +9999",
        "Mon, 01 Jan " + "9" * 5000 + " 00:00:00 GMT",
        "Mon" * 10000,
    ):
        values.append((b"If-Modified-Since", value.encode()))
        values.append((b"If-Range", value.encode()))
    for value in (
        "garbage",
        "gzip;q=nan",
        "br;q=NaN, gzip;q=inf",
        "gzip;q=-1",
        "gzip;q=2",
        "gzip;q=1e400",
        "gzip;q=0.5.5",
        "gzip;q=",
        "gzip;;;q=1",
        "*;q=0",
        "identity;q=0, *;q=0",
        "gzip;q=0.0001",
        ",,,,,,",
        "gzip;q=0.5," * 5000,
        "gzip" + " " * 20000 + "x",
        "gzip;q=" + "1" * 20000,
        "x" * 60000,
    ):
        values.append((b"Accept-Encoding", value.encode()))
    values.append((b"Range", b"bytes=\xff-\xfe"))
    values.append((b"If-None-Match", b'"\xff\xfe"'))
    values.append((b"Accept-Encoding", b"gz\xffip"))
    attacks = []
    for target, (name, raw) in itertools.product(targets, values):
        label = f"{name.decode()}-{raw[:24]!r}-{target.decode()}"
        attacks.append(Attack(label, target, False, headers=((name, raw),)))
    for target in targets:
        attacks.append(
            Attack("head-with-range", target, False, b"HEAD", ((b"Range", b"bytes=0-0"),))
        )
        attacks.append(
            Attack("headers-repeated", target, False, headers=((b"Range", b"bytes=0-1"),) * 50)
        )
    return attacks


# --- the client -------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int  # 0: the connection ended without a complete response
    headers: list[tuple[str, str]]
    body: bytes
    error: str = ""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


def send(port: int, attack: Attack) -> Reply:
    """Send ``attack`` exactly as its bytes are, and read the answer."""
    lines = [attack.method + b" " + attack.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in attack.headers]
    lines += [b"Connection: close", b"", b""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines))
        response = http.client.HTTPResponse(sock, method=attack.method.decode())
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, OSError) as error:
            return Reply(0, [], b"", f"{type(error).__name__}: {error}")
        finally:
            response.close()
    return Reply(response.status, response.getheaders(), body)


# --- the oracle -------------------------------------------------------------------------------


@dataclass
class Verdict:
    sent: int = 0
    errors: list[str] = field(default_factory=list)  # 5xx, broken answers, wrong bytes
    leaks: list[str] = field(default_factory=list)  # a secret's bytes in a body
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self, what: str) -> str:
        seen = ", ".join(f"{n} x {status}" for status, n in sorted(self.statuses.items()))
        return f"{self.sent} {what} ({seen}): {len(self.errors)} errors, {len(self.leaks)} leaks"


@dataclass
class Published:
    """The bodies a server may legitimately send."""

    plain: set[bytes] = field(default_factory=set)
    # A precompressed sibling's bytes -> the hashes of the file it encodes.
    encoded: dict[bytes, set[str]] = field(default_factory=dict)

    def names(self, body: bytes, coding: str | None) -> set[str]:
        """The hashes a URL may carry for ``body`` to be immutable; empty if it is not
        published at all."""
        if coding is None:
            return {md5(body)[:HASH]} if body in self.plain else set()
        return self.encoded.get(body, set())

    def __or__(self, other: Published) -> Published:
        encoded = {
            k: self.encoded.get(k, set()) | other.encoded.get(k, set())
            for k in self.encoded.keys() | other.encoded.keys()
        }
        return Published(self.plain | other.plain, encoded)


def judge(attack: Attack, reply: Reply, published: Published, verdict: Verdict) -> None:
    """Record what is wrong with ``reply`` to ``attack``, if anything."""
    verdict.sent += 1
    verdict.statuses[reply.status] += 1
    where = f"{attack.name} {attack.target[:80]!r}"
    if MARKER in reply.body or DOT_MARKER in reply.body:
        verdict.leaks.append(f"{where}: {reply.status} with a secret in the body")
    status = reply.status
    if status == 0 or status >= 500:
        verdict.errors.append(f"{where}: {status} {reply.error} {reply.body[:200]!r}")
        return
    if 400 <= status < 500:
        return
    location = reply.header("Location") or ""
    if status == 301 and not attack.escape and location.endswith(attack.target.decode() + "/"):
        return  # nginx sends a directory's URL on with its slash
    if attack.escape or status not in (200, 206, 304, 416):
        verdict.errors.append(f"{where}: {status}, not a 4xx")
        return
    body = reply.body
    if status == 304:
        conditional = {b"if-none-match", b"if-modified-since"}
        if body or not any(name.lower() in conditional for name, _ in attack.headers):
            verdict.errors.append(f"{where}: 304 to an unconditional request, or with a body")
        return
    if status == 416:
        if not re.fullmatch(r"bytes \*/\d+", reply.header("Content-Range") or ""):
            verdict.errors.append(f"{where}: 416 without Content-Range: bytes */N")
        return
    if attack.method == b"HEAD":
        return
    coding = reply.header("Content-Encoding")
    if status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", reply.header("Content-Range") or "")
        if match is None:
            verdict.errors.append(f"{where}: 206 without a single Content-Range")
            return
        first, last, size = map(int, match.groups())
        wholes = published.plain if coding is None else published.encoded.keys()
        if not any(len(whole) == size and whole[first : last + 1] == body for whole in wholes):
            verdict.errors.append(f"{where}: 206 bytes of no published file")
        return
    names = published.names(body, coding)
    if not names:
        verdict.errors.append(f"{where}: 200 with bytes of no published file: {body[:80]!r}")
    elif IMMUTABLE in (reply.header("Cache-Control") or "") and not any(
        name.encode() in attack.target for name in names
    ):
        verdict.errors.append(f"{where}: immutable, but the URL's hash is not of these bytes")


# --- the servers ------------------------------------------------------------------------------

PAGE = b'<p>home</p><script src="/static/js/app.js"></script><img src="/static/img/logo.png">'
# Relative URLs too, so that the rewriter resolves them against every hostile page URL.
NOT_FOUND = (
    b'<p>not found here</p><script src="/static/js/app.js"></script>'
    b'<img src="../static/img/logo.png"><img src="static/img/logo.png"><a href="./x">x</a>'
)


def fallback(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The wrapped application: a home page with validators, and a 404 page that links an
    asset for everything else."""
    if environ["PATH_INFO"] == "/":
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("ETag", '"home-1"'),
            ("Last-Modified", formatdate(1_700_000_000, usegmt=True)),
        ]
        start_response("200 OK", headers)
        return [PAGE]
    start_response("404 Not Found", [("Content-Type", "text/html; charset=utf-8")])
    return [NOT_FOUND]


def published_bodies(app: Any, root: Path) -> Published:
    """Every body a server may legitimately send: each regular file under ``root`` as it is
    on disk and as ``app`` serves it (stylesheets rewritten), precompressed siblings as the
    encodings of their originals, and the pages of the app."""
    published = Published({Request.blank(p).get_response(app).body for p in ("/", "/nothing")})
    for path in iter_files(root):
        raw = (root / path).read_bytes()
        served = Request.blank("/static/" + path).get_response(app).body
        published.plain |= {raw, served}
        original = root / path[:-3]
        if path.endswith((".gz", ".br")) and original.is_file():
            names = {md5(original.read_bytes())[:HASH]}
            names.add(md5(Request.blank("/static/" + path[:-3]).get_response(app).body)[:HASH])
            published.encoded.setdefault(raw, set()).update(names)
    return published


def run_corpus(port: int, attacks: list[Attack], published: Published) -> Verdict:
    verdict = Verdict()
    for attack in attacks:
        judge(attack, send(port, attack), published, verdict)
    return verdict


def middleware(root: Path, tmp_path: Path, mode: str, strict: bool = False) -> HashStatic:
    if mode == "dev":
        return HashStatic(fallback, root=root, strict=strict)
    write_manifest(build_manifest(root), tmp_path / "manifest.json")
    return HashStatic(fallback, root=root, strict=strict, manifest=tmp_path / "manifest.json")


MODES = [
    pytest.param("dev", False, id="dev"),
    pytest.param("dev", True, id="dev-strict"),
    pytest.param("frozen", False, id="manifest"),
]


# --- waitress -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "strict"), MODES)
def test_path_attacks_on_waitress(
    tmp_path: Path, figures: Callable[[str], None], mode: str, strict: bool
) -> None:
    root = make_site(tmp_path)
    app = middleware(root, tmp_path, mode, strict)
    attacks = path_attacks(str(tmp_path / "secret.txt"))
    with running(app) as port:
        verdict = run_corpus(port, attacks, published_bodies(app, root))
    figures(verdict.summary("path attacks sent to waitress"))
    assert verdict.statuses[200] > 0  # the legitimate requests among them were served
    assert verdict.leaks == []
    assert verdict.errors == []


@pytest.mark.parametrize(("mode", "strict"), MODES)
def test_header_attacks_on_waitress(
    tmp_path: Path, figures: Callable[[str], None], mode: str, strict: bool
) -> None:
    root = make_site(tmp_path)
    app = middleware(root, tmp_path, mode, strict)
    with running(app) as port:
        verdict = run_corpus(port, header_attacks(), published_bodies(app, root))
    figures(verdict.summary("malformed-header requests sent to waitress"))
    assert verdict.statuses[206] > 0 and verdict.statuses[304] > 0
    assert verdict.leaks == []
    assert verdict.errors == []


def naive(root: Path) -> Callable[..., Iterable[bytes]]:
    """A static server with no defences: the corpus must catch it out."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = os.path.join(root, environ["PATH_INFO"].removeprefix("/static/"))
        try:
            with open(path, "rb") as file:
                data = file.read()
        except (OSError, ValueError):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no"]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]

    return app


def test_the_corpus_catches_a_server_without_defences(tmp_path: Path) -> None:
    root = make_site(tmp_path)
    attacks = path_attacks(str(tmp_path / "secret.txt"))
    with running(naive(root)) as port:
        verdict = run_corpus(port, attacks, published_bodies(HashStatic(fallback, root), root))
    caught = {name.split("-")[0] + "-" + name.split("-")[1] for name in verdict.leaks}
    for kind in ("dotdot-plain", "dotdot-enc", "symlink-outside.txt", "dotfile-.env"):
        assert any(found.startswith(kind) for found in caught), kind


# --- nginx --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/test installs it)")
@pytest.mark.parametrize("shape", ["build", "source"])
def test_path_attacks_on_nginx(tmp_path: Path, figures: Callable[[str], None], shape: str) -> None:
    site = make_site(tmp_path / "src")
    base = tmp_path / "out"
    if shape == "build":
        root = base / "static"
        build(site, root)
        for name, data in SITE.items():
            if name.rpartition("/")[2].startswith(".") or "/." in name:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        (base / "secret.txt").write_bytes(MARKER)
        add_escapes(root, base)
        manifest_path = root / "manifest.json"
    else:
        root, base = site, tmp_path / "src"
        manifest = raw_manifest(site)
        manifest_path = tmp_path / "raw.json"
        write_manifest(manifest, manifest_path)
    upstream = HashStatic(fallback, root=site, serve=False, manifest=manifest_path)
    nginx = Nginx(tmp_path / "nginx")
    (tmp_path / "nginx").mkdir()
    attacks = path_attacks(str(base / "secret.txt"))
    published = published_bodies(upstream, root)
    try:
        with running(upstream) as app_port:
            port = _free_port()
            upstream_at, listen = f"127.0.0.1:{app_port}", f"127.0.0.1:{port}"
            if shape == "build":
                config = nginx_config(root, build=True, upstream=upstream_at, listen=listen)
            else:
                config = nginx_config(root, manifest=manifest, upstream=upstream_at, listen=listen)
            nginx(config, port)
            verdict = run_corpus(port, attacks, published)
    finally:
        nginx.stop()
    figures(verdict.summary(f"path attacks sent to nginx ({shape} shape)"))
    assert verdict.statuses[200] > 0
    assert verdict.leaks == []
    assert verdict.errors == []
