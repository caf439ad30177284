"""What the write path accepts: source records as small frozen dataclasses.

Every way data comes in (tracking API, importers, GraphQL mutations) turns its input into a
`WriteBatch` and hands it to `customer_graph.graph.writes.write_batch`, which writes it in one
managed transaction and resolves identities in that same transaction.

Values here are raw: identifiers are normalized (and blocked values dropped) by the write path.
Times are timezone-aware datetimes. Ids are strings the source gives (or derived keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def customer_key(source: str, source_id: str) -> str:
    """The key of the Customer node for one source's record."""
    return f"{source}:{source_id}"


@dataclass(frozen=True, slots=True)
class IdentifierIn:
    type: str  # email, phone, user_id, anonymous_id, device_id, crm ids, externalIds types…
    value: str


@dataclass(frozen=True, slots=True)
class CustomerIn:
    """What one source knows about one person; upserted by (source, source_id)."""

    source: str
    source_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    identifiers: tuple[IdentifierIn, ...] = ()
    seen_at: datetime | None = None  # when the source saw it (event time); defaults to now
    message_id: str | None = None  # the triggering message, for MergeEvents and dedup

    @property
    def key(self) -> str:
        return customer_key(self.source, self.source_id)


@dataclass(frozen=True, slots=True)
class InteractionIn:
    """A call, email, meeting, note, task, tracked event, page or screen view of one record."""

    id: str
    source: str
    customer_source_id: str  # the record (of the same source) it belongs to
    type: str  # call, email, meeting, note, task, track, page, screen
    occurred_at: datetime
    name: str | None = None
    channel: str | None = None
    direction: str | None = None  # inbound, outbound
    subject: str | None = None
    body: str | None = None
    duration_seconds: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    owner_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class StageChangeIn:
    deal_id: str
    to_stage: str
    changed_at: datetime
    from_stage: str | None = None


@dataclass(frozen=True, slots=True)
class DealContactIn:
    source: str
    source_id: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class DealIn:
    id: str
    name: str | None = None
    amount: float | None = None
    currency: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    status: str | None = None  # open, won, lost
    created_at: datetime | None = None
    closed_at: datetime | None = None
    owner_id: str | None = None
    account_id: str | None = None
    contacts: tuple[DealContactIn, ...] = ()
    source: str | None = None


@dataclass(frozen=True, slots=True)
class AccountIn:
    id: str
    name: str | None = None
    domain: str | None = None
    owner_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True, slots=True)
class MembershipIn:
    """(:Customer)-[:MEMBER_OF]->(:Account)."""

    source: str
    source_id: str
    account_id: str
    title: str | None = None
    roles: tuple[str, ...] = ()
    primary: bool = False
    start_date: datetime | None = None
    end_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwnerIn:
    id: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Everything one transaction writes. Order within each tuple is the order of arrival."""

    customers: tuple[CustomerIn, ...] = ()
    interactions: tuple[InteractionIn, ...] = ()
    deals: tuple[DealIn, ...] = ()
    stage_changes: tuple[StageChangeIn, ...] = ()
    accounts: tuple[AccountIn, ...] = ()
    memberships: tuple[MembershipIn, ...] = ()
    owners: tuple[OwnerIn, ...] = ()

    def __len__(self) -> int:
        return (
            len(self.customers)
            + len(self.interactions)
            + len(self.deals)
            + len(self.stage_changes)
            + len(self.accounts)
            + len(self.memberships)
            + len(self.owners)
        )


@dataclass(frozen=True, slots=True)
class MergeOut:
    survivor_id: str
    merged_ids: tuple[str, ...]
    identifier_key: str | None
    record_key: str | None


@dataclass(slots=True)
class WriteResult:
    """What a committed batch did."""

    customers_written: int = 0
    profiles_created: int = 0
    merges: list[MergeOut] = field(default_factory=list)
    conflicts: int = 0  # identifiers dropped from matching by limits
    touched_profile_ids: set[str] = field(default_factory=set)
    record_profiles: dict[str, str] = field(default_factory=dict)  # customer key -> profile id
