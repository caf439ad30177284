"""Right to erasure and access: delete everything held on one person, export it, suppress it.

`delete_profile` removes, in one managed transaction, a profile (with the profiles merged into
it), its source records, the identifiers no other person holds, their interactions, memberships
and deal-contact links, their merge and split events and the dead letters that carry their
identifiers; it keeps a PII-free audit entry with the counts, and suppresses the identifiers and
records it deleted: `(:Suppression {hash})` holds an HMAC-SHA256, keyed by the server's
`suppression_secret`, of each normalized identifier and record key, so nobody can read the values
back from the graph, yet a replay or a new event carrying one of them is recognised and refused
(`find_suppressed`, called by every path before it writes).

`export_profile` returns everything held on one person as a JSON-ready dict.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final, Literal

from neo4j import AsyncDriver, AsyncManagedTransaction, RoutingControl

from customer_graph.graph.audit import new_audit_id, write_audit_entry_tx
from customer_graph.graph.driver import translate_unavailable
from customer_graph.graph.errors import GraphError
from customer_graph.graph.normalize import normalize_identifiers
from customer_graph.graph.profile_refresh import loads_map
from customer_graph.graph.records import WriteBatch
from customer_graph.graph.resolution import resolution_config
from customer_graph.settings import Settings

log = logging.getLogger(__name__)

# Used only when CUSTOMER_GRAPH_SUPPRESSION_SECRET is unset (development); hashes made with it
# are as guessable as the values, so production must set a secret of its own and keep it.
DEV_SUPPRESSION_SECRET: Final = "customer-graph-development-suppression-secret"  # noqa: S105
MIN_DEAD_LETTER_NEEDLE: Final = 5  # shorter identifier values would match unrelated payloads

SuppressionKind = Literal["identifier", "record"]


# --- suppression -----------------------------------------------------------------------------


def _secret(settings: Settings) -> bytes:
    if settings.suppression_secret:
        return settings.suppression_secret.encode()
    _warn_development_secret()
    return DEV_SUPPRESSION_SECRET.encode()


@lru_cache(maxsize=1)
def _warn_development_secret() -> None:
    log.warning(
        "CUSTOMER_GRAPH_SUPPRESSION_SECRET is not set: erased identifiers are hashed with the "
        "development secret; set a secret of your own in production (and keep it)"
    )


def identifier_hash(settings: Settings, type_: str, value: str) -> str:
    """The keyed hash of a normalized identifier."""
    return _identifier_digest(_secret(settings), type_, value)


def record_hash(settings: Settings, source: str, source_id: str) -> str:
    """The keyed hash of a source record's key."""
    return _record_digest(_secret(settings), source, source_id)


def _identifier_digest(secret: bytes, type_: str, value: str) -> str:
    return _keyed_hash(secret, f"identifier\x1f{type_}\x1f{value}")


def _record_digest(secret: bytes, source: str, source_id: str) -> str:
    return _keyed_hash(secret, f"record\x1f{source}\x1f{source_id}")


