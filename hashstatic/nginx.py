"""nginx configuration that serves hashed URLs as the middleware would, with no Python.

Two shapes, both keeping SPEC 2's invariant (a URL's hash is the MD5 of the bytes sent there):

* **build directory** (``hashstatic build``): every file there is named by the MD5 of its own
  bytes, so a hashed name that exists is correct and is served with the one-year lifetime;
  a hash that does not exist is a 404, never a stale file.
* **source root**: one exact ``location =`` per file maps ``name.<hash>.ext`` to ``name.ext``
  for the hash current when the configuration was generated, from a manifest of the files'
  raw bytes. Any other URL under the prefix is the file as it is, revalidated (``no-cache``).
  ``map`` would be shorter but is an ``http``-level directive, and the snippet must work when
  included inside a ``server``.

The output is a snippet of ``location`` blocks, or with ``upstream`` a complete ``server``
block proxying everything else to the application. The same inputs give the same text.
"""

from __future__ import annotations

import hashlib
import os
import re

from hashstatic.build import LOG, MANIFEST
from hashstatic.cache import check_hash_length, check_root
from hashstatic.manifest import Manifest, check_prefix

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Text types are sent with charset=utf-8, as the middleware sends them.
_CHARSET_TYPES = "text/css text/plain text/xml application/javascript application/json"
_LISTEN = re.compile(r"(\[[0-9a-fA-F:.]+\]:|[A-Za-z0-9.-]+:)?[0-9]{1,5}")
_UPSTREAM = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


class ConfigError(ValueError):
    """Inputs nginx configuration cannot be written for; the message says what to fix."""


def quote(value: str) -> str:
    """``value`` as an nginx string literal.

    nginx expands ``$name`` in most arguments and has no escape for ``$``; control
    characters would end the directive. Names with either cannot be published safely.
    """
    if "$" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(
            f"{value!r} contains '$' or a control character, which nginx configuration "
            "cannot express: rename the file"
        )
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hashed_pattern(hash_length: int) -> str:
    """The regex of a last path segment holding a hash (see :func:`naming.split_hash`)."""
    return rf"[^/]\.[0-9a-f]{{{hash_length}}}(\.[^./]*)?$"


def _common(indent: str, symlinks: str) -> list[str]:
    # `expires off` stops an `expires` of the server from adding a second Cache-Control.
    return [
        f"{indent}disable_symlinks {symlinks};",
        f"{indent}expires off;",
        f"{indent}gzip_static on;",
        f"{indent}gzip_vary on;",
        f"{indent}charset utf-8;",
        f"{indent}charset_types {_CHARSET_TYPES};",
    ]


def _prefix_location(prefix: str, root: str, inner: list[str]) -> list[str]:
    """The ``prefix`` location: files as they are, revalidated; dotfiles 404."""
    return [
        f"location ^~ {quote(prefix)} {{",
        f"    alias {quote(root + '/')};",
        # Symlinks are refused below the root (they could leave it); build copies are files.
        *_common("    ", "on from=$document_root"),
        f'    add_header Cache-Control "{REVALIDATE}";',
        '    location ~ "/\\." {',
        "        return 404;",
        "    }",
        *inner,
        "}",
    ]


def build_locations(root: str | os.PathLike[str], *, prefix: str = "/static/") -> list[str]:
    """Locations serving a build directory (its manifest gives the hash length)."""
    check_prefix(prefix)
    real = check_root(root)
    manifest_path = os.path.join(real, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise ConfigError(
            f"{real} has no {MANIFEST}: pass the --out directory of `hashstatic build`, "
            "or leave out --build to serve the source root"
        )
    from hashstatic.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    hashed = [
        f'    location ~ "{hashed_pattern(manifest.hash_length)}" {{',
        f'        add_header Cache-Control "{IMMUTABLE}";',
        "    }",
    ]
    manifest_location = [
        # The deploy's own bookkeeping, not an asset.
        f"    location = {quote(prefix + MANIFEST)} {{",
        "        return 404;",
        "    }",
    ]
    header = [
        f"# hashstatic: build directory {real} at {prefix} "
        f"({manifest.hash_length}-hex hashes; {LOG} lists the builds)"
    ]
    return header + _prefix_location(prefix, real, manifest_location + hashed)


def source_locations(root: str | os.PathLike[str], manifest: Manifest) -> list[str]:
    """Locations serving the source root, hashed URLs only for ``manifest``'s hashes.

    Each entry is checked against the file's bytes now: a manifest whose hash is not the
    MD5 of the file (a stylesheet hashed after rewriting, a file changed since) would pin
    the wrong bytes under an immutable URL.
    """
    check_hash_length(manifest.hash_length)
    real = check_root(root)
    prefix = manifest.prefix
    lines = [
        f"# hashstatic: source root {real} at {prefix} "
        f"({len(manifest.files)} files, {manifest.hash_length}-hex hashes)"
    ]
    for path in sorted(manifest.files):
        asset = manifest.files[path]
        file = os.path.join(real, *path.split("/"))
        target = os.path.realpath(file)
        if not target.startswith(real + os.sep):
            raise ConfigError(f"{file} leads outside {real}: remove it or the symlink")
        if _md5(target) != asset.digest:
            raise ConfigError(
                f"{file} does not have the MD5 the manifest gives it: regenerate the manifest "
                "from the files as they are now (`hashstatic nginx --write-manifest FILE`; the "
                "source-root shape hashes raw bytes, stylesheets are not rewritten)"
            )
        lines += [
            f"location = {quote(prefix + asset.hashed)} {{",
            f"    alias {quote(target)};",
            *_common("    ", "on"),
            f'    add_header Cache-Control "{IMMUTABLE}";',
            "}",
        ]
    return lines + _prefix_location(prefix, real, [])


def _md5(path: str) -> str | None:
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(256 * 1024):
                md5.update(chunk)
    except OSError:
        return None
    return md5.hexdigest()


def server_block(locations: list[str], *, upstream: str, listen: str = "80") -> list[str]:
    """A ``server`` (to include inside ``http``) with ``locations`` and the app behind it."""
    if not _UPSTREAM.fullmatch(upstream):
        raise ConfigError(f"--upstream {upstream!r}: give HOST:PORT, e.g. 127.0.0.1:8000")
    if not _LISTEN.fullmatch(listen):
        raise ConfigError(f"--listen {listen!r}: give PORT or HOST:PORT, e.g. 0.0.0.0:80")
    return [
        "server {",
        f"    listen {listen};",
        *("    " + line if line else "" for line in locations),
        "    location / {",
        f"        proxy_pass http://{upstream};",
        # $http_host keeps the port, so the app sees its own origin as browsers do.
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_http_version 1.1;",
        "    }",
        "}",
    ]


def nginx_config(
    root: str | os.PathLike[str],
    *,
    prefix: str = "/static/",
    build: bool = False,  # root is a `hashstatic build` output directory
    manifest: Manifest | None = None,  # source root: the raw-bytes manifest to publish
    upstream: str | None = None,  # HOST:PORT of the app: a whole server block
    listen: str = "80",
) -> str:
    if build:
        locations = build_locations(root, prefix=prefix)
    else:
        if manifest is None:
            raise ConfigError("the source-root shape needs the manifest of the files")
        if manifest.prefix != prefix:
            raise ConfigError(
                f"the manifest is for prefix {manifest.prefix!r}, not {prefix!r}: pass "
                f"--prefix {manifest.prefix} or regenerate it"
            )
        locations = source_locations(root, manifest)
    if upstream is not None:
        locations = server_block(locations, upstream=upstream, listen=listen)
    return "\n".join(locations) + "\n"
