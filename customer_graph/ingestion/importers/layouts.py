"""Layouts of CRM exports and the view of one row through a layout.

A `Layout` says how one export (Salesforce Contact, HubSpot deals…) maps onto one kind of record:
for each canonical field (`email`, `owner_id`, `occurred_at`…), the columns that may hold it, in
order of preference, matched without regard to case. A `RowView` reads a row's fields through
its layout and converts them, naming the column in the reason when a value does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any

from customer_graph.ingestion.importers import convert


class Kind(StrEnum):
    CONTACTS = "contacts"
    ACCOUNTS = "accounts"
    DEALS = "deals"
    STAGE_CHANGES = "stage-changes"
    INTERACTIONS = "interactions"


class RowError(ValueError):
    """The row is rejected; the message is the reason written to the rejects file."""


class LayoutError(ValueError):
    """The file does not fit the kind or preset asked for (a missing required column)."""


INTERACTION_TYPES = frozenset(
    {"call", "email", "meeting", "note", "task", "track", "page", "screen"}
)
DIRECTIONS = frozenset({"inbound", "outbound"})
DEAL_STATUSES = frozenset({"open", "won", "lost"})
CHANNEL_OF_TYPE = {"call": "phone", "email": "email", "meeting": "meeting"}

ADDRESS_FIELDS = ("street", "city", "state", "postal_code", "country")
_COMMON = "is_deleted created_at updated_at owner_id owner_name"
# Canonical fields of each kind; a layout may use only these (a unit test holds them to it).
FIELDS: dict[Kind, frozenset[str]] = {
    kind: frozenset(names.split())
    for kind, names in {
        Kind.CONTACTS: f"""{_COMMON} {" ".join(ADDRESS_FIELDS)} id email email_2 email_3 phone
            mobile_phone home_phone other_phone first_name last_name name title department
            company account_ids account_type user_id website lead_source lifecycle_stage
            birthdate description""",
        Kind.ACCOUNTS: f"""{_COMMON} {" ".join(ADDRESS_FIELDS)} id name domain website phone email
            industry type employees annual_revenue parent_id description account_number""",
        Kind.DEALS: f"""{_COMMON} id name amount amount_won currency pipeline stage status
            is_closed is_won close_date closed_at account_ids contact_ids probability type
            lead_source stage_entered""",
        Kind.STAGE_CHANGES: """deal_id to_stage from_stage changed_at is_deleted amount
            stage_entered""",
        Kind.INTERACTIONS: f"""{_COMMON} id contact_id contact_ids type occurred_at ended_at
            name channel direction subject body duration_seconds duration_minutes duration_ms
            duration_text account_id deal_id related_id related_type status location""",
    }.items()
}
Derive = Callable[["RowView"], Mapping[str, Any]]


def _strip(value: str) -> str:
    return value.strip()


@dataclass(frozen=True)
class Layout:
    """How one CRM export maps onto one kind of record."""

    name: str  # "Salesforce Contact"
    kind: Kind
    columns: Mapping[str, tuple[str, ...]]
    # Columns that tell this export apart from the preset's other exports of the same kind.
    signature: tuple[str, ...] = ()
    # field -> regular expression over column names, for fields spread over many columns
    # (HubSpot's `Date entered "<stage>"`).
    patterns: Mapping[str, str] = field(default_factory=dict)
    id_type: str | None = None  # contacts: the identifier type of the CRM's record id
    clean_id: Callable[[str], str] = _strip
    derive: Derive | None = None  # CRM-specific fields computed from the whole row
    type_values: Mapping[str, str] = field(default_factory=dict)  # lower-case value -> type
    default_type: str | None = None
    direction_values: Mapping[str, str] = field(default_factory=dict)
    status_values: Mapping[str, str] = field(default_factory=dict)
    stage_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    """The layouts of one CRM's standard exports."""

    name: str
    layouts: tuple[Layout, ...]

    def kinds(self) -> list[Kind]:
        return [kind for kind in Kind if any(layout.kind is kind for layout in self.layouts)]

    def choose(self, kind: Kind, columns: Iterable[str]) -> Layout:
        """The layout of `kind` whose signature columns the file has most of (first on a tie)."""
        candidates = [layout for layout in self.layouts if layout.kind is kind]
        if not candidates:
            supported = ", ".join(k.value for k in self.kinds())
            raise LayoutError(f"the {self.name} preset has no {kind.value} ({supported})")
        present = {norm(c) for c in columns}
        return max(
            candidates,
            key=lambda layout: sum(norm(c) in present for c in layout.signature),
        )


@dataclass(frozen=True, slots=True)
class ImportContext:
    """What every row of one import shares."""

    source: str
    timezone: tzinfo = UTC
    extras: bool = True  # keep unmapped columns as traits (contacts, accounts) or properties

    def ref(self, raw_id: str) -> str:
        """The graph id of a deal, account, interaction or owner of this source."""
        return f"{self.source}:{raw_id}"


