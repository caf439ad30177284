"""API keys: creating them, and turning a presented key into a `Principal`.

A key is `cg_` followed by 256 random bits; the graph stores only its SHA-256 (a hash of a
high-entropy secret needs no salt or slow hash). Every key has scopes (`write` for ingestion,
`read` for queries, `admin` for merges, blocks and deletion) and a source: the records that events
sent with it create belong to that source. `CUSTOMER_GRAPH_DEV_KEY` is one more key, with every
scope and source `dev`, for development and tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from neo4j import AsyncDriver

from customer_graph.graph import keys as key_store
from customer_graph.graph.audit import record_audit
from customer_graph.graph.keys import ApiKeyRow
from customer_graph.settings import Settings


class Scope(StrEnum):
    WRITE = "write"
    READ = "read"
    ADMIN = "admin"


ALL_SCOPES: Final = frozenset(Scope)
KEY_PREFIX: Final = "cg_"
DEV_SOURCE: Final = "dev"
DEV_KEY_ID: Final = "dev"
# Longer than any key we issue; a longer value is refused before it is hashed or looked up.
MAX_KEY_LENGTH: Final = 200
_DISPLAY_CHARS: Final = 8  # random characters kept in the stored prefix, to recognise a key


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the id of their key, its scopes, and the source it writes as."""

    key_id: str
    scopes: frozenset[Scope]
    source: str

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes


DEV_PRINCIPAL: Final = Principal(key_id=DEV_KEY_ID, scopes=ALL_SCOPES, source=DEV_SOURCE)


class InvalidSourceError(ValueError):
    """A source name that cannot be used (empty, too long, or with a `:`)."""


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_authorization(header: str | None) -> str | None:
    """The key in an `Authorization` header: `Bearer <key>` or HTTP Basic with the key as user.

    Segment's and RudderStack's SDKs send Basic `base64("<key>:")`.
    """
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user or password or None
    return None


async def authenticate(
    driver: AsyncDriver, settings: Settings, key: str | None
) -> Principal | None:
    """The principal of `key`; None for a missing, unknown or revoked key.

    Raises GraphUnavailableError when Neo4j cannot be asked (an outage is not a bad key).
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    if settings.dev_key and hmac.compare_digest(key.encode(), settings.dev_key.encode()):
        return DEV_PRINCIPAL
    return principal_of(await key_store.find_key(driver, settings.neo4j_database, hash_key(key)))


def principal_of(row: ApiKeyRow | None) -> Principal | None:
    """The principal of a stored key; None for no key or a revoked one."""
    if row is None or row.revoked:
        return None
    return Principal(key_id=row.id, scopes=_scopes(row.scopes), source=row.source)


async def create_key(
    driver: AsyncDriver,
    settings: Settings,
    *,
    scopes: Iterable[Scope],
    source: str,
    actor: str = "cli",
) -> tuple[str, ApiKeyRow]:
    """Create a key; returns the key itself (shown once, never stored) and its stored row.

    The creation goes in the audit log, by `actor`."""
    chosen = sorted(set(scopes))
    if not chosen:
        raise ValueError("a key needs at least one scope")
    source = validate_source(source)
    key = new_key()
    row = await key_store.create_key(
        driver,
        settings.neo4j_database,
        key_hash=hash_key(key),
        key_id="key_" + secrets.token_hex(8),
        prefix=key[: len(KEY_PREFIX) + _DISPLAY_CHARS],
        scopes=[s.value for s in chosen],
        source=source,
    )
    await record_audit(
        driver,
        settings.neo4j_database,
        actor=actor,
        action="key.create",
        target=f"key:{row.id}",
        details={"scopes": list(row.scopes), "source": row.source},
    )
    return key, row


async def revoke_key(
    driver: AsyncDriver, settings: Settings, key_id: str, *, actor: str = "cli"
) -> ApiKeyRow | None:
    """Revoke a key (idempotent), with an audit entry; None if there is no such key."""
    row = await key_store.revoke_key(driver, settings.neo4j_database, key_id)
    if row is not None:
        await record_audit(
            driver,
            settings.neo4j_database,
            actor=actor,
            action="key.revoke",
            target=f"key:{row.id}",
            details={"source": row.source},
        )
    return row


# A source names a system (web, salesforce, hubspot-eu); it becomes part of record keys
# (`source:id`), so it is a name, never free text: no `:`, quotes, backticks or spaces.
SOURCE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def validate_source(source: str) -> str:
    """The source name, stripped; InvalidSourceError unless it is letters, digits, `_ . -`."""
    name = source.strip()
    if not SOURCE_NAME.fullmatch(name):
        raise InvalidSourceError(
            "a source is 1 to 64 letters, digits and _ . - (starting with a letter or digit)"
        )
    return name


def _scopes(values: Iterable[str]) -> frozenset[Scope]:
    known = {s.value for s in Scope}
    return frozenset(Scope(v) for v in values if v in known)
