"""The audit log of admin actions: `(:AuditEntry {id, at, actor, action, target, details})`.

Entries say who (the key id, or `cli`), when, what (`ACTIONS`), on what (a profile or record id, a
key id, or a keyed hash of an identifier) and how much (`details`, a JSON object of counts and
other non-personal facts). They never hold an email address or a phone number: `details` and
`target` are checked before they are written, and identifiers are named only by their type and a
keyed hash (`identifier_target`).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from neo4j import AsyncDriver, AsyncManagedTransaction, RoutingControl

from customer_graph.graph.driver import translate_unavailable
from customer_graph.logging import redact

ACTIONS: Final = frozenset(
    {
        "key.create",
        "key.revoke",
        "identifier.block",
        "identifier.unblock",
        "record.unmerge",
        "record.delete",
        "profile.delete",
    }
)
MAX_PAGE: Final = 100


class PiiInAuditError(ValueError):
    """An audit entry would have held an email address or a phone number."""


@dataclass(frozen=True, slots=True)
class AuditEntryRow:
    id: str
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


def new_audit_id() -> str:
    return "audit_" + uuid.uuid4().hex


def _checked(actor: str, action: str, target: str, details: Mapping[str, Any]) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    text = json.dumps(dict(details), sort_keys=True, default=str)
    for part in (actor, target, text):
        if redact(part) != part:
            raise PiiInAuditError(f"audit entry for {action} would hold personal data")
    return text


WRITE_AUDIT_ENTRY = """
MERGE (a:AuditEntry {id: $id})
  ON CREATE SET a.at = datetime.truncate('microsecond', datetime()), a.actor = $actor,
                a.action = $action, a.target = $target, a.details = $details
RETURN a {.id, .at, .actor, .action, .target, .details} AS entry
"""


async def write_audit_entry_tx(
    tx: AsyncManagedTransaction,
    *,
    entry_id: str,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
) -> AuditEntryRow:
    """Write one entry inside a caller's transaction (idempotent on `entry_id`)."""
    text = _checked(actor, action, target, details)
    result = await tx.run(
        WRITE_AUDIT_ENTRY, id=entry_id, actor=actor, action=action, target=target, details=text
    )
    record = await result.single(strict=True)
    return _row(record["entry"])


async def record_audit(
    driver: AsyncDriver,
    database: str,
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEntryRow:
    """Write one entry in its own transaction."""
    entry_id = new_audit_id()

    async def work(tx: AsyncManagedTransaction) -> AuditEntryRow:
        return await write_audit_entry_tx(
            tx, entry_id=entry_id, actor=actor, action=action, target=target, details=details or {}
        )

    async def run() -> AuditEntryRow:
        async with driver.session(database=database) as session:
            return await session.execute_write(work)

    return await translate_unavailable(run)


# Newest first; the cursor is the (at, id) of the last entry of the previous page.
LIST_AUDIT_ENTRIES = """
MATCH (a:AuditEntry)
WHERE $after_at IS NULL OR a.at < $after_at OR (a.at = $after_at AND a.id < $after_id)
WITH a ORDER BY a.at DESC, a.id DESC LIMIT $limit
RETURN a {.id, .at, .actor, .action, .target, .details} AS entry
"""
COUNT_AUDIT_ENTRIES = "MATCH (a:AuditEntry) RETURN count(a) AS n"


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntryRow]
    has_next: bool
    total_count: int


def encode_cursor(entry: AuditEntryRow) -> str:
    raw = json.dumps([entry.at.isoformat(), entry.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(at, id) of a cursor; ValueError for one this module did not make."""
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(entry_id)
    except (ValueError, TypeError) as e:
        raise ValueError("invalid cursor") from e


async def list_audit_entries(
    driver: AsyncDriver, database: str, *, first: int, after: str | None = None
) -> AuditPage:
    if not 1 <= first <= MAX_PAGE:
        raise ValueError(f"first must be between 1 and {MAX_PAGE}")
    after_at, after_id = decode_cursor(after) if after else (None, None)
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(
            LIST_AUDIT_ENTRIES,
            after_at=after_at,
            after_id=after_id,
            limit=first + 1,
            database_=database,
            routing_=RoutingControl.READ,
        )
    )
    counted, _, _ = await translate_unavailable(
        lambda: driver.execute_query(
            COUNT_AUDIT_ENTRIES, database_=database, routing_=RoutingControl.READ
        )
    )
    rows = [_row(r["entry"]) for r in records]
    return AuditPage(entries=rows[:first], has_next=len(rows) > first, total_count=counted[0]["n"])


def _row(entry: Mapping[str, Any]) -> AuditEntryRow:
    at = entry["at"]
    return AuditEntryRow(
        id=entry["id"],
        at=at if isinstance(at, datetime) else at.to_native(),
        actor=entry["actor"],
        action=entry["action"],
        target=entry["target"],
        details=json.loads(entry["details"] or "{}"),
    )
