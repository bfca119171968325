"""``HashStatic``: the WSGI middleware that ties naming, the hash cache, the rewriter and the
file server together.

Data flows one way: a request under the prefix is answered from disk (``serve=True``) or falls
through; every other request goes to the wrapped app, and an HTML response comes back through
the rewriter -- streamed chunk by chunk, or whole when the app already holds it whole.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

from hashstatic import conditional
from hashstatic.cache import Asset, AssetIndex, DiskIndex, FrozenIndex, Vouched
from hashstatic.files import FileServer
from hashstatic.html import HtmlRewriter, assets_of, seen_tags, splice_page
from hashstatic.manifest import check_prefix, load_manifest
from hashstatic.urls import (
    MEMO_MAX_URL,
    Memo,
    UrlRewriter,
    _PageFacts,
    page_facts,
    remember,
    split_url,
)

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_SEQUENCES = (list, tuple)  # a body the app already holds whole
_HTML_TYPES = {"text/html": False, "application/xhtml+xml": True}
# Content-Type values as apps send them, read (see _html_type): an app sends a few.
_CONTENT_TYPES: dict[str, bool | None] = {}
_URL_SAFE = "/-._~!$()*+,;=:@"
# A path quote() would give back as it is (its unreserved characters, _URL_SAFE and "%").
_QUOTED_AS_IS = re.compile(r"[A-Za-z0-9/\-._~!$()*+,;=:@%]*").fullmatch
# A Host header that names a host: a registered name or an IP literal, and a port.
_HOST = re.compile(r"(?:[\w\-.~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?", re.ASCII).fullmatch


class HashStatic:
    """Rewrite asset URLs in HTML responses to content-hashed URLs, and serve them."""

    def __init__(
        self,
        app: WSGIApp,
        root: str | os.PathLike[str] = "static",
        prefix: str = "/static/",
        *,
        # Answer requests under the prefix from root; off when nginx serves them.
        serve: bool = True,
        # Hex characters of the MD5 kept in URLs: short enough to read, long enough to be unique.
        hash_length: int = 12,
        # Frozen mode for production: hashes from a file, no file system access per page.
        manifest: str | os.PathLike[str] | None = None,
        # A hashed URL whose hash is stale gets 404 instead of the current file uncached.
        strict: bool = False,
        # Where rewritten URLs point, e.g. a CDN; replaces the origin and prefix.
        url_base: str | None = None,
        # Subresource Integrity on rewritten scripts and stylesheets.
        integrity: bool = False,
        # Learn of changed files from the kernel (Linux inotify, local disks) instead of a
        # stat per file per response; where that cannot be had, stat anyway.
        watch: bool = True,
    ) -> None:
        if not callable(app):
            raise TypeError("HashStatic(app, ...): app must be a WSGI application (a callable)")
        self.app = app
        self.prefix = check_prefix(prefix)
        if (
            isinstance(hash_length, bool)
            or not isinstance(hash_length, int)
            or not (8 <= hash_length <= 32)
        ):
            raise ValueError(f"hash_length={hash_length!r}: use a whole number from 8 to 32")
        self.hash_length = hash_length
        self.serve = serve
        self.strict = strict
        self.integrity = integrity
        self.url_base = _check_url_base(url_base)
        self.root = os.fspath(root)
        self.index: AssetIndex
        if manifest is not None:
            frozen = load_manifest(manifest)
            if frozen.prefix != self.prefix:
                raise ValueError(
                    f"manifest {os.fspath(manifest)!r} was made for prefix {frozen.prefix!r}, "
                    f"not {self.prefix!r}: pass prefix={frozen.prefix!r} or regenerate it "
                    f"with `hashstatic manifest --prefix {self.prefix}`"
                )
            if frozen.hash_length != hash_length:
                raise ValueError(
                    f"manifest {os.fspath(manifest)!r} uses hash_length={frozen.hash_length}, "
                    f"not {hash_length}: pass hash_length={frozen.hash_length} or regenerate it"
                )
            self.index = FrozenIndex(frozen, root=self.root if serve else None)
            self._manifest_mtime = os.stat(manifest).st_mtime
            if serve and not os.path.isdir(self.root):
                raise ValueError(
                    f"static root {self.root!r} does not exist: create it, pass root= the "
                    "directory that holds your assets, or serve=False when nginx serves them"
                )
        else:
            self.index = DiskIndex(
                self.root, hash_length=hash_length, prefix=self.prefix, watch=watch
            )
            # With the file server, it says what it cannot serve (once): one line a problem.
            self.index.warn = not serve
            self._manifest_mtime = 0.0
        # How each URL text resolves, shared by all responses (bounded in urls).
        self._url_memo: Memo = {}
        # Fixed for the life of an index: a manifest's, or None for the disk.
        self._fingerprint = self.index.fingerprint
        self._files = FileServer(self.index, self.root, strict=strict) if serve else None
        if self._files is not None:
            self._prepared = self._files.prepared.respond

    # --- URLs for templates -----------------------------------------------------------------

    def url(self, path: str) -> str:
        """The public URL of an asset: hashed when it exists, as given when it does not."""
        path = path.lstrip("/")
        asset = self.index.lookup(path, integrity=False)
        name = asset.hashed if asset is not None else path
        return (self.url_base or self.prefix) + quote(name, safe=_URL_SAFE)

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._files is not None:
            # A hashed URL answered before, answered again as it was (see prepared).
            prepared = self._prepared(environ, start_response)
            if prepared is not None:
                return prepared
            path = environ.get("PATH_INFO", "")
            if path.startswith(self.prefix):
                responder = self._files.serve(environ, path[len(self.prefix) :])
                if responder is not None:
                    return responder(environ, start_response)
        environ["hashstatic.url"] = self.url
        exchange = _Exchange(self, environ, start_response)
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
            exchange.prepare_request()
        result = self.app(environ, exchange.start_response)
        try:
            return exchange.finish(result)
        except BaseException:
            # The server refused the headers, or the body could not be rewritten: nobody
            # else holds the app's iterable now, and PEP 3333 wants it closed.
            exchange.close_result(result)
            raise

    def _lookup(self) -> tuple[Callable[[str], Asset | None], Vouched | None]:
        """A response's lookup, and what the kernel vouches for (see Vouched) when the index
        watches."""
        # Each distinct file is stat'ed at most once per response.
        memo: dict[str, Asset | None] = {}
        index, integrity = self.index, self.integrity
        vouched = index.vouched(memo) if isinstance(index, DiskIndex) else None

        def lookup(path: str) -> Asset | None:
            try:
                return memo[path]
            except KeyError:
                # A stylesheet's dependencies are checked through the same memo.
                found = memo[path] = index.lookup(path, integrity=integrity, seen=memo)
                return found

        return lookup, vouched

    @property
    def frozen(self) -> bool:
        return self._fingerprint is not None


def _check_url_base(url_base: str | None) -> str | None:
    if url_base is None:
        return None
    parts = (
        split_url(url_base, ("http", "", 80))
        if "://" in url_base or url_base.startswith("//")
        else None
    )
    if not url_base.endswith("/") or (parts is None and not url_base.startswith("/")):
        raise ValueError(
            f"url_base={url_base!r}: use an absolute http(s) URL or a path ending with '/', "
            "e.g. 'https://cdn.example.com/static/'"
        )
    return url_base


def _html_type(content_type: str) -> bool | None:
    """Whether a Content-Type value names XHTML, HTML (False) or neither (None)."""
    try:
        return _CONTENT_TYPES[content_type]
    except KeyError:
        found = _HTML_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if len(_CONTENT_TYPES) < 64 and len(content_type) <= 128:
            _CONTENT_TYPES[content_type] = found
        return found


def _page_url(environ: Environ) -> str:
    """The page's URL as the rewriter resolves its URLs against: from the Host header when
    it names a host (RFC 3986), else from what the server says it is (a client's
    ``Host: a@b`` or ``Host: h/static`` must neither fail the response nor move the page)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    if scheme != "http" and scheme != "https":
        scheme = "http"
    host = environ.get("HTTP_HOST")
    if not host or not _HOST(host):
        host = environ.get("SERVER_NAME", "localhost")
        port = environ.get("SERVER_PORT", "")
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
        if not _HOST(host):
            host = "localhost"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if not _QUOTED_AS_IS(path):
        path = quote(path.encode("latin-1", "replace"), safe=_URL_SAFE + "%")
    return f"{scheme}://{host}{path or '/'}"


