"""The write path's fast path: an event of a record holding all its identifiers locks no profile,
reads no neighbourhood and resolves nothing, yet leaves the graph the full path leaves; anything
that can change an identity (a new identifier, a blocked value, a changed trait) still goes the
full way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j import AsyncDriver

from customer_graph.graph.identity import block_identifier
from customer_graph.graph.records import CustomerIn, IdentifierIn, InteractionIn, WriteBatch
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings
from tests.helpers import unique

CONFIG = ResolutionConfig()
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=3)

# Everything the write path leaves for the records of one source, with the source's unique name
# replaced by "S" so that two sources written two ways compare equal.
SNAPSHOT = """
MATCH (c:Customer {source: $src})-[:RESOLVES_TO]->(p:Profile)
WITH c, p ORDER BY c.key
RETURN
  collect([replace(c.key, $src, 'S'), replace(c.traits, $src, 'S'), c.traitTimes, c.seenAt,
           [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) |
              [i.type, replace(i.value, $src, 'S'), h.matched, h.firstSeen, h.lastSeen]],
           [(c)-[:HAD]->(n:Interaction) | [n.type, n.name, n.occurredAt]]]) AS records,
  collect(DISTINCT [p.displayName, replace(coalesce(p.email, ''), $src, 'S'), p.phone,
                    p.company, replace(coalesce(p.traits, ''), $src, 'S'),
                    EXISTS { (p)-[:MERGED_INTO]->() }]) AS profiles,
  count(DISTINCT p) AS profileCount
