"""Every read of the GraphQL API: batched queries keyed by ids, run with routing to readers.

Each function takes a list of keys and answers in key order, so that one DataLoader batch is one
round trip (`UNWIND $ids AS id ... WHERE x.id IN $ids`). Rows are small frozen dataclasses; the
schema layer wraps them in GraphQL types. Times come back as timezone-aware datetimes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, LiteralString, TypeVar

from neo4j import AsyncDriver, Record, RoutingControl
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from neo4j.time import DateTime as Neo4jDateTime

from customer_graph.graph.errors import GraphUnavailableError

T = TypeVar("T")


class GraphReader:
    """Runs the read queries of one request (or one subscription event), counting round trips.

    After a write, `read_your_writes()` sends the rest of the request's reads to the leader, so a
    mutation payload never comes from a reader that has not caught up yet.
    """

    def __init__(self, driver: AsyncDriver, database: str) -> None:
        self.driver = driver
        self.database = database
        self.round_trips = 0
        self._routing = RoutingControl.READ

    def read_your_writes(self) -> None:
        self._routing = RoutingControl.WRITE

    async def fetch(self, cypher: LiteralString, **params: Any) -> list[Record]:
        self.round_trips += 1
        try:
            records, _, _ = await self.driver.execute_query(
                cypher, params, routing_=self._routing, database_=self.database
            )
        except (ServiceUnavailable, SessionExpired, OSError) as e:
            raise GraphUnavailableError(type(e).__name__) from e
        return records


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True, slots=True)
class ProfileRow:
    id: str
    created_at: datetime
    updated_at: datetime
    traits: dict[str, Any]
    display_name: str | None
    email: str | None
    phone: str | None
    company: str | None


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    key: str
    type: str
    value: str
    blocked: bool
    sources: tuple[str, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    matched: bool = True


@dataclass(frozen=True, slots=True)
class RecordRow:
    key: str
    source: str
    source_id: str
    traits: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    profile_id: str | None


@dataclass(frozen=True, slots=True)
class ComputedRow:
    first_seen: datetime | None
    last_seen: datetime | None
    interaction_counts: dict[str, int]
    last_interaction_at: datetime | None
    open_pipeline_value: float
    won_revenue: float
    open_deals: int
    won_deals: int
    lost_deals: int


@dataclass(frozen=True, slots=True)
class InteractionRow:
    id: str
    type: str
    occurred_at: datetime
    name: str | None
    channel: str | None
    direction: str | None
    subject: str | None
    body: str | None
    duration_seconds: int | None
    properties: dict[str, Any]
    source: str | None
    message_id: str | None
    record_key: str | None
    owner: OwnerRow | None
    deal_id: str | None
    account_id: str | None


@dataclass(frozen=True, slots=True)
class DealRow:
    id: str
    name: str | None
    amount: float | None
    currency: str | None
    pipeline: str | None
    stage: str | None
    status: str | None
    created_at: datetime | None
    closed_at: datetime | None
    owner_id: str | None
    account_id: str | None
    # Chronological, with durations; None when the query did not fetch it.
    stage_history: tuple[StageChangeRow, ...] | None = None


@dataclass(frozen=True, slots=True)
class StageChangeRow:
    id: str
    deal_id: str
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    # Seconds spent in `to_stage`: until the next change, or until the deal closed; None while
    # the deal is still in it (or when the row was read without its deal's history).
    duration_seconds: int | None = None
    timed: bool = False  # True when read with its deal's history (duration_seconds is final)
    deal: DealRow | None = None  # with its history, when read for the timeline


@dataclass(frozen=True, slots=True)
class DealContactRow:
    record: RecordRow
    role: str | None


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    name: str | None
    domain: str | None
    owner_id: str | None


@dataclass(frozen=True, slots=True)
class MembershipRow:
    record: RecordRow
    account: AccountRow
    title: str | None
    roles: tuple[str, ...]
    primary: bool
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True, slots=True)
class OwnerRow:
    id: str
    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class MergeEventRow:
    id: str
    at: datetime
    survivor_id: str
    merged_ids: tuple[str, ...]
    identifier_key: str | None
    record_key: str | None


@dataclass(frozen=True, slots=True)
class SplitEventRow:
    id: str
    at: datetime
    profile_id: str  # the profile that was split; it keeps the oldest record's group
    new_profile_ids: tuple[str, ...]
    reason: str | None
    identifier_key: str | None
    record_key: str | None


TimelineItemRow = InteractionRow | StageChangeRow | MergeEventRow | SplitEventRow


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    sort_key: str  # ties on `at` are broken by this, newest first
    item: TimelineItemRow


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a newest-first page starts: strictly after (at, key)."""

    at: datetime
    key: str


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    profile_id: str
    types: tuple[str, ...] | None = None
    # Also every interaction whose type is none of these (the API's OTHER).
    other_than: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class InteractionPageKey:
    filter: InteractionFilter
    first: int
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class TimelinePageKey:
    profile_id: str
    first: int
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class MemberPageKey:
    account_id: str
    first: int
    after: str | None = None  # record key


