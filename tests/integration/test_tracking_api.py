"""The tracking API through the real ASGI app and the real Neo4j: answers, writes, dedup, limits."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from neo4j import AsyncDriver, AsyncManagedTransaction
from prometheus_client import REGISTRY

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.graph.dead_letters import list_dead_letters
from customer_graph.graph.privacy import delete_profile
from customer_graph.graph.records import WriteBatch, WriteResult
from customer_graph.ingestion.segment import parse_request
from customer_graph.ingestion.workers import WorkerPool, write_path
from customer_graph.ingestion_cli import replay_dead_letters
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

DEV_KEY = "cg_dev_" + unique("key")
BEARER = {"Authorization": f"Bearer {DEV_KEY}"}


@pytest.fixture(scope="module")
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dev_key": DEV_KEY})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(app_settings: Settings, driver: AsyncDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(app_settings)) as client:
        yield client


async def query(driver: AsyncDriver, settings: Settings, cypher: str, **params: Any) -> list[Any]:
    records, _, _ = await driver.execute_query(cypher, params, database_=settings.neo4j_database)
    return [r.data() for r in records]


async def profile_of(driver: AsyncDriver, settings: Settings, key: str) -> str | None:
    rows = await query(
        driver,
        settings,
        "MATCH (:Customer {key: $key})-[:RESOLVES_TO]->(p:Profile) RETURN p.id AS id",
        key=key,
    )
    return rows[0]["id"] if rows else None


async def traces(driver: AsyncDriver, settings: Settings, marker: str) -> int:
    """Customers, interactions and messages whose key contains `marker`."""
    rows = await query(
        driver,
        settings,
        "CALL () { MATCH (c:Customer) WHERE c.key CONTAINS $m RETURN count(c) AS n "
        "UNION ALL MATCH (i:Interaction) WHERE i.id CONTAINS $m RETURN count(i) AS n "
        "UNION ALL MATCH (g:Message) WHERE g.id CONTAINS $m RETURN count(g) AS n "
        "UNION ALL MATCH (a:Account) WHERE a.id CONTAINS $m RETURN count(a) AS n } "
        "RETURN sum(n) AS n",
        m=marker,
    )
    return int(rows[0]["n"])


async def test_every_message_type_lands(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    u, a, g = unique("user"), unique("anon"), unique("acme")
    calls = [
        ("identify", {"userId": u, "anonymousId": a, "traits": {"plan": "pro", "name": "Ann"}}),
        ("track", {"userId": u, "event": "Signed Up", "properties": {"via": "ads"}}),
        ("page", {"anonymousId": a, "name": "Pricing"}),
        ("screen", {"userId": u, "name": "Home"}),
        ("group", {"userId": u, "groupId": g, "traits": {"name": "Acme"}}),
        ("alias", {"previousId": a, "userId": u}),
    ]
    for n, (kind, body) in enumerate(calls):
        response = await client.post(
            f"/v1/{kind}", json={**body, "messageId": f"{u}-{n}"}, headers=BEARER
        )
        assert (response.status_code, response.json()) == (200, {"success": True}), kind

    interactions = await query(
        driver,
        app_settings,
        "MATCH (c:Customer)-[:HAD]->(i:Interaction) WHERE i.messageId STARTS WITH $u "
        "RETURN c.key AS record, i.type AS type, i.name AS name, i.id AS id ORDER BY i.messageId",
        u=u,
    )
    assert interactions == [
        {"record": f"dev:{u}", "type": "track", "name": "Signed Up", "id": f"dev:{u}-1"},
        {"record": f"dev:{a}", "type": "page", "name": "Pricing", "id": f"dev:{u}-2"},
        {"record": f"dev:{u}", "type": "screen", "name": "Home", "id": f"dev:{u}-3"},
    ]
    members = await query(
        driver,
        app_settings,
        "MATCH (c:Customer {key: $k})-[:MEMBER_OF]->(x:Account) RETURN x.id AS id, x.name AS name",
        k=f"dev:{u}",
    )
    assert members == [{"id": f"dev:{g}", "name": "Acme"}]
    # The anonymous visitor and the known user share anonymous_id: one person.
    user_profile = await profile_of(driver, app_settings, f"dev:{u}")
    assert user_profile is not None
    assert await profile_of(driver, app_settings, f"dev:{a}") == user_profile


async def test_the_key_is_taken_from_body_basic_or_bearer_and_gzip_works(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    u = unique("keys")
    basic = base64.b64encode(f"{DEV_KEY}:".encode()).decode()

    def batch(n: int) -> dict[str, Any]:
        return {"batch": [{"type": "track", "userId": u, "event": "e", "messageId": f"{u}-{n}"}]}

    answers = [
        await client.post("/v1/batch", json={**batch(0), "writeKey": DEV_KEY}),
        await client.post("/v1/batch", json=batch(1), headers={"Authorization": f"Basic {basic}"}),
        await client.post("/v1/import", json=batch(2), headers=BEARER),
        await client.post(
            "/v1/batch",
            content=gzip.compress(json.dumps(batch(3)).encode()),
            headers={**BEARER, "Content-Encoding": "gzip", "Content-Type": "application/json"},
        ),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 200]
    rows = await query(
        driver,
        app_settings,
        "MATCH (i:Interaction) WHERE i.id STARTS WITH $p RETURN count(i) AS n",
        p=f"dev:{u}-",
    )
    assert rows == [{"n": 4}]


async def test_a_replayed_message_id_is_not_written_again(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    u = unique("replay")
    before = _sample("customer_graph_ingest_messages_deduplicated_total")
    first = {"userId": u, "event": "Original", "messageId": f"{u}-m"}
    assert (await client.post("/v1/track", json=first, headers=BEARER)).status_code == 200
    changed = {**first, "event": "Changed", "properties": {"x": 1}}
    assert (await client.post("/v1/track", json=changed, headers=BEARER)).status_code == 200
    again = {"batch": [{**changed, "type": "track"}, {**changed, "type": "track"}]}
    assert (await client.post("/v1/batch", json=again, headers=BEARER)).status_code == 200
    rows = await query(
        driver,
        app_settings,
        "MATCH (i:Interaction) WHERE i.messageId = $m RETURN i.name AS name, i.properties AS p",
        m=f"{u}-m",
    )
    assert rows == [{"name": "Original", "p": "{}"}]
    # A track event's claim is its interaction's node, keyed by the message: no Message node.
    claims = await query(
        driver,
        app_settings,
        "CALL () { MATCH (i:Interaction {id: $id}) RETURN count(i) AS interactions } "
        "CALL () { MATCH (m:Message {id: $id}) RETURN count(m) AS messages } "
        "RETURN interactions, messages",
        id=f"dev:{u}-m",
    )
    assert claims == [{"interactions": 1, "messages": 0}]
    assert _sample("customer_graph_ingest_messages_deduplicated_total") - before == 3


async def test_events_for_an_erased_person_are_refused(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    u = unique("erased")
    email = f"{u}@example.com"
    first = {"userId": u, "traits": {"email": email}, "messageId": f"{u}-1"}
    assert (await client.post("/v1/identify", json=first, headers=BEARER)).status_code == 200
    profile = await profile_of(driver, app_settings, f"dev:{u}")
    assert profile is not None
    assert await delete_profile(driver, app_settings, profile, actor="test") is not None

    other = unique("other")
    batch = {
        "batch": [
            {"type": "identify", "userId": other, "messageId": f"{other}-1"},
            {"type": "track", "userId": u, "event": "Back", "messageId": f"{u}-2"},
            {"type": "identify", "anonymousId": unique("a"), "traits": {"email": email}},
        ]
    }
    response = await client.post("/v1/batch", json=batch, headers=BEARER)
    assert response.status_code == 200
    assert response.json() == {"success": True, "suppressed": [1, 2]}
    assert await profile_of(driver, app_settings, f"dev:{other}") is not None
    rows = await query(
        driver,
        app_settings,
        "OPTIONAL MATCH (c:Customer {key: $k}) OPTIONAL MATCH (i:Interaction {id: $i}) "
        "RETURN count(c) + count(i) AS n",
        k=f"dev:{u}",
        i=f"dev:{u}-2",
    )
    assert rows == [{"n": 0}]
    rows = await query(
        driver,
        app_settings,
        "MATCH (i:Identifier {type: 'email'}) WHERE i.value = $e RETURN count(i) AS n",
        e=email,
    )
    assert rows == [{"n": 0}]


def _bad_requests(
    marker: str,
) -> list[tuple[str, dict[str, Any], int, list[dict[str, Any]] | None]]:
    """(case, request kwargs, status, expected `errors`) — every message carries `marker`."""

    def ok(n: int) -> dict[str, Any]:
        return {"type": "identify", "userId": f"{marker}-{n}", "messageId": f"{marker}-m{n}"}

    big = {**ok(1), "traits": {"blob": "x" * (33 * 1024)}}
    chunky = [{**ok(n), "traits": {"blob": "y" * (30 * 1024)}} for n in range(20)]
    bomb = gzip.compress(json.dumps({"batch": [ok(0)], "pad": " " * 3_000_000}).encode())
    return [
        ("malformed json", {"content": b'{"batch": [', "headers": BEARER}, 400, None),
        (
            "no userId and no anonymousId",
            {"json": {"batch": [ok(0), {"type": "track", "event": "e"}]}, "headers": BEARER},
            400,
            [{"index": 1, "field": "userId"}],
        ),
        (
            "wrong types",
            {
                "json": {"batch": [ok(0), ok(1), {**ok(2), "traits": [1], "timestamp": True}]},
                "headers": BEARER,
            },
            400,
            [{"index": 2, "field": "timestamp"}, {"index": 2, "field": "traits"}],
        ),
        ("unknown key", {"json": {"batch": [ok(0)]}, "headers": _bearer("cg_nope")}, 401, None),
        ("no key", {"json": {"batch": [ok(0)]}}, 401, None),
        ("message over 32 KB", {"json": {"batch": [ok(0), big]}, "headers": BEARER}, 413, None),
        ("batch over 500 KB", {"json": {"batch": chunky}, "headers": BEARER}, 413, None),
        (
            "over 2,500 messages",
            {"json": {"batch": [ok(n) for n in range(2501)]}, "headers": BEARER},
            413,
            None,
        ),
        (
            "gzip bomb",
            {"content": bomb, "headers": {**BEARER, "Content-Encoding": "gzip"}},
            413,
            None,
        ),
        (
            "unsupported encoding",
            {"content": b"{}", "headers": {**BEARER, "Content-Encoding": "br"}},
            415,
            None,
        ),
    ]


async def test_bad_requests_are_answered_and_write_nothing(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    marker = unique("bad")
    for case, kwargs, status, errors in _bad_requests(marker):
        response = await client.post("/v1/batch", **kwargs)
        assert response.status_code == status, (case, response.text[:300])
        body = response.json()
        assert body["success"] is False and body["code"] and body["message"], case
        if errors is not None:
            got = [{"index": e["index"], "field": e["field"]} for e in body["errors"]]
            assert sorted(got, key=str) == sorted(errors, key=str), case
    assert await traces(driver, app_settings, marker) == 0


async def test_a_key_without_write_scope_is_forbidden(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    key, _ = await create_key(driver, app_settings, scopes=[Scope.READ], source=unique("ro"))
    u = unique("ro-user")
    response = await client.post("/v1/identify", json={"userId": u}, headers=_bearer(key))
    assert response.status_code == 403
    assert await traces(driver, app_settings, u) == 0


async def test_concurrent_requests_are_committed_in_shared_transactions(
    client: httpx.AsyncClient, driver: AsyncDriver, app_settings: Settings
) -> None:
    u = unique("group")
    batches_before = _sample("customer_graph_ingest_batch_messages_count")
    messages_before = _sample("customer_graph_ingest_batch_messages_sum")
    accepted = {"type": "track"}
    accepted_before = _sample("customer_graph_ingest_messages_accepted_total", accepted)

    async def send(n: int) -> int:
        body = {"userId": f"{u}-{n % 7}", "event": "Viewed", "messageId": f"{u}-{n}"}
        return (await client.post("/v1/track", json=body, headers=BEARER)).status_code

    statuses = await asyncio.gather(*(send(n) for n in range(60)))
    assert statuses == [200] * 60
    rows = await query(
        driver,
        app_settings,
        "MATCH (i:Interaction) WHERE i.messageId STARTS WITH $u RETURN count(i) AS n",
        u=f"{u}-",
    )
    assert rows == [{"n": 60}]
    batches = _sample("customer_graph_ingest_batch_messages_count") - batches_before
    messages = _sample("customer_graph_ingest_batch_messages_sum") - messages_before
    assert messages >= 60
    assert batches < 60  # several requests shared a transaction
    assert _sample("customer_graph_ingest_messages_accepted_total", accepted) == (
        accepted_before + 60
    )


async def test_metrics_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    for name in (
        "customer_graph_ingest_messages_accepted_total",
        "customer_graph_ingest_messages_rejected_total",
        "customer_graph_ingest_messages_deduplicated_total",
        "customer_graph_ingest_batch_messages_bucket",
        "customer_graph_ingest_commit_seconds_bucket",
        "customer_graph_ingest_queue_messages",
    ):
        assert name in response.text


async def test_a_message_failing_on_its_own_is_dead_lettered_then_replayed(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    u = unique("dlq")
    real = write_path(app_settings)

    async def failing_for_poison(tx: AsyncManagedTransaction, batch: WriteBatch) -> WriteResult:
        # A fault injected on one message; everything else goes through the real write path.
        if any(c.source_id.startswith("poison") for c in batch.customers):
            raise ValueError("poisoned record")
        return await real(tx, batch)

    messages = [
        {"type": "identify", "userId": f"{u}-{n}", "messageId": f"{u}-m{n}"} for n in range(6)
    ]
    messages[3] = {"type": "identify", "userId": f"poison-{u}", "messageId": f"{u}-m3"}
    items = parse_request(
        {"batch": messages}, kind=None, source="dev", received_at=datetime.now(UTC)
    )
    pool = WorkerPool.for_neo4j(driver, app_settings, failing_for_poison)
    pool.start()
    try:
        receipt = await pool.submit(items)
    finally:
        await pool.stop()
    assert receipt.outcomes == ("written",) * 3 + ("dead_lettered",) + ("written",) * 2
    assert [(d.index, d.message_id) for d in receipt.dead_letters] == [(3, f"{u}-m3")]
    assert await traces(driver, app_settings, f"poison-{u}") == 0
    (letter,) = await list_dead_letters(
        driver, app_settings.neo4j_database, ids=[f"dev:{u}-m3"], status=None
    )
    assert (letter.status, letter.reason) == ("pending", "ValueError: poisoned record")
    assert letter.payload["userId"] == f"poison-{u}"

    # The CLI lists it and replays it through the real write path.
    listed = await _cli("dead-letters", "list", "--source", "dev", "--limit", "10000")
    assert listed.returncode == 0, listed.stderr
    assert letter.id in listed.stdout and "poisoned record" in listed.stdout
    replayed = await _cli("dead-letters", "replay", letter.id)
    assert replayed.returncode == 0, replayed.stderr
    assert "Replayed 1; failed again 0" in replayed.stderr
    assert await profile_of(driver, app_settings, f"dev:poison-{u}") is not None
    (after,) = await list_dead_letters(
        driver, app_settings.neo4j_database, ids=[letter.id], status=None
    )
    assert after.status == "replayed" and after.replayed_at is not None
    again = await replay_dead_letters(driver, app_settings, ids=[letter.id])
    assert again.replayed == [] and again.failed == []


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "customer_graph.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
