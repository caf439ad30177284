"""Writes of everything around the records: owners, accounts, deals, stage changes, memberships
and interactions. Called by graph/writes.py inside the batch's transaction.

Every statement MERGEs on a constrained key and sets only the fields the batch carries, so a
partial update leaves the other fields alone and a replay changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from neo4j import AsyncManagedTransaction

from customer_graph.graph.params import run
from customer_graph.graph.plans import KEEP_PLAN
from customer_graph.graph.profile_refresh import dumps, iso
from customer_graph.graph.records import (
    AccountIn,
    DealIn,
    InteractionIn,
    StageChangeIn,
    WriteBatch,
    customer_key,
)

UPSERT_OWNERS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MERGE (o:Owner {id: row.id})
SET o += row.props
"""
)

READ_ACCOUNT_TRAITS = (
    KEEP_PLAN
    + """
UNWIND $ids AS id
MATCH (a:Account {id: id})
RETURN a.id AS id, a.traits AS traits
"""
)

# Ownership is exclusive: a new owner replaces the old OWNS edge.
UPSERT_ACCOUNTS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MERGE (a:Account {id: row.id})
  ON CREATE SET a.traits = '{}'
SET a += row.props
WITH a, row
CALL (a, row) {
  WITH a, row WHERE row.ownerId IS NOT NULL
  MERGE (o:Owner {id: row.ownerId})
  MERGE (o)-[:OWNS]->(a)
  WITH a, o
  MATCH (other:Owner)-[r:OWNS]->(a) WHERE other <> o
  DELETE r
}
"""
)

# Times travel as ISO text (datetime() turns them back): the driver encodes text far faster.
UPSERT_DEALS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MERGE (d:Deal {id: row.id})
  ON CREATE SET d.createdAt = coalesce(datetime(row.createdAt), $now)
SET d += row.props, d.closedAt = coalesce(datetime(row.closedAt), d.closedAt)
WITH d, row
CALL (d, row) {
  WITH d, row WHERE row.ownerId IS NOT NULL
  MERGE (o:Owner {id: row.ownerId})
  MERGE (o)-[:OWNS]->(d)
  WITH d, o
  MATCH (other:Owner)-[r:OWNS]->(d) WHERE other <> o
  DELETE r
}
CALL (d, row) {
  WITH d, row WHERE row.accountId IS NOT NULL
  MERGE (a:Account {id: row.accountId})
    ON CREATE SET a.traits = '{}'
  MERGE (d)-[:FOR_ACCOUNT]->(a)
  WITH d, a
  MATCH (d)-[r:FOR_ACCOUNT]->(other:Account) WHERE other <> a
  DELETE r
}
"""
)

LINK_DEAL_CONTACTS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MATCH (d:Deal {id: row.dealId})
MATCH (c:Customer {key: row.customerKey})
MERGE (c)-[r:CONTACT_ON]->(d)
SET r.role = coalesce(row.role, r.role)
"""
)

# A stage change moves the deal's current stage only if it is the latest one known.
UPSERT_STAGE_CHANGES = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
WITH row, datetime(row.changedAt) AS changedAt
MERGE (d:Deal {id: row.dealId})
  ON CREATE SET d.createdAt = changedAt
MERGE (s:StageChange {id: row.id})
  ON CREATE SET s.fromStage = row.fromStage, s.toStage = row.toStage, s.changedAt = changedAt
MERGE (d)-[:HAD_STAGE_CHANGE]->(s)
WITH d, row, changedAt
WHERE d.stageChangedAt IS NULL OR d.stageChangedAt <= changedAt
SET d.stage = row.toStage, d.stageChangedAt = changedAt
"""
)

UPSERT_MEMBERSHIPS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MATCH (c:Customer {key: row.customerKey})
MERGE (a:Account {id: row.accountId})
  ON CREATE SET a.traits = '{}'
MERGE (c)-[m:MEMBER_OF]->(a)
SET m += row.props, m.startDate = coalesce(datetime(row.startDate), m.startDate),
    m.endDate = coalesce(datetime(row.endDate), m.endDate)
"""
)

# The records were locked earlier in the transaction; they are found by element id (no index).
UPSERT_INTERACTIONS = (
    KEEP_PLAN
    + """
UNWIND $rows AS row
MATCH (c:Customer) WHERE elementId(c) = row.customerNode
MERGE (n:Interaction {id: row.id})
SET n += row.props, n.occurredAt = datetime(row.occurredAt)
MERGE (c)-[:HAD]->(n)
WITH c, n, row
CALL (c, n) {
  MATCH (other:Customer)-[r:HAD]->(n) WHERE other <> c
  DELETE r
}
CALL (n, row) {
  WITH n, row WHERE row.ownerId IS NOT NULL
  MERGE (o:Owner {id: row.ownerId})
  MERGE (o)-[:OWNS]->(n)
}
CALL (n, row) {
  WITH n, row WHERE row.dealId IS NOT NULL
  MERGE (d:Deal {id: row.dealId})
    ON CREATE SET d.createdAt = n.occurredAt
  MERGE (n)-[:ABOUT_DEAL]->(d)
}
CALL (n, row) {
  WITH n, row WHERE row.accountId IS NOT NULL
  MERGE (a:Account {id: row.accountId})
    ON CREATE SET a.traits = '{}'
  MERGE (n)-[:WITH_ACCOUNT]->(a)
}
"""
)


def _props(**values: Any) -> dict[str, Any]:
    """Only the fields a record carries, so partial updates keep the others."""
    return {k: v for k, v in values.items() if v is not None}


def referenced_customers(batch: WriteBatch) -> list[tuple[str, str]]:
    """(source, source_id) of every record the batch's activity refers to, in order."""
    refs: dict[tuple[str, str], None] = {}
    for i in batch.interactions:
        refs[(i.source, i.customer_source_id)] = None
    for m in batch.memberships:
        refs[(m.source, m.source_id)] = None
    for d in batch.deals:
        for c in d.contacts:
            refs[(c.source, c.source_id)] = None
    return list(refs)


