"""The query side of the GraphQL API over HTTP, against data written by the real write path."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.graph.constraints import await_search_index
from customer_graph.graph.records import InteractionIn, WriteBatch
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique
from tests.integration.graphql_seed import T0, Person, data, gql, seed_person, write


def gid(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def person(driver: AsyncDriver, settings: Settings) -> Person:
    return await seed_person(driver, settings)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(driver: AsyncDriver, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings)) as c:
        yield c


PROFILE = """
query ($id: ID!) {
  profile(id: $id) {
    id displayName email company traits createdAt updatedAt
    identifiers { type value sources firstSeen lastSeen blocked matched }
    records { id source sourceId traits profile { id } }
    computed {
      firstSeen lastSeen lastInteractionAt interactionCount
      interactionCounts { type count }
      openPipelineValue wonRevenue openDeals wonDeals lostDeals
    }
    mergeHistory { id at survivorId mergedIds identifier { type value } record { sourceId } }
  }
}
"""


async def test_profile_by_merged_away_id_is_the_survivor(
    client: httpx.AsyncClient, person: Person
) -> None:
    for id_ in (person.merged_id, gid("Profile", person.merged_id), person.profile_id):
        got = await data(client, "query($id: ID!) { profile(id: $id) { id } }", id=id_)
        assert got["profile"] == {"id": gid("Profile", person.profile_id)}
    for id_ in (gid("Deal", person.open_deal_id), unique("nobody")):
        got = await data(client, "query($id: ID!) { profile(id: $id) { id } }", id=id_)
        assert got["profile"] is None


async def test_profile_fields(client: httpx.AsyncClient, person: Person) -> None:
    profile = (await data(client, PROFILE, id=person.profile_id))["profile"]
    assert profile["email"] == person.email
    assert profile["displayName"] == f"Ada {person.tag}"
    assert profile["traits"]["plan"] == "pro"  # from the web record
    assert profile["traits"]["title"] == "CTO"  # from the CRM record
    identifiers = {(i["type"], i["value"]): i for i in profile["identifiers"]}
    email = identifiers[("email", person.email)]
    assert email["sources"] == ["crm", "web"]
    assert at(email["firstSeen"]) == T0
    assert at(email["lastSeen"]) == T0 + timedelta(days=3)
    assert email["blocked"] is False and email["matched"] is True
    assert ("anonymous_id", person.web_key.split(":", 1)[1]) in identifiers
    assert sorted((r["source"], r["profile"]["id"]) for r in profile["records"]) == [
        ("crm", gid("Profile", person.profile_id)),
        ("web", gid("Profile", person.profile_id)),
    ]
    computed = profile["computed"]
    assert {c["type"]: c["count"] for c in computed["interactionCounts"]} == {
        "CALL": 2,
        "EMAIL": 2,
        "PAGE": 2,
    }
    assert computed["interactionCount"] == 6
    assert computed["openPipelineValue"] == 5000.0
    assert computed["wonRevenue"] == 1200.0
    assert (computed["openDeals"], computed["wonDeals"], computed["lostDeals"]) == (1, 1, 0)
    assert at(computed["firstSeen"]) == T0
    assert at(computed["lastInteractionAt"]) == T0 + timedelta(days=2, hours=5)
    [merge] = profile["mergeHistory"]
    assert merge["survivorId"] == gid("Profile", person.profile_id)
    assert merge["mergedIds"] == [gid("Profile", person.merged_id)]
    assert merge["identifier"] == {"type": "email", "value": person.email}
    assert merge["record"] == {"sourceId": person.web_key.split(":", 1)[1]}


async def test_profile_by_identifier_normalizes_like_ingestion(
    client: httpx.AsyncClient, person: Person
) -> None:
    query = "query($t: String!, $v: String!) { profileByIdentifier(type: $t, value: $v) { id } }"
    expected = {"id": gid("Profile", person.profile_id)}
    for type_, value in (
        ("email", person.email),
        ("EMAIL", f"  {person.email.upper()}  "),
        ("e-mail", person.email),  # a type alias sources use
        ("anonymous_id", f" {person.web_key.split(':', 1)[1]} "),
    ):
        got = await data(client, query, t=type_, v=value)
        assert got["profileByIdentifier"] == expected, (type_, value)
    for type_, value in (("email", "not an email"), ("email", f"x{person.email}"), ("phone", "")):
        assert (await data(client, query, t=type_, v=value))["profileByIdentifier"] is None


async def test_node_and_nodes_fetch_every_type(client: httpx.AsyncClient, person: Person) -> None:
    ids = {
        "Profile": gid("Profile", person.profile_id),
        "CustomerRecord": gid("CustomerRecord", person.crm_key),
        "Deal": gid("Deal", person.open_deal_id),
        "Account": gid("Account", person.account_id),
        "Interaction": gid("Interaction", person.interaction_ids[0]),
        "Owner": gid("Owner", person.owner_id),
    }
    for type_name, id_ in ids.items():
        got = await data(client, "query($id: ID!) { node(id: $id) { __typename id } }", id=id_)
        assert got["node"] == {"__typename": type_name, "id": id_}
    asked = [*ids.values(), gid("Deal", unique("missing")), "not-a-global-id"]
    got = await data(client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=asked)
    assert got["nodes"] == [*({"id": i} for i in ids.values()), None, None]


INTERACTIONS = """
query ($id: ID!, $first: Int!, $after: String, $types: [InteractionType!],
       $since: DateTime, $until: DateTime) {
  profile(id: $id) {
    interactions(first: $first, after: $after, types: $types, since: $since, until: $until) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { id type occurredAt owner { id } deal { id } record { id } } }
    }
  }
}
"""


async def test_interactions_page_newest_first(client: httpx.AsyncClient, person: Person) -> None:
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = (await data(client, INTERACTIONS, id=person.profile_id, first=2, after=after))[
            "profile"
        ]["interactions"]
        assert page["totalCount"] == 6
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [gid("Interaction", i) for i in reversed(person.interaction_ids)]

    calls = (await data(client, INTERACTIONS, id=person.profile_id, first=10, types=["CALL"]))[
        "profile"
    ]["interactions"]
    assert calls["totalCount"] == 2
    assert {e["node"]["type"] for e in calls["edges"]} == {"CALL"}
    call = calls["edges"][0]["node"]
    assert call["owner"] == {"id": gid("Owner", person.owner_id)}
    assert call["deal"] == {"id": gid("Deal", person.open_deal_id)}
    assert call["record"] == {"id": gid("CustomerRecord", person.crm_key)}

    window = (
        await data(
            client,
            INTERACTIONS,
            id=person.profile_id,
            first=10,
            since=(T0 + timedelta(days=2, hours=1)).isoformat(),
            until=(T0 + timedelta(days=2, hours=3)).isoformat(),
        )
    )["profile"]["interactions"]
    assert [e["node"]["id"] for e in window["edges"]] == [
        gid("Interaction", person.interaction_ids[2]),
        gid("Interaction", person.interaction_ids[1]),
    ]
    assert window["totalCount"] == 2


TIMELINE = """
query ($id: ID!, $first: Int!, $after: String) {
  profile(id: $id) {
    timeline(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges {
        cursor
        node {
          __typename
          ... on Interaction { id occurredAt }
          ... on StageChange { toStage changedAt durationSeconds deal { id } }
          ... on MergeEvent { id at }
        }
      }
    }
  }
}
"""


def _when(node: dict[str, str]) -> datetime:
    return at(node.get("occurredAt") or node.get("changedAt") or node["at"])


async def test_timeline_is_one_feed_newest_first(client: httpx.AsyncClient, person: Person) -> None:
    full = (await data(client, TIMELINE, id=person.profile_id, first=100))["profile"]["timeline"]
    nodes = [e["node"] for e in full["edges"]]
    kinds = [n["__typename"] for n in nodes]
    assert kinds.count("Interaction") == 6
    assert kinds.count("StageChange") == 3
    assert kinds.count("MergeEvent") == 1
    times = [_when(n) for n in nodes]
    assert times == sorted(times, reverse=True)
    assert full["pageInfo"]["hasNextPage"] is False

    paged: list[dict[str, str]] = []
    after = None
    while True:
        page = (await data(client, TIMELINE, id=person.profile_id, first=3, after=after))[
            "profile"
        ]["timeline"]
        paged += [e["node"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert paged == nodes


DEALS = """
query ($id: ID!, $status: DealStatus) {
  profile(id: $id) {
    deals(status: $status) {
      id name amount currency status createdAt closedAt
      stageHistory { fromStage toStage changedAt durationSeconds }
      owner { id name }
      account { id name }
      contacts { role record { id } profile { id } }
    }
  }
}
"""


async def test_deals_with_stage_history_owner_account_contacts(
    client: httpx.AsyncClient, person: Person
) -> None:
    [deal] = (await data(client, DEALS, id=person.profile_id, status="OPEN"))["profile"]["deals"]
    assert deal["id"] == gid("Deal", person.open_deal_id)
    assert (deal["amount"], deal["currency"], deal["status"]) == (5000.0, "EUR", "OPEN")
    assert [(s["fromStage"], s["toStage"], s["durationSeconds"]) for s in deal["stageHistory"]] == [
        ("new", "qualified", 3 * 86400),
        ("qualified", "proposal", None),
    ]
    assert deal["owner"] == {"id": gid("Owner", person.owner_id), "name": "Sam Seller"}
    assert deal["account"]["id"] == gid("Account", person.account_id)
    assert deal["contacts"] == [
        {
            "role": "champion",
            "record": {"id": gid("CustomerRecord", person.crm_key)},
            "profile": {"id": gid("Profile", person.profile_id)},
        }
    ]
    [won] = (await data(client, DEALS, id=person.profile_id, status="WON"))["profile"]["deals"]
    assert won["stageHistory"][-1]["durationSeconds"] == 0  # closed when it entered closedwon
    every = (await data(client, DEALS, id=person.profile_id))["profile"]["deals"]
    assert len(every) == 2

    # By CRM id or global id.
    for id_ in (person.open_deal_id, gid("Deal", person.open_deal_id)):
        got = await data(client, "query($id: ID!) { deal(id: $id) { name stage } }", id=id_)
        assert got["deal"] == {"name": "Expansion", "stage": "proposal"}


ACCOUNTS = """
query ($id: ID!, $account: ID!) {
  profile(id: $id) {
    accounts { account { id name domain } title roles primary startDate endDate record { id } }
  }
  account(id: $account) {
    name owner { name }
    deals { id }
    members(first: 10) { edges { node { title profile { id } } } pageInfo { hasNextPage } }
  }
}
"""


async def test_account_memberships(client: httpx.AsyncClient, person: Person) -> None:
    got = await data(client, ACCOUNTS, id=person.profile_id, account=person.account_id)
    [membership] = got["profile"]["accounts"]
    assert membership["account"]["id"] == gid("Account", person.account_id)
    assert (membership["title"], membership["roles"], membership["primary"]) == (
        "CTO",
        ["buyer"],
        True,
    )
    assert at(membership["startDate"]) == T0 - timedelta(days=400)
    assert membership["endDate"] is None
    account = got["account"]
    assert account["owner"] == {"name": "Sam Seller"}
    assert {d["id"] for d in account["deals"]} == {
        gid("Deal", person.open_deal_id),
        gid("Deal", person.won_deal_id),
    }
    assert account["members"]["edges"] == [
        {"node": {"title": "CTO", "profile": {"id": gid("Profile", person.profile_id)}}}
    ]


async def test_explain_link(client: httpx.AsyncClient, person: Person) -> None:
    query = """query($id: ID!, $a: ID!, $b: ID!) { profile(id: $id) {
        explainLink(recordA: $a, recordB: $b) {
          from { sourceId } identifier { type value } to { sourceId } } } }"""
    got = await data(
        client,
        query,
        id=person.profile_id,
        a=gid("CustomerRecord", person.crm_key),
        b=person.web_key,
    )
    assert got["profile"]["explainLink"] == [
        {
            "from": {"sourceId": person.crm_key.split(":", 1)[1]},
            "identifier": {"type": "email", "value": person.email},
            "to": {"sourceId": person.web_key.split(":", 1)[1]},
        }
    ]
    # A record of another profile explains nothing.
    got = await data(client, query, id=person.profile_id, a=person.crm_key, b="crm:nobody")
    assert got["profile"]["explainLink"] is None


SEARCH = """
query ($q: String!, $first: Int, $after: String) {
  searchProfiles(query: $q, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id company } }
  }
}
"""


async def test_search_profiles_with_cursor_pagination(
    client: httpx.AsyncClient, driver: AsyncDriver, settings: Settings
) -> None:
    company = "Searchco" + unique("s").replace("-", "")
    people = [await seed_person(driver, settings, interactions=0, company=company) for _ in "abc"]
    expected = {gid("Profile", p.profile_id) for p in people}
    # The search index is eventually consistent: it follows a commit shortly after it.
    await await_search_index(driver, settings.neo4j_database)

    first = (await data(client, SEARCH, q=company.lower(), first=2))["searchProfiles"]
    assert first["totalCount"] == 3  # merged-away profiles are not results
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await data(client, SEARCH, q=company, first=2, after=first["pageInfo"]["endCursor"]))[
        "searchProfiles"
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    found = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert sorted(found) == sorted(expected)

    # By a prefix of the email, and free text with Lucene syntax in it is not an error.
    by_email = (await data(client, SEARCH, q=people[0].email.split("@")[0][:-3]))["searchProfiles"]
    assert gid("Profile", people[0].profile_id) in [e["node"]["id"] for e in by_email["edges"]]
    odd = await gql(client, SEARCH, q='ada AND (" OR :* \\', first=5)
    assert "errors" not in odd, odd


async def test_types_outside_the_enum_are_other(
    client: httpx.AsyncClient, driver: AsyncDriver, settings: Settings
) -> None:
    someone = await seed_person(driver, settings, interactions=3)  # a call, an email, a page
    webinar = InteractionIn(
        id=f"webinar-{someone.tag}",
        source="crm",
        customer_source_id=someone.crm_key.split(":", 1)[1],
        type="webinar",
        occurred_at=T0,
    )
    await write(driver, settings, WriteBatch(interactions=(webinar,)))
    query = """query($id: ID!, $types: [InteractionType!]) { profile(id: $id) {
        computed { interactionCounts { type count } }
        interactions(first: 10, types: $types) { totalCount nodes { id type } } } }"""
    got = (await data(client, query, id=someone.profile_id, types=["OTHER", "CALL"]))["profile"]
    assert {(n["id"], n["type"]) for n in got["interactions"]["nodes"]} == {
        (gid("Interaction", webinar.id), "OTHER"),
        (gid("Interaction", someone.interaction_ids[0]), "CALL"),
    }
    assert got["interactions"]["totalCount"] == 2
    assert {"type": "OTHER", "count": 1} in got["computed"]["interactionCounts"]
