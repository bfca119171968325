"""A WSGI app on a real waitress server on loopback, for the tests that talk to one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import waitress
from waitress import wasyncore


@contextmanager
def running(app: Any, threads: int = 4) -> Iterator[int]:
    """``app`` on a waitress server on loopback; yields its port, and stops it for good."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stop(server)
        thread.join(10)
        server.task_dispatcher.shutdown()
    assert not thread.is_alive()


def stop(server: Any) -> None:
    """Close ``server`` from inside its own loop, not from under a poll() in progress."""
    try:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    except OSError:
        # A wake-up byte still in the pipe can make the loop run the thunk (closing the
        # trigger) between its queueing and this call's own write: then all is done.
        if not server.trigger._closed:
            raise
