"""Owners: the sales reps who own deals, accounts and interactions."""

from __future__ import annotations

import strawberry

from customer_graph.graph.rows import OwnerRow
from customer_graph.resolvers.context import Info
from customer_graph.schema.node import Node, to_global_id


@strawberry.type(description="A sales rep who owns deals, accounts and interactions.")
class Owner(Node):
    owner_id: strawberry.Private[str]
    name: str | None
    email: str | None

    @classmethod
    def from_row(cls, row: OwnerRow) -> Owner:
        return cls(
            id=to_global_id("Owner", row.id), owner_id=row.id, name=row.name, email=row.email
        )


async def load_owner(info: Info, owner_id: str | None) -> Owner | None:
    if owner_id is None:
        return None
    row = await info.context.loaders.owner_by_id.load(owner_id)
    return Owner.from_row(row) if row is not None else None
