"""Identify events/s end to end over HTTP, against the raw floor, in one run.

    python -m bench.ingest [--events 20000] [--clients 8] [--batch 100]

Starts its own Neo4j (bench/neo4j.py: a free port and a folder of its own, never the shared
instance) and a real uvicorn serving the app against it, then measures, in this order:

- floor: the same shape of customers and identifiers (normalized before the clock starts) written
  by one UNWIND MERGE statement, in transactions as large as the workers' micro-batches, one at a
  time (two at once deadlock on shared identifiers and measure the driver's back-off instead),
  with no resolution and no dedup;
- in_process: the same kind of events parsed and submitted to a WorkerPool in this process, 100
  per submission, 8 at once: everything but HTTP, so `http` minus this is the HTTP layer's cost;
- http: identify events POSTed to /v1/batch, `--batch` per request, by `--clients` concurrent
  clients, each answered only after commit: validation, messageId dedup, identity resolution by
  traversal, unified traits; one event in ten is an anonymous visitor giving a known user's email,
  so merges happen as they would in real traffic.

Prints one JSON object: both rates and their ratio, batch latencies, and checks that every event
landed exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from neo4j import AsyncDriver

from bench.floors import write_rows
from bench.neo4j import BenchNeo4jConfig, free_port, running_bench_neo4j
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import driver_for
from customer_graph.graph.normalize import DEFAULT_BLOCKED_PATTERNS, normalize_identifiers
from customer_graph.graph.records import IdentifierIn
from customer_graph.ingestion.segment import parse_request
from customer_graph.ingestion.workers import WorkerPool
from customer_graph.settings import PROJECT_ROOT, Settings

KEY = "cg_bench_ingest_key_0123456789"
SOURCE = "dev"

FLOOR_MERGE = """
UNWIND $rows AS row
MERGE (c:Customer {key: row.key})
SET c.source = row.source, c.sourceId = row.sourceId, c.traits = row.traits,
    c.updatedAt = datetime()
WITH c, row
UNWIND row.identifiers AS ident
MERGE (i:Identifier {key: ident.key})
  ON CREATE SET i.type = ident.type, i.value = ident.value
MERGE (c)-[:HAS_IDENTIFIER]->(i)
"""


def people(prefix: str, count: int, seed: int = 11) -> list[dict[str, Any]]:
    """`count` identify messages. One in ten is an anonymous visitor giving the email of an
    earlier known user, which joins the visitor's record to that user's profile (a merge)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    known: list[int] = []
    for n in range(count):
        traits: dict[str, Any] = {"name": f"Person {n}", "plan": rng.choice(("free", "pro"))}
        message: dict[str, Any] = {
            "type": "identify",
            "messageId": f"{prefix}m{n}",
            "anonymousId": f"{prefix}a{n}",
            "traits": traits,
            "timestamp": "2024-05-01T12:00:00Z",
        }
        if known and rng.random() < 0.1:
            traits["email"] = f"{prefix}p{rng.choice(known)}@bench.example"
        else:
            known.append(n)
            message["userId"] = f"{prefix}u{n}"
            traits["email"] = f"{prefix}p{n}@bench.example"
            traits["phone"] = f"+1 628 {n // 10000 % 1000:03d} {n % 10000:04d}"
        out.append(message)
    return out


def expected_profiles(messages: Sequence[dict[str, Any]]) -> int:
    return sum(1 for m in messages if "userId" in m)


def floor_rows(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for m in messages:
        record_id = m.get("userId") or m["anonymousId"]
        raw = [IdentifierIn("anonymous_id", m["anonymousId"])]
        raw += [IdentifierIn("user_id", m["userId"])] if "userId" in m else []
        raw += [IdentifierIn(t, m["traits"][t]) for t in ("email", "phone") if t in m["traits"]]
        identifiers = normalize_identifiers(
            raw, default_region="US", blocked_patterns=DEFAULT_BLOCKED_PATTERNS
        )
        rows.append(
            {
                "key": f"{SOURCE}:{record_id}",
                "source": SOURCE,
                "sourceId": record_id,
                "traits": json.dumps(m["traits"]),
                "identifiers": [
                    {"key": i.key, "type": i.type, "value": i.value} for i in identifiers
                ],
            }
        )
    return rows


async def measure_floor(
    driver: AsyncDriver, database: str, rows: list[dict[str, Any]], batch: int, writers: int
) -> dict[str, Any]:
    seconds = await write_rows(driver, database, FLOOR_MERGE, rows, batch, writers)
    return {
        "events": len(rows),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(rows) / seconds, 1),
        "batch": batch,
        "concurrent_transactions": writers,
    }


