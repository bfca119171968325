"""Deterministic content the benchmarks generate: a static site, HTML pages, a big tree.

Everything comes from fixed seeds, so two runs (and two machines) measure the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

# The site's assets a page references: 4 stylesheets, 6 scripts, 6 images (16 references).
STYLESHEETS = ["css/site.css", "css/theme.css", "css/grid.css", "css/print.css"]
SCRIPTS = ["js/app.js", "js/vendor.js", "js/menu.js", "js/search.js", "js/forms.js", "js/stats.js"]
IMAGES = ["img/logo.svg", "img/hero.jpg", "img/bg.png", "img/team.jpg", "img/map.png", "img/a.webp"]
FONTS = ["fonts/body.woff2", "fonts/head.woff2"]
SMALL_CSS = "css/site.css"  # about 5 KB, naming an image and a font (served rewritten)
MEDIUM_JS = "js/app.js"  # about 100 KB


def _css(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [
        "/* generated for the hashstatic benchmarks */",
        '@font-face { font-family: Body; src: url(../fonts/body.woff2) format("woff2"); }',
        "body { margin: 0; background: #fff url(../img/bg.png) repeat-x; font: 16px/1.5 Body; }",
    ]
    n = 0
    length = sum(len(line) + 1 for line in lines)
    while length < size:
        colour = rng.randrange(1 << 24)
        lines.append(
            f".c{n} > .item-{rng.randrange(999)} {{ margin: {rng.randrange(40)}px "
            f"{rng.randrange(40)}px; color: #{colour:06x}; }}"
        )
        length += len(lines[-1]) + 1
        n += 1
    return ("\n".join(lines) + "\n").encode()


def _js(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ['"use strict";']
    n = 0
    length = len(lines[0]) + 1
    while length < size:
        a, b = rng.randrange(1000), rng.randrange(1000)
        lines.append(
            f"function f{n}(x, y) {{ const k = {a}; return x * k + y - {b}; }}"
            f" // step {rng.randrange(1 << 30):x}"
        )
        length += len(lines[-1]) + 1
        n += 1
    return ("\n".join(lines) + "\n").encode()


def static_site(root: Path, *, filler: int = 100) -> Path:
    """The static root of the serving and end-to-end benchmarks (about 0.9 MB)."""
    rng = random.Random(6)
    files: dict[str, bytes] = {}
    for i, name in enumerate(STYLESHEETS):
        files[name] = _css(5_000 if name == SMALL_CSS else 3_000, seed=i)
    for i, name in enumerate(SCRIPTS):
        files[name] = _js(100_000 if name == MEDIUM_JS else 20_000, seed=100 + i)
    for name in IMAGES + FONTS:
        files[name] = rng.randbytes(rng.randrange(2_000, 60_000))
    for i in range(filler):  # an index of realistic size, not just the files requested
        files[f"img/icons/icon-{i:03d}.png"] = rng.randbytes(rng.randrange(200, 4_000))
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


_WORDS = [
    "static",
    "assets",
    "cache",
    "browser",
    "hash",
    "content",
    "page",
    "request",
    "server",
    "response",
    "stylesheet",
    "script",
    "image",
    "font",
    "deploy",
    "build",
    "manifest",
    "header",
    "immutable",
    "revalidate",
    "proxy",
    "origin",
    "path",
    "prefix",
]


def _paragraph(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return f'<p class="text">{text.capitalize()}. <a href="/docs/{rng.randrange(99)}/">more</a></p>'


def page(size: int = 50_000, *, prefix: str = "/static/") -> bytes:
    """An HTML page of about ``size`` bytes with 16 asset references (4 stylesheets in the
    head, 6 scripts and 6 images spread over the body), the rest text and plain links."""
    rng = random.Random(50)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Benchmark page</title>',
        *(f'<link rel="stylesheet" href="{prefix}{name}">' for name in STYLESHEETS),
        "</head><body>",
        '<nav><a href="/">Home</a> <a href="/about/">About</a></nav>',
    ]
    tail = ["</body></html>"]
    refs = [
        *(f'<script src="{prefix}{name}" defer></script>' for name in SCRIPTS),
        *(f'<img src="{prefix}{name}" alt="figure" width="300" height="200">' for name in IMAGES),
    ]
    fixed = sum(len(x) + 1 for x in head + tail + refs)
    paragraphs = []
    used = 0
    while used < size - fixed:
        p = _paragraph(rng, rng.randrange(20, 80))
        paragraphs.append(p)
        used += len(p) + 1
    # References spread evenly through the body, as templates put figures and widgets.
    body: list[str] = []
    step = max(1, len(paragraphs) // len(refs))
    for i, p in enumerate(paragraphs):
        if i % step == 0 and i // step < len(refs):
            body.append(refs[i // step])
        body.append(p)
    body += refs[len(body) - len(paragraphs) :]
    return ("\n".join(head + body + tail) + "\n").encode()


# Kinds of files in a static tree and how often they appear; text kinds are generated as text
# (stylesheets are parsed and rewritten when hashed), the others are random bytes.
_TREE_KINDS = [
    ("png", 0.25, False),
    ("jpg", 0.15, False),
    ("woff2", 0.05, False),
    ("js", 0.30, True),
    ("css", 0.10, True),
    ("svg", 0.10, True),
    ("json", 0.05, True),
]


def tree(root: Path, *, files: int, total: int) -> tuple[int, int]:
    """``files`` files of varied sizes (a long tail, like a real static tree) totalling
    ``total`` bytes under ``root``, in nested directories; returns (files, bytes) written."""
    rng = random.Random(5000)
    weights = [rng.lognormvariate(0, 1.3) for _ in range(files)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)  # exactly `total`
    text = _js(2_000_000, seed=7)  # sliced for text files: real-looking, never repeated whole
    css = _css(2_000_000, seed=8)
    kinds = [k for k, _, _ in _TREE_KINDS]
    shares = [s for _, s, _ in _TREE_KINDS]
    is_text = {k: t for k, _, t in _TREE_KINDS}
    written = 0
    for i, size in enumerate(sizes):
        kind = rng.choices(kinds, shares)[0]
        if kind == "css":
            data = _slice(css, size, rng)
        elif is_text[kind]:
            data = _slice(text, size, rng)
        else:
            data = rng.randbytes(size)
        path = root / f"d{i % 50:02d}" / f"s{i % 7}" / f"f{i:05d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += len(data)
    return files, written


def _slice(source: bytes, size: int, rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < size:
        start = rng.randrange(len(source))
        out += source[start : start + size - len(out)]
    return bytes(out)
