"""The canonical JSON that traits are stored in: equal values give equal text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from customer_graph.graph.profile_refresh import dumps

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_reads_back_as_the_same_value(traits: dict[str, Any]) -> None:
    assert json.loads(dumps(traits)) == traits


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_key_order_does_not_change_the_text(traits: dict[str, Any]) -> None:
    reordered = dict(reversed(list(traits.items())))
    assert dumps(reordered) == dumps(traits)


def test_is_compact_sorted_and_keeps_text_as_it_came() -> None:
    assert dumps({"b": 1, "a": "Zoë 😀", "c": [1.5, None]}) == '{"a":"Zoë 😀","b":1,"c":[1.5,null]}'


def test_integers_beyond_64_bits_keep_every_digit() -> None:
    big = 2**70 + 1
    assert json.loads(dumps({"n": big})) == {"n": big}


def test_numbers_that_are_not_json_become_null() -> None:
    assert dumps({"x": float("nan"), "y": float("inf")}) == '{"x":null,"y":null}'


def test_times_are_written_as_str_writes_them() -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert dumps({"at": at}) == '{"at":"2024-05-01 12:00:00+00:00"}'
