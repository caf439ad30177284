"""The profile page over HTTP, beside its floor: the same data by hand-written Cypher.

    python -m bench.profile_page [--records 10000,100000] [--requests 300] [--concurrency 1,4]

The "profile page" is what a frontend shows for one person: the profile, its identifiers, the 20
newest timeline items, and its open deals with their stage history. It is measured as clients
see it (GraphQL over HTTP against a real uvicorn, DataLoaders and guards included) and as the
floor: one hand-written Cypher statement through the driver returning the same data, with no
HTTP, no GraphQL and no resolvers in the way. Both run in the same process against the same
private Neo4j (a LocalNeo4j under .local/bench-api-neo4j on a free port, never the shared one),
at each size, on the same profiles: CRM contacts, who have deals and activity.

Data comes from the seeded generator (bench/generator.py) through the real write path; the
sizes are cumulative (10k records, then 90k more to reach 100k).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from neo4j import READ_ACCESS, AsyncDriver, Record, RoutingControl

from bench.api import ApiServer, LoadClient, LoadResult, run_load
from bench.generator import GeneratorConfig, generate, write_batches
from bench.neo4j import free_port
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.local import LocalNeo4j
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.settings import PROJECT_ROOT, Settings

HOME: Final = PROJECT_ROOT / ".local" / "bench-api-neo4j"
BATCH: Final = 500

PROFILE_PAGE_QUERY: Final = """
query ProfilePage($id: ID!) {
  profile(id: $id) {
    id displayName email phone company traits createdAt updatedAt
    identifiers { type value sources firstSeen lastSeen blocked }
    timeline(first: 20) {
      pageInfo { hasNextPage endCursor }
      edges {
        cursor
        node {
          __typename
          ... on Interaction {
            id type name subject channel direction occurredAt durationSeconds owner { name }
          }
          ... on StageChange { fromStage toStage changedAt deal { id name } }
          ... on MergeEvent { id at survivorId mergedIds }
          ... on SplitEvent { id at reason }
        }
      }
    }
    deals(status: OPEN) {
      id name amount currency pipeline stage status createdAt
      stageHistory { fromStage toStage changedAt durationSeconds }
    }
  }
}
"""

# The floor: the same fields in one statement. Stage durations are computed beside it in Python,
# as the API computes them.
PROFILE_PAGE_FLOOR: Final = """
MATCH (start:Profile {id: $id})
OPTIONAL MATCH (start)-[:MERGED_INTO*1..50]->(s:Profile) WHERE NOT (s)-[:MERGED_INTO]->()
WITH coalesce(s, start) AS p
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(c:Customer)-[h:HAS_IDENTIFIER]->(i:Identifier)
  WITH i, collect(DISTINCT c.source) AS sources, min(h.firstSeen) AS firstSeen,
       max(h.lastSeen) AS lastSeen
  RETURN collect(i {.type, .value, .blocked, sources: sources, firstSeen: firstSeen,
                    lastSeen: lastSeen}) AS identifiers
}
CALL (p) {
  CALL (p) {
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:HAD]->(x:Interaction)
    RETURN x.occurredAt AS at, 'interaction:' + x.id AS key, x AS node
    UNION ALL
    MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal)
    WITH DISTINCT d
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    RETURN s.changedAt AS at, 'stage:' + s.id AS key, s AS node
    UNION ALL
    MATCH (p)<-[:MERGED_INTO*0..50]-(:Profile)<-[:MERGED]-(m:MergeEvent)
    WITH DISTINCT m
    RETURN m.at AS at, 'merge:' + m.id AS key, m AS node
    UNION ALL
    MATCH (p)<-[:SPLIT]-(e:SplitEvent)
    RETURN e.at AS at, 'split:' + e.id AS key, e AS node
  }
  WITH at, key, node ORDER BY at DESC, key DESC LIMIT 21
  RETURN collect(CASE
    WHEN node:Interaction THEN
      node {.id, .type, .name, .subject, .channel, .direction, .occurredAt, .durationSeconds,
            owner: head([(o:Owner)-[:OWNS]->(node) | o.name])}
    WHEN node:StageChange THEN
      node {.fromStage, .toStage, .changedAt,
            deal: head([(d:Deal)-[:HAD_STAGE_CHANGE]->(node) | d {.id, .name}])}
    WHEN node:MergeEvent THEN node {.id, .at, .survivorId, .mergedIds}
    ELSE node {.id, .at, .reason}
  END) AS timeline
}
CALL (p) {
  MATCH (p)<-[:RESOLVES_TO]-(:Customer)-[:CONTACT_ON]->(d:Deal {status: 'open'})
  WITH DISTINCT d
  CALL (d) {
    MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
    WITH s ORDER BY s.changedAt, s.id
    RETURN collect(s {.fromStage, .toStage, .changedAt}) AS history
  }
  RETURN collect(d {.id, .name, .amount, .currency, .pipeline, .stage, .status, .createdAt,
                    .closedAt, history: history}) AS deals
}
RETURN p {.id, .displayName, .email, .phone, .company, .traits, .createdAt, .updatedAt}
       AS profile, identifiers, timeline, deals
