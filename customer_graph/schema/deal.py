"""Deals moving through a pipeline, their stage history and their contacts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from customer_graph.graph.rows import DealContactRow, DealRow, StageChangeRow
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.sync import awaited_by_graphql
from customer_graph.schema.account import Account, load_account
from customer_graph.schema.node import Node, to_global_id
from customer_graph.schema.owner import Owner, load_owner

if TYPE_CHECKING:
    from customer_graph.schema.profile import CustomerRecord, Profile


@strawberry.enum(description="Where a deal stands: still open, or closed as won or lost.")
class DealStatus(Enum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


def deal_status(value: str | None) -> DealStatus | None:
    try:
        return DealStatus(value.lower()) if value is not None else None
    except ValueError:
        return None


async def _linked(root: Deal, info: Info) -> DealRow | None:
    """The deal's row with its owner's and account's ids: a page read without them (for a
    selection that asked for neither) is completed from the deal loader."""
    if root.row.links_read:
        return root.row
    return await info.context.loaders.deal_by_id.load(root.row.id)


async def _owner(root: Deal, info: Info) -> Owner | None:
    row = await _linked(root, info)
    return await load_owner(info, row.owner_id if row is not None else None)


async def _account(root: Deal, info: Info) -> Account | None:
    row = await _linked(root, info)
    return await load_account(info, row.account_id if row is not None else None)


def _stage_history(root: Deal, info: Info) -> list[StageChange]:
    rows = root.row.stage_history
    if rows is None:
        return awaited_by_graphql(_load_stage_history(info, root.row.id))
    return [StageChange.from_row(r) for r in rows]


async def _load_stage_history(info: Info, deal_id: str) -> list[StageChange]:
    rows = await info.context.loaders.stage_history_by_deal.load(deal_id)
    return [StageChange.from_row(r) for r in rows]


async def _contacts(root: Deal, info: Info) -> list[DealContact]:
    rows = await info.context.loaders.contacts_by_deal.load(root.row.id)
    return [DealContact(row=r, role=r.role) for r in rows]


@strawberry.type(description="A deal (opportunity) with a customer or an account.")
class Deal(Node):
    row: strawberry.Private[DealRow]
    name: str | None
    amount: float | None
    currency: str | None
    pipeline: str | None
    stage: str | None
    status: DealStatus | None
    created_at: datetime | None
    closed_at: datetime | None
    owner: Owner | None = strawberry.field(resolver=_owner)
    account: Account | None = strawberry.field(resolver=_account)
    stage_history: list[StageChange] = strawberry.field(
        resolver=_stage_history, description="Every change of stage, oldest first."
    )
    contacts: list[DealContact] = strawberry.field(
        resolver=_contacts, description="The people on the deal, with their roles."
    )

    @classmethod
    def from_row(cls, row: DealRow) -> Deal:
        return cls(
            id=to_global_id("Deal", row.id),
            row=row,
            name=row.name,
            amount=row.amount,
            currency=row.currency,
            pipeline=row.pipeline,
            stage=row.stage,
            status=deal_status(row.status),
            created_at=row.created_at,
            closed_at=row.closed_at,
        )


def _stage_change_deal(root: StageChange, info: Info) -> Deal | None:
    if root.row.deal is not None:
        return Deal.from_row(root.row.deal)
    return awaited_by_graphql(load_deal(info, root.row.deal_id))


def _stage_change_duration(root: StageChange, info: Info) -> int | None:
    if root.row.timed:
        return root.row.duration_seconds
    # A change read from the timeline: its duration needs the deal's whole history.
    deal = root.row.deal
    history = deal.stage_history if deal is not None else None
    if history is None:
        return awaited_by_graphql(_load_duration(info, root.row))
    return _duration_in(history, root.row.id)


async def _load_duration(info: Info, row: StageChangeRow) -> int | None:
    history = await info.context.loaders.stage_history_by_deal.load(row.deal_id)
    return _duration_in(history, row.id)


def _duration_in(history: Iterable[StageChangeRow], change_id: str) -> int | None:
    return next((c.duration_seconds for c in history if c.id == change_id), None)


@strawberry.type(description="A deal moving from one stage to another.")
class StageChange:
    row: strawberry.Private[StageChangeRow]
    id: strawberry.ID
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    duration_seconds: int | None = strawberry.field(
        resolver=_stage_change_duration,
        description=(
            "Seconds the deal spent in `toStage`: until the next change, or until the deal "
            "closed; null while the deal is still in it."
        ),
    )
    deal: Deal | None = strawberry.field(resolver=_stage_change_deal)

    @classmethod
    def from_row(cls, row: StageChangeRow) -> StageChange:
        return cls(
            row=row,
            id=strawberry.ID(row.id),
            from_stage=row.from_stage,
            to_stage=row.to_stage,
            changed_at=row.changed_at,
        )


async def _contact_profile(
    root: DealContact, info: Info
) -> Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None:
    from customer_graph.schema.profile import load_profile

    return await load_profile(info, root.row.record.profile_id)


def _contact_record(
    root: DealContact,
) -> Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")]:
    from customer_graph.schema.profile import CustomerRecord

    return CustomerRecord.from_row(root.row.record)


@strawberry.type(description="A person on a deal, by the source record that names them.")
class DealContact:
    row: strawberry.Private[DealContactRow]
    role: str | None
    record: Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")] = (
        strawberry.field(resolver=_contact_record)
    )
    profile: Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None = (
        strawberry.field(resolver=_contact_profile)
    )


async def load_deal(info: Info, deal_id: str | None) -> Deal | None:
    if deal_id is None:
        return None
    row = await info.context.loaders.deal_by_id.load(deal_id)
    return Deal.from_row(row) if row is not None else None
