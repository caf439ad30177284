"""API keys in the graph: `(:ApiKey {hash, id, prefix, scopes, source, createdAt, revokedAt})`.

Only the SHA-256 of a key is stored; the key itself is shown once, when it is created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from neo4j import AsyncDriver, RoutingControl

from customer_graph.graph.driver import translate_unavailable
from customer_graph.graph.reads import API_KEY_MAP, GraphReader


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    prefix: str
    scopes: tuple[str, ...]
    source: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


CREATE_KEY = f"""
CREATE (k:ApiKey {{hash: $hash, id: $id, prefix: $prefix, scopes: $scopes, source: $source,
                  createdAt: datetime()}})
RETURN {API_KEY_MAP} AS key
"""


async def create_key(
    driver: AsyncDriver,
    database: str,
    *,
    key_hash: str,
    key_id: str,
    prefix: str,
    scopes: Sequence[str],
    source: str,
) -> ApiKeyRow:
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(
            CREATE_KEY,
            hash=key_hash,
            id=key_id,
            prefix=prefix,
            scopes=list(scopes),
            source=source,
            database_=database,
        )
    )
    return key_row(records[0]["key"])


FIND_KEY = f"MATCH (k:ApiKey {{hash: $hash}}) RETURN {API_KEY_MAP} AS key"


async def find_key(driver: AsyncDriver, database: str, key_hash: str) -> ApiKeyRow | None:
    """The key with this hash, revoked or not; None if there is none.

    Every request with a key asks this, so it is one auto-commit round trip (GraphReader), not a
    managed transaction's two. It is asked every time, never cached: a revoked key is refused
    by every process at once."""
    records = await GraphReader(driver, database).fetch(FIND_KEY, hash=key_hash)
    return key_row(records[0]["key"]) if records else None


LIST_KEYS = f"MATCH (k:ApiKey) RETURN {API_KEY_MAP} AS key ORDER BY k.createdAt, k.id"


async def list_keys(driver: AsyncDriver, database: str) -> list[ApiKeyRow]:
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(LIST_KEYS, database_=database, routing_=RoutingControl.READ)
    )
    return [key_row(r["key"]) for r in records]


REVOKE_KEY = f"""
MATCH (k:ApiKey {{id: $id}})
SET k.revokedAt = coalesce(k.revokedAt, datetime())
RETURN {API_KEY_MAP} AS key
"""


async def revoke_key(driver: AsyncDriver, database: str, key_id: str) -> ApiKeyRow | None:
    """Revoke the key with this id (idempotent); None if there is no such key."""
    records, _, _ = await translate_unavailable(
        lambda: driver.execute_query(REVOKE_KEY, id=key_id, database_=database)
    )
    return key_row(records[0]["key"]) if records else None


def key_row(key: Mapping[str, Any]) -> ApiKeyRow:
    """A key as `API_KEY_MAP` returns it."""
    revoked = key.get("revokedAt")
    return ApiKeyRow(
        id=key["id"],
        prefix=key["prefix"],
        scopes=tuple(key["scopes"] or ()),
        source=key["source"],
        created_at=key["createdAt"].to_native(),
        revoked_at=revoked.to_native() if revoked is not None else None,
    )
