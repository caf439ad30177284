"""The real Segment and RudderStack Python SDKs, against a real uvicorn, deliver each event once.

Each SDK gets its own write key (so its own source); after it flushes, the graph must hold one
claim per event sent (its Interaction for a track, page or screen, a Message for the others) and
one Interaction per track/page/screen, each under the messageId the test gave it, and no SDK
error may have been reported.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as analytics
from neo4j import AsyncDriver

from customer_graph.auth import Scope, create_key
from customer_graph.settings import Settings
from tests.e2e.live_server import live_server
from tests.helpers import unique

EVENTS = 2000
USERS = 150


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server() as base:
        yield base


class Errors:
    """Collects what an SDK reports through on_error (called from its consumer thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[str] = []

    def __call__(self, error: Exception, batch: Any) -> None:
        with self.lock:
            self.seen.append(f"{error} ({len(batch)} messages)")


def send_events(sdk: Any, prefix: str, count: int) -> tuple[set[str], set[str]]:
    """Send `count` events of every kind; return (all messageIds, interaction messageIds)."""
    every: set[str] = set()
    interactions: set[str] = set()
    for n in range(count):
        user = f"{prefix}-u{n % USERS}"
        message_id = f"{prefix}-m{n}"
        every.add(message_id)
        kind = n % 10
        if kind == 0:
            traits = {"email": f"{user}@example.com", "plan": "pro", "n": n}
            sdk.identify(user, traits, anonymous_id=f"{user}-anon", message_id=message_id)
            continue
        interactions.add(message_id)
        if kind == 1:
            sdk.page(user, "Docs", f"Page {n % 7}", {"path": f"/p/{n}"}, message_id=message_id)
        elif kind == 2:
            sdk.screen(user, None, "Home", {"n": n}, message_id=message_id)
        else:
            sdk.track(user, "Item Viewed", {"item": n, "price": n / 10}, message_id=message_id)
    return every, interactions


async def landed(driver: AsyncDriver, settings: Settings, source: str) -> dict[str, Any]:
    records, _, _ = await driver.execute_query(
        "CALL () { CALL () { MATCH (m:Message) WHERE m.id STARTS WITH $prefix RETURN m.id AS id "
        "  UNION ALL MATCH (i:Interaction) WHERE i.id STARTS WITH $prefix RETURN i.id AS id } "
        "  RETURN collect(substring(id, size($prefix))) AS messages } "
        "CALL () { MATCH (i:Interaction {source: $source}) "
        "  RETURN collect(i.messageId) AS interactions } "
        "CALL () { MATCH (c:Customer {source: $source}) RETURN count(c) AS customers } "
        "RETURN messages, interactions, customers",
        prefix=f"{source}:",
        source=source,
        database_=settings.neo4j_database,
    )
    return records[0].data()


async def write_key(driver: AsyncDriver, settings: Settings, source: str) -> str:
    key, _ = await create_key(driver, settings, scopes=[Scope.WRITE], source=source)
    return key


def assert_exactly_once(
    found: dict[str, Any], every: set[str], interactions: set[str], users: int = USERS
) -> None:
    messages, tracked = found["messages"], found["interactions"]
    assert len(messages) == len(set(messages)) == len(every)
    assert set(messages) == every
    assert len(tracked) == len(set(tracked)) == len(interactions)
    assert set(tracked) == interactions
    assert found["customers"] == users


@pytest.mark.slow
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
async def test_segment_sdk_delivers_every_event_once(
    server: str, driver: AsyncDriver, settings: Settings, gzip: bool
) -> None:
    source = unique("segment")
    errors = Errors()
    analytics.write_key = await write_key(driver, settings, source)
    analytics.host = server
    analytics.gzip = gzip
    analytics.sync_mode = False
    analytics.on_error = errors
    analytics.default_client = None  # a fresh client with these settings
    count = EVENTS if not gzip else EVENTS // 4

    def run() -> tuple[set[str], set[str]]:
        sent = send_events(analytics, source, count)
        analytics.flush()
        return sent

    try:
        every, interactions = await asyncio.to_thread(run)
    finally:
        analytics.shutdown()
        analytics.default_client = None
    assert errors.seen == []
    assert_exactly_once(await landed(driver, settings, source), every, interactions)


async def test_segment_sdk_sync_mode(server: str, driver: AsyncDriver, settings: Settings) -> None:
    source = unique("segment-sync")
    analytics.write_key = await write_key(driver, settings, source)
    analytics.host = server
    analytics.gzip = False
    analytics.sync_mode = True  # one request per call, answered after commit
    analytics.on_error = None
    analytics.default_client = None
    try:
        every, interactions = await asyncio.to_thread(send_events, analytics, source, 60)
    finally:
        analytics.sync_mode = False
        analytics.default_client = None
    assert_exactly_once(await landed(driver, settings, source), every, interactions, users=60)


@pytest.mark.slow
async def test_rudderstack_sdk_delivers_every_event_once_gzipped(
    server: str, driver: AsyncDriver, settings: Settings
) -> None:
    source = unique("rudder")
    errors = Errors()
    rudder_analytics.write_key = await write_key(driver, settings, source)
    rudder_analytics.dataPlaneUrl = server
    rudder_analytics.gzip = True
    rudder_analytics.on_error = errors
    rudder_analytics.default_client = None

    def run() -> tuple[set[str], set[str]]:
        sent = send_events(rudder_analytics, source, EVENTS)
        rudder_analytics.flush()
        return sent

    try:
        every, interactions = await asyncio.to_thread(run)
    finally:
        rudder_analytics.shutdown()
        rudder_analytics.default_client = None
    assert errors.seen == []
    assert_exactly_once(await landed(driver, settings, source), every, interactions)
