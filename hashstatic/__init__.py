"""Content-hashed static URLs for any WSGI application."""

from hashstatic.middleware import HashStatic

__all__ = ["HashStatic"]
