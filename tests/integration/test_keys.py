"""API keys: stored hashed, resolved to a principal, scoped, revocable, managed from the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import (
    ALL_SCOPES,
    DEV_PRINCIPAL,
    InvalidSourceError,
    Scope,
    authenticate,
    create_key,
)
from customer_graph.graph.keys import find_key, revoke_key
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

DEV_KEY = "cg_dev_" + unique("key")


@pytest.fixture(scope="module")
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dev_key": DEV_KEY})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(app_settings: Settings, driver: AsyncDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(app_settings)) as client:
        yield client


async def test_a_key_is_stored_only_as_its_hash(driver: AsyncDriver, settings: Settings) -> None:
    source = unique("web")
    key, row = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    assert key.startswith("cg_") and len(key) >= 40
    records, _, _ = await driver.execute_query(
        "MATCH (k:ApiKey {id: $id}) RETURN properties(k) AS p",
        id=row.id,
        database_=settings.neo4j_database,
    )
    stored = records[0]["p"]
    assert stored["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert stored["scopes"] == ["write"] and stored["source"] == source
    assert key.startswith(stored["prefix"]) and len(stored["prefix"]) < len(key) // 3
    assert all(key not in str(value) for value in stored.values())


async def test_a_key_resolves_to_its_principal(driver: AsyncDriver, settings: Settings) -> None:
    source = unique("crm")
    key, row = await create_key(driver, settings, scopes=[Scope.READ, Scope.ADMIN], source=source)
    principal = await authenticate(driver, settings, key)
    assert principal is not None
    assert (principal.key_id, principal.source) == (row.id, source)
    assert principal.scopes == {Scope.READ, Scope.ADMIN}
    assert principal.has(Scope.ADMIN) and not principal.has(Scope.WRITE)
    assert await authenticate(driver, settings, key + "x") is None
    assert await authenticate(driver, settings, "") is None
    assert await authenticate(driver, settings, None) is None


async def test_the_dev_key_has_every_scope_and_source_dev(
    driver: AsyncDriver, app_settings: Settings
) -> None:
    principal = await authenticate(driver, app_settings, DEV_KEY)
    assert principal == DEV_PRINCIPAL
    assert principal.scopes == ALL_SCOPES and principal.source == "dev"
    no_dev = app_settings.model_copy(update={"dev_key": None})
    assert await authenticate(driver, no_dev, DEV_KEY) is None


async def test_source_names_are_checked(driver: AsyncDriver, settings: Settings) -> None:
    for bad in ("", "  ", "a:b", "x" * 65):
        with pytest.raises(InvalidSourceError):
            await create_key(driver, settings, scopes=[Scope.WRITE], source=bad)


async def test_events_sent_with_a_key_are_records_of_its_source(
    client: httpx.AsyncClient, driver: AsyncDriver, settings: Settings
) -> None:
    source = unique("shop")
    key, row = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    user = unique("u")
    response = await client.post(
        "/v1/track",
        json={"userId": user, "event": "Bought", "messageId": f"{user}-1"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    records, _, _ = await driver.execute_query(
        "MATCH (c:Customer)-[:HAD]->(i:Interaction {messageId: $m}) "
        "RETURN c.key AS record, c.source AS source, i.source AS isource, i.id AS id",
        m=f"{user}-1",
        database_=settings.neo4j_database,
    )
    assert [r.data() for r in records] == [
        {
            "record": f"{source}:{user}",
            "source": source,
            "isource": source,
            "id": f"{source}:{user}-1",
        }
    ]

    await revoke_key(driver, settings.neo4j_database, row.id)
    revoked = await client.post(
        "/v1/track",
        json={"userId": user, "event": "Again", "messageId": f"{user}-2"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert revoked.status_code == 401
    assert (await find_key(driver, settings.neo4j_database, _hash(key))) is not None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_graph.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CUSTOMER_GRAPH_DEV_KEY": ""},
    )


async def test_cli_creates_lists_and_revokes_keys(
    client: httpx.AsyncClient, driver: AsyncDriver, settings: Settings
) -> None:
    source = unique("cli")
    created = _cli("keys", "create", "--scope", "write", "--source", source)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cg_") and "\n" not in key  # the key, and only the key, on stdout
    assert "only time" in created.stderr

    user = unique("u")
    ok = await client.post("/v1/identify", json={"userId": user, "writeKey": key})
    assert ok.status_code == 200

    row = await find_key(driver, settings.neo4j_database, _hash(key))
    assert row is not None and row.source == source and row.scopes == ("write",)
    listed = _cli("keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert row.id in listed.stdout and key not in listed.stdout

    revoked = _cli("keys", "revoke", row.id)
    assert revoked.returncode == 0, revoked.stderr
    refused = await client.post("/v1/identify", json={"userId": user, "writeKey": key})
    assert refused.status_code == 401
    assert _cli("keys", "revoke", "key_doesnotexist").returncode == 1
    assert _cli("keys", "create", "--scope", "bogus", "--source", source).returncode != 0
