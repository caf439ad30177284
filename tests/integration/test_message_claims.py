"""messageId claims against the real Neo4j: exact under concurrent writers, and the screen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.graph.messages import Unit, write_deduplicated
from customer_graph.graph.privacy import export_profile
from customer_graph.graph.records import (
    CustomerIn,
    IdentifierIn,
    InteractionIn,
    WriteBatch,
    WriteResult,
)
from customer_graph.ingestion.workers import write_path
from customer_graph.settings import Settings
from tests.helpers import unique


def _unit(key: str, source_id: str) -> Unit:
    customer = CustomerIn(
        source="claims",
        source_id=source_id,
        identifiers=(IdentifierIn("user_id", source_id),),
    )
    return key, WriteBatch(customers=(customer,))


def _event(key: str, source_id: str) -> Unit:
    """A tracked event: its interaction is keyed by the message's key, as the tracking API's."""
    _, batch = _unit(key, source_id)
    event = InteractionIn(
        id=key,
        source="claims",
        customer_source_id=source_id,
        type="track",
        occurred_at=datetime.now(UTC),
        name="Viewed",
    )
    return key, WriteBatch(customers=batch.customers, interactions=(event,))


async def _claims(driver: AsyncDriver, settings: Settings, prefix: str) -> dict[str, list[str]]:
    records, _, _ = await driver.execute_query(
        "CALL () { MATCH (m:Message) WHERE m.id STARTS WITH $p "
        "  WITH m.id AS id ORDER BY id RETURN collect(id) AS messages } "
        "CALL () { MATCH (i:Interaction) WHERE i.id STARTS WITH $p "
        "  WITH i.id AS id ORDER BY id RETURN collect(id) AS interactions } "
        "RETURN messages, interactions",
        p=prefix,
        database_=settings.neo4j_database,
    )
    return dict(records[0])


@contextlib.asynccontextmanager
async def _suppressed(driver: AsyncDriver, settings: Settings, u: str) -> AsyncIterator[str]:
    """A Suppression hash of the test's own, removed afterwards."""
    digest = f"test-hash-{u}"
    db = settings.neo4j_database
    await driver.execute_query("CREATE (:Suppression {hash: $h})", h=digest, database_=db)
    try:
        yield digest
    finally:
        await driver.execute_query(
            "MATCH (s:Suppression {hash: $h}) DELETE s", h=digest, database_=db
        )


async def _count_writes(tx: AsyncManagedTransaction, batch: WriteBatch) -> WriteResult:
    # A write that leaves a trace per record, so a double write would show.
    result = await tx.run(
        "UNWIND $ids AS id CREATE (:ClaimProbe {id: id})",
        ids=[c.source_id for c in batch.customers],
    )
    await result.consume()
    return WriteResult(customers_written=len(batch.customers))


