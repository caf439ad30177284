"""Every read of the GraphQL API: batched queries keyed by ids, run with routing to readers.

Each function takes a list of keys and answers in key order, so that one DataLoader batch is one
round trip (`UNWIND $ids AS id ... WHERE x.id IN $ids`). Rows are small frozen dataclasses; the
schema layer wraps them in GraphQL types. Times come back as timezone-aware datetimes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, LiteralString, Protocol, TypeVar

from neo4j import READ_ACCESS, WRITE_ACCESS, AsyncDriver, Record, RoutingControl
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.rows import (
    AccountRow,
    ComputedRow,
    DealContactRow,
    DealRow,
    IdentifierRow,
    InteractionFilter,
    InteractionPageKey,
    InteractionRow,
    Keyset,
    MemberPageKey,
    MembershipRow,
    MergeEventRow,
    OwnerRow,
    Page,
    ProfileRow,
    RecordRow,
    SearchPageKey,
    StageChangeRow,
    TimelineEntry,
    TimelinePageKey,
    account_row,
    computed_row,
    contact_row,
    deal_row,
    identifier_row,
    interaction_row,
    membership_row,
    merge_event_row,
    owner_row,
    profile_row,
    record_row,
    required_datetime,
    split_event_row,
    stage_change_row,
    to_datetime,
    with_durations,
)

T = TypeVar("T")


class KeyCheck(Protocol):
    """A request's API key, to be confirmed by the graph, which one of the request's reads may
    carry in its own statement (security.py): one round trip for both instead of two."""

    def claim(self) -> str | None:
        """The key's hash, to the first read that asks; None once claimed."""

    def carried(self, key: Mapping[str, Any] | None) -> None:
        """What the graph holds under the claimed hash (`API_KEY_MAP`); None: no such key."""

    def not_carried(self) -> None:
        """The read that claimed the key could not answer for it: look it up on its own."""

    def look_up(self) -> None:
        """A read that does not carry the key starts: look the key up beside it, unless a read
        has claimed it."""


# An API key's stored fields, as graph/keys.py reads them (`k` is the ApiKey node).
API_KEY_MAP: Final = "k {.id, .prefix, .scopes, .source, .createdAt, .revokedAt}"


class GraphReader:
    """Runs the read queries of one request (or one subscription event), counting round trips.

    A read is one auto-commit transaction (RUN and PULL in one round trip; a managed
    transaction adds a COMMIT round trip, which costs a read as much as its Cypher). It shares
    `execute_query`'s bookmark manager, so it sees what the process's writes committed. If the
    database is briefly unavailable or answers with a transient error, the read is run again
    as a managed transaction, which the driver retries.

    After a write, `read_your_writes()` sends the rest of the request's reads to the leader, so a
    mutation payload never comes from a reader that has not caught up yet.
    """

    def __init__(
        self, driver: AsyncDriver, database: str, key_check: KeyCheck | None = None
    ) -> None:
        self.driver = driver
        self.database = database
        self.round_trips = 0
        self._routing = RoutingControl.READ
        # The request's key, if a read of it may confirm the key (see `KeyCheck`).
        self.key_check = key_check

    def read_your_writes(self) -> None:
        self._routing = RoutingControl.WRITE

    async def fetch(self, cypher: LiteralString, **params: Any) -> list[Record]:
        if self.key_check is not None:
            self.key_check.look_up()
        self.round_trips += 1
        try:
            try:
                return await self._auto_commit(cypher, params)
            except (TransientError, ServiceUnavailable, SessionExpired):
                records, _, _ = await self.driver.execute_query(
                    cypher, params, routing_=self._routing, database_=self.database
                )
                return records
        except (ServiceUnavailable, SessionExpired, OSError) as e:
            raise GraphUnavailableError(type(e).__name__) from e

    async def _auto_commit(self, cypher: LiteralString, params: dict[str, Any]) -> list[Record]:
        mode = READ_ACCESS if self._routing is RoutingControl.READ else WRITE_ACCESS
        async with self.driver.session(
            database=self.database,
            default_access_mode=mode,
            bookmark_manager=self.driver.execute_query_bookmark_manager,
        ) as session:
            result = await session.run(cypher, params)
            return (await result.to_eager_result()).records


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
    return _by_key(ids, records, "profile", profile_row)


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
    rows = [profile_row(r["profile"]) for r in records]
    return Page(items=rows[: key.first], has_next=len(rows) > key.first)


