"""Identity administration and identity reads: block, unmerge and delete records (with online
splits), explain a link, merge history, super-connectors, and small lookups.

Splitting: the records of an affected profile are regrouped into the connected components of
their matched edges to non-blocked identifiers; the component holding the oldest record keeps
the profile id (so links to it stay valid), the others get new profiles, and a SplitEvent says
why. The affected profiles are locked first, like the write path does, so a split and a
concurrent write over the same identities serialize.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neo4j import AsyncDriver, AsyncManagedTransaction, RoutingControl
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

from customer_graph.graph.errors import GraphUnavailableError, GraphWriteError
from customer_graph.graph.normalize import normalize_identifier
from customer_graph.graph.profile_refresh import native, refresh_profiles
from customer_graph.graph.records import IdentifierIn
from customer_graph.graph.resolution import ResolutionConfig, UnionFind

MAX_LOCK_ROUNDS = 50


@dataclass(frozen=True, slots=True)
class SplitOut:
    """One profile split into several: `profile_id` kept by the oldest record's group."""

    event_id: str
    profile_id: str
    new_profile_ids: tuple[str, ...]
    reason: str
    identifier_key: str | None
    record_key: str | None


@dataclass(slots=True)
class IdentityChange:
    """What a block, unmerge or delete did."""

    identifier_key: str | None = None
    record_key: str | None = None
    splits: list[SplitOut] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)  # affected profiles after the change
    deleted_profile_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LinkStep:
    """One hop of an explanation: `from_record` and `to_record` share `identifier_key`."""

    from_record: str
    identifier_key: str
    identifier_type: str
    identifier_value: str
    to_record: str


@dataclass(frozen=True, slots=True)
class MergeEventOut:
    id: str
    at: datetime
    survivor_id: str
    merged_ids: tuple[str, ...]
    identifier_key: str | None
    record_key: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class SplitEventOut:
    id: str
    at: datetime
    profile_id: str
    new_profile_ids: tuple[str, ...]
    reason: str
    identifier_key: str | None
    record_key: str | None


@dataclass(frozen=True, slots=True)
class SuperConnector:
    key: str
    type: str
    value: str
    blocked: bool
    records: int
    profiles: int


async def _run_write(driver: AsyncDriver, database: str, work: Any) -> Any:
    try:
        async with driver.session(database=database) as session:
            return await session.execute_write(work)
    except (ServiceUnavailable, SessionExpired, OSError) as e:
        raise GraphUnavailableError(str(e)) from e
    except Neo4jError as e:
        raise GraphWriteError(e.code or "neo4j error") from e


async def _read(driver: AsyncDriver, database: str, query: str, **params: Any) -> list[Any]:
    try:
        records, _, _ = await driver.execute_query(
            query, params, database_=database, routing_=RoutingControl.READ
        )
    except (ServiceUnavailable, SessionExpired, OSError) as e:
        raise GraphUnavailableError(str(e)) from e
    return list(records)


# ---------------------------------------------------------------------------------------------
# Splitting

LOCK_PROFILES = """
UNWIND $ids AS id
MATCH (p:Profile {id: id})
SET p.createdAt = p.createdAt
"""

READ_PROFILE_GRAPH = """
UNWIND $ids AS id
MATCH (p:Profile {id: id})<-[:RESOLVES_TO]-(c:Customer)
RETURN p.id AS profileId, c.key AS key, c.createdAt AS createdAt,
       [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) WHERE h.matched = true AND NOT i.blocked
        | i.key] AS identifiers
"""

CREATE_SPLIT = """
MATCH (old:Profile {id: $profileId})
CREATE (e:SplitEvent {id: $eventId, at: $now, profileId: $profileId, newProfileIds: $newIds,
                      reason: $reason, identifierKey: $identifierKey, recordKey: $recordKey})
CREATE (e)-[:SPLIT]->(old)
WITH e
UNWIND $groups AS g
CREATE (p:Profile {id: g.profileId, createdAt: $now, updatedAt: $now, traits: '{}'})
CREATE (e)-[:SPLIT]->(p)
WITH p, g
UNWIND g.records AS key
MATCH (c:Customer {key: key})-[r:RESOLVES_TO]->(:Profile)
DELETE r
CREATE (c)-[:RESOLVES_TO]->(p)
"""


