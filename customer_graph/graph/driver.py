"""The one async Neo4j driver of a process, and translation of driver errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from neo4j import AsyncDriver, AsyncGraphDatabase
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.settings import Settings

T = TypeVar("T")


def open_driver(settings: Settings) -> AsyncDriver:
    """Create the process's driver; `neo4j+s://` routing URIs work unchanged."""
    return AsyncGraphDatabase.driver(
        settings.bolt_uri,
        auth=(settings.neo4j_user, settings.neo4j_password),
        connection_acquisition_timeout=10,
        connection_timeout=5,
        max_transaction_retry_time=15,
        # Server notifications (e.g. "property key does not exist" before the first write) are
        # noise in production logs; queries are checked by tests instead.
        notifications_min_severity="OFF",
    )


@asynccontextmanager
async def driver_for(settings: Settings) -> AsyncIterator[AsyncDriver]:
    driver = open_driver(settings)
    try:
        yield driver
    finally:
        await driver.close()


async def translate_unavailable(call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`, turning the driver's availability errors into GraphUnavailableError."""
    try:
        return await call()
    except (ServiceUnavailable, SessionExpired, OSError) as e:
        raise GraphUnavailableError(str(e)) from e
