"""Scopes over websockets (a real uvicorn) and through mutation payloads (nested fields)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from neo4j import AsyncDriver
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.settings import Settings
from tests.e2e.live_server import live_server
from tests.helpers import asgi_client, assert_no_errors, unique

PROTOCOL = "graphql-transport-ws"
SUBSCRIBE = "subscription ($id: ID!) { profileUpdated(id: $id) { id traits } }"
UPSERT = """mutation ($input: UpsertCustomerInput!) { upsertCustomer(input: $input) {
  userErrors { code } profile { id email } } }"""


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    assert settings.dev_key
    with live_server(CUSTOMER_GRAPH_DEV_KEY=settings.dev_key) as base:
        yield base


def _ws(server: str) -> str:
    return server.replace("http://", "ws://") + "/graphql"


async def _open(server: str, payload: dict[str, Any], **kwargs: Any) -> ClientConnection:
    socket = await connect(_ws(server), subprotocols=[PROTOCOL], **kwargs)
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def _closed_with(socket: ClientConnection) -> int | None:
    try:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


async def _next(socket: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))
            continue
        return message


async def _upsert(server: str, key: str, source_id: str, plan: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": UPSERT,
                "variables": {
                    "input": {"source": "crm", "sourceId": source_id, "traits": {"plan": plan}}
                },
            },
            headers={"authorization": f"Bearer {key}"},
        )
    body: dict[str, Any] = response.json()
    return body


async def test_websocket_without_a_valid_key_is_refused(server: str) -> None:
    no_key = await _open(server, {})
    assert await _closed_with(no_key) == 4403
    unknown = await _open(server, {"Authorization": f"Bearer cg_{unique('nokey')}"})
    assert await _closed_with(unknown) == 4403
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            _ws(server),
            subprotocols=[PROTOCOL],
            additional_headers={"Authorization": f"Bearer cg_{unique('nokey')}"},
        )
    assert refused.value.response.status_code == 401


async def test_subscription_needs_read(
    server: str, driver: AsyncDriver, settings: Settings
) -> None:
    assert settings.dev_key
    source = unique("ws")
    write_key, _ = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    read_key, _ = await create_key(driver, settings, scopes=[Scope.READ], source=source)
    tag = unique("wsp")
    created = await _upsert(server, settings.dev_key, tag, "free")
    profile_id = assert_no_errors(created)["upsertCustomer"]["profile"]["id"]
    subscribe = {
        "type": "subscribe",
        "payload": {"query": SUBSCRIBE, "variables": {"id": profile_id}},
    }

    # The key in the handshake's header is enough; a write key gets FORBIDDEN.
    denied = await connect(
        _ws(server),
        subprotocols=[PROTOCOL],
        additional_headers={"Authorization": f"Bearer {write_key}"},
    )
    try:
        await denied.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await _next(denied))["type"] == "connection_ack"
        await denied.send(json.dumps({"id": "1", **subscribe}))
        refused = await _next(denied)
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], refused
    finally:
        await denied.close()

    allowed = await _open(server, {"Authorization": f"Bearer {read_key}"})
    try:
        assert (await _next(allowed))["type"] == "connection_ack"
        await allowed.send(json.dumps({"id": "2", **subscribe}))
        pushed = None
        for n in range(10):  # a subscribe is not acknowledged: write until the first push
            await _upsert(server, settings.dev_key, tag, f"plan-{n}")
            try:
                pushed = await asyncio.wait_for(_next(allowed), 2)
                break
            except TimeoutError:
                continue
        assert pushed is not None and pushed["type"] == "next", pushed
        assert pushed["payload"]["data"]["profileUpdated"]["id"] == profile_id
    finally:
        await allowed.close()


async def test_mutation_payload_objects_need_read(driver: AsyncDriver, settings: Settings) -> None:
    source = unique("nested")
    write_only, _ = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    both, _ = await create_key(driver, settings, scopes=[Scope.WRITE, Scope.READ], source=source)
    email = f"{unique('nested')}@example.com"

    async def upsert(key: str, source_id: str) -> dict[str, Any]:
        async with asgi_client(create_app(settings), graphql_key=key) as client:
            response = await client.post(
                "/graphql",
                json={
                    "query": UPSERT,
                    "variables": {
                        "input": {
                            "source": source,  # a write key writes its own source
                            "sourceId": source_id,
                            "identifiers": [{"type": "email", "value": email}],
                        }
                    },
                },
            )
        body: dict[str, Any] = response.json()
        return body

    tag = unique("n")
    denied = await upsert(write_only, tag)
    assert [e["extensions"]["code"] for e in denied["errors"]] == ["FORBIDDEN"]
    assert denied["errors"][0]["path"] == ["upsertCustomer", "profile"]
    assert denied["data"]["upsertCustomer"]["profile"] is None
    assert email not in json.dumps(denied)
    allowed = assert_no_errors(await upsert(both, tag))["upsertCustomer"]
    assert allowed["profile"]["email"] == email  # the write key's write did land
