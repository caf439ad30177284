"""No N+1: the Cypher round trips of a request do not grow with the objects it returns."""

from __future__ import annotations

import base64

from neo4j import AsyncDriver

from customer_graph.settings import Settings
from tests.integration.graphql_seed import counting_client, data, seed_many

# 50 profiles with their identifiers, deals (stage history, owner, contacts) and last 10
# interactions (with their owners and records).
PROFILES = """
query ($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Profile {
      id displayName email
      identifiers { type value sources firstSeen lastSeen blocked }
      deals {
        name amount status
        stageHistory { fromStage toStage changedAt durationSeconds }
        owner { name }
        contacts { role record { sourceId } }
      }
      interactions(first: 10) {
        totalCount
        edges { node { id type occurredAt owner { name } record { source } } }
      }
    }
  }
}
"""


def gid(raw: str) -> str:
    return base64.b64encode(f"Profile:{raw}".encode()).decode()


async def _round_trips(settings: Settings, profile_ids: list[str]) -> tuple[int, int]:
    async with counting_client(settings) as (client, counting):
        got = await data(client, PROFILES, ids=[gid(p) for p in profile_ids])
        profiles = got["nodes"]
        assert len(profiles) == len(profile_ids)
        for profile in profiles:
            assert len(profile["identifiers"]) == 2
            [deal] = profile["deals"]
            assert [s["toStage"] for s in deal["stageHistory"]] == ["qualified", "proposal"]
            assert deal["owner"] == {"name": "Owner"}
            page = profile["interactions"]
            assert page["totalCount"] == 12
            assert len(page["edges"]) == 10
            assert all(e["node"]["owner"] == {"name": "Owner"} for e in page["edges"])
        return len(counting.queries), len(profiles)


async def test_round_trips_do_not_grow_with_profiles(
    driver: AsyncDriver, settings: Settings
) -> None:
    ids = await seed_many(driver, settings, 50)
    few, _ = await _round_trips(settings, ids[:5])
    many, n = await _round_trips(settings, ids)
    assert n == 50
    assert few == many
    # profiles, identifiers, deals, stage history, deal owners, contacts, interactions,
    # their count, interaction owners, interaction records: one query each.
    assert many <= 10, many


async def test_round_trips_are_reported_in_extensions(
    driver: AsyncDriver, settings: Settings
) -> None:
    ids = await seed_many(driver, settings, 3, interactions=2)
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Profile { email deals { name } } } }"
    async with counting_client(settings) as (client, counting):
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"ids": [gid(i) for i in ids]}}
        )
        body = response.json()
        assert len([p for p in body["data"]["nodes"] if p["deals"]]) == 3
        assert body["extensions"]["cost"]["graphRoundTrips"] == len(counting.queries) == 2
