"""Coverage-guided fuzzing of the HTML rewriter with atheris (libFuzzer for Python).

Each input is a setup number (its first byte), a chunk size (its second) and a document (the
rest).
The properties are those of ``tests/test_html_fuzz.py``:

* no exception, whole or streamed;
* streamed in chunks of the input's size, the output is the whole-body output;
* rewriting the output again changes nothing;
* without ``url_base`` or ``integrity``, the output is the input plus ``.<hash>`` insertions,
  each where the input names the asset whose hash it is.

A broken property raises, and libFuzzer saves the input as a crash file. The tokenizer is the
C one, or the pure-Python one with ``HASHSTATIC_PURE_PYTHON=1``::

    python fuzz/rewriter.py -runs=100000 -dict=fuzz/html.dict [CORPUS_DIR]

``HASHSTATIC_FUZZ_ROOT`` names the static root to use (one is made in a temporary directory
otherwise); ``tests/test_html_fuzz.py`` runs this for a bounded number of runs in each mode.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

with atheris.instrument_imports(include=["hashstatic"]):
    from hashstatic import tokenizer
    from hashstatic.cache import DiskIndex

from tests.test_html_fuzz import PLAIN, SETUPS, insertions, make_root, misplaced  # noqa: E402


def _root() -> Path:
    given = os.environ.get("HASHSTATIC_FUZZ_ROOT")
    if given:
        return Path(given)
    made = tempfile.mkdtemp(prefix="hashstatic-fuzz-")
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    return make_root(Path(made))


INDEX = DiskIndex(_root())


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    setup = SETUPS[data[0] % len(SETUPS)]
    size = data[1] % 64 + 1
    doc = data[2:]

    whole = setup.rewrite(INDEX, doc)
    chunks = [doc[at : at + size] for at in range(0, len(doc), size)]
    streamed = setup.stream(INDEX, chunks)
    if streamed != whole:
        raise AssertionError(f"chunks of {size} give {streamed!r}, whole gives {whole!r}")
    again = setup.rewrite(INDEX, whole)
    if again != whole:
        raise AssertionError(f"rewriting {whole!r} again gives {again!r}")
    if setup in PLAIN:
        found = insertions(doc, whole)
        if found is None:
            raise AssertionError(f"{whole!r} is not {doc!r} plus hashes")
        wrong = misplaced(doc, found)
        if wrong:
            raise AssertionError(f"hashes inserted away from their file's name: {wrong}")


def main() -> None:
    print(f"hashstatic tokenizer: {'C' if tokenizer.ACCELERATED else 'pure Python'}", flush=True)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
