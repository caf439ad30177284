"""The floors: the same data read or written by hand-written Cypher through the driver.

A floor is what the figure would cost with nothing of ours in the way: no HTTP, no GraphQL, no
DataLoaders, no identity resolution. Each product figure is reported beside its floor and their
ratio. The statements follow the graph model of DESIGN.md (and graph/reads.py), with every value
a parameter; they live here, not in customer_graph/graph/, because they are the measuring stick
and not part of the product.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, Final, LiteralString

from neo4j import AsyncDriver, RoutingControl

from bench.generator import Dataset, message_records
from customer_graph.graph.normalize import DEFAULT_BLOCKED_PATTERNS, normalize_identifiers
from customer_graph.graph.params import quiet
from customer_graph.graph.records import CustomerIn, IdentifierIn, InteractionIn

# Profile, identifiers, the 20 newest timeline items (interactions and deal stage changes), and
# open deals with their stage history: what the profile page shows, in one round trip.
PROFILE_PAGE: Final = """
MATCH (p:Profile {id: $id})
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:HAS_IDENTIFIER]->(i:Identifier)
  RETURN collect(DISTINCT i {.type, .value}) AS identifiers
}
CALL (p) {
  CALL (p) {
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:HAD]->(x:Interaction)
    RETURN x.occurredAt AS at, x {.id, .type, .occurredAt, .subject, .name} AS item
    UNION ALL
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
    WITH DISTINCT d
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    RETURN s.changedAt AS at, s {.fromStage, .toStage, .changedAt} AS item
  }
  WITH at, item ORDER BY at DESC LIMIT 20
  RETURN collect(item) AS timeline
}
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal {status: 'open'})
  WITH DISTINCT d
  CALL (d) {
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    WITH s ORDER BY s.changedAt
    RETURN collect(s {.fromStage, .toStage, .changedAt}) AS history
  }
  RETURN collect(d {.id, .name, .amount, .currency, .stage, .status, history: history}) AS deals
}
RETURN p {.*} AS profile, identifiers, timeline, deals
"""

PROFILE_BY_IDENTIFIER: Final = """
MATCH (:Identifier {key: $key})<-[:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(p:Profile)
WITH p LIMIT 1
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:HAS_IDENTIFIER]->(i:Identifier)
  RETURN collect(DISTINCT i {.type, .value}) AS identifiers
}
RETURN p {.*} AS profile, identifiers
"""

TIMELINE_ITEMS: Final = """
UNWIND $ids AS id
CALL (id) {
  MATCH (:Profile {id: id})<-[:RESOLVES_TO]-(:Customer)-[:HAD]->(x:Interaction)
  WITH x ORDER BY x.occurredAt DESC LIMIT $limit
  RETURN collect(x {.id, .type, .occurredAt, .subject, .name}) AS items
}
RETURN id, items
"""

RAW_CUSTOMERS: Final = """
UNWIND $rows AS row
MERGE (c:Customer {key: row.key})
SET c.source = row.source, c.sourceId = row.sourceId, c.traits = row.traits
WITH c, row
UNWIND row.identifiers AS ident
MERGE (i:Identifier {key: ident.key})
ON CREATE SET i.type = ident.type, i.value = ident.value
MERGE (c)-[:HAS_IDENTIFIER]->(i)
"""

RAW_INTERACTIONS: Final = """
UNWIND $rows AS row
MATCH (c:Customer {key: row.customerKey})
MERGE (x:Interaction {id: row.id})
SET x.type = row.type, x.name = row.name, x.occurredAt = row.occurredAt,
    x.properties = row.properties
