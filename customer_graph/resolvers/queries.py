"""The root query fields: fetch by global or raw id, by identifier, and full-text search."""

from __future__ import annotations

import asyncio

import strawberry

from customer_graph.graph import reads
from customer_graph.graph.normalize import normalize_identifier
from customer_graph.graph.records import IdentifierIn
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.rows import SearchPageKey
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.errors import INVALID_CURSOR, ApiError
from customer_graph.resolvers.paging import check_first, check_list
from customer_graph.schema.account import Account, load_account
from customer_graph.schema.deal import Deal, load_deal
from customer_graph.schema.interaction import Interaction, load_interaction
from customer_graph.schema.node import (
    Node,
    PageInfo,
    decode_cursor,
    encode_cursor,
    from_global_id,
    raw_id_for,
)
from customer_graph.schema.owner import Owner, load_owner
from customer_graph.schema.profile import (
    CustomerRecord,
    Profile,
    ProfileConnection,
    ProfileEdge,
    load_profile,
    load_profile_page,
    load_record,
)

DEFAULT_SEARCH_PAGE = 20
# Search pages by offset (scores are not stable keys); deep pages cost the index a full ranking.
MAX_SEARCH_OFFSET = 10_000


async def _load_node(info: Info, type_name: str, raw_id: str) -> Node | None:
    loaded: Profile | CustomerRecord | Deal | Account | Interaction | Owner | None
    if type_name == "Profile":
        loaded = await load_profile(info, raw_id)
    elif type_name == "CustomerRecord":
        loaded = await load_record(info, raw_id)
    elif type_name == "Deal":
        loaded = await load_deal(info, raw_id)
    elif type_name == "Account":
        loaded = await load_account(info, raw_id)
    elif type_name == "Interaction":
        loaded = await load_interaction(info, raw_id)
    else:
        loaded = await load_owner(info, raw_id)
    return loaded


async def node(info: Info, id: strawberry.ID) -> Node | None:
    decoded = from_global_id(id)
    if decoded is None:
        return None
    return await _load_node(info, *decoded)


async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
    check_list("ids", ids)
    decoded = [from_global_id(i) for i in ids]
    # Loads are issued together, so each type's loader sends one query for all its ids.
    found = await asyncio.gather(
        *(_load_node(info, *d) if d is not None else _none() for d in decoded)
    )
    return list(found)


async def _none() -> None:
    return None


async def profile(info: Info, id: strawberry.ID) -> Profile | None:
    """A profile by global or raw id; a merged-away id gives the profile it was merged into."""
    raw = raw_id_for("Profile", id)
    return await load_profile_page(info, raw)


async def profile_by_identifier(info: Info, type: str, value: str) -> Profile | None:
    """The profile holding an identifier, the value normalized as ingestion normalizes it."""
    config = resolution_config(info.context.settings)
    ident = normalize_identifier(
        IdentifierIn(type, value),
        default_region=config.default_region,
        blocked_patterns=config.blocked_patterns,
    )
    if ident is None:
        return None
    profile_id = await reads.profile_id_by_identifier(info.context.reader, ident.key)
    return await load_profile_page(info, profile_id)


async def search_profiles(
    info: Info, query: str, first: int | None = DEFAULT_SEARCH_PAGE, after: str | None = None
) -> ProfileConnection:
    """Full-text search over names, emails and companies; best matches first."""
    size = check_first(DEFAULT_SEARCH_PAGE if first is None else first)
    offset = 0
    if after is not None:
        text = decode_cursor(after, 1)[0]
        if not text.isdigit() or int(text) >= MAX_SEARCH_OFFSET:
            raise ApiError("The cursor is not valid for this connection.", INVALID_CURSOR)
        offset = int(text) + 1
    page = await reads.search_profiles(
        info.context.reader, SearchPageKey(query=query, first=size, offset=offset)
    )
    for row in page.items:
        info.context.loaders.profile_by_id.prime(row.id, row)
    edges = [
        ProfileEdge(cursor=encode_cursor(str(offset + i)), node=Profile.from_row(row))
        for i, row in enumerate(page.items)
    ]
    return ProfileConnection(
        query=query,
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


async def deal(info: Info, id: strawberry.ID) -> Deal | None:
    """A deal by global id or by its CRM id."""
    return await load_deal(info, raw_id_for("Deal", id))


async def account(info: Info, id: strawberry.ID) -> Account | None:
    """An account by global id or by its CRM id."""
    return await load_account(info, raw_id_for("Account", id))
