"""The profile page's timeline read leaves out what its selection cannot show: the table that
says which row keys each Interaction field reads must name every field and every key."""

from __future__ import annotations

from graphql import GraphQLObjectType

from customer_graph.graph.reads import (
    INTERACTION_KEYS,
    OPTIONAL_INTERACTION_KEYS,
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
    full = profile_pages_query(None, True, with_key=False)
    assert all(cypher in full for cypher in INTERACTION_KEYS.values())
    assert profile_pages_query(OPTIONAL_INTERACTION_KEYS, True, with_key=False) == full
    bare = profile_pages_query(frozenset(), False, with_key=False)
    short = [k for k in INTERACTION_KEYS if k not in OPTIONAL_INTERACTION_KEYS]
    assert all(INTERACTION_KEYS[k] in bare for k in short)
    assert not any(INTERACTION_KEYS[k] in bare for k in ("body", "properties", "owner"))
    assert "[d IN dealNodes | d {" not in bare and "[d IN dealNodes | d {" in full
    some = profile_pages_query(frozenset({"body", "owner"}), False, with_key=True)
    assert ".body" in some and "owner: head(" in some
    assert ".properties" not in some and "$keyHash" in some