MERGE (c)-[:HAD]->(x)
"""


async def profile_page(driver: AsyncDriver, database: str, profile_id: str) -> bool:
    records, _, _ = await driver.execute_query(
        PROFILE_PAGE, id=profile_id, database_=database, routing_=RoutingControl.READ
    )
    return bool(records)


async def profile_by_identifier(driver: AsyncDriver, database: str, type_: str, value: str) -> bool:
    found = normalize_identifiers(
        [IdentifierIn(type_, value)], default_region="US", blocked_patterns=DEFAULT_BLOCKED_PATTERNS
    )
    if not found:
        return False
    records, _, _ = await driver.execute_query(
        PROFILE_BY_IDENTIFIER, key=found[0].key, database_=database, routing_=RoutingControl.READ
    )
    return bool(records)


async def timeline_items(
    driver: AsyncDriver, database: str, profile_ids: list[str], limit: int
) -> int:
    records, _, _ = await driver.execute_query(
        TIMELINE_ITEMS,
        ids=profile_ids,
        limit=limit,
        database_=database,
        routing_=RoutingControl.READ,
    )
    return sum(len(r["items"]) for r in records)


def _customer_rows(customers: Sequence[CustomerIn]) -> list[dict[str, Any]]:
    return [
        {
            "key": c.key,
            "source": c.source,
            "sourceId": c.source_id,
            "traits": json.dumps(c.traits),
            "identifiers": [
                {"key": i.key, "type": i.type, "value": i.value}
                for i in normalize_identifiers(
                    c.identifiers, default_region="US", blocked_patterns=DEFAULT_BLOCKED_PATTERNS
                )
            ],
        }
        for c in customers
    ]


def _interaction_rows(interactions: Sequence[InteractionIn]) -> list[dict[str, Any]]:
    return [
        {
            "customerKey": f"{i.source}:{i.customer_source_id}",
            "id": i.id,
            "type": i.type,
            "name": i.name,
            "occurredAt": i.occurred_at,
            "properties": json.dumps(i.properties),
        }
        for i in interactions
    ]


async def write_rows(
    driver: AsyncDriver,
    database: str,
    statement: LiteralString,
    rows: list[dict[str, Any]],
    batch: int,
    writers: int,
) -> float:
    """Seconds to write `rows` by `statement`, in batches of `batch`, `writers` at once."""
    chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    chunks.reverse()

    async def worker() -> None:
        async with driver.session(database=database) as session:
            while chunks:
                chunk = chunks.pop()

                async def tx(tx: Any, chunk: list[dict[str, Any]] = chunk) -> None:
                    # Rows the driver's debug line shows by size, as the write path's are: it
                    # formats every RUN's parameters even with debug logging off.
                    result = await tx.run(statement, quiet({"rows": chunk}))
                    await result.consume()

                await session.execute_write(tx)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(writers)))
    return time.perf_counter() - t0


async def raw_merge(
    driver: AsyncDriver, database: str, data: Dataset, batch: int = 500, writers: int = 2
) -> dict[str, Any]:
    """The data set's customers with their identifiers, then its interactions, by UNWIND MERGE
    in batches of `batch` with `writers` concurrent transactions. Normalization happens before
    the clock starts; nothing is resolved."""
    customers = _customer_rows(data.customers)
    interactions = _interaction_rows(data.interactions)
    customer_s = await write_rows(driver, database, RAW_CUSTOMERS, customers, batch, writers)
    interaction_s = await write_rows(
        driver, database, RAW_INTERACTIONS, interactions, batch, writers
    )
    events = len(customers) + len(interactions)
    return {
        "customers": len(customers),
        "interactions": len(interactions),
        "customers_per_s": round(len(customers) / customer_s, 1),
        "interactions_per_s": round(len(interactions) / interaction_s, 1),
        "events_per_s": round(events / (customer_s + interaction_s), 1),
        "batch_size": batch,
        "writers": writers,
    }


async def raw_merge_messages(
    driver: AsyncDriver, database: str, data: Dataset, batch: int = 500, writers: int = 2
) -> dict[str, Any]:
    """What the data set's Segment messages write (bench/generator.py `segment_messages`), by
    UNWIND MERGE, timed and counted per message: the records its identify messages describe
    (one message each), then the anonymous visitors' records and their interactions (one track
    or page message per interaction, which also creates its visitor's record). Batches of
    `batch`, `writers` at once; normalization happens before the clock starts; nothing is
    resolved, nothing is deduplicated."""
    identified, anonymous = message_records(data)
    visits = [i for i in data.interactions if i.source == "web"]
    identify_rows = _customer_rows(identified)
    visitor_rows = _customer_rows(anonymous)
    interaction_rows = _interaction_rows(visits)
    identify_s = await write_rows(driver, database, RAW_CUSTOMERS, identify_rows, batch, writers)
    visitor_s = await write_rows(driver, database, RAW_CUSTOMERS, visitor_rows, batch, writers)
    interaction_s = await write_rows(
        driver, database, RAW_INTERACTIONS, interaction_rows, batch, writers
    )
    track_s = visitor_s + interaction_s
    seconds = identify_s + track_s
    messages = len(identify_rows) + len(interaction_rows)
    rows = messages + len(visitor_rows)
    return {
        "identify_events": len(identify_rows),
        "track_events": len(interaction_rows),
        "visitor_records": len(visitor_rows),
        "identify_per_s": round(len(identify_rows) / identify_s, 1),
        "track_per_s": round(len(interaction_rows) / track_s, 1),
        "events_per_s": round(messages / seconds, 1),
        # The same writes counted as rows (a visitor's record apart from its events): the unit
        # of runs before 2026-12-06's morning.
        "rows_per_s": round(rows / seconds, 1),
        "seconds": round(seconds, 3),
        "batch_size": batch,
        "writers": writers,
    }