# Every message of a tracking batch is screened; its records and identifiers recur.
@lru_cache(maxsize=65_536)
def _keyed_hash(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def identifier_target(settings: Settings, type_: str, value: str) -> str:
    """How an audit entry names an identifier: its type and keyed hash, never its value."""
    return f"identifier:{type_}:{identifier_hash(settings, type_, value)[:32]}"


def record_target(settings: Settings, record_key: str) -> str:
    """How an audit entry names a record (`source:sourceId`; ids can be emails): source + hash."""
    source, _, source_id = record_key.partition(":")
    return f"record:{source}:{record_hash(settings, source, source_id)[:32]}"


@dataclass(frozen=True, slots=True)
class SuppressedHit:
    """One part of a batch that names an erased person; says where, never the value."""

    part: str  # customers, interactions, memberships, deals
    index: int  # position in that part of the batch
    kind: SuppressionKind
    identifier_type: str | None = None  # for kind "identifier"

    def describe(self) -> str:
        what = f"identifier of type {self.identifier_type}" if self.identifier_type else "record"
        return f"{self.part}[{self.index}]: {what} belongs to an erased profile"


class SuppressedError(GraphError):
    """A write names an erased person (a suppressed identifier or record); nothing was written."""

    def __init__(self, hits: Sequence[SuppressedHit]) -> None:
        super().__init__("; ".join(h.describe() for h in hits))
        self.hits = tuple(hits)


_Part = tuple[str, str, int, SuppressionKind, str | None]  # digest, part, index, kind, type


def _batch_parts(settings: Settings, batch: WriteBatch) -> Iterator[_Part]:
    """Each keyed hash the batch's parts carry: (digest, part, index, kind, identifier type)."""
    config = resolution_config(settings)
    secret = _secret(settings)
    for i, c in enumerate(batch.customers):
        yield _record_digest(secret, c.source, c.source_id), "customers", i, "record", None
        for ident in normalize_identifiers(
            c.identifiers,
            default_region=config.default_region,
            blocked_patterns=config.blocked_patterns,
        ):
            digest = _identifier_digest(secret, ident.type, ident.value)
            yield digest, "customers", i, "identifier", ident.type
    for i, n in enumerate(batch.interactions):
        digest = _record_digest(secret, n.source, n.customer_source_id)
        yield digest, "interactions", i, "record", None
    for i, m in enumerate(batch.memberships):
        yield _record_digest(secret, m.source, m.source_id), "memberships", i, "record", None
    for i, d in enumerate(batch.deals):
        for contact in d.contacts:
            digest = _record_digest(secret, contact.source, contact.source_id)
            yield digest, "deals", i, "record", None


def _batch_hashes(settings: Settings, batch: WriteBatch) -> dict[str, list[SuppressedHit]]:
    wanted: dict[str, list[SuppressedHit]] = {}
    for digest, part, index, kind, type_ in _batch_parts(settings, batch):
        wanted.setdefault(digest, []).append(SuppressedHit(part, index, kind, type_))
    return wanted


def suppression_lookups(settings: Settings, batch: WriteBatch) -> dict[str, list[tuple[str, int]]]:
    """The screen of `batch` without I/O: each keyed hash, with the (part, index) pairs it would
    refuse if a Suppression holds it (what graph/messages.py looks up with its claim)."""
    wanted: dict[str, list[tuple[str, int]]] = {}
    for digest, part, index, _, _ in _batch_parts(settings, batch):
        wanted.setdefault(digest, []).append((part, index))
    return wanted


FIND_SUPPRESSIONS = """
UNWIND $hashes AS h
MATCH (s:Suppression {hash: h})
RETURN collect(s.hash) AS found
"""


def _hits(wanted: Mapping[str, list[SuppressedHit]], found: Iterable[str]) -> list[SuppressedHit]:
    hits = {hit for digest in found for hit in wanted.get(digest, ())}
    return sorted(hits, key=lambda h: (h.part, h.index, h.kind, h.identifier_type or ""))


async def find_suppressed(
    driver: AsyncDriver, settings: Settings, batch: WriteBatch
) -> list[SuppressedHit]:
    """The parts of `batch` that name an erased person; empty when it may be written."""
    wanted = _batch_hashes(settings, batch)
    if not wanted:
        return []
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(
            FIND_SUPPRESSIONS,
            hashes=list(wanted),
            database_=settings.neo4j_database,
            routing_=RoutingControl.READ,
        )
    )
    return _hits(wanted, records[0]["found"])


async def find_suppressed_tx(
    tx: AsyncManagedTransaction, settings: Settings, batch: WriteBatch
) -> list[SuppressedHit]:
    """`find_suppressed` inside a caller's transaction (the write path's last check)."""
    wanted = _batch_hashes(settings, batch)
    if not wanted:
        return []
    result = await tx.run(FIND_SUPPRESSIONS, hashes=list(wanted))
    record = await result.single(strict=True)
    return _hits(wanted, record["found"])


async def ensure_not_suppressed(driver: AsyncDriver, settings: Settings, batch: WriteBatch) -> None:
    """Raise SuppressedError if `batch` names an erased person."""
    hits = await find_suppressed(driver, settings, batch)
    if hits:
        raise SuppressedError(hits)


