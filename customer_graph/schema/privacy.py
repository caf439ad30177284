"""Privacy and audit in the schema: deleteProfile, exportProfile and auditLog (all admin)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from customer_graph.schema.node import PageInfo
from customer_graph.schema.scalars import JSON
from customer_graph.schema.user_error import UserError


@strawberry.input(description="The profile to erase: its id, current or merged-away.")
class DeleteProfileInput:
    id: strawberry.ID


@strawberry.type(description="What an erasure removed.")
class DeletionCounts:
    records: int
    identifiers_deleted: int = strawberry.field(
        description="Identifiers no other profile held: deleted and suppressed."
    )
    identifiers_kept: int = strawberry.field(
        description="Identifiers other profiles hold too: kept, unlinked from this person."
    )
    interactions: int
    memberships: int
    deal_contacts: int
    identity_events: int
    dead_letters: int
    profiles: int
    suppressions: int


@strawberry.type
class DeleteProfilePayload:
    deleted_profile_id: strawberry.ID | None
    counts: DeletionCounts | None
    audit_entry_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type(description="One admin action: who, when, what, on what; never personal data.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor: str = strawberry.field(description="The id of the key that acted, or `cli`.")
    action: str = strawberry.field(
        description="key.create, key.revoke, identifier.block, record.unmerge, profile.delete, …"
    )
    target: str = strawberry.field(
        description="What it acted on: profile:<id>, key:<id>, record:<hash>, identifier:<hash>."
    )
    details: JSON


@strawberry.type
class AuditEntryEdge:
    node: AuditEntry
    cursor: str


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo
    total_count: int
