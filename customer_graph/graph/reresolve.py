"""Full re-resolution: recompute every profile from the records and report the differences.

All records are read page by page (key order) with their edges to non-blocked identifiers,
then grouped by `resolve` as one batch in record age order (createdAt, key), with every edge
undecided except those an admin detached (`unmerge_record`). Without limits the groups are
exactly the connected components; with limits they are what writing the records oldest first
would give.

Each new group keeps the current profile id most of its records have (each id used once), so
an unchanged graph reports no difference. With `apply`, changed groups are written in
transactions of about `batch_size` records: new profiles, moved records, re-decided edges,
MERGED_INTO for profiles left without records (with a MergeEvent) and a SplitEvent for profiles
whose records went to several groups, all with reason "re-resolution".

The plan is computed from one read of the whole graph; run it while writes are paused (a write
landing between the read and the apply can be undone by it, and is fixed by the next run).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neo4j import AsyncDriver, AsyncManagedTransaction, RoutingControl

from customer_graph.graph.normalize import Identifier
from customer_graph.graph.profile_refresh import native, refresh_profiles
from customer_graph.graph.resolution import RecordState, ResolutionConfig, resolve

READ_RECORDS_PAGE = """
MATCH (c:Customer)
WHERE c.key > $after
WITH c ORDER BY c.key LIMIT $limit
OPTIONAL MATCH (c)-[:RESOLVES_TO]->(p:Profile)
RETURN c.key AS key, c.createdAt AS createdAt, p.id AS profileId,
       [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) WHERE NOT i.blocked |
          [i.key, i.type, i.value, h.matched, coalesce(h.detached, false)]] AS edges
"""

LOCK_PROFILES = """
UNWIND $ids AS id
MATCH (p:Profile {id: id})
SET p.createdAt = p.createdAt
"""

CREATE_PROFILES = """
UNWIND $ids AS id
MERGE (p:Profile {id: id})
  ON CREATE SET p.createdAt = $now, p.updatedAt = $now, p.traits = '{}'
"""

MOVE_RECORDS = """
UNWIND $rows AS row
MATCH (c:Customer {key: row.key})
MATCH (p:Profile {id: row.profileId})
OPTIONAL MATCH (c)-[old:RESOLVES_TO]->(q:Profile)
WHERE q <> p
DELETE old
MERGE (c)-[:RESOLVES_TO]->(p)
"""

SET_MATCHED = """
UNWIND $rows AS row
MATCH (:Customer {key: row.key})-[h:HAS_IDENTIFIER]->(:Identifier {key: row.identifier})
SET h.matched = row.matched
"""

RETIRE_PROFILES = """
UNWIND $rows AS row
MATCH (s:Profile {id: row.survivorId})
MATCH (l:Profile {id: row.mergedId})
WHERE NOT EXISTS { (:Customer)-[:RESOLVES_TO]->(l) }
CREATE (e:MergeEvent {id: row.eventId, at: $now, survivorId: s.id, mergedIds: [l.id],
                      reason: 're-resolution'})
CREATE (e)-[:MERGED]->(s)
CREATE (e)-[:MERGED]->(l)
MERGE (l)-[:MERGED_INTO]->(s)
SET l.mergedAt = $now, l.updatedAt = $now, l.displayName = null, l.email = null,
    l.phone = null, l.company = null
WITH s, l
CALL (s, l) {
  MATCH (x:Profile)-[r:MERGED_INTO]->(l)
  DELETE r
  MERGE (x)-[:MERGED_INTO]->(s)
}
"""

RECORD_SPLITS = """
UNWIND $rows AS row
MATCH (old:Profile {id: row.profileId})
CREATE (e:SplitEvent {id: row.eventId, at: $now, profileId: old.id,
                      newProfileIds: row.newProfileIds, reason: 're-resolution'})