@dataclass(frozen=True, slots=True)
class SearchPageKey:
    query: str
    first: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class LinkStepRow:
    from_record: RecordRow
    identifier: IdentifierRow
    to_record: RecordRow


# ---------------------------------------------------------------------------------------------
# Conversions


def to_datetime(value: object) -> datetime | None:
    """Neo4j DateTime, ISO string or datetime -> aware datetime (UTC when the zone is missing)."""
    if value is None:
        return None
    if isinstance(value, Neo4jDateTime):
        value = value.to_native()
    elif isinstance(value, str):
        try:
            # Cypher's toString() of a DateTime: ISO 8601, with a zone name in brackets if any.
            value = datetime.fromisoformat(value.split("[", 1)[0])
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _required_datetime(value: object) -> datetime:
    return to_datetime(value) or datetime.fromtimestamp(0, UTC)


def _json_object(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _profile(m: Mapping[str, Any]) -> ProfileRow:
    return ProfileRow(
        id=str(m["id"]),
        created_at=_required_datetime(m.get("createdAt")),
        updated_at=_required_datetime(m.get("updatedAt") or m.get("createdAt")),
        traits=_json_object(m.get("traits")),
        display_name=_str(m.get("displayName")),
        email=_str(m.get("email")),
        phone=_str(m.get("phone")),
        company=_str(m.get("company")),
    )


def _record(m: Mapping[str, Any]) -> RecordRow:
    return RecordRow(
        key=str(m["key"]),
        source=str(m.get("source") or ""),
        source_id=str(m.get("sourceId") or ""),
        traits=_json_object(m.get("traits")),
        created_at=to_datetime(m.get("createdAt")),
        updated_at=to_datetime(m.get("updatedAt")),
        profile_id=_str(m.get("profileId")),
    )


def _identifier(m: Mapping[str, Any]) -> IdentifierRow:
    matched = m.get("matched")
    return IdentifierRow(
        key=str(m["key"]),
        type=str(m.get("type") or ""),
        value=str(m.get("value") or ""),
        blocked=bool(m.get("blocked")),
        sources=tuple(sorted(str(s) for s in m.get("sources") or () if s is not None)),
        first_seen=to_datetime(m.get("firstSeen")),
        last_seen=to_datetime(m.get("lastSeen")),
        matched=True if matched is None else bool(matched),
    )


def _interaction(m: Mapping[str, Any]) -> InteractionRow:
    return InteractionRow(
        id=str(m["id"]),
        type=str(m.get("type") or ""),
        occurred_at=_required_datetime(m.get("occurredAt")),
        name=_str(m.get("name")),
        channel=_str(m.get("channel")),
        direction=_str(m.get("direction")),
        subject=_str(m.get("subject")),
        body=_str(m.get("body")),
        duration_seconds=_int(m.get("durationSeconds")),
        properties=_json_object(m.get("properties")),
        source=_str(m.get("source")),
        message_id=_str(m.get("messageId")),
        record_key=_str(m.get("recordKey")),
        owner=_owner(m["owner"]) if m.get("owner") else None,
        deal_id=_str(m.get("dealId")),
        account_id=_str(m.get("accountId")),
    )


def _deal(m: Mapping[str, Any]) -> DealRow:
    closed_at = to_datetime(m.get("closedAt"))
    history = m.get("history")
    stage_history = None
    if history is not None:
        changes = sorted(
            (_stage_change({**c, "dealId": m["id"]}) for c in history),
            key=lambda c: (c.changed_at, c.id),
        )
        stage_history = tuple(_with_durations(changes, closed_at))
    return DealRow(
        id=str(m["id"]),
        name=_str(m.get("name")),
        amount=_float(m.get("amount")),
        currency=_str(m.get("currency")),
        pipeline=_str(m.get("pipeline")),
        stage=_str(m.get("stage")),
        status=_str(m.get("status")),
        created_at=to_datetime(m.get("createdAt")),
        closed_at=closed_at,
        owner_id=_str(m.get("ownerId")),
        account_id=_str(m.get("accountId")),
        stage_history=stage_history,
    )


def _stage_change(m: Mapping[str, Any]) -> StageChangeRow:
    return StageChangeRow(
        id=str(m["id"]),
        deal_id=str(m["dealId"]),
        from_stage=_str(m.get("fromStage")),
        to_stage=str(m.get("toStage") or ""),
        changed_at=_required_datetime(m.get("changedAt")),
        deal=_deal(m["deal"]) if m.get("deal") else None,
    )


def _account(m: Mapping[str, Any]) -> AccountRow:
    return AccountRow(
        id=str(m["id"]),
        name=_str(m.get("name")),
        domain=_str(m.get("domain")),
        owner_id=_str(m.get("ownerId")),
    )


def _membership(m: Mapping[str, Any]) -> MembershipRow:
    roles = m.get("roles")
    return MembershipRow(
        record=_record(m["record"]),
        account=_account(m["account"]),
        title=_str(m.get("title")),
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
        primary=bool(m.get("primary")),
        start_date=to_datetime(m.get("startDate")),
        end_date=to_datetime(m.get("endDate")),
    )


def _merge_event(m: Mapping[str, Any]) -> MergeEventRow:
    return MergeEventRow(
        id=str(m["id"]),
        at=_required_datetime(m.get("at")),
        survivor_id=str(m.get("survivorId") or ""),
        merged_ids=tuple(str(i) for i in m.get("mergedIds") or ()),
        identifier_key=_str(m.get("identifierKey")),
        record_key=_str(m.get("recordKey")),
    )


def _split_event(m: Mapping[str, Any]) -> SplitEventRow:
    return SplitEventRow(
        id=str(m["id"]),
        at=_required_datetime(m.get("at")),
        profile_id=str(m.get("profileId") or ""),
        new_profile_ids=tuple(str(i) for i in m.get("newProfileIds") or ()),
        reason=_str(m.get("reason")),
        identifier_key=_str(m.get("identifierKey")),
        record_key=_str(m.get("recordKey")),
    )


def _by_key(
    keys: Sequence[str],
    records: list[Record],
    field_name: str,
    convert: Callable[[Mapping[str, Any]], T],
) -> list[T | None]:
    found: dict[str, T] = {r["key"]: convert(r[field_name]) for r in records}
    return [found.get(k) for k in keys]


def _lists_by_key(
    keys: Sequence[str],
    records: list[Record],
    field_name: str,
    convert: Callable[[Mapping[str, Any]], T],
) -> list[list[T]]:
    found: dict[str, list[T]] = {
        r["key"]: [convert(m) for m in r[field_name] if m is not None] for r in records
    }
    return [found.get(k, []) for k in keys]


# ---------------------------------------------------------------------------------------------
# Profiles

# A merged-away id resolves to the profile it was merged into, following the chain (one hop per
# merge of a merge) to its end.
PROFILES_BY_ID: Final = """
UNWIND $ids AS key
MATCH (p:Profile {id: key})
OPTIONAL MATCH (p)-[:MERGED_INTO*1..50]->(s:Profile)
WHERE NOT (s)-[:MERGED_INTO]->(:Profile)
WITH key, coalesce(s, p) AS current
RETURN key, current {.id, .traits, .displayName, .email, .phone, .company,
       createdAt: toString(current.createdAt), updatedAt: toString(current.updatedAt)} AS profile
"""


async def profiles_by_id(reader: GraphReader, ids: Sequence[str]) -> list[ProfileRow | None]:
    records = await reader.fetch(PROFILES_BY_ID, ids=list(ids))
    return _by_key(ids, records, "profile", _profile)


# Identifier keys are `type:normalized value`. A blocked identifier names no one; if limits left
# an identifier on several profiles, the one that matched on it (then the oldest) wins.
PROFILE_BY_IDENTIFIER: Final = """
MATCH (i:Identifier {key: $key})<-[h:HAS_IDENTIFIER]-(:Customer)-[:RESOLVES_TO]->(p:Profile)
WHERE NOT coalesce(i.blocked, false)
WITH p, max(CASE WHEN coalesce(h.matched, true) THEN 1 ELSE 0 END) AS matched
ORDER BY matched DESC, p.createdAt, p.id
LIMIT 1
RETURN p.id AS id
"""


async def profile_id_by_identifier(reader: GraphReader, key: str) -> str | None:
    records = await reader.fetch(PROFILE_BY_IDENTIFIER, key=key)
    return str(records[0]["id"]) if records else None


# Lucene query text comes from `search_query`; merged-away profiles are not results.
SEARCH_PROFILES: Final = """
CALL db.index.fulltext.queryNodes('profile_search', $query) YIELD node, score
WHERE NOT (node)-[:MERGED_INTO]->(:Profile)
RETURN node {.id, .traits, .displayName, .email, .phone, .company,
       createdAt: toString(node.createdAt), updatedAt: toString(node.updatedAt)} AS profile
ORDER BY score DESC, node.id
SKIP $skip LIMIT $limit
"""

SEARCH_PROFILES_COUNT: Final = """
CALL db.index.fulltext.queryNodes('profile_search', $query) YIELD node
WHERE NOT (node)-[:MERGED_INTO]->(:Profile)
RETURN count(node) AS n
"""

_LUCENE_SPECIAL: Final = set('+-&|!(){}[]^"~*?:\\/')
MAX_SEARCH_WORDS: Final = 10


def search_query(text: str) -> str | None:
    """Lucene query for free text: every word must match, as a word or a word prefix.

    Words are lower-cased (so AND, OR, NOT are words, not operators) and Lucene's special
    characters escaped; words without a letter or digit are dropped.
    """
    terms = []
    for word in text.lower().split()[:MAX_SEARCH_WORDS]:
        if not any(ch.isalnum() for ch in word):
            continue
        escaped = "".join("\\" + ch if ch in _LUCENE_SPECIAL else ch for ch in word)
        terms.append(f"({escaped} OR {escaped}*)")
    return " AND ".join(terms) if terms else None


async def search_profiles(reader: GraphReader, key: SearchPageKey) -> Page[ProfileRow]:
    query = search_query(key.query)
    if query is None:
        return Page(items=[], has_next=False)
    records = await reader.fetch(SEARCH_PROFILES, query=query, skip=key.offset, limit=key.first + 1)
    rows = [_profile(r["profile"]) for r in records]
    return Page(items=rows[: key.first], has_next=len(rows) > key.first)


async def search_profiles_count(reader: GraphReader, text: str) -> int:
    query = search_query(text)
    if query is None:
        return 0
    records = await reader.fetch(SEARCH_PROFILES_COUNT, query=query)
    return int(records[0]["n"])


# One row per identifier of the profile, aggregated over the records that carry it.
IDENTIFIERS_BY_PROFILE: Final = """
UNWIND $ids AS key
MATCH (:Profile {id: key})<-[:RESOLVES_TO]-(c:Customer)-[h:HAS_IDENTIFIER]->(i:Identifier)
WITH key, i, collect(DISTINCT c.source) AS sources, min(h.firstSeen) AS firstSeen,
     max(h.lastSeen) AS lastSeen, collect(coalesce(h.matched, true)) AS matched
ORDER BY i.type, i.value
RETURN key, collect(i {.key, .type, .value, .blocked, sources: sources,
                       firstSeen: toString(firstSeen), lastSeen: toString(lastSeen),
                       matched: any(m IN matched WHERE m)}) AS identifiers
"""


async def identifiers_by_profile(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[IdentifierRow]]:
    records = await reader.fetch(IDENTIFIERS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "identifiers", _identifier)


IDENTIFIERS_BY_KEY: Final = """
UNWIND $keys AS key
MATCH (i:Identifier {key: key})
OPTIONAL MATCH (c:Customer)-[h:HAS_IDENTIFIER]->(i)
WITH key, i, collect(DISTINCT c.source) AS sources, min(h.firstSeen) AS firstSeen,
     max(h.lastSeen) AS lastSeen, collect(coalesce(h.matched, true)) AS matched
RETURN key, i {.key, .type, .value, .blocked, sources: sources,
               firstSeen: toString(firstSeen), lastSeen: toString(lastSeen),
               matched: any(m IN matched WHERE m)} AS identifier
"""


async def identifiers_by_key(
    reader: GraphReader, keys: Sequence[str]
) -> list[IdentifierRow | None]:
    records = await reader.fetch(IDENTIFIERS_BY_KEY, keys=list(keys))
    return _by_key(keys, records, "identifier", _identifier)


RECORDS_BY_PROFILE: Final = """
UNWIND $ids AS key
MATCH (p:Profile {id: key})<-[:RESOLVES_TO]-(c:Customer)
WITH key, p, c ORDER BY c.createdAt, c.key
RETURN key, collect(c {.key, .source, .sourceId, .traits, createdAt: toString(c.createdAt),
                       updatedAt: toString(c.updatedAt),
                       profileId: p.id}) AS records
"""


async def records_by_profile(reader: GraphReader, ids: Sequence[str]) -> list[list[RecordRow]]:
    records = await reader.fetch(RECORDS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "records", _record)


RECORDS_BY_KEY: Final = """
UNWIND $keys AS key
MATCH (c:Customer {key: key})
RETURN key, c {.key, .source, .sourceId, .traits, createdAt: toString(c.createdAt),
                       updatedAt: toString(c.updatedAt),
               profileId: head([(c)-[:RESOLVES_TO]->(p:Profile) | p.id])} AS record
"""


async def records_by_key(reader: GraphReader, keys: Sequence[str]) -> list[RecordRow | None]:
    records = await reader.fetch(RECORDS_BY_KEY, keys=list(keys))
    return _by_key(keys, records, "record", _record)


# First and last seen come from identifier sightings (event time) and interactions; a record
# with neither counts from when it was written.
COMPUTED_BY_PROFILE: Final = """
UNWIND $ids AS key
MATCH (p:Profile {id: key})
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(c:Customer)
  OPTIONAL MATCH (c)-[h:HAS_IDENTIFIER]->(:Identifier)
  RETURN min(coalesce(h.firstSeen, c.createdAt)) AS recordFirst,
         max(coalesce(h.lastSeen, c.updatedAt, c.createdAt)) AS recordLast
}
CALL (p) {
  OPTIONAL MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:HAD]->(i:Interaction)
  WITH i.type AS type, count(i) AS n, min(i.occurredAt) AS first, max(i.occurredAt) AS last
  RETURN collect(CASE WHEN type IS NULL THEN null ELSE {type: type, count: n} END) AS counts,
         min(first) AS interactionFirst, max(last) AS interactionLast
}
CALL (p) {
  OPTIONAL MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
  WITH DISTINCT d
  RETURN sum(CASE WHEN d.status = 'open' THEN coalesce(d.amount, 0.0) ELSE 0.0 END) AS openValue,
         sum(CASE WHEN d.status = 'won' THEN coalesce(d.amount, 0.0) ELSE 0.0 END) AS wonValue,
         count(CASE WHEN d.status = 'open' THEN 1 END) AS openDeals,
         count(CASE WHEN d.status = 'won' THEN 1 END) AS wonDeals,
         count(CASE WHEN d.status = 'lost' THEN 1 END) AS lostDeals
}
RETURN key, {recordFirst: toString(recordFirst), recordLast: toString(recordLast),
             counts: counts, interactionFirst: toString(interactionFirst),
             interactionLast: toString(interactionLast),
             openValue: openValue, wonValue: wonValue, openDeals: openDeals,
             wonDeals: wonDeals, lostDeals: lostDeals} AS computed
"""


def _computed(m: Mapping[str, Any]) -> ComputedRow:
    firsts = [t for t in (to_datetime(m["recordFirst"]), to_datetime(m["interactionFirst"])) if t]
    lasts = [t for t in (to_datetime(m["recordLast"]), to_datetime(m["interactionLast"])) if t]
    return ComputedRow(
        first_seen=min(firsts, default=None),
        last_seen=max(lasts, default=None),
        interaction_counts={str(c["type"]): int(c["count"]) for c in m["counts"]},
        last_interaction_at=to_datetime(m["interactionLast"]),
        open_pipeline_value=float(m["openValue"] or 0.0),
        won_revenue=float(m["wonValue"] or 0.0),
        open_deals=int(m["openDeals"]),
        won_deals=int(m["wonDeals"]),
        lost_deals=int(m["lostDeals"]),
    )


async def computed_by_profile(reader: GraphReader, ids: Sequence[str]) -> list[ComputedRow | None]:
    records = await reader.fetch(COMPUTED_BY_PROFILE, ids=list(ids))
    return _by_key(ids, records, "computed", _computed)


# A profile's merge history covers the profiles merged into it, however long ago.
MERGE_HISTORY_BY_PROFILE: Final = """
UNWIND $ids AS key
MATCH (p:Profile {id: key})<-[:MERGED_INTO*0..50]-(:Profile)<-[:MERGED]-(m:MergeEvent)
WITH DISTINCT key, m
ORDER BY m.at DESC, m.id DESC
RETURN key, collect(m {.id, .survivorId, .mergedIds, .identifierKey, .recordKey,
                       at: toString(m.at)}) AS events
"""


async def merge_history_by_profile(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[MergeEventRow]]:
    records = await reader.fetch(MERGE_HISTORY_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "events", _merge_event)


# ---------------------------------------------------------------------------------------------
# Interactions and the timeline

# A deal's stage history comes with it (deals have few changes), saving a round trip.
_DEAL_PROJECTION: Final = """d {.id, .name, .amount, .currency, .pipeline, .stage, .status,
                   createdAt: toString(d.createdAt), closedAt: toString(d.closedAt),
                   ownerId: head([(o:Owner)-[:OWNS]->(d) | o.id]),
                   accountId: head([(d)-[:FOR_ACCOUNT]->(a:Account) | a.id]),
                   history: [(d)-[:HAD_STAGE_CHANGE]->(s:StageChange) |
                             s {.id, .fromStage, .toStage, changedAt: toString(s.changedAt)}]}"""

_INTERACTION_PROJECTION: Final = """i {.id, .type, .name, .channel, .direction, .subject, .body,
                   .durationSeconds, .properties, .source, .messageId,
                   occurredAt: toString(i.occurredAt), recordKey: c.key,
                   owner: head([(o:Owner)-[:OWNS]->(i) | o {.id, .name, .email}]),
                   dealId: head([(i)-[:ABOUT_DEAL]->(d:Deal) | d.id]),
                   accountId: head([(i)-[:WITH_ACCOUNT]->(a:Account) | a.id])}"""

# Newest first, ties broken by id; `$limit` is one more than the page so that we know if there
# is a next page. Requests that share a page size share this one query.
INTERACTIONS_BY_PROFILE: Final = (
    """
UNWIND $requests AS req
CALL (req) {
  MATCH (:Profile {id: req.profileId})<-[:RESOLVES_TO]-(c:Customer)-[:HAD]->(i:Interaction)
  WHERE (req.types IS NULL OR i.type IN req.types
         OR (req.otherThan IS NOT NULL AND NOT i.type IN req.otherThan))
    AND (req.since IS NULL OR i.occurredAt >= req.since)
    AND (req.until IS NULL OR i.occurredAt < req.until)
    AND (req.afterAt IS NULL OR i.occurredAt < req.afterAt
         OR (i.occurredAt = req.afterAt AND i.id < req.afterKey))
  WITH c, i ORDER BY i.occurredAt DESC, i.id DESC LIMIT $limit
  RETURN collect("""
    + _INTERACTION_PROJECTION
    + """) AS items
}
RETURN req.key AS key, items
"""
)

INTERACTION_COUNTS: Final = """
UNWIND $requests AS req
CALL (req) {
  MATCH (:Profile {id: req.profileId})<-[:RESOLVES_TO]-(:Customer)-[:HAD]->(i:Interaction)
  WHERE (req.types IS NULL OR i.type IN req.types
         OR (req.otherThan IS NOT NULL AND NOT i.type IN req.otherThan))
    AND (req.since IS NULL OR i.occurredAt >= req.since)
    AND (req.until IS NULL OR i.occurredAt < req.until)
  RETURN count(i) AS n
}
RETURN req.key AS key, n
"""


def _after_params(after: Keyset | None) -> dict[str, Any]:
    return {"afterAt": after.at if after else None, "afterKey": after.key if after else None}


def _filter_params(f: InteractionFilter) -> dict[str, Any]:
    return {
        "profileId": f.profile_id,
        "types": list(f.types) if f.types is not None else None,
        "otherThan": list(f.other_than) if f.other_than is not None else None,
        "since": f.since,
        "until": f.until,
    }


async def interactions_by_profile(
    reader: GraphReader, keys: Sequence[InteractionPageKey]
) -> list[Page[InteractionRow]]:
    pages: dict[int, Page[InteractionRow]] = {}
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        by_size[key.first].append(index)
    for first, indexes in by_size.items():
        requests = [
            {
                **_filter_params(keys[i].filter),
                "key": str(i),
                **_after_params(keys[i].after),
            }
            for i in indexes
        ]
        records = await reader.fetch(INTERACTIONS_BY_PROFILE, requests=requests, limit=first + 1)
        found = {r["key"]: [_interaction(m) for m in r["items"]] for r in records}
        for i in indexes:
            rows = found.get(str(i), [])
            pages[i] = Page(items=rows[:first], has_next=len(rows) > first)
    return [pages[i] for i in range(len(keys))]


async def interaction_counts(
    reader: GraphReader, filters: Sequence[InteractionFilter]
) -> list[int]:
    requests = [{**_filter_params(f), "key": str(i)} for i, f in enumerate(filters)]
    records = await reader.fetch(INTERACTION_COUNTS, requests=requests)
    found = {r["key"]: int(r["n"]) for r in records}
    return [found.get(str(i), 0) for i in range(len(filters))]


INTERACTIONS_BY_ID: Final = (
    """
UNWIND $ids AS key
MATCH (i:Interaction {id: key})
OPTIONAL MATCH (c:Customer)-[:HAD]->(i)
WITH key, i, head(collect(c)) AS c
RETURN key, """
    + _INTERACTION_PROJECTION
    + """ AS interaction
"""
)


async def interactions_by_id(
    reader: GraphReader, ids: Sequence[str]
) -> list[InteractionRow | None]:
    records = await reader.fetch(INTERACTIONS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "interaction", _interaction)


# One newest-first feed of interactions, stage changes of the profile's deals, and identity
# events (merges into it, splits of it). The sort key breaks ties on time across kinds.
TIMELINE_BY_PROFILE: Final = (
    """
UNWIND $requests AS req
CALL (req) {
  MATCH (p:Profile {id: req.profileId})
  CALL (p, req) {
    // Each kind is cut to the page before it is projected: a long history costs a sort of
    // keys, not a projection of every item.
    MATCH (p)<-[:RESOLVES_TO]-(c:Customer)-[:HAD]->(i:Interaction)
    WITH c, i, i.occurredAt AS at, 'interaction:' + i.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    WITH c, i, at, sortKey ORDER BY at DESC, sortKey DESC LIMIT $limit
    RETURN at, sortKey, 'interaction' AS kind, """
    + _INTERACTION_PROJECTION
    + """ AS item
    UNION ALL
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
    WITH DISTINCT d
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    WITH d, s, s.changedAt AS at, 'stage:' + s.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    WITH d, s, at, sortKey ORDER BY at DESC, sortKey DESC LIMIT $limit
    RETURN at, sortKey, 'stage_change' AS kind,
           s {.id, .fromStage, .toStage, changedAt: toString(s.changedAt), dealId: d.id, deal: """
    + _DEAL_PROJECTION
    + """} AS item
    UNION ALL
    MATCH (p)<-[:MERGED_INTO*0..50]-(:Profile)<-[:MERGED]-(m:MergeEvent)
    WITH DISTINCT m
    WITH m, m.at AS at, 'merge:' + m.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    RETURN at, sortKey, 'merge' AS kind,
           m {.id, .survivorId, .mergedIds, .identifierKey, .recordKey, at: toString(m.at)} AS item
    UNION ALL
    MATCH (p)<-[:SPLIT]-(e:SplitEvent)
    WITH e, e.at AS at, 'split:' + e.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    RETURN at, sortKey, 'split' AS kind,
           e {.id, .profileId, .newProfileIds, .reason, .identifierKey, .recordKey,
              at: toString(e.at)} AS item
  }
  WITH at, sortKey, kind, item ORDER BY at DESC, sortKey DESC LIMIT $limit
  RETURN collect({at: toString(at), sortKey: sortKey, kind: kind, item: item}) AS entries
}
RETURN req.key AS key, entries
"""
)

_TIMELINE_CONVERTERS: Final[dict[str, Any]] = {
    "interaction": _interaction,
    "stage_change": _stage_change,
    "merge": _merge_event,
    "split": _split_event,
}


async def timeline_by_profile(
    reader: GraphReader, keys: Sequence[TimelinePageKey]
) -> list[Page[TimelineEntry]]:
    pages: dict[int, Page[TimelineEntry]] = {}
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        by_size[key.first].append(index)
    for first, indexes in by_size.items():
        requests = [
            {
                "key": str(i),
                "profileId": keys[i].profile_id,
                **_after_params(keys[i].after),
            }
            for i in indexes
        ]
        records = await reader.fetch(TIMELINE_BY_PROFILE, requests=requests, limit=first + 1)
        found = {
            r["key"]: [
                TimelineEntry(
                    at=_required_datetime(e["at"]),
                    sort_key=str(e["sortKey"]),
                    item=_TIMELINE_CONVERTERS[e["kind"]](e["item"]),
                )
                for e in r["entries"]
                if e["at"] is not None
            ]
            for r in records
        }
        for i in indexes:
            rows = found.get(str(i), [])
            pages[i] = Page(items=rows[:first], has_next=len(rows) > first)
    return [pages[i] for i in range(len(keys))]


# ---------------------------------------------------------------------------------------------
# Deals, stage history, contacts

DEALS_BY_ID: Final = (
    """
UNWIND $ids AS key
MATCH (d:Deal {id: key})
RETURN key, """
    + _DEAL_PROJECTION
    + """ AS deal
"""
)

DEALS_BY_PROFILE: Final = (
    """
UNWIND $ids AS key
MATCH (:Profile {id: key})<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
WITH DISTINCT key, d
ORDER BY d.createdAt DESC, d.id
RETURN key, collect("""
    + _DEAL_PROJECTION
    + """) AS deals
"""
)

DEALS_BY_ACCOUNT: Final = (
    """
UNWIND $ids AS key
MATCH (:Account {id: key})<-[:FOR_ACCOUNT]-(d:Deal)
WITH key, d
ORDER BY d.createdAt DESC, d.id
RETURN key, collect("""
    + _DEAL_PROJECTION
    + """) AS deals
"""
)


async def deals_by_id(reader: GraphReader, ids: Sequence[str]) -> list[DealRow | None]:
    records = await reader.fetch(DEALS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "deal", _deal)


async def deals_by_profile(reader: GraphReader, ids: Sequence[str]) -> list[list[DealRow]]:
    records = await reader.fetch(DEALS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "deals", _deal)


async def deals_by_account(reader: GraphReader, ids: Sequence[str]) -> list[list[DealRow]]:
    records = await reader.fetch(DEALS_BY_ACCOUNT, ids=list(ids))
    return _lists_by_key(ids, records, "deals", _deal)


STAGE_HISTORY_BY_DEAL: Final = """
UNWIND $ids AS key
MATCH (d:Deal {id: key})
OPTIONAL MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
WITH key, d, s ORDER BY s.changedAt, s.id
RETURN key, toString(d.closedAt) AS closedAt,
       collect(s {.id, .fromStage, .toStage, changedAt: toString(s.changedAt), dealId: d.id})
       AS changes
"""


def _with_durations(
    changes: list[StageChangeRow], closed_at: datetime | None
) -> list[StageChangeRow]:
    out = []
    for index, change in enumerate(changes):
        end = changes[index + 1].changed_at if index + 1 < len(changes) else closed_at
        seconds = int((end - change.changed_at).total_seconds()) if end is not None else None
        out.append(
            StageChangeRow(
                id=change.id,
                deal_id=change.deal_id,
                from_stage=change.from_stage,
                to_stage=change.to_stage,
                changed_at=change.changed_at,
                duration_seconds=max(seconds, 0) if seconds is not None else None,
                timed=True,
            )
        )
    return out


async def stage_history_by_deal(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[StageChangeRow]]:
    """Chronological stage changes of each deal, with the time spent in each stage."""
    records = await reader.fetch(STAGE_HISTORY_BY_DEAL, ids=list(ids))
    found = {
        r["key"]: _with_durations(
            [_stage_change(m) for m in r["changes"]], to_datetime(r["closedAt"])
        )
        for r in records
    }
    return [found.get(k, []) for k in ids]


CONTACTS_BY_DEAL: Final = """
UNWIND $ids AS key
MATCH (d:Deal {id: key})<-[r:CONTACT_ON]-(c:Customer)
WITH key, r, c ORDER BY c.key
RETURN key, collect({role: r.role,
                     record: c {.key, .source, .sourceId, .traits, createdAt: toString(c.createdAt),
                       updatedAt: toString(c.updatedAt),
                                profileId: head([(c)-[:RESOLVES_TO]->(p:Profile) | p.id])}})
       AS contacts
"""


def _contact(m: Mapping[str, Any]) -> DealContactRow:
    return DealContactRow(record=_record(m["record"]), role=_str(m.get("role")))


async def contacts_by_deal(reader: GraphReader, ids: Sequence[str]) -> list[list[DealContactRow]]:
    records = await reader.fetch(CONTACTS_BY_DEAL, ids=list(ids))
    return _lists_by_key(ids, records, "contacts", _contact)


# ---------------------------------------------------------------------------------------------
# Accounts, memberships, owners

ACCOUNTS_BY_ID: Final = """
UNWIND $ids AS key
MATCH (a:Account {id: key})
RETURN key, a {.id, .name, .domain, ownerId: head([(o:Owner)-[:OWNS]->(a) | o.id])} AS account
"""


async def accounts_by_id(reader: GraphReader, ids: Sequence[str]) -> list[AccountRow | None]:
    records = await reader.fetch(ACCOUNTS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "account", _account)


_MEMBERSHIP_PROJECTION: Final = """{title: m.title, roles: m.roles, primary: m.primary,
         startDate: toString(m.startDate), endDate: toString(m.endDate),
         record: c {.key, .source, .sourceId, .traits, createdAt: toString(c.createdAt),
                       updatedAt: toString(c.updatedAt), profileId: p.id},
         account: a {.id, .name, .domain, ownerId: head([(o:Owner)-[:OWNS]->(a) | o.id])}}"""

MEMBERSHIPS_BY_PROFILE: Final = (
    """
UNWIND $ids AS key
MATCH (p:Profile {id: key})<-[:RESOLVES_TO]-(c:Customer)-[m:MEMBER_OF]->(a:Account)
WITH key, p, c, m, a ORDER BY coalesce(m.primary, false) DESC, a.name, a.id
RETURN key, collect("""
    + _MEMBERSHIP_PROJECTION
    + """) AS memberships
"""
)

# Members of an account, by record key; `$limit` is one more than the page.
MEMBERS_BY_ACCOUNT: Final = (
    """
UNWIND $requests AS req
CALL (req) {
  MATCH (a:Account {id: req.accountId})<-[m:MEMBER_OF]-(c:Customer)
  WHERE req.after IS NULL OR c.key > req.after
  OPTIONAL MATCH (c)-[:RESOLVES_TO]->(p:Profile)
  WITH a, m, c, p ORDER BY c.key LIMIT $limit
  RETURN collect("""
    + _MEMBERSHIP_PROJECTION
    + """) AS members
}
RETURN req.key AS key, members
"""
)


async def memberships_by_profile(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[MembershipRow]]:
    records = await reader.fetch(MEMBERSHIPS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "memberships", _membership)


async def members_by_account(
    reader: GraphReader, keys: Sequence[MemberPageKey]
) -> list[Page[MembershipRow]]:
    pages: dict[int, Page[MembershipRow]] = {}
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        by_size[key.first].append(index)
    for first, indexes in by_size.items():
        requests = [
            {"key": str(i), "accountId": keys[i].account_id, "after": keys[i].after}
            for i in indexes
        ]
        records = await reader.fetch(MEMBERS_BY_ACCOUNT, requests=requests, limit=first + 1)
        found = {r["key"]: [_membership(m) for m in r["members"]] for r in records}
        for i in indexes:
            rows = found.get(str(i), [])
            pages[i] = Page(items=rows[:first], has_next=len(rows) > first)
    return [pages[i] for i in range(len(keys))]


OWNERS_BY_ID: Final = """
UNWIND $ids AS key
MATCH (o:Owner {id: key})
RETURN key, o {.id, .name, .email} AS owner
"""


def _owner(m: Mapping[str, Any]) -> OwnerRow:
    return OwnerRow(id=str(m["id"]), name=_str(m.get("name")), email=_str(m.get("email")))


async def owners_by_id(reader: GraphReader, ids: Sequence[str]) -> list[OwnerRow | None]:
    records = await reader.fetch(OWNERS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "owner", _owner)
