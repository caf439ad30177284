"""Browser safety through the real ASGI app: CSRF, mutations over GET, CORS, bounded bodies."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import pytest
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.security import BodyTooLargeError, gunzip_bounded
from customer_graph.settings import Settings
from tests.helpers import asgi_client

VERSION = '{"query": "{ version }"}'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "query=%7B+version+%7D"),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="q"\r\n'),
        ("text/plain", VERSION),
        (None, VERSION),
    ],
)
async def test_non_json_posts_to_graphql_are_refused(
    driver: AsyncDriver, settings: Settings, content_type: str | None, body: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with asgi_client(create_app(settings)) as client:
        response = await client.post("/graphql", content=body.encode(), headers=headers)
    assert response.status_code == 415
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in error["message"]


async def test_json_post_still_works(driver: AsyncDriver, settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        response = await client.post(
            "/graphql", content=VERSION, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["data"]["version"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_mutation_over_get_is_refused(driver: AsyncDriver, settings: Settings) -> None:
    mutation = (
        'mutation { upsertCustomer(input: {source: "t", sourceId: "x"}) { userErrors { code } } }'
    )
    async with asgi_client(create_app(settings)) as client:
        response = await client.get(
            "/graphql", params={"query": mutation}, headers={"accept": "application/json"}
        )
        query = await client.get(
            "/graphql", params={"query": "{ version }"}, headers={"accept": "application/json"}
        )
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert "mutation" in response.text.lower()
    assert query.status_code == 200


async def test_cors_is_off_by_default(driver: AsyncDriver, settings: Settings) -> None:
    origin = {"origin": "https://evil.example"}
    async with asgi_client(create_app(settings)) as client:
        preflight = await client.options(
            "/graphql", headers={**origin, "access-control-request-method": "POST"}
        )
        simple = await client.get("/healthz", headers=origin)
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers
    assert simple.status_code == 200


async def test_cors_allows_only_listed_origins(driver: AsyncDriver, settings: Settings) -> None:
    allowed = "https://app.example"
    configured = settings.model_copy(update={"cors_origins": [allowed]})
    preflight_headers = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with asgi_client(create_app(configured)) as client:
        ok = await client.options("/graphql", headers={"origin": allowed, **preflight_headers})
        bad = await client.options(
            "/graphql", headers={"origin": "https://evil.example", **preflight_headers}
        )
        simple = await client.get("/healthz", headers={"origin": allowed})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == allowed
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in ok.headers
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers
    assert simple.headers["access-control-allow-origin"] == allowed


def _small(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": 1000})


@pytest.mark.parametrize("path", ["/graphql", "/healthz", "/v1/batch", "/nowhere"])
async def test_declared_oversized_bodies_get_413_on_every_route(
    driver: AsyncDriver, settings: Settings, path: str
) -> None:
    body = json.dumps({"query": "{ version }", "pad": "x" * 2000})
    async with asgi_client(create_app(_small(settings))) as client:
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert "1000 bytes" in response.text


async def test_streamed_oversized_body_gets_413(driver: AsyncDriver, settings: Settings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ version }", "pad": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    async with asgi_client(create_app(_small(settings))) as client:
        response = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        after = await client.post(
            "/graphql", content=VERSION, headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert after.status_code == 200


def test_gunzip_bounded_refuses_bombs() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(BodyTooLargeError):
        gunzip_bounded(bomb, 100_000)
    assert gunzip_bounded(gzip.compress(b"hello"), 100) == b"hello"
    with pytest.raises(ValueError, match="gzip"):
        gunzip_bounded(b"not gzip", 100)
    with pytest.raises(ValueError, match="truncated"):
        gunzip_bounded(gzip.compress(b"hello world" * 10)[:-12], 1000)
