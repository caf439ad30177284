"""`make bench`: measure what users feel, each figure beside a floor measured in the same run.

    python -m bench [--size small|default|1m] [--out bench/results.json] [--plots docs/bench]

A private Neo4j (bench/neo4j.py, never the shared one) and a real uvicorn API process are started
and stopped here. Data comes from the seeded generator (bench/generator.py). Figures:

- write_path: records/s through `write_batch` while loading each scale step;
- scale: profile page and profileByIdentifier over HTTP at each size, with the Cypher floor;
- profile_page: p50/p95/p99 and requests/s at 1, 4 and 16 clients (at 100k records by default);
- long_list: 1,000 timeline items in one query, time per item;
- quality: pairwise precision and recall against the generator's ground truth;
- re_resolution: full re-resolution of every profile;
- ingest: identify and track events/s over HTTP, against the raw UNWIND MERGE floor;
- import: CRM rows/s through `customer-graph import`;
- memory: peak RSS (VmHWM) of the API process.

A figure whose part of the product is missing or fails is recorded with its error, and the run
goes on: results.json says what was and was not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from neo4j import AsyncDriver

from bench import floors
from bench.api import (
    ApiServer,
    ClientError,
    LoadClient,
    LoadResult,
    percentile,
    run_interleaved,
    run_load,
)
from bench.cpu import CpuMeter, ProcessCpu, cpu_ceiling, cpu_summary
from bench.generator import (
    Dataset,
    GeneratorConfig,
    components,
    generate,
    segment_messages,
    write_batches,
)
from bench.neo4j import BenchNeo4jConfig, running_bench_neo4j
from bench.profile_page import floor_page_autocommit as profile_page_floor_autocommit
from bench.quality import pair_quality, resolved_profiles
from customer_graph.auth import Scope, create_key
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.records import WriteBatch
from customer_graph.settings import PROJECT_ROOT, Settings

RESULTS = PROJECT_ROOT / "bench" / "results.json"
PLOTS = PROJECT_ROOT / "docs" / "bench"
DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
WORK = PROJECT_ROOT / ".local" / "bench-work"


@dataclass(frozen=True)
class Size:
    name: str
    scale: tuple[int, ...]  # customer records after each load step
    page_requests: int  # profile-page requests per measurement with one client
    sample_profiles: int
    ingest_people: int  # web/app people whose events go through HTTP
    import_records: int  # CRM contacts (and their accounts, deals, activities) to import
    heavy_people: int = 10
    max_seconds: float = 45.0  # per latency measurement: no new request after this long
    warm_max_seconds: float = 180.0  # the ingestion warm-up's bound (_warm_ingestion)
    neo4j: BenchNeo4jConfig = field(default_factory=BenchNeo4jConfig)


SIZES: dict[str, Size] = {
    "small": Size(
        "small",
        (1_500, 4_000),
        200,
        100,
        1_000,
        800,
        neo4j=BenchNeo4jConfig(heap="1g", pagecache_mb=512),
        max_seconds=15.0,
        warm_max_seconds=30.0,
    ),
    "default": Size("default", (10_000, 100_000), 1_000, 300, 12_000, 2_000),
    "1m": Size(
        "1m",
        (10_000, 100_000, 1_000_000),
        1_000,
        300,
        6_000,
        5_000,
        neo4j=BenchNeo4jConfig(heap="4g", pagecache_mb=6144),
    ),
}
# Ingestion is measured on a warm server: warm-up rounds run until the JIT compiler's share of
# Neo4j's CPU stays under WARM_JIT_SHARE for WARM_SETTLED_ROUNDS rounds in a row (one round's
# share is noisy), or for the size's `warm_max_seconds` at most.
WARM_JIT_SHARE = 0.10
WARM_SETTLED_ROUNDS = 3
WARM_ROUND_RECORDS = 4_000
# Ingestion and its floor are measured in turns, INGEST_PAIRS times, each time on data of their
# own: a pair's two figures are seconds apart, so a change in the machine's speed moves both.
# The figures reported are those of the pair with the median ratio; every pair is kept.
INGEST_PAIRS = 3
CONCURRENCY = (1, 4, 16)
WRITERS = 2  # concurrent write_batch calls while loading
BATCH = 500


class _RetryCounter(logging.Handler):
    """Counts the driver's transaction retries (deadlocks, transient errors) instead of printing
    each one; its notifications about labels that do not exist yet are dropped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "will be retried" in record.getMessage():
            self.retries += 1


RETRIES = _RetryCounter()


def quiet_driver_logs() -> None:
    driver_log = logging.getLogger("neo4j")
    driver_log.handlers[:] = [RETRIES]
    driver_log.propagate = False
    driver_log.setLevel(logging.WARNING)


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the product's parts, looked up when they exist ------------------------------------------


