"""The foundation: a real Neo4j through the driver, constraints, health endpoints, the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.app import create_app
from customer_graph.graph.constraints import (
    EVENTUALLY_CONSISTENT,
    RETIRED_INDEXES,
    UNIQUE_KEYS,
    constraint_name,
    ensure_schema,
)
from customer_graph.graph.local import LocalNeo4j
from customer_graph.graph.profile_refresh import LOCK_AND_READ_PROFILES
from customer_graph.graph.records import CustomerIn, IdentifierIn, WriteBatch
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import upsert_customer, write_batch
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique


async def test_query_through_driver(driver: AsyncDriver, settings: Settings) -> None:
    key = unique("foundation")
    await driver.execute_query(
        "MERGE (c:Customer {key: $key}) SET c.source = 'test'",
        key=key,
        database_=settings.neo4j_database,
    )
    records, _, _ = await driver.execute_query(
        "MATCH (c:Customer {key: $key}) RETURN c.source AS source, count(*) AS n",
        key=key,
        database_=settings.neo4j_database,
    )
    assert [(r["source"], r["n"]) for r in records] == [("test", 1)]
    await driver.execute_query(
        "MATCH (c:Customer {key: $key}) DELETE c", key=key, database_=settings.neo4j_database
    )


async def test_show_constraints_lists_every_key(driver: AsyncDriver, settings: Settings) -> None:
    records, _, _ = await driver.execute_query(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
        "RETURN name, type, labelsOrTypes, properties",
        database_=settings.neo4j_database,
    )
    found = {r["name"]: r for r in records}
    for label, key in UNIQUE_KEYS:
        row = found[constraint_name(label, key)]
        assert row["type"] == "UNIQUENESS"
        assert row["labelsOrTypes"] == [label]
        assert row["properties"] == [key]


async def test_health_endpoints(driver: AsyncDriver, settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await _eventually_ready(client)
        assert ready == 200


async def test_graphql_answers(driver: AsyncDriver, settings: Settings) -> None:
    async with asgi_client(create_app(settings)) as client:
        response = await client.post("/graphql", json={"query": "{ version }"})
        assert response.status_code == 200
        assert response.json()["data"]["version"]


@pytest.mark.disruptive
async def test_readyz_follows_neo4j_without_restarting_the_api(
    private_neo4j: LocalNeo4j, private_settings: Settings
) -> None:
    async with asgi_client(create_app(private_settings)) as client:
        assert await _eventually_ready(client) == 200
        await asyncio.to_thread(private_neo4j.stop)
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        await asyncio.to_thread(private_neo4j.start)
        assert await _eventually_ready(client) == 200


@pytest.mark.disruptive
def test_neo4j_start_twice_is_harmless(private_neo4j: LocalNeo4j) -> None:
    pid = private_neo4j.pid()
    assert pid is not None
    assert private_neo4j.start() is False  # already running: nothing new started
    assert private_neo4j.pid() == pid
    assert private_neo4j.is_ready()


def test_cli_neo4j_start_twice_is_harmless(neo4j_running: None, settings: Settings) -> None:
    if not settings.uses_local_neo4j:
        pytest.skip("NEO4J_URI points at an external Neo4j: the CLI manages no local one")
    local = LocalNeo4j.from_settings(settings)
    pid = local.pid()
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "customer_graph.cli", "neo4j", "start"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "already running" in result.stderr
    assert local.pid() == pid


async def _eventually_ready(client: object, attempts: int = 60) -> int:
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    status = 0
    for _ in range(attempts):
        status = (await client.get("/readyz")).status_code
        if status == 200:
            return status
        await asyncio.sleep(0.5)
    return status


async def test_start_up_drops_indexes_that_invite_graph_wide_seeks(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    # As an earlier version left it.
    await driver.execute_query(
        "CREATE INDEX identifier_type IF NOT EXISTS FOR (n:Identifier) ON (n.type)", database_=db
    )
    await ensure_schema(driver, db)
    records, _, _ = await driver.execute_query(
        "SHOW INDEXES YIELD name, labelsOrTypes, properties RETURN name, labelsOrTypes, properties",
        database_=db,
    )
    names = {r["name"] for r in records}
    assert not names & set(RETIRED_INDEXES)
    indexed = {(r["labelsOrTypes"][0], r["properties"][0]) for r in records if r["properties"]}
    assert ("Identifier", "type") not in indexed


async def test_start_up_makes_the_search_index_eventually_consistent(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    show = "SHOW FULLTEXT INDEXES YIELD name, options WHERE name = 'profile_search' RETURN options"
    # As an earlier version left it: a synchronous index under the same name.
    await driver.execute_query("DROP INDEX profile_search IF EXISTS", database_=db)
    await driver.execute_query(
        "CREATE FULLTEXT INDEX profile_search FOR (n:Profile) ON EACH [n.displayName]",
        database_=db,
    )
    before, _, _ = await driver.execute_query(show, database_=db)
    assert before[0]["options"]["indexConfig"][EVENTUALLY_CONSISTENT] is False

    await ensure_schema(driver, db)
    after, _, _ = await driver.execute_query(show, database_=db)
    assert after[0]["options"]["indexConfig"][EVENTUALLY_CONSISTENT] is True
    # Recreated on every searched property, and a second start-up leaves it as it is.
    await ensure_schema(driver, db)
    records, _, _ = await driver.execute_query(
        "SHOW FULLTEXT INDEXES YIELD name, properties, options WHERE name = 'profile_search' "
        "RETURN properties, options",
        database_=db,
    )
    assert records[0]["properties"] == ["displayName", "email", "company"]
    assert records[0]["options"]["indexConfig"][EVENTUALLY_CONSISTENT] is True


async def test_profile_refresh_reads_the_profile_not_the_graph(
    driver: AsyncDriver, settings: Settings
) -> None:
    """The refresh that follows every write reads a profile's records and contacts by expanding
    from the profile, however many emails and phones the rest of the graph holds."""
    db = settings.neo4j_database
    tok = unique("refresh")
    config = resolution_config(settings)
    others = tuple(
        CustomerIn(
            "web", f"{tok}-{n}", identifiers=(IdentifierIn("email", f"{tok}-{n}@example.com"),)
        )
        for n in range(300)
    )
    written = await write_batch(driver, db, WriteBatch(customers=others), config)
    pids = sorted(set(written.record_profiles.values()))[:40]
    pid = await upsert_customer(
        driver,
        db,
        CustomerIn(
            "crm",
            tok,
            traits={"name": "Ada"},
            identifiers=(
                IdentifierIn("email", f"{tok}@example.com"),
                IdentifierIn("phone", "+14155550100"),
            ),
        ),
        config,
    )

    async def profiled(tx: AsyncManagedTransaction) -> int:
        result = await tx.run("PROFILE " + LOCK_AND_READ_PROFILES, ids=[pid, *pids])
        rows = {r["id"]: r async for r in result}
        assert set(rows) == {pid, *pids}
        assert {c["type"] for c in rows[pid]["contacts"]} == {"email", "phone"}
        summary = await result.consume()
        return _db_hits(summary.profile)

    async with driver.session(database=db) as session:
        hits = await session.execute_write(profiled)
    # 41 profiles of one record and one or two identifiers each: tens of db hits per profile,
    # not one per email in the graph.
    assert hits < 41 * 40


def _db_hits(plan: dict[str, Any]) -> int:
    return int(plan.get("dbHits", 0)) + sum(_db_hits(c) for c in plan.get("children", []))