async def search_profiles_count(reader: GraphReader, text: str) -> int:
    query = search_query(text)
    if query is None:
        return 0
    records = await reader.fetch(SEARCH_PROFILES_COUNT, query=query)
    return int(records[0]["n"])


# One row per identifier of the profile, aggregated over the records that carry it.
_IDENTIFIER_PROJECTION: Final = """i {.key, .type, .value, .blocked, sources: sources,
                       firstSeen: toString(firstSeen), lastSeen: toString(lastSeen),
                       matched: any(m IN matched WHERE m)}"""

IDENTIFIERS_BY_PROFILE: Final = (
    """
UNWIND $ids AS key
MATCH (:Profile {id: key})<-[:RESOLVES_TO]-(c:Customer)-[h:HAS_IDENTIFIER]->(i:Identifier)
WITH key, i, collect(DISTINCT c.source) AS sources, min(h.firstSeen) AS firstSeen,
     max(h.lastSeen) AS lastSeen, collect(coalesce(h.matched, true)) AS matched
ORDER BY i.type, i.value
RETURN key, collect("""
    + _IDENTIFIER_PROJECTION
    + """) AS identifiers
"""
)


async def identifiers_by_profile(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[IdentifierRow]]:
    records = await reader.fetch(IDENTIFIERS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "identifiers", identifier_row)


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
    return _by_key(keys, records, "identifier", identifier_row)


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
    return _lists_by_key(ids, records, "records", record_row)


RECORDS_BY_KEY: Final = """
UNWIND $keys AS key
MATCH (c:Customer {key: key})
RETURN key, c {.key, .source, .sourceId, .traits, createdAt: toString(c.createdAt),
                       updatedAt: toString(c.updatedAt),
               profileId: head([(c)-[:RESOLVES_TO]->(p:Profile) | p.id])} AS record
"""


async def records_by_key(reader: GraphReader, keys: Sequence[str]) -> list[RecordRow | None]:
    records = await reader.fetch(RECORDS_BY_KEY, keys=list(keys))
    return _by_key(keys, records, "record", record_row)


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


async def computed_by_profile(reader: GraphReader, ids: Sequence[str]) -> list[ComputedRow | None]:
    records = await reader.fetch(COMPUTED_BY_PROFILE, ids=list(ids))
    return _by_key(ids, records, "computed", computed_row)


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
    return _lists_by_key(ids, records, "events", merge_event_row)


# ---------------------------------------------------------------------------------------------
# Interactions and the timeline


@dataclass(frozen=True, slots=True)
class DealParts:
    """What a deal read carries beyond the deal's own properties: `links` the ids of its owner
    and account, `history` its stage changes. A deal read with less than both is for the
    selection that asked for it, not for a loader (`DealRow.complete`)."""

    links: bool = True
    history: bool = True


ALL_DEAL_PARTS: Final = DealParts()
NO_DEAL_PARTS: Final = DealParts(links=False, history=False)


def _deal_projection(parts: DealParts) -> str:
    """Deal `d` as a map (`deal_row`'s input). The stage history comes with it (deals have few
    changes), saving a round trip."""
    links = (
        """
                   ownerId: head([(dealOwner:Owner)-[:OWNS]->(d) | dealOwner.id]),
                   accountId: head([(d)-[:FOR_ACCOUNT]->(dealAccount:Account) | dealAccount.id]),"""
        if parts.links
        else ""
    )
    history = (
        """
                   history: [(d)-[:HAD_STAGE_CHANGE]->(change:StageChange) |
                             change {.id, .fromStage, .toStage,
                                     changedAt: toString(change.changedAt)}],"""
        if parts.history
        else ""
    )
    return (
        """d {.id, .name, .amount, .currency, .pipeline, .stage, .status,"""
        + links
        + history
        + """
                   createdAt: toString(d.createdAt), closedAt: toString(d.closedAt)}"""
    )


_DEAL_PROJECTION: Final = _deal_projection(ALL_DEAL_PARTS)

