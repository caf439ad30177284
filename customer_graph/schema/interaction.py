"""Interactions: calls, emails, meetings, notes, tasks, tracked events, page and screen views."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Final

import strawberry

from customer_graph.graph.reads import OPTIONAL_INTERACTION_KEYS
from customer_graph.graph.rows import InteractionFilter, InteractionRow
from customer_graph.resolvers.context import Info
from customer_graph.schema.node import Node, PageInfo, to_global_id
from customer_graph.schema.owner import Owner
from customer_graph.schema.scalars import JSON

if TYPE_CHECKING:
    from customer_graph.schema.account import Account
    from customer_graph.schema.deal import Deal
    from customer_graph.schema.profile import CustomerRecord, Profile


# The row keys (graph/reads.py INTERACTION_KEYS) that each field of Interaction reads, beyond
# the id, type and time that every read has: a read for a selection naming none of a key's
# fields leaves that key out (tests/unit/test_page_projection.py keeps this table whole).
FIELD_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "name": ("name",),
    "channel": ("channel",),
    "direction": ("direction",),
    "subject": ("subject",),
    "body": ("body",),
    "durationSeconds": ("durationSeconds",),
    "properties": ("properties",),
    "source": ("source",),
    "messageId": ("messageId",),
    "owner": ("owner",),
    "deal": ("dealId",),
    "account": ("accountId",),
    "record": ("recordKey",),
    "profile": ("recordKey",),
}
ALWAYS_READ: Final = frozenset({"id", "type", "occurredAt"})


def interaction_keys(names: Iterable[str]) -> frozenset[str]:
    """The optional row keys (OPTIONAL_INTERACTION_KEYS) a selection whose field names are
    `names` may need; the others are always read."""
    needed = {key for name in names for key in FIELD_KEYS.get(name, ())}
    return frozenset(needed & OPTIONAL_INTERACTION_KEYS)


@strawberry.enum(description="What kind of interaction it was.")
class InteractionType(Enum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    OTHER = "other"


def interaction_type(value: str) -> InteractionType:
    try:
        return InteractionType(value.lower())
    except ValueError:
        return InteractionType.OTHER


async def _deal(
    root: Interaction, info: Info
) -> Annotated[Deal, strawberry.lazy("customer_graph.schema.deal")] | None:
    from customer_graph.schema.deal import load_deal

    return await load_deal(info, root.row.deal_id)


async def _account(
    root: Interaction, info: Info
) -> Annotated[Account, strawberry.lazy("customer_graph.schema.account")] | None:
    from customer_graph.schema.account import load_account

    return await load_account(info, root.row.account_id)


async def _record(
    root: Interaction, info: Info
) -> Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")] | None:
    from customer_graph.schema.profile import load_record

    return await load_record(info, root.row.record_key)


async def _profile(
    root: Interaction, info: Info
) -> Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None:
    from customer_graph.schema.profile import load_profile

    if root.row.record_key is None:
        return None
    record = await info.context.loaders.record_by_key.load(root.row.record_key)
    return await load_profile(info, record.profile_id if record is not None else None)


@strawberry.type(description="Something that happened with a customer, at a point in time.")
class Interaction(Node):
    row: strawberry.Private[InteractionRow]
    type: InteractionType
    occurred_at: datetime
    name: str | None = strawberry.field(description="Event name of a tracked event or a page.")
    channel: str | None
    direction: str | None = strawberry.field(description="`inbound` or `outbound`.")
    subject: str | None
    body: str | None
    duration_seconds: int | None
    properties: JSON
    source: str | None
    message_id: str | None = strawberry.field(
        description="The tracking message that recorded it, if any."
    )
    # Read with the interaction: a plain field (no resolver call per item of a timeline).
    owner: Owner | None = strawberry.field(description="The CRM user who owns it, if any.")
    deal: Annotated[Deal, strawberry.lazy("customer_graph.schema.deal")] | None = strawberry.field(
        resolver=_deal, description="The deal it was about, if any."
    )
    account: Annotated[Account, strawberry.lazy("customer_graph.schema.account")] | None = (
        strawberry.field(resolver=_account, description="The account it was with, if any.")
    )
    record: Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")] | None = (
        strawberry.field(resolver=_record, description="The source record it belongs to.")
    )
    profile: Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None = (
        strawberry.field(resolver=_profile)
    )

    @classmethod
    def from_row(cls, row: InteractionRow) -> Interaction:
        return cls(
            id=to_global_id("Interaction", row.id),
            row=row,
            type=interaction_type(row.type),
            occurred_at=row.occurred_at,
            name=row.name,
            channel=row.channel,
            direction=row.direction,
            subject=row.subject,
            body=row.body,
            duration_seconds=row.duration_seconds,
            properties=JSON(row.properties),
            source=row.source,
            message_id=row.message_id,
            owner=Owner.from_row(row.owner) if row.owner is not None else None,
        )


@strawberry.type
class InteractionEdge:
    cursor: str
    node: Interaction


async def _total_count(root: InteractionConnection, info: Info) -> int:
    return await info.context.loaders.interaction_count_by_profile.load(root.filter)


@strawberry.type(description="A page of interactions, newest first.")
class InteractionConnection:
    filter: strawberry.Private[InteractionFilter]
    edges: list[InteractionEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(
        resolver=_total_count, description="How many interactions match, over all pages."
    )

    @strawberry.field
    def nodes(self) -> list[Interaction]:
        return [e.node for e in self.edges]


async def load_interaction(info: Info, interaction_id: str) -> Interaction | None:
    row = await info.context.loaders.interaction_by_id.load(interaction_id)
    return Interaction.from_row(row) if row is not None else None
