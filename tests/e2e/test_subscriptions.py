"""profileUpdated over graphql-transport-ws: a real websocket client against a real uvicorn.

Writes go in as GraphQL mutations over HTTP to the same server; every write that touches the
subscribed profile (a trait change, a new interaction, a merge) pushes the profile anew.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from neo4j import AsyncDriver
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.live_server import live_server
from tests.helpers import unique

pytestmark = pytest.mark.slow

KEY = f"cg_subs_{unique('key')}"
PROTOCOL = "graphql-transport-ws"

SUBSCRIBE = """
subscription ($id: ID!) {
  profileUpdated(id: $id) {
    id traits
    records { sourceId }
    interactions(first: 5) { totalCount }
  }
}
"""

UPSERT = """
mutation ($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) { profile { id } userErrors { code } }
}
"""

RECORD = """
mutation ($input: RecordInteractionInput!) {
  recordInteraction(input: $input) { interaction { id } userErrors { code } }
}
"""


@pytest.fixture(scope="module")
def server(driver: AsyncDriver) -> Iterator[str]:
    with live_server(CUSTOMER_GRAPH_DEV_KEY=KEY) as base:
        yield base


@pytest_asyncio.fixture(loop_scope="session")
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ) as client:
        yield client


async def mutate(http: httpx.AsyncClient, query: str, **input_: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": {"input": input_}})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def open_socket(server: str) -> ClientConnection:
    socket = await connect(server.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL])
    assert socket.subprotocol == PROTOCOL
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {KEY}"}})
    )
    ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    return socket


async def receive(socket: ClientConnection, timeout: float) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout))
    if message["type"] == "ping":
        await socket.send(json.dumps({"type": "pong"}))
        return await receive(socket, timeout)
    return message


async def test_profile_updated_pushes_every_write(server: str, http: httpx.AsyncClient) -> None:
    tag = unique("sub")
    email = f"{tag}@example.com"
    created = await mutate(
        http,
        UPSERT,
        source="crm",
        sourceId=tag,
        traits={"plan": "free"},
        identifiers=[{"type": "email", "value": email}],
    )
    profile_id = created["upsertCustomer"]["profile"]["id"]

    socket = await open_socket(server)
    try:
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"id": profile_id}},
                }
            )
        )
        # The protocol does not acknowledge a subscribe, so write until the first push comes.
        first = None
        for n in range(10):
            await mutate(
                http,
                RECORD,
                source="crm",
                sourceId=tag,
                id=f"{tag}-warmup-{n}",
                type="NOTE",
                occurredAt="2024-01-01T00:00:00Z",
            )
            try:
                first = await receive(socket, 2)
                break
            except TimeoutError:
                continue
        assert first is not None, "no push after 10 writes"
        assert first["type"] == "next" and first["id"] == "1", first
        assert first["payload"]["data"]["profileUpdated"]["id"] == profile_id
        # Drain pushes of warm-up writes that raced the first one.
        while True:
            try:
                await receive(socket, 0.5)
            except TimeoutError:
                break

        # A trait change.
        await mutate(http, UPSERT, source="crm", sourceId=tag, traits={"plan": "pro"})
        pushed = (await receive(socket, 10))["payload"]["data"]["profileUpdated"]
        assert pushed["traits"]["plan"] == "pro"

        # A new interaction.
        before = pushed["interactions"]["totalCount"]
        await mutate(
            http,
            RECORD,
            source="crm",
            sourceId=tag,
            id=f"{tag}-call",
            type="CALL",
            occurredAt="2024-02-01T00:00:00Z",
        )
        pushed = (await receive(socket, 10))["payload"]["data"]["profileUpdated"]
        assert pushed["interactions"]["totalCount"] == before + 1

        # A merge: another source's record shares the email and joins this profile.
        await mutate(
            http,
            UPSERT,
            source="web",
            sourceId=f"w-{tag}",
            identifiers=[{"type": "email", "value": email}],
        )
        pushed = (await receive(socket, 10))["payload"]["data"]["profileUpdated"]
        assert sorted(r["sourceId"] for r in pushed["records"]) == [tag, f"w-{tag}"]
        assert pushed["id"] == profile_id

        # An event through the tracking API (the ingestion workers) joins the profile too.
        response = await http.post(
            "/v1/identify",
            json={"userId": f"u-{tag}", "traits": {"email": email}, "messageId": f"{tag}-id"},
        )
        assert response.status_code == 200, response.text
        source_ids: list[str] = []
        while f"u-{tag}" not in source_ids:  # pushes of the earlier writes may come first
            pushed = (await receive(socket, 10))["payload"]["data"]["profileUpdated"]
            source_ids = [r["sourceId"] for r in pushed["records"]]
        assert pushed["id"] == profile_id

        await socket.send(json.dumps({"id": "1", "type": "complete"}))
    finally:
        await socket.close()


async def test_unknown_profile_is_an_error(server: str) -> None:
    socket = await open_socket(server)
    try:
        await socket.send(
            json.dumps(
                {
                    "id": "x",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"id": unique("nobody")}},
                }
            )
        )
        message = await receive(socket, 10)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", message
        assert errors[0]["message"] == "No profile has this id."
    finally:
        await socket.close()