"""


async def snapshot(driver: AsyncDriver, database: str, src: str) -> dict[str, Any]:
    records, _, _ = await driver.execute_query(SNAPSHOT, {"src": src}, database_=database)
    row = dict(records[0])
    row["records"] = [
        [*r[:4], sorted(r[4], key=str), sorted(r[5], key=str)] for r in row["records"]
    ]
    row["profiles"] = sorted(row["profiles"], key=str)
    return row


def identify(src: str, at: datetime) -> CustomerIn:
    return CustomerIn(
        src,
        "u1",
        {"name": "Ada Lovelace", "email": f"ada-{src}@example.com", "plan": "pro"},
        (
            IdentifierIn("user_id", f"u-{src}"),
            IdentifierIn("anonymous_id", f"a-{src}"),
            IdentifierIn("email", f"ada-{src}@example.com"),
        ),
        seen_at=at,
        message_id=f"{src}-m1",
    )


def track(src: str, at: datetime, *extra: IdentifierIn, event: str = "e2") -> WriteBatch:
    """A track event of the record u1 (carrying its own ids, and `extra`)."""
    customer = CustomerIn(
        src,
        "u1",
        {},
        (IdentifierIn("user_id", f"u-{src}"), IdentifierIn("anonymous_id", f"a-{src}"), *extra),
        seen_at=at,
        message_id=f"{src}-{event}",
    )
    click = InteractionIn(f"{src}-{event}", src, "u1", "track", at, name="Clicked", channel="web")
    return WriteBatch(customers=(customer,), interactions=(click,))


async def test_event_of_a_known_record_leaves_the_graph_of_the_full_path(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    # Fast: the identify creates the record, the later track finds every identifier held.
    fast = unique("fp")
    first = await write_batch(driver, db, WriteBatch(customers=(identify(fast, T0),)), CONFIG)
    second = await write_batch(driver, db, track(fast, T1), CONFIG)
    assert second.profiles_created == 0 and second.merges == [] and second.conflicts == 0
    assert second.record_profiles == first.record_profiles
    # Full: both in one batch, so the record is new and resolved with the event's identifiers.
    full = unique("fp")
    both = track(full, T1)
    await write_batch(
        driver,
        db,
        WriteBatch(customers=(identify(full, T0), *both.customers), interactions=both.interactions),
        CONFIG,
    )
    got, want = await snapshot(driver, db, fast), await snapshot(driver, db, full)
    assert got["profileCount"] == 1 and len(got["records"][0][5]) == 1
    assert got == want
    # The event widened the last sighting of the ids it carried, not of the email.
    seen = {ident[0]: ident[4].to_native() for ident in got["records"][0][4]}
    assert seen == {"user_id": T1, "anonymous_id": T1, "email": T0}

    # A replay of the event changes nothing.
    again = await write_batch(driver, db, track(fast, T1), CONFIG)
    assert again.record_profiles == first.record_profiles
    assert await snapshot(driver, db, fast) == got


async def test_what_can_change_an_identity_still_goes_the_full_way(
    driver: AsyncDriver, settings: Settings
) -> None:
    db, src = settings.neo4j_database, unique("fp")
    ada = await write_batch(driver, db, WriteBatch(customers=(identify(src, T0),)), CONFIG)
    device = IdentifierIn("device_id", f"d-{src}")
    other = CustomerIn(
        src,
        "u2",
        {"name": "Other"},
        (IdentifierIn("email", f"bob-{src}@example.com"), device),
        T0,
    )
    bob = await write_batch(driver, db, WriteBatch(customers=(other,)), CONFIG)
    p_ada, p_bob = ada.record_profiles[f"{src}:u1"], bob.record_profiles[f"{src}:u2"]
    assert p_ada != p_bob

    # A blocked value on a known record: an edge that never matches, no merge.
    await block_identifier(driver, db, device.type, device.value, CONFIG)
    blocked = await write_batch(driver, db, track(src, T1, device), CONFIG)
    assert blocked.merges == [] and blocked.record_profiles[f"{src}:u1"] == p_ada

    # A new identifier on a known record: resolved, here a merge into the older profile.
    joined = await write_batch(
        driver, db, track(src, T1, IdentifierIn("email", f"bob-{src}@example.com")), CONFIG
    )
    assert [(m.survivor_id, m.merged_ids) for m in joined.merges] == [(p_ada, (p_bob,))]
    state = await snapshot(driver, db, src)
    assert state["profileCount"] == 1
    edges = {(i[0], i[1]): i[2] for i in state["records"][0][4]}
    assert edges[("device_id", "d-S")] is False
    assert edges[("email", "bob-S@example.com")] is True

    # A changed trait of a known record reaches its profile.
    renamed = CustomerIn(
        src, "u1", {"name": "Ada King"}, (IdentifierIn("user_id", f"u-{src}"),), T1
    )
    await write_batch(driver, db, WriteBatch(customers=(renamed,)), CONFIG)
    state = await snapshot(driver, db, src)
    assert state["profiles"][0][0] == "Ada King"


LOCK_PROFILE_AND_IDENTIFIERS = """
MATCH (p:Profile {id: $profile})
SET p.createdAt = p.createdAt
WITH p
MATCH (i:Identifier) WHERE i.key IN $keys
SET i.type = i.type
"""


async def test_event_of_a_known_record_waits_for_no_identifier_or_profile_lock(
    driver: AsyncDriver, settings: Settings
) -> None:
    db, src = settings.neo4j_database, unique("fp")
    first = await write_batch(driver, db, WriteBatch(customers=(identify(src, T0),)), CONFIG)
    await write_batch(driver, db, track(src, T1), CONFIG)
    profile = first.record_profiles[f"{src}:u1"]
    keys = [f"user_id:u-{src}", f"anonymous_id:a-{src}"]
    async with driver.session(database=db) as session:
        holder = await session.begin_transaction()
        try:
            await (
                await holder.run(LOCK_PROFILE_AND_IDENTIFIERS, profile=profile, keys=keys)
            ).consume()
            # Another writer holds the profile and the identifiers: a second event of the same
            # moment (so no edge widens its times, which would lock its identifier at commit)
            # still commits.
            second = track(src, T1, event="e3")
            write = asyncio.ensure_future(write_batch(driver, db, second, CONFIG))
            done, _ = await asyncio.wait({write}, timeout=20)
            assert write in done, "the event waited for a lock it does not need"
            assert write.result().record_profiles == first.record_profiles
        finally:
            await holder.rollback()
            await asyncio.wait_for(write, 60)
    state = await snapshot(driver, db, src)
    assert len(state["records"][0][5]) == 2  # both events
