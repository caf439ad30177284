"""The API as users meet it: a real uvicorn subprocess, and a small closed-loop load driver.

The server runs the app factory against the benchmark Neo4j with a development key; its peak
resident memory is read from /proc/PID/status (VmHWM) before it stops. The load driver runs `n`
requests through `concurrency` clients that each send the next request as soon as the last one
answered, and reports latency percentiles and requests per second.

Requests go through `LoadClient` (aiohttp, keep-alive). The client's own cost is part of every
latency measured, so it should be small: on this machine a `GET /healthz` takes 0.6-0.9 ms at
p50 through aiohttp and 2.1 ms through httpx, whose pure-Python request path would otherwise add
about 1.5 ms to every figure. The bench reports the `/healthz` round trip beside the profile page
(`http_hop_p50_ms`), so what HTTP itself costs is visible.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx

from bench.neo4j import free_port
from customer_graph.settings import PROJECT_ROOT, Settings

T = TypeVar("T")
BENCH_KEY = "bench-dev-key-0123456789abcdef"


class ApiServer:
    """`uvicorn customer_graph.app:app --factory` on a free port, pointed at `settings`."""

    def __init__(self, settings: Settings, log_file: Path, extra_env: dict[str, str] | None = None):
        self.settings = settings
        self.port = free_port()
        self.log_file = log_file
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return BENCH_KEY

    def start(self, timeout: float = 120.0) -> None:
        env = {
            **os.environ,
            "NEO4J_URI": self.settings.bolt_uri,
            "NEO4J_USER": self.settings.neo4j_user,
            "NEO4J_PASSWORD": self.settings.neo4j_password,
            "NEO4J_DATABASE": self.settings.neo4j_database,
            "CUSTOMER_GRAPH_DEV_KEY": BENCH_KEY,
            "CUSTOMER_GRAPH_LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **self.extra_env,
        }
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "customer_graph.app:app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited during start-up; see {self.log_file}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the API was not ready after {timeout:.0f}s; see {self.log_file}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_mb(self) -> float | None:
        """VmHWM (peak resident set) of the server process, in MiB."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    def rss_mb(self) -> float | None:
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


KEEPALIVE_S = 3.0


class LoadClient:
    """Keep-alive HTTP to one API server, for the load driver: JSON in, status and JSON out."""

    def __init__(self, base_url: str, headers: dict[str, str], connections: int = 32) -> None:
        self.session = aiohttp.ClientSession(
            base_url=base_url,
            headers=headers,
            # Idle connections are dropped before the server's keep-alive timeout (uvicorn's 5 s)
            # closes them: a request written on a connection the server is closing at that moment
            # fails (aiohttp's default of 15 s made that a race after any pause over 5 s).
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE_S),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    async def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        """POST `body` as JSON; the status and the decoded answer (None when it is not JSON)."""
        async with self.session.post(path, json=body) as response:
            text = await response.read()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, None

    async def get_status(self, path: str) -> int:
        async with self.session.get(path) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self.session.close()


ClientError = aiohttp.ClientError


@dataclass(frozen=True)
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: tuple[float, ...]
    errors: int

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "errors": self.errors,
            "p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "p95_ms": round(percentile(self.latencies_ms, 95), 3),
            "p99_ms": round(percentile(self.latencies_ms, 99), 3),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else 0,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0,
        }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run_load(
    call: Callable[[T], Awaitable[bool]],
    items: Sequence[T],
    requests: int,
    concurrency: int,
    warmup: int = 20,
    max_seconds: float | None = None,
) -> LoadResult:
    """`requests` calls of `call(item)` over `items` (cycled), by `concurrency` closed-loop clients.

    `call` returns False for a failed request; failures are counted, not timed. With
    `max_seconds`, clients start no new request after that long (fewer requests are then made).
    """
    for i in range(min(warmup, requests)):
        await call(items[i % len(items)])
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def client() -> None:
        nonlocal next_index, errors
        while next_index < requests and (deadline is None or time.perf_counter() < deadline):
            item = items[next_index % len(items)]
            next_index += 1
            t0 = time.perf_counter()
            ok = await call(item)
            elapsed = (time.perf_counter() - t0) * 1000
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1

    start = time.perf_counter()
    deadline = start + max_seconds if max_seconds is not None else None
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return LoadResult(len(latencies) + errors, concurrency, seconds, tuple(latencies), errors)


async def run_interleaved(
    calls: Mapping[str, Callable[[T], Awaitable[bool]]],
    items: Sequence[T],
    requests: int,
    warmup: int = 20,
    max_seconds: float | None = None,
) -> dict[str, LoadResult]:
    """`requests` calls of each of `calls` by one client, taking turns on every item.

    Measured one after the other, a figure and its floor meet different moments of a shared
    machine (the JVM still compiling, a neighbour's load); taking turns gives each the same
    ones. The order rotates from item to item so that none always goes first. Requests per
    second are counted from each call's own time.
    """
    names = list(calls)
    for i in range(min(warmup, requests)):
        for name in names:
            await calls[name](items[i % len(items)])
    latencies: dict[str, list[float]] = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    done = 0
    while done < requests and (deadline is None or time.perf_counter() < deadline):
        item = items[done % len(items)]
        shift = done % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            ok = await calls[name](item)
            elapsed = (time.perf_counter() - t0) * 1000
            if ok:
                latencies[name].append(elapsed)
            else:
                errors[name] += 1
        done += 1
    return {
        name: LoadResult(done, 1, sum(latencies[name]) / 1000, tuple(latencies[name]), errors[name])
        for name in names
    }
