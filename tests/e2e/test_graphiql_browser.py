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
from customer_graph.settings import PROJECT_ROOT
from tests.e2e.live_server import live_server, run_node
from tests.helpers import unique

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DRIVER = Path(__file__).with_name("graphiql_browser.mjs")
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
DEV_KEY = f"cg_browser_{unique('key')}"
HEADERS = json.dumps({"Authorization": f"Bearer {DEV_KEY}"})

UPSERT_CUSTOMER = """
mutation ($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) { profile { id } userErrors { field message code } }
}
"""
PROFILE_BY_EMAIL = """
query ($email: String!) { profileByIdentifier(type: "email", value: $email) { id } }
"""


@pytest.fixture(scope="module")
def server(driver: AsyncDriver) -> Iterator[str]:
    with live_server(CUSTOMER_GRAPH_DEV_KEY=DEV_KEY) as base:
        yield base


def run_graphiql(
    base: str, steps: list[dict[str, str]], screenshot: str, docs: str | None = None
) -> dict[str, Any]:
    # One retry: the page is driven through GraphiQL's debounced editors, which a loaded
    # machine occasionally outpaces. A real fault fails both attempts.
    try:
        return _run_graphiql_once(base, steps, screenshot, docs)
    except AssertionError:
        return _run_graphiql_once(base, steps, screenshot, docs)


def _run_graphiql_once(
    base: str, steps: list[dict[str, str]], screenshot: str, docs: str | None
) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = run_node(
        DRIVER,
        stdin={
            "url": f"{base}/graphql",
            "steps": steps,
            "docs": docs,
            "screenshot": str(ARTIFACTS / screenshot),
            "timeoutMs": 60_000,  # generous: CI machines are shared and slow at times
        },
        timeout=300,
    )
    assert report["outside"] == [], f"the page tried to leave the server: {report['outside']}"
    assert report["pageErrors"] == [], report["pageErrors"]
    # A request without a key may be refused (401): the schema fetch at load, which on a slow
    # machine may answer only once the headers are being typed. A request that carried the
    # typed key is never refused, and no other error is logged.
    assert [r for r in report["refused"] if r["withKey"]] == [], report["refused"]
    refusals = [e for e in report["consoleErrors"] if "status of 401" in e["text"]]
    assert len(refusals) <= len(report["refused"]), (refusals, report["refused"])
    unexpected = [e for e in report["consoleErrors"] if "status of 401" not in e["text"]]
    assert unexpected == [], unexpected
    return report


def shown_json(report: dict[str, Any], step: int) -> dict[str, Any]:
    """The response pane's text, as the JSON it shows (CodeMirror renders indents as NBSP)."""
    shown: dict[str, Any] = json.loads(report["results"][step]["text"].replace("\xa0", " "))
    return shown


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


def test_graphiql_shows_a_profile_seeded_through_the_api(server: str) -> None:
    user_id = unique("graphiql-user")
    email = f"{unique('graphiql')}@example.com"
    auth = {"Authorization": f"Bearer {DEV_KEY}"}
    # A person arrives through the tracking API, as a Segment SDK would send them.
    identify = httpx.post(
        f"{server}/v1/identify",
        json={"userId": user_id, "traits": {"email": email.upper(), "firstName": "Ada"}},
        headers=auth,
        timeout=30,
    )
    assert identify.status_code == 200, identify.text
    found = httpx.post(
        f"{server}/graphql",
        json={"query": PROFILE_BY_EMAIL, "variables": {"email": email}},
        headers=auth,
        timeout=30,
    ).json()
    assert "errors" not in found, found
    profile_id = found["data"]["profileByIdentifier"]["id"]

    query = (
        f'{{\n  profile(id: "{profile_id}") {{\n    id\n    email\n'
        "    records { source sourceId }\n  }\n}"
    )
    report = run_graphiql(
        server,
        [
            {"headers": HEADERS, "query": "{ version }", "expect": __version__},
            {"query": query, "expect": user_id},
        ],
        "graphiql-profile.png",
    )
    shown = shown_json(report, 1)["data"]["profile"]
    assert shown["id"] == profile_id
    assert shown["email"] == email  # normalized: lower-cased
    assert shown["records"] == [{"source": "dev", "sourceId": user_id}]


def test_graphiql_switched_off_gives_a_browser_no_ide(driver: AsyncDriver) -> None:
    off = {"CUSTOMER_GRAPH_DEV_KEY": DEV_KEY, "CUSTOMER_GRAPH_GRAPHIQL_ENABLED": "false"}
    with live_server(**off) as base:
        report = run_node(DRIVER, stdin={"url": f"{base}/graphql", "steps": []})
    assert report["outside"] == []
    assert report["opened"]["status"] == 400
    shown = json.loads(report["opened"]["text"])  # Chromium shows the JSON error as text
    assert shown["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "GraphiQL" not in report["opened"]["text"]


def test_graphiql_runs_a_subscription_over_its_own_websocket(server: str) -> None:
    source_id = unique("graphiql-sub")
    auth = {"Authorization": f"Bearer {DEV_KEY}", "content-type": "application/json"}

    def upsert(plan: str) -> str:
        variables = {"input": {"source": "dev", "sourceId": source_id, "traits": {"plan": plan}}}
        return json.dumps({"query": UPSERT_CUSTOMER, "variables": variables})

    seeded = httpx.post(f"{server}/graphql", content=upsert("free"), headers=auth, timeout=30)
    payload = seeded.json()["data"]["upsertCustomer"]
    assert payload["userErrors"] == [], payload
    profile_id = payload["profile"]["id"]

    subscription = (
        f'subscription {{\n  profileUpdated(id: "{profile_id}") {{\n    id\n    traits\n  }}\n}}'
    )
    report = run_graphiql(
        server,
        [
            {"headers": HEADERS, "query": "{ version }", "expect": __version__},
            {
                "query": subscription,
                "expect": "gold-",
                # While GraphiQL listens, a write to the same record changes the profile.
                "trigger": {
                    "url": f"{server}/graphql",
                    "headers": auth,
                    "body": upsert("gold-{{n}}"),
                },
            },
        ],
        "graphiql-subscription.png",
    )
    pushed = shown_json(report, 1)["data"]["profileUpdated"]
    assert pushed["id"] == profile_id
    assert pushed["traits"]["plan"].startswith("gold-")
