"""The in-process broker behind profileUpdated: who is woken, how often, from where."""

from __future__ import annotations

import asyncio
import threading

from customer_graph.graph.records import MergeOut, WriteResult
from customer_graph.pubsub import ProfileBroker, touched_profiles


async def woken(changed: asyncio.Future[None] | asyncio.Task[None], within: float = 0.5) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(changed), within)
    except TimeoutError:
        return False
    return True


async def test_only_watchers_of_a_profile_are_woken() -> None:
    broker = ProfileBroker()
    with broker.subscribe() as a, broker.subscribe() as b:
        a.watch("p1")
        b.watch("p2")
        wait_a = asyncio.ensure_future(a.changed())
        wait_b = asyncio.ensure_future(b.changed())
        broker.publish(["p1", "p3"])
        assert await woken(wait_a)
        assert not await woken(wait_b, 0.1)
        wait_b.cancel()
    assert broker.watched == 0  # leaving the block unsubscribes


async def test_a_burst_of_writes_wakes_once() -> None:
    broker = ProfileBroker()
    with broker.subscribe() as sub:
        sub.watch("p")
        for _ in range(5):
            broker.publish(["p"])
        assert await woken(asyncio.ensure_future(sub.changed()))
        second = asyncio.ensure_future(sub.changed())
        assert not await woken(second, 0.1)
        broker.publish(["p"])  # a write after the subscriber read wakes it again
        assert await woken(second)


async def test_publish_from_another_thread() -> None:
    broker = ProfileBroker()
    with broker.subscribe() as sub:
        sub.watch("p")
        waiting = asyncio.ensure_future(sub.changed())
        thread = threading.Thread(target=broker.publish, args=(["p"],))
        thread.start()
        thread.join()
        assert await woken(waiting)


def test_a_merge_touches_survivor_and_merged_away_profiles() -> None:
    result = WriteResult(touched_profile_ids={"a"})
    result.merges.append(MergeOut("s", ("m1", "m2"), identifier_key=None, record_key=None))
    assert touched_profiles(result) == {"a", "s", "m1", "m2"}