async def measure_http(
    base: str, messages: Sequence[dict[str, Any]], batch: int, clients: int
) -> dict[str, Any]:
    batches = [list(messages[i : i + batch]) for i in range(0, len(messages), batch)]
    batches.reverse()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(http: httpx.AsyncClient) -> None:
        while batches:
            body = {"batch": batches.pop()}
            while True:
                t0 = time.perf_counter()
                response = await http.post("/v1/batch", json=body)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    break
                if response.status_code != 503:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

    limits = httpx.Limits(max_connections=clients)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        base_url=base, timeout=300, limits=limits, headers=headers
    ) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "events": len(messages),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(messages) / seconds, 1),
        "batch": batch,
        "clients": clients,
        "batch_p50_ms": round(latencies[len(latencies) // 2], 1),
        "batch_p95_ms": round(latencies[int(len(latencies) * 0.95)], 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def measure_in_process(
    driver: AsyncDriver, settings: Settings, messages: Sequence[dict[str, Any]], batch: int
) -> dict[str, Any]:
    received = datetime.now(UTC)
    requests = [
        parse_request(
            {"batch": list(messages[i : i + batch])}, kind=None, source=SOURCE, received_at=received
        )
        for i in range(0, len(messages), batch)
    ]
    requests.reverse()
    pool = WorkerPool.for_neo4j(driver, settings)
    pool.start()

    async def client() -> None:
        while requests:
            await pool.submit(requests.pop())

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client() for _ in range(8)))
    finally:
        await pool.stop()
    seconds = time.perf_counter() - started
    return {
        "events": len(messages),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(messages) / seconds, 1),
    }


@contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "NEO4J_URI": settings.bolt_uri,
        "NEO4J_USER": settings.neo4j_user,
        "NEO4J_PASSWORD": settings.neo4j_password,
        "NEO4J_DATABASE": settings.neo4j_database,
        "CUSTOMER_GRAPH_DEV_KEY": KEY,
        "CUSTOMER_GRAPH_LOG_LEVEL": "WARNING",
    }
    argv = [
        sys.executable,
        *("-m", "uvicorn", "--factory", "customer_graph.app:app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
    ]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError("the API exited during start-up")
            time.sleep(0.3)
        else:
            raise RuntimeError("the API was not ready in time")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


async def landed(driver: AsyncDriver, database: str, prefix: str) -> dict[str, int]:
    records, _, _ = await driver.execute_query(
        "CALL () { MATCH (m:Message) WHERE m.id STARTS WITH $m RETURN count(m) AS messages } "
        "CALL () { MATCH (c:Customer) WHERE c.key STARTS WITH $c RETURN count(c) AS customers } "
        "CALL () { MATCH (c:Customer)-[:RESOLVES_TO]->(p:Profile) WHERE c.key STARTS WITH $c "
        "  RETURN count(DISTINCT p) AS profiles } "
        "RETURN messages, customers, profiles",
        m=f"{SOURCE}:{prefix}",
        c=f"{SOURCE}:{prefix}",
        database_=database,
    )
    return dict(records[0].data())


async def run(args: argparse.Namespace, settings: Settings, base: str) -> dict[str, Any]:
    database = settings.neo4j_database
    async with driver_for(settings) as driver:
        await ensure_schema(driver, database)
        # Warm both paths up (JIT, page cache, connection pools) before any clock starts.
        await measure_floor(driver, database, floor_rows(people("wf-", 500)), 500, 1)
        await measure_http(base, people("wh-", 1000), args.batch, args.clients)

        floor = await measure_floor(
            driver, database, floor_rows(people("f-", args.events)), settings.ingest_batch_max, 1
        )
        in_process = await measure_in_process(
            driver, settings, people("p-", args.events), args.batch
        )
        messages = people("h-", args.events)
        http = await measure_http(base, messages, args.batch, args.clients)
        check = await landed(driver, database, "h-")
    return {
        "identify_http": http,
        "floor_unwind_merge": floor,
        "identify_in_process": in_process,
        "ratio_http_to_floor": round(http["events_per_s"] / floor["events_per_s"], 3),
        "landed": check,
        "exactly_once": check["messages"] == args.events == check["customers"],
        "profiles_as_expected": check["profiles"] == expected_profiles(messages),
        "ingest_workers": settings.ingest_workers,
        "ingest_batch_max": settings.ingest_batch_max,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache-mb", type=int, default=1024)
    args = parser.parse_args()
    config = BenchNeo4jConfig(heap=args.heap, pagecache_mb=args.pagecache_mb)
    with running_bench_neo4j(Settings(), config) as (_, settings), api_server(settings) as base:
        result = asyncio.run(run(args, settings, base))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