def split_suppressed(
    batch: WriteBatch, hits: Iterable[SuppressedHit]
) -> tuple[WriteBatch, set[tuple[str, int]]]:
    """`batch` without the parts that `hits` name, and the (part, index) pairs removed."""
    removed = {(h.part, h.index) for h in hits}
    kept = {
        part: tuple(x for i, x in enumerate(getattr(batch, part)) if (part, i) not in removed)
        for part in ("customers", "interactions", "memberships", "deals")
    }
    return (
        WriteBatch(
            customers=kept["customers"],
            interactions=kept["interactions"],
            deals=kept["deals"],
            stage_changes=batch.stage_changes,
            accounts=batch.accounts,
            memberships=kept["memberships"],
            owners=batch.owners,
        ),
        removed,
    )


# --- deletion --------------------------------------------------------------------------------

# The live profile an id resolves to (a merged-away id resolves to its survivor), locked: the
# write path locks profiles too, so no write can add a record to it while it is being deleted.
RESOLVE_AND_LOCK_PROFILE = """
MATCH (start:Profile {id: $id})
OPTIONAL MATCH (start)-[:MERGED_INTO*1..50]->(s:Profile)
WHERE NOT (s)-[:MERGED_INTO]->(:Profile)
WITH coalesce(s, start) AS p
SET p.updatedAt = p.updatedAt
RETURN p.id AS id, [(p)<-[:MERGED_INTO*1..50]-(q:Profile) | q.id] AS mergedIds
"""

READ_RECORDS = """
MATCH (:Profile {id: $id})<-[:RESOLVES_TO]-(c:Customer)
RETURN c.key AS key, c.source AS source, c.sourceId AS sourceId
"""

# Identifiers of the records; `shared` when a record outside the person holds it too.
READ_IDENTIFIERS = """
MATCH (c:Customer)-[:HAS_IDENTIFIER]->(i:Identifier)
WHERE c.key IN $keys
WITH DISTINCT i
RETURN i.key AS key, i.type AS type, i.value AS value, coalesce(i.blocked, false) AS blocked,
       EXISTS { (i)<-[:HAS_IDENTIFIER]-(o:Customer) WHERE NOT o.key IN $keys } AS shared
"""

DELETE_INTERACTIONS = """
MATCH (c:Customer)-[:HAD]->(it:Interaction)
WHERE c.key IN $keys
WITH DISTINCT it
WHERE NOT EXISTS { (it)<-[:HAD]-(o:Customer) WHERE NOT o.key IN $keys }
DETACH DELETE it
RETURN count(*) AS n
"""

DELETE_MEMBERSHIPS = """
MATCH (c:Customer)-[m:MEMBER_OF]->(:Account)
WHERE c.key IN $keys
DELETE m
RETURN count(*) AS n
"""

DELETE_DEAL_CONTACTS = """
MATCH (c:Customer)-[r:CONTACT_ON]->(:Deal)
WHERE c.key IN $keys
DELETE r
RETURN count(*) AS n
"""

DELETE_IDENTIFIERS = """
MATCH (i:Identifier)
WHERE i.key IN $keys
DETACH DELETE i
RETURN count(*) AS n
"""

# Merge and split events name the person's identifiers and records.
DELETE_IDENTITY_EVENTS = """
CALL () {
  MATCH (e:MergeEvent)-[:MERGED]->(q:Profile) WHERE q.id IN $ids
  RETURN e
  UNION
  MATCH (e:SplitEvent)-[:SPLIT]->(q:Profile) WHERE q.id IN $ids
  RETURN e
}
WITH DISTINCT e
DETACH DELETE e
RETURN count(*) AS n
"""

DELETE_CUSTOMERS = """
MATCH (c:Customer)
WHERE c.key IN $keys
DETACH DELETE c
RETURN count(*) AS n
"""

DELETE_PROFILES = """
MATCH (q:Profile)
WHERE q.id IN $ids
DETACH DELETE q
RETURN count(*) AS n
"""

# Failed messages keep their payload for replay; those that carry the person's identifiers go.
DELETE_DEAD_LETTERS = """
MATCH (d:DeadLetter)
WHERE any(needle IN $needles WHERE toLower(d.payload) CONTAINS needle)
DETACH DELETE d
RETURN count(*) AS n
"""

WRITE_SUPPRESSIONS = """
UNWIND $rows AS row
MERGE (s:Suppression {hash: row.hash})
  ON CREATE SET s.kind = row.kind, s.type = row.type, s.createdAt = datetime(),
                s.auditId = $auditId
"""

