"""Smoke run of the benchmarks: each script's --quick run writes a well-formed report.

Speed is never checked here (the benchmarks measure it and never fail on it); only that each
script runs end to end against the real servers and tools and reports what it promises.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
WRK = shutil.which("wrk")
WHITENOISE = importlib.util.find_spec("whitenoise") is not None

pytestmark = pytest.mark.slow

needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")


def _rates(row: dict[str, Any]) -> bool:
    return row["median"] > 0 and len(row["rounds"]) >= 1


def _serve(report: dict[str, Any]) -> None:
    for how in ("in_process", "wrk"):
        rows = report[how]
        assert {(r["pairing"], r["status"]) for r in rows} == {
            (pairing, status) for pairing in ("development", "manifest") for status in (200, 304)
        }
        for row in rows:
            assert _rates(row["hashstatic"]) and _rates(row["whitenoise"])
            assert math.isclose(
                row["ratio"],
                row["hashstatic"]["median"] / row["whitenoise"]["median"],
                rel_tol=0.01,
                abs_tol=0.001,  # the report rounds ratios to three decimals
            )
            if how == "wrk":  # both ceilings ran (wrk counts no request it saw fail)
                assert _rates(row["ceiling"]) and _rates(row["ceiling_headers"])


def _endtoend(report: dict[str, Any]) -> None:
    for how in ("in_process", "wrk_one", "wrk"):
        rows = report[how]
        assert {(r["shape"], r["mode"]) for r in rows} == {
            (shape, mode)
            for shape in ("list", "iterator")
            for mode in ("none", "development", "manifest", "floor", "scan", "splice")
        }
        assert all(_rates(r) for r in rows)
        assert all(r["ratio"] == 1 for r in rows if r["mode"] == "none")


def _coldstart(report: dict[str, Any]) -> None:
    tree = report["tree"]
    assert tree["files"] == 500 and tree["bytes"] == 10_000_000
    methods = report["methods"]
    assert set(methods) == {"md5sum", "hashlib", "disk_index", "build_manifest", "cli"}
    assert methods["md5sum"]["x_md5sum"] == 1
    assert all(m["mb_s"] > 0 for m in methods.values())


def _memory(report: dict[str, Any]) -> None:
    rows = report["rows"]
    assert len(rows) == 7
    for row in rows:
        # Every page of the stream had its 16 references rewritten.
        assert row["rewritten_urls"] >= 16 * (report["stream_bytes"] // report["page_bytes"])
    # The app that sends an ETag is rewritten whole in development: its growth is the body.
    buffered = next(r for r in rows if r["mode"] == "etag")
    assert buffered["tracemalloc_growth"] >= report["stream_bytes"]


def _nginx(report: dict[str, Any]) -> None:
    rows = report["rows"]
    assert {(r["file"], r["status"]) for r in rows} == {("css", 200), ("css", 304)}
    for row in rows:
        assert all(_rates(row[s]) for s in ("nginx", "dev_server", "manifest"))


# The rewriting benchmark's own methods, measured with and without the C extension.
REWRITE_METHODS = {
    "scan",
    "frozen",
    "frozen_stream",
    "whole",
    "stream",
    "whole_stat",
    "stream_stat",
}


def _rewrite(report: dict[str, Any]) -> None:
    main = report["main"]
    assert set(main["methods"]) == REWRITE_METHODS | {"selectolax", "lxml"}
    found = main["found"]
    # Every method rewrote the same assets, and the pages do name some.
    assert found["frozen"] > 0
    assert len({n for m, n in found.items() if m != "scan"}) == 1
    latency = main["latency"]
    assert [row["refs"] for row in latency.values()] == [16, 307, 0]
    if main["accelerated"]:
        assert report["pure_python"]["methods"].keys() == REWRITE_METHODS


CORPUS = Path(os.environ.get("HASHSTATIC_CORPUS", "/tmp/corpus"))

CASES = [
    pytest.param(
        "rewrite",
        _rewrite,
        # rewrite.py builds the corpus when it is missing, as tests/test_corpus.py does.
        marks=pytest.mark.skipif(
            not (CORPUS / "python" / "library" / "smtpd.html").is_file()
            and not (REPO.parent / "shared" / "corpus" / "build.sh").is_file(),
            reason=f"no corpus in {CORPUS} and no ../shared/corpus/build.sh",
        ),
        id="rewrite",
    ),
    pytest.param(
        "serve",
        _serve,
        marks=[needs_wrk, pytest.mark.skipif(not WHITENOISE, reason="pip install whitenoise")],
        id="serve",
    ),
    pytest.param("endtoend", _endtoend, marks=needs_wrk, id="endtoend"),
    pytest.param("coldstart", _coldstart, id="coldstart"),
    pytest.param("memory", _memory, id="memory"),
    pytest.param(
        "nginx",
        _nginx,
        marks=[needs_wrk, pytest.mark.skipif(NGINX is None, reason="nginx is not installed")],
        id="nginx",
    ),
]


@pytest.mark.parametrize(("name", "check"), CASES)
def test_quick_run_writes_a_well_formed_report(name, check, tmp_path: Path, figures) -> None:
    out = tmp_path / f"{name}.json"
    script = REPO / "benchmarks" / f"{name}.py"
    extra = ["--corpus", str(CORPUS)] if name == "rewrite" else []
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out), *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900 if name == "rewrite" else 180,  # the corpus may be built first
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == name
    assert report["seconds"] > 0
    check(report)
    goals = report.get("goals", [])
    for goal in goals:
        assert set(goal) == {"goal", "target", "measured", "met"}
        assert isinstance(goal["met"], bool) and math.isfinite(goal["measured"])
    assert run.stdout.count("\n") > 3  # the table was printed
    figures(f"{name} --quick: report written, {len(goals)} goals checked")
