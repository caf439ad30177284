"""Scope permissions, declared on fields: `permission_classes=[ReadScope]` and the like.

The caller's `Principal` (its key's scopes) is put in the context by the HTTP and websocket
layers (security.py authenticates every GraphQL request; a request without a valid key never
reaches a resolver over HTTP). Inside GraphQL, a field the key's scopes do not cover resolves to
an error with `extensions.code` FORBIDDEN (or UNAUTHENTICATED when there is no principal at all),
and nothing behind it is read or written.

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

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
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


class WriteScope(ScopePermission):
    scope = Scope.WRITE
    message = "This API key lacks the `write` scope."


class AdminScope(ScopePermission):
    scope = Scope.ADMIN
    message = "This API key lacks the `admin` scope."
