"""GraphQL-over-HTTP through the real app: media types, status codes, GraphiQL on and off.

The full conformance suite (graphql-http's audit) runs in tests/e2e/test_graphql_http_audit.py;
these pin the behaviours one by one, with the reasons in customer_graph/graphql_http.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.graphiql import STATIC_PATH
from customer_graph.graphql_http import GRAPHQL_RESPONSE_JSON, JSON
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

KEY = f"cg_http_{unique('key')}"
AUTH = {"Authorization": f"Bearer {KEY}"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
INVALID = '{"query": "{ noSuchField }"}'
UNPARSABLE = '{"query": "{"}'


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dev_key": KEY})


async def post(
    settings: Settings, body: str, accept: str | None, **headers: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    sent = {**AUTH, "content-type": JSON, **headers}
    if accept is not None:
        sent["accept"] = accept
    async with asgi_client(create_app(settings)) as client:
        response = await client.post("/graphql", content=body, headers=sent)
    return response.status_code, dict(response.headers), response.json()


@pytest.mark.parametrize("body", [INVALID, UNPARSABLE])
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    driver: AsyncDriver, app_settings: Settings, body: str
) -> None:
    status, headers, payload = await post(app_settings, body, GRAPHQL_RESPONSE_JSON)
    assert status == 400
    assert headers["content-type"] == f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    assert "data" not in payload
    assert payload["errors"]


@pytest.mark.parametrize("body", [INVALID, UNPARSABLE])
async def test_request_errors_are_200_without_data_for_json(
    driver: AsyncDriver, app_settings: Settings, body: str
) -> None:
    status, headers, payload = await post(app_settings, body, JSON)
    assert status == 200
    assert headers["content-type"] == f"{JSON}; charset=utf-8"
    assert "data" not in payload
    assert payload["errors"]


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [(None, JSON), ("*/*", JSON), (f"{GRAPHQL_RESPONSE_JSON}, {JSON}", GRAPHQL_RESPONSE_JSON)],
)
async def test_success_is_200_in_the_negotiated_media_type(
    driver: AsyncDriver, app_settings: Settings, accept: str | None, media_type: str
) -> None:
    status, headers, payload = await post(app_settings, '{"query": "{ version }"}', accept)
    assert status == 200
    assert headers["content-type"] == f"{media_type}; charset=utf-8"
    assert "Accept" in headers["vary"]
    assert payload["data"] == {"version": payload["data"]["version"]}


async def test_unacceptable_accept_is_406(driver: AsyncDriver, app_settings: Settings) -> None:
    status, _, payload = await post(app_settings, '{"query": "{ version }"}', "text/plain")
    assert status == 406
    assert payload["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_bad_json_is_400_with_a_graphql_error(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    status, _, payload = await post(app_settings, "{not json", GRAPHQL_RESPONSE_JSON)
    assert status == 400
    assert payload["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_subscription_over_http_is_400_pointing_at_the_websocket(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    body = '{"query": "subscription { profileUpdated(id: \\"nobody\\") { id } }"}'
    status, _, payload = await post(app_settings, body, GRAPHQL_RESPONSE_JSON)
    assert status == 400
    assert payload["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in payload["errors"][0]["message"]


async def test_get_runs_queries_and_refuses_mutations_with_405(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    async with asgi_client(create_app(app_settings)) as client:
        query = await client.get("/graphql", params={"query": "{ version }"}, headers=AUTH)
        mutation = await client.get(
            "/graphql", params={"query": "mutation { version }"}, headers=AUTH
        )
    assert query.status_code == 200
    assert query.json()["data"]["version"]
    assert mutation.status_code == 405
    assert mutation.headers["allow"] == "POST"
    assert mutation.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_browser_gets_graphiql_from_the_service(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    async with asgi_client(create_app(app_settings)) as client:
        page = await client.get("/graphql", headers={"accept": BROWSER_ACCEPT})
        links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [url for url in links if not url.startswith("data:")]
        fetched = {url: await client.get(url) for url in assets}
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "://" not in page.text  # nothing from another origin
    assert sorted(url.split("?")[0] for url in assets) == [
        f"{STATIC_PATH}/graphiql.css",
        f"{STATIC_PATH}/graphiql.js",
    ]
    for url, response in fetched.items():
        assert response.status_code == 200, url
        assert len(response.content) > 10_000, url
    js = next(r for u, r in fetched.items() if ".js" in u)
    assert "javascript" in js.headers["content-type"]


async def test_graphiql_can_be_switched_off(driver: AsyncDriver, app_settings: Settings) -> None:
    off = app_settings.model_copy(update={"graphiql_enabled": False})
    async with asgi_client(create_app(off)) as client:
        page = await client.get("/graphql", headers={"accept": BROWSER_ACCEPT})
        asset = await client.get(f"{STATIC_PATH}/graphiql.js")
        query = await client.get("/graphql", params={"query": "{ version }"}, headers=AUTH)
    assert page.status_code == 400
    assert not page.headers["content-type"].startswith("text/html")
    assert page.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert asset.status_code == 404
    assert query.status_code == 200  # the API itself stays on