def norm(name: str) -> str:
    return " ".join(name.casefold().split())


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where each field of a layout is, among one set of columns."""

    fields: dict[str, tuple[str, ...]]
    matches: dict[str, tuple[str, ...]]
    extras: tuple[str, ...]


class Resolver:
    """Resolves a layout's fields against a set of column names, once per distinct set."""

    MAX_CACHED = 64

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._patterns = {f: re.compile(p, re.IGNORECASE) for f, p in layout.patterns.items()}
        self._cache: dict[tuple[str, ...], Resolved] = {}

    def resolve(self, keys: tuple[str, ...]) -> Resolved:
        cached = self._cache.get(keys)
        if cached is not None:
            return cached
        by_norm: dict[str, str] = {}
        for key in keys:
            by_norm.setdefault(norm(key), key)
        used: set[str] = set()
        fields: dict[str, tuple[str, ...]] = {}
        for name, candidates in self.layout.columns.items():
            found = tuple(by_norm[norm(c)] for c in candidates if norm(c) in by_norm)
            if found:
                fields[name] = found
                used.update(found)
        matches: dict[str, tuple[str, ...]] = {}
        for name, pattern in self._patterns.items():
            found = tuple(k for k in keys if pattern.search(k))
            matches[name] = found
            used.update(found)
        extras = tuple(k for k in keys if k not in used)
        resolved = Resolved(fields, matches, extras)
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()
        self._cache[keys] = resolved
        return resolved


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        parts = [t for t in (_as_text(v) for v in value) if t is not None]
        return ";".join(parts) or None
    return str(value)


class RowView:
    """One row seen through a layout: canonical fields, converted, with reasons on failure."""

    __slots__ = ("_resolved", "context", "layout", "overrides", "values")

    def __init__(
        self,
        values: Mapping[str, Any],
        resolved: Resolved,
        layout: Layout,
        context: ImportContext,
    ) -> None:
        self.values = values
        self._resolved = resolved
        self.layout = layout
        self.context = context
        self.overrides: dict[str, Any] = {}

    def label(self, name: str) -> str:
        """The column a field is read from, for reasons (`Amount`), or the field's name."""
        columns = self._resolved.fields.get(name)
        if columns:
            return columns[0]
        candidates = self.layout.columns.get(name)
        return candidates[0] if candidates else name

    def raw(self, name: str) -> Any:
        """The first non-empty value of a field, as the file holds it."""
        if name in self.overrides:
            return self.overrides[name]
        for key in self._resolved.fields.get(name, ()):
            value = self.values.get(key)
            if _as_text(value) is not None:
                return value
        return None

    def text(self, name: str) -> str | None:
        return _as_text(self.raw(name))

    def required(self, name: str, what: str | None = None) -> str:
        value = self.text(name)
        if value is None:
            raise RowError(f"missing {what or name} ({self.label(name)})")
        return value

    def items(self, name: str) -> list[str]:
        """A multi-valued field: a JSON list or a `;`/`,`-separated cell."""
        value = self.raw(name)
        if isinstance(value, list):
            return [t for t in (_as_text(v) for v in value) if t is not None]
        text = _as_text(value)
        return convert.split_ids(text) if text else []

    def matching(self, name: str) -> tuple[str, ...]:
        """Columns matched by the layout's pattern for `name`."""
        return self._resolved.matches.get(name, ())

    def cell(self, column: str) -> str | None:
        return _as_text(self.values.get(column))

    def extras(self) -> dict[str, Any]:
        """Non-empty cells of the columns no field reads."""
        out: dict[str, Any] = {}
        for key in self._resolved.extras:
            value = self.values.get(key)
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "" or value == []:
                continue
            out[key] = value
        return out

    # Conversions: each failure names the column it came from.

    def _convert(self, name: str, fn: Callable[[str], Any]) -> Any:
        text = self.text(name)
        if text is None:
            return None
        try:
            return fn(text)
        except ValueError as e:
            raise RowError(f"{self.label(name)}: {e}") from None

    def datetime(self, name: str) -> datetime | None:
        tz = self.context.timezone
        result: datetime | None = self._convert(name, lambda t: convert.parse_datetime(t, tz))
        return result

    def amount(self, name: str) -> float | None:
        result: float | None = self._convert(name, convert.parse_amount)
        return result

    def number(self, name: str) -> float | None:
        result: float | None = self._convert(name, convert.parse_number)
        return result

    def integer(self, name: str) -> int | None:
        result: int | None = self._convert(name, convert.parse_int)
        return result

    def duration(self, name: str) -> int | None:
        result: int | None = self._convert(name, convert.parse_duration)
        return result

    def flag(self, name: str) -> bool | None:
        result: bool | None = self._convert(name, convert.parse_bool)
        return result

    def id(self, name: str) -> str | None:
        text = self.text(name)
        return self.layout.clean_id(text) if text else None

    def ids(self, name: str) -> list[str]:
        return [self.layout.clean_id(v) for v in self.items(name)]


def related(
    view: RowView,
    by_type: Mapping[str, str],
    by_prefix: Callable[[str], str | None] | None = None,
) -> dict[str, str]:
    """Route a polymorphic reference (`WhatId`, `regardingobjectid`…) to the field it names.

    `by_type` maps a lower-case type name (`related_type`, when the export has it) to a field
    (`deal_id`, `account_id`, `contact_id`); without a type, `by_prefix` may tell it from the id.
    A field the row already has is left alone.
    """
    ref = view.id("related_id")
    if ref is None:
        return {}
    kind = (view.text("related_type") or "").casefold()
    target = by_type.get(kind) if kind else None
    if target is None and not kind and by_prefix is not None:
        target = by_prefix(ref)
    if target is None or view.text(target) is not None:
        return {}
    return {target: ref}