READ_AUDIT_DETAILS = (
    "MATCH (a:AuditEntry {id: $id}) RETURN a.target AS target, a.details AS details"
)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted_profile_id: str
    audit_id: str
    counts: dict[str, int] = field(default_factory=dict)


async def _count(tx: AsyncManagedTransaction, statement: str, **params: Any) -> int:
    result = await tx.run(statement, **params)
    record = await result.single(strict=True)
    n: int = record["n"]
    return n


async def _delete_tx(
    tx: AsyncManagedTransaction, settings: Settings, profile_id: str, actor: str, audit_id: str
) -> DeleteResult | None:
    result = await tx.run(RESOLVE_AND_LOCK_PROFILE, id=profile_id)
    found = await result.single()
    if found is None:
        # A rerun after a commit whose answer was lost: the audit entry says what was done.
        result = await tx.run(READ_AUDIT_DETAILS, id=audit_id)
        done = await result.single()
        if done is None:
            return None
        return DeleteResult(
            deleted_profile_id=str(done["target"]).removeprefix("profile:"),
            audit_id=audit_id,
            counts=dict(loads_map(done["details"]).get("counts", {})),
        )
    live_id: str = found["id"]
    profile_ids = [live_id, *found["mergedIds"]]

    result = await tx.run(READ_RECORDS, id=live_id)
    records = [r.data() async for r in result]
    keys = [r["key"] for r in records]
    result = await tx.run(READ_IDENTIFIERS, keys=keys)
    identifiers = [r.data() async for r in result]
    owned = [i for i in identifiers if not i["shared"] and not i["blocked"]]

    suppressions = [
        {
            "hash": identifier_hash(settings, i["type"], i["value"]),
            "kind": "identifier",
            "type": i["type"],
        }
        for i in owned
    ] + [
        {"hash": record_hash(settings, r["source"], r["sourceId"]), "kind": "record", "type": None}
        for r in records
    ]
    needles = sorted(
        {str(i["value"]).lower() for i in owned if len(str(i["value"])) >= MIN_DEAD_LETTER_NEEDLE}
    )
    counts = {
        "records": len(records),
        "identifiersDeleted": len(owned),
        "identifiersKept": len(identifiers) - len(owned),
        "interactions": await _count(tx, DELETE_INTERACTIONS, keys=keys),
        "memberships": await _count(tx, DELETE_MEMBERSHIPS, keys=keys),
        "dealContacts": await _count(tx, DELETE_DEAL_CONTACTS, keys=keys),
        "identityEvents": await _count(tx, DELETE_IDENTITY_EVENTS, ids=profile_ids),
        "deadLetters": await _count(tx, DELETE_DEAD_LETTERS, needles=needles) if needles else 0,
    }
    await _count(tx, DELETE_IDENTIFIERS, keys=[i["key"] for i in owned])
    await _count(tx, DELETE_CUSTOMERS, keys=keys)
    counts["profiles"] = await _count(tx, DELETE_PROFILES, ids=profile_ids)
    await tx.run(WRITE_SUPPRESSIONS, rows=suppressions, auditId=audit_id)
    counts["suppressions"] = len(suppressions)
    await write_audit_entry_tx(
        tx,
        entry_id=audit_id,
        actor=actor,
        action="profile.delete",
        target=f"profile:{live_id}",
        details={"requestedId": profile_id, "counts": counts},
    )
    return DeleteResult(deleted_profile_id=live_id, audit_id=audit_id, counts=counts)


async def delete_profile(
    driver: AsyncDriver, settings: Settings, profile_id: str, *, actor: str
) -> DeleteResult | None:
    """Erase the person behind `profile_id` (current or merged-away); None if there is none."""
    audit_id = new_audit_id()

    async def work(tx: AsyncManagedTransaction) -> DeleteResult | None:
        return await _delete_tx(tx, settings, profile_id, actor, audit_id)

    async def run() -> DeleteResult | None:
        async with driver.session(database=settings.neo4j_database) as session:
            return await session.execute_write(work)

    deleted = await translate_unavailable(run)
    if deleted is not None:
        log.info("profile %s erased by %s: %s", deleted.deleted_profile_id, actor, deleted.counts)
    return deleted


