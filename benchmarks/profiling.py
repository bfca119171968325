"""Profile where hashstatic spends its time on the work the benchmarks measure.

    python benchmarks/profiling.py CASE [--seconds S] [--cprofile]

Cases: ``serve-dev-200``, ``serve-dev-304``, ``serve-manifest-200``, ``serve-manifest-304``
(the stylesheet and the script of ``serve.py``, alternately, in-process), ``page-dev``,
``page-manifest`` (the 50 KB page of ``endtoend.py`` through the middleware, in-process, one
chunk not in a list), and ``coldstart`` (a fresh ``DiskIndex`` over 1,000 files, 20 MB, of
``coldstart.py``'s kinds, again and again). The loop runs for ``--seconds`` under pyinstrument
(``pip install -e '.[bench]'``), which prints its call tree; ``--cprofile`` uses the standard
library's profiler instead and prints the functions by own time. For a sampling profile of a
whole benchmark from outside, ``py-spy record -o out.svg -- python benchmarks/serve.py`` works
too.

Not part of ``all.py``: it measures nothing, it shows where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import itertools
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, endtoend, serve, sites

CASES = (
    "serve-dev-200",
    "serve-dev-304",
    "serve-manifest-200",
    "serve-manifest-304",
    "page-dev",
    "page-manifest",
    "coldstart",
)


def workload(case: str, work: Path) -> Callable[[], object]:
    """One unit of the case's work, as a function to call in a loop."""
    if case == "coldstart":
        from hashstatic.cache import DiskIndex

        root = work / "tree"
        sites.tree(root, files=1_000, total=20_000_000)
        paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

        def cold() -> None:
            index = DiskIndex(root)
            for path in paths:
                index.lookup(path)

        return cold
    root, manifest = common.site_with_manifest(work)
    if case.startswith("page-"):
        mode = "development" if case == "page-dev" else "manifest"
        app = endtoend.server("iterator", mode, str(root), str(manifest))
        return common.requester(app, common.environ("/"))
    _, mode, status = case.split("-")
    if mode == "dev":
        app = serve.hashstatic_dev(str(root))
    else:
        app = serve.hashstatic_manifest(str(root), str(manifest))
    requests = []
    for path in serve.FILES.values():
        url = "/static/" + app.index.lookup(path).hashed
        response, _ = common.call(app, common.environ(url))
        headers = {"If-None-Match": response.header("ETag") or ""} if status == "304" else {}
        requests.append(common.requester(app, common.environ(url, headers)))
    turns = itertools.cycle(requests)
    return lambda: next(turns)()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    p.add_argument("case", choices=CASES)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--cprofile", action="store_true", help="cProfile instead of pyinstrument")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashstatic-profile-") as work:
        unit = workload(args.case, Path(work))
        unit()  # warm: caches filled, imports done
        calls = 0
        profiler: Any
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
        else:
            profiler = importlib.import_module("pyinstrument").Profiler(interval=0.0002)
            profiler.start()
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            unit()
            calls += 1
        if args.cprofile:
            profiler.disable()
            print(f"{args.case}: {calls} calls in {args.seconds} s")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        else:
            profiler.stop()
            print(f"{args.case}: {calls} calls in {args.seconds} s")
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