class _Exchange:
    """One request/response through the middleware."""

    __slots__ = (
        "owner",
        "environ",
        "server_start_response",
        "_server_write",
        "status",
        "headers",
        "started",
        "html",
        "rewriter",
        "client_tags",
        "result_closed",
        "translated",
        "has_etag",
    )

    def __init__(self, owner: HashStatic, environ: Environ, start_response: StartResponse) -> None:
        self.owner = owner
        self.environ = environ
        self.server_start_response = start_response
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.started = False  # the server's start_response has been called
        # The body is HTML to rewrite: whether it is XHTML (None: it is left alone).
        self.html: bool | None = None
        # Made when first needed: a whole page seen before may need none (see _whole).
        self.rewriter: HtmlRewriter | None = None
        self.client_tags: list[str] = []  # the client's If-None-Match, for our own 304
        self.result_closed = False  # the app's iterable has been closed (by us)
        self.translated: dict[str, str] = {}  # app ETag -> the tag we gave the client
        self.has_etag = False  # the app's headers hold an ETag

    # Request side: conditional headers the app would answer without knowing asset state.
    def prepare_request(self) -> None:
        env = self.environ
        inm = env.get("HTTP_IF_NONE_MATCH")
        if inm:
            tags = conditional.split_etags(inm)
            ours = [t for t in tags if conditional.strip_fingerprint(t) is not None]
            if ours:
                self.client_tags = tags
                fp = self.owner._fingerprint
                keep: list[str] = []
                for t in tags:
                    stripped = conditional.strip_fingerprint(t)
                    if stripped is None:
                        keep.append(t)
                    elif fp is not None and stripped[1] == fp[:12]:
                        keep.append(stripped[0])  # frozen: the app may still answer 304
                        self.translated[stripped[0]] = t
                if keep and fp is not None:
                    env["HTTP_IF_NONE_MATCH"] = ", ".join(keep)
                else:
                    del env["HTTP_IF_NONE_MATCH"]
        if "HTTP_IF_MODIFIED_SINCE" in env and not self._ims_safe(env["HTTP_IF_MODIFIED_SINCE"]):
            del env["HTTP_IF_MODIFIED_SINCE"]

    def _ims_safe(self, value: str) -> bool:
        if not self.owner.frozen:
            return False  # in development pages revalidate by ETag only
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return when >= int(self.owner._manifest_mtime)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.started:
            try:
                raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[union-attr]
            finally:
                exc_info = None
        self.status, self.headers = status, list(headers)
        self.html = self._html_in(status, self.headers)
        self.rewriter = None
        return self.write

    def _html_in(self, status: str, headers: list[tuple[str, str]]) -> bool | None:
        """Whether the response is HTML to rewrite: None when not, else whether it is XHTML."""
        code = status[:3]
        if code[:1] == "1" or code == "204" or code == "304":
            if code == "304":
                self._retag_304(headers)
            return None
        html: bool | None = None
        encoded = has_etag = False
        for k, v in headers:
            lk = k.lower()
            if lk == "content-type":
                html = _html_type(v)
            elif lk == "content-encoding":
                encoded = v.strip().lower() not in ("", "identity")
            elif lk == "etag":
                has_etag = True
        self.has_etag = has_etag
        return None if encoded else html

    def _rewriter(self) -> HtmlRewriter:
        """The response's rewriter (the body is HTML), made on first use."""
        rewriter = self.rewriter
        if rewriter is None:
            owner = self.owner
            lookup, vouched = owner._lookup()
            # The facts _seen_page looks at: what the rewriter sets up for the page goes there.
            urls = UrlRewriter.for_page(
                self._page(), lookup=lookup, hash_length=owner.hash_length, memo=owner._url_memo
            )
            rewriter = self.rewriter = HtmlRewriter(
                urls,
                xhtml=bool(self.html),
                integrity=owner.integrity,
                frozen=owner.frozen,
                vouched=vouched,
            )
        return rewriter

    def _prefix(self) -> str:
        """The prefix as the page's URLs hold it: under the app's mount point."""
        script: str = self.environ.get("SCRIPT_NAME", "")
        return script.rstrip("/") + self.owner.prefix

    def _page(self) -> _PageFacts:
        """What the page's own URL says (see urls.page_facts), found by the request's parts
        that make the URL, so that a page asked for again is one lookup."""
        get = self.environ.get
        host, script, path = get("HTTP_HOST"), get("SCRIPT_NAME", ""), get("PATH_INFO", "")
        memo = self.owner._url_memo
        key: tuple[object, ...] | None = None
        if len(host or "") + len(script) + len(path) <= MEMO_MAX_URL:  # the client's to choose
            scheme, name, port = get("wsgi.url_scheme"), get("SERVER_NAME"), get("SERVER_PORT")
            key = ("request", scheme, host, name, port, script, path)
            page: _PageFacts | None = memo.get(key)
            if page is not None:
                return page
        page = page_facts(memo, self._prefix(), _page_url(self.environ), self.owner.url_base)
        if key is not None:
            remember(memo, key, page)
        return page

    def _seen_page(self, doc: bytes, hits: list[Any]) -> tuple[bytes | None, bool]:
        """``doc`` rewritten with no rewriter made, when every tag in it that holds a hit was
        rewritten before, on this page, usable as it is (see html.splice_page); and whether
        that was tried (a rewriter made next need not try it again)."""
        owner = self.owner
        page = self._page()
        seen = seen_tags(page, owner.integrity, owner.hash_length)
        if seen is None:
            return None, False
        frozen = owner._fingerprint is not None
        index = owner.index
        # What the kernel has reported so far, read before the remembered tags are used.
        state = None if frozen or not isinstance(index, DiskIndex) else index.state()
        names, tags = seen
        xhtml = bool(self.html)
        return splice_page(doc, page.needle, names, tags, xhtml, frozen, state, hits), True

    def _retag_304(self, headers: list[tuple[str, str]]) -> None:
        for i, (k, v) in enumerate(headers):
            if k.lower() == "etag" and v in self.translated:
                headers[i] = (k, self.translated[v])

    def _start(self, headers: list[tuple[str, str]]) -> Callable[[bytes], object]:
        # The server hears from us once, after the app has settled its response, so an
        # exc_info the app passed while replacing its headers is not the server's business.
        self.started = True
        return self.server_start_response(self.status, headers)

    # The legacy write() callable: its bytes go through the rewriter too.
    def write(self, data: bytes) -> None:
        if not self.started:
            self._server_write = self._start(self._streaming_headers())
        out = self._rewriter().feed(data) if self.html is not None else data
        if out:
            self._server_write(out)

    def _streaming_headers(self) -> list[tuple[str, str]]:
        if self.html is None:
            return self.headers
        # One pass over the app's headers. Its Content-Length goes (the body changes). In
        # development its Last-Modified and ETag go too (our ETag needs the body: see finish);
        # with a manifest they stay, fingerprinted and never older than the manifest.
        fp = self.owner._fingerprint
        headers: list[tuple[str, str]] = []
        tagged = False
        for k, v in self.headers:
            lk = k.lower()
            if lk == "content-length":
                continue
            if lk == "last-modified":
                if fp is None:
                    continue
                v = self._frozen_last_modified(v)
            elif lk == "etag" and not tagged:
                tagged = True
                if fp is None:
                    continue
                v = conditional.add_fingerprint(v, fp[:12])
            headers.append((k, v))
        return headers

    def _frozen_last_modified(self, value: str) -> str:
        """The app's Last-Modified, or the manifest's time when that is later."""
        from email.utils import formatdate, parsedate_to_datetime

        try:
            app_time = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            app_time = 0.0
        if app_time < self.owner._manifest_mtime:
            return formatdate(self.owner._manifest_mtime, usegmt=True)
        return value

    def finish(self, result: Iterable[bytes]) -> Iterable[bytes]:
        if self.html is None or self.environ.get("REQUEST_METHOD") == "HEAD":
            if self.html is not None and not self.started:
                self.headers = self._streaming_headers()
            if not self.started:
                self._start(self.headers)
            return result
        has_etag = self.has_etag
        if self.started:
            return _Rewritten(result, self._rewriter())
        if isinstance(result, _SEQUENCES) or (has_etag and not self.owner.frozen):
            return self._whole(result, result, has_etag)
        # Frameworks return a one-chunk iterator for a rendered page: look at two chunks,
        # and a body that was one is sent whole, with a Content-Length (so the connection is
        # kept alive without chunked encoding); a real stream streams, two chunks late.
        iterator = iter(result)
        try:
            first = next(iterator, None)
            second = None if first is None else next(iterator, None)
        except BaseException:
            self.close_result(result)
            raise
        if first is None or second is None:
            return self._whole([] if first is None else [first], result, has_etag)
        self._server_write = self._start(self._streaming_headers())
        return _Rewritten(result, self._rewriter(), (first, second), iterator)

    def close_result(self, result: Iterable[bytes]) -> None:
        """Close the app's iterable, once."""
        if self.result_closed:
            return
        self.result_closed = True
        close = getattr(result, "close", None)
        if close is not None:
            close()

    def _whole(
        self, chunks: Iterable[bytes], result: Iterable[bytes], has_etag: bool
    ) -> Iterable[bytes]:
        """The body (``chunks``, the rest of the app's ``result``) rewritten at once."""
        try:
            doc = b"".join(chunks)
            hits: list[Any] = []
            body, tried = self._seen_page(doc, hits) if self.rewriter is None else (None, False)
            if body is None:
                body = self._rewriter().rewrite(doc, splice=not tried)
        finally:
            self.close_result(result)
        headers = self._streaming_headers()
        if has_etag and not self.owner.frozen:
            assets = self.rewriter.assets if self.rewriter is not None else assets_of(hits)
            fp = conditional.fingerprint((a.path, a.digest) for a in assets.values())
            app_etag = next(v for k, v in self.headers if k.lower() == "etag")
            etag = conditional.add_fingerprint(app_etag, fp)
            headers.append(("ETag", etag))
            if self.client_tags and conditional.weak_match(self.client_tags, etag):
                self.status = "304 Not Modified"
                keep = {"etag", "cache-control", "vary", "expires", "date", "content-location"}
                self._start([(k, v) for k, v in headers if k.lower() in keep])
                return []
        headers.append(("Content-Length", str(len(body))))
        self._start(headers)
        return [body]


class _Rewritten:
    """The app's body, rewritten as it streams; ``close()`` reaches the app's iterable once."""

    def __init__(
        self,
        result: Iterable[bytes],
        rewriter: HtmlRewriter,
        read: tuple[bytes, ...] = (),
        rest: Iterator[bytes] | None = None,
    ) -> None:
        self.result = result
        self.rewriter = rewriter
        self.read = read  # chunks already taken from ``rest``, an iterator of ``result``
        self.rest = rest
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        rewriter = self.rewriter
        chunks = self.result if self.rest is None else itertools.chain(self.read, self.rest)
        for chunk in chunks:
            out = rewriter.feed(chunk)
            if out:
                yield out
        tail = rewriter.close()
        if tail:
            yield tail

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self.result, "close", None)
        if close is not None:
            close()
