"""Every GraphQL request over HTTP needs a valid key: none, unknown or revoked keys get 401."""

from __future__ import annotations

import base64

import httpx
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.graph.keys import revoke_key
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique
from tests.integration.graphql_seed import counting_client, seed_person

QUERY = {"query": "{ version }"}


async def test_graphql_without_a_key_is_401(driver: AsyncDriver, settings: Settings) -> None:
    async with asgi_client(create_app(settings), graphql_key="") as client:
        post = await client.post("/graphql", json=QUERY)
        get = await client.get("/graphql", params=QUERY, headers={"accept": "application/json"})
        ide = await client.get("/graphql", headers={"accept": "text/html"})
    for response in (post, get):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert "Authorization: Bearer" in error["message"]
    assert ide.status_code == 200  # GraphiQL's page holds no data; its queries need a key
    assert "graphiql" in ide.text.lower()


async def test_unknown_malformed_and_revoked_keys_are_401(
    driver: AsyncDriver, settings: Settings
) -> None:
    key, row = await create_key(driver, settings, scopes=[Scope.READ], source=unique("src"))
    async with asgi_client(create_app(settings), graphql_key="") as client:
        ok = await client.post("/graphql", json=QUERY, headers={"authorization": f"Bearer {key}"})
        unknown = await client.post(
            "/graphql", json=QUERY, headers={"authorization": f"Bearer {key}x"}
        )
        malformed = await client.post(
            "/graphql", json=QUERY, headers={"authorization": "Bearer " + "x" * 5000}
        )
        scheme = await client.post(
            "/graphql", json=QUERY, headers={"authorization": f"Token {key}"}
        )
        await revoke_key(driver, settings.neo4j_database, row.id)
        revoked = await client.post(
            "/graphql", json=QUERY, headers={"authorization": f"Bearer {key}"}
        )
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["version"]
    for response in (unknown, malformed, scheme, revoked):
        assert response.status_code == 401, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "unknown or revoked" in revoked.text


async def test_the_development_key_works(driver: AsyncDriver, settings: Settings) -> None:
    assert settings.dev_key
    async with asgi_client(create_app(settings), graphql_key=settings.dev_key) as client:
        response = await client.post("/graphql", json=QUERY)
    assert response.status_code == 200
    assert "errors" not in response.json()


UPSERT = {
    "query": "mutation ($input: UpsertCustomerInput!) "
    "{ upsertCustomer(input: $input) { userErrors { code } } }",
}


def _upsert(source: str, source_id: str) -> dict[str, object]:
    return {**UPSERT, "variables": {"input": {"source": source, "sourceId": source_id}}}


async def _records(driver: AsyncDriver, settings: Settings, source_id: str) -> int:
    records, _, _ = await driver.execute_query(
        "MATCH (c:Customer {sourceId: $id}) RETURN count(c) AS n",
        id=source_id,
        database_=settings.neo4j_database,
    )
    n: int = records[0]["n"]
    return n


