"""Where the time goes: a figure's requests replayed in-process under pyinstrument.

The app runs in this process (its lifespan, its workers, the ASGI transport of httpx), so the
sampling profiler sees every Python frame of the request path: GraphQL parsing and validation,
resolvers, DataLoaders, the driver's packing and unpacking, the tracking API's workers. Time spent
waiting for Neo4j shows up as the event loop's select. The whole thread is sampled
(async_mode="disabled"), so background workers count too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pyinstrument import Profiler

from bench.api import BENCH_KEY
from customer_graph.app import create_app
from customer_graph.settings import PROJECT_ROOT, Settings

T = TypeVar("T")


async def profile_requests(
    settings: Settings,
    call: Callable[[httpx.AsyncClient, T], Awaitable[Any]],
    items: Sequence[T],
    requests: int,
    concurrency: int,
    out: Path,
) -> dict[str, Any]:
    """Replay `requests` calls against an in-process app; write pyinstrument's text report.

    Returns the top frames by own time (a short summary for results.json).
    """
    app = create_app(settings.model_copy(update={"dev_key": BENCH_KEY}))
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=120
        ) as client:
            for item in items[: min(10, len(items))]:
                await call(client, item)  # warm-up: schema ready, caches filled
            profiler = Profiler(interval=0.001, async_mode="disabled")
            next_index = 0

            async def worker() -> None:
                nonlocal next_index
                while next_index < requests:
                    item = items[next_index % len(items)]
                    next_index += 1
                    await call(client, item)

            profiler.start()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            profiler.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    shown = out.resolve()
    if shown.is_relative_to(PROJECT_ROOT):
        shown = shown.relative_to(PROJECT_ROOT)
    return {
        "report": str(shown),
        "wall_s": round(profiler.last_session.duration, 2) if profiler.last_session else None,
        "cpu_s": round(profiler.last_session.cpu_time, 2) if profiler.last_session else None,
        "by_package": by_package(profiler),
        "top_own_time": top_frames(profiler),
    }


def by_package(profiler: Profiler) -> dict[str, float]:
    """Own time by the package whose code ran (graphql, strawberry, neo4j, customer_graph, …),
    as a share of all samples; waiting in the event loop's select is `idle (waiting on I/O)`."""
    session = profiler.last_session
    root = session.root_frame() if session else None
    if root is None:
        return {}
    shares: dict[str, float] = {}
    stack = [(root, "other")]
    while stack:
        frame, parent_package = stack.pop()
        package = _package(frame.file_path or "", frame.function) or parent_package
        stack.extend((child, package) for child in frame.children)
        if not frame.children:
            shares[package] = shares.get(package, 0.0) + frame.time
    total = root.time or 1.0
    ranked = sorted(shares.items(), key=lambda kv: kv[1], reverse=True)
    return {name: round(t / total, 3) for name, t in ranked if t / total >= 0.005}


def _package(path: str, function: str) -> str | None:
    if "select" in function and ("selectors" in path or "<built-in>" in path):
        return "idle (waiting on I/O)"
    for marker in ("site-packages/", "/customer_graph/", "/bench/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            if marker == "/customer_graph/":
                return "customer_graph"
            if marker == "/bench/":
                return "bench (load driver)"
            return rest.split("/", 1)[0].removesuffix(".py")
    if "/lib/python" in path:
        return "stdlib (asyncio, json, …)"
    return None


def top_frames(profiler: Profiler, n: int = 12) -> list[dict[str, Any]]:
    """The n frames with the most own (self) time, as a share of all samples."""
    session = profiler.last_session
    if session is None:
        return []
    root = session.root_frame()
    if root is None:
        return []
    own: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic_leaf or not frame.children:
            # A "[self]" leaf is its parent's own time: name the parent.
            named = frame.parent if frame.is_synthetic_leaf and frame.parent else frame
            label = f"{named.function} ({_short(named.file_path_short or '')}:{named.line_no})"
            own[label] = own.get(label, 0.0) + frame.time
    total = root.time or 1.0
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [{"frame": label, "share": round(t / total, 3)} for label, t in ranked]


def _short(path: str) -> str:
    for marker in ("site-packages/", "customer_graph/", "lib/python"):
        if marker in path:
            return (
                path.split(marker, 1)[1]
                if marker != "customer_graph/"
                else "cg/" + (path.split(marker, 1)[1])
            )
    return path
