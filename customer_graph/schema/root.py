"""The root Query and Mutation types and the Schema object."""

from __future__ import annotations

import strawberry

from customer_graph import __version__


def resolve_version() -> str:
    return __version__


@strawberry.type
class Query:
    version: str = strawberry.field(
        resolver=resolve_version, description="The running service's version."
    )


schema = strawberry.Schema(query=Query)
