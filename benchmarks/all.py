"""Run every benchmark of issue 6, one after the other, and print the goals met and missed.

    python benchmarks/all.py [--quick] [--only NAME ...] [--skip NAME ...] [--results DIR]

Each benchmark runs in its own process, exactly as when run alone
(``python benchmarks/NAME.py``), and writes ``DIR/NAME.json`` (``benchmarks/results/`` by
default). ``--quick`` passes ``--quick`` on: a smoke run whose figures mean nothing. At the
end the goals every benchmark checked are gathered into one table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

BENCHMARKS = ("rewrite", "serve", "endtoend", "coldstart", "memory", "nginx")
HERE = Path(__file__).resolve().parent


def command(name: str, quick: bool, results: Path) -> list[str]:
    args = [sys.executable, str(HERE / f"{name}.py"), "--json", str(results / f"{name}.json")]
    if quick:
        args.append("--quick")
    return args


def rewrite_goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 6's rewriting goals from ``rewrite.json`` (its script prints its own table), for
    the manifest (``frozen``) and the from-disk methods, whichever the report has."""
    try:
        ms = {m: v["total_ms"] for m, v in report["main"]["methods"].items()}
        latency = report["main"].get("latency", {})
    except (KeyError, TypeError, AttributeError):
        return []
    goals = []
    scan = ms.get("scan")
    checks = [
        ("frozen", "manifest, whole body", 3),
        ("whole", "from disk (watching), whole body", 3),
        ("frozen_stream", "manifest, 4 KiB chunks", 5),
        ("stream", "from disk (watching), 4 KiB chunks", 5),
    ]
    for method, label, target in checks:
        if scan and method in ms:
            what = f"rewriting {label}, x scan time"
            goals.append(common.goal(what, ms[method] / scan, target, at_least=False))
    for method, label in (("frozen", "manifest"), ("whole", "from disk")):
        if method in ms and "selectolax" in ms:
            what = f"rewriting {label}, speed-up over selectolax"
            goals.append(common.goal(what, ms["selectolax"] / ms[method], 6))
    none = next((v["us"] for v in latency.values() if v.get("refs") == 0), None)
    for method, label in (("frozen", "manifest"), ("whole", "from disk")):
        if none and none.get("scan") and method in none:
            what = f"page with no references, {label}, x scan time"
            goals.append(common.goal(what, none[method] / none["scan"], 1.5, at_least=False))
    return goals


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, short runs: a smoke run")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help="run only these")
    p.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], metavar="NAME")
    p.add_argument("--results", type=Path, default=common.RESULTS, help="where the JSON goes")
    args = p.parse_args()
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]
    started = time.monotonic()
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run(command(name, args.quick, args.results)).returncode != 0:
            failed.append(name)
    goals: list[dict[str, Any]] = []
    for name in names:
        path = args.results / f"{name}.json"
        if name in failed or not path.exists():
            continue
        report = json.loads(path.read_text())
        goals += rewrite_goals(report) if name == "rewrite" else report.get("goals", [])
    print(f"\n=== goals ({time.monotonic() - started:.0f} s in all) ===")
    common.print_goals(goals)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
