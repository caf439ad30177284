"""Cursors: any parts a connection encodes come back as they were, and nothing else decodes."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from customer_graph.resolvers.errors import ApiError
from customer_graph.schema.node import decode_cursor, encode_cursor


@given(st.lists(st.text(), min_size=1, max_size=3))
@example(["2024-05-01T10:00:00+00:00", "interaction:é"])
@example(["a\ud800b"])  # a lone surrogate (a JSON request may carry one as an escape)
def test_a_cursor_gives_back_its_parts(parts: list[str]) -> None:
    cursor = encode_cursor(*parts)
    assert cursor.isascii() and "+" not in cursor and "/" not in cursor  # URL-safe
    assert decode_cursor(cursor, len(parts)) == parts


def test_cursors_made_by_the_earlier_encoder_still_decode() -> None:
    # The standard library's JSON, with its spaces and ASCII escapes.
    old = base64.urlsafe_b64encode(b'["2024-05-01T10:00:00+00:00", "interaction:\\u00e9"]')
    parts = decode_cursor(old.decode(), 2)
    assert parts == ["2024-05-01T10:00:00+00:00", "interaction:é"]


@pytest.mark.parametrize(
    "cursor",
    ["", "not base64!", base64.urlsafe_b64encode(b'{"a": 1}').decode(), encode_cursor("a", "b")],
)
def test_anything_else_is_a_client_error(cursor: str) -> None:
    with pytest.raises(ApiError):
        decode_cursor(cursor, 3)