CREATE (e)-[:SPLIT]->(old)
WITH e, row
UNWIND row.newProfileIds AS nid
MATCH (p:Profile {id: nid})
CREATE (e)-[:SPLIT]->(p)
"""


@dataclass(frozen=True, slots=True)
class _Row:
    key: str
    created_at: datetime
    profile_id: str | None
    edges: tuple[tuple[str, str, str, bool | None, bool], ...]


@dataclass(slots=True)
class ReResolution:
    """The differences between the stored profiles and recomputed ones."""

    records: int = 0
    profiles_before: int = 0
    profiles_after: int = 0
    moved: list[tuple[str, str | None, str]] = field(default_factory=list)  # key, from, to
    merged_profiles: list[tuple[str, str]] = field(default_factory=list)  # merged-away, into
    split_profiles: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    edges_changed: list[tuple[str, str, bool]] = field(default_factory=list)
    applied: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.edges_changed)


async def _read_all(driver: AsyncDriver, database: str, page: int) -> list[_Row]:
    rows: list[_Row] = []
    after = ""
    while True:
        records, _, _ = await driver.execute_query(
            READ_RECORDS_PAGE,
            after=after,
            limit=page,
            database_=database,
            routing_=RoutingControl.READ,
        )
        if not records:
            return rows
        for r in records:
            rows.append(
                _Row(
                    key=r["key"],
                    created_at=native(r["createdAt"]) or datetime.min.replace(tzinfo=UTC),
                    profile_id=r["profileId"],
                    edges=tuple((e[0], e[1], e[2], e[3], e[4]) for e in r["edges"]),
                )
            )
        after = records[-1]["key"]


def plan(rows: list[_Row], config: ResolutionConfig) -> tuple[ReResolution, dict[str, str]]:
    """Compute the differences; also return record key -> target profile id."""
    ordered = sorted(rows, key=lambda r: (r.created_at, r.key))
    states = [
        RecordState(
            key=r.key,
            profile_id=None,
            pending=tuple(Identifier(t, v) for k, t, v, _, detached in r.edges if not detached),
        )
        for r in ordered
    ]
    counter = iter(range(len(states) + 1))
    decision = resolve(states, {}, {}, config, new_id=lambda: f"group-{next(counter)}")
    groups: dict[str, list[_Row]] = {}
    by_key = {r.key: r for r in rows}
    for key, token in decision.record_profiles.items():
        groups.setdefault(token, []).append(by_key[key])

    # Each group keeps the current id most of its records carry, biggest groups first.
    taken: set[str] = set()
    target: dict[str, str] = {}
    for _token, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        votes = Counter(m.profile_id for m in members if m.profile_id is not None)
        choice = next(
            (
                pid
                for pid, _ in sorted(votes.items(), key=lambda v: (-v[1], v[0]))
                if pid not in taken
            ),
            None,
        )
        pid = choice or uuid.uuid4().hex
        taken.add(pid)
        for m in members:
            target[m.key] = pid

    report = ReResolution(
        records=len(rows),
        profiles_before=len({r.profile_id for r in rows if r.profile_id}),
        profiles_after=len(groups),
    )
    report.moved = sorted(
        (r.key, r.profile_id, target[r.key]) for r in rows if r.profile_id != target[r.key]
    )
    for r in rows:
        for key, _, _, matched, detached in r.edges:
            should = False if detached else decision.matched.get((r.key, key), False)
            if matched is not should:
                report.edges_changed.append((r.key, key, should))
    before: dict[str, set[str]] = {}
    for r in rows:
        if r.profile_id is not None:
            before.setdefault(r.profile_id, set()).add(target[r.key])
    for old, targets in sorted(before.items()):
        if old not in taken:
            into = Counter(target[r.key] for r in rows if r.profile_id == old).most_common(1)
            report.merged_profiles.append((old, into[0][0]))
        if len(targets) > 1:
            report.split_profiles.append((old, tuple(sorted(targets - {old}))))
    return report, target


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def re_resolve(
    driver: AsyncDriver,
    database: str,
    config: ResolutionConfig,
    *,
    apply: bool = False,
    batch_size: int = 1000,
) -> ReResolution:
    """Recompute all profiles; with `apply`, write the differences (see the module docstring)."""
    rows = await _read_all(driver, database, batch_size)
    report, target = plan(rows, config)
    if not apply or not report.changed:
        return report
    now = datetime.now(UTC)
    existing = {r.profile_id for r in rows if r.profile_id}
    new_ids = sorted(set(target.values()) - existing)
    moves = [{"key": key, "profileId": to} for key, _, to in report.moved]
    edges = [{"key": k, "identifier": i, "matched": m} for k, i, m in report.edges_changed]
    touched = {to for _, _, to in report.moved} | {frm for _, frm, _ in report.moved if frm}
    touched |= {target[k] for k, _, _ in report.edges_changed}

    async with driver.session(database=database) as session:
        for chunk in _chunks(new_ids, batch_size):

            async def create(tx: AsyncManagedTransaction, ids: list[str] = chunk) -> None:
                await tx.run(CREATE_PROFILES, ids=ids, now=now)

            await session.execute_write(create)
        for chunk in _chunks(moves, batch_size):

            async def move(tx: AsyncManagedTransaction, rows: list[Any] = chunk) -> None:
                ids = sorted({r["profileId"] for r in rows} | _sources(rows, report))
                await tx.run(LOCK_PROFILES, ids=ids)
                await tx.run(MOVE_RECORDS, rows=rows)

            await session.execute_write(move)
        for chunk in _chunks(edges, batch_size):

            async def decide(tx: AsyncManagedTransaction, rows: list[Any] = chunk) -> None:
                await tx.run(SET_MATCHED, rows=rows)

            await session.execute_write(decide)

        kept = set(target.values())

        async def events(tx: AsyncManagedTransaction) -> None:
            await tx.run(
                RETIRE_PROFILES,
                rows=[
                    {"survivorId": into, "mergedId": old, "eventId": uuid.uuid4().hex}
                    for old, into in report.merged_profiles
                ],
                now=now,
            )
            await tx.run(
                RECORD_SPLITS,
                rows=[
                    {"profileId": old, "newProfileIds": list(news), "eventId": uuid.uuid4().hex}
                    for old, news in report.split_profiles
                    if old in kept
                ],
                now=now,
            )

        await session.execute_write(events)
        for chunk in _chunks(sorted(touched - {old for old, _ in report.merged_profiles}), 500):

            async def refresh(tx: AsyncManagedTransaction, ids: list[str] = chunk) -> None:
                await refresh_profiles(tx, ids, config)

            await session.execute_write(refresh)
    report.applied = True
    return report


def _sources(rows: list[Any], report: ReResolution) -> set[str]:
    keys = {r["key"] for r in rows}
    return {frm for key, frm, _ in report.moved if key in keys and frm is not None}
