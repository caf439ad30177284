"""Full re-resolution and the identity CLI, on the private Neo4j: `--apply` rewrites the whole
graph, which must never happen to the database everyone shares."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.identity import profile_ids_of_records, split_history
from customer_graph.graph.records import CustomerIn, IdentifierIn, WriteBatch
from customer_graph.graph.reresolve import re_resolve
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings
from tests.helpers import unique

pytestmark = pytest.mark.slow
CONFIG = ResolutionConfig()


@pytest_asyncio.fixture(loop_scope="session")
async def private_driver(private_settings: Settings) -> AsyncIterator[AsyncDriver]:
    driver = open_driver(private_settings)
    await ensure_schema(driver, private_settings.neo4j_database)
    yield driver
    await driver.close()


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEO4J_URI": settings.bolt_uri}
    return subprocess.run(
        [sys.executable, "-m", "customer_graph.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_re_resolution_reports_and_repairs_differences(
    private_driver: AsyncDriver, private_settings: Settings
) -> None:
    driver, db = private_driver, private_settings.neo4j_database
    src, tok = unique("rr"), unique("tok")
    e = [IdentifierIn("email", f"e{i}.{tok}@example.com") for i in range(4)]
    result = await write_batch(
        driver,
        db,
        WriteBatch(
            customers=(
                CustomerIn(src, "a", {}, (e[1],)),
                CustomerIn(src, "b", {}, (e[1], e[2])),
                CustomerIn(src, "c", {}, (e[2],)),
                CustomerIn(src, "d", {}, (e[3],)),
            )
        ),
        CONFIG,
    )
    keys = [f"{src}:{k}" for k in "abcd"]
    profile = result.record_profiles[keys[0]]
    # Break the graph by hand: d joins a profile it has no link to, c loses its profile.
    await driver.execute_query(
        """
        MATCH (d:Customer {key: $d})-[r:RESOLVES_TO]->() DELETE r
        WITH d MATCH (p:Profile {id: $p}) CREATE (d)-[:RESOLVES_TO]->(p)
        WITH 1 AS x MATCH (:Customer {key: $c})-[r:RESOLVES_TO]->() DELETE r
        """,
        d=keys[3],
        c=keys[2],
        p=profile,
        database_=db,
    )

    dry = await re_resolve(driver, db, CONFIG)
    ours = {k: (frm, to) for k, frm, to in dry.moved if k.startswith(src)}
    assert set(ours) == {keys[2], keys[3]}
    assert ours[keys[2]] == (None, profile)
    assert ours[keys[3]][0] == profile and ours[keys[3]][1] != profile
    assert not dry.applied
    # A dry run writes nothing.
    now = await profile_ids_of_records(driver, db, keys)
    assert keys[2] not in now and now[keys[3]] == profile

    applied = await re_resolve(driver, db, CONFIG, apply=True, batch_size=2)
    assert applied.applied
    after = await profile_ids_of_records(driver, db, keys)
    assert after[keys[0]] == after[keys[1]] == after[keys[2]] == profile != after[keys[3]]
    splits = await split_history(driver, db, profile)
    assert [(s.reason, s.new_profile_ids) for s in splits] == [("re-resolution", (after[keys[3]],))]

    again = await re_resolve(driver, db, CONFIG)
    assert not [m for m in again.moved if m[0].startswith(src)]
    assert not [c for c in again.edges_changed if c[0].startswith(src)]

    # The CLI: a dry run as JSON, and the super-connector report.
    done = await asyncio.to_thread(_cli, private_settings, "resolve", "--json")
    assert done.returncode in (0, 2), done.stderr
    report = json.loads(done.stdout)
    assert not [m for m in report["moved"] if m["record"].startswith(src)]
    assert report["records"] >= 4
    done = await asyncio.to_thread(
        _cli, private_settings, "super-connectors", "--threshold", "1", "--json", "--limit", "1000"
    )
    assert done.returncode == 0, done.stderr
    rows = {r["key"]: r for r in json.loads(done.stdout)}
    shared = rows[f"email:e1.{tok}@example.com"]
    assert (shared["records"], shared["profiles"]) == (2, 1)
    assert f"email:e3.{tok}@example.com" not in rows
