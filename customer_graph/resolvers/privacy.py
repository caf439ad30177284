"""Resolvers of deleteProfile, exportProfile and auditLog (admin scope, see permissions.py)."""

from __future__ import annotations

from typing import Any

import strawberry

from customer_graph.graph import audit, privacy
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.errors import INVALID_CURSOR, ApiError
from customer_graph.resolvers.paging import check_first
from customer_graph.schema.node import PageInfo, raw_id_for
from customer_graph.schema.privacy import (
    AuditEntry,
    AuditEntryConnection,
    AuditEntryEdge,
    DeleteProfileInput,
    DeleteProfilePayload,
    DeletionCounts,
)
from customer_graph.schema.scalars import JSON
from customer_graph.schema.user_error import UserError

NOT_FOUND = "NOT_FOUND"


def actor_of(info: Info) -> str:
    principal = info.context.principal
    return principal.key_id if principal is not None else "unknown"


async def audit_admin_action(
    info: Info, action: str, target: str, details: dict[str, Any] | None = None
) -> None:
    """Record an admin action of this request's key in the audit log (no PII: see audit.py)."""
    ctx = info.context
    await audit.record_audit(
        ctx.driver,
        ctx.settings.neo4j_database,
        actor=actor_of(info),
        action=action,
        target=target,
        details=details,
    )


def _not_found() -> UserError:
    return UserError(field=["input", "id"], message="No profile has this id.", code=NOT_FOUND)


async def delete_profile(info: Info, input: DeleteProfileInput) -> DeleteProfilePayload:
    raw_id = raw_id_for("Profile", input.id)
    ctx = info.context
    deleted = (
        await privacy.delete_profile(ctx.driver, ctx.settings, raw_id, actor=actor_of(info))
        if raw_id
        else None
    )
    if deleted is None:
        return DeleteProfilePayload(
            deleted_profile_id=None, counts=None, audit_entry_id=None, user_errors=[_not_found()]
        )
    c = deleted.counts
    return DeleteProfilePayload(
        deleted_profile_id=strawberry.ID(deleted.deleted_profile_id),
        counts=DeletionCounts(
            records=c["records"],
            identifiers_deleted=c["identifiersDeleted"],
            identifiers_kept=c["identifiersKept"],
            interactions=c["interactions"],
            memberships=c["memberships"],
            deal_contacts=c["dealContacts"],
            identity_events=c["identityEvents"],
            dead_letters=c["deadLetters"],
            profiles=c["profiles"],
            suppressions=c["suppressions"],
        ),
        audit_entry_id=strawberry.ID(deleted.audit_id),
        user_errors=[],
    )


async def export_profile(info: Info, id: strawberry.ID) -> Any | None:
    raw_id = raw_id_for("Profile", id)
    if raw_id is None:
        return None
    return await privacy.export_profile(info.context.driver, info.context.settings, raw_id)


async def audit_log(info: Info, first: int, after: str | None = None) -> AuditEntryConnection:
    check_first(first)
    ctx = info.context
    try:
        page = await audit.list_audit_entries(
            ctx.driver, ctx.settings.neo4j_database, first=max(first, 1), after=after
        )
    except ValueError as e:
        raise ApiError("The cursor is not valid for this connection.", INVALID_CURSOR) from e
    entries = page.entries[:first]
    edges = [
        AuditEntryEdge(
            node=AuditEntry(
                id=strawberry.ID(e.id),
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                details=JSON(e.details),
            ),
            cursor=audit.encode_cursor(e),
        )
        for e in entries
    ]
    return AuditEntryConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next or len(page.entries) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total_count,
    )
