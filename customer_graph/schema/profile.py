"""Profiles (resolved people), their source records, identifiers, computed traits and history."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated, Final

import strawberry

from customer_graph.graph.identity import explain_link
from customer_graph.graph.reads import (
    ALL_DEAL_PARTS,
    DealParts,
    ProfilePageKey,
    TimelinePart,
    search_profiles_count,
)
from customer_graph.graph.rows import (
    ComputedRow,
    DealRow,
    IdentifierRow,
    InteractionFilter,
    InteractionPageKey,
    InteractionRow,
    Keyset,
    MergeEventRow,
    Page,
    ProfileRow,
    RecordRow,
    SplitEventRow,
    StageChangeRow,
    TimelineEntry,
    TimelinePageKey,
    to_datetime,
)
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.errors import INVALID_CURSOR, ApiError
from customer_graph.resolvers.lookahead import child_fields, names_under
from customer_graph.resolvers.paging import MAX_PAGE_SIZE, check_first, check_list
from customer_graph.resolvers.sync import then
from customer_graph.schema.account import AccountMembership
from customer_graph.schema.deal import Deal, DealStatus, StageChange
from customer_graph.schema.interaction import (
    Interaction,
    InteractionConnection,
    InteractionEdge,
    InteractionType,
    interaction_keys,
    interaction_type,
)
from customer_graph.schema.node import (
    Node,
    PageInfo,
    decode_cursor,
    encode_cursor,
    raw_id_for,
    to_global_id,
)
from customer_graph.schema.scalars import JSON


@strawberry.type(description="A value that identifies a person: an email, a phone, a user id…")
class Identifier:
    key: strawberry.Private[str]
    type: str
    value: str
    sources: list[str] = strawberry.field(description="Sources whose records carry it.")
    first_seen: datetime | None
    last_seen: datetime | None
    blocked: bool = strawberry.field(description="Blocked values never link records.")
    matched: bool = strawberry.field(
        description="False when per-type limits kept it from linking this profile's records."
    )

    @classmethod
    def from_row(cls, row: IdentifierRow) -> Identifier:
        return cls(
            key=row.key,
            type=row.type,
            value=row.value,
            sources=list(row.sources),
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            blocked=row.blocked,
            matched=row.matched,
        )


async def _record_profile(root: CustomerRecord, info: Info) -> Profile | None:
    return await load_profile(info, root.row.profile_id)


@strawberry.type(description="What one source knows about one person (a CRM contact, a visitor).")
class CustomerRecord(Node):
    row: strawberry.Private[RecordRow]
    source: str
    source_id: str
    traits: JSON
    created_at: datetime | None
    updated_at: datetime | None
    profile: Profile | None = strawberry.field(
        resolver=_record_profile, description="The profile the record resolves to."
    )

    @classmethod
    def from_row(cls, row: RecordRow) -> CustomerRecord:
        return cls(
            id=to_global_id("CustomerRecord", row.key),
            row=row,
            source=row.source,
            source_id=row.source_id,
            traits=JSON(row.traits),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class InteractionCount:
    type: InteractionType
    count: int


@strawberry.type(description="Traits computed from the profile's records, interactions and deals.")
class ComputedTraits:
    first_seen: datetime | None
    last_seen: datetime | None
    last_interaction_at: datetime | None
    interaction_counts: list[InteractionCount] = strawberry.field(
        description="Interactions by type, most frequent first."
    )
    interaction_count: int
    open_pipeline_value: float = strawberry.field(description="Sum of the open deals' amounts.")
    won_revenue: float = strawberry.field(description="Sum of the won deals' amounts.")
    open_deals: int
    won_deals: int
    lost_deals: int

    @classmethod
    def from_row(cls, row: ComputedRow | None) -> ComputedTraits:
        counts: dict[InteractionType, int] = {}
        if row is not None:
            for name, n in row.interaction_counts.items():
                t = interaction_type(name)
                counts[t] = counts.get(t, 0) + n
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].value))
        return cls(
            first_seen=row.first_seen if row else None,
            last_seen=row.last_seen if row else None,
            last_interaction_at=row.last_interaction_at if row else None,
            interaction_counts=[InteractionCount(type=t, count=n) for t, n in ordered],
            interaction_count=sum(counts.values()),
            open_pipeline_value=row.open_pipeline_value if row else 0.0,
            won_revenue=row.won_revenue if row else 0.0,
            open_deals=row.open_deals if row else 0,
            won_deals=row.won_deals if row else 0,
            lost_deals=row.lost_deals if row else 0,
        )


async def _event_identifier(root: MergeEvent | SplitEvent, info: Info) -> Identifier | None:
    if root.identifier_key is None:
        return None
    row = await info.context.loaders.identifier_by_key.load(root.identifier_key)
    return Identifier.from_row(row) if row is not None else None


async def _event_record(root: MergeEvent | SplitEvent, info: Info) -> CustomerRecord | None:
    return await load_record(info, root.record_key)


@strawberry.type(description="Profiles that became one, and why.")
class MergeEvent:
    id: strawberry.ID
    identifier_key: strawberry.Private[str | None]
    record_key: strawberry.Private[str | None]
    at: datetime
    survivor_id: strawberry.ID = strawberry.field(description="The profile that survived.")
    merged_ids: list[strawberry.ID] = strawberry.field(
        description="The profiles merged into the survivor; their ids still resolve."
    )
    identifier: Identifier | None = strawberry.field(
        resolver=_event_identifier, description="The shared identifier that joined them."
    )
    record: CustomerRecord | None = strawberry.field(
        resolver=_event_record, description="The record whose write joined them."
    )

    @classmethod
    def from_row(cls, row: MergeEventRow) -> MergeEvent:
        return cls(
            id=strawberry.ID(row.id),
            identifier_key=row.identifier_key,
            record_key=row.record_key,
            at=row.at,
            survivor_id=to_global_id("Profile", row.survivor_id),
            merged_ids=[to_global_id("Profile", i) for i in row.merged_ids],
        )


@strawberry.type(description="A profile split in several, and why.")
class SplitEvent:
    id: strawberry.ID
    identifier_key: strawberry.Private[str | None]
    record_key: strawberry.Private[str | None]
    at: datetime
    reason: str | None
    profile_id: strawberry.ID = strawberry.field(
        description="The profile that was split; it keeps the group of its oldest record."
    )
    new_profile_ids: list[strawberry.ID] = strawberry.field(
        description="The profiles made for the other groups."
    )
    identifier: Identifier | None = strawberry.field(
        resolver=_event_identifier, description="The identifier whose blocking split it."
    )
    record: CustomerRecord | None = strawberry.field(
        resolver=_event_record, description="The record whose removal split it."
    )

    @classmethod
    def from_row(cls, row: SplitEventRow) -> SplitEvent:
        return cls(
            id=strawberry.ID(row.id),
            identifier_key=row.identifier_key,
            record_key=row.record_key,
            at=row.at,
            reason=row.reason,
            profile_id=to_global_id("Profile", row.profile_id),
            new_profile_ids=[to_global_id("Profile", i) for i in row.new_profile_ids],
        )


TimelineItem = Annotated[
    Interaction | StageChange | MergeEvent | SplitEvent,
    strawberry.union(
        "TimelineItem", description="An interaction, a deal stage change, a merge or a split."
    ),
]


@strawberry.type
class TimelineEdge:
    cursor: str
    node: TimelineItem


@strawberry.type(description="A page of the profile's history, newest first.")
class TimelineConnection:
    edges: list[TimelineEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[TimelineItem]:
        return [e.node for e in self.edges]


@strawberry.type(description="One hop of the chain that joins two records: a shared identifier.")
class LinkStep:
    from_: CustomerRecord = strawberry.field(name="from")
    identifier: Identifier
    to: CustomerRecord


def _keyset(after: str | None) -> Keyset | None:
    if after is None:
        return None
    at_text, key = decode_cursor(after, 2)
    at = to_datetime(at_text)
    if at is None:
        raise ApiError("The cursor is not valid for this connection.", INVALID_CURSOR)
    return Keyset(at=at, key=key)


def _page_info(has_next: bool, after: str | None, cursors: list[str]) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def _identifiers(root: Profile, info: Info) -> list[Identifier]:
    rows = info.context.loaders.identifiers_by_profile.load(root.profile_id)
    return then(rows, lambda rows: [Identifier.from_row(r) for r in rows])


async def _records(root: Profile, info: Info) -> list[CustomerRecord]:
    rows = await info.context.loaders.records_by_profile.load(root.profile_id)
    for row in rows:
        info.context.loaders.record_by_key.prime(row.key, row)
    return [CustomerRecord.from_row(r) for r in rows]


async def _computed(root: Profile, info: Info) -> ComputedTraits:
    row = await info.context.loaders.computed_traits_by_profile.load(root.profile_id)
    return ComputedTraits.from_row(row)


async def _interactions(
    root: Profile,
    info: Info,
    first: int,
    after: str | None = None,
    types: list[InteractionType] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> InteractionConnection:
    check_first(first)
    check_list("types", types, limit=len(InteractionType))
    other_than = None
    if types is not None and InteractionType.OTHER in types:
        other_than = tuple(t.value for t in InteractionType if t is not InteractionType.OTHER)
    filter_ = InteractionFilter(
        profile_id=root.profile_id,
        types=tuple(sorted({t.value for t in types})) if types is not None else None,
        other_than=other_than,
        since=since,
        until=until,
    )
    page = await info.context.loaders.interaction_page_by_profile.load(
        InteractionPageKey(filter=filter_, first=first, after=_keyset(after))
    )
    edges = [
        InteractionEdge(cursor=_interaction_cursor(r), node=Interaction.from_row(r))
        for r in page.items
    ]
    return InteractionConnection(
        filter=filter_,
        edges=edges,
        page_info=_page_info(page.has_next, after, [e.cursor for e in edges]),
    )


def _interaction_cursor(row: InteractionRow) -> str:
    return encode_cursor(row.occurred_at.isoformat(), row.id)


def _timeline_node(item: object) -> Interaction | StageChange | MergeEvent | SplitEvent:
    if isinstance(item, InteractionRow):
        return Interaction.from_row(item)
    if isinstance(item, StageChangeRow):
        return StageChange.from_row(item)
    if isinstance(item, MergeEventRow):
        return MergeEvent.from_row(item)
    if isinstance(item, SplitEventRow):
        return SplitEvent.from_row(item)
    raise TypeError(f"not a timeline item: {type(item).__name__}")


def _timeline(
    root: Profile, info: Info, first: int, after: str | None = None
) -> TimelineConnection:
    check_first(first)
    keyset = _keyset(after)
    read = root.timeline_read
    if read is not None and read[0].first == first and read[0].after == keyset:
        return _timeline_connection(after, read[1])  # read with the profile, for this selection
    page = info.context.loaders.timeline_page_by_profile.load(
        TimelinePageKey(profile_id=root.profile_id, first=first, after=keyset)
    )
    return then(page, partial(_timeline_connection, after))


def _timeline_connection(after: str | None, page: Page[TimelineEntry]) -> TimelineConnection:
    edges = [
        TimelineEdge(
            cursor=encode_cursor(entry.at.isoformat(), entry.sort_key),
            node=_timeline_node(entry.item),
        )
        for entry in page.items
    ]
    return TimelineConnection(
        edges=edges, page_info=_page_info(page.has_next, after, [e.cursor for e in edges])
    )


def _deals(root: Profile, info: Info, status: DealStatus | None = None) -> list[Deal]:
    loaders = info.context.loaders

    def deals(rows: list[DealRow]) -> list[Deal]:
        for row in rows:
            if row.complete:  # a row read with less is for this selection only
                loaders.deal_by_id.prime(row.id, row)
        return [Deal.from_row(r) for r in rows if status is None or r.status == status.value]

    if root.deals_read is not None:
        return deals(root.deals_read)
    return then(loaders.deals_by_profile.load(root.profile_id), deals)


async def _accounts(root: Profile, info: Info) -> list[AccountMembership]:
    rows = await info.context.loaders.memberships_by_profile.load(root.profile_id)
    return [AccountMembership.from_row(r) for r in rows]


async def _merge_history(root: Profile, info: Info) -> list[MergeEvent]:
    rows = await info.context.loaders.merge_history_by_profile.load(root.profile_id)
    return [MergeEvent.from_row(r) for r in rows]


async def _explain_link(
    root: Profile, info: Info, record_a: strawberry.ID, record_b: strawberry.ID
) -> list[LinkStep] | None:
    """The chain of shared identifiers joining two records of this profile; null if none."""
    keys = [raw_id_for("CustomerRecord", record_a), raw_id_for("CustomerRecord", record_b)]
    records = await asyncio.gather(*(load_record(info, k) for k in keys))
    if any(r is None or r.row.profile_id != root.profile_id for r in records):
        return None
    steps = await explain_link(
        info.context.driver, info.context.settings.neo4j_database, str(keys[0]), str(keys[1])
    )
    if steps is None:
        return None
    loaders = info.context.loaders
    froms = await loaders.record_by_key.load_many([s.from_record for s in steps])
    tos = await loaders.record_by_key.load_many([s.to_record for s in steps])
    idents = await loaders.identifier_by_key.load_many([s.identifier_key for s in steps])
    out = []
    for step, a, b, ident in zip(steps, froms, tos, idents, strict=True):
        if a is None or b is None:
            return None  # changed since the chain was read
        identifier = ident or IdentifierRow(
            key=step.identifier_key,
            type=step.identifier_type,
            value=step.identifier_value,
            blocked=False,
        )
        out.append(
            LinkStep(
                from_=CustomerRecord.from_row(a),
                identifier=Identifier.from_row(identifier),
                to=CustomerRecord.from_row(b),
            )
        )
    return out


@strawberry.type(description="A person: every source record resolved to them, as one profile.")
class Profile(Node):
    profile_id: strawberry.Private[str]
    display_name: str | None
    email: str | None
    phone: str | None
    company: str | None
    traits: JSON = strawberry.field(
        description="Unified traits: per field, the value the survivorship rule picks."
    )
    created_at: datetime
    updated_at: datetime
    computed: ComputedTraits = strawberry.field(resolver=_computed)
    identifiers: list[Identifier] = strawberry.field(resolver=_identifiers)
    records: list[CustomerRecord] = strawberry.field(
        resolver=_records, description="The source records resolved to this profile."
    )
    interactions: InteractionConnection = strawberry.field(
        resolver=_interactions,
        description="Interactions newest first; `since` is inclusive, `until` exclusive.",
    )
    # The timeline page read with the profile (profile page reads), for this object's selection.
    timeline_read: strawberry.Private[tuple[TimelinePart, Page[TimelineEntry]] | None] = None
    # The deals read with the profile with less than all their parts, for this selection.
    deals_read: strawberry.Private[list[DealRow] | None] = None
    timeline: TimelineConnection = strawberry.field(
        resolver=_timeline,
        description="Interactions, deal stage changes, merges and splits, newest first.",
    )
    deals: list[Deal] = strawberry.field(
        resolver=_deals, description="Deals the profile is a contact on, newest first."
    )
    accounts: list[AccountMembership] = strawberry.field(resolver=_accounts)
    merge_history: list[MergeEvent] = strawberry.field(
        resolver=_merge_history, description="Merges that made this profile, newest first."
    )
    explain_link: list[LinkStep] | None = strawberry.field(
        resolver=_explain_link,
        description=(
            "Why two records of this profile are one person: the shortest chain of shared "
            "identifiers from `recordA` to `recordB`. Null if either is not in this profile."
        ),
    )

    @classmethod
    def from_row(cls, row: ProfileRow) -> Profile:
        return cls(
            id=to_global_id("Profile", row.id),
            profile_id=row.id,
            display_name=row.display_name,
            email=row.email,
            phone=row.phone,
            company=row.company,
            traits=JSON(row.traits),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class ProfileEdge:
    cursor: str
    node: Profile


async def _search_total(root: ProfileConnection, info: Info) -> int:
    return await search_profiles_count(info.context.reader, root.query)


@strawberry.type(description="A page of profiles.")
class ProfileConnection:
    query: strawberry.Private[str]
    edges: list[ProfileEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(resolver=_search_total)

    @strawberry.field
    def nodes(self) -> list[Profile]:
        return [e.node for e in self.edges]


async def load_profile(info: Info, profile_id: str | None) -> Profile | None:
    if profile_id is None:
        return None
    row = await info.context.loaders.profile_by_id.load(profile_id)
    return Profile.from_row(row) if row is not None else None


async def load_record(info: Info, key: str | None) -> CustomerRecord | None:
    if key is None:
        return None
    row = await info.context.loaders.record_by_key.load(key)
    return CustomerRecord.from_row(row) if row is not None else None


async def load_profile_page(info: Info, profile_id: str | None) -> Profile | None:
    """The profile, read in one statement with the identifiers, timeline page and deals its
    selection asks for; these fill the DataLoaders that the child resolvers then read."""
    if profile_id is None:
        return None
    key = _page_key(info, profile_id)
    if key is None:
        return await load_profile(info, profile_id)
    loaders = info.context.loaders
    page = await loaders.profile_page.load(key)
    if page is None:
        return None
    row = page.profile
    loaders.profile_by_id.prime(profile_id, row)
    loaders.profile_by_id.prime(row.id, row)
    if page.identifiers is not None:
        loaders.identifiers_by_profile.prime(row.id, page.identifiers)
    profile = Profile.from_row(row)
    if page.deals is not None:
        if key.deals == ALL_DEAL_PARTS:
            loaders.deals_by_profile.prime(row.id, page.deals)
        else:  # read with less: for this selection only
            profile.deals_read = page.deals
    if page.timeline is not None and key.timeline is not None:
        profile.timeline_read = (key.timeline, page.timeline)
        if key.timeline.complete:  # a page read with less is for this selection only
            timeline_key = TimelinePageKey(
                profile_id=row.id, first=key.timeline.first, after=key.timeline.after
            )
            loaders.timeline_page_by_profile.prime(timeline_key, page.timeline)
    return profile


def _timeline_part(info: Info, first: int, after: str | None) -> TimelinePart | None:
    """The timeline page to read with the profile: only what the timeline's selection can
    show (the interaction keys its field names need, a stage change's deal only for `deal` or
    `durationSeconds`). None for a bad cursor, which the timeline resolver then reports."""
    try:
        keyset = _keyset(after)
    except ApiError:
        return None
    names = names_under(info, "timeline")
    # What a stage change asks for: the fragments of the other kinds of item left out.
    stage_names = names_under(info, "timeline", skip_types=_NOT_STAGE_CHANGES)
    return TimelinePart(
        first=first,
        after=keyset,
        interaction_keys=interaction_keys(names),
        stage_deals=(
            _deal_parts(stage_names, history="durationSeconds" in stage_names)
            if "deal" in stage_names or "durationSeconds" in stage_names
            else None
        ),
    )


# The timeline's kinds of item other than a stage change (the members of `TimelineItem`).
_NOT_STAGE_CHANGES: Final = frozenset({"Interaction", "MergeEvent", "SplitEvent"})


def _deal_parts(names: frozenset[str], history: bool = False) -> DealParts:
    """What a deal read must carry for a selection whose field names are `names`: the ids of its
    owner and account for `owner` or `account`, its stage changes for `stageHistory`."""
    return DealParts(
        links="owner" in names or "account" in names,
        history=history or "stageHistory" in names,
    )


def _page_key(info: Info, profile_id: str) -> ProfilePageKey | None:
    """What of the page to read with the profile; None when the selection asks for none of it."""
    fields = child_fields(info)
    timeline = None
    pages = fields.get("timeline", [])
    # One timeline page only: several (aliases with other arguments) go through their loader.
    if len(pages) == 1:
        first, after = pages[0].get("first"), pages[0].get("after")
        if (
            isinstance(first, int)
            and not isinstance(first, bool)
            and 0 <= first <= MAX_PAGE_SIZE
            and (after is None or isinstance(after, str))
        ):
            timeline = _timeline_part(info, first, after)
    identifiers = "identifiers" in fields
    deals = _deal_parts(names_under(info, "deals")) if "deals" in fields else None
    if not identifiers and deals is None and timeline is None:
        return None
    return ProfilePageKey(
        profile_id=profile_id, identifiers=identifiers, deals=deals, timeline=timeline
    )