async def _lock_profiles(tx: AsyncManagedTransaction, ids: Iterable[str]) -> None:
    ids = sorted(set(ids))
    if ids:
        await tx.run(LOCK_PROFILES, ids=ids)


async def _lock_until_stable(tx: AsyncManagedTransaction, query: str, **params: Any) -> list[str]:
    """Lock the profiles `query` returns (column `id`), re-reading until the set is stable."""
    locked: set[str] = set()
    for _ in range(MAX_LOCK_ROUNDS):
        result = await tx.run(query, params)
        found = {r["id"] async for r in result if r["id"] is not None}
        if found <= locked:
            return sorted(found)
        await _lock_profiles(tx, found - locked)
        locked |= found
    raise GraphWriteError("the profiles to lock kept changing")


def _group_age(group: list[Any], now: datetime) -> tuple[datetime, str]:
    """A group's age is its oldest record's: (createdAt, key)."""
    return min((native(m["createdAt"]) or now, m["key"]) for m in group)


async def split_profiles(
    tx: AsyncManagedTransaction,
    profile_ids: Sequence[str],
    *,
    reason: str,
    identifier_key: str | None,
    record_key: str | None,
    now: datetime,
) -> list[SplitOut]:
    """Regroup locked profiles into their connected components; return the splits made."""
    if not profile_ids:
        return []
    result = await tx.run(READ_PROFILE_GRAPH, ids=list(profile_ids))
    rows = [r async for r in result]
    by_profile: dict[str, list[Any]] = {}
    for r in rows:
        by_profile.setdefault(r["profileId"], []).append(r)
    splits: list[SplitOut] = []
    for pid in sorted(by_profile):
        members = by_profile[pid]
        uf: UnionFind[str] = UnionFind()
        for m in members:
            uf.add("r:" + m["key"])
            for ident in m["identifiers"]:
                uf.union("r:" + m["key"], "i:" + ident)
        groups: dict[str, list[Any]] = {}
        for m in members:
            groups.setdefault(uf.find("r:" + m["key"]), []).append(m)
        if len(groups) < 2:
            continue

        ordered = sorted(groups.values(), key=lambda g: _group_age(g, now))
        moved = [
            {"profileId": uuid.uuid4().hex, "records": sorted(m["key"] for m in group)}
            for group in ordered[1:]
        ]
        event_id = uuid.uuid4().hex
        new_ids: list[str] = [str(g["profileId"]) for g in moved]
        await tx.run(
            CREATE_SPLIT,
            profileId=pid,
            eventId=event_id,
            now=now,
            newIds=new_ids,
            reason=reason,
            identifierKey=identifier_key,
            recordKey=record_key,
            groups=moved,
        )
        splits.append(SplitOut(event_id, pid, tuple(new_ids), reason, identifier_key, record_key))
    return splits


# ---------------------------------------------------------------------------------------------
# Block an identifier

BLOCK_IDENTIFIER = """
MERGE (i:Identifier {key: $key})
  ON CREATE SET i.type = $type, i.value = $value
SET i.blocked = true, i.blockedAt = coalesce(i.blockedAt, $now), i.blockReason = $reason
"""

PROFILES_OF_IDENTIFIER = """
MATCH (:Identifier {key: $key})<-[h:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(p:Profile)
WHERE h.matched = true
RETURN DISTINCT p.id AS id
"""


async def block_identifier_tx(
    tx: AsyncManagedTransaction,
    type_: str,
    value: str,
    config: ResolutionConfig,
    reason: str = "blocked",
) -> IdentityChange:
    """Block an identifier and split every profile it joined; see `block_identifier`."""
    ident = normalize_identifier(
        IdentifierIn(type_, value), default_region=config.default_region, blocked_patterns=()
    )
    if ident is None:
        return IdentityChange()
    now = datetime.now(UTC)
    await tx.run(
        BLOCK_IDENTIFIER, key=ident.key, type=ident.type, value=ident.value, now=now, reason=reason
    )
    profiles = await _lock_until_stable(tx, PROFILES_OF_IDENTIFIER, key=ident.key)
    splits = await split_profiles(
        tx, profiles, reason=reason, identifier_key=ident.key, record_key=None, now=now
    )
    after = sorted({*profiles, *(i for s in splits for i in s.new_profile_ids)})
    await refresh_profiles(tx, after, config)
    return IdentityChange(identifier_key=ident.key, splits=splits, profile_ids=after)


