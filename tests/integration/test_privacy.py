"""Right to erasure and access against the real Neo4j: delete, suppress, audit, export."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key, revoke_key
from customer_graph.graph.audit import list_audit_entries
from customer_graph.graph.privacy import (
    SuppressedError,
    delete_profile,
    ensure_not_suppressed,
    export_profile,
    find_suppressed,
    identifier_hash,
    identifier_target,
    record_hash,
    record_target,
    split_suppressed,
)
from customer_graph.graph.records import (
    AccountIn,
    CustomerIn,
    DealContactIn,
    DealIn,
    IdentifierIn,
    InteractionIn,
    MembershipIn,
    WriteBatch,
)
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.ingestion.importers.layouts import Kind
from customer_graph.ingestion.importers.runner import ImportOptions, run_import
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


async def _count(driver: AsyncDriver, settings: Settings, query: str, **params: Any) -> int:
    records, _, _ = await driver.execute_query(query, database_=settings.neo4j_database, **params)
    n: int = records[0]["n"]
    return n


class Person:
    """Two records of one person (CRM contact and web user) with activity, and a neighbour."""

    def __init__(self) -> None:
        tag = unique("priv")
        self.crm, self.web, self.neighbour_source = f"crm-{tag}", f"web-{tag}", f"nb-{tag}"
        self.contact_id, self.web_id, self.neighbour_id = "c1", "u1", "n1"
        self.email = f"{tag}@example.com"
        # Random over 8 million valid numbers, so no other test's profile holds it.
        rng = random.SystemRandom()
        self.phone = f"+1415{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        self.user_id = f"user-{tag}"
        self.shared_email = f"shared-{tag}@example.org"
        self.account_id, self.deal_id, self.interaction_id = f"a-{tag}", f"d-{tag}", f"i-{tag}"

    def batch(self) -> WriteBatch:
        ident = IdentifierIn
        return WriteBatch(
            customers=(
                CustomerIn(
                    self.crm,
                    self.contact_id,
                    {"firstName": "Ann", "email": self.email},
                    (ident("email", self.email), ident("phone", self.phone)),
                    seen_at=T0,
                ),
                CustomerIn(
                    self.web,
                    self.web_id,
                    {"plan": "pro"},
                    (
                        ident("user_id", self.user_id),
                        ident("email", self.email.upper()),
                        ident("email", self.shared_email),
                    ),
                    seen_at=T0,
                ),
                # Another person with another user_id: the user_id limit (1) keeps them apart,
                # though they share an email address.
                CustomerIn(
                    self.neighbour_source,
                    self.neighbour_id,
                    {},
                    (ident("user_id", f"other-{self.user_id}"), ident("email", self.shared_email)),
                    seen_at=T0 + timedelta(minutes=1),
                ),
            ),
            interactions=(
                InteractionIn(
                    self.interaction_id,
                    self.crm,
                    self.contact_id,
                    "call",
                    T0,
                    subject="Renewal",
                    body=f"Call {self.phone}",
                ),
            ),
            accounts=(AccountIn(self.account_id, name="Acme"),),
            memberships=(MembershipIn(self.crm, self.contact_id, self.account_id, title="CTO"),),
            deals=(
                DealIn(
                    self.deal_id,
                    name="Acme renewal",
                    amount=1000.0,
                    stage="qualified",
                    contacts=(DealContactIn(self.crm, self.contact_id, role="buyer"),),
                ),
            ),
        )


async def _write(driver: AsyncDriver, settings: Settings, batch: WriteBatch) -> dict[str, str]:
    result = await write_batch(driver, settings.neo4j_database, batch, resolution_config(settings))
    return result.record_profiles


async def test_export_then_delete_then_suppress(driver: AsyncDriver, settings: Settings) -> None:
    person = Person()
    profiles = await _write(driver, settings, person.batch())
    profile_id = profiles[f"{person.crm}:{person.contact_id}"]
    assert profiles[f"{person.web}:{person.web_id}"] == profile_id
    neighbour_profile = profiles[f"{person.neighbour_source}:{person.neighbour_id}"]
    assert neighbour_profile != profile_id

    exported = await export_profile(driver, settings, profile_id)
    assert exported is not None
    text = json.dumps(exported)
    for value in (person.email, person.phone, person.user_id, "Renewal", "Acme", "CTO", "buyer"):
        assert value in text, value
    assert {r["key"] for r in exported["records"]} == {
        f"{person.crm}:{person.contact_id}",
        f"{person.web}:{person.web_id}",
    }
    assert [i["id"] for i in exported["interactions"]] == [person.interaction_id]

    deleted = await delete_profile(driver, settings, profile_id, actor="test-admin")
    assert deleted is not None
    assert deleted.deleted_profile_id == profile_id
    counts = deleted.counts
    assert counts["records"] == 2
    assert counts["identifiersDeleted"] == 3  # email, phone, user_id
    assert counts["identifiersKept"] == 1  # the email the neighbour holds too
    assert counts["interactions"] == 1
    assert counts["memberships"] == 1
    assert counts["dealContacts"] == 1
    assert counts["profiles"] >= 1
    assert counts["suppressions"] == 5  # 3 identifiers + 2 records

    db = settings.neo4j_database
    keys = [f"{person.crm}:{person.contact_id}", f"{person.web}:{person.web_id}"]
    assert (
        await _count(
            driver, settings, "MATCH (c:Customer) WHERE c.key IN $k RETURN count(c) AS n", k=keys
        )
        == 0
    )
    assert (
        await _count(
            driver, settings, "MATCH (p:Profile {id: $id}) RETURN count(p) AS n", id=profile_id
        )
        == 0
    )
    assert (
        await _count(
            driver,
            settings,
            "MATCH (i:Interaction {id: $id}) RETURN count(i) AS n",
            id=person.interaction_id,
        )
        == 0
    )
    assert (
        await _count(
            driver,
            settings,
            "MATCH (i:Identifier) WHERE i.value IN $v RETURN count(i) AS n",
            v=[person.email, person.phone, person.user_id],
        )
        == 0
    )
    # What is not the person's stays: the deal, the account, the neighbour and the shared email.
    assert (
        await _count(
            driver, settings, "MATCH (d:Deal {id: $id}) RETURN count(d) AS n", id=person.deal_id
        )
        == 1
    )
    assert (
        await _count(
            driver,
            settings,
            "MATCH (a:Account {id: $id}) RETURN count(a) AS n",
            id=person.account_id,
        )
        == 1
    )
    assert (
        await _count(
            driver,
            settings,
            "MATCH (:Profile {id: $id})<-[:RESOLVES_TO]-(:Customer)-[:HAS_IDENTIFIER]->"
            "(:Identifier {value: $v}) RETURN count(*) AS n",
            id=neighbour_profile,
            v=person.shared_email,
        )
        == 1
    )

    # Suppressions are keyed hashes; no value is stored in them.
    records, _, _ = await driver.execute_query(
        "MATCH (s:Suppression {auditId: $a}) RETURN s {.*} AS s", a=deleted.audit_id, database_=db
    )
    stored = [r["s"] for r in records]
    assert {s["hash"] for s in stored} >= {
        identifier_hash(settings, "email", person.email),
        identifier_hash(settings, "phone", person.phone),
        record_hash(settings, person.crm, person.contact_id),
    }
    for value in (person.email, person.phone, person.user_id, person.crm):
        assert value not in json.dumps(stored, default=str)

    # The audit entry says who, what and how much, and holds no PII.
    page = await list_audit_entries(driver, db, first=100)
    entry = next(e for e in page.entries if e.id == deleted.audit_id)
    assert (entry.actor, entry.action, entry.target) == (
        "test-admin",
        "profile.delete",
        f"profile:{profile_id}",
    )
    assert entry.details["counts"] == counts
    assert person.email not in json.dumps(entry.details)

    # A replay of the original batch, and new events carrying one identifier, are refused.
    replay = await find_suppressed(driver, settings, person.batch())
    assert {(h.part, h.index) for h in replay} >= {("customers", 0), ("customers", 1)}
    assert ("customers", 2) not in {(h.part, h.index) for h in replay}
    assert ("interactions", 0) in {(h.part, h.index) for h in replay}
    new_event = WriteBatch(
        customers=(
            CustomerIn(
                f"new-{person.crm}",
                "x",
                {},
                (IdentifierIn("phone", f"(415) {person.phone[5:8]}-{person.phone[8:]}"),),
            ),
        )
    )
    hits = await find_suppressed(driver, settings, new_event)
    assert [(h.kind, h.identifier_type) for h in hits] == [("identifier", "phone")]
    try:
        await ensure_not_suppressed(driver, settings, new_event)
    except SuppressedError as e:
        assert person.phone not in str(e)
        assert "customers[0]" in str(e)
    else:
        raise AssertionError("a suppressed identifier was accepted")
    kept, removed = split_suppressed(person.batch(), replay)
    assert [c.source for c in kept.customers] == [person.neighbour_source]
    assert ("customers", 0) in removed

    assert await delete_profile(driver, settings, profile_id, actor="test-admin") is None
    assert await export_profile(driver, settings, profile_id) is None


async def test_delete_by_merged_away_id(driver: AsyncDriver, settings: Settings) -> None:
    tag = unique("privm")
    email = f"{tag}@example.net"
    first = await _write(
        driver,
        settings,
        WriteBatch(customers=(CustomerIn(f"a-{tag}", "1", {}, (IdentifierIn("email", email),)),)),
    )
    second = await _write(
        driver,
        settings,
        WriteBatch(customers=(CustomerIn(f"b-{tag}", "1", {}, (IdentifierIn("device_id", tag),)),)),
    )
    old_a, old_b = first[f"a-{tag}:1"], second[f"b-{tag}:1"]
    merged = await _write(
        driver,
        settings,
        WriteBatch(
            customers=(
                CustomerIn(
                    f"c-{tag}",
                    "1",
                    {},
                    (IdentifierIn("email", email), IdentifierIn("device_id", tag)),
                ),
            )
        ),
    )
    survivor = merged[f"c-{tag}:1"]
    merged_away = old_b if survivor == old_a else old_a
    deleted = await delete_profile(driver, settings, merged_away, actor="test-admin")
    assert deleted is not None
    assert deleted.deleted_profile_id == survivor
    assert deleted.counts["records"] == 3
    assert deleted.counts["profiles"] == 2
    assert deleted.counts["identityEvents"] >= 1
    assert (
        await _count(
            driver,
            settings,
            "MATCH (p:Profile) WHERE p.id IN $ids RETURN count(p) AS n",
            ids=[old_a, old_b],
        )
        == 0
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_graph.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_export_delete_and_audit(driver: AsyncDriver, settings: Settings) -> None:
    person = Person()
    profiles = await _write(driver, settings, person.batch())
    profile_id = profiles[f"{person.crm}:{person.contact_id}"]

    exported = await asyncio.to_thread(_cli, "export-profile", profile_id)
    assert exported.returncode == 0, exported.stderr
    body = json.loads(exported.stdout)
    assert body["profile"]["id"] == profile_id
    assert person.email in exported.stdout

    deleted = await asyncio.to_thread(_cli, "delete-profile", profile_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["records"] == 2
    missing = await asyncio.to_thread(_cli, "export-profile", profile_id)
    assert missing.returncode == 1
    assert "No profile" in missing.stderr

    listed = await asyncio.to_thread(_cli, "audit", "list", "--first", "100")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == ["at", "actor", "action", "target", "details"]
    mine = [line.split("\t") for line in lines[1:] if f"profile:{profile_id}" in line]
    assert [(row[1], row[2]) for row in mine] == [("cli", "profile.delete")]
    assert person.email not in listed.stdout
    assert person.phone not in listed.stdout


BLOCK = """mutation ($input: BlockIdentifierInput!) { blockIdentifier(input: $input) {
  identifier { type blocked } userErrors { code } } }"""
UNMERGE = """mutation ($input: UnmergeRecordInput!) { unmergeRecord(input: $input) {
  record { sourceId } userErrors { code } } }"""


async def test_admin_actions_are_audited_without_pii(
    driver: AsyncDriver, settings: Settings
) -> None:
    db = settings.neo4j_database
    source = unique("audit-src")
    key, row = await create_key(
        driver, settings, scopes=[Scope.READ, Scope.ADMIN], source=source, actor="test-cli"
    )
    email = f"{unique('aud')}@example.com"
    record_source, record_id = unique("aud-src"), f"{unique('u')}@example.org"  # an email as id
    await _write(
        driver,
        settings,
        WriteBatch(
            customers=(
                CustomerIn(record_source, record_id, {}, (IdentifierIn("email", email),)),
                CustomerIn(f"{record_source}-b", "1", {}, (IdentifierIn("email", email),)),
            )
        ),
    )
    async with asgi_client(create_app(settings), graphql_key=key) as client:
        blocked = await client.post(
            "/graphql",
            json={"query": BLOCK, "variables": {"input": {"type": "email", "value": email}}},
        )
        unmerged = await client.post(
            "/graphql",
            json={
                "query": UNMERGE,
                "variables": {"input": {"recordId": f"{record_source}-b:1"}},
            },
        )
    assert blocked.json()["data"]["blockIdentifier"]["userErrors"] == [], blocked.text
    assert unmerged.json()["data"]["unmergeRecord"]["userErrors"] == [], unmerged.text
    assert await revoke_key(driver, settings, row.id, actor="test-cli") is not None

    entries = (await list_audit_entries(driver, db, first=100)).entries
    by_action = {
        (e.action, e.target): e for e in entries if e.target == f"key:{row.id}" or e.actor == row.id
    }
    assert by_action[("key.create", f"key:{row.id}")].actor == "test-cli"
    assert by_action[("key.create", f"key:{row.id}")].details == {
        "scopes": ["admin", "read"],
        "source": source,
    }
    assert ("key.revoke", f"key:{row.id}") in by_action
    block_target = identifier_target(settings, "email", email)
    assert by_action[("identifier.block", block_target)].actor == row.id
    unmerge_target = record_target(settings, f"{record_source}-b:1")
    assert ("record.unmerge", unmerge_target) in by_action
    text = json.dumps([(e.target, e.details) for e in by_action.values()])
    assert email not in text and record_id not in text and "@" not in text


UPSERT = """mutation ($input: UpsertCustomerInput!) { upsertCustomer(input: $input) {
  record { id } userErrors { message code } } }"""
DELETE = """mutation ($id: ID!) { deleteProfile(input: {id: $id}) {
  deletedProfileId counts { records suppressions } userErrors { code } } }"""


async def test_after_erasure_every_path_refuses_the_person(
    driver: AsyncDriver, settings: Settings, tmp_path: Path
) -> None:
    """Tracking replays, GraphQL writes and imports that carry an erased identifier are refused
    with a clear answer, and write nothing."""
    assert settings.dev_key
    tag = unique("erase")
    email = f"{tag}@example.com"
    message = {
        "type": "identify",
        "userId": f"{tag}-u",
        "messageId": f"{tag}-m1",
        "traits": {"email": email},
    }
    bearer = {"authorization": f"Bearer {settings.dev_key}"}
    async with asgi_client(create_app(settings)) as client:
        first = await client.post("/v1/identify", json=message, headers=bearer)
        assert first.json() == {"success": True}
        key = f"dev:{tag}-u"
        records, _, _ = await driver.execute_query(
            "MATCH (:Customer {key: $key})-[:RESOLVES_TO]->(p:Profile) RETURN p.id AS id",
            key=key,
            database_=settings.neo4j_database,
        )
        erased = await client.post(
            "/graphql", json={"query": DELETE, "variables": {"id": records[0]["id"]}}
        )
        assert erased.json()["data"]["deleteProfile"]["counts"]["records"] == 1

        replay = await client.post("/v1/identify", json=message, headers=bearer)
        fresh = await client.post(
            "/v1/track",
            json={
                "type": "track",
                "anonymousId": f"{tag}-anon",
                "messageId": f"{tag}-m2",
                "event": "Came back",
                "context": {"traits": {"email": email.upper()}},
            },
            headers=bearer,
        )
        upsert = await client.post(
            "/graphql",
            json={
                "query": UPSERT,
                "variables": {
                    "input": {
                        "source": "dev",
                        "sourceId": f"{tag}-gql",
                        "identifiers": [{"type": "email", "value": email}],
                    }
                },
            },
        )
    assert replay.json() == {"success": True, "suppressed": [0]}
    assert upsert.json()["data"]["upsertCustomer"]["userErrors"][0]["code"] == "SUPPRESSED"
    assert "erased" in upsert.json()["data"]["upsertCustomer"]["userErrors"][0]["message"]

    csv = tmp_path / "contacts.csv"
    csv.write_text(f"id,first_name,email\n{tag}-crm,Ann,{email}\n", encoding="utf-8")
    summary = await run_import(
        driver, settings, ImportOptions(path=csv, kind=Kind.CONTACTS, source=f"crm-{tag}")
    )
    assert (summary.written, summary.rejected) == (0, 1)
    assert summary.rejects_file is not None
    assert "erased" in Path(summary.rejects_file).read_text()

    traces, _, _ = await driver.execute_query(
        "MATCH (c:Customer) WHERE c.key CONTAINS $tag RETURN count(c) AS n",
        tag=tag,
        database_=settings.neo4j_database,
    )
    assert fresh.json() == {"success": True, "suppressed": [0]}  # a new visitor, same email
    assert traces[0]["n"] == 0
    messages, _, _ = await driver.execute_query(
        "MATCH (m:Message) WHERE m.id CONTAINS $tag RETURN collect(m.id) AS ids",
        tag=tag,
        database_=settings.neo4j_database,
    )
    assert messages[0]["ids"] == [f"dev:{tag}-m1"]  # the refused ones left no claim behind