# An interaction's keys beyond its id, type and time (which every read has), by row key.
INTERACTION_KEYS: Final[dict[str, str]] = {
    "name": ".name",
    "channel": ".channel",
    "direction": ".direction",
    "subject": ".subject",
    "body": ".body",
    "durationSeconds": ".durationSeconds",
    "properties": ".properties",
    "source": ".source",
    "messageId": ".messageId",
    "recordKey": "recordKey: c.key",
    "owner": "owner: head([(owner:Owner)-[:OWNS]->(i) | owner {.id, .name, .email}])",
    "dealId": "dealId: head([(i)-[:ABOUT_DEAL]->(about:Deal) | about.id])",
    "accountId": "accountId: head([(i)-[:WITH_ACCOUNT]->(account:Account) | account.id])",
}


# The keys a read may leave out: long text, JSON and lookups. The short ones are always read, so
# that clients can make at most 2^6 texts of the statement (each new text is planned by Neo4j).
OPTIONAL_INTERACTION_KEYS: Final = frozenset(
    {"body", "properties", "recordKey", "owner", "dealId", "accountId"}
)


def _interaction_projection(keys: Iterable[str]) -> str:
    wanted = set(keys) | (INTERACTION_KEYS.keys() - OPTIONAL_INTERACTION_KEYS)
    parts = [".id", ".type", "occurredAt: toString(i.occurredAt)"]
    parts += [INTERACTION_KEYS[k] for k in INTERACTION_KEYS if k in wanted]
    return "i {" + ", ".join(parts) + "}"


_INTERACTION_PROJECTION: Final = _interaction_projection(INTERACTION_KEYS)

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
        found = {r["key"]: [interaction_row(m) for m in r["items"]] for r in records}
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
    return _by_key(ids, records, "interaction", interaction_row)


# One newest-first feed of interactions, stage changes of the profile's deals, and identity
# events (merges into it, splits of it). The sort key breaks ties on time across kinds.
# The kinds of a profile's history for one page request `req` of profile `p`: each kind is cut
# to the page by its sort key, then the page is cut from all kinds, and only then are its items
# projected: a long history costs a sort of keys, and each item on the page is projected once.
def _timeline(interaction: str, stage_deal: DealParts | None) -> str:
    """The timeline page's entries, interactions projected by `interaction`, and unless
    `stage_deal` is None the deals of its stage changes, each projected once with the parts it
    names (a change's duration needs the history): `stageDeals`."""
    deals = (
        ("[d IN dealNodes | " + _deal_projection(stage_deal) + "]")
        if stage_deal is not None
        else "[]"
    )
    return (
        """
  CALL (p, req) {
    MATCH (p)<-[:RESOLVES_TO]-(c:Customer)-[:HAD]->(i:Interaction)
    WITH c, i, i.occurredAt AS at, 'interaction:' + i.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    WITH c, i, at, sortKey ORDER BY at DESC, sortKey DESC LIMIT $limit
    RETURN at, sortKey, 'interaction' AS kind, i AS node, c AS holder
    UNION ALL
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
    WITH DISTINCT d
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    WITH d, s, s.changedAt AS at, 'stage:' + s.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    WITH d, s, at, sortKey ORDER BY at DESC, sortKey DESC LIMIT $limit
    RETURN at, sortKey, 'stage_change' AS kind, s AS node, d AS holder
    UNION ALL
    MATCH (p)<-[:MERGED_INTO*0..50]-(:Profile)<-[:MERGED]-(m:MergeEvent)
    WITH DISTINCT m
    WITH m, m.at AS at, 'merge:' + m.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    RETURN at, sortKey, 'merge' AS kind, m AS node, null AS holder
    UNION ALL
    MATCH (p)<-[:SPLIT]-(e:SplitEvent)
    WITH e, e.at AS at, 'split:' + e.id AS sortKey
    WHERE req.afterAt IS NULL OR at < req.afterAt OR (at = req.afterAt AND sortKey < req.afterKey)
    RETURN at, sortKey, 'split' AS kind, e AS node, null AS holder
  }
  WITH at, sortKey, kind, node AS i, node AS s, node AS m, node AS e, holder AS c,
       CASE kind WHEN 'stage_change' THEN holder END AS d
  ORDER BY at DESC, sortKey DESC LIMIT $limit
  WITH collect({at: toString(at), sortKey: sortKey, kind: kind, item: CASE kind
    WHEN 'interaction' THEN """
        + interaction
        + """
    WHEN 'stage_change' THEN
      s {.id, .fromStage, .toStage, changedAt: toString(s.changedAt), dealId: d.id}
    WHEN 'merge' THEN
      m {.id, .survivorId, .mergedIds, .identifierKey, .recordKey, at: toString(m.at)}
    ELSE
      e {.id, .profileId, .newProfileIds, .reason, .identifierKey, .recordKey,
         at: toString(e.at)}
  END}) AS entries, collect(DISTINCT d) AS dealNodes
  RETURN entries, """
        + deals
        + """ AS stageDeals
"""
    )


