"""Mutations over HTTP: writes through the ingestion path, payloads with userErrors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique
from tests.integration.graphql_seed import data, seed_person


def gid(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(driver: AsyncDriver, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings)) as c:
        yield c


UPSERT = """
mutation ($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) {
    record { id source sourceId traits }
    profile { id email records { sourceId } identifiers { type value } mergeHistory { id } }
    userErrors { field message code }
  }
}
"""


async def upsert(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await data(client, UPSERT, input=fields))["upsertCustomer"]
    return payload


async def test_upsert_customer_resolves_and_merges(client: httpx.AsyncClient) -> None:
    tag = unique("mu")
    email = f"{tag}@example.com"
    first = await upsert(
        client,
        source="crm",
        sourceId=f"c-{tag}",
        traits={"name": "Grace", "email": email},
        identifiers=[{"type": "email", "value": email}],
    )
    assert first["userErrors"] == []
    assert first["record"]["id"] == gid("CustomerRecord", f"crm:c-{tag}")
    assert first["record"]["traits"] == {"name": "Grace", "email": email}
    profile_id = first["profile"]["id"]

    second = await upsert(
        client,
        source="web",
        sourceId=f"w-{tag}",
        identifiers=[
            {"type": "anonymous_id", "value": f"a-{tag}"},
            {"type": "EMAIL", "value": f"  {email.upper()} "},
        ],
    )
    assert second["userErrors"] == []
    profile = second["profile"]
    assert profile["id"] == profile_id  # joined the existing profile through the email
    assert sorted(r["sourceId"] for r in profile["records"]) == [f"c-{tag}", f"w-{tag}"]
    assert {"type": "email", "value": email} in profile["identifiers"]


async def test_upsert_customer_user_errors_write_nothing(client: httpx.AsyncClient) -> None:
    tag = unique("bad")
    payload = await upsert(
        client,
        source="crm",
        sourceId=f"c-{tag}",
        traits=["not", "an", "object"],
        identifiers=[{"type": "email", "value": "ok@example.com"}, {"type": "email", "value": "@"}],
    )
    assert payload["record"] is None and payload["profile"] is None
    assert {(tuple(e["field"]), e["code"]) for e in payload["userErrors"]} == {
        (("input", "traits"), "INVALID"),
        (("input", "identifiers", "1", "value"), "INVALID_IDENTIFIER"),
    }
    node = await data(
        client, "query($id: ID!) { node(id: $id) { id } }", id=gid("CustomerRecord", f"crm:c-{tag}")
    )
    assert node["node"] is None

    # A blocked placeholder is accepted, and links nothing.
    tag2 = unique("placeholder")
    for n in range(2):
        payload = await upsert(
            client,
            source="crm",
            sourceId=f"{tag2}-{n}",
            identifiers=[{"type": "email", "value": "test@test.com"}],
        )
        assert payload["userErrors"] == []
        assert payload["profile"]["identifiers"] == []
        assert len(payload["profile"]["records"]) == 1


RECORD = """
mutation ($input: RecordInteractionInput!) {
  recordInteraction(input: $input) {
    interaction { id type subject occurredAt owner { id } }
    profile { id interactions(first: 10) { totalCount } }
    userErrors { field code }
  }
}
"""


async def test_record_interaction(client: httpx.AsyncClient) -> None:
    tag = unique("ri")
    await upsert(client, source="crm", sourceId=tag, identifiers=[{"type": "crm_id", "value": tag}])
    fields = {
        "source": "crm",
        "sourceId": tag,
        "id": f"call-{tag}",
        "type": "CALL",
        "subject": "Intro call",
        "occurredAt": "2024-05-01T10:00:00Z",
        "durationSeconds": 300,
        "ownerId": f"rep-{tag}",
    }
    payload = (await data(client, RECORD, input=fields))["recordInteraction"]
    assert payload["userErrors"] == []
    assert payload["interaction"] == {
        "id": gid("Interaction", f"call-{tag}"),
        "type": "CALL",
        "subject": "Intro call",
        "occurredAt": "2024-05-01T10:00:00Z",
        "owner": {"id": gid("Owner", f"rep-{tag}")},
    }
    assert payload["profile"]["interactions"]["totalCount"] == 1
    # Sent again (a retry), it updates and does not duplicate.
    again = (await data(client, RECORD, input={**fields, "subject": "Intro call (notes)"}))[
        "recordInteraction"
    ]
    assert again["interaction"]["subject"] == "Intro call (notes)"
    assert again["profile"]["interactions"]["totalCount"] == 1

    missing = (await data(client, RECORD, input={**fields, "sourceId": "nobody-" + tag}))[
        "recordInteraction"
    ]
    assert missing["interaction"] is None
    assert missing["userErrors"] == [{"field": ["input", "sourceId"], "code": "NOT_FOUND"}]


DEAL = """
mutation ($input: UpsertDealInput!) {
  upsertDeal(input: $input) {
    deal { id name amount stage status contacts { role record { sourceId } } owner { id } }
    userErrors { field code }
  }
}
"""

MOVE = """
mutation ($input: MoveDealStageInput!) {
  moveDealStage(input: $input) {
    deal { stage status closedAt stageHistory { fromStage toStage durationSeconds } }
    stageChange { fromStage toStage changedAt }
    userErrors { field code }
  }
}
"""


async def test_deals_and_stage_moves(client: httpx.AsyncClient) -> None:
    tag = unique("deal")
    await upsert(client, source="crm", sourceId=tag, identifiers=[{"type": "crm_id", "value": tag}])
    deal_id = f"D-{tag}"
    created = (
        await data(
            client,
            DEAL,
            input={
                "id": deal_id,
                "name": "Renewal",
                "amount": 900.5,
                "stage": "new",
                "status": "OPEN",
                "ownerId": f"rep-{tag}",
                "contacts": [{"source": "crm", "sourceId": tag, "role": "decision maker"}],
            },
        )
    )["upsertDeal"]
    assert created["userErrors"] == []
    assert created["deal"]["contacts"] == [{"role": "decision maker", "record": {"sourceId": tag}}]
    assert created["deal"]["owner"] == {"id": gid("Owner", f"rep-{tag}")}

    moved = (
        await data(
            client,
            MOVE,
            input={"dealId": deal_id, "toStage": "proposal", "changedAt": "2024-06-01T00:00:00Z"},
        )
    )["moveDealStage"]
    assert moved["userErrors"] == []
    assert moved["stageChange"] == {
        "fromStage": "new",
        "toStage": "proposal",
        "changedAt": "2024-06-01T00:00:00Z",
    }
    won = (
        await data(
            client,
            MOVE,
            input={
                "dealId": gid("Deal", deal_id),
                "toStage": "closedwon",
                "changedAt": "2024-06-03T00:00:00Z",
                "status": "WON",
            },
        )
    )["moveDealStage"]["deal"]
    assert (won["stage"], won["status"], won["closedAt"]) == (
        "closedwon",
        "WON",
        "2024-06-03T00:00:00Z",
    )
    assert [(s["fromStage"], s["toStage"], s["durationSeconds"]) for s in won["stageHistory"]] == [
        ("new", "proposal", 2 * 86400),
        ("proposal", "closedwon", 0),
    ]

    missing = (await data(client, MOVE, input={"dealId": "nope-" + tag, "toStage": "x"}))[
        "moveDealStage"
    ]
    assert missing["userErrors"] == [{"field": ["input", "dealId"], "code": "NOT_FOUND"}]
    bad_contact = (
        await data(
            client,
            DEAL,
            input={"id": deal_id, "contacts": [{"source": "crm", "sourceId": "ghost-" + tag}]},
        )
    )["upsertDeal"]
    assert bad_contact["userErrors"] == [
        {"field": ["input", "contacts", "0", "sourceId"], "code": "NOT_FOUND"}
    ]


BLOCK = """
mutation ($input: BlockIdentifierInput!) {
  blockIdentifier(input: $input) {
    identifier { type value blocked }
    profiles { id records { sourceId } }
    userErrors { field code }
  }
}
"""

UNMERGE = """
mutation ($input: UnmergeRecordInput!) {
  unmergeRecord(input: $input) {
    record { sourceId profile { id } }
    profiles { id records { sourceId } }
    userErrors { field code }
  }
}
"""


async def test_block_identifier_splits_the_profile(client: httpx.AsyncClient) -> None:
    tag = unique("blk")
    shared = f"device-{tag}"  # one device, two people: the kind of link a block undoes
    for n in range(2):
        await upsert(
            client,
            source="crm",
            sourceId=f"{tag}-{n}",
            identifiers=[
                {"type": "device_id", "value": shared},
                {"type": "crm_id", "value": f"{tag}-{n}"},
            ],
        )
    payload = (await data(client, BLOCK, input={"type": "device_id", "value": f" {shared} "}))[
        "blockIdentifier"
    ]
    assert payload["userErrors"] == []
    assert payload["identifier"] == {"type": "device_id", "value": shared, "blocked": True}
    assert sorted(len(p["records"]) for p in payload["profiles"]) == [1, 1]

    profile_id = payload["profiles"][0]["id"]
    timeline = await data(
        client,
        "query($id: ID!) { profile(id: $id) { timeline(first: 5) { nodes { __typename "
        "... on SplitEvent { reason identifier { type } newProfileIds } } } } }",
        id=profile_id,
    )
    splits = [
        n for n in timeline["profile"]["timeline"]["nodes"] if n["__typename"] == "SplitEvent"
    ]
    assert splits and splits[0]["identifier"] == {"type": "device_id"}

    invalid = (await data(client, BLOCK, input={"type": "email", "value": "@@"}))["blockIdentifier"]
    assert invalid["userErrors"] == [{"field": ["input", "value"], "code": "INVALID_IDENTIFIER"}]


async def test_unmerge_record(
    client: httpx.AsyncClient, driver: AsyncDriver, settings: Settings
) -> None:
    person = await seed_person(driver, settings, interactions=0)
    payload = (
        await data(client, UNMERGE, input={"recordId": gid("CustomerRecord", person.web_key)})
    )["unmergeRecord"]
    assert payload["userErrors"] == []
    assert payload["record"]["profile"]["id"] != gid("Profile", person.profile_id)
    assert sorted(len(p["records"]) for p in payload["profiles"]) == [1, 1]
    missing = (await data(client, UNMERGE, input={"recordId": "crm:nobody-" + person.tag}))[
        "unmergeRecord"
    ]
    assert missing["userErrors"] == [{"field": ["input", "recordId"], "code": "NOT_FOUND"}]


async def test_a_write_key_writes_its_own_source_only(
    driver: AsyncDriver, settings: Settings
) -> None:
    key, _ = await create_key(driver, settings, scopes=[Scope.WRITE, Scope.READ], source="web")
    tag = unique("src")
    async with asgi_client(create_app(settings), graphql_key=key) as client:
        own = await upsert(client, source="web", sourceId=tag)
        assert own["userErrors"] == []
        other = await upsert(client, source="crm", sourceId=tag)
        assert other["record"] is None
        assert other["userErrors"] == [
            {
                "field": ["input", "source"],
                "message": "This key writes records of its own source only.",
                "code": "SOURCE_NOT_ALLOWED",
            }
        ]