"""


async def floor_page(driver: AsyncDriver, database: str, profile_id: str) -> bool:
    """The floor as the driver's documentation writes a read: `execute_query`, a managed
    transaction (BEGIN, RUN and PULL, COMMIT)."""
    records, _, _ = await driver.execute_query(
        PROFILE_PAGE_FLOOR, id=profile_id, database_=database, routing_=RoutingControl.READ
    )
    return _with_durations(records)


async def floor_page_autocommit(driver: AsyncDriver, database: str, profile_id: str) -> bool:
    """The same statement as an auto-commit transaction (RUN and PULL only), as the API reads:
    a stricter floor, reported beside the first."""
    async with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
        result = await session.run(PROFILE_PAGE_FLOOR, id=profile_id)
        records = (await result.to_eager_result()).records
    return _with_durations(records)


def _with_durations(records: list[Record]) -> bool:
    if not records:
        return False
    for deal in records[0]["deals"]:
        history = deal["history"]
        for n, change in enumerate(history):
            end = history[n + 1]["changedAt"] if n + 1 < len(history) else deal["closedAt"]
            change["durationSeconds"] = (
                (end.to_native() - change["changedAt"].to_native()).total_seconds()
                if end is not None
                else None
            )
    return True


class Api:
    """The profile page over HTTP, checked for errors (a failed page is not timed)."""

    def __init__(self, http: LoadClient) -> None:
        self.http = http
        self.last_error: str | None = None
        self.round_trips: list[int] = []

    async def page(self, profile_id: str) -> bool:
        status, body = await self.http.post_json(
            "/graphql", {"query": PROFILE_PAGE_QUERY, "variables": {"id": profile_id}}
        )
        if status != 200 or not isinstance(body, dict) or body.get("errors"):
            self.last_error = json.dumps(body)[:500]
            return False
        if not body["data"]["profile"]:
            self.last_error = f"not found: {profile_id}"
            return False
        self.round_trips.append(body["extensions"]["cost"]["graphRoundTrips"])
        return True


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@contextmanager
def private_neo4j(base: Settings, heap: str, pagecache_mb: int, keep: bool) -> Iterator[Settings]:
    port = free_port()
    local = LocalNeo4j(
        home=HOME / str(port),
        port=port,
        user=base.neo4j_user,
        password=base.neo4j_password,
        heap=heap,
        pagecache_mb=pagecache_mb,
    )
    shutil.rmtree(local.home, ignore_errors=True)
    log(f"starting a private Neo4j on port {port} under {local.home}")
    local.start(timeout=300)
    try:
        yield base.model_copy(update={"neo4j_uri": local.uri})
    finally:
        local.stop()
        if not keep:
            shutil.rmtree(local.home, ignore_errors=True)


async def load(
    driver: AsyncDriver, settings: Settings, step: int, records: int
) -> tuple[list[str], dict[str, Any]]:
    """Write `records` more records through the write path; CRM record keys and figures."""
    data = generate(
        GeneratorConfig(records=records, seed=11 + step, prefix=f"p{step}-", block=step)
    )
    config = resolution_config(settings)
    t0 = time.perf_counter()
    for batch in write_batches(data, BATCH):
        await write_batch(driver, settings.neo4j_database, batch, config)
    seconds = time.perf_counter() - t0
    figures = {
        "records": len(data.customers),
        "interactions": len(data.interactions),
        "deals": len(data.deals),
        "load_seconds": round(seconds, 1),
        "records_per_s": round(len(data.customers) / seconds, 1),
    }
    return [c.key for c in data.customers if c.source == "crm"], figures


TARGETS: Final = """
UNWIND $keys AS key
MATCH (:Customer {key: key})-[:RESOLVES_TO]->(p:Profile)
RETURN DISTINCT p.id AS id
"""


async def targets(driver: AsyncDriver, database: str, keys: list[str], n: int) -> list[str]:
    records, _, _ = await driver.execute_query(
        TARGETS, keys=keys, database_=database, routing_=RoutingControl.READ
    )
    ids = sorted(r["id"] for r in records)
    random.Random(5).shuffle(ids)
    return ids[:n]


def summary(http: LoadResult, floor: LoadResult, round_trips: list[int]) -> dict[str, Any]:
    h, f = http.summary(), floor.summary()
    return {
        "concurrency": http.concurrency,
        "requests": http.requests,
        "http_p50_ms": h["p50_ms"],
        "http_p95_ms": h["p95_ms"],
        "http_requests_per_s": h["requests_per_s"],
        "floor_p50_ms": f["p50_ms"],
        "floor_p95_ms": f["p95_ms"],
        "floor_requests_per_s": f["requests_per_s"],
        "p50_ratio": round(h["p50_ms"] / f["p50_ms"], 2) if f["p50_ms"] else None,
        "errors": http.errors + floor.errors,
        "cypher_round_trips_per_page": max(round_trips, default=None),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.records.split(",")]
    results: dict[str, Any] = {"sizes": []}
    base = Settings()
    with private_neo4j(base, args.heap, args.pagecache_mb, args.keep) as settings:
        driver = open_driver(settings)
        server: ApiServer | None = None
        try:
            await ensure_schema(driver, settings.neo4j_database)
            server = ApiServer(settings, HOME / "api.log")
            crm_keys: list[str] = []
            total = 0
            for step, size in enumerate(sizes):
                log(f"loading {size - total} records (to {size})")
                keys, loaded = await load(driver, settings, step, size - total)
                crm_keys += keys
                total = size
                log(f"loaded: {json.dumps(loaded)}")
                ids = await targets(driver, settings.neo4j_database, crm_keys, args.profiles)
                if not server.running():
                    server.start()
                point: dict[str, Any] = {"total_records": total, "load": loaded, "runs": []}
                http = LoadClient(server.url, {"Authorization": f"Bearer {server.key}"})
                try:
                    api = Api(http)
                    for concurrency in [int(c) for c in args.concurrency.split(",")]:
                        api.round_trips.clear()
                        over_http = await run_load(api.page, ids, args.requests, concurrency)
                        if over_http.errors:
                            log(f"HTTP errors: {over_http.errors}; last: {api.last_error}")

                        async def by_cypher(pid: str) -> bool:
                            return await floor_page(driver, settings.neo4j_database, pid)

                        floor = await run_load(by_cypher, ids, args.requests, concurrency)
                        row = summary(over_http, floor, api.round_trips)
                        point["runs"].append(row)
                        log(f"{total} records: {json.dumps(row)}")
                finally:
                    await http.close()
                results["sizes"].append(point)
        finally:
            if server is not None:
                server.stop()
            await driver.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="10000", help="cumulative sizes, e.g. 10000,100000")
    parser.add_argument("--requests", type=int, default=300, help="timed pages per measurement")
    parser.add_argument("--concurrency", default="1,4", help="closed-loop clients, e.g. 1,4")
    parser.add_argument("--profiles", type=int, default=200, help="distinct profiles asked for")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--pagecache-mb", type=int, default=2048)
    parser.add_argument("--keep", action="store_true", help="keep the Neo4j folder afterwards")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
