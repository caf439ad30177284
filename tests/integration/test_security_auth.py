"""Every GraphQL request over HTTP needs a valid key: none, unknown or revoked keys get 401."""

from __future__ import annotations

from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.graph.keys import revoke_key
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

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
