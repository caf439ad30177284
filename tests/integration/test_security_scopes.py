"""Scopes on every GraphQL path: read for queries, node(), nodes() and nested fields; admin for
erasure, export and the audit log. A key without the scope gets FORBIDDEN and no data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.graph.records import CustomerIn, IdentifierIn, InteractionIn, WriteBatch
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.schema.node import to_global_id
from customer_graph.settings import Settings
from tests.helpers import asgi_client, assert_no_errors, unique

NODE = "query($id: ID!) { node(id: $id) { id ... on Profile { email } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
NESTED = """query($id: ID!) { profile(id: $id) { id
  interactions(first: 5) { totalCount edges { node { id } } }
  records { id source } } }"""
EXPORT = "query($id: ID!) { exportProfile(id: $id) }"
DELETE = """mutation($id: ID!) { deleteProfile(input: {id: $id}) {
  deletedProfileId auditEntryId counts { records interactions suppressions }
  userErrors { field message code } } }"""
AUDIT = """query($after: String) { auditLog(first: 100, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id at actor action target details } } } }"""


@dataclass
class Keys:
    read: str
    write: str
    admin: str
    admin_id: str


@pytest_asyncio.fixture(loop_scope="session")
async def keys(driver: AsyncDriver, settings: Settings) -> Keys:
    source = unique("scopes")
    read, _ = await create_key(driver, settings, scopes=[Scope.READ], source=source)
    write, _ = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    admin, row = await create_key(driver, settings, scopes=[Scope.ADMIN], source=source)
    return Keys(read=read, write=write, admin=admin, admin_id=row.id)


@pytest_asyncio.fixture(loop_scope="session")
async def client(driver: AsyncDriver, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings), graphql_key="") as c:
        yield c


async def _person(driver: AsyncDriver, settings: Settings) -> tuple[str, str]:
    """A profile with one record and one interaction; returns (profile id, email)."""
    tag = unique("scope")
    email = f"{tag}@example.com"
    result = await write_batch(
        driver,
        settings.neo4j_database,
        WriteBatch(
            customers=(CustomerIn(f"src-{tag}", "1", {}, (IdentifierIn("email", email),)),),
            interactions=(InteractionIn(f"i-{tag}", f"src-{tag}", "1", "call", datetime.now(UTC)),),
        ),
        resolution_config(settings),
    )
    return result.record_profiles[f"src-{tag}:1"], email


async def _gql(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _forbidden(body: dict[str, Any], field: str) -> None:
    assert body["errors"], body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"FORBIDDEN"}, body["errors"]
    assert all(e["path"][0] == field for e in body["errors"])
    assert "scope" in body["errors"][0]["message"]
    assert body["data"] is None or body["data"].get(field) in (None, [])


async def test_node_and_nodes_need_read(
    driver: AsyncDriver, settings: Settings, keys: Keys, client: httpx.AsyncClient
) -> None:
    profile_id, email = await _person(driver, settings)
    gid = to_global_id("Profile", profile_id)

    allowed = assert_no_errors(await _gql(client, keys.read, NODE, id=gid))
    assert allowed["node"] == {"id": gid, "email": email}
    listed = assert_no_errors(await _gql(client, keys.read, NODES, ids=[gid, gid]))
    assert [n["id"] for n in listed["nodes"]] == [gid, gid]

    for key in (keys.write, keys.admin):
        denied = await _gql(client, key, NODE, id=gid)
        _forbidden(denied, "node")
        assert email not in str(denied)
        _forbidden(await _gql(client, key, NODES, ids=[gid]), "nodes")


async def test_nested_fields_need_read(
    driver: AsyncDriver, settings: Settings, keys: Keys, client: httpx.AsyncClient
) -> None:
    profile_id, _ = await _person(driver, settings)
    allowed = assert_no_errors(await _gql(client, keys.read, NESTED, id=profile_id))
    assert allowed["profile"]["interactions"]["totalCount"] == 1
    assert len(allowed["profile"]["records"]) == 1
    denied = await _gql(client, keys.write, NESTED, id=profile_id)
    _forbidden(denied, "profile")


async def test_erasure_export_and_audit_need_admin(
    driver: AsyncDriver, settings: Settings, keys: Keys, client: httpx.AsyncClient
) -> None:
    profile_id, email = await _person(driver, settings)
    gid = to_global_id("Profile", profile_id)

    for key in (keys.read, keys.write):
        _forbidden(await _gql(client, key, EXPORT, id=gid), "exportProfile")
        _forbidden(await _gql(client, key, DELETE, id=gid), "deleteProfile")
        _forbidden(await _gql(client, key, AUDIT), "auditLog")
    # Still there: the refused deletions did nothing.
    assert assert_no_errors(await _gql(client, keys.read, NODE, id=gid))["node"]["email"] == email

    exported = assert_no_errors(await _gql(client, keys.admin, EXPORT, id=gid))["exportProfile"]
    assert exported["profile"]["id"] == profile_id
    assert exported["records"][0]["identifiers"][0]["value"] == email
    assert len(exported["interactions"]) == 1

    deleted = assert_no_errors(await _gql(client, keys.admin, DELETE, id=gid))["deleteProfile"]
    assert deleted["userErrors"] == []
    assert deleted["deletedProfileId"] == profile_id
    assert deleted["counts"] == {"records": 1, "interactions": 1, "suppressions": 2}
    assert assert_no_errors(await _gql(client, keys.read, NODE, id=gid))["node"] is None

    again = assert_no_errors(await _gql(client, keys.admin, DELETE, id=gid))["deleteProfile"]
    assert again["deletedProfileId"] is None
    assert [e["code"] for e in again["userErrors"]] == ["NOT_FOUND"]

    audit = assert_no_errors(await _gql(client, keys.admin, AUDIT))["auditLog"]
    entry = next(e["node"] for e in audit["edges"] if e["node"]["id"] == deleted["auditEntryId"])
    assert entry["actor"] == keys.admin_id
    assert entry["action"] == "profile.delete"
    assert entry["target"] == f"profile:{profile_id}"
    assert entry["details"]["counts"]["records"] == 1
    assert email not in str(audit)
    assert audit["totalCount"] >= 1


async def test_audit_log_pages(
    driver: AsyncDriver, settings: Settings, keys: Keys, client: httpx.AsyncClient
) -> None:
    for _ in range(2):
        pid, _ = await _person(driver, settings)
        assert_no_errors(await _gql(client, keys.admin, DELETE, id=pid))
    one = AUDIT.replace("first: 100", "first: 1")
    page = assert_no_errors(await _gql(client, keys.admin, one))["auditLog"]
    assert page["totalCount"] >= 2
    assert page["pageInfo"]["hasNextPage"] is True
    cursor = page["pageInfo"]["endCursor"]
    second = assert_no_errors(await _gql(client, keys.admin, one, after=cursor))["auditLog"]
    assert second["edges"][0]["node"]["id"] != page["edges"][0]["node"]["id"]
    assert second["edges"][0]["node"]["at"] <= page["edges"][0]["node"]["at"]
    bad = await _gql(client, keys.admin, AUDIT, after="not-a-cursor")
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
