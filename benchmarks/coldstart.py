"""Cold start: hashing a whole static tree, against ``md5sum`` over the same files.

A tree of 5,000 files totalling 100 MB (deterministic content, sizes with a long tail from a
few bytes to several MB; images and fonts as random bytes, scripts, stylesheets, SVG and JSON
as text) is written to a temporary directory and read once, so that the page cache is warm
for every method. Then, in rounds that rotate the order:

* ``md5sum``: ``find ROOT -type f -print0 | xargs -0 md5sum`` -- the limit a user knows;
* ``hashlib.md5`` loop: Python reading each file in 256 KiB blocks into ``hashlib.md5``, the
  floor for any Python implementation (for reference);
* ``DiskIndex``: what a development process does cold: a fresh index asked for every file
  (``lookup`` of a file not seen before: an ``openat2`` that refuses symlinks, so that the
  file opened is the one under the root, two ``fstat``, the reads, MD5; stylesheets and
  scripts are searched for references and source maps, and those that name assets are
  rewritten);
* ``build_manifest``: what ``hashstatic manifest`` does: walk the tree, then hash each file
  (MD5 and the SHA-384 integrity) on every core, in batches that C reads and hashes with the
  interpreter lock let go once a batch (``hashstatic._digests``; where it is not built, each
  file as above; ``hashstatic build`` looks files up one at a time, as a fresh index does);
* ``hashstatic manifest`` CLI: the whole command in a new process, JSON written included.

Throughput is the tree's bytes over the median time; the ratio is to ``md5sum``'s.

Two floors are measured in the same rounds (under ``floors`` in the JSON), to tell what is
out of reach from what is slow: the system calls of the index's portable read path, in the
cheapest Python (``stat``, ``open``, ``readlink`` of ``/proc/self/fd/N``, ``fstat`` before
and after, ``os.read``, MD5; Linux only; the index now skips the ``stat`` and, with
``openat2``, the ``readlink``), and ``md5sum`` and ``openssl dgst -sha384`` (the
SHA-384 that hashlib uses; coreutils' ``sha384sum`` is 1.5x slower) run at once, one process
each: both digests in C on two cores, what ``build_manifest`` computes.

This is not a test: it prints a table, writes ``benchmarks/results/coldstart.json`` and never
fails on speed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, sites

NAME = "coldstart"
FLOORS = {
    "syscalls": "floor: the index's system calls + MD5, Python",
    "md5_sha384": "floor: md5sum | openssl sha384 at once, C",
}
TOOLS = ("md5sum", "openssl dgst -sha384")
CHUNK = 256 * 1024
LABELS = {
    "md5sum": "md5sum (find | xargs)",
    "hashlib": "Python hashlib.md5 loop",
    "disk_index": "hashstatic DiskIndex, cold",
    "build_manifest": "hashstatic build_manifest",
    "cli": "`hashstatic manifest` command",
}


def methods(root: Path, paths: list[str], out: Path) -> dict[str, Callable[[], object]]:
    from hashstatic.cache import DiskIndex
    from hashstatic.manifest import build_manifest

    env = dict(os.environ, PYTHONPATH=str(common.REPO))

    def md5sum() -> None:
        command = f"find {root} -type f -print0 | xargs -0 md5sum > /dev/null"
        subprocess.run(["sh", "-c", command], check=True)

    def hashlib_loop() -> None:
        for path in paths:
            md5 = hashlib.md5(usedforsecurity=False)
            with open(root / path, "rb", buffering=0) as f:
                while chunk := f.read(CHUNK):
                    md5.update(chunk)
            md5.hexdigest()

    def disk_index() -> None:
        index = DiskIndex(root)
        for path in paths:
            if index.lookup(path) is None:
                raise SystemExit(f"DiskIndex found nothing at {path}")

    def manifest() -> None:
        if len(build_manifest(root).files) != len(paths):
            raise SystemExit("build_manifest did not hash every file")

    def cli() -> None:
        command = [sys.executable, "-m", "hashstatic", "manifest", "--root", str(root)]
        subprocess.run([*command, "-o", str(out)], check=True, env=env)

    return {
        "md5sum": md5sum,
        "hashlib": hashlib_loop,
        "disk_index": disk_index,
        "build_manifest": manifest,
        "cli": cli,
    }


def floors(root: Path, paths: list[str]) -> dict[str, Callable[[], object]]:
    def syscalls() -> None:
        base = f"{root}{os.sep}"
        flags = os.O_RDONLY | os.O_NONBLOCK
        for path in paths:
            name = base + path
            os.stat(name)
            fd = os.open(name, flags)
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != name:
                    raise SystemExit(f"{name} is not what was opened")
                left = os.fstat(fd).st_size
                md5 = hashlib.md5(usedforsecurity=False)
                while True:  # as the index reads: a file no longer than fstat said, in one read
                    want = CHUNK if left < 0 else min(CHUNK, left + 1)
                    chunk = os.read(fd, want)
                    md5.update(chunk)
                    left -= len(chunk)
                    if not chunk or (left == 0 and len(chunk) < want):
                        break
                os.fstat(fd)
            finally:
                os.close(fd)
            md5.hexdigest()

    def md5_sha384() -> None:
        find = f"find {root} -type f -print0 | xargs -0"
        tools = [subprocess.Popen(["sh", "-c", f"{find} {t} > /dev/null"]) for t in TOOLS]
        if any(tool.wait() != 0 for tool in tools):
            raise SystemExit(f"{' or '.join(TOOLS)} failed")

    found: dict[str, Callable[[], object]] = {}
    if os.path.isdir("/proc/self/fd"):
        found["syscalls"] = syscalls
    if all(shutil.which(tool.split()[0]) for tool in TOOLS):
        found["md5_sha384"] = md5_sha384
    return found


def main() -> int:
    args = common.parser(__doc__, NAME).parse_args()
    started = time.monotonic()
    files, total, rounds = (500, 10_000_000, 2) if args.quick else (5_000, 100_000_000, 5)
    report: dict[str, Any] = {"machine": common.machine(), "quick": args.quick, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="hashstatic-bench-") as work:
        root = Path(work) / "static"
        with common.timed("writing the tree"):
            count, size = sites.tree(root, files=files, total=total)
        paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        sizes = sorted((root / p).stat().st_size for p in paths)
        report["tree"] = {
            "files": count,
            "bytes": size,
            "smallest": sizes[0],
            "median": sizes[len(sizes) // 2],
            "largest": sizes[-1],
        }
        for path in paths:  # warm the page cache for every method alike
            (root / path).read_bytes()
        candidates = methods(root, paths, Path(work) / "manifest.json")
        candidates.update(floors(root, paths))
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for r in range(rounds):
            for name in common.rotated(list(candidates), r):
                t0 = time.perf_counter()
                candidates[name]()
                times[name].append(time.perf_counter() - t0)
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr)

    base = common.median(times["md5sum"])
    rows: dict[str, dict[str, Any]] = {}
    for name, values in times.items():
        seconds = common.median(values)
        rows[name] = {
            "seconds": round(seconds, 4),
            "rounds": [round(v, 4) for v in values],
            "mb_s": round(size / seconds / 1e6, 1),
            "files_s": round(count / seconds),
            "x_md5sum": round(base / seconds, 3),
        }
    report["floors"] = {name: rows.pop(name) for name in FLOORS if name in rows}
    report["methods"] = rows
    tree = report["tree"]
    print(
        f"{count} files, {size / 1e6:.0f} MB (sizes {tree['smallest']} B .. "
        f"{tree['largest'] / 1e6:.1f} MB, median {tree['median'] / 1e3:.1f} KB), page cache warm;"
        f" median of {rounds} interleaved rounds"
    )
    common.table(
        ["method", "MB/s", "files/s", "x md5sum"],
        [
            [LABELS[n], f"{r['mb_s']:.0f}", f"{r['files_s']}", f"{r['x_md5sum']:.2f}x"]
            for n, r in rows.items()
        ],
    )
    if report["floors"]:
        common.table(
            ["floor (for reference)", "MB/s", "files/s", "x md5sum"],
            [
                [FLOORS[n], f"{r['mb_s']:.0f}", f"{r['files_s']}", f"{r['x_md5sum']:.2f}x"]
                for n, r in report["floors"].items()
            ],
        )
    report["goals"] = [
        common.goal(f"cold start, {LABELS[n]}, x md5sum throughput", rows[n]["x_md5sum"], 0.8)
        for n in ("disk_index", "build_manifest")
    ]
    common.write_report(args.json, NAME, report, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
