"""What the reads return: rows (small frozen dataclasses), the keys of paged reads, and the
conversions from the maps Cypher returns. Times arrive as ISO text (`toString()` in Cypher is
far cheaper for the driver to decode than its temporal types) and leave as aware datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from neo4j.time import DateTime as Neo4jDateTime

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProfileRow:
    id: str
    created_at: datetime
    updated_at: datetime
    traits: dict[str, Any]
    display_name: str | None
    email: str | None
    phone: str | None
    company: str | None


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    key: str
    type: str
    value: str
    blocked: bool
    sources: tuple[str, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    matched: bool = True


@dataclass(frozen=True, slots=True)
class RecordRow:
    key: str
    source: str
    source_id: str
    traits: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    profile_id: str | None


@dataclass(frozen=True, slots=True)
class ComputedRow:
    first_seen: datetime | None
    last_seen: datetime | None
    interaction_counts: dict[str, int]
    last_interaction_at: datetime | None
    open_pipeline_value: float
    won_revenue: float
    open_deals: int
    won_deals: int
    lost_deals: int


@dataclass(frozen=True, slots=True)
class InteractionRow:
    id: str
    type: str
    occurred_at: datetime
    name: str | None
    channel: str | None
    direction: str | None
    subject: str | None
    body: str | None
    duration_seconds: int | None
    properties: dict[str, Any]
    source: str | None
    message_id: str | None
    record_key: str | None
    owner: OwnerRow | None
    deal_id: str | None
    account_id: str | None


@dataclass(frozen=True, slots=True)
class DealRow:
    id: str
    name: str | None
    amount: float | None
    currency: str | None
    pipeline: str | None
    stage: str | None
    status: str | None
    created_at: datetime | None
    closed_at: datetime | None
    owner_id: str | None
    account_id: str | None
    # Chronological, with durations; None when the query did not fetch it.
    stage_history: tuple[StageChangeRow, ...] | None = None
    # Whether `owner_id` and `account_id` were read (None there is then "none", not "unread").
    links_read: bool = True

    @property
    def complete(self) -> bool:
        """Everything a deal read can carry: such a row may fill any loader of deals."""
        return self.links_read and self.stage_history is not None


@dataclass(frozen=True, slots=True)
class StageChangeRow:
    id: str
    deal_id: str
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    # Seconds spent in `to_stage`: until the next change, or until the deal closed; None while
    # the deal is still in it (or when the row was read without its deal's history).
    duration_seconds: int | None = None
    timed: bool = False  # True when read with its deal's history (duration_seconds is final)
    deal: DealRow | None = None  # with its history, when read for the timeline


@dataclass(frozen=True, slots=True)
class DealContactRow:
    record: RecordRow
    role: str | None


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    name: str | None
    domain: str | None
    owner_id: str | None


@dataclass(frozen=True, slots=True)
class MembershipRow:
    record: RecordRow
    account: AccountRow
    title: str | None
    roles: tuple[str, ...]
    primary: bool
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True, slots=True)
class OwnerRow:
    id: str
    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class MergeEventRow:
    id: str
    at: datetime
    survivor_id: str
    merged_ids: tuple[str, ...]
    identifier_key: str | None
    record_key: str | None


@dataclass(frozen=True, slots=True)
class SplitEventRow:
    id: str
    at: datetime
    profile_id: str  # the profile that was split; it keeps the oldest record's group
    new_profile_ids: tuple[str, ...]
    reason: str | None
    identifier_key: str | None
    record_key: str | None


TimelineItemRow = InteractionRow | StageChangeRow | MergeEventRow | SplitEventRow


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    sort_key: str  # ties on `at` are broken by this, newest first
    item: TimelineItemRow


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a newest-first page starts: strictly after (at, key)."""

    at: datetime
    key: str


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    profile_id: str
    types: tuple[str, ...] | None = None
    # Also every interaction whose type is none of these (the API's OTHER).
    other_than: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class InteractionPageKey:
    filter: InteractionFilter
    first: int
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class TimelinePageKey:
    profile_id: str
    first: int
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class MemberPageKey:
    account_id: str
    first: int
    after: str | None = None  # record key