async def test_a_known_key_revoked_mid_use_gets_401_and_writes_nothing(
    driver: AsyncDriver, settings: Settings
) -> None:
    """A key this process has seen valid is checked again beside each request: once revoked,
    its next read is refused, and its next mutation is refused before it writes."""
    source = unique("src")
    key, row = await create_key(driver, settings, scopes=[Scope.READ, Scope.WRITE], source=source)
    written, refused = unique("ok"), unique("late")
    auth = {"authorization": f"Bearer {key}"}
    async with asgi_client(create_app(settings), graphql_key="") as client:
        first = await client.post("/graphql", json=_upsert(source, written), headers=auth)
        again = await client.post("/graphql", json=QUERY, headers=auth)
        await revoke_key(driver, settings.neo4j_database, row.id)
        mutation = await client.post("/graphql", json=_upsert(source, refused), headers=auth)
        read = await client.post("/graphql", json=QUERY, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["upsertCustomer"]["userErrors"] == []
    assert again.status_code == 200 and again.json()["data"]["version"]
    for response in (mutation, read):
        assert response.status_code == 401, response.text
        assert "data" not in response.json()
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _records(driver, settings, written) == 1
    assert await _records(driver, settings, refused) == 0


async def test_a_known_key_whose_scopes_changed_runs_with_its_new_scopes(
    driver: AsyncDriver, settings: Settings
) -> None:
    """If the graph says a known key now has other scopes, the request runs again with them."""
    source = unique("src")
    key, row = await create_key(driver, settings, scopes=[Scope.READ, Scope.WRITE], source=source)
    refused = unique("narrowed")
    auth = {"authorization": f"Bearer {key}"}
    async with asgi_client(create_app(settings), graphql_key="") as client:
        assert (await client.post("/graphql", json=QUERY, headers=auth)).status_code == 200
        await driver.execute_query(
            "MATCH (k:ApiKey {id: $id}) SET k.scopes = ['read']",
            id=row.id,
            database_=settings.neo4j_database,
        )
        mutation = await client.post("/graphql", json=_upsert(source, refused), headers=auth)
        read = await client.post("/graphql", json=QUERY, headers=auth)
    assert mutation.status_code == 200, mutation.text
    assert mutation.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert read.status_code == 200 and read.json()["data"]["version"]
    assert await _records(driver, settings, refused) == 0


PAGE = {
    "query": "query ($id: ID!) { profile(id: $id) { id displayName identifiers { type value } "
    "timeline(first: 5) { edges { cursor } } deals { id } } }"
}


def _page_of(profile_id: str) -> dict[str, object]:
    return {**PAGE, "variables": {"id": profile_id}}


async def test_a_known_keys_profile_page_confirms_the_key_in_its_own_round_trip(
    driver: AsyncDriver, settings: Settings
) -> None:
    """Once a key is known, its profile page is one round trip to the graph, the key's
    confirmation included; revoked meanwhile, the same round trip refuses it."""
    person = await seed_person(driver, settings)
    key, row = await create_key(driver, settings, scopes=[Scope.READ], source=unique("src"))
    auth = {"authorization": f"Bearer {key}"}
    async with counting_client(settings) as (client, counting):

        async def page() -> tuple[httpx.Response, int]:
            before = len(counting.queries)
            response = await client.post("/graphql", json=_page_of(person.profile_id), headers=auth)
            return response, len(counting.queries) - before

        first, first_trips = await page()
        known, known_trips = await page()
        await revoke_key(driver, settings.neo4j_database, row.id)
        revoked, revoked_trips = await page()
    assert first.status_code == 200 and known.status_code == 200, known.text
    assert known.json() == first.json()
    assert (
        base64.b64decode(known.json()["data"]["profile"]["id"]).decode().endswith(person.profile_id)
    )
    assert known.json()["data"]["profile"]["identifiers"]
    assert (first_trips, known_trips, revoked_trips) == (2, 1, 1)
    assert revoked.status_code == 401, revoked.text
    assert "data" not in revoked.json()


async def test_a_known_key_is_confirmed_by_a_lookup_when_no_read_carries_it(
    driver: AsyncDriver, settings: Settings
) -> None:
    """An unknown profile (no row to carry the key) and a request that reads nothing still get
    their key confirmed, by a lookup of its own: 401 once revoked, as everywhere."""
    key, row = await create_key(driver, settings, scopes=[Scope.READ], source=unique("src"))
    auth = {"authorization": f"Bearer {key}"}
    missing = _page_of(unique("no-such-profile"))
    async with counting_client(settings) as (client, counting):
        assert (await client.post("/graphql", json=QUERY, headers=auth)).status_code == 200
        before = len(counting.queries)
        unknown = await client.post("/graphql", json=missing, headers=auth)
        unknown_trips = len(counting.queries) - before
        version = await client.post("/graphql", json=QUERY, headers=auth)
        await revoke_key(driver, settings.neo4j_database, row.id)
        refused = [
            await client.post("/graphql", json=body, headers=auth) for body in (missing, QUERY)
        ]
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["data"]["profile"] is None
    assert unknown_trips == 2  # the page, then the key's own lookup
    assert version.status_code == 200 and version.json()["data"]["version"]
    for response in refused:
        assert response.status_code == 401, response.text
        assert "data" not in response.json()


async def test_a_known_key_whose_scopes_changed_is_refused_its_page_by_the_carried_answer(
    driver: AsyncDriver, settings: Settings
) -> None:
    """The page's round trip says the key lost its read scope: the page runs again with the
    key's scopes now, and its fields are forbidden."""
    person = await seed_person(driver, settings)
    key, row = await create_key(
        driver, settings, scopes=[Scope.READ, Scope.WRITE], source=unique("src")
    )
    auth = {"authorization": f"Bearer {key}"}
    async with counting_client(settings) as (client, _):
        body = _page_of(person.profile_id)
        assert (await client.post("/graphql", json=body, headers=auth)).status_code == 200
        await driver.execute_query(
            "MATCH (k:ApiKey {id: $id}) SET k.scopes = ['write']",
            id=row.id,
            database_=settings.neo4j_database,
        )
        narrowed = await client.post("/graphql", json=body, headers=auth)
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["data"] is None or narrowed.json()["data"]["profile"] is None
    assert narrowed.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
