"""Small helpers shared by the tests: unique ids, and an in-process client for the ASGI app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette


def unique(prefix: str = "t") -> str:
    """A fresh id, so tests never see each other's data in the shared database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def dev_key() -> str | None:
    """The session's development key (tests/conftest.py sets CUSTOMER_GRAPH_DEV_KEY)."""
    return os.environ.get("CUSTOMER_GRAPH_DEV_KEY")


def _with_graphql_key(key: str | None) -> Callable[[httpx.Request], Awaitable[None]]:
    async def add_key(request: httpx.Request) -> None:
        if key and request.url.path == "/graphql" and "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {key}"

    return add_key


@asynccontextmanager
async def asgi_client(
    app: Starlette, *, graphql_key: str | None = None, **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to `app` in-process, with its lifespan running.

    Requests to /graphql carry `graphql_key` (default: the development key) as a Bearer token
    unless they set their own Authorization header; pass `graphql_key=""` to send none.
    """
    key = dev_key() if graphql_key is None else graphql_key
    hooks = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [*hooks.get("request", []), _with_graphql_key(key)]}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", event_hooks=hooks, **kwargs
        ) as client:
            yield client


def assert_no_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Return `data` of a GraphQL response, failing with the errors if there are any."""
    assert "errors" not in body or not body["errors"], body.get("errors")
    data = body["data"]
    assert isinstance(data, dict)
    return data
