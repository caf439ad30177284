"""What the API answers, on data written by the real write path: its execution (with its short
path for plain leaves) gives the profile page exactly as graphql-core's own execution does, and
its response encoding keeps every value exact."""

from __future__ import annotations

import json
from typing import Any

from neo4j import AsyncDriver
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from bench.profile_page import PROFILE_PAGE_QUERY
from customer_graph.app import create_app
from customer_graph.graph.records import CustomerIn, WriteBatch
from customer_graph.resolvers.execution import LeafFastExecutionContext
from customer_graph.settings import Settings
from tests.helpers import asgi_client, assert_no_errors, unique
from tests.integration.graphql_seed import seed_person, write


def _graphql_schema(app: Starlette) -> Any:
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    return route.endpoint.schema  # type: ignore[attr-defined]


async def test_the_profile_page_is_what_graphql_core_would_answer(
    driver: AsyncDriver, settings: Settings
) -> None:
    person = await seed_person(driver, settings, interactions=12)
    answers = []
    for context in (LeafFastExecutionContext, StrawberryGraphQLCoreExecutionContext):
        app = create_app(settings)
        schema = _graphql_schema(app)
        assert schema.execution_context_class is LeafFastExecutionContext  # as the API runs
        schema.execution_context_class = context
        async with asgi_client(app) as client:
            response = await client.post(
                "/graphql",
                json={"query": PROFILE_PAGE_QUERY, "variables": {"id": person.profile_id}},
            )
        answers.append(assert_no_errors(response.json()))
    fast, reference = answers
    assert fast == reference
    profile = fast["profile"]
    assert profile["email"] == person.email
    assert len(profile["timeline"]["edges"]) >= 12
    assert profile["deals"] and profile["identifiers"]


async def test_responses_keep_every_value_exact(driver: AsyncDriver, settings: Settings) -> None:
    """Text beyond ASCII and integers beyond 64 bits (a JSON trait may hold one) come back as
    they were written."""
    tag = unique("enc")
    big = 2**70 + 1
    written = await write(
        driver,
        settings,
        WriteBatch(
            customers=(
                CustomerIn("crm", tag, traits={"name": "Zoë Ñandú 李", "big": big, "ratio": 0.1}),
            )
        ),
    )
    query = "query($id: ID!) { profile(id: $id) { displayName traits } }"
    async with asgi_client(create_app(settings)) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"id": written[f"crm:{tag}"]}}
        )
    profile = assert_no_errors(json.loads(response.content))["profile"]
    assert profile["displayName"] == "Zoë Ñandú 李"
    assert profile["traits"]["big"] == big
    assert profile["traits"]["ratio"] == 0.1
