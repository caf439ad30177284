"""The typed per-request GraphQL context: the driver, settings, a reader and its loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from neo4j import AsyncDriver
from starlette.requests import HTTPConnection

from customer_graph.auth import Principal
from customer_graph.graph.reads import GraphReader, KeyCheck
from customer_graph.ingestion.workers import WorkerPool
from customer_graph.resolvers.loaders import Loaders
from customer_graph.settings import Settings


@dataclass
class Context:
    driver: AsyncDriver
    settings: Settings
    request: HTTPConnection | None = None
    # Set by the graphql-transport-ws handler from the `connection_init` payload.
    connection_params: dict[str, Any] | None = None
    # Who is calling (set by security.py from the request's key); None: not authenticated.
    principal: Principal | None = None
    # Set when the request runs while the graph confirms its key (security.py): resolves to
    # whether the key is still valid, with the same scopes. Fields that write or audit await it.
    confirm_principal: Callable[[], Awaitable[bool]] | None = None
    # Set with confirm_principal: the key's lookup, which the request's first read may carry.
    key_check: KeyCheck | None = None
    # The ingestion workers; mutations submit to them and wait for the commit. None (a context
    # built outside the app): mutations write through graph/writes.py directly.
    ingest: WorkerPool | None = None
    reader: GraphReader = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.reader = GraphReader(self.driver, self.settings.neo4j_database, self.key_check)
        self.loaders = Loaders(self.reader)

    def fresh_loaders(self) -> Loaders:
        """Forget what this context has loaded (a subscription pushes each change anew)."""
        self.loaders = Loaders(self.reader)
        return self.loaders


Info = strawberry.Info[Context, None]
