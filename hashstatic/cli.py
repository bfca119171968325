"""The ``hashstatic`` command (also ``python -m hashstatic``).

``serve`` runs an app, or a directory as a website, behind :class:`~hashstatic.HashStatic` on
waitress; ``manifest`` writes the JSON manifest that freezes the hashes for production.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import TextIO, cast
from wsgiref.types import WSGIApplication

from hashstatic.manifest import (
    ManifestError,
    build_manifest,
    check_prefix,
    dumps_manifest,
    write_manifest,
)


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        # 2: the command line is wrong (as argparse); 1: the command could not do its job.
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error argparse already printed
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return cast(int, args.run(args))
    except CommandError as error:
        print(f"hashstatic {args.command}: error: {error}", file=sys.stderr)
        return error.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashstatic",
        description="Content-hashed static URLs for WSGI applications.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run an app, or a directory as a website, with hashed asset URLs",
        description="Run MODULE:APP behind HashStatic on waitress; with no app, serve the "
        "directory --root as a website whose HTML pages have their asset URLs hashed.",
    )
    serve.add_argument(
        "app", nargs="?", metavar="MODULE:APP", help="the WSGI application, e.g. mysite.wsgi:app"
    )
    serve.add_argument("--root", required=True, metavar="DIR", help="the static files directory")
    serve.add_argument(
        "--prefix",
        metavar="P",
        help="URL prefix of the static files (default: /static/ with an app, / without)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on, 0 for any free one (%(default)s)"
    )
    serve.set_defaults(run=_serve)

    manifest = commands.add_parser(
        "manifest",
        help="write the JSON manifest of hashed names",
        description="Hash every file under --root and write the manifest that "
        "HashStatic(manifest=FILE) reads.",
    )
    manifest.add_argument("--root", required=True, metavar="DIR", help="the static files directory")
    manifest.add_argument(
        "--prefix", default="/static/", metavar="P", help="URL prefix (%(default)s)"
    )
    manifest.add_argument(
        "--hash-length",
        type=int,
        default=12,
        metavar="N",
        help="hex characters of the hash kept in URLs, 8 to 32 (%(default)s)",
    )
    manifest.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default: standard output)"
    )
    manifest.set_defaults(run=_manifest)
    _add_build(commands)
    _add_nginx(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the other commands need neither WebOb nor waitress, and a deploy
    # script runs them often (an import of the middleware costs more than a small manifest).
    import waitress

    from hashstatic.middleware import HashStatic
    from hashstatic.site import Site

    root = _directory(args.root)
    app: WSGIApplication
    if args.app is None:
        app, prefix = Site(root), args.prefix or "/"
    else:
        app, prefix = load_app(args.app), args.prefix or "/static/"
    try:
        application = HashStatic(app, root=root, prefix=prefix)
    except ValueError as error:
        raise CommandError(str(error)) from None
    try:
        server = waitress.create_server(application, host=args.host, port=args.port)
    except OSError as error:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror or error}; "
            "choose another --port or --host",
            code=1,
        ) from None
    what = args.app or f"{root} as a website"
    listen = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    for host, port in listen:
        print(f"hashstatic: serving {what} on {_url(host, port)}", flush=True)
    # SIGTERM (docker stop, systemd, a test harness) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    finally:
        server.close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def load_app(spec: str) -> WSGIApplication:
    """Import ``MODULE:APP`` (``APP`` may be dotted) with the current directory importable."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(f"{spec!r} is not MODULE:APP; write it like mysite.wsgi:application")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name + ".").startswith(error.name + "."):
            raise  # the module exists but one of its own imports failed: show the traceback
        raise CommandError(
            f"no module named {module_name!r} in {os.getcwd()} or on sys.path; "
            "run from the directory that contains it, or correct MODULE"
        ) from None
    app: object = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise CommandError(
                f"module {module_name!r} has no attribute {attribute!r}; "
                "correct APP to the name of the WSGI application"
            ) from None
    if not callable(app):
        raise CommandError(
            f"{spec} is not a WSGI application: a {type(app).__name__} is not callable"
        )
    return cast(WSGIApplication, app)


def _manifest(args: argparse.Namespace) -> int:
    root = _directory(args.root)
    try:
        prefix = check_prefix(args.prefix)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if not 8 <= args.hash_length <= 32:
        raise CommandError(f"--hash-length {args.hash_length}: give a number from 8 to 32")
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        manifest = build_manifest(
            root, prefix=prefix, hash_length=args.hash_length, progress=progress
        )
    finally:
        if progress is not None:
            progress.finish()
    if args.output is None:
        text = dumps_manifest(manifest)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    try:
        write_manifest(manifest, args.output)
    except OSError as error:
        raise CommandError(f"cannot write {args.output}: {error.strerror or error}", 1) from None
    return 0