def optional(module: str, name: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class Writer:
    """`write_batch` with the resolution config from settings (graph/writes.py, resolution.py)."""

    def __init__(self, settings: Settings):
        write_batch = optional("customer_graph.graph.writes", "write_batch")
        resolution_config = optional("customer_graph.graph.resolution", "resolution_config")
        if write_batch is None or resolution_config is None:
            raise RuntimeError("customer_graph.graph.writes.write_batch is not there yet")
        self.write_batch = write_batch
        self.config = resolution_config(settings)
        self.database = settings.neo4j_database

    async def load(self, driver: AsyncDriver, batches: Iterable[WriteBatch]) -> dict[str, Any]:
        """Write batches with WRITERS concurrent writers; customers first, then the rest."""
        counts = {"customers": 0, "other": 0}
        seconds = {"customers": 0.0, "other": 0.0}
        record_profiles: dict[str, str] = {}
        grouped: dict[str, list[WriteBatch]] = {"customers": [], "other": []}
        for batch in batches:
            grouped["customers" if batch.customers else "other"].append(batch)
        for phase in ("customers", "other"):
            queue = list(grouped[phase])
            queue.reverse()

            async def worker(queue: list[WriteBatch] = queue, phase: str = phase) -> None:
                while queue:
                    batch = queue.pop()
                    result = await self.write_batch(driver, self.database, batch, self.config)
                    counts[phase] += len(batch.customers) if phase == "customers" else len(batch)
                    record_profiles.update(getattr(result, "record_profiles", {}) or {})

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(WRITERS)))
            seconds[phase] = time.perf_counter() - t0
        return {
            "customer_records": counts["customers"],
            "customer_seconds": round(seconds["customers"], 2),
            "records_per_s": round(counts["customers"] / seconds["customers"], 1)
            if seconds["customers"]
            else None,
            "other_items": counts["other"],
            "other_seconds": round(seconds["other"], 2),
            "other_items_per_s": round(counts["other"] / seconds["other"], 1)
            if seconds["other"]
            else None,
            "writers": WRITERS,
            "batch_size": BATCH,
        }


# -- GraphQL documents -------------------------------------------------------------------------

TIMELINE_FIELDS = """
      edges { cursor node { __typename ... on Interaction { id type occurredAt subject name }
        ... on StageChange { fromStage toStage changedAt } } }
      pageInfo { hasNextPage endCursor }
"""

PROFILE_PAGE = (
    """
query ProfilePage($id: ID!) {
  profile(id: $id) {
    id displayName email phone traits
    identifiers { type value }
    timeline(first: 20) {"""
    + TIMELINE_FIELDS
    + """    }
    deals(status: OPEN) {
      id name amount currency stage status
      stageHistory { fromStage toStage changedAt durationSeconds }
    }
  }
}
"""
)

PROFILE_BY_IDENTIFIER = """
query ProfileByIdentifier($type: String!, $value: String!) {
  profileByIdentifier(type: $type, value: $value) {
    id displayName email phone
    identifiers { type value }
  }
}
"""

LONG_LIST = (
    """
query LongList($id: ID!, $first: Int!) {
  profile(id: $id) {
    id
    timeline(first: $first) {"""
    + TIMELINE_FIELDS
    + """    }
  }
}
"""
)

LONG_LIST_NODES = (
    """
query LongListNodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Profile {
      id
      timeline(first: 100) {"""
    + TIMELINE_FIELDS
    + """      }
    }
  }
}
"""
)


def profile_global_id(profile_id: str) -> str:
    """The Relay global id of a profile (base64 of `Profile:<id>`)."""
    return base64.b64encode(f"Profile:{profile_id}".encode()).decode("ascii")


def profile_page_document() -> str:
    """The profile page query: bench/profile_page.py's when it defines one, else ours."""
    theirs = optional("bench.profile_page", "PROFILE_PAGE_QUERY")
    return theirs if isinstance(theirs, str) else PROFILE_PAGE


class GraphQLClient:
    def __init__(self, http: LoadClient):
        self.http = http
        self.last_error: str | None = None

    async def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        status, body = await self.http.post_json(
            "/graphql", {"query": document, "variables": variables}
        )
        if status != 200 or not isinstance(body, dict) or body.get("errors"):
            errors = body.get("errors") if isinstance(body, dict) else body
            raise GraphQLFailure(status, errors)
        return body

    async def ok(self, document: str, variables: dict[str, Any]) -> bool:
        """True when the query answered without errors and found its object."""
        try:
            body = await self.query(document, variables)
        except (GraphQLFailure, ClientError, TimeoutError) as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        data = body.get("data") or {}
        if not data or any(v is None for v in data.values()):
            self.last_error = f"not found: {json.dumps(variables)[:200]}"
            return False
        return True


class GraphQLFailure(RuntimeError):
    def __init__(self, status: int, errors: Any):
        super().__init__(f"HTTP {status}: {json.dumps(errors)[:600]}")


# -- figures -----------------------------------------------------------------------------------


@dataclass
class Run:
    size: Size
    settings: Settings
    driver: AsyncDriver
    api: ApiServer
    http: LoadClient
    gql: GraphQLClient
    writer: Writer | None
    results: dict[str, Any]
    datasets: list[Dataset]
    record_profiles: dict[str, str]
    profiles_dir: Path
    out: Path
    neo4j_pid: int | None = None  # the bench Neo4j's JVM, for CPU accounting
    profile: bool = True
    only: frozenset[str] = frozenset()  # figure names to run (loading always runs); empty: all

    def cpu_meter(self) -> CpuMeter:
        """CPU of the API process, the bench Neo4j and this process (bench/cpu.py)."""
        return CpuMeter({"api": self.api.pid, "neo4j": self.neo4j_pid, "bench": os.getpid()})

    def require_api(self) -> None:
        if not self.api.running():
            raise RuntimeError(f"the API is not running: {_tail(self.api.log_file)}")


def _records(run: Run) -> int:
    return sum(len(d.customers) for d in run.datasets)


