"""The profile page in one round trip: `profile` reads what its selection asks for at once.

The look-ahead in the `profile` resolver reads identifiers, a timeline page and deals in the
profile's own statement and fills their DataLoaders. Its answers are compared with those of
`node(id)`, which reads each part through its own loader, on the same data.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.schema.node import to_global_id
from customer_graph.settings import Settings
from tests.helpers import unique
from tests.integration.graphql_seed import Person, counting_client, data, gql, seed_person

PAGE_FIELDS = """
fragment Page on Profile {
  id displayName email phone company traits createdAt updatedAt
  identifiers { type value sources firstSeen lastSeen blocked matched }
  timeline(first: $first, after: $after) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node {
        __typename
        ... on Interaction {
          id type name subject channel direction occurredAt durationSeconds owner { name }
        }
        ... on StageChange { id fromStage toStage changedAt durationSeconds deal { id name } }
        ... on MergeEvent { id at survivorId mergedIds }
        ... on SplitEvent { id at reason }
      }
    }
  }
  deals(status: $status) {
    id name amount currency pipeline stage status createdAt closedAt
    stageHistory { fromStage toStage changedAt durationSeconds }
  }
}
"""

BY_PROFILE = (
    """
query ($id: ID!, $first: Int!, $after: String, $status: DealStatus) {
  profile(id: $id) { ...Page }
}
"""
    + PAGE_FIELDS
)

BY_NODE = (
    """
