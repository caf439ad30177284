"""Custom scalars: `DateTime` (ISO 8601, always with a zone) and `JSON` (any JSON value)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "parse_datetime", "serialize_datetime"]


def serialize_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, so that clients compare times as strings safely."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: object) -> datetime:
    """An ISO 8601 string; a time without a zone is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError("DateTime must be an ISO 8601 string") from e
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


SCALAR_MAP: Final[dict[object, ScalarDefinition]] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="A point in time: an ISO 8601 string, in UTC with a `Z` on output.",
        serialize=serialize_datetime,
        parse_value=parse_datetime,
    ),
}
