"""Identity invariants against the real Neo4j, with hypothesis and the union-find oracle.

Each example writes records of its own source with identifiers that carry its own token, so
examples (and other tests in the shared database) never see each other.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from neo4j import AsyncDriver

from customer_graph.graph.identity import block_identifier
from customer_graph.graph.records import CustomerIn, IdentifierIn, WriteBatch
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings
from tests.oracle import components, partition

# No shrinking: every step writes to Neo4j, so shrinking a failure would take many minutes; the
# falsifying example hypothesis prints is small enough to read.
PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=25,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class PoolItem:
    """One raw identifier a record may carry, and what it should become."""

    type: str
    raw: str
    key: str | None  # the normalized identifier key; None if it must never be an identifier
    runtime_blocked: bool = False


T0 = datetime(2024, 5, 1, tzinfo=UTC)
AREA_CODES = (201, 212, 213, 303, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 718, 919)


def _random_phone(rnd: random.Random) -> str:
    """A valid number nobody else uses: phones cannot carry the example's token."""
    while True:
        area = rnd.choice(AREA_CODES)
        number = f"+1 {area} {rnd.randint(200, 999)} {rnd.randint(0, 9999):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def make_pool(tok: str, rnd: random.Random) -> list[PoolItem]:
    items: list[PoolItem] = []
    for j in range(3):
        canonical = f"p{j}.{tok}@example.com"
        items.append(PoolItem("email", canonical, f"email:{canonical}"))
        items.append(PoolItem("Email", f"  P{j}.{tok.upper()}@EXAMPLE.com ", f"email:{canonical}"))
    for _ in range(2):
        phone = _random_phone(rnd)
        e164 = phone.replace(" ", "")
        digits = e164[2:]
        items.append(
            PoolItem("phone", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", f"phone:{e164}")
        )
        items.append(PoolItem("phone", phone, f"phone:{e164}"))
    for j in range(3):
        items.append(PoolItem("user_id", f" u{j}-{tok} ", f"user_id:u{j}-{tok}"))
    items.append(PoolItem("anonymous_id", f"anon-{tok}", f"anonymous_id:anon-{tok}"))
    # Malformed and blocked values: never identifiers.
    items.append(PoolItem("email", f"broken-{tok}", None))
    items.append(PoolItem("phone", "12345", None))
    items.append(PoolItem("user_id", "null", None))
    items.append(PoolItem("email", "test@test.com", None))
    items.append(PoolItem("anonymous_id", "anonymous", None))
    # Blocked at run time, before any write.
    blocked = f"blocked.{tok}@example.com"
    items.append(PoolItem("email", blocked, f"email:{blocked}", runtime_blocked=True))
    return items


@dataclass
class Scenario:
    source: str
    pool: list[PoolItem]
    writes: list[tuple[str, list[PoolItem]]]  # (record source id, identifiers of that write)
    batches: list[list[int]]  # indexes into writes, per batch


@st.composite
def scenarios(draw: st.DrawFn, max_batch: int = 5) -> Scenario:
    tok = uuid.uuid4().hex[:10]
    pool = make_pool(tok, random.Random(uuid.uuid4().int))
    n_records = draw(st.integers(2, 10))
    writes: list[tuple[str, list[PoolItem]]] = []
    for r in range(n_records):
        for _ in range(draw(st.integers(1, 2))):
            idents = draw(st.lists(st.sampled_from(pool), max_size=3))
            writes.append((f"r{r}", idents))
    order = draw(st.permutations(range(len(writes))))
    batches: list[list[int]] = []
    i = 0
    while i < len(order):
        size = draw(st.integers(1, max_batch))
        batches.append(list(order[i : i + size]))
        i += size
    return Scenario(f"prop-{tok}", pool, writes, batches)


def _batch(s: Scenario, indexes: list[int]) -> WriteBatch:
    return WriteBatch(
        customers=tuple(
            CustomerIn(
                source=s.source,
                source_id=s.writes[i][0],
                traits={"n": i},
                # Event time follows the write's index, whatever order writes arrive in.
                seen_at=T0 + timedelta(seconds=i),
                identifiers=tuple(IdentifierIn(p.type, p.raw) for p in s.writes[i][1]),
                message_id=f"{s.source}-m{i}",
            )
            for i in indexes
        )
    )


async def _write_all(
    driver: AsyncDriver, database: str, s: Scenario, config: ResolutionConfig, writers: int
) -> None:
    lanes: list[list[list[int]]] = [[] for _ in range(writers)]
    for n, b in enumerate(s.batches):
        lanes[n % writers].append(b)

    async def lane(batches: list[list[int]]) -> None:
        for b in batches:
            await write_batch(driver, database, _batch(s, b), config)

    await asyncio.gather(*(lane(batches) for batches in lanes))


async def _block_runtime(
    driver: AsyncDriver, database: str, s: Scenario, c: ResolutionConfig
) -> None:
    for p in s.pool:
        if p.runtime_blocked:
            await block_identifier(driver, database, p.type, p.raw, c, reason="test")


def _record_identifiers(s: Scenario) -> dict[str, set[str]]:
    record_keys: dict[str, set[str]] = {}
    for source_id, idents in s.writes:
        keys = record_keys.setdefault(f"{s.source}:{source_id}", set())
        keys.update(p.key for p in idents if p.key is not None and not p.runtime_blocked)
    return record_keys


def _expected(s: Scenario) -> set[frozenset[str]]:
    return components(_record_identifiers(s))


STATE = """
MATCH (c:Customer {source: $source})
OPTIONAL MATCH (c)-[:RESOLVES_TO]->(p:Profile)
RETURN c.key AS key, c.traits AS traits, c.traitTimes AS traitTimes, c.seenAt AS seenAt,
       c.updatedAt AS updatedAt, count(p) AS profiles, collect(p.id)[0] AS profileId,
       collect(p.traits)[0] AS profileTraits, collect(p.updatedAt)[0] AS profileUpdatedAt,
       collect(EXISTS { (p)-[:MERGED_INTO]->() })[0] AS merged,
       [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) |
          [i.key, h.matched, h.firstSeen, h.lastSeen, i.blocked]] AS edges
ORDER BY key
"""

EVENTS = """
MATCH (e:MergeEvent) WHERE e.recordKey STARTS WITH $prefix
RETURN count(e) AS merges
"""


async def _state(driver: AsyncDriver, database: str, source: str) -> list[dict[str, Any]]:
    records, _, _ = await driver.execute_query(STATE, source=source, database_=database)
    rows = [dict(r) for r in records]
    for r in rows:
        r["edges"] = sorted(r["edges"])
    return rows


async def _merge_events(driver: AsyncDriver, database: str, source: str) -> int:
    records, _, _ = await driver.execute_query(EVENTS, prefix=source + ":", database_=database)
    return int(records[0]["merges"])


def _matched_components(rows: list[dict[str, Any]]) -> set[frozenset[str]]:
    return components(
        {r["key"]: [e[0] for e in r["edges"] if e[1] is True and not e[4]] for r in rows}
    )


async def check_components_and_replay(
    driver: AsyncDriver, db: str, s: Scenario, writers: int
) -> None:
    config = ResolutionConfig(limits_enabled=False)
    await _block_runtime(driver, db, s, config)
    await _write_all(driver, db, s, config, writers)

    rows = await _state(driver, db, s.source)
    assert all(r["profiles"] == 1 and not r["merged"] for r in rows)
    assert partition({r["key"]: r["profileId"] for r in rows}) == _expected(s)
    # The latest event wins each trait, whatever order writes arrived in.
    last_write = {f"{s.source}:{sid}": i for i, (sid, _) in enumerate(s.writes)}
    for r in rows:
        assert json.loads(r["traits"]) == {"n": last_write[r["key"]]}
        in_profile = [last_write[o["key"]] for o in rows if o["profileId"] == r["profileId"]]
        assert json.loads(r["profileTraits"]) == {"n": max(in_profile)}
    # Without limits every edge to a usable identifier matched.
    for r in rows:
        for key, matched, _, _, blocked in r["edges"]:
            assert matched is (not blocked), (key, matched, blocked)

    # Replaying every write, in one batch and in the original batches, changes nothing.
    merges_before = await _merge_events(driver, db, s.source)
    everything = [i for b in s.batches for i in b]
    replay = await write_batch(driver, db, _batch(s, everything), config)
    assert replay.profiles_created == 0 and replay.merges == [] and replay.conflicts == 0
    await _write_all(driver, db, s, config, writers)
    assert await _state(driver, db, s.source) == rows
    assert await _merge_events(driver, db, s.source) == merges_before

    # Blocking the most shared identifier splits profiles into the components without it.
    held = _record_identifiers(s)
    counts = Counter(k for keys in held.values() for k in keys)
    if counts:
        key, _ = counts.most_common(1)[0]
        type_, _, value = key.partition(":")
        await block_identifier(driver, db, type_, value, config, reason="property")
        rows = await _state(driver, db, s.source)
        without = {r: keys - {key} for r, keys in held.items()}
        assert partition({r["key"]: r["profileId"] for r in rows}) == components(without)


@PROPERTY_SETTINGS
@given(s=scenarios(max_batch=5))
async def test_one_writer_profiles_are_components_and_replay_changes_nothing(
    driver: AsyncDriver, settings: Settings, s: Scenario
) -> None:
    await check_components_and_replay(driver, settings.neo4j_database, s, writers=1)


@PROPERTY_SETTINGS
@given(s=scenarios(max_batch=2))
async def test_four_writers_profiles_are_components_and_replay_changes_nothing(
    driver: AsyncDriver, settings: Settings, s: Scenario
) -> None:
    """Small batches on four concurrent writers, so writers race over shared identifiers."""
    await check_components_and_replay(driver, settings.neo4j_database, s, writers=4)


LIMITS = ResolutionConfig(limits={"user_id": 1, "email": 2, "phone": 1}, default_limit=1)


@pytest.mark.parametrize("writers", [1, 4])
@PROPERTY_SETTINGS
@given(s=scenarios(max_batch=3))
async def test_limits_are_never_exceeded(
    driver: AsyncDriver, settings: Settings, writers: int, s: Scenario
) -> None:
    db = settings.neo4j_database
    await _block_runtime(driver, db, s, LIMITS)
    await _write_all(driver, db, s, LIMITS, writers)

    rows = await _state(driver, db, s.source)
    assert all(r["profiles"] == 1 and not r["merged"] for r in rows)
    values: dict[str, dict[str, set[str]]] = {}
    for r in rows:
        for key, matched, _, _, blocked in r["edges"]:
            if matched and not blocked:
                type_, _, value = key.partition(":")
                values.setdefault(r["profileId"], {}).setdefault(type_, set()).add(value)
    for per_type in values.values():
        for type_, vs in per_type.items():
            assert len(vs) <= LIMITS.limit(type_), (type_, vs)
    # Profiles are still exactly the components over the edges that matched.
    assert partition({r["key"]: r["profileId"] for r in rows}) == _matched_components(rows)

    replay = await write_batch(driver, db, _batch(s, [i for b in s.batches for i in b]), LIMITS)
    assert replay.profiles_created == 0 and replay.merges == []
    assert await _state(driver, db, s.source) == rows