_TIMELINE: Final = _timeline(_INTERACTION_PROJECTION, stage_deal=ALL_DEAL_PARTS)

TIMELINE_BY_PROFILE: Final = (
    """
UNWIND $requests AS req
CALL (req) {
  MATCH (p:Profile {id: req.profileId})"""
    + _TIMELINE
    + """}
RETURN req.key AS key, entries, stageDeals
"""
)

_TIMELINE_CONVERTERS: Final[dict[str, Any]] = {
    "interaction": interaction_row,
    "merge": merge_event_row,
    "split": split_event_row,
}


def _timeline_entries(
    entries: list[Mapping[str, Any]], stage_deals: list[Mapping[str, Any]]
) -> list[TimelineEntry]:
    """The page's entries; each stage change gets its deal, read once per deal."""
    deals = {str(d["id"]): deal_row(d) for d in stage_deals}
    found = []
    for e in entries:
        if e["at"] is None:
            continue
        kind, item = e["kind"], e["item"]
        row = (
            stage_change_row(item, deals.get(str(item["dealId"])))
            if kind == "stage_change"
            else _TIMELINE_CONVERTERS[kind](item)
        )
        found.append(
            TimelineEntry(at=required_datetime(e["at"]), sort_key=str(e["sortKey"]), item=row)
        )
    return found


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
        found = {r["key"]: _timeline_entries(r["entries"], r["stageDeals"]) for r in records}
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
    return _by_key(ids, records, "deal", deal_row)


async def deals_by_profile(reader: GraphReader, ids: Sequence[str]) -> list[list[DealRow]]:
    records = await reader.fetch(DEALS_BY_PROFILE, ids=list(ids))
    return _lists_by_key(ids, records, "deals", deal_row)


async def deals_by_account(reader: GraphReader, ids: Sequence[str]) -> list[list[DealRow]]:
    records = await reader.fetch(DEALS_BY_ACCOUNT, ids=list(ids))
    return _lists_by_key(ids, records, "deals", deal_row)


STAGE_HISTORY_BY_DEAL: Final = """
UNWIND $ids AS key
MATCH (d:Deal {id: key})
OPTIONAL MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
WITH key, d, s ORDER BY s.changedAt, s.id
RETURN key, toString(d.closedAt) AS closedAt,
       collect(s {.id, .fromStage, .toStage, changedAt: toString(s.changedAt), dealId: d.id})
       AS changes
"""


