"""Small helpers shared by the tests: unique ids, and an in-process client for the ASGI app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette


def unique(prefix: str = "t") -> str:
    """A fresh id, so tests never see each other's data in the shared database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def asgi_client(app: Starlette, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to `app` in-process, with its lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", **kwargs
        ) as client:
            yield client


def assert_no_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Return `data` of a GraphQL response, failing with the errors if there are any."""
    assert "errors" not in body or not body["errors"], body.get("errors")
    data = body["data"]
    assert isinstance(data, dict)
    return data
