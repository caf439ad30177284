"""Identity administration against the real Neo4j: block (split), unmerge, delete, explain,
history, lookups and the super-connector report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from neo4j import AsyncDriver

from customer_graph.graph.identity import (
    block_identifier,
    delete_record,
    explain_link,
    merge_history,
    profile_id_by_identifier,
    profile_id_of_record,
    profile_ids_of_records,
    resolve_profile_id,
    split_history,
    super_connectors,
    unmerge_record,
)
from customer_graph.graph.records import CustomerIn, IdentifierIn, InteractionIn, WriteBatch
from customer_graph.graph.resolution import ResolutionConfig
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings
from tests.helpers import unique

CONFIG = ResolutionConfig()
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def email(name: str, tok: str) -> IdentifierIn:
    return IdentifierIn("email", f"{name}.{tok}@example.com")


async def write(driver: AsyncDriver, settings: Settings, *customers: CustomerIn) -> dict[str, str]:
    result = await write_batch(
        driver, settings.neo4j_database, WriteBatch(customers=customers), CONFIG
    )
    return result.record_profiles


async def test_blocking_the_joining_identifier_splits_the_profile(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    src, tok = unique("blk"), unique("tok")
    shared = IdentifierIn("phone_hash", f"family-{tok}")
    # Two groups, each held together by its own email, joined only by a shared value.
    await write(driver, settings, CustomerIn(src, "a1", {}, (email("a", tok), shared), T0))
    await write(driver, settings, CustomerIn(src, "a2", {}, (email("a", tok),), T0))
    await write(driver, settings, CustomerIn(src, "b1", {}, (email("b", tok),), T0))
    joined = await write(driver, settings, CustomerIn(src, "b2", {}, (email("b", tok), shared), T0))
    keys = [f"{src}:{k}" for k in ("a1", "a2", "b1", "b2")]
    before = await profile_ids_of_records(driver, db, keys)
    assert len(set(before.values())) == 1
    profile = joined[f"{src}:b2"]

    change = await block_identifier(
        driver, db, "phone_hash", f" family-{tok} ", CONFIG, reason="shared family phone"
    )

    after = await profile_ids_of_records(driver, db, keys)
    assert after[keys[0]] == after[keys[1]] != after[keys[2]] == after[keys[3]]
    # The group with the oldest record (a1) keeps the profile id.
    assert after[keys[0]] == profile
    assert change.identifier_key == f"phone_hash:family-{tok}"
    assert len(change.splits) == 1
    split = change.splits[0]
    assert split.profile_id == profile
    assert split.new_profile_ids == (after[keys[2]],)
    assert split.reason == "shared family phone"
    assert sorted(change.profile_ids) == sorted({after[keys[0]], after[keys[2]]})
    history = await split_history(driver, db, after[keys[2]])
    assert [(h.profile_id, h.identifier_key, h.reason) for h in history] == [
        (profile, f"phone_hash:family-{tok}", "shared family phone")
    ]

    # The block is remembered: a later record with the value links nothing.
    later = await write(driver, settings, CustomerIn(src, "c1", {}, (shared,), T0))
    assert later[f"{src}:c1"] not in set(after.values())
    # Blocking again changes nothing.
    again = await block_identifier(driver, db, "phone_hash", f"family-{tok}", CONFIG)
    assert again.splits == []


async def test_blocking_an_invalid_value_does_nothing(
    driver: AsyncDriver, settings: Settings
) -> None:
    change = await block_identifier(driver, settings.neo4j_database, "email", "nope", CONFIG)
    assert change.identifier_key is None and change.splits == []


async def test_explain_returns_the_chain_through_intermediate_records(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    src, tok = unique("exp"), unique("tok")
    # a -e1- b -e2- c -u3- d, plus a short-cut-free decoy e joined to d by another id.
    await write(
        driver,
        settings,
        CustomerIn(src, "a", {}, (email("e1", tok),)),
        CustomerIn(src, "b", {}, (email("e1", tok), email("e2", tok))),
        CustomerIn(src, "c", {}, (email("e2", tok), IdentifierIn("user_id", f"u3-{tok}"))),
        CustomerIn(src, "d", {}, (IdentifierIn("user_id", f"u3-{tok}"),)),
    )
    await write(driver, settings, CustomerIn(src, "x", {}, (email("other", tok),)))
    steps = await explain_link(driver, db, f"{src}:a", f"{src}:d")
    assert steps is not None
    assert [(s.from_record, s.identifier_key, s.to_record) for s in steps] == [
        (f"{src}:a", f"email:e1.{tok}@example.com", f"{src}:b"),
        (f"{src}:b", f"email:e2.{tok}@example.com", f"{src}:c"),
        (f"{src}:c", f"user_id:u3-{tok}", f"{src}:d"),
    ]
    assert steps[2].identifier_type == "user_id" and steps[2].identifier_value == f"u3-{tok}"
    assert await explain_link(driver, db, f"{src}:a", f"{src}:a") == []
    assert await explain_link(driver, db, f"{src}:a", f"{src}:x") is None


async def test_merge_history_and_merged_away_ids_resolve(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    src, tok = unique("mrg"), unique("tok")
    first = await write(driver, settings, CustomerIn(src, "a", {}, (email("a", tok),)))
    second = await write(driver, settings, CustomerIn(src, "b", {}, (email("b", tok),)))
    old, young = first[f"{src}:a"], second[f"{src}:b"]
    joined = await write_batch(
        driver,
        db,
        WriteBatch(
            customers=(
                CustomerIn(src, "j", {}, (email("a", tok), email("b", tok)), message_id="m-1"),
            )
        ),
        CONFIG,
    )
    assert joined.record_profiles[f"{src}:j"] == old
    assert await resolve_profile_id(driver, db, young) == old
    assert await resolve_profile_id(driver, db, old) == old
    assert await resolve_profile_id(driver, db, "no-such-profile") is None
    history = await merge_history(driver, db, old)
    assert len(history) == 1
    event = history[0]
    assert (event.survivor_id, event.merged_ids) == (old, (young,))
    assert event.record_key == f"{src}:j"
    assert event.message_id == "m-1"
    assert event.identifier_key == f"email:b.{tok}@example.com"
    assert await merge_history(driver, db, young) == history


async def test_unmerge_takes_a_record_out_for_good(driver: AsyncDriver, settings: Settings) -> None:
    db = settings.neo4j_database
    src, tok = unique("unm"), unique("tok")
    await write(
        driver,
        settings,
        CustomerIn(src, "a", {}, (email("a", tok),)),
        CustomerIn(src, "b", {}, (email("a", tok), email("b", tok))),
        CustomerIn(src, "c", {}, (email("b", tok),)),
    )
    profile = await profile_id_of_record(driver, db, f"{src}:a")
    change = await unmerge_record(driver, db, f"{src}:b", CONFIG, reason="wrong person")
    ids = await profile_ids_of_records(driver, db, [f"{src}:{k}" for k in "abc"])
    # b held a and c together: all three end apart; a (the oldest record) keeps the id.
    assert len(set(ids.values())) == 3
    assert ids[f"{src}:a"] == profile
    assert [s.reason for s in change.splits] == ["wrong person"]
    # Writing b again with the same identifiers does not pull it back.
    again = await write(driver, settings, CustomerIn(src, "b", {}, (email("a", tok),)))
    assert again[f"{src}:b"] == ids[f"{src}:b"]


async def test_delete_record_splits_what_it_held_together(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    src, tok = unique("del"), unique("tok")
    await write_batch(
        driver,
        db,
        WriteBatch(
            customers=(
                CustomerIn(src, "a", {}, (email("a", tok),)),
                CustomerIn(src, "hub", {}, (email("a", tok), email("b", tok))),
                CustomerIn(src, "b", {}, (email("b", tok),)),
            ),
            interactions=(InteractionIn(f"{src}-i1", src, "hub", "call", T0),),
        ),
        CONFIG,
    )
    profile = await profile_id_of_record(driver, db, f"{src}:a")
    change = await delete_record(driver, db, f"{src}:hub", CONFIG)
    ids = await profile_ids_of_records(driver, db, [f"{src}:a", f"{src}:b", f"{src}:hub"])
    assert f"{src}:hub" not in ids
    assert ids[f"{src}:a"] == profile != ids[f"{src}:b"]
    assert len(change.splits) == 1 and change.splits[0].record_key == f"{src}:hub"
    records, _, _ = await driver.execute_query(
        "MATCH (n:Interaction {id: $id}) RETURN count(n) AS n", id=f"{src}-i1", database_=db
    )
    assert records[0]["n"] == 0
    # Deleting the last record of a profile removes the profile.
    gone = await delete_record(driver, db, f"{src}:b", CONFIG)
    assert gone.deleted_profile_ids == [ids[f"{src}:b"]]
    assert await resolve_profile_id(driver, db, ids[f"{src}:b"]) is None


async def test_profile_by_identifier_normalizes_the_value(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    src, tok = unique("pbi"), unique("tok")
    written = await write(driver, settings, CustomerIn(src, "a", {}, (email("Jane", tok),)))
    found = await profile_id_by_identifier(
        driver, db, "Email", f"  JANE.{tok.upper()}@Example.com ", CONFIG
    )
    assert found == written[f"{src}:a"]
    assert await profile_id_by_identifier(driver, db, "email", "garbage", CONFIG) is None


async def test_super_connector_report(driver: AsyncDriver, settings: Settings) -> None:
    db = settings.neo4j_database
    src, tok = unique("sup"), unique("tok")
    shared = IdentifierIn("household", f"h-{tok}")
    await write(
        driver,
        settings,
        *(CustomerIn(src, f"r{i}", {}, (shared,), T0 + timedelta(seconds=i)) for i in range(4)),
    )
    report = await super_connectors(driver, db, threshold=3, limit=10_000)
    ours = [r for r in report if r.key == f"household:h-{tok}"]
    assert len(ours) == 1
    assert (ours[0].records, ours[0].profiles, ours[0].blocked) == (4, 1, False)
    assert all(r.records > 3 for r in report)