async def profile_targets(run: Run, n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Profile ids of CRM contacts (they have deals and activity) and their emails."""
    ids: list[str] = []
    emails: list[tuple[str, str]] = []
    seen: set[str] = set()
    for data in run.datasets:
        contacts = [c for c in data.customers if c.source == "crm"]
        step = max(1, len(contacts) // n)
        for c in contacts[::step]:
            pid = run.record_profiles.get(c.key)
            if pid is None or pid in seen:
                continue
            seen.add(pid)
            ids.append(pid)
            valid = set(data.link_keys.get(c.key, ()))
            email = next(
                (
                    i.value
                    for i in c.identifiers
                    if i.type == "email" and f"email:{i.value.strip().lower()}" in valid
                ),
                None,
            )
            if email is not None:
                emails.append(("email", email))
    return ids[:n], emails[:n]


def page_calls(
    run: Run,
) -> tuple[Callable[[str], Awaitable[bool]], Callable[[str], Awaitable[bool]]]:
    """One profile page over HTTP, and the same by the hand-written Cypher floor."""
    document = profile_page_document()

    async def over_http(pid: str) -> bool:
        return await run.gql.ok(document, {"id": pid})

    # bench/profile_page.py's floor returns exactly its query's fields; ours is the fallback.
    floor_fn = optional("bench.profile_page", "floor_page") or floors.profile_page

    async def by_cypher(pid: str) -> bool:
        ok: bool = await floor_fn(run.driver, run.settings.neo4j_database, pid)
        return ok

    return over_http, by_cypher


async def page_cpu(run: Run, ids: list[str], requests: int) -> dict[str, Any]:
    """CPU per profile page (one client): over HTTP, then the same pages by the floor."""
    meter = run.cpu_meter()
    out: dict[str, Any] = {}
    for name, call in zip(("http", "floor"), page_calls(run), strict=True):
        meter.start()
        load = await run_load(call, ids, requests, 1, warmup=0)
        out[name] = cpu_summary(meter.stop(), load.requests, load.seconds)
    return out


async def measure_page(
    run: Run,
    ids: list[str],
    requests: int,
    concurrency: int,
    extra: dict[str, Callable[[str], Awaitable[bool]]] | None = None,
) -> dict[str, LoadResult]:
    """The profile page over HTTP ("http") and the floor by hand-written Cypher ("floor"), the
    same ids. With one client they take turns request by request (with `extra` calls, if any);
    with more, each runs its own closed loop."""
    over_http, by_cypher = page_calls(run)
    limit = run.size.max_seconds
    if concurrency == 1:
        calls = {"http": over_http, "floor": by_cypher, **(extra or {})}
        found = await run_interleaved(calls, ids, requests, max_seconds=limit * len(calls))
    else:
        found = {
            "http": await run_load(over_http, ids, requests, concurrency, max_seconds=limit),
            "floor": await run_load(by_cypher, ids, requests, concurrency, max_seconds=limit),
        }
    _check(found["http"], run.gql.last_error)
    for name, load in found.items():
        if name != "http":
            _check(load, f"{name}: the floor query found nothing")
    return found


def _check(load: LoadResult, last_error: str | None) -> None:
    """A measurement where most requests failed measures nothing: say why instead."""
    if load.errors > load.requests // 10:
        raise RuntimeError(f"{load.errors} of {load.requests} requests failed; last: {last_error}")


def _page_summary(http: LoadResult, floor: LoadResult) -> dict[str, Any]:
    h, f = http.summary(), floor.summary()
    return {
        **h,
        "floor_p50_ms": f["p50_ms"],
        "floor_p95_ms": f["p95_ms"],
        "floor_p99_ms": f["p99_ms"],
        "floor_requests_per_s": f["requests_per_s"],
        "p50_ratio_to_floor": round(h["p50_ms"] / f["p50_ms"], 2) if f["p50_ms"] else None,
    }


async def fig_scale_point(run: Run) -> None:
    run.require_api()
    records = _records(run)
    ids, emails = await profile_targets(run, run.size.sample_profiles)
    if not ids:
        raise RuntimeError("no resolved CRM profiles to query")
    point: dict[str, Any] = {"records": records, "profiles_sampled": len(ids)}
    page = await measure_page(run, ids, run.size.page_requests, 1)
    point["profile_page"] = _page_summary(page["http"], page["floor"])

    async def by_identifier(ident: tuple[str, str]) -> bool:
        return await run.gql.ok(PROFILE_BY_IDENTIFIER, {"type": ident[0], "value": ident[1]})

    async def by_identifier_floor(ident: tuple[str, str]) -> bool:
        return await floors.profile_by_identifier(
            run.driver, run.settings.neo4j_database, ident[0], ident[1]
        )

    if emails:
        limit = run.size.max_seconds
        lookups = await run_interleaved(
            {"http": by_identifier, "floor": by_identifier_floor},
            emails,
            run.size.page_requests,
            max_seconds=limit * 2,
        )
        _check(lookups["http"], run.gql.last_error)
        _check(lookups["floor"], "the floor query found nothing")
        point["profile_by_identifier"] = _page_summary(lookups["http"], lookups["floor"])
    run.results.setdefault("scale", {"points": []})["points"].append(point)
    log(f"scale {records}: {json.dumps(point)}")


async def fig_profile_page(run: Run) -> None:
    run.require_api()
    ids, _ = await profile_targets(run, run.size.sample_profiles)
    db = run.settings.neo4j_database

    # Beside the one-client figure, taking turns with it: what an HTTP round trip costs by
    # itself (GET /healthz, same client), and the floor statement as an auto-commit read (the
    # kind of transaction the API reads in; the floor proper uses `execute_query`).
    async def healthz(_: str) -> bool:
        return await run.http.get_status("/healthz") == 200

    async def floor_autocommit(pid: str) -> bool:
        return await profile_page_floor_autocommit(run.driver, db, pid)

    extra: dict[str, Callable[[str], Awaitable[bool]]] = {
        "http_hop": healthz,
        "floor_autocommit": floor_autocommit,
    }
    by_clients: dict[str, Any] = {}
    for clients in CONCURRENCY:
        requests = run.size.page_requests * max(1, clients // 2)
        found = await measure_page(run, ids, requests, clients, extra if clients == 1 else None)
        row = _page_summary(found["http"], found["floor"])
        if clients == 1:
            strict_p50 = found["floor_autocommit"].summary()["p50_ms"]
            row["http_hop_p50_ms"] = found["http_hop"].summary()["p50_ms"]
            row["floor_autocommit_p50_ms"] = strict_p50
            row["p50_ratio_to_autocommit_floor"] = (
                round(row["p50_ms"] / strict_p50, 2) if strict_p50 else None
            )
        by_clients[str(clients)] = row
        log(f"profile page, {clients} clients: {json.dumps(row)}")
    one = by_clients["1"]
    cpu = await page_cpu(run, ids, run.size.page_requests)
    log(f"profile page CPU per request: {json.dumps(cpu)}")
    run.results["profile_page"] = {
        "records": _records(run),
        "p50_ms": one["p50_ms"],
        "p95_ms": one["p95_ms"],
        "p99_ms": one["p99_ms"],
        "requests_per_s": one["requests_per_s"],
        "floor_p50_ms": one["floor_p50_ms"],
        "floor_p95_ms": one["floor_p95_ms"],
        "p50_ratio_to_floor": one["p50_ratio_to_floor"],
        "http_hop_p50_ms": one["http_hop_p50_ms"],
        "floor_autocommit_p50_ms": one["floor_autocommit_p50_ms"],
        "p50_ratio_to_autocommit_floor": one["p50_ratio_to_autocommit_floor"],
        "by_clients": by_clients,
        "cpu": cpu,
    }


async def fig_long_list(run: Run) -> None:
    """1,000 timeline items in one query: one profile's timeline(first: 1000) when the API
    allows it, else ten heavy profiles' timeline(first: 100) through nodes(ids)."""
    run.require_api()
    heavy = [run.record_profiles[k] for k in run.datasets[0].heavy_keys if k in run.record_profiles]
    if not heavy:
        raise RuntimeError("no heavy profiles resolved")
    db = run.settings.neo4j_database
    repeats = 20
    mode = "profile.timeline(first: 1000)"
    try:
        body = await run.gql.query(LONG_LIST, {"id": heavy[0], "first": 1000})
        items = len(body["data"]["profile"]["timeline"]["edges"])

        async def call(_: int) -> bool:
            return await run.gql.ok(LONG_LIST, {"id": heavy[0], "first": 1000})
    except GraphQLFailure as e:
        log(f"timeline(first: 1000) refused ({e}); using nodes(ids) x timeline(first: 100)")
        mode = f"nodes({len(heavy[:10])} profiles) x timeline(first: 100)"
        global_ids = [profile_global_id(pid) for pid in heavy[:10]]
        body = await run.gql.query(LONG_LIST_NODES, {"ids": global_ids})
        items = sum(len(n["timeline"]["edges"]) for n in body["data"]["nodes"] if n)

        async def call(_: int) -> bool:
            return await run.gql.ok(LONG_LIST_NODES, {"ids": global_ids})

    async def floor_call(_: int) -> bool:
        per = 1000 if mode.startswith("profile") else 100
        targets = heavy[:1] if mode.startswith("profile") else heavy[:10]
        got = await floors.timeline_items(run.driver, db, targets, per)
        return got > 0

    http = await run_load(call, [0], repeats, 1, warmup=3)
    floor = await run_load(floor_call, [0], repeats, 1, warmup=3)
    h, f = http.summary(), floor.summary()
    run.results["long_list"] = {
        "mode": mode,
        "items": items,
        "p50_ms": h["p50_ms"],
        "p95_ms": h["p95_ms"],
        "per_item_us": round(h["p50_ms"] * 1000 / items, 2) if items else None,
        "floor_p50_ms": f["p50_ms"],
        "floor_per_item_us": round(f["p50_ms"] * 1000 / items, 2) if items else None,
        "ratio_to_floor": round(h["p50_ms"] / f["p50_ms"], 2) if f["p50_ms"] else None,
    }


async def fig_quality(run: Run) -> None:
    truth: dict[str, str] = {}
    link_keys: dict[str, tuple[str, ...]] = {}
    for data in run.datasets:
        truth.update(data.truth)
        link_keys.update(data.link_keys)
    oracle = components(link_keys)
    resolved = await resolved_profiles(run.driver, run.settings.neo4j_database, list(truth))
    run.record_profiles.update(resolved)
    run.results["quality"] = {
        "resolver_vs_truth": pair_quality(truth, resolved).as_dict(),
        "oracle_vs_truth": pair_quality(truth, oracle).as_dict(),
        "resolver_vs_oracle": pair_quality(oracle, resolved).as_dict(),
        "unresolved_records": len(truth) - len(resolved),
    }


async def fig_re_resolution(run: Run) -> None:
    """`customer-graph resolve` over every record, as an operator would run it."""
    argv = [str(Path(sys.executable).parent / "customer-graph"), "resolve", "--json"]
    argv += ["--show", "0"]
    env = _cli_env(run.settings)
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - t0
    # Exit 2: the dry run found differences between the graph and a recomputation.
    if done.returncode not in (0, 2):
        raise RuntimeError(
            f"customer-graph resolve exited {done.returncode}: {_last(done.stderr or done.stdout)}"
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = {"output_tail": done.stdout[-600:]}
    summary = {k: v for k, v in report.items() if isinstance(v, int | float | str | bool)}
    records = _records(run)
    point = {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
        "differences_found": done.returncode == 2,
        "report": summary,
        "note": "a dry run (`customer-graph resolve --json`) in its own process, start-up included",
    }
    # The top-level keys are the last (largest) point; `points` holds one per size measured.
    points = [*run.results.get("re_resolution", {}).get("points", []), point]
    run.results["re_resolution"] = {**point, "points": points}


def _last(text: str, n: int = 800) -> str:
    return text.strip()[-n:]


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "NEO4J_URI": settings.bolt_uri,
        "NEO4J_USER": settings.neo4j_user,
        "NEO4J_PASSWORD": settings.neo4j_password,
        "NEO4J_DATABASE": settings.neo4j_database,
        "CUSTOMER_GRAPH_LOG_LEVEL": "WARNING",
    }


async def fig_ingest(run: Run) -> None:
    """identify, then track/page events through POST /v1/batch (100 per batch, 8 clients), and
    the floor: the same customers and identifiers (and interactions) by one UNWIND MERGE each.

    Both are warmed up first on data of their own (untimed), so that what is measured is the
    steady state of a server that has been running, not Neo4j's JIT compiling its write path;
    the share of Neo4j's CPU that still went to the JIT compiler is reported beside each figure.
    Then ingestion and the floor are measured in turns (INGEST_PAIRS pairs, each on data of its
    own), and the pair with the median ratio gives the figures; the others are kept in `pairs`.
    """
    run.require_api()
    config = GeneratorConfig(
        records=run.size.ingest_people * 2,
        seed=41,
        prefix="ing-",
        block=4,
        p_web=1.0,
        p_crm=0.0,
        p_app=0.3,
        heavy_people=0,
        super_connectors=0,
    )
    meter = run.cpu_meter()
    warmup = await _warm_ingestion(run, replace(config, seed=43, block=6))
    await floors.raw_merge(
        run.driver,
        run.settings.neo4j_database,
        generate(replace(config, records=config.records // 2, prefix="ingfw-", block=3)),
    )
    log(f"ingest warm-up: {json.dumps(warmup)}")

    out: dict[str, Any] = {
        "batch_size": 100,
        "clients": 8,
        "warmup_seconds": warmup["seconds"],
        "warmup": warmup,
    }
    pairs: list[dict[str, Any]] = []
    for n in range(INGEST_PAIRS):
        apart = {  # message ids come from the seed; ids and phone numbers apart from the others'
            "seed": config.seed + 100 * n,
            "phone_offset": n * 40 * config.records,
        }
        phases = await _measure_ingest(
            run, meter, generate(replace(config, prefix=f"ing{n}-", **apart))
        )
        floor_data = generate(
            replace(
                config,
                prefix=f"ingf{n}-",
                block=5,
                seed=apart["seed"] + 50,
                phone_offset=apart["phone_offset"] + 20 * config.records,
            )
        )
        meter.start()
        floor = await floors.raw_merge_messages(run.driver, run.settings.neo4j_database, floor_data)
        used = meter.stop()
        floor["cpu"] = cpu_summary(
            used, floor["identify_events"] + floor["track_events"], floor["seconds"]
        )
        pair = _ingest_pair(phases, floor)
        log(f"ingest pair {n + 1}: ratio {pair['ratio_to_floor']}")
        pairs.append(pair)
    median = sorted(pairs, key=lambda p: p["ratio_to_floor"] or 0.0)[len(pairs) // 2]
    out.update(median)
    out["pairs"] = [
        {
            key: pair[key]
            for key in (
                "events_per_s",
                "floor_events_per_s",
                "ratio_to_floor",
                "identify_ratio_to_floor",
                "track_ratio_to_floor",
            )
        }
        | {
            "jit_share": {
                name: pair[name]["cpu"]["neo4j"].get("jit_share") for name in ("identify", "track")
            }
        }
        | (
            {"ceiling_ratio_to_floor": pair["ceiling"]["all"]["ratio_to_floor"]}
            if "ceiling" in pair
            else {}
        )
        for pair in pairs
    ]
    out["median_pair"] = pairs.index(median) + 1
    run.results["ingest"] = out


def _ingest_pair(phases: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """One measurement of ingestion (`phases`: identify, track) and the floor taken after it."""
    out = dict(phases)
    out["floor"] = floor
    total_events = out["identify"]["events"] + out["track"]["events"]
    total_seconds = out["identify"]["seconds"] + out["track"]["seconds"]
    out["events_per_s"] = round(total_events / total_seconds, 1) if total_seconds else None
    out["identify_events_per_s"] = out["identify"]["events_per_s"]
    out["floor_events_per_s"] = floor["events_per_s"]
    out["floor_identify_per_s"] = floor["identify_per_s"]
    out["floor_track_per_s"] = floor["track_per_s"]
    out["ratio_to_floor"] = _ratio_of(out["events_per_s"], floor["events_per_s"])
    out["identify_ratio_to_floor"] = _ratio_of(
        out["identify"]["events_per_s"], floor["identify_per_s"]
    )
    out["track_ratio_to_floor"] = _ratio_of(out["track"]["events_per_s"], floor["track_per_s"])
    # The unit of earlier runs: the floor's rows (a visitor's record apart from its events).
    out["ratio_to_floor_rows"] = _ratio_of(out["events_per_s"], floor["rows_per_s"])
    if all("cpu" in out[name] for name in ("identify", "track")):
        # What the CPU spent per event allows on this machine's cores, against the floor.
        cores = os.cpu_count() or 1
        ceiling: dict[str, Any] = {"cores": cores}
        ceiling |= cpu_ceiling(
            {
                name: (out[name]["events"], out[name]["seconds"], out[name]["cpu"])
                for name in ("identify", "track")
            },
            cores,
        )
        for name, floor_rate in (
            ("identify", floor["identify_per_s"]),
            ("track", floor["track_per_s"]),
            ("all", floor["events_per_s"]),
        ):
            ceiling[name]["ratio_to_floor"] = _ratio_of(
                ceiling[name]["units_per_s_at_full_cpu"], floor_rate
            )
        out["ceiling"] = ceiling
    return out


def _ratio_of(value: float | None, floor: float | None) -> float | None:
    return round(value / floor, 3) if value and floor else None


async def _measure_ingest(run: Run, meter: CpuMeter, data: Dataset) -> dict[str, Any]:
    """The identify events of `data`, then its track and page events, through POST /v1/batch
    (100 per request, 8 clients): rate, batch latencies and CPU of each phase."""
    identifies, tracks = _by_kind(list(segment_messages(data)))
    out: dict[str, Any] = {}
    for name, group in (("identify", identifies), ("track", tracks)):
        batches = _chunks(group, 100)
        statuses: dict[int, int] = {}
        meter.start()
        load = await run_load(
            _ingest_sender(run, statuses),
            batches,
            len(batches),
            8,
            warmup=0,
            max_seconds=run.size.max_seconds * 2,
        )
        used = meter.stop()
        sent = batches[: load.requests]
        ok_share = (load.requests - load.errors) / load.requests if load.requests else 0.0
        accepted = sum(len(b) for b in sent) * ok_share
        out[name] = {
            "events": sum(len(b) for b in sent),
            "seconds": round(load.seconds, 2),
            "events_per_s": round(accepted / load.seconds, 1),
            "batch_p50_ms": round(percentile(load.latencies_ms, 50), 1),
            "batch_p95_ms": round(percentile(load.latencies_ms, 95), 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "cpu": cpu_summary(used, sum(len(b) for b in sent), load.seconds),
        }
        log(f"ingest {name}: {json.dumps(out[name])}")
    return out


async def _warm_ingestion(run: Run, config: GeneratorConfig) -> dict[str, Any]:
    """Rounds of identify, then track and page events over HTTP, on data sets of their own
    (ids, message ids and phone numbers apart from each other's and the measured data's), until
    the JIT compiler's share of Neo4j's CPU has settled (`_settled`), in the identify part of
    a round and in the track part alike: their statements are not the same.

    A freshly started JVM on two cores keeps compiling Neo4j's hot code for tens of seconds
    of load, on the same cores as the queries; a server that has been running does not.
    """
    meter = run.cpu_meter()
    shares: list[float] = []  # per round, the larger of the identify and the track share
    by_kind: dict[str, list[float]] = {"identify": [], "track": []}
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < run.size.warm_max_seconds:
        n = len(shares)
        round_config = replace(
            config,
            records=WARM_ROUND_RECORDS,
            seed=config.seed + 1_000 * n,  # message ids come from the seed
            prefix=f"ingw{n}-",
            phone_offset=n * 20 * WARM_ROUND_RECORDS,
        )
        statuses: dict[int, int] = {}
        groups = _by_kind(list(segment_messages(generate(round_config))))
        for kind, group in zip(by_kind, groups, strict=True):
            batches = _chunks(group, 100)
            meter.start()
            await run_load(_ingest_sender(run, statuses), batches, len(batches), 8, warmup=0)
            neo4j = meter.stop().get("neo4j", ProcessCpu())
            by_kind[kind].append(round(neo4j.jit_share, 3))
        if set(statuses) != {200}:
            raise RuntimeError(f"ingestion warm-up round {n} got statuses {statuses}")
        shares.append(max(by_kind["identify"][-1], by_kind["track"][-1]))
        if _settled(shares):
            break
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "rounds": len(shares),
        "records_per_round": WARM_ROUND_RECORDS,
        "jit_share_by_round": shares,
        "identify_jit_share_by_round": by_kind["identify"],
        "track_jit_share_by_round": by_kind["track"],
        "settled": _settled(shares),
    }


def _settled(shares: list[float]) -> bool:
    last = shares[-WARM_SETTLED_ROUNDS:]
    return len(last) == WARM_SETTLED_ROUNDS and max(last) < WARM_JIT_SHARE


def _by_kind(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """identify messages, then the rest (track and page), each in generated order."""
    identifies = [m for m in messages if m["type"] == "identify"]
    return identifies, [m for m in messages if m["type"] != "identify"]


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _ingest_sender(
    run: Run, statuses: dict[int, int]
) -> Callable[[list[dict[str, Any]]], Awaitable[bool]]:
    async def send(batch: list[dict[str, Any]]) -> bool:
        status, _ = await run.http.post_json("/v1/batch", {"batch": batch})
        statuses[status] = statuses.get(status, 0) + 1
        return status == 200

    return send


async def fig_profiles(run: Run) -> None:
    """The profile page and /v1/batch replayed in-process under pyinstrument (bench/profiling)."""
    from bench.profiling import profile_requests

    ids, _ = await profile_targets(run, run.size.sample_profiles)
    document = profile_page_document()

    async def page(client: httpx.AsyncClient, pid: str) -> None:
        await client.post("/graphql", json={"query": document, "variables": {"id": pid}})

    out: dict[str, Any] = {}
    out["profile_page"] = await profile_requests(
        run.settings, page, ids, 300, 1, run.profiles_dir / "profile_page.txt"
    )
    config = GeneratorConfig(
        records=2_000,
        seed=47,
        prefix="prof-",
        block=7,
        p_web=1.0,
        p_crm=0.0,
        p_app=0.3,
        heavy_people=0,
        super_connectors=0,
    )
    messages = list(segment_messages(generate(config)))
    batches = [messages[i : i + 100] for i in range(0, len(messages), 100)]

    async def send(client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
        await client.post("/v1/batch", json={"batch": batch})

    out["ingest"] = await profile_requests(
        run.settings, send, batches, len(batches), 8, run.profiles_dir / "ingest.txt"
    )
    run.results["profiles"] = out


async def fig_import(run: Run) -> None:
    """The CRM part of a generated data set as Salesforce exports, through the importer CLI."""
    from bench.generator import write_crm_csv

    config = GeneratorConfig(
        records=run.size.import_records,
        seed=43,
        prefix="imp-",
        block=6,
        p_web=0.0,
        p_crm=1.0,
        p_app=0.0,
        heavy_people=0,
    )
    data = generate(config)
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=_work_dir()))
    paths = write_crm_csv(data, folder)
    env = _cli_env(run.settings)
    cli = str(Path(sys.executable).parent / "customer-graph")
    kinds: dict[str, Any] = {}
    total_rows = 0
    total_seconds = 0.0
    for kind in ("accounts", "contacts", "deals", "stage-changes", "interactions"):
        path = paths[kind]
        rows = sum(1 for _ in path.open()) - 1
        argv = [cli, "import", str(path), "--kind", kind, "--preset", "salesforce"]
        argv += ["--source", "crm", "--no-progress", "--json"]
        out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
        t0 = time.perf_counter()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            child = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)  # rusage: the importer's own peak RSS
        seconds = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        child.returncode = code
        if code != 0:
            raise RuntimeError(f"import {kind} exited {code}: {_last(err_path.read_text())}")
        try:
            summary = json.loads(out_path.read_text().strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            summary = {}
        kinds[kind] = {
            "rows": rows,
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds, 1),
            "importer_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "summary": {k: v for k, v in summary.items() if isinstance(v, int | float | str)},
        }
        total_rows += rows
        total_seconds += seconds
        log(f"import {kind}: {rows} rows in {seconds:.1f}s")
    run.results["import"] = {
        "rows": total_rows,
        "seconds": round(total_seconds, 2),
        "rows_per_s": round(total_rows / total_seconds, 1),
        "kinds": kinds,
        "note": "each kind is one CLI process; its seconds include Python start-up (~1-2 s)",
    }


def _work_dir() -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return WORK


# -- orchestration -----------------------------------------------------------------------------


async def figure(run: Run, name: str, fn: Callable[[Run], Awaitable[None]]) -> None:
    if run.only and name.split()[0] not in run.only | {"load"}:
        return
    log(f"{name}…")
    t0 = time.perf_counter()
    try:
        await fn(run)
    except Exception as e:  # one missing part must not hide the other figures
        log(f"{name} failed: {type(e).__name__}: {e}")
        errors = run.results.setdefault("errors", {})
        errors[name] = f"{type(e).__name__}: {e}"
        traceback.print_exc(file=sys.stderr)
    run.results.setdefault("timings_s", {})[name] = round(time.perf_counter() - t0, 1)
    # A partial file after every figure: a run stopped early still leaves what it measured.
    snapshot = {**run.results, "partial": True, "memory": run_memory(run.api)}
    run.out.with_suffix(".partial.json").write_text(json.dumps(snapshot, indent=2) + "\n")


def run_memory(api: ApiServer) -> dict[str, Any]:
    return {
        "api_peak_rss_mb": _round(api.peak_rss_mb()),
        "api_rss_at_end_mb": _round(api.rss_mb()),
        "how": "VmHWM and VmRSS of the uvicorn process in /proc/PID/status",
    }


async def load_step(run: Run, *, step: int, records: int) -> None:
    already = _records(run)
    config = GeneratorConfig(
        records=records - already,
        seed=7 + step,
        prefix=f"s{step}-",
        block=step,
        heavy_people=run.size.heavy_people if step == 0 else 0,
    )
    t0 = time.perf_counter()
    data = generate(config)
    log(
        f"generated step {step}: {len(data.customers)} records, {len(data.interactions)} "
        f"interactions, {len(data.deals)} deals in {time.perf_counter() - t0:.1f}s"
    )
    run.datasets.append(data)
    if run.writer is None:
        raise RuntimeError("no write path")
    stats = await run.writer.load(run.driver, write_batches(data, BATCH))
    stats["total_records"] = _records(run)
    stats["driver_retries_so_far"] = RETRIES.retries
    run.results.setdefault("write_path", {"steps": []})["steps"].append(stats)
    log(f"loaded step {step}: {json.dumps(stats)}")
    keys = [c.key for c in data.customers]
    run.record_profiles.update(
        await resolved_profiles(run.driver, run.settings.neo4j_database, keys)
    )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "customer_graph"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "git_commit": commit + (" (customer_graph/ has uncommitted changes)" if dirty else ""),
        "nproc": os.cpu_count(),
        "memory_gib": mem_gib,
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def main_async(
    size: Size,
    out: Path,
    plots_dir: Path | None,
    profile: bool = True,
    only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "size": size.name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    base = Settings()
    with running_bench_neo4j(base, size.neo4j) as (local, settings):
        log(f"bench Neo4j on {local.uri}, heap {size.neo4j.heap}")
        results["neo4j"] = {"heap": size.neo4j.heap, "pagecache_mb": size.neo4j.pagecache_mb}
        driver = open_driver(settings)
        await ensure_schema(driver, settings.neo4j_database)
        api = ApiServer(settings, _work_dir() / "api.log")
        try:
            api.start()
            log(f"API on {api.url}")
        except RuntimeError as e:
            log(f"API did not start: {e}")
            results.setdefault("errors", {})["api"] = f"{e}: {_tail(api.log_file)}"
        # Clients send a key of their own, as users do, so every request looks it up in the
        # graph (the development key, which the API server also has, would skip that).
        key, _ = await create_key(
            driver, settings, scopes=[Scope.READ, Scope.WRITE], source="web", actor="bench"
        )
        http = LoadClient(api.url, {"Authorization": f"Bearer {key}"})
        try:
            try:
                writer: Writer | None = Writer(settings)
            except RuntimeError as e:
                writer = None
                results.setdefault("errors", {})["write_path"] = str(e)
            run = Run(
                size,
                settings,
                driver,
                api,
                http,
                GraphQLClient(http),
                writer,
                results,
                [],
                {},
                profiles_dir=(plots_dir or _work_dir()) / "profiles",
                out=out,
                neo4j_pid=local.pid(),
                profile=profile,
                only=only,
            )
            try:
                await _figures(run)
            finally:
                results["memory"] = run_memory(api)
                api.stop()
                await driver.close()
        finally:
            await http.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    log(f"wrote {out}")
    if plots_dir is not None:
        from bench.plots import plot_all
        from bench.report import update

        for path in plot_all(results, plots_dir):
            log(f"plot {path}")
        update(DOC, results)
        log(f"tables of this run written into {DOC}")
    return results


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


async def _figures(run: Run) -> None:
    concurrency_at = min(run.size.scale, key=lambda n: abs(n - 100_000))
    for step, records in enumerate(run.size.scale):
        await figure(
            run, f"load {records}", functools.partial(load_step, step=step, records=records)
        )
        if not run.record_profiles:
            continue
        await figure(run, f"scale {records}", fig_scale_point)
        if records == concurrency_at:
            await figure(run, "profile_page", fig_profile_page)
            await figure(run, "long_list", fig_long_list)
            await figure(run, "quality", fig_quality)
            await figure(run, "re_resolution", fig_re_resolution)
        elif records == run.size.scale[-1]:
            await figure(run, "re_resolution", fig_re_resolution)
    await figure(run, "ingest", fig_ingest)
    await figure(run, "import", fig_import)
    if run.profile:
        await figure(run, "profiles", fig_profiles)


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the measured value and pass/miss (None: not measured)."""
    out: dict[str, Any] = {}
    ingest = results.get("ingest", {})
    if "events_per_s" in ingest:
        out["ingest_events_per_s_ge_10000"] = {
            "value": ingest["events_per_s"],
            "pass": ingest["events_per_s"] >= 10_000,
        }
        out["ingest_ratio_to_floor_ge_0.5"] = {
            "value": ingest["ratio_to_floor"],
            "pass": (ingest["ratio_to_floor"] or 0) >= 0.5,
        }
    page = results.get("profile_page", {})
    if "p95_ms" in page:
        out["profile_page_p95_le_20ms_one_client"] = {
            "value": page["p95_ms"],
            "records": page["records"],
            "pass": page["p95_ms"] <= 20,
        }
        out["profile_page_p50_le_1.5x_floor"] = {
            "value": page["p50_ratio_to_floor"],
            "pass": (page["p50_ratio_to_floor"] or 99) <= 1.5,
        }
    points = results.get("scale", {}).get("points", [])
    small = next((p for p in points if p["records"] <= 11_000 and "profile_page" in p), None)
    big = next((p for p in points if p["records"] >= 900_000 and "profile_page" in p), None)
    if small and big:
        ratio = big["profile_page"]["p50_ms"] / small["profile_page"]["p50_ms"]
        out["p50_1m_le_1.3x_p50_10k"] = {"value": round(ratio, 2), "pass": ratio <= 1.3}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument(
        "--out", type=Path, help="default: bench/results.json (bench/results-SIZE.json for others)"
    )
    parser.add_argument(
        "--plots", type=Path, help="PNG folder; default: docs/bench (docs/bench/SIZE for others)"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated figures to run after loading (scale, profile_page, long_list, "
        "quality, re_resolution, ingest, import, profiles); default: all",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the pyinstrument profiles at the end"
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    default = size.name == "default"
    out = args.out or (RESULTS if default else RESULTS.with_name(f"results-{size.name}.json"))
    plots = args.plots or (PLOTS if default else PLOTS / size.name)
    quiet_driver_logs()
    out.parent.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(
        main_async(
            size,
            out,
            None if args.no_plots else plots,
            profile=not args.no_profile,
            only=frozenset(f for f in args.only.split(",") if f),
        )
    )
    print(json.dumps({k: results.get(k) for k in ("targets", "errors", "seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
