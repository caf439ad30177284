"""The write path: one managed transaction per batch, identities resolved inside it.

`write_batch_tx` does, in one transaction:
1. normalize identifiers in Python (graph/normalize.py), before taking any lock;
2. write owners, accounts and deals (graph/entity_writes.py);
3. lock: MERGE the batch's Customer nodes and take their write locks in sorted key order, then
   those of the pending identifiers (ones a batch record does not hold yet with a decision), so
   two writers deciding about one identifier serialize (the second reads what the first
   committed);
4. in the same statement, find the profiles resolution needs (those of records with a pending
   identifier, and those holding the pending identifiers), lock them in sorted id order, then
   read the neighbourhood (the batch's records, the profiles holding their pending identifiers,
   the locked profiles); if a concurrent merge moved records between the finding and the
   locking, lock what is missing and read again (one statement) until the set of profiles no
   longer changes. A record holding all its batch identifiers (the usual track or page event of
   a known visitor) is the fast path: no identifier or profile is locked or looked up for it,
   nothing is resolved, only its own times and traits are written;
5. decide in Python (graph/resolution.py `resolve`) and write the decisions in one statement of
   UNWIND parts: record traits, identifier edges with `matched`, new profiles (with their unified
   fields computed from the batch, no read needed), merges (moving RESOLVES_TO and MERGED_INTO
   edges to the survivor, with a MergeEvent), record assignments;
6. write memberships, deal contacts, interactions and stage changes, then refresh the unified
   fields of the existing profiles a write may change (graph/profile_refresh.py): those whose
   records changed traits or gained a matched email or phone, those that records joined with
   traits or such contacts, and the survivors of merges. A new session id of a known user, or an
   anonymous visitor's record joining its user's profile, leaves its profile unread.

Why this shape: the decision is a pure function, so it is tested against an oracle without
Neo4j and the Cypher stays plain; locks are taken by setting a property to its own value (a
write lock, no change), so a replay leaves no trace; the lock-read-reread loop is what makes
concurrent writers over overlapping identities end where one writer would. Deadlocks between
writers surface as transient errors and the driver reruns the whole function; every step is
idempotent, and a replayed batch finds nothing to decide and writes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neo4j import AsyncDriver, AsyncManagedTransaction
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

from customer_graph.graph import entity_writes
from customer_graph.graph.errors import GraphUnavailableError, GraphWriteError
from customer_graph.graph.normalize import Identifier, normalize_identifiers
from customer_graph.graph.params import run
from customer_graph.graph.plans import KEEP_PLAN
from customer_graph.graph.profile_refresh import (
    CONTACT_TYPES,
    dumps,
    iso,
    loads_map,
    loads_times,
    parse_time,
    profile_fields,
    refresh_profiles,
)
from customer_graph.graph.records import CustomerIn, MergeOut, WriteBatch, WriteResult, customer_key
from customer_graph.graph.resolution import (
    ProfileState,
    RecordState,
    Resolution,
    ResolutionConfig,
    resolve,
)
from customer_graph.graph.survivorship import merge_record_traits

log = logging.getLogger(__name__)

MAX_LOCK_ROUNDS = 50

# Upsert the batch's records and take their write locks, in key order. Setting a property to its
# own value takes a node's write lock and changes nothing (so a replay leaves no trace). A new
# record gets the batch's traits at once; existing ones are merged after the read. It opens the
# first statement of a batch (LOCK_AND_READ_NEIGHBOURHOOD): one round trip for locks and read.
# The locked nodes, in key order, are what that statement reads next: one index seek per record.
LOCK_RECORDS = """
CALL () {
  UNWIND $customers AS row
  MERGE (c:Customer {key: row.key})
    ON CREATE SET c.source = row.source, c.sourceId = row.sourceId, c.traits = row.traits,
                  c.traitTimes = row.traitTimes, c.createdAt = $now, c.updatedAt = $now,
                  c.seenAt = datetime(row.seenAt)
  SET c.source = c.source
  RETURN collect(c) AS lockedRecords
}
"""

# The batch's records as they are: their profile, the batch identifiers they already hold (edges)
# and, when needed, their traits; read once, under the records' locks (nobody else moves a locked
# record or changes its edges). Times come back as ISO strings and traits only when needed:
# decoding driver DateTimes and big strings costs more than reading. Also the pending identifiers
# of each record (in the batch, not held with a decision) and the profiles of records having some.
# `%(records)s` is where the records come from: sought by key, or the nodes LOCK_RECORDS locked
# (`$records` is then in the same key order).
_READ_RECORDS = """
CALL (%(records_scope)s) {
  %(records)s
  OPTIONAL MATCH (c)-[:RESOLVES_TO]->(p:Profile)
  WITH c, p, row, row.withTraits OR p IS NULL AS withTraits,
       [(c)-[h:HAS_IDENTIFIER]->(i) WHERE i.key IN row.identifiers |
        {key: i.key, matched: h.matched, element: elementId(h),
         firstSeen: toString(h.firstSeen), lastSeen: toString(h.lastSeen)}] AS edges
  WITH c, p, row, withTraits, edges, [e IN edges WHERE e.matched IS NOT NULL | e.key] AS held
  WITH c, p, withTraits, edges, [k IN row.identifiers WHERE NOT k IN held] AS pending
  RETURN collect({
    key: c.key, element: elementId(c), profileId: p.id, seenAt: toString(c.seenAt),
    traits: CASE WHEN withTraits THEN c.traits END,
    traitTimes: CASE WHEN withTraits THEN c.traitTimes END,
    edges: edges
  }) AS records,
  collect(pending) AS pendingLists,
  collect(CASE WHEN pending <> [] THEN p.id END) AS recordProfiles
}
"""
READ_RECORDS = _READ_RECORDS % {
    "records_scope": "",
    "records": "UNWIND $records AS row\n  MATCH (c:Customer {key: row.key})",
}

# Upsert the pending identifiers and take their write locks, in key order, so two writers
# deciding about one identifier serialize (the second reads what the first committed). An
# identifier a record already holds needs no lock: nothing is decided about it, its edge only
# widens its times, under the record's lock. Returns the blocked keys and the
# pending identifiers (their nodes, for the rest of the statement, and their element ids).
LOCK_PENDING_IDENTIFIERS = """
CALL (pendingLists) {
  UNWIND pendingLists AS pending
  UNWIND pending AS k
  WITH DISTINCT k ORDER BY k
  MERGE (i:Identifier {key: k})
    ON CREATE SET i.type = $identifierInfo[k].type, i.value = $identifierInfo[k].value,
                  i.blocked = false
  SET i.type = i.type
  RETURN collect(CASE WHEN i.blocked THEN k END) AS blocked,
         collect([k, elementId(i)]) AS pendingElements, collect(i) AS pendingNodes
}
"""

# The profiles a batch's resolution needs, locked in id order before they are read: those of the
# records with a pending identifier (a record without a profile has none to lock), and the live
# profiles holding those pending identifiers. A record holding all of its batch identifiers (a
# track event of a known visitor) needs none, and its held identifiers are not looked up at all.
LOCK_PENDING_PROFILES = """
CALL (pendingNodes) {
  UNWIND pendingNodes AS i
  MATCH (i)<-[h:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(q:Profile)
  WHERE h.matched = true AND NOT i.blocked
  RETURN collect(DISTINCT q.id) AS holders
}
CALL (recordProfiles, holders) {
  UNWIND recordProfiles + holders AS pid
  WITH DISTINCT pid ORDER BY pid
  MATCH (x:Profile {id: pid})
  SET x.createdAt = x.createdAt
  RETURN collect(pid) AS locked, collect(x) AS lockedProfiles
}
"""

# The rest of the neighbourhood, read under the profiles' locks: the live profiles holding the
# batch's (pending) identifiers through matched edges, and the needed profiles' age and matched
# identifier values (for the limits). Shared by the two statements below, which name the
# identifiers and profiles to read.
_PROFILES_AROUND = """
CALL (%(identifier_scope)s) {
  %(identifiers)s
  MATCH (i)<-[h:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(p:Profile)
  WHERE h.matched = true AND NOT i.blocked
  WITH i, collect(DISTINCT p.id) AS profileIds
  RETURN collect({key: i.key, profileIds: profileIds}) AS identifiers
}
CALL (%(profile_scope)s) {
  %(profiles)s
  RETURN collect({
    id: p.id, createdAt: toString(p.createdAt), merged: EXISTS { (p)-[:MERGED_INTO]->() },
    values: CASE WHEN $withValues
      THEN [(p)<-[:RESOLVES_TO]-()-[h:HAS_IDENTIFIER]->(i)
            WHERE h.matched = true AND NOT i.blocked | [i.type, i.value]]
      ELSE [] END
  }) AS profiles
}
"""

# A later read of the neighbourhood locks first (`$lock`: profiles the previous read found, in id
# order), in the same round trip.
READ_NEIGHBOURHOOD = (
    KEEP_PLAN
    + """
CALL () {
  UNWIND $lock AS id
  MATCH (p:Profile {id: id})
  SET p.createdAt = p.createdAt
}"""
    + READ_RECORDS
    + _PROFILES_AROUND
    % {
        "identifier_scope": "",
        "identifiers": "UNWIND $identifiers AS k\n  MATCH (i:Identifier {key: k})",
        "profile_scope": "",
        "profiles": "UNWIND $profiles AS pid\n  MATCH (p:Profile {id: pid})",
    }
    + "RETURN records, identifiers, profiles\n"
)

# The first statement of a batch: records upserted and locked and read, pending identifiers
# upserted and locked, then the profiles resolution needs locked and read, in one round trip.
LOCK_AND_READ_NEIGHBOURHOOD = (
    KEEP_PLAN
    + LOCK_RECORDS
    + _READ_RECORDS
    % {
        "records_scope": "lockedRecords",
        # A record out of step with its row would be missing from the read, and the batch fail.
        "records": "UNWIND range(0, size(lockedRecords) - 1) AS n\n"
        "  WITH lockedRecords[n] AS c, $records[n] AS row WHERE c.key = row.key",
    }
    + LOCK_PENDING_IDENTIFIERS
    + LOCK_PENDING_PROFILES
    + _PROFILES_AROUND
    % {
        "identifier_scope": "pendingNodes",
        "identifiers": "UNWIND pendingNodes AS i",
        "profile_scope": "lockedProfiles",
        "profiles": "UNWIND lockedProfiles AS p",
    }
    + "RETURN blocked, pendingElements, locked, records, identifiers, profiles\n"
)

# The decisions find what the first statement locked by element id (`elementId(c)`), not by
# key: a seek by id reads no index and takes no index entry lock. An element id is stable
# within a transaction, and these nodes and edges are locked or were created by it.
UPDATE_CUSTOMERS = """
UNWIND $customerRows AS row
MATCH (c:Customer) WHERE elementId(c) = row.node
SET c.traits = coalesce(row.traits, c.traits),
    c.traitTimes = coalesce(row.traitTimes, c.traitTimes),
    c.seenAt = datetime(row.seenAt), c.updatedAt = $now
"""

# New edges get their `matched` decision. CREATE, not MERGE: the record's lock is held since the
# read that found the edge missing, and nobody adds an edge to a record without that lock.
CREATE_EDGES = """
UNWIND $newEdges AS row
MATCH (c:Customer) WHERE elementId(c) = row.customerNode
MATCH (i:Identifier) WHERE elementId(i) = row.identifierNode
CREATE (c)-[:HAS_IDENTIFIER {firstSeen: datetime(row.firstSeen),
                             lastSeen: datetime(row.lastSeen), matched: row.matched}]->(i)
"""

# Existing edges only widen their first/last seen (computed against what the read returned) and
# keep their decision, if they have one.
WIDEN_EDGES = """
UNWIND $widenedEdges AS row
MATCH ()-[h:HAS_IDENTIFIER]->() WHERE elementId(h) = row.edge
SET h.firstSeen = datetime(row.firstSeen), h.lastSeen = datetime(row.lastSeen),
    h.matched = coalesce(h.matched, row.matched)
"""

# A new profile holds only records of this batch, so its fields are computed without a read.
CREATE_PROFILES = """
UNWIND $newProfiles AS row
CREATE (p:Profile {id: row.id, createdAt: $now, updatedAt: $now})
SET p += row.fields
WITH p, row
UNWIND row.records AS node
MATCH (c:Customer) WHERE elementId(c) = node
CREATE (c)-[:RESOLVES_TO]->(p)
"""

# Merge `merged` into `survivor`: records and earlier merged-away profiles move to the survivor
# (so every id resolves in one hop), the merged-away node stays with MERGED_INTO, and its search
# fields are cleared so search only finds live profiles.
MERGE_PROFILES = """
UNWIND $merges AS m
MATCH (s:Profile {id: m.survivorId})
CREATE (e:MergeEvent {id: m.id, at: $now, survivorId: m.survivorId, mergedIds: m.mergedIds,
                      identifierKey: m.identifierKey, recordKey: m.recordKey,
                      messageId: m.messageId})
CREATE (e)-[:MERGED]->(s)
WITH s, e, m
UNWIND m.mergedIds AS lid
MATCH (l:Profile {id: lid})
CREATE (e)-[:MERGED]->(l)
MERGE (l)-[:MERGED_INTO]->(s)
SET l.mergedAt = $now, l.updatedAt = $now, l.displayName = null, l.email = null,
    l.phone = null, l.company = null
WITH s, l
CALL (s, l) {
  MATCH (c:Customer)-[r:RESOLVES_TO]->(l)
  DELETE r
  MERGE (c)-[:RESOLVES_TO]->(s)
}
CALL (s, l) {
  MATCH (x:Profile)-[r:MERGED_INTO]->(l)
  DELETE r
  MERGE (x)-[:MERGED_INTO]->(s)
}
"""

# Records of merged-away profiles moved with MERGE_PROFILES, records of new profiles with
# CREATE_PROFILES; new records joining existing profiles are assigned here.
ASSIGN_RECORDS = """
UNWIND $assignments AS row
MATCH (c:Customer) WHERE elementId(c) = row.node
MATCH (p:Profile {id: row.profileId})
OPTIONAL MATCH (c)-[old:RESOLVES_TO]->(q:Profile)
WHERE q <> p
DELETE old
MERGE (c)-[:RESOLVES_TO]->(p)
"""

# Every decision of a batch in one round trip, in this order; each part unwinds its own list
# (empty: nothing to do).
WRITE_DECISIONS = KEEP_PLAN + "".join(
    f"CALL () {{{part}}}\n"
    for part in (
        UPDATE_CUSTOMERS,
        CREATE_EDGES,
        WIDEN_EDGES,
        CREATE_PROFILES,
        MERGE_PROFILES,
        ASSIGN_RECORDS,
    )
)


@dataclass(slots=True)
class _Record:
    """A batch record after normalization; several writes of one key coalesce into one."""

    key: str
    source: str
    source_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    trait_times: dict[str, datetime] = field(default_factory=dict)
    identifiers: dict[str, Identifier] = field(default_factory=dict)
    # identifier key -> (first, last) event time of the writes that carried it, when timed
    identifier_times: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    seen_at: datetime | None = None
    message_id: str | None = None
    # The batch's traits as stored (JSON), set when the record is upserted.
    traits_json: str = "{}"
    trait_times_json: str = "{}"


def _prepare(batch: WriteBatch, config: ResolutionConfig, now: datetime) -> list[_Record]:
    records: dict[str, _Record] = {}

    def record(source: str, source_id: str) -> _Record:
        key = customer_key(source, source_id)
        rec = records.get(key)
        if rec is None:
            rec = records[key] = _Record(key=key, source=source, source_id=source_id)
        return rec

    for c in batch.customers:
        rec = record(c.source, c.source_id)
        at = c.seen_at or now
        rec.traits, rec.trait_times = merge_record_traits(rec.traits, rec.trait_times, c.traits, at)
        for ident in normalize_identifiers(
            c.identifiers,
            default_region=config.default_region,
            blocked_patterns=config.blocked_patterns,
        ):
            rec.identifiers.setdefault(ident.key, ident)
            if c.seen_at is not None:
                first, last = rec.identifier_times.get(ident.key, (c.seen_at, c.seen_at))
                rec.identifier_times[ident.key] = (min(first, c.seen_at), max(last, c.seen_at))
        if c.seen_at is not None:
            rec.seen_at = max(rec.seen_at or c.seen_at, c.seen_at)
        rec.message_id = c.message_id or rec.message_id
    # Records that activity refers to exist even if the batch does not describe them.
    for source, source_id in entity_writes.referenced_customers(batch):
        record(source, source_id)
    for rec in records.values():
        rec.traits_json = dumps(rec.traits)
        rec.trait_times_json = dumps({k: v.isoformat() for k, v in rec.trait_times.items()})
    return list(records.values())


@dataclass(slots=True)
class _Neighbourhood:
    records: dict[str, Mapping[str, Any]]
    identifier_profiles: dict[str, list[str]]
    profiles: dict[str, ProfileState]
    identifier_nodes: dict[str, str]  # element ids of the identifiers the batch locked


async def _lock_and_read(
    tx: AsyncManagedTransaction,
    recs: list[_Record],
    identifiers: list[Identifier],
    config: ResolutionConfig,
    now: datetime,
) -> tuple[set[str], _Neighbourhood]:
    """Upsert and lock the batch's records and identifiers, then read the neighbourhood with its
    profiles locked (see the module docstring); returns the usable (not blocked) identifier keys
    too."""
    by_key = sorted(recs, key=lambda r: r.key)  # the order of LOCK_RECORDS' nodes
    record_rows = [
        {"key": r.key, "identifiers": list(r.identifiers), "withTraits": bool(r.traits)}
        for r in by_key
    ]
    result = await run(
        tx,
        LOCK_AND_READ_NEIGHBOURHOOD,
        customers=[
            {
                "key": r.key,
                "source": r.source,
                "sourceId": r.source_id,
                "seenAt": (r.seen_at or now).isoformat(),
                "traits": r.traits_json,
                "traitTimes": r.trait_times_json,
            }
            for r in by_key
        ],
        identifierInfo={i.key: {"type": i.type, "value": i.value} for i in identifiers},
        now=now,
        records=record_rows,
        withValues=config.limits_enabled,
    )
    row = await result.single(strict=True)
    usable = {i.key for i in identifiers} - set(row["blocked"])
    identifier_nodes = dict(row["pendingElements"])
    identifier_keys = sorted(usable)
    # Read under the locks of the profiles found just before: unless a concurrent merge moved
    # records meanwhile, that is all there is to lock, and the loop ends at once.
    locked: set[str] = set(row["locked"])
    for _ in range(MAX_LOCK_ROUNDS):
        records = {r["key"]: r for r in row["records"]}
        ident_profiles = {i["key"]: list(i["profileIds"]) for i in row["identifiers"]}
        needed: set[str] = set()
        for rec in recs:
            current = records.get(rec.key)
            if current is None:
                continue
            held = {e["key"] for e in current["edges"] if e["matched"] is not None}
            pending = [k for k in rec.identifiers if k in usable and k not in held]
            if pending or current["profileId"] is None:
                if current["profileId"] is not None:
                    needed.add(current["profileId"])
                for k in pending:
                    needed.update(ident_profiles.get(k, ()))
        profiles = {
            p["id"]: p for p in row["profiles"] if not p["merged"] and p["createdAt"] is not None
        }
        if needed <= locked and needed <= set(profiles):
            break
        new = sorted(needed - locked)
        result = await run(
            tx,
            READ_NEIGHBOURHOOD,
            lock=new,
            records=record_rows,
            identifiers=identifier_keys,
            profiles=sorted(needed),
            withValues=config.limits_enabled,
        )
        row = await result.single(strict=True)
        locked.update(new)
    else:
        raise GraphWriteError("the neighbourhood of the batch kept changing while locking it")
    states: dict[str, ProfileState] = {}
    for pid in needed:
        p = profiles[pid]
        values: dict[str, set[str]] = {}
        for type_, value in p["values"]:
            values.setdefault(type_, set()).add(value)
        created = parse_time(p["createdAt"])
        assert created is not None
        states[pid] = ProfileState(
            id=pid,
            created_at=created,
            values={t: frozenset(vs) for t, vs in values.items()},
        )
    return usable, _Neighbourhood(records, ident_profiles, states, identifier_nodes)


@dataclass(slots=True)
class _RecordPlan:
    """What to write for one record, before resolution decides the new edges."""

    profile_id: str | None
    node: str  # the record's element id
    pending: tuple[Identifier, ...] = ()
    edges: list[dict[str, Any]] = field(default_factory=list)  # new edges
    widened: list[dict[str, Any]] = field(default_factory=list)  # existing edges, new times
    customer: dict[str, Any] | None = None
    dirty: bool = False  # its identity or traits changed (its profile is touched)
    traits_changed: bool = False
    traits: str = "{}"  # the record's traits after the write (JSON), when read or written
    trait_times: str = "{}"


def _plan_record(
    rec: _Record,
    current: Mapping[str, Any],
    usable: set[str],
    identifier_nodes: Mapping[str, str],
    now: datetime,
) -> _RecordPlan:
    """Compare a batch record with what is stored; plan only real changes, so replays (even of
    writes without a time, which take `now`) write nothing."""
    plan = _RecordPlan(profile_id=current["profileId"], node=current["element"])
    edges = {e["key"]: e for e in current["edges"]}
    pending: list[Identifier] = []
    for k, ident in rec.identifiers.items():
        edge = edges.get(k)
        first, last = rec.identifier_times.get(k, (now, now))
        if edge is None:
            if k in usable:
                pending.append(ident)
            plan.edges.append(
                {
                    "customer": rec.key,
                    "identifier": k,
                    "customerNode": plan.node,
                    "identifierNode": identifier_nodes[k],
                    "firstSeen": first.isoformat(),
                    "lastSeen": last.isoformat(),
                }
            )
            plan.dirty = True
            continue
        old_first, old_last = parse_time(edge["firstSeen"]), parse_time(edge["lastSeen"])
        undecided = edge["matched"] is None  # an edge some other writer left without a decision
        if undecided and k in usable:
            pending.append(ident)
            plan.dirty = True
        timed = k in rec.identifier_times
        if undecided or (
            timed
            and ((old_first is None or first < old_first) or (old_last is None or last > old_last))
        ):
            new_first = min(first, old_first) if timed and old_first else old_first or first
            new_last = max(last, old_last) if timed and old_last else old_last or last
            plan.widened.append(
                {
                    "customer": rec.key,
                    "identifier": k,
                    "edge": edge["element"],
                    "firstSeen": new_first.isoformat(),
                    "lastSeen": new_last.isoformat(),
                    "undecided": undecided,
                }
            )
    plan.pending = tuple(pending)

    traits_changed = False
    plan.traits = current["traits"] or "{}"
    plan.trait_times = current["traitTimes"] or "{}"
    # A record holding exactly the batch's traits (one this batch created, most often) keeps
    # them: no need to decode and compare.
    same = plan.traits == rec.traits_json and plan.trait_times == rec.trait_times_json
    traits, times = ({}, {}) if same else (loads_map(plan.traits), loads_times(plan.trait_times))
    for name, value in {} if same else rec.traits.items():
        at = rec.trait_times[name]
        if traits.get(name) == value or (name in times and times[name] > at):
            continue  # the same value again keeps its time; an older write loses
        traits[name], times[name] = value, at
        traits_changed = True
    seen = parse_time(current["seenAt"])
    new_seen = seen
    if rec.seen_at is not None:
        new_seen = max(seen, rec.seen_at) if seen else rec.seen_at
    elif traits_changed or plan.dirty:
        new_seen = now
    if traits_changed:
        plan.traits = dumps(traits)
        plan.trait_times = dumps({k: v.isoformat() for k, v in times.items()})
    if traits_changed or new_seen != seen:
        plan.customer = {
            "node": plan.node,
            "traits": plan.traits if traits_changed else None,
            "traitTimes": plan.trait_times if traits_changed else None,
            "seenAt": iso(new_seen),
        }
    plan.dirty = plan.dirty or traits_changed
    plan.traits_changed = traits_changed
    return plan


def _new_profile_id() -> str:
    return uuid.uuid4().hex


async def write_batch_tx(
    tx: AsyncManagedTransaction, batch: WriteBatch, config: ResolutionConfig
) -> WriteResult:
    """Write `batch` inside the caller's managed transaction (idempotent; may be rerun)."""
    now = datetime.now(UTC)
    result = WriteResult()
    recs = _prepare(batch, config, now)  # pure Python, before any lock is taken
    await entity_writes.write_before_customers(tx, batch, now)
    changed_profiles: set[str] = set()
    record_nodes: dict[str, str] = {}
    if recs:
        changed_profiles, record_nodes = await _write_customers(tx, recs, config, now, result)
    await entity_writes.write_after_customers(tx, batch, now, record_nodes)
    activity_keys = {customer_key(s, i) for s, i in entity_writes.referenced_customers(batch)}
    result.touched_profile_ids.update(
        pid for key, pid in result.record_profiles.items() if key in activity_keys
    )
    refreshed = await refresh_profiles(tx, changed_profiles, config)
    result.touched_profile_ids.update(changed_profiles | refreshed)
    return result


async def _write_customers(
    tx: AsyncManagedTransaction,
    recs: list[_Record],
    config: ResolutionConfig,
    now: datetime,
    result: WriteResult,
) -> tuple[set[str], dict[str, str]]:
    """Upsert and resolve the batch's records; return the profiles whose traits may change, and
    the records' element ids by key."""
    distinct = {i.key: i for r in recs for i in r.identifiers.values()}
    identifiers = [distinct[k] for k in sorted(distinct)]  # locked in key order
    usable, hood = await _lock_and_read(tx, recs, identifiers, config, now)

    states: list[RecordState] = []
    edge_rows: list[dict[str, Any]] = []
    widened_rows: list[dict[str, Any]] = []
    customer_rows: list[dict[str, Any]] = []
    dirty_records: set[str] = set()
    plans: dict[str, _RecordPlan] = {}
    for rec in recs:
        plan = plans[rec.key] = _plan_record(
            rec, hood.records[rec.key], usable, hood.identifier_nodes, now
        )
        if plan.pending or plan.profile_id is None:
            states.append(RecordState(rec.key, plan.profile_id, plan.pending, rec.message_id))
        edge_rows.extend(plan.edges)
        widened_rows.extend(plan.widened)
        if plan.customer is not None:
            customer_rows.append(plan.customer)
        if plan.dirty:
            dirty_records.add(rec.key)

    decision = resolve(
        states, hood.identifier_profiles, hood.profiles, config, new_id=_new_profile_id
    )
    for row in [*edge_rows, *(w for w in widened_rows if w.pop("undecided"))]:
        # Edges to blocked identifiers never match.
        row["matched"] = decision.matched.get((row["customer"], row["identifier"]), False)
    for row in [*edge_rows, *widened_rows]:
        del row["customer"], row["identifier"]  # the statement finds them by element id
    await _apply(
        tx,
        decision,
        hood,
        now,
        customer_rows=customer_rows,
        new_edges=edge_rows,
        widened_edges=widened_rows,
        new_profiles=_new_profile_rows(recs, plans, decision, config, now),
    )

    result.customers_written = len(recs)
    result.profiles_created = len(decision.new_profile_ids)
    result.conflicts = decision.conflicts
    result.merges = [
        MergeOut(m.survivor_id, m.merged_ids, m.identifier_key, m.record_key)
        for m in decision.merges
    ]
    for rec in recs:
        pid = decision.record_profiles.get(rec.key) or hood.records[rec.key]["profileId"]
        result.record_profiles[rec.key] = pid
    joined = {
        key
        for key, pid in decision.record_profiles.items()
        if hood.records[key]["profileId"] != pid
    }
    changed = {result.record_profiles[k] for k in dirty_records | joined}
    changed.update(m.survivor_id for m in decision.merges)
    result.touched_profile_ids.update(changed)
    result.touched_profile_ids.update(i for m in decision.merges for i in m.merged_ids)
    refresh = {
        result.record_profiles[rec.key] for rec in recs if _shapes(rec, plans, joined, decision)
    }
    refresh.update(m.survivor_id for m in decision.merges)
    nodes = {key: record["element"] for key, record in hood.records.items()}
    return refresh - set(decision.new_profile_ids), nodes


def _shapes(
    rec: _Record, plans: Mapping[str, _RecordPlan], joined: set[str], decision: Resolution
) -> bool:
    """Whether this write of `rec` may change its profile's unified fields (traits, name, email,
    phone, company), which are computed from its records' traits and their matched emails and
    phones. A record that joins a profile with neither (an anonymous visitor's first event, a
    new session of a known user) or gains only other identifiers changes none of them, and its
    profile is not read again. A record joins only as this batch creates it (every record has a
    profile from its first write on), so all its edges are the batch's."""
    plan = plans[rec.key]
    if plan.traits_changed:
        return True
    contacts = [k for k, i in rec.identifiers.items() if i.type in CONTACT_TYPES]
    if rec.key in joined:
        return plan.traits != "{}" or bool(contacts)
    return any(decision.matched.get((rec.key, k), False) for k in contacts)


def _new_profile_rows(
    recs: list[_Record],
    plans: Mapping[str, _RecordPlan],
    decision: Resolution,
    config: ResolutionConfig,
    now: datetime,
) -> list[dict[str, Any]]:
    """New profiles with their fields, computed from the batch's records alone."""
    new = set(decision.new_profile_ids)
    members: dict[str, list[_Record]] = {pid: [] for pid in decision.new_profile_ids}
    for rec in recs:
        pid = decision.record_profiles.get(rec.key)
        if pid in new:
            members[pid].append(rec)
    rows = []
    for pid, group in members.items():
        records = [
            {
                "key": r.key,
                "source": r.source,
                "traits": plans[r.key].traits,
                "traitTimes": plans[r.key].trait_times,
                "updatedAt": now,
            }
            for r in group
        ]
        contacts = [
            {"type": i.type, "value": i.value, "lastSeen": r.identifier_times.get(k, (now, now))[1]}
            for r in group
            for k, i in r.identifiers.items()
            if i.type in CONTACT_TYPES and decision.matched.get((r.key, k))
        ]
        rows.append(
            {
                "id": pid,
                "records": [plans[r.key].node for r in group],
                "fields": profile_fields(records, contacts, config),
            }
        )
    return rows


async def _apply(
    tx: AsyncManagedTransaction,
    decision: Resolution,
    hood: _Neighbourhood,
    now: datetime,
    *,
    customer_rows: list[dict[str, Any]],
    new_edges: list[dict[str, Any]],
    widened_edges: list[dict[str, Any]],
    new_profiles: list[dict[str, Any]],
) -> None:
    """Write the batch's decisions (WRITE_DECISIONS), if there is any."""
    merges = [
        {
            "id": uuid.uuid4().hex,
            "survivorId": m.survivor_id,
            "mergedIds": list(m.merged_ids),
            "identifierKey": m.identifier_key,
            "recordKey": m.record_key,
            "messageId": m.message_id,
        }
        for m in decision.merges
    ]
    new = set(decision.new_profile_ids)
    assignments = [
        {"node": hood.records[key]["element"], "profileId": pid}
        for key, pid in decision.record_profiles.items()
        if hood.records[key]["profileId"] is None and pid not in new
    ]
    parts = (customer_rows, new_edges, widened_edges, new_profiles, merges, assignments)
    if not any(parts):
        return  # a replay: nothing changed
    await run(
        tx,
        WRITE_DECISIONS,
        customerRows=customer_rows,
        newEdges=new_edges,
        widenedEdges=widened_edges,
        newProfiles=new_profiles,
        merges=merges,
        assignments=assignments,
        now=now,
    )


async def write_batch(
    driver: AsyncDriver, database: str, batch: WriteBatch, config: ResolutionConfig
) -> WriteResult:
    """Write `batch` in one managed transaction; driver errors become GraphErrors."""

    async def work(tx: AsyncManagedTransaction) -> WriteResult:
        return await write_batch_tx(tx, batch, config)

    try:
        async with driver.session(database=database) as session:
            return await session.execute_write(work)
    except (ServiceUnavailable, SessionExpired, OSError) as e:
        raise GraphUnavailableError(str(e)) from e
    except Neo4jError as e:
        log.warning("write batch failed: %s", e.code)
        raise GraphWriteError(e.code or "neo4j error") from e


async def upsert_customer(
    driver: AsyncDriver, database: str, customer: CustomerIn, config: ResolutionConfig
) -> str:
    """Upsert one record (identifiers accumulate, traits merge); return its profile id."""
    result = await write_batch(driver, database, WriteBatch(customers=(customer,)), config)
    return result.record_profiles[customer.key]


def profiles_of(result: WriteResult, keys: Iterable[str]) -> list[str]:
    """The profile ids of the given record keys after a write, in order, without repeats."""
    return list(dict.fromkeys(result.record_profiles[k] for k in keys))
