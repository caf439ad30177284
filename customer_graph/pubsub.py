"""Profile change notifications for the `profileUpdated` subscription: an in-process broker.

Writers call `publish_profile_updated(ids)` (or `publish_write_result(result)`) after a commit
that touched profiles: a merge, a new interaction, a trait change, a split. Subscribers wait on
`Subscription.changed()` and re-read the profile, so a burst of writes wakes them once and they
always push the committed state.

Scale-out: this broker only reaches subscribers in the process that made the write. With several
API or worker processes, put a shared broker behind the same two functions (Redis or NATS
pub/sub keyed by profile id, or Neo4j change data capture in Enterprise); nothing else changes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from customer_graph.graph.records import WriteResult


class Subscription:
    """One subscriber: the profile ids it watches and an event set when any of them changes."""

    def __init__(self, broker: ProfileBroker) -> None:
        self._broker = broker
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self.ids: set[str] = set()

    def watch(self, profile_id: str) -> None:
        """Also wake for `profile_id` (the profile a watched one was merged into, say)."""
        if profile_id not in self.ids:
            self.ids.add(profile_id)
            self._broker._add(profile_id, self)

    async def changed(self) -> None:
        """Wait until a watched profile changes; changes since the last wait count once."""
        await self._event.wait()
        self._event.clear()

    def _notify(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)


class ProfileBroker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def publish(self, profile_ids: Iterable[str]) -> None:
        with self._lock:
            woken = {s for pid in set(profile_ids) for s in self._subscribers.get(pid, ())}
        for subscription in woken:
            subscription._notify()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription(self)
        try:
            yield subscription
        finally:
            with self._lock:
                for pid in subscription.ids:
                    watchers = self._subscribers.get(pid)
                    if watchers is not None:
                        watchers.discard(subscription)
                        if not watchers:
                            del self._subscribers[pid]

    def _add(self, profile_id: str, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers[profile_id].add(subscription)

    @property
    def watched(self) -> int:
        """How many profile ids have at least one subscriber."""
        with self._lock:
            return len(self._subscribers)


BROKER = ProfileBroker()


def publish_profile_updated(profile_ids: Iterable[str]) -> None:
    """Tell subscribers that these profiles changed (call it after the write committed)."""
    BROKER.publish(profile_ids)


def touched_profiles(result: WriteResult) -> set[str]:
    """Every profile a committed batch changed, merged-away ones included."""
    ids = set(result.touched_profile_ids)
    for merge in result.merges:
        ids.add(merge.survivor_id)
        ids.update(merge.merged_ids)
    return ids


def publish_write_result(result: WriteResult) -> None:
    publish_profile_updated(touched_profiles(result))
