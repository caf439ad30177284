"""The short path for plain leaf fields answers exactly what graphql-core's own execution does."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from customer_graph.resolvers.execution import LeafFastExecutionContext


@strawberry.enum
class Kind(enum.Enum):
    CALL = "call"
    EMAIL = "email"


@strawberry.type
class Item:
    id: strawberry.ID
    kind: Kind
    at: datetime
    count: int
    score: float | None
    flags: list[bool]
    tags: list[str | None]
    data: JSON
    name: str  # non-null: a None here must be graphql-core's error, with its path

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times if self.name else ""


GOOD = Item(
    id=strawberry.ID("a"),
    kind=Kind.CALL,
    at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    count=3,
    score=None,
    flags=[True, False],
    tags=["x", None],  # a null item where items may be null
    data={"k": [1, "x"]},
    name="ada",
)
# Each spoils one field: a value its enum cannot represent, an Int beyond 32 bits, a null in a
# non-null field. Each must be graphql-core's error, located at its own path.
ITEMS = [
    GOOD,
    dataclasses.replace(GOOD, id="b", kind="not a kind", score=1.5, data=None),
    dataclasses.replace(GOOD, id="c", count=2**40, flags=[]),
    dataclasses.replace(GOOD, id="d", name=None),
    dataclasses.replace(GOOD, id="e", flags=[True, None]),  # a null item where none may be
    dataclasses.replace(GOOD, id="f", tags=("a", "b")),  # a tuple is a list too
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return list(ITEMS)

    @strawberry.field
    def first(self) -> Item:
        return ITEMS[0]


QUERY = """
{
  items { __typename id kind at count score flags tags data name shout(times: 2) alias: count }
  first { ...F kind }
}
fragment F on Item { id name at }
"""


def _run(context: type[StrawberryGraphQLCoreExecutionContext]) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, execution_context_class=context)
    result = schema.execute_sync(QUERY)
    return {
        "data": result.data,
        "errors": sorted(
            (
                e.message,
                tuple(e.path or ()),
                tuple((loc.line, loc.column) for loc in e.locations or ()),
            )
            for e in result.errors or ()
        ),
    }


def test_the_short_path_answers_what_graphql_core_answers() -> None:
    fast = _run(LeafFastExecutionContext)
    assert fast == _run(StrawberryGraphQLCoreExecutionContext)
    assert fast["data"]["first"] == {
        "id": "a",
        "name": "ada",
        "at": "2026-01-02T03:04:05+00:00",
        "kind": "CALL",
    }
    assert fast["data"]["items"][0]["shout"] == "ADAADA"
    assert [item is None for item in fast["data"]["items"]] == [
        False,
        True,
        True,
        True,
        True,
        False,
    ]
    assert fast["data"]["items"][0]["tags"] == ["x", None]
    assert fast["data"]["items"][5]["tags"] == ["a", "b"]
    assert sorted(path for _, path, _ in fast["errors"]) == [
        ("items", 1, "kind"),
        ("items", 2, "count"),
        ("items", 3, "name"),
        ("items", 4, "flags", 1),
    ]
