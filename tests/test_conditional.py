from __future__ import annotations

import pytest

from hashstatic import conditional


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        pytest.param('"a"', ['"a"'], id="one"),
        pytest.param('"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"'], id="list"),
        pytest.param("*", ["*"], id="star"),
        pytest.param('"a,b", "c"', ['"a,b"', '"c"'], id="comma-inside"),
        pytest.param('bogus, "c"', ['"c"'], id="malformed-skipped"),
        pytest.param("", [], id="empty"),
    ],
)
def test_split_etags(header: str, tags: list[str]) -> None:
    assert conditional.split_etags(header) == tags


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        pytest.param('"abc"', '"abc-hs0123456789ab"', id="strong"),
        pytest.param('W/"abc"', 'W/"abc-hs0123456789ab"', id="weak"),
        pytest.param("abc", '"0123456789ab-hs0123456789ab"', id="malformed"),
    ],
)
def test_add_fingerprint_round_trips(etag: str, expected: str) -> None:
    tagged = conditional.add_fingerprint(etag, "0123456789ab")
    assert tagged == expected
    assert conditional.strip_fingerprint(tagged) == (
        tagged[: tagged.rindex("-hs")] + '"',
        "0123456789ab",
    )


def test_foreign_tag_is_not_ours() -> None:
    assert conditional.strip_fingerprint('"abc"') is None


def test_weak_match() -> None:
    assert conditional.weak_match(['W/"a"'], '"a"')
    assert conditional.weak_match(["*"], '"z"')
    assert not conditional.weak_match(['"a"'], '"b"')


def test_fingerprint_depends_on_digests_not_order() -> None:
    a = conditional.fingerprint([("a.css", "1"), ("b.js", "2")])
    assert a == conditional.fingerprint([("b.js", "2"), ("a.css", "1")])
    assert a != conditional.fingerprint([("a.css", "1"), ("b.js", "3")])
    assert len(a) == 12
