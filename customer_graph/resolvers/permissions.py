"""Scope permissions, declared on fields: `permission_classes=[ReadScope]` and the like.

The caller's `Principal` (its key's scopes) is put in the context by the HTTP and websocket
layers (security.py authenticates every GraphQL request; a request without a valid key never
answers over HTTP). A key the process has seen valid is confirmed by the graph while its request
runs; `WriteScope` and `AdminScope` wait for that confirmation before their field runs, so every
field that writes or audits must carry one of them. Inside GraphQL, a field the key's scopes do
not cover resolves to an error with `extensions.code` FORBIDDEN (or UNAUTHENTICATED when there is
no principal at all), and nothing behind it is read or written.

- `ReadScope`: every query field, `node()`/`nodes()`, subscriptions, and the object fields of
  mutation payloads (a write key, public in every browser that sends events, must not read
  profiles back through a mutation's answer);
- `WriteScope`: the data mutations (upsertCustomer, recordInteraction, upsertDeal, moveDealStage);
- `AdminScope`: blockIdentifier, unmergeRecord, deleteProfile, exportProfile, auditLog, keys.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from graphql import GraphQLError
from strawberry.permission import BasePermission

from customer_graph.auth import Principal, Scope
from customer_graph.resolvers.context import Info
from customer_graph.security import UNAUTHENTICATED

FORBIDDEN: Final = "FORBIDDEN"


def principal_of(info: Info) -> Principal | None:
    return info.context.principal


class ScopePermission(BasePermission):
    """Allows the field when the caller's key has `scope`."""

    scope: ClassVar[Scope]
    error_extensions = {"code": FORBIDDEN}

    def has_scope(self, info: Info) -> bool:
        principal = principal_of(info)
        if principal is None:
            raise GraphQLError(
                "An API key is required: send `Authorization: Bearer <key>`.",
                extensions={"code": UNAUTHENTICATED},
            )
        return principal.has(self.scope)


class ReadScope(ScopePermission):
    scope = Scope.READ
    message = "This API key lacks the `read` scope."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # A read may run while the key is being confirmed: its answer waits for the verdict.
        return self.has_scope(info)


class ConfirmedScopePermission(ScopePermission):
    """A scope for fields that change something (a write, an audit entry): before they run, the
    graph must have confirmed the key (security.py checks a known key beside the request)."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not self.has_scope(info):
            return False
        confirm = info.context.confirm_principal
        return confirm is None or await confirm()


class WriteScope(ConfirmedScopePermission):
    scope = Scope.WRITE
    message = "This API key lacks the `write` scope."


class AdminScope(ConfirmedScopePermission):
    scope = Scope.ADMIN
    message = "This API key lacks the `admin` scope."