async def block_identifier(
    driver: AsyncDriver,
    database: str,
    type_: str,
    value: str,
    config: ResolutionConfig,
    reason: str = "blocked",
) -> IdentityChange:
    """Block an identifier (normalized like ingestion): it never links records again, and the
    profiles it joined are split into their remaining components, each split with a SplitEvent.

    The block is kept on the Identifier node, so later writes of the value do not link. Returns
    an empty change (identifier_key None) if the value is not a valid identifier.
    """

    async def work(tx: AsyncManagedTransaction) -> IdentityChange:
        return await block_identifier_tx(tx, type_, value, config, reason)

    change: IdentityChange = await _run_write(driver, database, work)
    return change


# ---------------------------------------------------------------------------------------------
# Unmerge and delete a record

PROFILE_OF_RECORD_LOCKING = """
MATCH (c:Customer {key: $key})
SET c.source = c.source
WITH c
OPTIONAL MATCH (c)-[:RESOLVES_TO]->(p:Profile)
RETURN p.id AS id
"""

# `detached` tells full re-resolution that a person decided this, not a limit.
DETACH_RECORD = """
MATCH (c:Customer {key: $key})-[h:HAS_IDENTIFIER]->(:Identifier)
SET h.matched = false, h.detached = true
"""

DELETE_RECORD = """
MATCH (c:Customer {key: $key})
OPTIONAL MATCH (c)-[:HAD]->(n:Interaction)
WHERE NOT EXISTS { (other:Customer)-[:HAD]->(n) WHERE other <> c }
DETACH DELETE n
WITH DISTINCT c
DETACH DELETE c
"""

# A profile left without records goes, with the profiles merged into it.
DELETE_EMPTY_PROFILE = """
MATCH (p:Profile {id: $id})
WHERE NOT EXISTS { (:Customer)-[:RESOLVES_TO]->(p) }
OPTIONAL MATCH (m:Profile)-[:MERGED_INTO]->(p)
DETACH DELETE m
WITH DISTINCT p
DETACH DELETE p
RETURN count(p) AS deleted
"""


async def unmerge_record_tx(
    tx: AsyncManagedTransaction, record_key: str, config: ResolutionConfig, reason: str
) -> IdentityChange:
    now = datetime.now(UTC)
    profiles = await _lock_until_stable(tx, PROFILE_OF_RECORD_LOCKING, key=record_key)
    if not profiles:
        return IdentityChange(record_key=record_key)
    # The record's edges stop matching, so later writes of its identifiers do not re-join it.
    await tx.run(DETACH_RECORD, key=record_key)
    splits = await split_profiles(
        tx, profiles, reason=reason, identifier_key=None, record_key=record_key, now=now
    )
    after = sorted({*profiles, *(i for s in splits for i in s.new_profile_ids)})
    await refresh_profiles(tx, after, config)
    return IdentityChange(record_key=record_key, splits=splits, profile_ids=after)


async def unmerge_record(
    driver: AsyncDriver,
    database: str,
    record_key: str,
    config: ResolutionConfig,
    reason: str = "unmerged",
) -> IdentityChange:
    """Take a record out of its profile into a profile of its own (its identifier edges stop
    matching, so it stays apart); the rest of the profile regroups into its components."""

    async def work(tx: AsyncManagedTransaction) -> IdentityChange:
        return await unmerge_record_tx(tx, record_key, config, reason)

    change: IdentityChange = await _run_write(driver, database, work)
    return change


async def delete_record_tx(
    tx: AsyncManagedTransaction, record_key: str, config: ResolutionConfig, reason: str
) -> IdentityChange:
    now = datetime.now(UTC)
    profiles = await _lock_until_stable(tx, PROFILE_OF_RECORD_LOCKING, key=record_key)
    await tx.run(DELETE_RECORD, key=record_key)
    deleted: list[str] = []
    for pid in profiles:
        result = await tx.run(DELETE_EMPTY_PROFILE, id=pid)
        row = await result.single()
        if row is not None and row["deleted"]:
            deleted.append(pid)
    remaining = [p for p in profiles if p not in deleted]
    splits = await split_profiles(
        tx, remaining, reason=reason, identifier_key=None, record_key=record_key, now=now
    )
    after = sorted({*remaining, *(i for s in splits for i in s.new_profile_ids)})
    await refresh_profiles(tx, after, config)
    return IdentityChange(
        record_key=record_key, splits=splits, profile_ids=after, deleted_profile_ids=deleted
    )


