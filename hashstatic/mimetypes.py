"""The ``Content-Type`` of a published file, from its extension alone.

The table is ours rather than the system's: ``mimetypes.guess_type`` reads ``/etc/mime.types``
and the Windows registry, so one file could be served with a different type on each machine
(``.js`` as ``application/x-javascript`` on some), and it treats ``.gz``/``.br`` as encodings of
the inner type, which is wrong for a file published as-is. Python's built-in defaults are the
base, overridden by the types the web platform expects today.
"""

from __future__ import annotations

import mimetypes as _stdlib

__all__ = ["content_type", "is_text"]

_OVERRIDES = {
    ".js": "text/javascript",  # RFC 9239: text/javascript is the one current type
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".json": "application/json",
    ".jsonld": "application/ld+json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",  # needed by WebAssembly.instantiateStreaming
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".svg": "image/svg+xml",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".apng": "image/apng",
    ".ico": "image/x-icon",  # what nginx sends; every browser takes it
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",  # a published archive, not a Content-Encoding
    ".br": "application/octet-stream",
}

_DEFAULT = "application/octet-stream"


def _build_table() -> dict[str, str]:
    # A fresh MimeTypes instance holds only Python's built-in defaults (the system files are
    # read into the module-level tables, not into new instances), so the table is the same on
    # every machine running one Python version.
    table = dict(_stdlib.MimeTypes().types_map[True])
    table.update(_OVERRIDES)
    return table


_TABLE = _build_table()


def is_text(media_type: str) -> bool:
    """Whether ``media_type`` is text that gets ``; charset=utf-8``."""
    return (
        media_type.startswith("text/")
        or media_type in ("application/javascript", "application/json", "application/xml")
        or media_type.endswith(("+json", "+xml"))
    )


def content_type(path: str) -> str:
    """The full ``Content-Type`` value for a file named ``path`` (only its extension counts)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    # "name.ext" only: a dotfile's whole name is not an extension.
    media_type = _TABLE.get(name[dot:].lower(), _DEFAULT) if dot > 0 else _DEFAULT
    return f"{media_type}; charset=utf-8" if is_text(media_type) else media_type
