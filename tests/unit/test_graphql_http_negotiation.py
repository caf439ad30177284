"""Accept negotiation and request-error detection of the GraphQL endpoint (graphql_http.py)."""

from __future__ import annotations

import pytest
from strawberry.http import GraphQLHTTPResponse

from customer_graph.graphql_http import GRAPHQL_RESPONSE_JSON, JSON, is_request_error, negotiate


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, */*;q=0.1", GRAPHQL_RESPONSE_JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        (f"{JSON};q=0, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("text/plain", None),
        ("text/html", None),
        (f"{JSON};q=0", None),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, {JSON};q=0", None),
        (f"{JSON};q=oops", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"data": None, "errors": [{"message": "Syntax Error"}]}, True),
        ({"errors": [{"message": "Unknown field", "locations": []}]}, True),
        ({"data": None, "errors": [{"message": "boom", "path": ["profile"]}]}, False),
        ({"data": {"a": None}, "errors": [{"message": "x", "path": ["a"]}]}, False),
        ({"data": {"a": 1}}, False),
        ({"data": None}, False),
    ],
)
def test_request_errors_are_those_without_data_or_path(
    response: GraphQLHTTPResponse, expected: bool
) -> None:
    assert is_request_error(response) is expected
