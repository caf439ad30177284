"""Recompute the unified traits and search fields of profiles from their records."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from neo4j import AsyncManagedTransaction

from customer_graph.graph.normalize import normalize_email, normalize_phone
from customer_graph.graph.params import run
from customer_graph.graph.plans import KEEP_PLAN
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.survivorship import RecordTraits, display_fields, unify

# The identifier types whose matched values a profile shows (its email and phone).
CONTACT_TYPES: Final = ("email", "phone")

# Lock the profiles first (setting a property to its own value takes the write lock and changes
# nothing), so two writers refreshing one profile see each other's committed records.
LOCK_AND_READ_PROFILES = (
    KEEP_PLAN
    + """
UNWIND $ids AS id
MATCH (p:Profile {id: id})
WHERE NOT (p)-[:MERGED_INTO]->()
SET p.createdAt = p.createdAt
RETURN p.id AS id,
       p.traits AS traits, p.displayName AS displayName, p.email AS email, p.phone AS phone,
       p.company AS company,
       [(p)<-[:RESOLVES_TO]-(c) |
          {key: c.key, source: c.source, traits: c.traits, traitTimes: c.traitTimes,
           updatedAt: toString(c.updatedAt)}] AS records,
       [(p)<-[:RESOLVES_TO]-()-[h:HAS_IDENTIFIER]->(i)
          WHERE h.matched = true AND NOT i.blocked AND i.type IN ['email', 'phone'] |
          {type: i.type, value: i.value, lastSeen: toString(h.lastSeen)}] AS contacts
"""
)

WRITE_PROFILES = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MATCH (p:Profile {id: row.id})
SET p.traits = row.traits, p.displayName = row.displayName, p.email = row.email,
    p.phone = row.phone, p.company = row.company, p.updatedAt = $now
"""
)


# Sorted keys; dates, times and dataclasses through `str`, as anything else orjson does not know.
_CANONICAL: Final = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> str:
    """Canonical JSON, so equal traits are equal strings (and replays change nothing).

    Every write encodes each of its records' traits and their times, and every profile it
    refreshes: orjson does it in a tenth of the standard encoder's time. Text is UTF-8 as it
    came (no `\\u` escapes), and a number that is not finite (NaN, Infinity: not JSON) is
    null. Values with integers beyond 64 bits are beyond orjson; the standard encoder writes
    them (one value always takes the same path, so its text stays canonical).
    """
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL).decode()
    except TypeError:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )


def loads_map(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def loads_times(text: str | None) -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in loads_map(text).items() if isinstance(v, str)}


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else native(value)


def native(value: Any) -> datetime | None:
    """A driver DateTime as a timezone-aware Python datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    result: datetime = value.to_native()
    return result


def iso(value: datetime | None) -> str | None:
    """A time as a Cypher parameter: ISO text, turned back with datetime() in the statement.

    The driver encodes datetime objects in pure Python, an order of magnitude slower than text;
    a batch carries thousands of times.
    """
    return None if value is None else value.isoformat()


def parse_time(value: str | None) -> datetime | None:
    """A time Cypher's toString() gave (ISO 8601), as an aware datetime."""
    return datetime.fromisoformat(value) if value else None


def _latest(contacts: Iterable[Mapping[str, Any]], type_: str) -> str | None:
    best: tuple[datetime, str] | None = None
    for c in contacts:
        if c["type"] != type_:
            continue
        at = _time(c["lastSeen"]) or datetime.min.replace(tzinfo=UTC)
        if best is None or (at, c["value"]) > best:
            best = (at, c["value"])
    return None if best is None else best[1]


def profile_fields(
    records: Iterable[Mapping[str, Any]],
    contacts: Iterable[Mapping[str, Any]],
    config: ResolutionConfig,
) -> dict[str, Any]:
    """The stored fields of a profile (traits JSON, displayName, email, phone, company)."""
    traits = unify(
        [
            RecordTraits(
                key=r["key"],
                source=r["source"],
                traits=loads_map(r["traits"]),
                trait_times=loads_times(r["traitTimes"]),
                updated_at=_time(r["updatedAt"]),
            )
            for r in records
        ],
        config.survivorship,
        default_rule=config.default_survivorship,
        source_priority=config.source_priority,
    )
    raw_email = traits.get("email")
    email = normalize_email(raw_email) if isinstance(raw_email, str) else None
    raw_phone = traits.get("phone")
    phone = (
        normalize_phone(raw_phone, config.default_region) if isinstance(raw_phone, str) else None
    )
    email = email or _latest(contacts, "email")
    phone = phone or _latest(contacts, "phone")
    display = display_fields(traits)
    return {
        "traits": dumps(traits),
        "displayName": display["displayName"] or email,
        "email": email,
        "phone": phone,
        "company": display["company"],
    }


async def refresh_profiles(
    tx: AsyncManagedTransaction, profile_ids: Iterable[str], config: ResolutionConfig
) -> set[str]:
    """Recompute the given live profiles; return the ids whose stored fields changed."""
    ids = sorted(set(profile_ids))
    if not ids:
        return set()
    result = await run(tx, LOCK_AND_READ_PROFILES, ids=ids)
    rows = []
    async for rec in result:
        fields = profile_fields(rec["records"], rec["contacts"], config)
        current = {k: rec[k] for k in ("traits", "displayName", "email", "phone", "company")}
        if fields != current:
            rows.append({"id": rec["id"], **fields})
    if rows:
        await run(tx, WRITE_PROFILES, rows=rows, now=datetime.now(UTC))
    return {r["id"] for r in rows}
