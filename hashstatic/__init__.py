"""Content-hashed static URLs for any WSGI application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hashstatic.middleware import HashStatic

__all__ = ["HashStatic"]


def __getattr__(name: str) -> Any:
    # The middleware (and WebOb) is imported when it is first asked for, so that the command
    # line's manifest, build and nginx commands start without it.
    if name == "HashStatic":
        from hashstatic.middleware import HashStatic

        return HashStatic
    raise AttributeError(f"module 'hashstatic' has no attribute {name!r}")
