"""Constraints and indexes of the graph model, created idempotently at start-up."""

from __future__ import annotations

from typing import Final

from neo4j import AsyncDriver, RoutingControl

# (label, key property): a uniqueness constraint each. Labels come only from this list.
UNIQUE_KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("Customer", "key"),
    ("Identifier", "key"),
    ("Profile", "id"),
    ("Interaction", "id"),
    ("Deal", "id"),
    ("StageChange", "id"),
    ("Account", "id"),
    ("Owner", "id"),
    ("MergeEvent", "id"),
    ("SplitEvent", "id"),
    ("Message", "id"),
    ("DeadLetter", "id"),
    ("ApiKey", "hash"),
    ("AuditEntry", "id"),
    ("Suppression", "hash"),
)

# (name, label, property): range indexes for lookups and ordering.
RANGE_INDEXES: Final[tuple[tuple[str, str, str], ...]] = (
    ("interaction_occurred_at", "Interaction", "occurredAt"),
    ("stage_change_changed_at", "StageChange", "changedAt"),
    ("merge_event_at", "MergeEvent", "at"),
    ("split_event_at", "SplitEvent", "at"),
)

# Indexes on properties with a handful of values (an identifier's type, a deal's status), which
# earlier versions created and start-up drops. Every read and write is anchored on a keyed node
# and expands from it; with such an index the planner may instead seek every node of that type
# in the graph and join (`(p)<-...-(i:Identifier) WHERE i.type IN ['email', 'phone']` seeking
# all emails and phones), which made each write's profile refresh grow with the graph.
RETIRED_INDEXES: Final[tuple[str, ...]] = (
    "customer_source",
    "identifier_type",
    "interaction_type",
    "deal_stage",
    "deal_status",
)

# Full-text index used by searchProfiles. It is eventually consistent: Neo4j applies a
# transaction's changes to it in the background, shortly after the commit, instead of inside the
# commit. Every write refreshes a profile's displayName/email/company, and updating the Lucene
# index synchronously was over a third of Neo4j's CPU on identify events (1,000 -> 1,550
# events/s without it); search results lag a write by well under a second instead.
FULLTEXT_INDEXES: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    ("profile_search", "Profile", ("displayName", "email", "company")),
)
EVENTUALLY_CONSISTENT: Final = "fulltext.eventually_consistent"


def constraint_name(label: str, key: str) -> str:
    return f"{label.lower()}_{key.lower()}_unique"


def _statements() -> list[str]:
    statements = [
        f"CREATE CONSTRAINT {constraint_name(label, key)} IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
        for label, key in UNIQUE_KEYS
    ]
    statements += [
        f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
        for name, label, prop in RANGE_INDEXES
    ]
    statements += [
        f"CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) ON EACH "
        + "["
        + ", ".join(f"n.{p}" for p in props)
        + "]"
        + f" OPTIONS {{indexConfig: {{`{EVENTUALLY_CONSISTENT}`: true}}}}"
        for name, label, props in FULLTEXT_INDEXES
    ]
    statements += [f"DROP INDEX {name} IF EXISTS" for name in RETIRED_INDEXES]
    return statements


SHOW_FULLTEXT = "SHOW FULLTEXT INDEXES YIELD name, options RETURN name, options"


async def _drop_synchronous_fulltext(driver: AsyncDriver, database: str) -> None:
    """Drop our full-text indexes that an earlier version created synchronous; start-up then
    creates them again, eventually consistent (searches fail until it has)."""
    records, _, _ = await driver.execute_query(
        SHOW_FULLTEXT, database_=database, routing_=RoutingControl.READ
    )
    present = {record["name"]: record["options"] or {} for record in records}
    for name, _, _ in FULLTEXT_INDEXES:
        config = present.get(name, {}).get("indexConfig") or {}
        if name in present and config.get(EVENTUALLY_CONSISTENT) is not True:
            await driver.execute_query(f"DROP INDEX {name} IF EXISTS", database_=database)


async def ensure_schema(driver: AsyncDriver, database: str) -> None:
    """Create every constraint and index that is missing, then wait for indexes to come online."""
    await _drop_synchronous_fulltext(driver, database)
    for statement in _statements():
        await driver.execute_query(statement, database_=database)
    await driver.execute_query("CALL db.awaitIndexes(300)", database_=database)


async def await_search_index(driver: AsyncDriver, database: str) -> None:
    """Wait until every committed write is visible to searchProfiles (tests and tools use it)."""
    await driver.execute_query(
        "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()", database_=database
    )


SHOW_CONSTRAINTS = "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names"


async def missing_constraints(driver: AsyncDriver, database: str) -> list[str]:
    """Names of the expected constraints that the database does not have."""
    records, _, _ = await driver.execute_query(
        SHOW_CONSTRAINTS, database_=database, routing_=RoutingControl.READ
    )
    present = set(records[0]["names"])
    expected = [constraint_name(label, key) for label, key in UNIQUE_KEYS]
    return [name for name in expected if name not in present]
