"""The Starlette application: GraphQL, health endpoints, and the lifespan owning the driver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from cross_web import HTTPException
from neo4j import AsyncDriver
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from strawberry.types.unset import UnsetType

from customer_graph.graph.constraints import ensure_schema, missing_constraints
from customer_graph.graph.driver import open_driver
from customer_graph.graphiql import STATIC_NAME, STATIC_PATH, static_files
from customer_graph.graphql_http import GraphQLHTTPView
from customer_graph.ingestion.http import tracking_routes
from customer_graph.ingestion.metrics import metrics_endpoint
from customer_graph.ingestion.workers import WorkerPool
from customer_graph.logging import configure_logging, install_redaction
from customer_graph.resolvers.context import Context
from customer_graph.runtime import tune_garbage_collection
from customer_graph.schema.root import build_schema
from customer_graph.security import authenticate_connection, loads_bounded, security_middleware
from customer_graph.settings import Settings, get_settings

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0
SCHEMA_RETRY_S = 2.0


@dataclass
class AppState:
    """What the lifespan opens and closes; reachable from requests as `request.app.state.cg`."""

    settings: Settings
    driver: AsyncDriver
    ingest: WorkerPool  # the ingestion workers: `await ingest.submit(items)` returns on commit
    schema_ready: asyncio.Event = field(default_factory=asyncio.Event)


class GraphQLApp(GraphQLHTTPView):
    async def get_context(self, request: Any, response: Any = None) -> Context:
        state: AppState = request.app.state.cg
        principal = getattr(request.state, "principal", None)  # set by security.py
        return Context(
            driver=state.driver,
            settings=state.settings,
            principal=principal,
            confirm_principal=getattr(request.state, "confirm_principal", None),
            key_check=getattr(request.state, "key_check", None),
            request=request,
            ingest=state.ingest,
        )

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return loads_bounded(data)  # deep nesting is a 400, not a RecursionError
        except json.JSONDecodeError as e:
            raise HTTPException(400, f"Unable to parse request body as JSON: {e.msg}") from e

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await authenticate_connection(context)  # the key may come in connection_init
        return UnsetType()


async def _ensure_schema_until_done(state: AppState) -> None:
    """Create constraints; if Neo4j is not up yet, keep trying so the API can start first."""
    while True:
        try:
            await ensure_schema(state.driver, state.settings.neo4j_database)
        except (ServiceUnavailable, SessionExpired, OSError) as e:
            log.warning("neo4j not reachable yet (%s); retrying", type(e).__name__)
            await asyncio.sleep(SCHEMA_RETRY_S)
            continue
        state.schema_ready.set()
        return


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.cg
    try:
        missing = await asyncio.wait_for(
            missing_constraints(state.driver, state.settings.neo4j_database), READY_TIMEOUT_S
        )
    except (TimeoutError, ServiceUnavailable, SessionExpired, Neo4jError, OSError) as e:
        return JSONResponse(
            {"status": "unavailable", "neo4j": "unreachable", "error": type(e).__name__},
            status_code=503,
        )
    if missing:
        return JSONResponse(
            {"status": "unavailable", "neo4j": "ok", "missingConstraints": missing},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "neo4j": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    install_redaction()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tune_garbage_collection(settings.gc_gen0_threshold)  # after the schema is built
        driver = open_driver(settings)
        ingest = WorkerPool.for_neo4j(driver, settings)
        ingest.start()
        state = AppState(settings=settings, driver=driver, ingest=ingest)
        app.state.cg = state
        schema_task = asyncio.create_task(_ensure_schema_until_done(state))
        try:
            yield
        finally:
            schema_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schema_task
            await ingest.stop()  # drains the queue
            await driver.close()

    graphql_app = GraphQLApp(
        build_schema(settings), graphql_ide="graphiql" if settings.graphiql_enabled else None
    )
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        *tracking_routes(),
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),  # subscriptions: graphql-transport-ws
    ]
    if settings.graphiql_enabled:
        routes.append(Mount(STATIC_PATH, static_files(), name=STATIC_NAME))
    return Starlette(routes=routes, lifespan=lifespan, middleware=security_middleware(settings))


def app() -> Starlette:
    """Factory for `uvicorn --factory customer_graph.app:app`."""
    configure_logging(get_settings().log_level)
    return create_app()
