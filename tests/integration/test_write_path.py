"""The batched write path against the real Neo4j: records, identifiers, traits, activity."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.graph.messages import write_deduplicated
from customer_graph.graph.privacy import suppression_lookups
from customer_graph.graph.profile_refresh import refresh_profiles
from customer_graph.graph.records import (
    AccountIn,
    CustomerIn,
    DealContactIn,
    DealIn,
    IdentifierIn,
    InteractionIn,
    MembershipIn,
    OwnerIn,
    StageChangeIn,
    WriteBatch,
    WriteResult,
)
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.writes import upsert_customer, write_batch, write_batch_tx
from customer_graph.ingestion.workers import write_path
from customer_graph.settings import Settings
from tests.helpers import unique

CONFIG = ResolutionConfig()


def unique_phone() -> tuple[str, str]:
    """A valid US number (national format, E.164) no other test uses."""
    while True:
        digits = f"415{uuid.uuid4().int % 10**7:07d}"
        e164 = "+1" + digits
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", e164


T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


async def one(driver: AsyncDriver, settings: Settings, query: str, **params: Any) -> Any:
    records, _, _ = await driver.execute_query(query, params, database_=settings.neo4j_database)
    assert len(records) == 1, records
    return records[0]


PROFILE = """
MATCH (:Customer {key: $key})-[:RESOLVES_TO]->(p:Profile)
RETURN p.id AS id, p.traits AS traits, p.displayName AS displayName, p.email AS email,
       p.phone AS phone, p.company AS company
