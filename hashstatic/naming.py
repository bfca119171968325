"""Hashed file names: putting a content hash into a path and taking it out again.

Pure string functions, no I/O, shared by the rewriter, the file server, the manifest and the
nginx generator so that all of them agree on one grammar. The hash goes before the last
extension of the last path segment::

    css/app.js      -> css/app.<h>.js
    app.min.js      -> app.min.<h>.js
    LICENSE         -> LICENSE.<h>
    dir.v2/file     -> dir.v2/file.<h>
    .htaccess       -> .htaccess.<h>      (a leading dot starts a name, not an extension)

``<h>`` is lowercase hex of a fixed length, so for a given length every hashed name comes from
exactly one unhashed name: :func:`split_hash` inverts :func:`hashed_name`.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"[0-9a-f]+")


def hashed_name(path: str, digest: str) -> str:
    """Insert ``.<digest>`` before the last extension of the last segment of ``path``."""
    if not _HEX.fullmatch(digest):
        # Anything else could not be read back by split_hash (and would never be served).
        raise ValueError(f"hash {digest!r} is not lowercase hexadecimal")
    if not path or path[-1] == "/":
        raise ValueError(f"{path!r} names a directory; only files have hashed names")
    return with_hash(path, digest)


def with_hash(path: str, digest: str) -> str:
    """:func:`hashed_name` of a file's path and a digest known to be lowercase hex (from
    ``hexdigest``), unchecked: the index names every file it hashes with it."""
    dot = path.rfind(".")
    if dot <= path.rfind("/") + 1:  # no extension in the last segment (a leading dot starts
        dot = len(path)  # the name)
    return path[:dot] + "." + digest + path[dot:]


def split_hash(path: str, hash_length: int) -> tuple[str, str] | None:
    """``(unhashed path, hash)`` when ``path`` is a hashed name, else ``None``.

    The last segment of a hashed name is one of

    * ``stem.<h>.ext``: the hash before the last extension; ``stem`` is not empty and
      ``ext`` has no dot (it may be empty, for a name that ended in a dot);
    * ``stem.<h>``: the name had no extension, so ``stem`` has no dot after its first
      character.

    The two shapes cannot both fit one segment (the first has two dots after the first
    character, the second one), so the answer is unique. In particular ``x.<h1>.<h2>``, with
    both parts hex of the right length, comes only from ``x.<h2>``: the hashed name of
    ``x.<h1>`` is ``x.<h>.<h1>``, since ``.<h1>`` is that file's extension.
    """
    if hash_length < 1:
        return None
    head, slash, segment = path.rpartition("/")
    n = hash_length
    last_dot = segment.rfind(".")
    if last_dot < 0:
        return None
    # stem.<h>.ext -- the dot before the hash must leave a non-empty stem.
    hash_dot = last_dot - n - 1
    if hash_dot >= 1 and segment[hash_dot] == ".":
        digest = segment[hash_dot + 1 : last_dot]
        if _HEX.fullmatch(digest):
            return f"{head}{slash}{segment[:hash_dot]}{segment[last_dot:]}", digest
        return None
    # stem.<h> -- only for a stem without an extension of its own.
    if last_dot == len(segment) - n - 1 and last_dot >= 1:
        stem = segment[:last_dot]
        digest = segment[last_dot + 1 :]
        if stem.rfind(".") <= 0 and _HEX.fullmatch(digest):
            return f"{head}{slash}{stem}", digest
    return None


def unhashed_candidates(path: str, hash_length: int) -> list[str]:
    """The unhashed paths that ``path`` could be the hashed name of, most likely first.

    The grammar (see :func:`split_hash`) makes this at most one path; it is a list so that
    callers read as "try each", and so that a looser grammar would not change their code.
    """
    split = split_hash(path, hash_length)
    return [] if split is None else [split[0]]


def is_html(path: str) -> bool:
    """Pages are navigated to, not cached as assets: they are never hashed."""
    return path.lower().endswith((".html", ".htm"))