async def stage_history_by_deal(
    reader: GraphReader, ids: Sequence[str]
) -> list[list[StageChangeRow]]:
    """Chronological stage changes of each deal, with the time spent in each stage."""
    records = await reader.fetch(STAGE_HISTORY_BY_DEAL, ids=list(ids))
    found = {
        r["key"]: with_durations(
            [stage_change_row(m) for m in r["changes"]], to_datetime(r["closedAt"])
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


async def contacts_by_deal(reader: GraphReader, ids: Sequence[str]) -> list[list[DealContactRow]]:
    records = await reader.fetch(CONTACTS_BY_DEAL, ids=list(ids))
    return _lists_by_key(ids, records, "contacts", contact_row)


# ---------------------------------------------------------------------------------------------
# Accounts, memberships, owners

ACCOUNTS_BY_ID: Final = """
UNWIND $ids AS key
MATCH (a:Account {id: key})
RETURN key, a {.id, .name, .domain, ownerId: head([(o:Owner)-[:OWNS]->(a) | o.id])} AS account
"""


async def accounts_by_id(reader: GraphReader, ids: Sequence[str]) -> list[AccountRow | None]:
    records = await reader.fetch(ACCOUNTS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "account", account_row)


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
    return _lists_by_key(ids, records, "memberships", membership_row)


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
        found = {r["key"]: [membership_row(m) for m in r["members"]] for r in records}
        for i in indexes:
            rows = found.get(str(i), [])
            pages[i] = Page(items=rows[:first], has_next=len(rows) > first)
    return [pages[i] for i in range(len(keys))]


OWNERS_BY_ID: Final = """
UNWIND $ids AS key
MATCH (o:Owner {id: key})
RETURN key, o {.id, .name, .email} AS owner
"""


async def owners_by_id(reader: GraphReader, ids: Sequence[str]) -> list[OwnerRow | None]:
    records = await reader.fetch(OWNERS_BY_ID, ids=list(ids))
    return _by_key(ids, records, "owner", owner_row)


# ---------------------------------------------------------------------------------------------
# A profile with what its page shows, in one round trip


@dataclass(frozen=True, slots=True)
class TimelinePart:
    """The timeline page a profile page asks for (`first` from 0 to the page size limit).

    `interaction_keys` are the optional interaction keys to read (of OPTIONAL_INTERACTION_KEYS;
    None: all of them); `stage_deals` what a stage change's deal carries (None: no deal).
    A page read with less than all is for the selection that asked for it, not for a loader.
    """

    first: int
    after: Keyset | None = None
    interaction_keys: frozenset[str] | None = None
    stage_deals: DealParts | None = ALL_DEAL_PARTS

    @property
    def complete(self) -> bool:
        return self.interaction_keys is None and self.stage_deals == ALL_DEAL_PARTS


@dataclass(frozen=True, slots=True)
class ProfilePageKey:
    """A profile by id, and which of its parts to read with it (`deals`: what each deal
    carries, None: no deals)."""

    profile_id: str
    identifiers: bool = False
    deals: DealParts | None = None
    timeline: TimelinePart | None = None


@dataclass(frozen=True, slots=True)
class ProfilePage:
    """A profile and the parts asked for (None: not asked), keyed by its current id."""

    profile: ProfileRow
    identifiers: list[IdentifierRow] | None
    timeline: Page[TimelineEntry] | None
    deals: list[DealRow] | None


# The profile (a merged-away id gives the profile it was merged into) with the parts the GraphQL
# selection asks for: its identifiers, one timeline page and its deals (with stage history).
# Each part is computed only when asked (`$identifiers`, `$deals`, and `req` not null for the
# timeline), and comes out in the shape of the matching per-part read above, so the answer can
# fill those reads' DataLoaders (the timeline's items with the keys `_profile_pages` is given).
# Requests that share a timeline page size and projection share this query.
def _profile_pages(timeline: str, deals: DealParts = ALL_DEAL_PARTS) -> str:
    return (
        """
UNWIND $requests AS request
CALL (request) {
  MATCH (start:Profile {id: request.id})
  OPTIONAL MATCH (start)-[:MERGED_INTO*1..50]->(s:Profile)
  WHERE NOT (s)-[:MERGED_INTO]->(:Profile)
  RETURN coalesce(s, start) AS p
}
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(c:Customer)-[h:HAS_IDENTIFIER]->(i:Identifier)
  WHERE $identifiers
  WITH i, collect(DISTINCT c.source) AS sources, min(h.firstSeen) AS firstSeen,
       max(h.lastSeen) AS lastSeen, collect(coalesce(h.matched, true)) AS matched
  ORDER BY i.type, i.value
  RETURN collect("""
        + _IDENTIFIER_PROJECTION
        + """) AS identifiers
}
CALL (p, request) {
  WITH request.timeline AS req WHERE req IS NOT NULL"""
        + timeline
        + """}
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
  WHERE $deals
  WITH DISTINCT d
  ORDER BY d.createdAt DESC, d.id
  RETURN collect("""
        + _deal_projection(deals)
        + """) AS deals
}
RETURN request.key AS key,
       p {.id, .traits, .displayName, .email, .phone, .company,
          createdAt: toString(p.createdAt), updatedAt: toString(p.updatedAt)} AS profile,
       identifiers, entries, stageDeals, deals"""
    )


PROFILE_PAGES: Final = _profile_pages(_TIMELINE)

# The same, carrying the request's API key lookup (`KeyCheck`) on every row: a request for a
# profile page is then one round trip, its key confirmed included.
_KEY_LOOKUP: Final = (
    """
CALL () {
  OPTIONAL MATCH (k:ApiKey {hash: $keyHash})
  RETURN """
    + API_KEY_MAP
    + """ AS apiKey
}"""
)


@lru_cache(maxsize=256)
def profile_pages_query(
    interaction_keys: frozenset[str] | None,
    stage_deals: DealParts | None,
    with_key: bool,
    deals: DealParts = ALL_DEAL_PARTS,
) -> str:
    """The profile pages statement for one projection of the timeline and the deals (a handful
    of texts in all: one per shape of selection a client sends)."""
    if interaction_keys is not None:
        interaction_keys &= OPTIONAL_INTERACTION_KEYS
        if interaction_keys == OPTIONAL_INTERACTION_KEYS:
            interaction_keys = None
    if interaction_keys is None and stage_deals == ALL_DEAL_PARTS and deals == ALL_DEAL_PARTS:
        query = PROFILE_PAGES
    else:
        keys = INTERACTION_KEYS if interaction_keys is None else interaction_keys
        query = _profile_pages(_timeline(_interaction_projection(keys), stage_deals), deals)
    return _KEY_LOOKUP + query + ", apiKey" if with_key else query


async def profile_pages(
    reader: GraphReader, keys: Sequence[ProfilePageKey]
) -> list[ProfilePage | None]:
    """Profiles by id, each with the parts its key asks for; None for an unknown id."""
    pages: dict[int, ProfilePage] = {}
    groups: dict[
        tuple[bool, DealParts | None, int, frozenset[str] | None, DealParts | None], list[int]
    ]
    groups = defaultdict(list)
    for index, key in enumerate(keys):
        part = key.timeline
        size = part.first if part is not None else 0
        projection = (
            (part.interaction_keys, part.stage_deals)
            if part is not None
            else (None, ALL_DEAL_PARTS)
        )
        groups[(key.identifiers, key.deals, size, *projection)].append(index)
    for (identifiers, deals, size, interaction_keys, stage_deals), indexes in groups.items():
        requests = [
            {
                "key": str(i),
                "id": keys[i].profile_id,
                "timeline": _timeline_request(keys[i].timeline),
            }
            for i in indexes
        ]
        params: dict[str, Any] = {
            "requests": requests,
            "identifiers": identifiers,
            "deals": deals is not None,
            "limit": size + 1,
        }
        check = reader.key_check
        key_hash = check.claim() if check is not None else None
        try:
            query = profile_pages_query(
                interaction_keys,
                stage_deals,
                with_key=bool(key_hash),
                deals=deals if deals is not None else NO_DEAL_PARTS,  # not run: shortest
            )
            if key_hash:
                records = await reader.fetch(query, keyHash=key_hash, **params)
            else:
                records = await reader.fetch(query, **params)
        except BaseException:
            if check is not None and key_hash:
                check.not_carried()
            raise
        if check is not None and key_hash:
            if records:
                check.carried(records[0]["apiKey"])
            else:  # no profile: no row to carry the key
                check.not_carried()
        for r in records:
            i = int(r["key"])
            timeline = keys[i].timeline
            entries = (
                _timeline_entries(r["entries"], r["stageDeals"]) if timeline is not None else []
            )
            pages[i] = ProfilePage(
                profile=profile_row(r["profile"]),
                identifiers=(
                    [identifier_row(m) for m in r["identifiers"] if m is not None]
                    if identifiers
                    else None
                ),
                timeline=(
                    Page(items=entries[:size], has_next=len(entries) > size)
                    if timeline is not None
                    else None
                ),
                deals=(
                    [deal_row(m) for m in r["deals"] if m is not None]
                    if deals is not None
                    else None
                ),
            )
    return [pages.get(i) for i in range(len(keys))]


def _timeline_request(page: TimelinePart | None) -> dict[str, Any] | None:
    return _after_params(page.after) if page is not None else None