@dataclass(frozen=True, slots=True)
class SearchPageKey:
    query: str
    first: int
    offset: int = 0


def to_datetime(value: object) -> datetime | None:
    """Neo4j DateTime, ISO string or datetime -> aware datetime (UTC when the zone is missing)."""
    if value is None:
        return None
    if isinstance(value, Neo4jDateTime):
        value = value.to_native()
    elif isinstance(value, str):
        try:
            # Cypher's toString() of a DateTime: ISO 8601, with a zone name in brackets if any.
            value = datetime.fromisoformat(value.split("[", 1)[0])
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def required_datetime(value: object) -> datetime:
    return to_datetime(value) or datetime.fromtimestamp(0, UTC)


def _json_object(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def profile_row(m: Mapping[str, Any]) -> ProfileRow:
    return ProfileRow(
        id=str(m["id"]),
        created_at=required_datetime(m.get("createdAt")),
        updated_at=required_datetime(m.get("updatedAt") or m.get("createdAt")),
        traits=_json_object(m.get("traits")),
        display_name=_str(m.get("displayName")),
        email=_str(m.get("email")),
        phone=_str(m.get("phone")),
        company=_str(m.get("company")),
    )


def record_row(m: Mapping[str, Any]) -> RecordRow:
    return RecordRow(
        key=str(m["key"]),
        source=str(m.get("source") or ""),
        source_id=str(m.get("sourceId") or ""),
        traits=_json_object(m.get("traits")),
        created_at=to_datetime(m.get("createdAt")),
        updated_at=to_datetime(m.get("updatedAt")),
        profile_id=_str(m.get("profileId")),
    )


def identifier_row(m: Mapping[str, Any]) -> IdentifierRow:
    matched = m.get("matched")
    return IdentifierRow(
        key=str(m["key"]),
        type=str(m.get("type") or ""),
        value=str(m.get("value") or ""),
        blocked=bool(m.get("blocked")),
        sources=tuple(sorted(str(s) for s in m.get("sources") or () if s is not None)),
        first_seen=to_datetime(m.get("firstSeen")),
        last_seen=to_datetime(m.get("lastSeen")),
        matched=True if matched is None else bool(matched),
    )


def interaction_row(m: Mapping[str, Any]) -> InteractionRow:
    return InteractionRow(
        id=str(m["id"]),
        type=str(m.get("type") or ""),
        occurred_at=required_datetime(m.get("occurredAt")),
        name=_str(m.get("name")),
        channel=_str(m.get("channel")),
        direction=_str(m.get("direction")),
        subject=_str(m.get("subject")),
        body=_str(m.get("body")),
        duration_seconds=_int(m.get("durationSeconds")),
        properties=_json_object(m.get("properties")),
        source=_str(m.get("source")),
        message_id=_str(m.get("messageId")),
        record_key=_str(m.get("recordKey")),
        owner=owner_row(m["owner"]) if m.get("owner") else None,
        deal_id=_str(m.get("dealId")),
        account_id=_str(m.get("accountId")),
    )


def deal_row(m: Mapping[str, Any]) -> DealRow:
    closed_at = to_datetime(m.get("closedAt"))
    history = m.get("history")
    stage_history = None
    if history is not None:
        changes = sorted(
            (stage_change_row({**c, "dealId": m["id"]}) for c in history),
            key=lambda c: (c.changed_at, c.id),
        )
        stage_history = tuple(with_durations(changes, closed_at))
    return DealRow(
        id=str(m["id"]),
        name=_str(m.get("name")),
        amount=_float(m.get("amount")),
        currency=_str(m.get("currency")),
        pipeline=_str(m.get("pipeline")),
        stage=_str(m.get("stage")),
        status=_str(m.get("status")),
        created_at=to_datetime(m.get("createdAt")),
        closed_at=closed_at,
        owner_id=_str(m.get("ownerId")),
        account_id=_str(m.get("accountId")),
        stage_history=stage_history,
        links_read="ownerId" in m and "accountId" in m,
    )


def stage_change_row(m: Mapping[str, Any], deal: DealRow | None = None) -> StageChangeRow:
    """A stage change; its deal is `deal` when given (read once for several changes), else the
    one it carries, if any."""
    return StageChangeRow(
        id=str(m["id"]),
        deal_id=str(m["dealId"]),
        from_stage=_str(m.get("fromStage")),
        to_stage=str(m.get("toStage") or ""),
        changed_at=required_datetime(m.get("changedAt")),
        deal=deal if deal is not None else deal_row(m["deal"]) if m.get("deal") else None,
    )


def account_row(m: Mapping[str, Any]) -> AccountRow:
    return AccountRow(
        id=str(m["id"]),
        name=_str(m.get("name")),
        domain=_str(m.get("domain")),
        owner_id=_str(m.get("ownerId")),
    )


def membership_row(m: Mapping[str, Any]) -> MembershipRow:
    roles = m.get("roles")
    return MembershipRow(
        record=record_row(m["record"]),
        account=account_row(m["account"]),
        title=_str(m.get("title")),
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
        primary=bool(m.get("primary")),
        start_date=to_datetime(m.get("startDate")),
        end_date=to_datetime(m.get("endDate")),
    )


def merge_event_row(m: Mapping[str, Any]) -> MergeEventRow:
    return MergeEventRow(
        id=str(m["id"]),
        at=required_datetime(m.get("at")),
        survivor_id=str(m.get("survivorId") or ""),
        merged_ids=tuple(str(i) for i in m.get("mergedIds") or ()),
        identifier_key=_str(m.get("identifierKey")),
        record_key=_str(m.get("recordKey")),
    )


def split_event_row(m: Mapping[str, Any]) -> SplitEventRow:
    return SplitEventRow(
        id=str(m["id"]),
        at=required_datetime(m.get("at")),
        profile_id=str(m.get("profileId") or ""),
        new_profile_ids=tuple(str(i) for i in m.get("newProfileIds") or ()),
        reason=_str(m.get("reason")),
        identifier_key=_str(m.get("identifierKey")),
        record_key=_str(m.get("recordKey")),
    )


def computed_row(m: Mapping[str, Any]) -> ComputedRow:
    firsts = [t for t in (to_datetime(m["recordFirst"]), to_datetime(m["interactionFirst"])) if t]
    lasts = [t for t in (to_datetime(m["recordLast"]), to_datetime(m["interactionLast"])) if t]
    return ComputedRow(
        first_seen=min(firsts, default=None),
        last_seen=max(lasts, default=None),
        interaction_counts={str(c["type"]): int(c["count"]) for c in m["counts"]},
        last_interaction_at=to_datetime(m["interactionLast"]),
        open_pipeline_value=float(m["openValue"] or 0.0),
        won_revenue=float(m["wonValue"] or 0.0),
        open_deals=int(m["openDeals"]),
        won_deals=int(m["wonDeals"]),
        lost_deals=int(m["lostDeals"]),
    )


def with_durations(
    changes: list[StageChangeRow], closed_at: datetime | None
) -> list[StageChangeRow]:
    out = []
    for index, change in enumerate(changes):
        end = changes[index + 1].changed_at if index + 1 < len(changes) else closed_at
        seconds = int((end - change.changed_at).total_seconds()) if end is not None else None
        out.append(
            StageChangeRow(
                id=change.id,
                deal_id=change.deal_id,
                from_stage=change.from_stage,
                to_stage=change.to_stage,
                changed_at=change.changed_at,
                duration_seconds=max(seconds, 0) if seconds is not None else None,
                timed=True,
            )
        )
    return out


def contact_row(m: Mapping[str, Any]) -> DealContactRow:
    return DealContactRow(record=record_row(m["record"]), role=_str(m.get("role")))


def owner_row(m: Mapping[str, Any]) -> OwnerRow:
    return OwnerRow(id=str(m["id"]), name=_str(m.get("name")), email=_str(m.get("email")))
