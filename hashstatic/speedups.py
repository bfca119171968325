"""Where the C accelerators of ``hashstatic._speedups`` (and ``hashstatic._digests``, which
links OpenSSL) are found.

Each is optional: the extension may not be built (a platform without a compiler, or without
OpenSSL's headers), may lack a function (``open_plain`` and ``digest_files`` need Linux's
``openat2``), or may be turned off with the environment variable ``HASHSTATIC_PURE_PYTHON=1``
(how the tests and benchmarks run the Python versions). Callers fall back to their Python
version when :func:`speedup` answers ``None``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def speedup(name: str, module: str = "_speedups") -> Any:
    """``hashstatic.<module>.<name>``, or ``None`` where it is not to be had."""
    if os.environ.get("HASHSTATIC_PURE_PYTHON"):
        return None
    try:
        speedups = importlib.import_module(f"hashstatic.{module}")
    except ImportError:
        return None
    return getattr(speedups, name, None)