def stage_change_id(change: StageChangeIn) -> str:
    return f"{change.deal_id}|{change.to_stage}|{change.changed_at.isoformat()}"


def _deal_row(d: DealIn) -> dict[str, Any]:
    return {
        "id": d.id,
        "createdAt": iso(d.created_at),
        "closedAt": iso(d.closed_at),
        "ownerId": d.owner_id,
        "accountId": d.account_id,
        "props": _props(
            name=d.name,
            amount=d.amount,
            currency=d.currency,
            pipeline=d.pipeline,
            stage=d.stage,
            status=d.status,
            source=d.source,
        ),
    }


def _interaction_row(i: InteractionIn, record_nodes: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": i.id,
        "customerNode": record_nodes[customer_key(i.source, i.customer_source_id)],
        "ownerId": i.owner_id,
        "dealId": i.deal_id,
        "accountId": i.account_id,
        "occurredAt": i.occurred_at.isoformat(),
        "props": _props(
            type=i.type,
            name=i.name,
            channel=i.channel,
            direction=i.direction,
            subject=i.subject,
            body=i.body,
            durationSeconds=i.duration_seconds,
            properties=dumps(i.properties),
            source=i.source,
            messageId=i.message_id,
        ),
    }


async def _account_rows(
    tx: AsyncManagedTransaction, accounts: tuple[AccountIn, ...]
) -> list[dict[str, Any]]:
    with_traits = [a.id for a in accounts if a.traits]
    stored: dict[str, dict[str, Any]] = {}
    if with_traits:
        result = await run(tx, READ_ACCOUNT_TRAITS, ids=with_traits)
        async for r in result:
            stored[r["id"]] = json.loads(r["traits"] or "{}")
    rows = []
    for a in accounts:
        traits = None
        if a.traits:
            merged = stored.setdefault(a.id, {})
            merged.update({k: v for k, v in a.traits.items() if v is not None})
            traits = json.dumps(merged, sort_keys=True, default=str)
        rows.append(
            {
                "id": a.id,
                "ownerId": a.owner_id,
                "props": _props(name=a.name, domain=a.domain, source=a.source, traits=traits),
            }
        )
    return rows


async def write_before_customers(
    tx: AsyncManagedTransaction, batch: WriteBatch, now: datetime
) -> None:
    """Owners, accounts and deals: what records and activity point at."""
    if batch.owners:
        await run(
            tx,
            UPSERT_OWNERS,
            rows=[{"id": o.id, "props": _props(name=o.name, email=o.email)} for o in batch.owners],
        )
    if batch.accounts:
        await run(tx, UPSERT_ACCOUNTS, rows=await _account_rows(tx, batch.accounts))
    if batch.deals:
        await run(tx, UPSERT_DEALS, rows=[_deal_row(d) for d in batch.deals], now=now)


async def write_after_customers(
    tx: AsyncManagedTransaction,
    batch: WriteBatch,
    now: datetime,
    record_nodes: Mapping[str, str],
) -> None:
    """Memberships, deal contacts, interactions and stage changes, once records exist.

    `record_nodes` holds the element id of every record the batch refers to, by key."""
    if batch.memberships:
        rows = [
            {
                "customerKey": customer_key(m.source, m.source_id),
                "accountId": m.account_id,
                "startDate": iso(m.start_date),
                "endDate": iso(m.end_date),
                "props": _props(
                    title=m.title,
                    roles=list(m.roles) if m.roles else None,
                    primary=m.primary,
                ),
            }
            for m in batch.memberships
        ]
        await run(tx, UPSERT_MEMBERSHIPS, rows=rows)
    contacts = [
        {"dealId": d.id, "customerKey": customer_key(c.source, c.source_id), "role": c.role}
        for d in batch.deals
        for c in d.contacts
    ]
    if contacts:
        await run(tx, LINK_DEAL_CONTACTS, rows=contacts)
    if batch.interactions:
        rows = [_interaction_row(i, record_nodes) for i in batch.interactions]
        await run(tx, UPSERT_INTERACTIONS, rows=rows)
    if batch.stage_changes:
        changes: list[dict[str, Any]] = [
            {
                "id": stage_change_id(s),
                "dealId": s.deal_id,
                "fromStage": s.from_stage,
                "toStage": s.to_stage,
                "changedAt": s.changed_at.isoformat(),
            }
            for s in batch.stage_changes
        ]
        await run(tx, UPSERT_STAGE_CHANGES, rows=changes)
