"""Accounts (companies) and memberships: who works where, with which title and roles."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from customer_graph.graph.rows import AccountRow, MemberPageKey, MembershipRow
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.paging import check_first
from customer_graph.schema.node import Node, PageInfo, decode_cursor, encode_cursor, to_global_id
from customer_graph.schema.owner import Owner, load_owner

if TYPE_CHECKING:
    from customer_graph.schema.deal import Deal, DealStatus
    from customer_graph.schema.profile import CustomerRecord, Profile


async def _owner(root: Account, info: Info) -> Owner | None:
    return await load_owner(info, root.owner_id)


async def _deals(
    root: Account,
    info: Info,
    status: Annotated[DealStatus, strawberry.lazy("customer_graph.schema.deal")] | None = None,
) -> list[Annotated[Deal, strawberry.lazy("customer_graph.schema.deal")]]:
    from customer_graph.schema.deal import Deal

    rows = await info.context.loaders.deals_by_account.load(root.account_id)
    return [Deal.from_row(r) for r in rows if status is None or r.status == status.value]


async def _members(
    root: Account, info: Info, first: int, after: str | None = None
) -> AccountMemberConnection:
    check_first(first)
    after_key = decode_cursor(after, 1)[0] if after is not None else None
    page = await info.context.loaders.member_page_by_account.load(
        MemberPageKey(account_id=root.account_id, first=first, after=after_key)
    )
    edges = [
        AccountMemberEdge(cursor=encode_cursor(m.record.key), node=AccountMembership.from_row(m))
        for m in page.items
    ]
    return AccountMemberConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


@strawberry.type(description="A company: the account of CRM data.")
class Account(Node):
    account_id: strawberry.Private[str]
    owner_id: strawberry.Private[str | None]
    name: str | None
    domain: str | None
    owner: Owner | None = strawberry.field(resolver=_owner)
    deals: list[Annotated[Deal, strawberry.lazy("customer_graph.schema.deal")]] = strawberry.field(
        resolver=_deals, description="Deals of the account, newest first."
    )
    members: AccountMemberConnection = strawberry.field(
        resolver=_members, description="People who are members of the account, by record."
    )

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(
            id=to_global_id("Account", row.id),
            account_id=row.id,
            owner_id=row.owner_id,
            name=row.name,
            domain=row.domain,
        )


async def _membership_profile(
    root: AccountMembership, info: Info
) -> Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None:
    from customer_graph.schema.profile import load_profile

    return await load_profile(info, root.row.record.profile_id)


def _membership_record(
    root: AccountMembership,
) -> Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")]:
    from customer_graph.schema.profile import CustomerRecord

    return CustomerRecord.from_row(root.row.record)


@strawberry.type(description="A person's membership of an account, as one source record has it.")
class AccountMembership:
    row: strawberry.Private[MembershipRow]
    account: Account
    title: str | None
    roles: list[str]
    primary: bool
    start_date: datetime | None
    end_date: datetime | None
    record: Annotated[CustomerRecord, strawberry.lazy("customer_graph.schema.profile")] = (
        strawberry.field(resolver=_membership_record)
    )
    profile: Annotated[Profile, strawberry.lazy("customer_graph.schema.profile")] | None = (
        strawberry.field(resolver=_membership_profile)
    )

    @classmethod
    def from_row(cls, row: MembershipRow) -> AccountMembership:
        return cls(
            row=row,
            account=Account.from_row(row.account),
            title=row.title,
            roles=list(row.roles),
            primary=row.primary,
            start_date=row.start_date,
            end_date=row.end_date,
        )


@strawberry.type
class AccountMemberEdge:
    cursor: str
    node: AccountMembership


@strawberry.type
class AccountMemberConnection:
    edges: list[AccountMemberEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[AccountMembership]:
        return [e.node for e in self.edges]


async def load_account(info: Info, account_id: str | None) -> Account | None:
    if account_id is None:
        return None
    row = await info.context.loaders.account_by_id.load(account_id)
    return Account.from_row(row) if row is not None else None
