"""Records/s through `write_batch`, on a private Neo4j (never the shared one).

    python -m bench.write_path --records 10000 [--batch-size 1000] [--writers 1] [--replay]

Each record carries 2-3 identifiers (email, user_id or crm_id, and a phone for a third of them);
about a fifth of the records are a second record of an earlier person (same email), so the run
joins records into profiles as real traffic does. Prints one line per phase and a JSON summary
on the last line.

The floor: the same records and identifiers written by the plainest batched Cypher (one UNWIND
MERGE statement per batch, no resolution, other labels) on the same Neo4j, so the figure can be
read against what the machine can do at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from neo4j import AsyncDriver

from bench.neo4j import BenchNeo4jConfig, running_bench_neo4j
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.records import CustomerIn, IdentifierIn, WriteBatch
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)

FLOOR = """
UNWIND $rows AS row
MERGE (c:FloorCustomer {key: row.key})
SET c.traits = row.traits, c.seenAt = row.seenAt
WITH c, row
UNWIND row.identifiers AS ident
MERGE (i:FloorIdentifier {key: ident})
MERGE (c)-[:FLOOR_HAS]->(i)
"""
FLOOR_SCHEMA = (
    "CREATE CONSTRAINT floor_customer IF NOT EXISTS FOR (n:FloorCustomer) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT floor_identifier IF NOT EXISTS "
    "FOR (n:FloorIdentifier) REQUIRE n.key IS UNIQUE",
)


def make_records(n: int, seed: int = 7, prefix: str = "") -> list[CustomerIn]:
    rnd = random.Random(seed)
    area = 650 if prefix else 415  # warm-up records never share a phone with measured ones
    records = []
    for i in range(n):
        person = i if rnd.random() > 0.2 else rnd.randrange(max(i, 1))  # a fifth repeat someone
        # The first record of a person is a web user; repeats are CRM contacts of that person.
        idents = [
            IdentifierIn("email", f"{prefix}person{person}@example.com"),
            IdentifierIn("user_id", f"{prefix}u-{i}")
            if person == i
            else IdentifierIn("crm_id", f"{prefix}c-{i}"),
        ]
        if i % 3 == 0:
            idents.append(
                IdentifierIn(
                    "phone", f"+1 {area} {200 + person // 10000 % 800} {person % 10000:04d}"
                )
            )
        source = "web" if i % 2 else "crm"
        records.append(
            CustomerIn(
                source=source,
                source_id=f"{prefix}{source}-{i}",
                traits={"name": f"Person {person}", "plan": rnd.choice(["free", "pro"]), "i": i},
                identifiers=tuple(idents),
                seen_at=T0 + timedelta(seconds=i),
            )
        )
    return records


@dataclass
class Phase:
    name: str
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def _load(
    driver: AsyncDriver,
    settings: Settings,
    records: list[CustomerIn],
    batch_size: int,
    writers: int,
) -> float:
    config = resolution_config(settings)
    batches = [
        WriteBatch(customers=tuple(records[i : i + batch_size]))
        for i in range(0, len(records), batch_size)
    ]
    queue: asyncio.Queue[WriteBatch] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def writer() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            await write_batch(driver, settings.neo4j_database, batch, config)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - started


async def _floor(
    driver: AsyncDriver, settings: Settings, records: list[CustomerIn], batch_size: int
) -> float:
    for statement in FLOOR_SCHEMA:
        await driver.execute_query(statement, database_=settings.neo4j_database)
    started = time.perf_counter()
    for i in range(0, len(records), batch_size):
        rows = [
            {
                "key": c.key,
                "traits": json.dumps(c.traits),
                "seenAt": c.seen_at,
                "identifiers": [f"{x.type}:{x.value.strip().lower()}" for x in c.identifiers],
            }
            for c in records[i : i + batch_size]
        ]
        await driver.execute_query(FLOOR, rows=rows, database_=settings.neo4j_database)
    return time.perf_counter() - started


async def run(
    records: int, batch_size: int, writers: int, replay: bool, settings: Settings
) -> list[Phase]:
    data = make_records(records)
    driver = open_driver(settings)
    try:
        await ensure_schema(driver, settings.neo4j_database)
        # Warm the JVM and the query plans on other records, so the figure is steady state.
        warm = await _load(driver, settings, make_records(2000, prefix="warm-"), batch_size, 1)
        print(f"warm-up: 2000 other records in {warm:.1f}s")
        phases = [Phase("load", records, await _load(driver, settings, data, batch_size, writers))]
        print(
            f"load:   {records} records in {phases[-1].seconds:.1f}s = "
            f"{phases[-1].rate:,.0f} records/s"
        )
        phases.append(Phase("floor", records, await _floor(driver, settings, data, batch_size)))
        print(
            f"floor:  {records} records in {phases[-1].seconds:.1f}s = "
            f"{phases[-1].rate:,.0f} records/s (plain UNWIND MERGE, no resolution)"
        )
        if replay:
            phases.append(
                Phase("replay", records, await _load(driver, settings, data, batch_size, writers))
            )
            print(
                f"replay: {records} records in {phases[-1].seconds:.1f}s = "
                f"{phases[-1].rate:,.0f} records/s"
            )
        counts, _, _ = await driver.execute_query(
            "MATCH (p:Profile) WHERE NOT (p)-[:MERGED_INTO]->() RETURN count(p) AS n",
            database_=settings.neo4j_database,
        )
        print(f"profiles: {counts[0]['n']}")
    finally:
        await driver.close()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--replay", action="store_true", help="write everything a second time")
    args = parser.parse_args()
    with running_bench_neo4j(Settings(), BenchNeo4jConfig()) as (local, settings):
        print(f"private Neo4j on {local.uri}")
        phases = asyncio.run(
            run(args.records, args.batch_size, args.writers, args.replay, settings)
        )
    print(
        json.dumps(
            {
                "records": args.records,
                "batchSize": args.batch_size,
                "writers": args.writers,
                **{f"{p.name}RecordsPerSecond": round(p.rate, 1) for p in phases},
            }
        )
    )


if __name__ == "__main__":
    main()