async def delete_record(
    driver: AsyncDriver,
    database: str,
    record_key: str,
    config: ResolutionConfig,
    reason: str = "record deleted",
) -> IdentityChange:
    """Delete a record with its interactions; its former profile regroups into the components
    that remain (SplitEvent), and goes away if no record is left."""

    async def work(tx: AsyncManagedTransaction) -> IdentityChange:
        return await delete_record_tx(tx, record_key, config, reason)

    change: IdentityChange = await _run_write(driver, database, work)
    return change


# ---------------------------------------------------------------------------------------------
# Explain

# Shortest chain of matched edges through non-blocked identifiers and records of the profile.
EXPLAIN_LINK = """
MATCH (a:Customer {key: $a})-[:RESOLVES_TO]->(p:Profile)
MATCH (b:Customer {key: $b})
WHERE (b)-[:RESOLVES_TO]->(p) AND a <> b
MATCH path = shortestPath((a)-[:HAS_IDENTIFIER*..40]-(b))
WHERE all(r IN relationships(path) WHERE r.matched = true)
  AND all(n IN nodes(path) WHERE
        (n:Identifier AND NOT n.blocked) OR (n:Customer AND (n)-[:RESOLVES_TO]->(p)))
RETURN [n IN nodes(path) | {key: n.key, type: n.type, value: n.value}] AS nodes
"""


async def explain_link(
    driver: AsyncDriver, database: str, record_a: str, record_b: str
) -> list[LinkStep] | None:
    """The chain of shared identifiers joining two records of one profile, shortest first.

    [] if a and b are the same record; None if they are not in one profile or not linked.
    """
    if record_a == record_b:
        rows = await _read(driver, database, RECORD_EXISTS, key=record_a)
        return [] if rows else None
    rows = await _read(driver, database, EXPLAIN_LINK, a=record_a, b=record_b)
    if not rows:
        return None
    nodes = rows[0]["nodes"]
    steps = []
    for i in range(0, len(nodes) - 2, 2):
        ident = nodes[i + 1]
        steps.append(
            LinkStep(
                nodes[i]["key"], ident["key"], ident["type"], ident["value"], nodes[i + 2]["key"]
            )
        )
    return steps


RECORD_EXISTS = "MATCH (c:Customer {key: $key}) RETURN c.key AS key"


# ---------------------------------------------------------------------------------------------
# Reads

PROFILE_OF_RECORDS = """
UNWIND $keys AS key
MATCH (c:Customer {key: key})-[:RESOLVES_TO]->(p:Profile)
RETURN key, p.id AS id
"""

# Merged-away profiles point straight at their survivor (the write path keeps chains one hop
# long), but follow longer chains too in case an older version left them.
RESOLVE_PROFILE_IDS = """
UNWIND $ids AS id
MATCH (p:Profile {id: id})
OPTIONAL MATCH (p)-[:MERGED_INTO*1..]->(live:Profile)
WHERE NOT (live)-[:MERGED_INTO]->()
RETURN id, coalesce(live.id, p.id) AS live
"""

PROFILE_BY_IDENTIFIER = """
MATCH (:Identifier {key: $key})<-[h:HAS_IDENTIFIER]-(c:Customer)-[:RESOLVES_TO]->(p:Profile)
RETURN p.id AS id, h.matched = true AS matched, c.createdAt AS createdAt
ORDER BY matched DESC, createdAt ASC
LIMIT 1
"""

MERGE_HISTORY = """
MATCH (p:Profile {id: $id})
MATCH (q:Profile)-[:MERGED_INTO*0..]->(p)
WITH DISTINCT q
MATCH (e:MergeEvent)-[:MERGED]->(q)
WITH DISTINCT e
RETURN e.id AS id, e.at AS at, e.survivorId AS survivorId, e.mergedIds AS mergedIds,
       e.identifierKey AS identifierKey, e.recordKey AS recordKey, e.messageId AS messageId
ORDER BY at DESC, id
"""

