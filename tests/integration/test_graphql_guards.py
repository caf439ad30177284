"""Guards: hostile documents are refused with coded errors before any Cypher runs; unexpected
errors are masked; introspection can be switched off."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
import pytest_asyncio
import strawberry
from graphql import get_introspection_query
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.resolvers.context import Context
from customer_graph.resolvers.guards import ErrorPolicy, GuardedSchema, Limits, QueryGuards
from customer_graph.settings import Settings
from tests.helpers import asgi_client
from tests.integration.graphql_seed import CountingDriver, counting_client, gql

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def guarded(
    driver: AsyncDriver, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, CountingDriver]]:
    async with counting_client(settings) as pair:
        yield pair


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


async def refused(
    guarded: tuple[httpx.AsyncClient, CountingDriver], query: str, **variables: Any
) -> dict[str, Any]:
    client, counting = guarded
    before = len(counting.queries)
    body = await gql(client, query, **variables)
    assert body.get("data") is None, body
    assert body["errors"], body
    assert len(counting.queries) == before, "a refused operation ran Cypher"
    return body


async def test_depth_bomb(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    nested = "id"
    for _ in range(20):
        nested = f"records {{ profile {{ {nested} }} }}"
    body = await refused(guarded, f'{{ profile(id: "x") {{ {nested} }} }}')
    assert codes(body) == ["MAX_DEPTH_EXCEEDED"]


async def test_500_aliases(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    aliases = " ".join(f"a{n}: version" for n in range(500))
    body = await refused(guarded, f'{{ p: profile(id: "x") {{ id }} {aliases} }}')
    assert codes(body) == ["TOO_MANY_ALIASES"]


async def test_circular_fragments(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    query = """
    { profile(id: "x") { ...A } }
    fragment A on Profile { records { profile { ...B } } }
    fragment B on Profile { records { profile { ...A } } }
    """
    body = await refused(guarded, query)
    assert "GRAPHQL_VALIDATION_FAILED" in codes(body)
    assert any("Cannot spread fragment" in e["message"] for e in body["errors"])


async def test_first_100000(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    literal = '{ profile(id: "x") { interactions(first: 100000) { totalCount } } }'
    assert codes(await refused(guarded, literal)) == ["PAGE_SIZE_TOO_LARGE"]
    by_variable = 'query($n: Int!) { searchProfiles(query: "a", first: $n) { totalCount } }'
    assert codes(await refused(guarded, by_variable, n=100000)) == ["PAGE_SIZE_TOO_LARGE"]
    # The same document with a fine page size passes, and is then known (its validation is
    # cached); the page size is still checked on every request.
    client, _ = guarded
    assert "errors" not in await gql(client, by_variable, n=5)
    assert codes(await refused(guarded, by_variable, n=100000)) == ["PAGE_SIZE_TOO_LARGE"]
    negative = '{ profile(id: "x") { timeline(first: -1) { edges { cursor } } } }'
    assert codes(await refused(guarded, negative)) == ["BAD_USER_INPUT"]


async def test_too_many_ids(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    body = await refused(
        guarded, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=["x"] * 101
    )
    assert codes(body) == ["INPUT_LIST_TOO_LONG"]


async def test_cost_is_bounded_and_reported(
    guarded: tuple[httpx.AsyncClient, CountingDriver],
) -> None:
    costly = """{ searchProfiles(query: "a", first: 100) { nodes {
        interactions(first: 100) { nodes { profile {
          interactions(first: 100) { nodes { id } } } } } } } }"""
    body = await refused(guarded, costly)
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    cost = body["extensions"]["cost"]
    assert cost["requested"] > cost["limit"] == 25_000

    client, _ = guarded
    fine = await gql(client, '{ searchProfiles(query: "zzqqxx", first: 5) { totalCount } }')
    assert "errors" not in fine
    assert 0 < fine["extensions"]["cost"]["requested"] <= fine["extensions"]["cost"]["limit"]


async def test_known_document_cost_follows_its_variables(
    guarded: tuple[httpx.AsyncClient, CountingDriver],
) -> None:
    # The analysis of a known document is kept per shape of its variables: a repeated request
    # reuses it, other page sizes or list lengths are analysed (and refused) afresh.
    client, _ = guarded
    query = """query($n: Int!, $ids: [ID!]!) {
      nodes(ids: $ids) { id } searchProfiles(query: "zzqqxx", first: $n) { nodes { id } } }"""
    costs = []
    for n, ids in ((5, 1), (5, 1), (50, 1), (5, 1), (5, 3), (5, 1)):
        body = await gql(client, query, n=n, ids=["x"] * ids)
        assert "errors" not in body, body
        costs.append(body["extensions"]["cost"]["requested"])
    assert costs == [7, 7, 52, 7, 9, 7]
    assert codes(await refused(guarded, query, n=100000, ids=["x"])) == ["PAGE_SIZE_TOO_LARGE"]
    assert codes(await refused(guarded, query, n=5, ids=["x"] * 101)) == ["INPUT_LIST_TOO_LONG"]
    assert codes(await refused(guarded, query, n=-1, ids=["x"])) == ["BAD_USER_INPUT"]


async def test_token_limit(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    fields = " ".join(["version"] * 6000)
    assert codes(await refused(guarded, f"{{ {fields} }}")) == ["TOO_MANY_TOKENS"]


async def test_graphiql_introspection_passes_the_guards(
    guarded: tuple[httpx.AsyncClient, CountingDriver],
) -> None:
    client, _ = guarded
    body = await gql(client, get_introspection_query(descriptions=True))
    assert "errors" not in body, body.get("errors")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_bad_cursor_is_a_client_error(
    guarded: tuple[httpx.AsyncClient, CountingDriver],
) -> None:
    client, _ = guarded
    body = await gql(
        client,
        '{ searchProfiles(query: "a", after: "bm9wZQ==") { totalCount } }',
    )
    assert codes(body) == ["INVALID_CURSOR"]


async def test_introspection_switched_off(settings: Settings) -> None:
    closed = settings.model_copy(update={"introspection_enabled": False})
    async with asgi_client(create_app(closed)) as client:
        body = await gql(client, "{ __schema { types { name } } }")
        assert set(codes(body)) == {"INTROSPECTION_DISABLED"}
        # No schema hints in validation errors either.
        body = await gql(client, '{ profil(id: "x") { id } }')
        assert "Did you mean" not in body["errors"][0]["message"]
        assert (await gql(client, "{ __typename version }"))["data"]["__typename"] == "Query"


# An unexpected failure inside a resolver, with data and Cypher in its message.
LEAK = "MATCH (c:Customer {email: 'ada@example.com'}) RETURN c // +44 20 7946 0958"


@strawberry.type
class FailingQuery:
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError(LEAK)


async def test_unexpected_errors_are_masked(
    driver: AsyncDriver, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    schema = GuardedSchema(
        query=FailingQuery, extensions=[partial(QueryGuards, Limits()), ErrorPolicy]
    )
    with caplog.at_level(logging.DEBUG, logger="customer_graph"):
        result = await schema.execute(
            "{ boom }", context_value=Context(driver=driver, settings=settings)
        )
    [error] = result.errors or []
    formatted = error.formatted
    assert formatted["message"] == "Unexpected error."
    assert formatted["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "ada@example.com" not in str(formatted) and "MATCH" not in str(formatted)
    logged = caplog.text
    assert "RuntimeError" in logged and "boom" in logged
    assert "ada@example.com" not in logged and "MATCH (c" not in logged


async def test_fragment_bomb(guarded: tuple[httpx.AsyncClient, CountingDriver]) -> None:
    # Each fragment spreads the next one twice: 2^30 selections from a few hundred tokens.
    levels = 30
    fragments = "\n".join(
        f'fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} profile(id: "x") {{ id }} }}'
        for n in range(levels)
    )
    query = f"{{ ...F0 }}\n{fragments}\nfragment F{levels} on Query {{ version }}"
    assert codes(await refused(guarded, query)) == ["QUERY_TOO_COMPLEX"]
