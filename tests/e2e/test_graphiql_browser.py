"""GraphiQL in headless Chromium: served by the service alone, it runs queries with no internet.

The browser is Debian's Chromium driven by playwright-core (tests/e2e/graphiql_browser.mjs);
every request that would leave the server's origin is aborted and reported, so a page that
needed a CDN fails here. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import AsyncDriver

from customer_graph import __version__
from customer_graph.schema import schema
from customer_graph.settings import PROJECT_ROOT
from tests.e2e.live_server import live_server, run_node
from tests.helpers import unique

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DRIVER = Path(__file__).with_name("graphiql_browser.mjs")
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
DEV_KEY = f"cg_browser_{unique('key')}"
HEADERS = json.dumps({"Authorization": f"Bearer {DEV_KEY}"})

UPSERT_CUSTOMER = """
mutation Seed($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) { profile { id } userErrors { field message code } }
}
"""
QUERY_FIELDS = '{ __type(name: "Query") { fields { name } } }'
MUTATION_FIELDS = '{ __type(name: "Mutation") { fields { name } } }'


@pytest.fixture(scope="module")
def server(driver: AsyncDriver) -> Iterator[str]:
    with live_server(CUSTOMER_GRAPH_DEV_KEY=DEV_KEY) as base:
        yield base


def run_graphiql(
    base: str, steps: list[dict[str, str]], screenshot: str, docs: str | None = None
) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = run_node(
        DRIVER,
        stdin={
            "url": f"{base}/graphql",
            "steps": steps,
            "docs": docs,
            "screenshot": str(ARTIFACTS / screenshot),
            "timeoutMs": 30_000,
        },
    )
    assert report["outside"] == [], f"the page tried to leave the server: {report['outside']}"
    assert report["pageErrors"] == [], report["pageErrors"]
    # Before a key is typed in, the schema fetch at load may be refused (401); nothing else.
    unexpected = [
        e
        for e in report["consoleErrors"]
        if e["phase"] != "load" or "status of 401" not in e["text"]
    ]
    assert unexpected == [], unexpected
    return report


def shown_json(report: dict[str, Any], step: int) -> dict[str, Any]:
    """The response pane's text, as the JSON it shows (CodeMirror renders indents as NBSP)."""
    shown: dict[str, Any] = json.loads(report["results"][step]["text"].replace("\xa0", " "))
    return shown


def field_names(document: str) -> set[str]:
    result = schema.execute_sync(document)
    assert result.errors is None, result.errors
    assert result.data is not None
    type_ = result.data["__type"]
    return {f["name"] for f in type_["fields"]} if type_ else set()


def test_graphiql_runs_a_query_from_the_service_alone(server: str) -> None:
    report = run_graphiql(
        server,
        [{"headers": HEADERS, "query": "{ version }", "expect": __version__}],
        "graphiql-version.png",
        docs="Query",
    )
    assert shown_json(report, 0)["data"] == {"version": __version__}
    # The key typed into Headers also fetched the schema: the Docs panel lists the root types.
    assert "query: Query" in report["docs"].replace("\n", " ")


@pytest.mark.skipif(
    not {"profile"} <= field_names(QUERY_FIELDS)
    or not {"upsertCustomer"} <= field_names(MUTATION_FIELDS),
    reason="the schema has no profile query or upsertCustomer mutation yet (issue 5, items 1-3)",
)
def test_graphiql_shows_a_profile_seeded_through_the_api(server: str) -> None:
    email = f"{unique('graphiql')}@example.com"
    seeded = httpx.post(
        f"{server}/graphql",
        json={
            "query": UPSERT_CUSTOMER,
            "variables": {
                "input": {
                    "source": "dev",
                    "sourceId": unique("graphiql"),
                    "traits": {"firstName": "Ada", "email": email},
                    "identifiers": [{"type": "email", "value": email}],
                }
            },
        },
        headers={"Authorization": f"Bearer {DEV_KEY}"},
        timeout=30,
    ).json()
    assert "errors" not in seeded, seeded
    payload = seeded["data"]["upsertCustomer"]
    assert payload["userErrors"] == [], payload
    profile_id = payload["profile"]["id"]

    query = f'{{\n  profile(id: "{profile_id}") {{\n    id\n    email\n  }}\n}}'
    report = run_graphiql(
        server,
        [
            {"headers": HEADERS, "query": "{ version }", "expect": __version__},
            {"query": query, "expect": email},
        ],
        "graphiql-profile.png",
    )
    assert shown_json(report, 1)["data"] == {"profile": {"id": profile_id, "email": email}}