query ($gid: ID!, $first: Int!, $after: String, $status: DealStatus) {
  node(id: $gid) { ...Page }
}
"""
    + PAGE_FIELDS
)


def gid(raw: str) -> str:
    return base64.b64encode(f"Profile:{raw}".encode()).decode()


async def _by_profile_and_node(
    client: tuple[httpx.AsyncClient, Any], raw_id: str, selection: str, fragment: str = ""
) -> tuple[Any, Any, list[str]]:
    """`selection` under `profile(id)` (read with the profile) and under `node(id)` (each part
    through its own loader), and the statements the first ran."""
    http, counting = client
    before = len(counting.queries)
    page = await data(
        http,
        "query ($id: ID!) { profile(id: $id) { " + selection + " } }" + fragment,
        id=raw_id,
    )
    statements = counting.queries[before:]
    by_node = await data(
        http,
        "query ($gid: ID!) { node(id: $gid) { ... on Profile { " + selection + " } } }" + fragment,
        gid=gid(raw_id),
    )
    return page["profile"], by_node["node"], statements


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def person(driver: AsyncDriver, settings: Settings) -> Person:
    return await seed_person(driver, settings, interactions=9)


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with counting_client(settings) as pair:
        yield pair


async def _page(
    http: httpx.AsyncClient, raw_id: str, first: int, after: str | None, status: str | None
) -> tuple[dict[str, Any], int]:
    body = await gql(http, BY_PROFILE, id=raw_id, first=first, after=after, status=status)
    assert not body.get("errors"), body
    return body["data"]["profile"], body["extensions"]["cost"]["graphRoundTrips"]


async def test_page_is_one_round_trip_and_matches_the_loaders(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    http, counting = client
    for raw_id in (person.profile_id, person.merged_id):
        for status in (None, "OPEN"):
            before = len(counting.queries)
            page, round_trips = await _page(http, raw_id, 5, None, status)
            assert round_trips == 1 == len(counting.queries) - before
            by_node = await data(
                http, BY_NODE, gid=gid(person.profile_id), first=5, after=None, status=status
            )
            assert page == by_node["node"]
            assert page["id"] == gid(person.profile_id)
            assert len(page["identifiers"]) == 3  # email (shared), crm id, anonymous id
            assert len(page["timeline"]["edges"]) == 5
            assert page["timeline"]["pageInfo"]["hasNextPage"] is True
            deals = {d["name"]: d for d in page["deals"]}
            assert set(deals) == ({"Expansion"} if status else {"Expansion", "First order"})
            history = deals["Expansion"]["stageHistory"]
            assert [s["toStage"] for s in history] == ["qualified", "proposal"]
            assert history[0]["durationSeconds"] == 3 * 24 * 3600
            assert history[1]["durationSeconds"] is None


async def test_timeline_pages_through_the_look_ahead(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    http, _ = client
    seen: list[Any] = []
    after = None
    while True:
        page, round_trips = await _page(http, person.profile_id, 4, after, None)
        by_node = await data(
            http, BY_NODE, gid=gid(person.profile_id), first=4, after=after, status=None
        )
        assert page == by_node["node"]
        assert round_trips == 1
        timeline = page["timeline"]
        seen += [e["node"] for e in timeline["edges"]]
        after = timeline["pageInfo"]["endCursor"]
        if not timeline["pageInfo"]["hasNextPage"]:
            break
    kinds = [n["__typename"] for n in seen]
    assert (kinds.count("Interaction"), kinds.count("StageChange"), kinds.count("MergeEvent")) == (
        9,
        3,
        1,
    )


async def test_selections_the_look_ahead_does_not_cover_still_resolve(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    http, _ = client
    # Two timeline pages of different sizes: neither is read ahead; both are right.
    query = """
    query ($id: ID!) {
      profile(id: $id) {
        identifiers { value }
        a: timeline(first: 2) { edges { cursor } }
        b: timeline(first: 3) { edges { cursor } }
      }
    }
    """
    body = await gql(http, query, id=person.profile_id)
    assert not body.get("errors"), body
    got = body["data"]["profile"]
    assert [e["cursor"] for e in got["b"]["edges"]][:2] == [e["cursor"] for e in got["a"]["edges"]]
    assert len(got["identifiers"]) == 3

    # A bad cursor is still the timeline's error, and the rest of the profile resolves.
    body = await gql(
        http,
        'query ($id: ID!) { profile(id: $id) { email timeline(first: 2, after: "x") { '
        "edges { cursor } } } }",
        id=person.profile_id,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    assert body["errors"][0]["path"] == ["profile", "timeline"]

    # Nothing to read ahead: the plain profile read; an unknown id is null.
    for raw_id, expected in ((person.profile_id, person.email), (unique("nobody"), None)):
        body = await gql(http, "query ($id: ID!) { profile(id: $id) { email } }", id=raw_id)
        assert body["extensions"]["cost"]["graphRoundTrips"] == 1
        assert (body["data"]["profile"] or {}).get("email") == expected
        body = await gql(http, "query ($id: ID!) { profile(id: $id) { deals { id } } }", id=raw_id)
        assert body["extensions"]["cost"]["graphRoundTrips"] == 1
        assert (body["data"]["profile"] is None) == (expected is None)


async def test_profile_by_identifier_reads_its_page_at_once(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    http, _ = client
    query = """
    query ($value: String!) {
      profileByIdentifier(type: "email", value: $value) {
        id identifiers { value } timeline(first: 3) { edges { cursor } } deals { name }
      }
    }
    """
    body = await gql(http, query, value=person.email.upper())
    assert not body.get("errors"), body
    got = body["data"]["profileByIdentifier"]
    assert got["id"] == gid(person.profile_id)
    assert len(got["timeline"]["edges"]) == 3
    assert {d["name"] for d in got["deals"]} == {"Expansion", "First order"}
    assert body["extensions"]["cost"]["graphRoundTrips"] == 2


async def test_fields_that_load_only_when_needed(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # A deal's stage history comes with the deal, but each change's `deal` is loaded: the
    # resolver that is synchronous for the timeline awaits here.
    http, _ = client
    query = """
    query ($id: ID!) {
      deal(id: $id) {
        name stage stageHistory { toStage durationSeconds deal { id name stage } }
      }
    }
    """
    got = (await data(http, query, id=person.open_deal_id))["deal"]
    history = got["stageHistory"]
    assert [c["toStage"] for c in history] == ["qualified", "proposal"]
    assert [c["durationSeconds"] for c in history] == [3 * 24 * 3600, None]
    assert all(c["deal"]["name"] == "Expansion" == got["name"] for c in history)
    assert all(c["deal"]["stage"] == got["stage"] for c in history)


async def test_a_stage_change_on_the_timeline_knows_its_deals_whole_history(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # Its duration runs to the deal's next change, as in the deal's own stage history.
    http, _ = client
    query = """
    query ($id: ID!) {
      profile(id: $id) {
        timeline(first: 50) {
          edges { node { ... on StageChange {
            toStage durationSeconds deal { name stageHistory { toStage durationSeconds } }
          } } }
        }
        deals { name stageHistory { toStage durationSeconds } }
      }
    }
    """
    profile = (await data(http, query, id=person.profile_id))["profile"]
    histories = {d["name"]: d["stageHistory"] for d in profile["deals"]}
    changes = [e["node"] for e in profile["timeline"]["edges"] if e["node"]]
    assert len(changes) == 3
    for change in changes:
        history = histories[change["deal"]["name"]]
        assert change["deal"]["stageHistory"] == history
        own = next(c for c in history if c["toStage"] == change["toStage"])
        assert change["durationSeconds"] == own["durationSeconds"]
    qualified = next(c for c in changes if c["toStage"] == "qualified")
    assert qualified["durationSeconds"] == 3 * 24 * 3600


# One timeline selection per line: each reads only the keys its field names need.
TIMELINE_SELECTIONS = (
    "... on Interaction { id }",
    "... on Interaction { type occurredAt subject }",
    "... on Interaction { name channel direction durationSeconds source messageId }",
    "... on Interaction { body properties }",
    "... on Interaction { owner { id name email } }",
    "... on Interaction { deal { id name } account { id name } }",
    "... on Interaction { record { id source sourceId } profile { id } }",
    "... on StageChange { id toStage }",
    "... on StageChange { durationSeconds }",
    "... on StageChange { deal { name stage } }",
    "...Item",
)
ITEM_FRAGMENT = """
fragment Item on TimelineItem {
  ... on Interaction { id body properties owner { name } }
  ... on StageChange { durationSeconds }
}
"""


async def test_timeline_reads_only_what_its_selection_shows(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # Whatever the timeline's selection, the page read with the profile answers as the loaders
    # do (the `node` path reads the full timeline through its own loader).
    http, _ = client
    for selection in TIMELINE_SELECTIONS:
        timeline = "timeline(first: 20) { edges { cursor node { __typename " + selection + " } } }"
        fragment = ITEM_FRAGMENT if "...Item" in selection else ""
        page, by_node, page_queries = await _by_profile_and_node(
            client, person.profile_id, timeline, fragment
        )
        assert page == by_node, selection
        assert len(page["timeline"]["edges"]) == 13, selection
        if selection == "... on Interaction { id }":
            # Nothing but ids: no body, properties or owner read, and no deals with changes.
            assert len(page_queries) == 1
            assert ".body" not in page_queries[0] and "OWNS" not in page_queries[0]
            assert "history:" not in page_queries[0]

    # The full shapes of what the fixture wrote come through a trimmed read unchanged.
    got = await data(
        http,
        "query ($id: ID!) { profile(id: $id) { timeline(first: 20) { edges { node { "
        "... on Interaction { subject properties owner { name } deal { name } } } } } } }",
        id=person.profile_id,
    )
    calls = [
        e["node"]
        for e in got["profile"]["timeline"]["edges"]
        if e["node"] and (e["node"].get("subject") or "").startswith("call")
    ]
    assert calls and all(c["owner"] == {"name": "Sam Seller"} for c in calls)
    assert all(c["deal"] == {"name": "Expansion"} for c in calls)
    assert {c["properties"]["n"] for c in calls} == {0, 3, 6}


async def test_two_selections_of_one_timeline_page_each_get_theirs(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # Two aliases of one profile with one timeline page each: one asks for ids only, the other
    # for bodies, properties and owners. Neither answer is served from the other's read.
    http, _ = client
    small = "timeline(first: 20) { edges { node { ... on Interaction { id } } } }"
    large = (
        "timeline(first: 20) { edges { node { ... on Interaction { id subject properties "
        "owner { name } } ... on StageChange { durationSeconds } } } }"
    )
    for first, second in ((small, large), (large, small)):
        got = await data(
            http,
            "query ($id: ID!) { a: profile(id: $id) { " + first + " } "
            "b: profile(id: $id) { " + second + " } }",
            id=person.profile_id,
        )
        full = await data(
            http,
            "query ($gid: ID!) { node(id: $gid) { ... on Profile { " + large + " } } }",
            gid=gid(person.profile_id),
        )
        wide = got["a"] if first == large else got["b"]
        narrow = got["b"] if first == large else got["a"]
        assert wide == full["node"]
        assert [e["node"].get("id") for e in narrow["timeline"]["edges"]] == [
            e["node"].get("id") for e in wide["timeline"]["edges"]
        ]


# Deal selections, under `deals` and under a stage change on the timeline: each reads only the
# parts of a deal (owner and account ids, stage history) its field names need.
DEAL_SELECTIONS = (
    "deals { id name }",
    "deals { owner { name } }",
    "deals { account { name } stageHistory { toStage durationSeconds } }",
    "a: deals { id } b: deals(status: OPEN) { owner { name } stageHistory { toStage } }",
    "timeline(first: 20) { edges { node { ... on StageChange { deal { id name } } } } }",
    "timeline(first: 20) { edges { node { ... on StageChange { durationSeconds deal { id } } } } }",
    "timeline(first: 20) { edges { node { ... on StageChange { deal { owner { name } "
    "account { name } stageHistory { toStage } } } } } }",
    "timeline(first: 20) { edges { node { ... on Interaction { owner { name } } "
    "... on StageChange { deal { name } } } } }",
    "timeline(first: 20) { edges { node { ...Change } } }",
)
CHANGE_FRAGMENT = "fragment Change on StageChange { deal { owner { email } } }"


async def test_deals_read_only_what_their_selection_shows(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # Whatever the selection, the deals read with the profile answer as the loaders do.
    http, counting = client
    for selection in DEAL_SELECTIONS:
        fragment = CHANGE_FRAGMENT if "...Change" in selection else ""
        page, by_node, statements = await _by_profile_and_node(
            client, person.profile_id, selection, fragment
        )
        # One statement for the page; owners and accounts come through their own loaders.
        assert "UNWIND $requests" in statements[0], selection
        assert page == by_node, selection
    owners = await data(
        http,
        "query ($id: ID!) { profile(id: $id) { deals { owner { name } account { name } } } }",
        id=person.profile_id,
    )
    company = (
        await data(http, "query ($id: ID!) { profile(id: $id) { company } }", id=person.profile_id)
    )["profile"]["company"]
    assert (
        owners["profile"]["deals"]
        == [{"owner": {"name": "Sam Seller"}, "account": {"name": company}}] * 2
    )

    # A page that shows stage changes with their deals' names: neither deals' owners and
    # accounts, nor the stage changes' deals' history (an interaction's owner and duration are
    # not a deal's).
    before = len(counting.queries)
    await data(
        http,
        BY_PROFILE.replace("changedAt durationSeconds deal", "changedAt deal"),
        id=person.profile_id,
        first=20,
        after=None,
        status="OPEN",
    )
    (statement,) = counting.queries[before:]
    assert "dealOwner" not in statement and "dealAccount" not in statement
    assert statement.count("history:") == 1  # the deals' own, for their stageHistory


async def test_a_deal_read_with_less_is_not_served_to_other_selections(
    client: tuple[httpx.AsyncClient, Any], person: Person
) -> None:
    # The profile's deals and its stage changes' deals are read without owner, account or
    # history. A call's deal, loaded by id once they are read, still gets all of them.
    selection = (
        "deals { id name } timeline(first: 20) { edges { node { "
        "... on Interaction { deal { name owner { name } account { id } "
        "stageHistory { toStage } } } "
        "... on StageChange { deal { id name } } } } }"
    )
    page, by_node, _ = await _by_profile_and_node(client, person.profile_id, selection)
    assert page == by_node
    deals = [e["node"].get("deal") for e in page["timeline"]["edges"]]
    of_calls = [d for d in deals if d and "owner" in d]
    assert len(of_calls) == 3
    for deal in of_calls:
        assert deal["owner"] == {"name": "Sam Seller"}
        assert deal["account"] == {"id": to_global_id("Account", person.account_id)}
        assert [c["toStage"] for c in deal["stageHistory"]] == ["qualified", "proposal"]
