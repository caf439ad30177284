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
