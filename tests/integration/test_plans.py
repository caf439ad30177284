"""The write path's statements keep their first plan (customer_graph/graph/plans.py). That is
sound only while no plan of theirs scans, and the plan made on a nearly empty graph is the plan
made on a full one: both are checked here, on the shared test graph (every test writes into it)
and on a private Neo4j that holds next to nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.graph import entity_writes, messages, profile_refresh, writes
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.params import run
from customer_graph.graph.plans import KEEP_PLAN
from customer_graph.settings import Settings

KEPT = {
    f"{module.__name__.rsplit('.', 1)[1]}.{name}": value
    for module in (writes, messages, entity_writes, profile_refresh)
    for name, value in vars(module).items()
    if name.isupper()
    and isinstance(value, str)
    and value.startswith(KEEP_PLAN)
    and value != KEEP_PLAN
}


def test_every_statement_of_a_write_keeps_its_plan() -> None:
    assert {
        "messages.CLAIM_AND_SCREEN",
        "writes.LOCK_AND_READ_NEIGHBOURHOOD",
        "writes.READ_NEIGHBOURHOOD",
        "writes.WRITE_DECISIONS",
        "entity_writes.UPSERT_INTERACTIONS",
        "profile_refresh.LOCK_AND_READ_PROFILES",
        "profile_refresh.WRITE_PROFILES",
    } <= set(KEPT)


def _access(plan: dict[str, Any]) -> list[str]:
    """How the plan finds what it reads: its seeks and scans, with what they look up."""
    operator = plan["operatorType"].split("@")[0]
    found = []
    if "Seek" in operator or "Scan" in operator:
        found.append(f"{operator} {plan.get('args', {}).get('Details', '')}")
    for child in plan.get("children", ()):
        found += _access(child)
    return sorted(found)


async def _plan(driver: AsyncDriver, database: str, statement: str) -> list[str]:
    async with driver.session(database=database) as session:
        result = await session.run(statement.replace(KEEP_PLAN, KEEP_PLAN + "EXPLAIN ", 1))
        summary = await result.consume()
    assert summary.plan is not None
    return _access(summary.plan)


@pytest.mark.parametrize("name", sorted(KEPT))
async def test_a_kept_plan_scans_nothing_and_does_not_depend_on_the_graph(
    name: str, driver: AsyncDriver, settings: Settings, private_settings: Settings
) -> None:
    full = await _plan(driver, settings.neo4j_database, KEPT[name])
    assert full, "a write statement finds its nodes by seeks"
    assert [op for op in full if "Scan" in op] == []
    small = open_driver(private_settings)
    try:
        await ensure_schema(small, private_settings.neo4j_database)
        sparse = await _plan(small, private_settings.neo4j_database, KEPT[name])
    finally:
        await small.close()
    # The same seeks; the statistics may only order or join them differently.
    assert sparse == full


CLEARED = re.compile(r"cleared of (\d+) queries")


async def _plans_made(driver: AsyncDriver, database: str, sizes: list[int], one_map: bool) -> int:
    """How many plans Neo4j caches for READ_NEIGHBOURHOOD run with lists of these sizes (nothing
    in them exists, so nothing is written)."""

    async def clear() -> int:
        records, _, _ = await driver.execute_query("CALL db.clearQueryCaches()", database_=database)
        found = CLEARED.search(records[0]["value"])
        return int(found[1]) if found else 0

    await clear()
    for size in sizes:
        keys = [f"plan-test:{n}" for n in range(size)]
        params: dict[str, Any] = {
            "lock": keys,
            "records": [{"key": k, "identifiers": [k], "withTraits": False} for k in keys[:1]],
            "identifiers": keys,
            "profiles": keys[: size // 2],
            "withValues": True,
        }

        async def work(tx: AsyncManagedTransaction, params: dict[str, Any] = params) -> None:
            if one_map:
                result = await run(tx, writes.READ_NEIGHBOURHOOD, **params)
            else:
                result = await tx.run(writes.READ_NEIGHBOURHOOD, params)
            await result.consume()

        async with driver.session(database=database) as session:
            await session.execute_write(work)
    return await clear()


async def test_a_write_statement_is_planned_once_whatever_the_sizes_of_its_lists(
    private_settings: Settings,
) -> None:
    """Neo4j plans a statement again for each new bucket of its list parameters' sizes (0, 1,
    2-10, 11-100, ...); `run` passes them in one map, which has no size in the cache's key."""
    sizes = [0, 1, 3, 20, 150, 1, 20]
    small = open_driver(private_settings)
    try:
        await ensure_schema(small, private_settings.neo4j_database)
        database = private_settings.neo4j_database
        assert await _plans_made(small, database, sizes, one_map=False) >= 4
        assert await _plans_made(small, database, sizes, one_map=True) == 1
    finally:
        await small.close()


async def test_a_parameter_the_statement_names_must_be_given(
    driver: AsyncDriver, settings: Settings
) -> None:
    async def work(tx: AsyncManagedTransaction) -> None:
        await run(tx, writes.READ_NEIGHBOURHOOD, lock=[], records=[], withValues=True)

    async with driver.session(database=settings.neo4j_database) as session:
        with pytest.raises(TypeError, match="identifiers, profiles"):
            await session.execute_write(work)
