from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashstatic.naming import hashed_name, is_html, split_hash, unhashed_candidates, with_hash

H = "3f2a9c1b7d4e"  # 12 hex characters, the default hash length
H2 = "0123456789ab"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("app.js", f"app.{H}.js", id="extension"),
        pytest.param("css/app.js", f"css/app.{H}.js", id="nested"),
        pytest.param("app.min.js", f"app.min.{H}.js", id="last-extension-only"),
        pytest.param("LICENSE", f"LICENSE.{H}", id="no-extension"),
        pytest.param("dir.v2/file", f"dir.v2/file.{H}", id="dot-in-directory-only"),
        pytest.param("dir.v2/app.js", f"dir.v2/app.{H}.js", id="dot-in-directory-and-file"),
        pytest.param(".htaccess", f".htaccess.{H}", id="leading-dot-is-not-an-extension"),
        pytest.param("a/.eslintrc.json", f"a/.eslintrc.{H}.json", id="dotfile-with-extension"),
        pytest.param("app.", f"app.{H}.", id="trailing-dot"),
        pytest.param("a..js", f"a..{H}.js", id="double-dot"),
        pytest.param("café/naïve.css", f"café/naïve.{H}.css", id="non-ascii"),
        pytest.param("x." + H2, f"x.{H}.{H2}", id="hex-extension"),
    ],
)
def test_hashed_name(path: str, expected: str) -> None:
    assert hashed_name(path, H) == expected
    assert with_hash(path, H) == expected  # the index's unchecked form


@pytest.mark.parametrize(
    ("path", "digest"),
    [
        pytest.param("css/", H, id="directory"),
        pytest.param("", H, id="empty-path"),
        pytest.param("app.js", H.upper(), id="uppercase-hash"),
        pytest.param("app.js", "", id="empty-hash"),
        pytest.param("app.js", "3f2a.9c1b", id="hash-with-dot"),
        pytest.param("app.js", "xyz", id="not-hex"),
    ],
)
def test_hashed_name_rejects_what_cannot_be_read_back(path: str, digest: str) -> None:
    with pytest.raises(ValueError, match="directory|hexadecimal"):
        hashed_name(path, digest)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(f"a.{H}.css", ["a.css"], id="extension"),
        pytest.param(f"css/a.{H}.css", ["css/a.css"], id="nested"),
        pytest.param(f"LICENSE.{H}", ["LICENSE"], id="no-extension"),
        pytest.param(f"a.min.{H}.js", ["a.min.js"], id="last-extension-only"),
        pytest.param(f"dir.v2/file.{H}", ["dir.v2/file"], id="dot-in-directory"),
        pytest.param(f".htaccess.{H}", [".htaccess"], id="dotfile"),
        pytest.param(f".eslintrc.{H}.json", [".eslintrc.json"], id="dotfile-with-extension"),
        pytest.param(f"app.{H}.", ["app."], id="trailing-dot"),
        # x.<H2> hashed is x.<H>.<H2>; x.<H> hashed would be x.<h>.<H>, never x.<H>.<h>.
        pytest.param(f"x.{H}.{H2}", [f"x.{H2}"], id="two-hex-parts-hash-is-the-first"),
        pytest.param("a.css", [], id="unhashed"),
        pytest.param(f"a.{H.upper()}.css", [], id="uppercase-is-not-a-hash"),
        pytest.param(f"a.{H[:-1]}.css", [], id="hash-too-short"),
        pytest.param(f"a.{H}0.css", [], id="hash-too-long"),
        pytest.param(f"a.{H[:-1]}g.css", [], id="not-hex"),
        pytest.param(f".{H}.css", [], id="empty-stem"),
        pytest.param(f".{H}", [], id="empty-stem-no-extension"),
        pytest.param(f"{H}.css", [], id="hash-is-the-stem"),
        pytest.param(f"x.y.{H}", [], id="hash-after-an-extension"),
        pytest.param(f"dir.{H}/file.css", [], id="hash-in-a-directory"),
        pytest.param(f"a.{H}.css/", [], id="trailing-slash"),
        pytest.param("", [], id="empty"),
    ],
)
def test_unhashed_candidates(path: str, expected: list[str]) -> None:
    assert unhashed_candidates(path, len(H)) == expected


def test_unhashed_candidates_uses_the_given_length() -> None:
    assert unhashed_candidates(f"a.{H}.css", 8) == []
    assert unhashed_candidates(f"a.{H[:8]}.css", 8) == ["a.css"]


def test_split_hash_returns_the_hash() -> None:
    assert split_hash(f"css/a.min.{H}.css", len(H)) == ("css/a.min.css", H)


@pytest.mark.parametrize("length", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")])
def test_split_hash_of_a_non_positive_length_is_none(length: int) -> None:
    assert split_hash("a..css", length) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("index.html", True, id="html"),
        pytest.param("docs/page.htm", True, id="htm"),
        pytest.param("INDEX.HTML", True, id="uppercase"),
        pytest.param("a.Htm", True, id="mixed-case"),
        pytest.param("a.xhtml", False, id="xhtml-is-not-a-page-suffix-we-know"),
        pytest.param("page.html.gz", False, id="compressed"),
        pytest.param("html", False, id="bare-word"),
        pytest.param("dir.html/app.js", False, id="html-directory"),
        pytest.param("app.css", False, id="stylesheet"),
    ],
)
def test_is_html(path: str, expected: bool) -> None:
    assert is_html(path) is expected


_segment = st.text(alphabet="ab.0f-é", min_size=1, max_size=8)
_paths = st.builds(
    "/".join, st.lists(_segment, min_size=1, max_size=4)
)  # every segment non-empty, so the last one names a file
_digests = st.text(alphabet="0123456789abcdef", min_size=8, max_size=32)


@given(path=_paths, digest=_digests)
def test_unhashed_candidates_inverts_hashed_name(path: str, digest: str) -> None:
    assert unhashed_candidates(hashed_name(path, digest), len(digest)) == [path]


@given(path=st.text(alphabet="a.0f/E", max_size=12), length=st.integers(1, 3))
def test_split_hash_accepts_only_what_hashed_name_produces(path: str, length: int) -> None:
    split = split_hash(path, length)
    if split is not None:
        unhashed, digest = split
        assert len(digest) == length
        assert hashed_name(unhashed, digest) == path
