"""Fixtures: the real local Neo4j (started if needed, stopped if we started it) and its driver."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import open_driver
from customer_graph.graph.local import LocalNeo4j
from customer_graph.settings import PROJECT_ROOT, Settings

# Every GraphQL request needs a key: the session's settings get a development key (every scope),
# which tests.helpers.asgi_client sends to /graphql unless a test sets its own Authorization.
os.environ.setdefault("CUSTOMER_GRAPH_DEV_KEY", "cg_test_" + secrets.token_urlsafe(24))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def neo4j_running(settings: Settings) -> Iterator[None]:
    """The shared test database. With NEO4J_URI set it is used as it is."""
    if not settings.uses_local_neo4j:
        yield
        return
    local = LocalNeo4j.from_settings(settings)
    started = local.start()
    yield
    if started:
        local.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def driver(settings: Settings, neo4j_running: None) -> AsyncIterator[AsyncDriver]:
    driver = open_driver(settings)
    await ensure_schema(driver, settings.neo4j_database)
    yield driver
    await driver.close()


@pytest.fixture(scope="session")
def private_neo4j(settings: Settings) -> Iterator[LocalNeo4j]:
    """A second local Neo4j, for tests that stop or kill it without disturbing anyone else.

    Its port is free and its home is its own, so test sessions running at once never share it.
    """
    port = _free_port()
    local = LocalNeo4j(
        home=PROJECT_ROOT / ".local" / "neo4j-private" / str(port),
        port=port,
        user=settings.neo4j_user,
        password=settings.neo4j_password,
        heap="512m",
        pagecache_mb=128,
    )
    local.start()
    yield local
    local.stop()
    shutil.rmtree(local.home, ignore_errors=True)


@pytest.fixture(scope="session")
def private_settings(settings: Settings, private_neo4j: LocalNeo4j) -> Settings:
    return settings.model_copy(update={"neo4j_uri": private_neo4j.uri})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
