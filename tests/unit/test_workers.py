"""The worker pool's mechanics, with a writer function injected in place of Neo4j.

What is checked here is the queue: group commit, bounds, answers only after commit, 503 cases,
isolation of bad messages, draining. Writing to the real Neo4j is covered by the integration and
end-to-end tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.messages import DedupResult
from customer_graph.graph.records import CustomerIn, WriteBatch, WriteResult
from customer_graph.ingestion.workers import (
    QueueFullError,
    ShuttingDownError,
    WorkerPool,
    WorkItem,
    WriteRejectedError,
)


def item(n: int, *, bad: bool = False, payload: bool = True) -> WorkItem:
    source_id = f"bad-{n}" if bad else f"c-{n}"
    return WorkItem(
        batch=WriteBatch(customers=(CustomerIn(source="s", source_id=source_id),)),
        key=f"s:m{n}",
        type="identify",
        source="s",
        message_id=f"m{n}",
        payload="{}" if payload else None,
    )


@dataclass
class FakeGraph:
    """Commits batches in memory; fails batches holding a `bad-` record, or all when down."""

    delay_s: float = 0.0
    down: bool = False
    commits: list[list[str]] = field(default_factory=list)
    committed_keys: set[str] = field(default_factory=set)
    dead: list[tuple[str, str]] = field(default_factory=list)

    async def write(self, items: Sequence[WorkItem]) -> DedupResult:
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise GraphUnavailableError("down")
        ids = [c.source_id for i in items for c in i.batch.customers]
        if any(i.startswith("bad-") for i in ids):
            raise ValueError("cannot write a bad record")
        duplicates = frozenset(n for n, i in enumerate(items) if i.key in self.committed_keys)
        self.committed_keys.update(i.key for i in items if i.key)
        self.commits.append(ids)
        return DedupResult(duplicates=duplicates, result=WriteResult(customers_written=len(ids)))

    async def dead_letter(self, failed: Sequence[tuple[WorkItem, str]]) -> None:
        self.dead.extend((i.key or "", reason) for i, reason in failed)


def pool_for(graph: FakeGraph, **options: float) -> WorkerPool:
    settings: dict[str, float] = {"batch_max": 50, "batch_wait_s": 0.02, "workers": 1}
    settings.update(options)
    return WorkerPool(
        graph.write,
        graph.dead_letter,
        queue_max=int(settings.pop("queue_max", 1000)),
        batch_max=int(settings["batch_max"]),
        batch_wait_s=settings["batch_wait_s"],
        workers=int(settings["workers"]),
        retry_after_s=1,
    )


async def test_concurrent_requests_share_commits_and_wait_for_them() -> None:
    graph = FakeGraph(delay_s=0.01)
    pool = pool_for(graph)
    pool.start()
    done_before_commit: list[bool] = []

    async def send(n: int) -> None:
        receipt = await pool.submit([item(n)])
        # By the time a request is answered its batch has committed.
        done_before_commit.append(f"c-{n}" not in {i for c in graph.commits for i in c})
        assert receipt.outcomes == ("written",)

    await asyncio.gather(*(send(n) for n in range(120)))
    await pool.stop()
    assert done_before_commit == [False] * 120
    assert sorted(i for c in graph.commits for i in c) == sorted(f"c-{n}" for n in range(120))
    assert len(graph.commits) < 20  # grouped, not one transaction per request
    assert max(len(c) for c in graph.commits) <= 50


async def test_a_request_is_never_split_across_batches() -> None:
    graph = FakeGraph()
    pool = pool_for(graph, batch_max=10)
    pool.start()
    receipts = await asyncio.gather(
        pool.submit([item(n) for n in range(0, 7)]),
        pool.submit([item(n) for n in range(7, 14)]),
        pool.submit([item(n) for n in range(14, 40)]),  # larger than a batch: goes alone
    )
    await pool.stop()
    assert [r.written for r in receipts] == [7, 7, 26]
    assert sorted(len(c) for c in graph.commits) == [7, 7, 26]


async def test_duplicates_are_reported() -> None:
    graph = FakeGraph()
    pool = pool_for(graph)
    pool.start()
    first = await pool.submit([item(1), item(2)])
    again = await pool.submit([item(2), item(3)])
    await pool.stop()
    assert first.outcomes == ("written", "written")
    assert again.outcomes == ("duplicate", "written")


async def test_a_full_queue_refuses_at_once() -> None:
    graph = FakeGraph(delay_s=0.2)
    pool = pool_for(graph, queue_max=10, batch_max=5, workers=1)
    pool.start()
    first = asyncio.create_task(pool.submit([item(n) for n in range(8)]))
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError) as caught:
        await pool.submit([item(n) for n in range(8, 11)])
    assert caught.value.retry_after_s == 1
    assert (await first).written == 8
    await pool.stop()


async def test_neo4j_down_fails_the_batch_and_fails_fast_for_a_while() -> None:
    graph = FakeGraph(down=True)
    pool = pool_for(graph)
    pool.start()
    results = await asyncio.gather(
        *(pool.submit([item(n)]) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, GraphUnavailableError) for r in results)
    graph.down = False
    with pytest.raises(GraphUnavailableError):  # within Retry-After: no new attempt
        await pool.submit([item(9)])
    assert graph.commits == []
    await asyncio.sleep(1.05)
    assert (await pool.submit([item(9)])).written == 1
    await pool.stop()


async def test_bad_messages_are_isolated_and_dead_lettered() -> None:
    graph = FakeGraph()
    pool = pool_for(graph, batch_wait_s=0.05)
    pool.start()
    good_request = [item(n) for n in range(10)]
    mixed_request = [item(10), item(11, bad=True), item(12), item(13, bad=True)]
    good, mixed = await asyncio.gather(pool.submit(good_request), pool.submit(mixed_request))
    await pool.stop()
    assert good.outcomes == ("written",) * 10
    assert mixed.outcomes == ("written", "dead_lettered", "written", "dead_lettered")
    assert [(d.index, d.message_id) for d in mixed.dead_letters] == [(1, "m11"), (3, "m13")]
    assert [key for key, _ in graph.dead] == ["s:m11", "s:m13"]
    assert all(reason == "ValueError: cannot write a bad record" for _, reason in graph.dead)
    written = {i for c in graph.commits for i in c}
    assert written == {f"c-{n}" for n in (*range(11), 12)}


async def test_a_bad_item_without_payload_fails_its_request() -> None:
    graph = FakeGraph()
    pool = pool_for(graph)
    pool.start()
    with pytest.raises(WriteRejectedError) as caught:
        await pool.submit([item(1, bad=True, payload=False)])
    await pool.stop()
    assert "cannot write a bad record" in caught.value.reason
    assert graph.dead == []


async def test_stop_drains_the_queue_then_refuses() -> None:
    graph = FakeGraph(delay_s=0.01)
    pool = pool_for(graph, batch_max=5, workers=2)
    pool.start()
    tasks = [asyncio.create_task(pool.submit([item(n)])) for n in range(40)]
    await asyncio.sleep(0)
    await pool.stop()
    assert all(t.done() and t.result().written == 1 for t in tasks)
    assert pool.depth == 0
    with pytest.raises(ShuttingDownError):
        await pool.submit([item(99)])


async def test_a_cancelled_waiter_does_not_withdraw_its_items() -> None:
    graph = FakeGraph(delay_s=0.05)
    pool = pool_for(graph)
    pool.start()
    task = asyncio.create_task(pool.submit([item(1)]))
    await asyncio.sleep(0.01)
    task.cancel()
    await pool.stop()
    assert graph.commits == [["c-1"]]