async def test_concurrent_writers_write_each_message_exactly_once(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("claims")
    keys = [f"claims:{u}-m{n}" for n in range(30)]
    # Eight writers, each with an overlapping slice (and one key twice in its own batch).
    slices = [[*keys[n * 3 : n * 3 + 12], keys[n * 3]] for n in range(8)]

    async def writer(part: list[str]) -> frozenset[int]:
        # Odd keys are tracked events, claimed through their interaction; even ones messages.
        units = [
            (_event if int(k.rsplit("m", 1)[1]) % 2 else _unit)(k, k.rsplit(":", 1)[1])
            for k in part
        ]
        outcome = await write_deduplicated(driver, settings.neo4j_database, units, _count_writes)
        return frozenset(n for n in range(len(units)) if n not in outcome.duplicates)

    written = await asyncio.gather(*(writer(part) for part in slices))
    fresh = [part[n] for part, ok in zip(slices, written, strict=True) for n in ok]
    assert sorted(fresh) == sorted(set(k for part in slices for k in part))
    records, _, _ = await driver.execute_query(
        "MATCH (p:ClaimProbe) WHERE p.id STARTS WITH $u "
        "WITH p.id AS id, count(*) AS n RETURN collect([id, n]) AS seen",
        u=u,
        database_=settings.neo4j_database,
    )
    seen = {id_: n for id_, n in records[0]["seen"]}
    assert set(seen.values()) == {1}
    assert len(seen) == len(set(fresh))
    # A replay of everything writes nothing and says so.
    units = [_unit(k, k.rsplit(":", 1)[1]) for k in keys[:20]]
    replay = await write_deduplicated(driver, settings.neo4j_database, units, _count_writes)
    assert replay.duplicates == frozenset(range(20))
    assert replay.result.customers_written == 0


async def test_the_screen_refuses_units_and_releases_their_claims(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("screen")
    units = [_unit(f"claims:{u}-a", f"{u}-a"), _unit(f"claims:{u}-b", f"{u}-b")]
    async with _suppressed(driver, settings, u) as digest:

        def screen(batch: WriteBatch) -> Mapping[str, list[tuple[str, int]]]:
            # The second record's hash is suppressed; the first's is not.
            return {f"other-{u}": [("customers", 0)], digest: [("customers", 1)]}

        outcome = await write_deduplicated(
            driver, settings.neo4j_database, units, _count_writes, screen
        )
    assert outcome.screened == frozenset({1})
    assert outcome.duplicates == frozenset()
    assert outcome.result.customers_written == 1
    claims = await _claims(driver, settings, f"claims:{u}-")
    assert claims["messages"] == [f"claims:{u}-a"]  # the refused message left no claim


async def test_an_event_claims_its_key_with_its_interaction(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("kinds")
    units = [_event(f"claims:{u}-t", f"{u}-t"), _unit(f"claims:{u}-i", f"{u}-i")]
    first = await write_deduplicated(driver, settings.neo4j_database, units, _count_writes)
    assert first.duplicates == frozenset()
    claims = await _claims(driver, settings, f"claims:{u}-")
    assert claims == {"messages": [f"claims:{u}-i"], "interactions": [f"claims:{u}-t"]}

    # The same keys sent again as the other kind are replays all the same.
    swapped = [_unit(f"claims:{u}-t", f"{u}-t2"), _event(f"claims:{u}-i", f"{u}-i2")]
    again = await write_deduplicated(driver, settings.neo4j_database, swapped, _count_writes)
    assert again.duplicates == frozenset({0, 1})
    assert again.result.customers_written == 0
    assert await _claims(driver, settings, f"claims:{u}-") == claims


async def test_a_refused_event_leaves_no_interaction(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("refused")
    units = [_event(f"claims:{u}-a", f"{u}-a"), _event(f"claims:{u}-b", f"{u}-b")]
    async with _suppressed(driver, settings, u) as digest:

        def screen(batch: WriteBatch) -> Mapping[str, list[tuple[str, int]]]:
            return {digest: [("interactions", 1)]}

        outcome = await write_deduplicated(
            driver, settings.neo4j_database, units, _count_writes, screen
        )
    assert outcome.screened == frozenset({1})
    claims = await _claims(driver, settings, f"claims:{u}-")
    assert claims == {"messages": [], "interactions": [f"claims:{u}-a"]}


async def test_an_events_claim_stays_out_of_the_persons_export(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("export")
    key, batch = _event(f"claims:{u}-t", f"{u}-t")
    outcome = await write_deduplicated(
        driver, settings.neo4j_database, [(key, batch)], write_path(settings)
    )
    assert outcome.duplicates == frozenset()
    profile_id = outcome.result.record_profiles[f"claims:{u}-t"]
    exported = await export_profile(driver, settings, profile_id)
    assert exported is not None
    [interaction] = exported["interactions"]
    assert interaction["id"] == key and interaction["name"] == "Viewed"
    assert "claim" not in interaction


async def test_a_keys_first_message_in_a_batch_decides_its_claim(
    driver: AsyncDriver, settings: Settings
) -> None:
    u = unique("first")
    key = f"claims:{u}-k"
    units = [_unit(key, f"{u}-a"), _event(key, f"{u}-b")]  # one messageId, sent as two types
    outcome = await write_deduplicated(driver, settings.neo4j_database, units, _count_writes)
    assert outcome.duplicates == frozenset({1})
    # The message written claims as a message; no empty interaction is left behind.
    assert await _claims(driver, settings, f"claims:{u}-") == {
        "messages": [key],
        "interactions": [],
    }
