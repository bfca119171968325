from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hashstatic.cache import DiskIndex
from hashstatic.stylesheets import reference_cycle, rewrite_stylesheet
from tests.conftest import write_files


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_stylesheet_is_hashed_after_its_references(tmp_path: Path) -> None:
    font = b"wOF2 font bytes"
    write_files(
        tmp_path, {"css/site.css": b"@font-face{src:url(../fonts/a.woff2)}", "fonts/a.woff2": font}
    )
    index = DiskIndex(tmp_path)
    served = f"@font-face{{src:url(../fonts/a.{md5(font)[:12]}.woff2)}}".encode()
    asset = index.lookup("css/site.css")
    assert asset is not None
    assert index.body("css/site.css") == served
    assert asset.digest == md5(served)
    assert asset.size == len(served)


def test_changed_font_changes_the_stylesheet_hash(tmp_path: Path) -> None:
    write_files(tmp_path, {"css/site.css": b"a{src:url(../fonts/a.woff2)}", "fonts/a.woff2": b"v1"})
    index = DiskIndex(tmp_path)
    before = index.lookup("css/site.css")
    (tmp_path / "fonts/a.woff2").write_bytes(b"v2, longer")
    after = index.lookup("css/site.css")
    assert before is not None and after is not None
    assert after.digest != before.digest
    assert (
        index.body("css/site.css")
        == f"a{{src:url(../fonts/a.{md5(b'v2, longer')[:12]}.woff2)}}".encode()
    )


def test_nested_import_changes_propagate(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "a.css": b'@import "b.css";',
            "b.css": b"x{background:url(img.png)}",
            "img.png": b"one",
        },
    )
    index = DiskIndex(tmp_path)
    first = index.lookup("a.css")
    (tmp_path / "img.png").write_bytes(b"two!")
    os.utime(tmp_path / "img.png", ns=(5, 5))
    second = index.lookup("a.css")
    assert first is not None and second is not None and first.digest != second.digest


def test_reference_cycle_is_left_unhashed_whichever_file_comes_first(tmp_path: Path) -> None:
    files = {
        "a.css": b'@import "b.css"; x{background:url(i.png)}',
        "b.css": b'@import "a.css";',
        "i.png": b"png",
    }
    write_files(tmp_path, files)
    one = DiskIndex(tmp_path)
    one_a, one_b = one.lookup("a.css"), one.lookup("b.css")
    two = DiskIndex(tmp_path)
    two_b, two_a = two.lookup("b.css"), two.lookup("a.css")
    assert one_a == two_a and one_b == two_b
    assert (
        one.body("a.css")
        == f'@import "b.css"; x{{background:url(i.{md5(b"png")[:12]}.png)}}'.encode()
    )
    assert one.body("b.css") is None  # nothing to hash in it: served as written


def test_reference_to_a_cycle_from_outside_is_hashed(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "main.css": b'@import "a.css";',
            "a.css": b'@import "b.css";',
            "b.css": b'@import "a.css";',
        },
    )
    index = DiskIndex(tmp_path)
    a = index.lookup("a.css")
    assert a is not None and index.lookup("main.css") is not None
    assert index.body("main.css") == f'@import "a.{a.digest[:12]}.css";'.encode()


def test_self_reference_is_left_alone(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.css": b"x{background:url(a.css)}"})
    index = DiskIndex(tmp_path)
    assert index.lookup("a.css") is not None
    assert index.body("a.css") is None  # unchanged: served from the file


@pytest.mark.parametrize(
    ("graph", "start", "cycle"),
    [
        pytest.param({"a.css": ["b.css"], "b.css": []}, "a.css", set(), id="no-cycle"),
        pytest.param({"a.css": ["a.css"]}, "a.css", {"a.css"}, id="self"),
        pytest.param(
            {"a.css": ["b.css"], "b.css": ["c.css"], "c.css": ["a.css"]},
            "b.css",
            {"a.css", "b.css", "c.css"},
            id="three",
        ),
        pytest.param(
            {"a.css": ["b.css", "x.png"], "b.css": ["a.css"], "x.png": []},
            "a.css",
            {"a.css", "b.css"},
            id="ignores-non-stylesheets",
        ),
        pytest.param(
            {"m.css": ["a.css"], "a.css": ["b.css"], "b.css": ["a.css"]},
            "m.css",
            set(),
            id="leads-into-cycle",
        ),
    ],
)
def test_reference_cycle(graph: dict[str, list[str]], start: str, cycle: set[str]) -> None:
    assert reference_cycle(start, lambda p: graph.get(p, [])) == cycle


def test_rewrite_keeps_comments_strings_and_unknown_urls(tmp_path: Path) -> None:
    write_files(tmp_path, {"i.png": b"i"})
    index = DiskIndex(tmp_path)
    css = b'/* url(i.png) */ a{content:"url(i.png)";b:url(none.png);c:url(data:x);d:url( "i.png" )}'
    out, used = rewrite_stylesheet(css, "s.css", "/static/", index.lookup)
    h = md5(b"i")[:12]
    assert out == css.replace(b'url( "i.png" )', f'url( "i.{h}.png" )'.encode())
    assert [a.path for a in used] == ["i.png"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "js/app.js",
            b"x=1;\n//# sourceMappingURL=app.js.map\n",
            b"//# sourceMappingURL=app.js.{h}.map",
            id="js",
        ),
        pytest.param(
            "js/app.mjs",
            b"x=1;\n//@ sourceMappingURL=app.js.map",
            b"//@ sourceMappingURL=app.js.{h}.map",
            id="legacy-at",
        ),
        pytest.param(
            "css/a.css",
            b"a{}\n/*# sourceMappingURL=../js/app.js.map */",
            b"/*# sourceMappingURL=../js/app.js.{h}.map */",
            id="css",
        ),
    ],
)
def test_source_map_comment_is_hashed(
    tmp_path: Path, name: str, text: bytes, expected: bytes
) -> None:
    write_files(tmp_path, {name: text, "js/app.js.map": b'{"version":3}'})
    index = DiskIndex(tmp_path)
    asset = index.lookup(name)
    body = index.body(name)
    assert body is not None and asset is not None
    assert expected.replace(b"{h}", md5(b'{"version":3}')[:12].encode()) in body
    assert asset.digest == md5(body)


def test_missing_source_map_is_left_alone(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.js": b"x=1;\n//# sourceMappingURL=app.js.map\n"})
    index = DiskIndex(tmp_path)
    asset = index.lookup("app.js")
    assert asset is not None and asset.digest == md5(b"x=1;\n//# sourceMappingURL=app.js.map\n")
    assert index.body("app.js") is None  # served from the file as it is


def test_only_the_last_source_map_comment_counts(tmp_path: Path) -> None:
    js = b"//# sourceMappingURL=a.map\nx\n//# sourceMappingURL=b.map\n"
    write_files(tmp_path, {"app.js": js, "a.map": b"a", "b.map": b"b"})
    index = DiskIndex(tmp_path)
    index.lookup("app.js")
    assert index.body("app.js") == js.replace(b"=b.map", f"=b.{md5(b'b')[:12]}.map".encode())


def test_changed_map_changes_the_script_hash(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.js": b"//# sourceMappingURL=app.js.map", "app.js.map": b"1"})
    index = DiskIndex(tmp_path)
    before = index.lookup("app.js")
    (tmp_path / "app.js.map").write_bytes(b"22")
    after = index.lookup("app.js")
    assert before is not None and after is not None and before.digest != after.digest
