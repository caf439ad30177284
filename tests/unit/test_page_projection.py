"""The profile page's timeline read leaves out what its selection cannot show: the table that
says which row keys each Interaction field reads must name every field and every key."""

from __future__ import annotations

from graphql import GraphQLObjectType

from customer_graph.graph.reads import (
    ALL_DEAL_PARTS,
    INTERACTION_KEYS,
    NO_DEAL_PARTS,
    OPTIONAL_INTERACTION_KEYS,
    DealParts,
    profile_pages_query,
)
from customer_graph.schema.interaction import ALWAYS_READ, FIELD_KEYS, interaction_keys
from customer_graph.schema.root import schema


def test_every_interaction_field_names_the_keys_it_reads() -> None:
    interaction = schema._schema.get_type("Interaction")
    assert isinstance(interaction, GraphQLObjectType)
    fields = set(interaction.fields)
    # A new field of Interaction must say what it reads, or a trimmed read would answer null.
    assert fields == set(FIELD_KEYS) | ALWAYS_READ
    needed = {key for keys in FIELD_KEYS.values() for key in keys}
    assert needed == set(INTERACTION_KEYS)


def test_selection_names_choose_the_keys() -> None:
    # Short keys are always read; only the optional ones follow the selection.
    assert interaction_keys({"id", "subject", "__typename", "cursor"}) == frozenset()
    assert interaction_keys({"record", "profile", "deal"}) == {"recordKey", "dealId"}
    assert interaction_keys({"body", "owner", "name"}) == {"body", "owner"}
    assert interaction_keys(FIELD_KEYS) == OPTIONAL_INTERACTION_KEYS
    assert set(INTERACTION_KEYS) > OPTIONAL_INTERACTION_KEYS


def test_queries_by_projection() -> None:
    full = profile_pages_query(None, ALL_DEAL_PARTS, with_key=False)
    assert all(cypher in full for cypher in INTERACTION_KEYS.values())
    assert profile_pages_query(OPTIONAL_INTERACTION_KEYS, ALL_DEAL_PARTS, with_key=False) == full
    bare = profile_pages_query(frozenset(), None, with_key=False)
    short = [k for k in INTERACTION_KEYS if k not in OPTIONAL_INTERACTION_KEYS]
    assert all(INTERACTION_KEYS[k] in bare for k in short)
    assert not any(INTERACTION_KEYS[k] in bare for k in ("body", "properties", "owner"))
    assert "[d IN dealNodes | d {" not in bare and "[d IN dealNodes | d {" in full
    some = profile_pages_query(frozenset({"body", "owner"}), None, with_key=True)
    assert ".body" in some and "owner: head(" in some
    assert ".properties" not in some and "$keyHash" in some


def test_deals_are_read_with_the_parts_asked_for() -> None:
    # Stage changes' deals and the profile's deals each carry only the parts named.
    full = profile_pages_query(None, ALL_DEAL_PARTS, with_key=False)
    assert full.count("dealOwner.id") == 2 and full.count("history:") == 2
    names = profile_pages_query(None, NO_DEAL_PARTS, with_key=False, deals=NO_DEAL_PARTS)
    assert "dealOwner" not in names and "dealAccount" not in names and "history:" not in names
    assert "[d IN dealNodes | d {.id, .name" in names
    history = DealParts(links=False, history=True)
    page = profile_pages_query(None, NO_DEAL_PARTS, with_key=False, deals=history)
    assert "dealOwner" not in page and page.count("history:") == 1
    links = profile_pages_query(None, DealParts(links=True, history=False), with_key=False)
    assert links.count("dealOwner.id") == 2 and links.count("dealAccount.id") == 2
    assert links.count("history:") == 1  # the profile's deals: all their parts
