"""Subject transforms as the server checks them (each row seen on nats-server 2.15; the corpus
in test_corpus.py checks thousands more against a live server)."""

from __future__ import annotations

import pytest

from reconciler.subjects import transform_error


@pytest.mark.parametrize(
    ("src", "dest", "mapping", "error"),
    [
        ("a.*", "b.$1", True, None),
        ("a.*", "b.{{wildcard(0)}}", True, None),  # the server checks only the upper bound
        ("a.*", "b.{{left(1,2)}}", True, None),
        ("a.*", "b.{{right(1,2)}}", True, None),
        ("a", "{{partition(3)}}", True, None),
        ("", "", True, None),
        ("a", "x.{{wildcard(5)}}", True, "{{wildcard(5)}} needs a wildcard, but the source 'a' "
         "has none"),
        ("a.*", "b.{{left(1)}}", True, "{{left(1)}} needs two arguments"),
        ("a", "{{foo(1)}}", True, "{{foo(1)}} is not a known function"),
        ("a.*", "b.{{wildcard(1,2)}}", True, "{{wildcard(1,2)}} has too many arguments"),
        ("x.a", "rp.x.>", False, "'rp.x.>' ends in '>', which only a source ending in '>' can "
         "fill"),
        (">", "rp", False, "the source '>' ends in '>', so the destination must end in '>' too"),
        ("a.*", "b.*", True, "'b.*' has '*': a destination names each wildcard it uses"),
        ("a.*", "b c.$1", True, "'b c.$1' contains whitespace"),
        ("a.*", "b c.$1", False, None),  # a republish is only built, never validated as a subject
        ("a.*", "b..c", True, "'b..c' is not a valid subject"),
    ],
)
def test_transform_error(src: str, dest: str, mapping: bool, error: str | None) -> None:
    got = transform_error(src, dest, mapping=mapping)
    if error is None:
        assert got is None
    else:
        assert got is not None and got.startswith(error)