SPLIT_HISTORY = """
MATCH (e:SplitEvent)-[:SPLIT]->(:Profile {id: $id})
RETURN e.id AS id, e.at AS at, e.profileId AS profileId, e.newProfileIds AS newProfileIds,
       e.reason AS reason, e.identifierKey AS identifierKey, e.recordKey AS recordKey
ORDER BY at DESC, id
"""


async def profile_ids_of_records(
    driver: AsyncDriver, database: str, record_keys: Sequence[str]
) -> dict[str, str]:
    """record key -> its (live) profile id, for the keys that exist."""
    rows = await _read(driver, database, PROFILE_OF_RECORDS, keys=list(record_keys))
    return {r["key"]: r["id"] for r in rows}


async def profile_id_of_record(driver: AsyncDriver, database: str, record_key: str) -> str | None:
    return (await profile_ids_of_records(driver, database, [record_key])).get(record_key)


async def resolve_profile_ids(
    driver: AsyncDriver, database: str, profile_ids: Sequence[str]
) -> dict[str, str]:
    """id -> the live profile it is now (itself, or the survivor it was merged into)."""
    rows = await _read(driver, database, RESOLVE_PROFILE_IDS, ids=list(profile_ids))
    return {r["id"]: r["live"] for r in rows}


async def resolve_profile_id(driver: AsyncDriver, database: str, profile_id: str) -> str | None:
    return (await resolve_profile_ids(driver, database, [profile_id])).get(profile_id)


async def profile_id_by_identifier(
    driver: AsyncDriver, database: str, type_: str, value: str, config: ResolutionConfig
) -> str | None:
    """The profile holding an identifier, the value normalized like ingestion."""
    ident = normalize_identifier(
        IdentifierIn(type_, value),
        default_region=config.default_region,
        blocked_patterns=config.blocked_patterns,
    )
    if ident is None:
        return None
    rows = await _read(driver, database, PROFILE_BY_IDENTIFIER, key=ident.key)
    return rows[0]["id"] if rows else None


def _at(value: Any) -> datetime:
    return native(value) or datetime.min.replace(tzinfo=UTC)


async def merge_history(driver: AsyncDriver, database: str, profile_id: str) -> list[MergeEventOut]:
    """The merges that made this profile (and the profiles merged into it), newest first."""
    rows = await _read(driver, database, MERGE_HISTORY, id=profile_id)
    return [
        MergeEventOut(
            id=r["id"],
            at=_at(r["at"]),
            survivor_id=r["survivorId"],
            merged_ids=tuple(r["mergedIds"] or ()),
            identifier_key=r["identifierKey"],
            record_key=r["recordKey"],
            message_id=r["messageId"],
        )
        for r in rows
    ]


async def split_history(driver: AsyncDriver, database: str, profile_id: str) -> list[SplitEventOut]:
    """The splits this profile took part in (as the split one or a new one), newest first."""
    rows = await _read(driver, database, SPLIT_HISTORY, id=profile_id)
    return [
        SplitEventOut(
            id=r["id"],
            at=_at(r["at"]),
            profile_id=r["profileId"],
            new_profile_ids=tuple(r["newProfileIds"] or ()),
            reason=r["reason"],
            identifier_key=r["identifierKey"],
            record_key=r["recordKey"],
        )
        for r in rows
    ]


# COUNT { } on a single relationship type reads the node's degree, not every relationship.
SUPER_CONNECTORS = """
MATCH (i:Identifier)
WITH i, COUNT { (i)<-[:HAS_IDENTIFIER]-(:Customer) } AS records
WHERE records > $threshold
OPTIONAL MATCH (i)<-[:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(p:Profile)
WITH i, records, count(DISTINCT p) AS profiles
RETURN i.key AS key, i.type AS type, i.value AS value, coalesce(i.blocked, false) AS blocked,
       records, profiles
ORDER BY records DESC, key
LIMIT $limit
"""


async def super_connectors(
    driver: AsyncDriver, database: str, threshold: int, limit: int = 100
) -> list[SuperConnector]:
    """Identifiers held by more than `threshold` records (shared phones, placeholder emails)."""
    rows = await _read(driver, database, SUPER_CONNECTORS, threshold=threshold, limit=limit)
    return [
        SuperConnector(
            key=r["key"],
            type=r["type"],
            value=r["value"],
            blocked=r["blocked"],
            records=r["records"],
            profiles=r["profiles"],
        )
        for r in rows
    ]