# --- export ----------------------------------------------------------------------------------

RESOLVE_PROFILE = """
MATCH (start:Profile {id: $id})
OPTIONAL MATCH (start)-[:MERGED_INTO*1..50]->(s:Profile)
WHERE NOT (s)-[:MERGED_INTO]->(:Profile)
WITH coalesce(s, start) AS p
RETURN p {.*} AS profile, [(p)<-[:MERGED_INTO*1..50]-(q:Profile) | q.id] AS mergedIds
"""

EXPORT_RECORDS = """
MATCH (:Profile {id: $id})<-[:RESOLVES_TO]-(c:Customer)
RETURN c {.key, .source, .sourceId, .traits, .createdAt, .updatedAt, .seenAt} AS record,
       [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) |
          {type: i.type, value: i.value, blocked: coalesce(i.blocked, false),
           matched: h.matched, firstSeen: h.firstSeen, lastSeen: h.lastSeen}] AS identifiers,
       [(c)-[m:MEMBER_OF]->(a:Account) |
          {accountId: a.id, accountName: a.name, domain: a.domain, title: m.title,
           roles: m.roles, primary: m.primary, startDate: m.startDate,
           endDate: m.endDate}] AS memberships,
       [(c)-[r:CONTACT_ON]->(d:Deal) |
          {deal: d {.*}, role: r.role,
           stageHistory: [(d)-[:HAD_STAGE_CHANGE]->(s:StageChange) | s {.*}]}] AS deals
ORDER BY c.key
"""

EXPORT_INTERACTIONS = """
MATCH (:Profile {id: $id})<-[:RESOLVES_TO]-(c:Customer)-[:HAD]->(n:Interaction)
RETURN c.key AS recordKey, n {.*} AS interaction
ORDER BY n.occurredAt, n.id
"""

EXPORT_IDENTITY_EVENTS = """
MATCH (e)-[:MERGED|SPLIT]->(q:Profile)
WHERE q.id IN $ids AND (e:MergeEvent OR e:SplitEvent)
WITH DISTINCT e
RETURN labels(e)[0] AS kind, e {.*} AS event
ORDER BY e.at, e.id
"""

_JSON_PROPERTIES: Final = frozenset({"traits", "properties", "traitTimes"})


def _jsonable(value: Any, key: str | None = None) -> Any:
    if key in _JSON_PROPERTIES and isinstance(value, str):
        return loads_map(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value


async def export_profile(
    driver: AsyncDriver, settings: Settings, profile_id: str
) -> dict[str, Any] | None:
    """Everything held on the person behind `profile_id`, JSON-ready; None if there is none."""

    async def work(tx: AsyncManagedTransaction) -> dict[str, Any] | None:
        result = await tx.run(RESOLVE_PROFILE, id=profile_id)
        found = await result.single()
        if found is None:
            return None
        profile = dict(found["profile"])
        live_id = profile["id"]
        ids = [live_id, *found["mergedIds"]]
        result = await tx.run(EXPORT_RECORDS, id=live_id)
        records = [r.data() async for r in result]
        result = await tx.run(EXPORT_INTERACTIONS, id=live_id)
        # An event's interaction keeps its messageId claim (graph/messages.py): bookkeeping, not
        # the person's data.
        interactions = [
            {
                **{k: v for k, v in r["interaction"].items() if k != "claim"},
                "recordKey": r["recordKey"],
            }
            async for r in result
        ]
        result = await tx.run(EXPORT_IDENTITY_EVENTS, ids=ids)
        events = [{"kind": r["kind"], **r["event"]} async for r in result]
        return {
            "profile": profile,
            "mergedProfileIds": found["mergedIds"],
            "records": [
                {
                    **r["record"],
                    "identifiers": r["identifiers"],
                    "memberships": r["memberships"],
                    "deals": r["deals"],
                }
                for r in records
            ],
            "interactions": interactions,
            "identityEvents": events,
        }

    async def run() -> dict[str, Any] | None:
        async with driver.session(database=settings.neo4j_database) as session:
            return await session.execute_read(work)

    exported = await translate_unavailable(run)
    return None if exported is None else dict(_jsonable(exported))
