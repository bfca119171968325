"""A directory as a website: the app that ``hashstatic serve --root DIR`` runs with no app.

Files are served at ``/`` and a directory's ``index.html`` answers for the directory. It is
meant to sit inside :class:`~hashstatic.HashStatic` (root ``DIR``, prefix ``/``): that layer
serves the assets, hashed or not, and rewrites the HTML pages this app returns, which is all
that reaches it apart from directories and missing files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from typing import IO
from wsgiref.types import StartResponse, WSGIEnvironment

from webob import Request, Response
from webob.exc import HTTPMethodNotAllowed, HTTPMovedPermanently, HTTPNotFound

from hashstatic.mimetypes import content_type

_BLOCK_SIZE = 64 * 1024


class Site:
    """Serve the files under ``root`` at ``/``; a directory serves its ``index.html``."""

    def __init__(self, root: str | os.PathLike[str], *, index: str = "index.html") -> None:
        # Resolved once: every request is checked against the real path, symlinks included.
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ValueError(f"{os.fspath(root)!r} is not a directory: give an existing --root")
        # The file that answers for a directory URL ending in "/".
        self.index = index

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)  # type: ignore[no-any-return]

    def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})
        raw_path = request.environ.get("PATH_INFO", "")
        path = self.resolve(raw_path)
        if path is None:
            return HTTPNotFound()
        try:
            info = os.stat(path)
        except OSError:
            return HTTPNotFound()
        if stat.S_ISDIR(info.st_mode):
            if not raw_path.endswith("/"):
                # Relative URLs in the index page resolve against the directory only when
                # its URL ends in "/".
                location = request.path_url + "/"
                if request.query_string:
                    location += "?" + request.query_string
                return HTTPMovedPermanently(location=location)
            path = os.path.join(path, self.index)
            try:
                info = os.stat(path)
            except OSError:
                return HTTPNotFound()
        if not stat.S_ISREG(info.st_mode):
            return HTTPNotFound()
        return self.file_response(path)

    def resolve(self, path_info: str) -> str | None:
        """The file system path for a URL path, or None when it must not be served."""
        try:
            # PEP 3333 carries the raw path bytes as latin-1; file names are UTF-8.
            text = path_info.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return None
        if "\\" in text or "\0" in text:
            return None
        parts = [part for part in text.split("/") if part]
        # ".", ".." and dotfiles (.git, .env) are never part of a published site.
        if any(part.startswith(".") for part in parts):
            return None
        path = os.path.realpath(os.path.join(self.root, *parts))
        if path != self.root and not path.startswith(self.root + os.sep):
            return None  # a symlink that leaves the root
        return path

    def file_response(self, path: str) -> Response:
        try:
            file = open(path, "rb")  # noqa: SIM115 -- closed by the response body
        except OSError:
            return HTTPNotFound()
        # The headers describe the file that was opened, even if it was replaced since.
        info = os.fstat(file.fileno())
        response = Response(
            app_iter=_FileBody(file),
            content_length=info.st_size,
            conditional_response=True,
        )
        # Set raw: WebOb would otherwise add a charset of its own choosing to text types.
        response.headers["Content-Type"] = content_type(path)
        response.last_modified = info.st_mtime
        response.etag = f"{info.st_mtime_ns:x}-{info.st_size:x}"
        # Pages change without changing their URL: the browser asks again every time.
        response.cache_control = "no-cache"
        return response


class _FileBody:
    """An open file as a WSGI body that can be cut to a byte range and is always closed."""

    def __init__(self, file: IO[bytes], start: int = 0, stop: int | None = None) -> None:
        self.file = file
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        left = None if self.stop is None else self.stop - self.start
        while left is None or left > 0:
            block = self.file.read(_BLOCK_SIZE if left is None else min(_BLOCK_SIZE, left))
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block

    def app_iter_range(self, start: int, stop: int | None) -> _FileBody:
        # WebOb calls this for a Range request; the range shares (and closes) the file.
        return _FileBody(self.file, start, stop)

    def close(self) -> None:
        self.file.close()
