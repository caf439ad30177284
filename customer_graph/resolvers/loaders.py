"""Per-request DataLoaders, named for what they load; each batch is one query (graph/reads.py).

A request that returns 5 or 500 objects runs the same number of Cypher round trips: every field
that needs data asks its loader, and the loader sends all the keys asked in one event-loop tick
as one `UNWIND $ids` query, answering in key order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property, partial
from typing import TypeVar

from strawberry.dataloader import DataLoader

from customer_graph.graph import reads
from customer_graph.graph.reads import GraphReader, ProfilePage, ProfilePageKey
from customer_graph.graph.rows import (
    AccountRow,
    ComputedRow,
    DealContactRow,
    DealRow,
    IdentifierRow,
    InteractionFilter,
    InteractionPageKey,
    InteractionRow,
    MemberPageKey,
    MembershipRow,
    MergeEventRow,
    OwnerRow,
    Page,
    ProfileRow,
    RecordRow,
    StageChangeRow,
    TimelineEntry,
    TimelinePageKey,
)

K = TypeVar("K")
V = TypeVar("V")


def _batch(
    reader: GraphReader, read: Callable[[GraphReader, Sequence[K]], Awaitable[list[V]]]
) -> Callable[[list[K]], Awaitable[list[V]]]:
    return partial(read, reader)


class ProfileByIdLoader(DataLoader[str, ProfileRow | None]):
    """Current profile by id; a merged-away id gives the profile it was merged into."""

    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.profiles_by_id))


class ProfilePageLoader(DataLoader[ProfilePageKey, ProfilePage | None]):
    """A profile with the parts of its page a selection asks for, in one statement."""

    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.profile_pages))


class IdentifiersByProfileLoader(DataLoader[str, list[IdentifierRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.identifiers_by_profile))


class IdentifierByKeyLoader(DataLoader[str, IdentifierRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.identifiers_by_key))


class RecordsByProfileLoader(DataLoader[str, list[RecordRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.records_by_profile))


class RecordByKeyLoader(DataLoader[str, RecordRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.records_by_key))


class ComputedTraitsByProfileLoader(DataLoader[str, ComputedRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.computed_by_profile))


class MergeHistoryByProfileLoader(DataLoader[str, list[MergeEventRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.merge_history_by_profile))


class InteractionPageByProfileLoader(DataLoader[InteractionPageKey, Page[InteractionRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.interactions_by_profile))


class InteractionCountByProfileLoader(DataLoader[InteractionFilter, int]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.interaction_counts))


class InteractionByIdLoader(DataLoader[str, InteractionRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.interactions_by_id))


class TimelinePageByProfileLoader(DataLoader[TimelinePageKey, Page[TimelineEntry]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.timeline_by_profile))


class DealByIdLoader(DataLoader[str, DealRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.deals_by_id))


class DealsByProfileLoader(DataLoader[str, list[DealRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.deals_by_profile))


class DealsByAccountLoader(DataLoader[str, list[DealRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.deals_by_account))


class StageHistoryByDealLoader(DataLoader[str, list[StageChangeRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.stage_history_by_deal))


class ContactsByDealLoader(DataLoader[str, list[DealContactRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.contacts_by_deal))


class AccountByIdLoader(DataLoader[str, AccountRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.accounts_by_id))


class MembershipsByProfileLoader(DataLoader[str, list[MembershipRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.memberships_by_profile))


class MemberPageByAccountLoader(DataLoader[MemberPageKey, Page[MembershipRow]]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.members_by_account))


class OwnerByIdLoader(DataLoader[str, OwnerRow | None]):
    def __init__(self, reader: GraphReader) -> None:
        super().__init__(load_fn=_batch(reader, reads.owners_by_id))


class Loaders:
    """The loaders of one request; build a new set to read fresh data (subscription events).

    Each loader is made when first asked for: a request uses a few of them.
    """

    def __init__(self, reader: GraphReader) -> None:
        self.reader = reader

    @cached_property
    def profile_by_id(self) -> ProfileByIdLoader:
        return ProfileByIdLoader(self.reader)

    @cached_property
    def profile_page(self) -> ProfilePageLoader:
        return ProfilePageLoader(self.reader)

    @cached_property
    def identifiers_by_profile(self) -> IdentifiersByProfileLoader:
        return IdentifiersByProfileLoader(self.reader)

    @cached_property
    def identifier_by_key(self) -> IdentifierByKeyLoader:
        return IdentifierByKeyLoader(self.reader)

    @cached_property
    def records_by_profile(self) -> RecordsByProfileLoader:
        return RecordsByProfileLoader(self.reader)

    @cached_property
    def record_by_key(self) -> RecordByKeyLoader:
        return RecordByKeyLoader(self.reader)

    @cached_property
    def computed_traits_by_profile(self) -> ComputedTraitsByProfileLoader:
        return ComputedTraitsByProfileLoader(self.reader)

    @cached_property
    def merge_history_by_profile(self) -> MergeHistoryByProfileLoader:
        return MergeHistoryByProfileLoader(self.reader)

    @cached_property
    def interaction_page_by_profile(self) -> InteractionPageByProfileLoader:
        return InteractionPageByProfileLoader(self.reader)

    @cached_property
    def interaction_count_by_profile(self) -> InteractionCountByProfileLoader:
        return InteractionCountByProfileLoader(self.reader)

    @cached_property
    def interaction_by_id(self) -> InteractionByIdLoader:
        return InteractionByIdLoader(self.reader)

    @cached_property
    def timeline_page_by_profile(self) -> TimelinePageByProfileLoader:
        return TimelinePageByProfileLoader(self.reader)

    @cached_property
    def deal_by_id(self) -> DealByIdLoader:
        return DealByIdLoader(self.reader)

    @cached_property
    def deals_by_profile(self) -> DealsByProfileLoader:
        return DealsByProfileLoader(self.reader)

    @cached_property
    def deals_by_account(self) -> DealsByAccountLoader:
        return DealsByAccountLoader(self.reader)

    @cached_property
    def stage_history_by_deal(self) -> StageHistoryByDealLoader:
        return StageHistoryByDealLoader(self.reader)

    @cached_property
    def contacts_by_deal(self) -> ContactsByDealLoader:
        return ContactsByDealLoader(self.reader)

    @cached_property
    def account_by_id(self) -> AccountByIdLoader:
        return AccountByIdLoader(self.reader)

    @cached_property
    def memberships_by_profile(self) -> MembershipsByProfileLoader:
        return MembershipsByProfileLoader(self.reader)

    @cached_property
    def member_page_by_account(self) -> MemberPageByAccountLoader:
        return MemberPageByAccountLoader(self.reader)

    @cached_property
    def owner_by_id(self) -> OwnerByIdLoader:
        return OwnerByIdLoader(self.reader)