def _directory(path: str) -> str:
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        raise CommandError(f"--root {path} {what}; give the directory of your static files")
    return path


class Progress:
    """A one-line progress bar, redrawn in place, at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\rhashing [{bar}] {done}/{total} files")
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _add_build(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = commands.add_parser(
        "build",
        help="write hashed copies of the static files and their manifest",
        description="Copy every file under --root to --out under its hashed name (stylesheets "
        "rewritten) and write --out/manifest.json; files of earlier builds are kept for a "
        "while, so pages rendered before a deploy still load.",
    )
    build.add_argument("--root", required=True, metavar="DIR", help="the static files directory")
    build.add_argument("--out", required=True, metavar="DIR", help="the build directory")
    build.add_argument("--prefix", default="/static/", metavar="P", help="URL prefix (%(default)s)")
    build.add_argument(
        "--hash-length", type=int, default=12, metavar="N", help="hex characters (%(default)s)"
    )
    build.add_argument(
        "--compress", action="store_true", help="also write .gz (and .br with brotli) siblings"
    )
    build.add_argument(
        "--keep-builds",
        type=int,
        default=5,
        metavar="N",
        help="always keep the files of the last N builds (%(default)s)",
    )
    build.add_argument(
        "--keep-days",
        type=float,
        default=7.0,
        metavar="D",
        help="and any older file used in the last D days (%(default)s)",
    )
    build.set_defaults(run=_build)


def _build(args: argparse.Namespace) -> int:
    from hashstatic.build import build

    root = _directory(args.root)
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        build(
            root,
            args.out,
            prefix=args.prefix,
            hash_length=args.hash_length,
            compress=args.compress,
            keep_builds=args.keep_builds,
            keep_days=args.keep_days,
            progress=progress,
        )
    except ManifestError as error:
        raise CommandError(str(error), 1) from None
    except ValueError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {error.strerror or error}", 1) from None
    finally:
        if progress is not None:
            progress.finish()
    return 0


def _add_nginx(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    nginx = commands.add_parser(
        "nginx",
        help="print nginx configuration serving the hashed URLs",
        description="Print location blocks for your server (or, with --upstream, a whole "
        "server block) that serve hashed URLs from --root with no request reaching Python.",
    )
    nginx.add_argument(
        "--root", required=True, metavar="DIR", help="the static files, or with --build the build"
    )
    nginx.add_argument("--prefix", default="/static/", metavar="P", help="URL prefix (%(default)s)")
    nginx.add_argument(
        "--build", action="store_true", help="--root is the --out of `hashstatic build`"
    )
    nginx.add_argument(
        "--manifest",
        metavar="FILE",
        help="source root: the raw-bytes manifest to publish (default: hash the files now)",
    )
    nginx.add_argument(
        "--hash-length", type=int, default=12, metavar="N", help="hex characters (%(default)s)"
    )
    nginx.add_argument(
        "--write-manifest",
        metavar="FILE",
        help="source root: also write the manifest used, for HashStatic(manifest=FILE)",
    )
    nginx.add_argument("--upstream", metavar="HOST:PORT", help="the app: print a server block")
    nginx.add_argument("--listen", default="80", metavar="[HOST:]PORT", help="(%(default)s)")
    nginx.set_defaults(run=_nginx)


def _nginx(args: argparse.Namespace) -> int:
    from hashstatic.build import raw_manifest
    from hashstatic.manifest import load_manifest
    from hashstatic.nginx import ConfigError, nginx_config, server_block

    root = _directory(args.root)
    if args.upstream is not None:
        try:
            server_block([], upstream=args.upstream, listen=args.listen)
        except ConfigError as error:
            raise CommandError(str(error)) from None  # a wrong command line: status 2
    if args.build and (args.manifest or args.write_manifest):
        raise CommandError("--build reads the build's own manifest.json: drop --manifest")
    manifest = None
    try:
        if not args.build:
            if args.manifest is not None:
                manifest = load_manifest(args.manifest)
            else:
                manifest = raw_manifest(root, prefix=args.prefix, hash_length=args.hash_length)
        text = nginx_config(
            root,
            prefix=args.prefix,
            build=args.build,
            manifest=manifest,
            upstream=args.upstream,
            listen=args.listen,
        )
        if manifest is not None and args.write_manifest is not None:
            write_manifest(manifest, args.write_manifest)
    except (ConfigError, ManifestError) as error:
        raise CommandError(str(error), 1) from None
    except ValueError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot write {args.write_manifest}: {error.strerror}", 1) from None
    sys.stdout.write(text)
    return 0
