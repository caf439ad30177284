"""Mutation inputs and payloads: one input object each, a payload with the object and userErrors.

Expected problems (an invalid identifier, a deal that does not exist) come back as `userErrors`
with a machine-readable `code` and nothing written; only unexpected failures are GraphQL errors.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from customer_graph.resolvers.permissions import ReadScope
from customer_graph.schema.deal import Deal, DealStatus, StageChange
from customer_graph.schema.interaction import Interaction, InteractionType
from customer_graph.schema.profile import CustomerRecord, Identifier, Profile
from customer_graph.schema.scalars import JSON
from customer_graph.schema.user_error import UserError


@strawberry.input
class IdentifierInput:
    type: str = strawberry.field(description="email, phone, user_id, anonymous_id, device_id…")
    value: str = strawberry.field(description="Normalized like ingestion (emails, E.164 phones).")


@strawberry.input(description="What one source knows about one person, upserted by sourceId.")
class UpsertCustomerInput:
    source: str
    source_id: str
    traits: JSON | None = strawberry.field(
        default=None, description="A JSON object; merged into the record's traits."
    )
    identifiers: list[IdentifierInput] | None = strawberry.field(
        default=None,
        description=(
            "At most 50. A value that does not parse is an error; a blocked value (a "
            "placeholder like `unknown`) is accepted and links nothing."
        ),
    )
    seen_at: datetime | None = strawberry.field(
        default=None, description="When the source saw this; default now."
    )


@strawberry.type
class UpsertCustomerPayload:
    record: CustomerRecord | None = strawberry.field(permission_classes=[ReadScope])
    profile: Profile | None = strawberry.field(
        description="The profile the record resolved to.", permission_classes=[ReadScope]
    )
    user_errors: list[UserError]


@strawberry.input(description="A call, email, meeting, note, task or event of one source record.")
class RecordInteractionInput:
    source: str
    source_id: str = strawberry.field(description="The record it belongs to (must exist).")
    type: InteractionType
    id: strawberry.ID | None = strawberry.field(
        default=None, description="The source's id; sending it again updates, never duplicates."
    )
    occurred_at: datetime | None = strawberry.field(default=None, description="Default now.")
    name: str | None = None
    channel: str | None = None
    direction: str | None = None
    subject: str | None = None
    body: str | None = None
    duration_seconds: int | None = None
    properties: JSON | None = None
    owner_id: strawberry.ID | None = None
    deal_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None


@strawberry.type
class RecordInteractionPayload:
    interaction: Interaction | None = strawberry.field(permission_classes=[ReadScope])
    profile: Profile | None = strawberry.field(permission_classes=[ReadScope])
    user_errors: list[UserError]


@strawberry.input
class DealContactInput:
    source: str
    source_id: str
    role: str | None = None


@strawberry.input(description="A deal by its CRM id; fields left out keep their values.")
class UpsertDealInput:
    id: strawberry.ID
    name: str | None = None
    amount: float | None = None
    currency: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    status: DealStatus | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    owner_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    contacts: list[DealContactInput] | None = strawberry.field(
        default=None, description="People on the deal (records that exist), at most 50."
    )


@strawberry.type
class UpsertDealPayload:
    deal: Deal | None = strawberry.field(permission_classes=[ReadScope])
    user_errors: list[UserError]


@strawberry.input(description="Move a deal to a stage; the history records where it came from.")
class MoveDealStageInput:
    deal_id: strawberry.ID
    to_stage: str
    changed_at: datetime | None = strawberry.field(default=None, description="Default now.")
    status: DealStatus | None = strawberry.field(
        default=None, description="Close the deal as WON or LOST with this move."
    )


@strawberry.type
class MoveDealStagePayload:
    deal: Deal | None = strawberry.field(permission_classes=[ReadScope])
    stage_change: StageChange | None = strawberry.field(permission_classes=[ReadScope])
    user_errors: list[UserError]


@strawberry.input
class BlockIdentifierInput:
    type: str
    value: str
    reason: str | None = None


@strawberry.type
class BlockIdentifierPayload:
    identifier: Identifier | None = strawberry.field(permission_classes=[ReadScope])
    profiles: list[Profile] = strawberry.field(
        description="The profiles the identifier joined, after the split.",
        permission_classes=[ReadScope],
    )
    user_errors: list[UserError]


@strawberry.input(description="Take a record out of its profile into a profile of its own.")
class UnmergeRecordInput:
    record_id: strawberry.ID = strawberry.field(
        description="A CustomerRecord id, or its key `source:sourceId`."
    )
    reason: str | None = None


@strawberry.type
class UnmergeRecordPayload:
    record: CustomerRecord | None = strawberry.field(permission_classes=[ReadScope])
    profiles: list[Profile] = strawberry.field(
        description="The record's former profile and the profiles split from it.",
        permission_classes=[ReadScope],
    )
    user_errors: list[UserError]


# deleteProfile (right to erasure) lives with the other privacy types in schema/privacy.py.