"""


async def test_identifiers_accumulate_and_traits_merge(
    driver: AsyncDriver, settings: Settings
) -> None:
    src, tok = unique("wp"), unique("tok")
    key = f"{src}:1"
    national, e164 = unique_phone()
    await upsert_customer(
        driver,
        settings.neo4j_database,
        CustomerIn(
            src,
            "1",
            {"first_name": "Jane", "plan": "basic", "email": "not an email"},
            (IdentifierIn("email", "not an email"), IdentifierIn("user_id", f"u-{tok}")),
            seen_at=T0,
        ),
        CONFIG,
    )
    await upsert_customer(
        driver,
        settings.neo4j_database,
        CustomerIn(
            src,
            "1",
            {"last_name": "Doe", "plan": "pro", "company": {"name": "Acme"}, "first_name": None},
            (IdentifierIn("phone", national), IdentifierIn("email", f"J.{tok}@EX.com")),
            seen_at=T0 + timedelta(hours=1),
        ),
        CONFIG,
    )
    row = await one(
        driver,
        settings,
        """
        MATCH (c:Customer {key: $key})
        RETURN c.traits AS traits, c.source AS source, c.sourceId AS sourceId,
               c.seenAt AS seenAt,
               [(c)-[h:HAS_IDENTIFIER]->(i:Identifier) | i.key] AS identifiers
        """,
        key=key,
    )
    assert json.loads(row["traits"]) == {
        "first_name": "Jane",
        "last_name": "Doe",
        "plan": "pro",
        "company": {"name": "Acme"},
        "email": "not an email",  # kept as a trait, never an identifier
    }
    assert (row["source"], row["sourceId"]) == (src, "1")
    assert row["seenAt"].to_native() == T0 + timedelta(hours=1)
    assert sorted(row["identifiers"]) == sorted(
        [f"user_id:u-{tok}", f"phone:{e164}", f"email:j.{tok}@ex.com"]
    )
    profile = await one(driver, settings, PROFILE, key=key)
    assert profile["displayName"] == "Jane Doe"
    assert profile["email"] == f"j.{tok}@ex.com"  # the trait does not parse; the identifier does
    assert profile["phone"] == e164
    assert profile["company"] == "Acme"
    assert json.loads(profile["traits"])["plan"] == "pro"


async def test_unified_traits_follow_the_most_recent_record(
    driver: AsyncDriver, settings: Settings
) -> None:
    src, tok = unique("wp"), unique("tok")
    shared = IdentifierIn("email", f"same.{tok}@example.com")
    batch = WriteBatch(
        customers=(
            CustomerIn(f"{src}-crm", "c1", {"title": "CTO", "plan": "old"}, (shared,), T0),
            CustomerIn(f"{src}-web", "w1", {"plan": "new"}, (shared,), T0 + timedelta(minutes=5)),
        )
    )
    result = await write_batch(driver, settings.neo4j_database, batch, CONFIG)
    assert result.profiles_created == 1
    assert len(set(result.record_profiles.values())) == 1
    profile = await one(driver, settings, PROFILE, key=f"{src}-crm:c1")
    assert json.loads(profile["traits"]) == {"title": "CTO", "plan": "new"}
    # A late, older event does not overwrite the newer value.
    await write_batch(
        driver,
        settings.neo4j_database,
        WriteBatch(customers=(CustomerIn(f"{src}-web", "w1", {"plan": "older"}, (), T0),)),
        CONFIG,
    )
    profile = await one(driver, settings, PROFILE, key=f"{src}-crm:c1")
    assert json.loads(profile["traits"])["plan"] == "new"


async def test_a_profile_is_read_again_only_when_a_write_can_change_its_fields(
    driver: AsyncDriver, settings: Settings
) -> None:
    """Records that join a profile or gain identifiers change its unified fields only when they
    bring traits or matched emails and phones, and only then is it recomputed; after every kind
    of write, recomputing the profile from all its records finds nothing to change."""
    src = unique("wpf")
    national, e164 = unique_phone()
    email = f"ada.{src}@example.com"
    user = IdentifierIn("user_id", f"u-{src}")
    session, later_session = (IdentifierIn("anonymous_id", f"{n}-{src}") for n in ("a1", "a2"))
    steps = [
        # A known user, with a name and no email.
        CustomerIn(src, "u1", {"first_name": "Ada"}, (user, session)),
        # An anonymous session of hers: a record that joins with nothing a profile shows.
        CustomerIn(src, "a1", {}, (session,)),
        # A record that joins with a phone and no traits: the profile's phone comes from it.
        CustomerIn(src, "c1", {}, (user, IdentifierIn("phone", national))),
        # A record that joins with traits.
        CustomerIn(src, "c2", {"company": "Analytical Engines"}, (user,)),
        # Her record gains an email (a matched contact, no trait), then a new session id.
        CustomerIn(src, "u1", {}, (user, IdentifierIn("email", email))),
        CustomerIn(src, "u1", {}, (user, later_session)),
    ]
    profiles = set()
    for n, customer in enumerate(steps):
        result = await write_batch(
            driver, settings.neo4j_database, WriteBatch(customers=(customer,)), CONFIG
        )
        profile_id = result.record_profiles[customer.key]
        profiles.add(profile_id)
        async with driver.session(database=settings.neo4j_database) as db:
            tx = await db.begin_transaction()
            stale = await refresh_profiles(tx, [profile_id], CONFIG)  # type: ignore[arg-type]
            await tx.rollback()
        assert stale == set(), f"step {n} left the profile's fields stale"
    assert len(profiles) == 1
    profile = await one(driver, settings, PROFILE, key=f"{src}:u1")
    assert (profile["displayName"], profile["email"], profile["phone"], profile["company"]) == (
        "Ada",
        email,
        e164,
        "Analytical Engines",
    )


async def test_activity_is_written_and_replays_are_idempotent(
    driver: AsyncDriver, settings: Settings
) -> None:
    src = unique("wp")
    deal, account, owner = f"{src}-d", f"{src}-a", f"{src}-o"
    batch = WriteBatch(
        customers=(CustomerIn(src, "c1", {"name": "Pat"}, (), T0),),
        owners=(OwnerIn(owner, "Rep One", "rep@example.com"),),
        accounts=(AccountIn(account, "Acme", "acme.example", owner, {"tier": "gold"}, "crm"),),
        deals=(
            DealIn(
                deal,
                "Big deal",
                1200.0,
                "EUR",
                "sales",
                "proposal",
                "open",
                T0,
                None,
                owner,
                account,
                (DealContactIn(src, "c1", "champion"), DealContactIn(src, "c2", None)),
                "crm",
            ),
        ),
        stage_changes=(
            StageChangeIn(deal, "qualified", T0 + timedelta(days=1), "new"),
            StageChangeIn(deal, "proposal", T0 + timedelta(days=3), "qualified"),
        ),
        memberships=(MembershipIn(src, "c1", account, "CTO", ("buyer", "tech"), True, T0),),
        interactions=(
            InteractionIn(
                f"{src}-call",
                src,
                "c1",
                "call",
                T0 + timedelta(days=2),
                subject="Intro",
                direction="outbound",
                duration_seconds=300,
                properties={"outcome": "good"},
                owner_id=owner,
                deal_id=deal,
                account_id=account,
            ),
        ),
    )
    first = await write_batch(driver, settings.neo4j_database, batch, CONFIG)
    # c2 is referred to by the deal only: it exists, with a profile of its own.
    assert set(first.record_profiles) == {f"{src}:c1", f"{src}:c2"}
    assert first.profiles_created == 2

    snapshot = """
    MATCH (d:Deal {id: $deal})
    RETURN d.name AS name, d.amount AS amount, d.stage AS stage, d.status AS status,
           [(d)-[:HAD_STAGE_CHANGE]->(s) | [s.fromStage, s.toStage, s.changedAt]] AS changes,
           [(c:Customer)-[r:CONTACT_ON]->(d) | [c.key, r.role]] AS contacts,
           [(o:Owner)-[:OWNS]->(d) | o.name] AS owners,
           [(d)-[:FOR_ACCOUNT]->(a) | [a.name, a.domain, a.traits]] AS accounts,
           [(c:Customer)-[m:MEMBER_OF]->(:Account {id: $account}) |
              [c.key, m.title, m.roles, m.primary]] AS members,
           [(c:Customer)-[:HAD]->(n:Interaction {id: $call}) |
              [c.key, n.type, n.subject, n.durationSeconds, n.properties,
               [(n)-[:ABOUT_DEAL]->(x) | x.id], [(n)-[:WITH_ACCOUNT]->(x) | x.id],
               [(o:Owner)-[:OWNS]->(n) | o.id]]] AS interactions
    """
    params = {"deal": deal, "account": account, "call": f"{src}-call"}
    row = dict(await one(driver, settings, snapshot, **params))
    assert row["name"] == "Big deal" and row["amount"] == 1200.0 and row["status"] == "open"
    assert row["stage"] == "proposal"
    assert sorted((c[0], c[1]) for c in row["changes"]) == [
        ("new", "qualified"),
        ("qualified", "proposal"),
    ]
    assert sorted(row["contacts"], key=str) == sorted(
        [[f"{src}:c1", "champion"], [f"{src}:c2", None]], key=str
    )
    assert row["owners"] == ["Rep One"]
    assert row["accounts"] == [["Acme", "acme.example", '{"tier": "gold"}']]
    assert row["members"] == [[f"{src}:c1", "CTO", ["buyer", "tech"], True]]
    assert row["interactions"] == [
        [f"{src}:c1", "call", "Intro", 300, '{"outcome":"good"}', [deal], [account], [owner]]
    ]

    replay = await write_batch(driver, settings.neo4j_database, batch, CONFIG)
    assert replay.profiles_created == 0 and replay.merges == []
    assert replay.record_profiles == first.record_profiles
    assert dict(await one(driver, settings, snapshot, **params)) == row

    # A partial update keeps the fields it does not carry; a new owner replaces the old one.
    update = WriteBatch(
        deals=(DealIn(deal, status="won", owner_id=f"{owner}-2"),),
        stage_changes=(StageChangeIn(deal, "closed_won", T0 + timedelta(days=9), "proposal"),),
    )
    await write_batch(driver, settings.neo4j_database, update, CONFIG)
    row = dict(await one(driver, settings, snapshot, **params))
    assert (row["name"], row["status"], row["stage"]) == ("Big deal", "won", "closed_won")
    assert row["owners"] == [None]  # the new owner exists by id only


async def test_write_batch_tx_runs_in_the_callers_transaction(
    driver: AsyncDriver, settings: Settings
) -> None:
    src, tok = unique("wp"), unique("tok")
    batch = WriteBatch(
        customers=(CustomerIn(src, "1", {}, (IdentifierIn("user_id", f"u-{tok}"),)),)
    )

    async def work(tx: AsyncManagedTransaction) -> WriteResult:
        await tx.run("MERGE (:Message {id: $id})", id=f"{src}-msg")
        return await write_batch_tx(tx, batch, CONFIG)

    async with driver.session(database=settings.neo4j_database) as session:
        result = await session.execute_write(work)
    assert result.customers_written == 1
    row = await one(
        driver,
        settings,
        "MATCH (m:Message {id: $id}), (c:Customer {key: $key})-[:RESOLVES_TO]->(p) "
        "RETURN p.id AS id",
        id=f"{src}-msg",
        key=f"{src}:1",
    )
    assert row["id"] == result.record_profiles[f"{src}:1"]


async def test_limit_conflict_keeps_user_ids_apart(driver: AsyncDriver, settings: Settings) -> None:
    src, tok = unique("wp"), unique("tok")
    mail = IdentifierIn("email", f"shared.{tok}@example.com")
    first = await write_batch(
        driver,
        settings.neo4j_database,
        WriteBatch(
            customers=(CustomerIn(src, "1", {}, (IdentifierIn("user_id", "A" + tok), mail)),)
        ),
        CONFIG,
    )
    second = await write_batch(
        driver,
        settings.neo4j_database,
        WriteBatch(
            customers=(CustomerIn(src, "2", {}, (IdentifierIn("user_id", "B" + tok), mail)),)
        ),
        CONFIG,
    )
    assert second.conflicts == 1
    assert second.record_profiles[f"{src}:2"] != first.record_profiles[f"{src}:1"]
    row = await one(
        driver,
        settings,
        "MATCH (:Customer {key: $key})-[h:HAS_IDENTIFIER]->(i:Identifier {type: 'email'}) "
        "RETURN h.matched AS matched",
        key=f"{src}:2",
    )
    assert row["matched"] is False
    # With limits off the same write joins them.
    third = await write_batch(
        driver,
        settings.neo4j_database,
        WriteBatch(
            customers=(CustomerIn(src, "3", {}, (IdentifierIn("user_id", "C" + tok), mail)),)
        ),
        ResolutionConfig(limits_enabled=False),
    )
    assert third.conflicts == 0
    assert third.record_profiles[f"{src}:3"] == first.record_profiles[f"{src}:1"]


async def test_the_driver_logs_a_batchs_rows_by_size(
    driver: AsyncDriver, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The driver formats each statement's parameters for its debug log even with that log off;
    the write path's parameters show there by their size, not their values."""
    src = unique("quiet")
    marker = unique("marker")
    batch = WriteBatch(
        customers=(
            CustomerIn(src, "c1", {"plan": marker}, (IdentifierIn("user_id", f"u-{src}"),), T0),
        ),
        interactions=(
            InteractionIn(
                f"{src}-e1", src, "c1", "track", T0, name=marker, properties={"k": marker}
            ),
        ),
    )
    caplog.set_level(logging.DEBUG, logger="neo4j")
    units = [(f"{src}:m1", batch)]
    done = await write_deduplicated(
        driver,
        settings.neo4j_database,
        units,
        write_path(settings),
        lambda b: suppression_lookups(settings, b),
    )
    assert not done.duplicates
    runs = [r.getMessage() for r in caplog.records if "C: RUN" in r.getMessage()]
    assert len(runs) >= 4  # claim and screen, records, decisions, interactions
    assert all(marker not in line for line in runs)
    # Each statement's parameters travel in one map, shown by its number of entries.
    assert all(re.search(r"\{'batch': <\d+ entries>\}", line) for line in runs)
    stored = await one(
        driver,
        settings,
        "MATCH (c:Customer {key: $key})-[:HAD]->(x:Interaction) RETURN c.traits AS t, x.name AS n",
        key=f"{src}:c1",
    )
    assert json.loads(stored["t"]) == {"plan": marker} and stored["n"] == marker
