"""The short path for plain leaf fields answers exactly what graphql-core's own execution does."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import gc
from datetime import UTC, datetime
from inspect import isawaitable
from typing import Annotated, Any

import graphql.execution.executor as executor_module
import pytest
import strawberry
from graphql import DocumentNode, parse
from graphql import execute as graphql_execute
from graphql.execution.executor import Executor
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

import customer_graph.resolvers.execution as execution_module
from customer_graph.resolvers.execution import LeafFastExecutionContext, direct_resolvers


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


# Objects, lists of objects and union members: completed by the short path when each value's
# type is known up front, by graphql-core otherwise; the answers and errors must be the same.


@strawberry.type
class Owner:
    name: str  # non-null: a None here nulls the nearest nullable parent
    email: str | None


@strawberry.type
class Note:
    text: str
    owner: Owner
    owners: list[Owner]
    backup: Owner | None

    @strawberry.field
    async def loud(self) -> str:  # awaited inside objects inside lists
        await asyncio.sleep(0)
        if self.text == "boom":
            raise ValueError("no loud boom")
        return self.text.upper()


def _call_label(root: Call, info: strawberry.Info) -> str:  # the source as `root`, and info
    return f"{info.field_name} of {root.minutes}"


@strawberry.type
class Call:
    minutes: int
    owner: Owner | None
    label: str = strawberry.field(resolver=_call_label)


Entry = Annotated[Note | Call, strawberry.union("Entry")]


@strawberry.type
class Edge:
    cursor: str
    node: Entry


@strawberry.type
class Stray:  # in no union: a value of the wrong type for `Entry`
    text: str


class Nobody(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Guarded:  # fields without a resolver but with a permission: never a plain read
    open: str
    owner: Owner | None = strawberry.field(permission_classes=[Nobody])
    owners: list[Owner] | None = strawberry.field(permission_classes=[Nobody])
    secret: str | None = strawberry.field(permission_classes=[Nobody])

    @strawberry.field(permission_classes=[Nobody])
    def hidden(self) -> str | None:  # a resolver with a permission: never called directly
        return "h"


ADA = Owner(name="ada", email="ada@example.com")
NOBODY = Owner(name=None, email=None)  # type: ignore[arg-type]


def _note(text: str, owners: list[Owner] | None = None, owner: Owner = ADA) -> Note:
    return Note(text=text, owner=owner, owners=owners or [ADA], backup=None)


@strawberry.type
class Graph:
    @strawberry.field
    def edges(self) -> list[Edge] | None:
        return [
            Edge(cursor="1", node=_note("hi", [ADA, ADA])),
            Edge(cursor="2", node=Call(minutes=3, owner=ADA)),
            Edge(cursor="3", node=Call(minutes=4, owner=None)),
        ]

    @strawberry.field
    def broken_owner(self) -> list[Edge] | None:  # a null deep in a list of non-null items
        return [Edge(cursor="1", node=_note("hi", [ADA, NOBODY]))]

    @strawberry.field
    def loud_failure(self) -> list[Edge] | None:  # an awaited error deep in a list
        return [Edge(cursor="1", node=_note("hi")), Edge(cursor="2", node=_note("boom"))]

    @strawberry.field
    def nullable_items(self) -> list[Owner | None]:
        return [ADA, None, NOBODY]

    @strawberry.field
    def wrong_member(self) -> Entry | None:
        return Stray(text="x")  # type: ignore[return-value]

    @strawberry.field
    def wrong_object(self) -> Owner | None:
        return Stray(text="x")  # type: ignore[return-value]

    @strawberry.field
    def edge(self) -> Edge:
        return Edge(cursor="9", node=_note("one", owner=NOBODY))

    @strawberry.field
    def guarded(self) -> Guarded:
        return Guarded(open="yes", owner=ADA, owners=[ADA], secret="s3cret")


OBJECT_QUERY = """
fragment O on Owner { name email }
{
  edges {
    cursor
    node {
      __typename
      ... on Note { text loud owner { ...O } owners { name } backup { name } }
      ... on Call { minutes callOwner: owner { ...O } label }
    }
  }
  brokenOwner { cursor node { ... on Note { text owners { name } } } }
  loudFailure { cursor node { ... on Note { text loud } } }
  nullableItems { name }
  wrongMember { __typename }
  wrongObject { name }
  again: edges { node { ... on Call { minutes } } }
  guarded { open owner { name } owners { name } secret hidden }
}
"""


async def _run_objects(
    context: type[StrawberryGraphQLCoreExecutionContext], direct: bool = False
) -> dict[str, Any]:
    schema = strawberry.Schema(query=Graph, execution_context_class=context)
    if direct:
        # Every resolver without arguments or permission: Graph's, Note.loud, Call.label.
        assert direct_resolvers(schema) == 10
    result = await schema.execute(OBJECT_QUERY)
    return {
        "data": result.data,
        "errors": sorted((e.message, tuple(e.path or ())) for e in result.errors or ()),
    }


async def test_objects_lists_and_unions_answer_what_graphql_core_answers() -> None:
    fast = await _run_objects(LeafFastExecutionContext)
    assert fast == await _run_objects(StrawberryGraphQLCoreExecutionContext)
    assert fast == await _run_objects(LeafFastExecutionContext, direct=True)
    data = fast["data"]
    assert data["edges"][0] == {
        "cursor": "1",
        "node": {
            "__typename": "Note",
            "text": "hi",
            "loud": "HI",
            "owner": {"name": "ada", "email": "ada@example.com"},
            "owners": [{"name": "ada"}, {"name": "ada"}],
            "backup": None,
        },
    }
    assert data["edges"][2]["node"] == {
        "__typename": "Call",
        "minutes": 4,
        "callOwner": None,
        "label": "label of 4",
    }
    assert data["again"] == [{"node": {}}, {"node": {"minutes": 3}}, {"node": {"minutes": 4}}]
    # Errors null the nearest nullable parent, located at their own paths.
    assert data["brokenOwner"] is None and data["loudFailure"] is None
    assert data["nullableItems"] == [{"name": "ada"}, None, None]
    assert data["wrongMember"] is None and data["wrongObject"] is None
    # A permission on a field without a resolver holds, whatever the field's type.
    assert data["guarded"] == {
        "open": "yes",
        "owner": None,
        "owners": None,
        "secret": None,
        "hidden": None,
    }
    assert sorted(path for _, path in fast["errors"]) == [
        ("brokenOwner", 0, "node", "owners", 1, "name"),
        ("guarded", "hidden"),
        ("guarded", "owner"),
        ("guarded", "owners"),
        ("guarded", "secret"),
        ("loudFailure", 1, "node", "loud"),
        ("nullableItems", 2, "name"),
        ("wrongMember",),
        ("wrongObject", "name"),  # an object lacking a field is reported at that field
    ]


async def test_a_null_in_a_non_null_object_nulls_the_whole_answer_as_graphql_core_does() -> None:
    async def run(context: type[StrawberryGraphQLCoreExecutionContext]) -> Any:
        schema = strawberry.Schema(query=Graph, execution_context_class=context)
        result = await schema.execute("{ edge { cursor node { ... on Note { owner { name } } } } }")
        return result.data, [(e.message, e.path) for e in result.errors or ()]

    fast = await run(LeafFastExecutionContext)
    assert fast == await run(StrawberryGraphQLCoreExecutionContext)
    assert fast[0] is None
    assert [path for _, path in fast[1]] == [["edge", "node", "owner", "name"]]


async def test_objects_known_up_front_skip_graphql_cores_generic_completion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    completed: list[str] = []
    ordinary = Executor.complete_object_value

    def counted(self: Executor, return_type: Any, *args: Any) -> Any:
        completed.append(return_type.name)
        return ordinary(self, return_type, *args)

    monkeypatch.setattr(Executor, "complete_object_value", counted)
    query = "{ edges { cursor node { ... on Note { owner { name } owners { name } } } } }"
    for context in (StrawberryGraphQLCoreExecutionContext, LeafFastExecutionContext):
        schema = strawberry.Schema(query=Graph, execution_context_class=context)
        result = await schema.execute(query)
        assert not result.errors
    # graphql-core completed 3 edges, 3 members, a Note's owner and its 2 owners, all ours skip.
    assert len(completed) == 9


async def test_nulls_of_nullable_plain_fields_skip_graphql_cores_field_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[str] = []
    ordinary = Executor.execute_field

    def counted(self: Executor, parent_type: Any, source: Any, details: Any, *args: Any) -> Any:
        executed.append(f"{parent_type.name}.{details[0].node.name.value}")
        return ordinary(self, parent_type, source, details, *args)

    monkeypatch.setattr(Executor, "execute_field", counted)
    query = "{ edges { node { ... on Note { backup { name } } ... on Call { owner { email } } } } }"
    answers = []
    for context in (StrawberryGraphQLCoreExecutionContext, LeafFastExecutionContext):
        executed.clear()
        schema = strawberry.Schema(query=Graph, execution_context_class=context)
        result = await schema.execute(query)
        assert not result.errors
        answers.append(result.data)
    assert answers[0] == answers[1]
    assert answers[1] == {
        "edges": [
            {"node": {"backup": None}},
            {"node": {"owner": {"email": "ada@example.com"}}},
            {"node": {"owner": None}},
        ]
    }
    # Only the root field has a resolver; the nulls (a Note's backup, a Call's missing owner)
    # are answered on the short path, like every present value.
    assert executed == ["Graph.edges"]


async def test_a_documents_collected_fields_are_kept_only_when_variables_cannot_change_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collections: list[str] = []
    ordinary = executor_module.collect_subfields

    def counted(*args: Any, **kwargs: Any) -> Any:
        collections.append(args[4].name)  # the return type
        return ordinary(*args, **kwargs)

    monkeypatch.setattr(executor_module, "collect_subfields", counted)
    schema = strawberry.Schema(query=Graph, execution_context_class=LeafFastExecutionContext)
    reference = strawberry.Schema(query=Graph)

    async def run(document: DocumentNode, on: bool | None = None) -> tuple[Any, list[str]]:
        """The answer (checked against graphql-core's execution) and what ours collected."""
        variables = {"on": on} if on is not None else None
        answers, collected = [], []
        for graph, context in (
            (schema, LeafFastExecutionContext),
            (reference, StrawberryGraphQLCoreExecutionContext),
        ):
            collections.clear()
            result = graphql_execute(
                graph._schema, document, variable_values=variables, executor_class=context
            )
            answers.append(await result if isawaitable(result) else result)
            collected.append(list(collections))
        assert answers[0] == answers[1]
        return answers[0].data, collected[0]

    static = parse("{ edges { cursor node { ... on Note { text owner { name } } } } }")
    first, collected = await run(static)
    assert collected == ["Edge", "Note", "Owner", "Call"]
    again, collected = await run(static)
    assert again == first and collected == []  # all from the document's entry

    # @include reads a variable: each request collects its own.
    variable = parse(
        "query ($on: Boolean!) { edges { cursor node { ... on Note { text @include(if: $on) } } } }"
    )
    with_text, _ = await run(variable, on=True)
    without, collected = await run(variable, on=False)
    assert with_text["edges"][0]["node"] == {"text": "hi"}
    assert without["edges"][0]["node"] == {}
    assert collected != []

    # A document that is gone takes its entry with it.
    kept = len(execution_module._COLLECTED)
    del static, variable
    gc.collect()
    assert len(execution_module._COLLECTED) <= kept - 2
