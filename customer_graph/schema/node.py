"""Relay `Node`, global ids, `PageInfo`, and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

import orjson
import strawberry

from customer_graph.resolvers.errors import INVALID_CURSOR, ApiError

# Types that `node(id:)` can fetch; a global id names one of them.
NODE_TYPES: Final = frozenset(
    {"Profile", "CustomerRecord", "Deal", "Account", "Interaction", "Owner"}
)


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global id of the object.")


def to_global_id(type_name: str, raw_id: str) -> strawberry.ID:
    text = f"{type_name}:{raw_id}".encode()
    return strawberry.ID(base64.b64encode(text).decode("ascii"))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """(type, raw id) of a global id, or None if it is not one of ours."""
    try:
        text = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, raw_id = text.partition(":")
    if not sep or not raw_id or type_name not in NODE_TYPES:
        return None
    return type_name, raw_id


def raw_id_for(type_name: str, id_or_global_id: str) -> str | None:
    """The raw id behind a global id of `type_name`, or the argument itself if it is a raw id.

    A global id of another type gives None: `profile(id:)` with a deal's id finds nothing.
    """
    decoded = from_global_id(id_or_global_id)
    if decoded is None:
        return id_or_global_id
    return decoded[1] if decoded[0] == type_name else None


@strawberry.type(description="Where a page of a connection stands.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def encode_cursor(*parts: str) -> str:
    """The parts as a JSON array in URL-safe base64 (orjson: a timeline page makes one a row)."""
    try:
        text = orjson.dumps(parts)
    except orjson.JSONEncodeError:  # text orjson refuses (a lone surrogate)
        text = json.dumps(parts).encode()
    return base64.urlsafe_b64encode(text).decode("ascii")


def decode_cursor(cursor: str, length: int) -> list[str]:
    """The parts of a cursor made by `encode_cursor`; anything else is a client error."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != length
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ApiError("The cursor is not valid for this connection.", INVALID_CURSOR)
    return parts
