"""The dead-letter store: messages that failed on their own, with the reason, for replay.

`(:DeadLetter {id, source, messageId, kind, payload, reason, receivedAt, firstFailedAt,
lastFailedAt, status, replayedAt})`; `id` is the message's key (`source:messageId`), so a message
that fails again updates its entry instead of adding one. `payload` is the message as received
(JSON), which is what a replay maps and writes again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from neo4j import AsyncDriver, RoutingControl

from customer_graph.graph.driver import translate_unavailable

Status = Literal["pending", "replayed"]
MAX_REASON_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class DeadLetterIn:
    id: str
    source: str
    message_id: str
    kind: str  # what the payload is, e.g. "segment"
    payload: str  # JSON
    reason: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    source: str
    message_id: str
    kind: str
    payload: dict[str, Any]
    reason: str
    received_at: datetime
    first_failed_at: datetime
    last_failed_at: datetime
    status: Status
    replayed_at: datetime | None


RECORD_DEAD_LETTERS = """
UNWIND $rows AS row
MERGE (d:DeadLetter {id: row.id})
  ON CREATE SET d.firstFailedAt = datetime()
SET d.source = row.source, d.messageId = row.messageId, d.kind = row.kind,
    d.payload = row.payload, d.reason = row.reason, d.receivedAt = row.receivedAt,
    d.lastFailedAt = datetime(), d.status = 'pending', d.replayedAt = null
"""


async def record_dead_letters(
    driver: AsyncDriver, database: str, letters: Sequence[DeadLetterIn]
) -> None:
    rows = [
        {
            "id": d.id,
            "source": d.source,
            "messageId": d.message_id,
            "kind": d.kind,
            "payload": d.payload,
            "reason": d.reason[:MAX_REASON_CHARS],
            "receivedAt": d.received_at,
        }
        for d in letters
    ]
    if rows:
        await translate_unavailable(
            lambda: driver.execute_query(RECORD_DEAD_LETTERS, rows=rows, database_=database)
        )


LIST_DEAD_LETTERS = """
MATCH (d:DeadLetter)
WHERE ($status IS NULL OR d.status = $status) AND ($source IS NULL OR d.source = $source)
  AND ($ids IS NULL OR d.id IN $ids)
RETURN d {.id, .source, .messageId, .kind, .payload, .reason, .receivedAt, .firstFailedAt,
          .lastFailedAt, .status, .replayedAt} AS d
ORDER BY d.lastFailedAt, d.id
LIMIT $limit
"""


async def list_dead_letters(
    driver: AsyncDriver,
    database: str,
    *,
    status: Status | None = "pending",
    source: str | None = None,
    ids: Sequence[str] | None = None,
    limit: int = 100,
) -> list[DeadLetter]:
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(
            LIST_DEAD_LETTERS,
            status=status,
            source=source,
            ids=list(ids) if ids is not None else None,
            limit=limit,
            database_=database,
            routing_=RoutingControl.READ,
        )
    )
    return [_dead_letter(r["d"]) for r in records]


MARK_REPLAYED = """
UNWIND $ids AS id
MATCH (d:DeadLetter {id: id})
SET d.status = 'replayed', d.replayedAt = coalesce(d.replayedAt, datetime())
"""


async def mark_replayed(driver: AsyncDriver, database: str, ids: Sequence[str]) -> None:
    if ids:
        await translate_unavailable(
            lambda: driver.execute_query(MARK_REPLAYED, ids=list(ids), database_=database)
        )


def _dead_letter(d: dict[str, Any]) -> DeadLetter:
    replayed = d.get("replayedAt")
    return DeadLetter(
        id=d["id"],
        source=d["source"],
        message_id=d["messageId"],
        kind=d["kind"],
        payload=json.loads(d["payload"]),
        reason=d["reason"],
        received_at=d["receivedAt"].to_native(),
        first_failed_at=d["firstFailedAt"].to_native(),
        last_failed_at=d["lastFailedAt"].to_native(),
        status=d["status"],
        replayed_at=replayed.to_native() if replayed is not None else None,
    )
