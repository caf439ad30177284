"""CRM importers against the real Neo4j: every preset's sample, rejects, reruns, the CLI.

The samples under tests/data/importers are realistic exports; the same people appear in several
CRMs (Ana in Salesforce and HubSpot by email, Ben in HubSpot and Dynamics by phone, Chen in
Dynamics and Zoho by email, Diego in Salesforce and Zoho by phone). Each test run copies them
with its own token in every email, phone and CRM id (`personalize`) and imports them under its
own sources, so runs never share an identifier with each other or with anyone else's tests.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.ingestion.importers.layouts import Kind
from customer_graph.ingestion.importers.runner import ImportOptions, ImportSummary, run_import
from customer_graph.settings import PROJECT_ROOT, Settings
from tests.helpers import unique

DATA = Path(__file__).resolve().parent.parent / "data" / "importers"

# (preset, file, kind) in import order: accounts, then people, deals, history and activity.
IMPORTS: list[tuple[str, str, Kind]] = [
    ("salesforce", "Account.csv", Kind.ACCOUNTS),
    ("salesforce", "Contact.csv", Kind.CONTACTS),
    ("salesforce", "Opportunity.csv", Kind.DEALS),
    ("salesforce", "OpportunityHistory.csv", Kind.STAGE_CHANGES),
    ("salesforce", "Task.csv", Kind.INTERACTIONS),
    ("salesforce", "Event.csv", Kind.INTERACTIONS),
    ("hubspot", "companies.csv", Kind.ACCOUNTS),
    ("hubspot", "contacts.csv", Kind.CONTACTS),
    ("hubspot", "deals.csv", Kind.DEALS),
    ("hubspot", "deals.csv", Kind.STAGE_CHANGES),
    ("hubspot", "engagements.jsonl", Kind.INTERACTIONS),
    ("dynamics", "account.csv", Kind.ACCOUNTS),
    ("dynamics", "contact.csv", Kind.CONTACTS),
    ("dynamics", "opportunity.csv", Kind.DEALS),
    ("dynamics", "phonecall.csv", Kind.INTERACTIONS),
    ("dynamics", "email.csv", Kind.INTERACTIONS),
    ("dynamics", "appointment.csv", Kind.INTERACTIONS),
    ("zoho", "Accounts.csv", Kind.ACCOUNTS),
    ("zoho", "Contacts.csv", Kind.CONTACTS),
    ("zoho", "Deals.csv", Kind.DEALS),
    ("zoho", "Calls.csv", Kind.INTERACTIONS),
    ("zoho", "Meetings.csv", Kind.INTERACTIONS),
]

# The part of each CRM's ids that the samples share, replaced by a per-run token of the same
# shape (for Salesforce: lower case and digits only, so 18-character checksums stay right).
ID_MARKERS = {"salesforce": "5g00000", "hubspot": "74200", "dynamics": "00155d", "zoho": "5725767"}
EMAIL = re.compile(r"\b([A-Za-z0-9._%-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.example)\b")
# Every sample phone is a fictional 555-01xx number, written in several styles.
PHONE = re.compile(r"555(?P<sep>[\s.\-]?)01(?P<line>\d\d)")


def personalize(text: str, preset: str, token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    numeric = str(int(digest, 16))
    markers = {
        "salesforce": "".join("abcdefghijklmnopqrstuvwxyz0123456789"[int(c, 16)] for c in digest)[
            :7
        ],
        "hubspot": "1" + numeric[:4],
        "dynamics": digest[:6],
        "zoho": "1" + numeric[4:10],
    }
    # Dynamics GUIDs also appear upper-cased in braces: keep each occurrence's case.
    text = re.sub(
        re.escape(ID_MARKERS[preset]),
        lambda m: markers[preset].upper() if m.group().isupper() else markers[preset],
        text,
        flags=re.IGNORECASE,
    )
    text = EMAIL.sub(lambda m: f"{m.group(1)}+{token}@{m.group(2)}", text)

    def phone(m: re.Match[str]) -> str:
        n = int(hashlib.sha256(f"{token}:{m.group('line')}".encode()).hexdigest(), 16)
        exchange = 200 + n % 700  # 200-899: a valid North American exchange
        return f"{exchange}{m.group('sep')}{(n // 1000) % 10000:04d}"

    return PHONE.sub(phone, text)


@dataclass
class Imported:
    token: str
    sources: dict[str, str]  # preset -> source
    folder: Path
    summaries: dict[tuple[str, str, Kind], ImportSummary]

    def id(self, preset: str, raw: str) -> str:
        """The personalized form of a sample id."""
        return personalize(raw, preset, self.token)

    def key(self, preset: str, raw_id: str) -> str:
        return f"{self.sources[preset]}:{self.id(preset, raw_id)}"


def copy_samples(folder: Path, token: str) -> None:
    for preset in ID_MARKERS:
        (folder / preset).mkdir(parents=True, exist_ok=True)
        for path in (DATA / preset).iterdir():
            text = path.read_text(encoding="utf-8")
            (folder / preset / path.name).write_text(
                personalize(text, preset, token), encoding="utf-8"
            )


async def import_all(
    driver: AsyncDriver, settings: Settings, imported: Imported
) -> dict[tuple[str, str, Kind], ImportSummary]:
    summaries = {}
    for preset, file, kind in IMPORTS:
        path = imported.folder / preset / file
        options = ImportOptions(
            path=path,
            kind=kind,
            source=imported.sources[preset],
            preset=preset,
            batch_size=2,  # several transactions per file
            rejects=imported.folder / "rejects" / f"{preset}-{file}-{kind.value}.csv",
        )
        summaries[(preset, file, kind)] = await run_import(driver, settings, options)
    return summaries


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def imported(
    driver: AsyncDriver, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Imported]:
    token = unique("imp").split("-", 1)[1]
    folder = tmp_path_factory.mktemp("importers")
    copy_samples(folder, token)
    run = Imported(token, {p: f"{p}-{token}" for p in ID_MARKERS}, folder, {})
    run.summaries = await import_all(driver, settings, run)
    yield run


async def query(driver: AsyncDriver, settings: Settings, cypher: str, **params: Any) -> list[Any]:
    records, _, _ = await driver.execute_query(cypher, params, database_=settings.neo4j_database)
    return [r.data() for r in records]


PROFILE_OF = """
MATCH (c:Customer {key: $key})-[:RESOLVES_TO]->(p:Profile)
RETURN p.id AS id
"""


async def profile_of(driver: AsyncDriver, settings: Settings, key: str) -> str:
    rows = await query(driver, settings, PROFILE_OF, key=key)
    assert len(rows) == 1, (key, rows)
    return str(rows[0]["id"])


# People, by preset and sample record id.
ANA_SF = ("salesforce", "0035g00000Ana01AAB")
ANA_HS = ("hubspot", "74200200001")
BEN_HS = ("hubspot", "74200200002")
BEN_DYN = ("dynamics", "0f7a3b19-5e2c-ee11-8179-00155dc20001")
CHEN_DYN = ("dynamics", "4d8e6f27-3a1b-ee11-8179-00155dc20002")
CHEN_ZOHO = ("zoho", "5725767000000200001")
DIEGO_SF = ("salesforce", "0035g00000Dgo02AAB")
DIEGO_ZOHO = ("zoho", "5725767000000200002")
GRACE_SF = ("salesforce", "0035g00000Grc03AAB")
MAYA_HS = ("hubspot", "74200200003")
LARA_ZOHO = ("zoho", "5725767000000200003")


async def test_the_same_person_in_two_crms_becomes_one_profile(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    async def profile(person: tuple[str, str]) -> str:
        return await profile_of(driver, settings, imported.key(*person))

    pairs = [(ANA_SF, ANA_HS), (BEN_HS, BEN_DYN), (CHEN_DYN, CHEN_ZOHO), (DIEGO_SF, DIEGO_ZOHO)]
    people = [await profile(a) for a, _ in pairs]
    for (a, b), pid in zip(pairs, people, strict=True):
        assert await profile(b) == pid, (a, b)
    alone = [await profile(p) for p in (GRACE_SF, MAYA_HS, LARA_ZOHO)]
    assert len(set(people + alone)) == 7  # nobody else was joined
    ana_records = await query(
        driver,
        settings,
        "MATCH (:Profile {id: $id})<-[:RESOLVES_TO]-(c:Customer) RETURN c.source AS source",
        id=people[0],
    )
    assert sorted(r["source"] for r in ana_records) == sorted(
        [imported.sources["salesforce"], imported.sources["hubspot"]]
    )


async def test_crm_ids_become_identifiers(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    rows = await query(
        driver,
        settings,
        "MATCH (c:Customer {key: $key})-[:HAS_IDENTIFIER]->(i:Identifier) "
        "RETURN i.type AS type, i.value AS value ORDER BY type, value",
        key=imported.key(*DIEGO_SF),
    )
    types = [r["type"] for r in rows]
    assert types == ["email", "phone", "phone", "salesforce_contact_id"]
    assert rows[-1]["value"] == imported.id(*DIEGO_SF)
    assert all(r["value"].startswith("+1312") for r in rows if r["type"] == "phone")


async def test_accounts_and_memberships(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    northwind = (
        f"{imported.sources['salesforce']}:{imported.id('salesforce', '0015g00000Nw1TrAAJ')}"
    )
    rows = await query(
        driver,
        settings,
        "MATCH (a:Account {id: $id}) "
        "OPTIONAL MATCH (c:Customer)-[m:MEMBER_OF]->(a) "
        "OPTIONAL MATCH (o:Owner)-[:OWNS]->(a) "
        "RETURN a.name AS name, a.domain AS domain, a.traits AS traits, o.id AS owner, "
        "collect([c.sourceId, m.title, m.primary]) AS members",
        id=northwind,
    )
    (account,) = rows
    assert (account["name"], account["domain"]) == (
        "Northwind Traders",
        "northwind-traders.example",
    )
    assert json.loads(account["traits"])["employees"] == 420
    assert account["owner"].endswith(imported.id("salesforce", "0055g00000Usr01AAB"))
    assert sorted(account["members"]) == sorted(
        [
            [imported.id(*ANA_SF), "VP Operations", True],
            [imported.id(*GRACE_SF), "Procurement Lead", True],
        ]
    )
    counts = await query(
        driver,
        settings,
        "UNWIND $sources AS source MATCH (a:Account) WHERE a.id STARTS WITH source + ':' "
        "RETURN source, count(a) AS n ORDER BY source",
        sources=sorted(imported.sources.values()),
    )
    # Two good rows per accounts file; each bad row is rejected and writes nothing.
    assert [r["n"] for r in counts] == [2, 2, 2, 2]


STAGE_HISTORY = """
MATCH (d:Deal {id: $id})
OPTIONAL MATCH (d)-[:HAD_STAGE_CHANGE]->(s:StageChange)
WITH d, s ORDER BY s.changedAt
RETURN d.name AS name, d.status AS status, d.amount AS amount, d.stage AS stage,
       collect([s.fromStage, s.toStage]) AS history,
       [(d)-[:FOR_ACCOUNT]->(a) | a.id] AS accounts,
       [(c)-[:CONTACT_ON]->(d) | c.key] AS contacts
"""


async def test_deals_with_ordered_stage_history(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    opp = imported.key("salesforce", "0065g00000Opp01AAB")
    (sf,) = await query(driver, settings, STAGE_HISTORY, id=opp)
    assert (sf["status"], sf["amount"], sf["stage"]) == ("won", 48000.0, "Closed Won")
    assert sf["history"] == [
        [None, "Prospecting"],
        ["Prospecting", "Qualification"],
        ["Qualification", "Proposal/Price Quote"],
        ["Proposal/Price Quote", "Closed Won"],
    ]
    assert sf["accounts"] == [imported.key("salesforce", "0015g00000Nw1TrAAJ")]
    assert sf["contacts"] == [imported.key(*ANA_SF)]
    (hs,) = await query(driver, settings, STAGE_HISTORY, id=imported.key("hubspot", "74200300002"))
    assert (hs["status"], hs["stage"]) == ("open", "Contract Sent")
    assert [to for _, to in hs["history"]] == [
        "Appointment Scheduled",
        "Presentation Scheduled",
        "Contract Sent",
    ]
    dyn = imported.key("dynamics", "5b6c8d02-7e3f-ee11-8179-00155dd40002")
    (won,) = await query(driver, settings, STAGE_HISTORY, id=dyn)
    assert (won["status"], won["amount"]) == ("won", 42000.0)
    zoho = imported.key("zoho", "5725767000000400002")
    (open_,) = await query(driver, settings, STAGE_HISTORY, id=zoho)
    assert (open_["name"], open_["status"], open_["contacts"]) == (
        "Fabrikam - Welding Cell Retrofit",
        "open",
        [imported.key(*DIEGO_ZOHO)],
    )


INTERACTIONS = """
MATCH (:Profile {id: $profile})<-[:RESOLVES_TO]-(c:Customer)-[:HAD]->(n:Interaction)
OPTIONAL MATCH (n)-[:ABOUT_DEAL]->(d:Deal)
RETURN c.source AS source, n.type AS type, n.subject AS subject, n.direction AS direction,
       n.durationSeconds AS seconds, d.id AS deal
ORDER BY n.occurredAt
"""


async def test_interactions_of_a_person_across_crms(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    ana = await profile_of(driver, settings, imported.key(*ANA_SF))
    rows = await query(driver, settings, INTERACTIONS, profile=ana)
    sf, hs = imported.sources["salesforce"], imported.sources["hubspot"]
    assert [(r["source"], r["type"]) for r in rows] == [
        (sf, "call"),
        (hs, "call"),
        (sf, "meeting"),
        (hs, "note"),
    ]
    assert rows[0]["deal"] == imported.key("salesforce", "0065g00000Opp01AAB")
    assert (rows[0]["direction"], rows[0]["seconds"]) == ("outbound", 780)
    diego = await profile_of(driver, settings, imported.key(*DIEGO_SF))
    rows = await query(driver, settings, INTERACTIONS, profile=diego)
    zoho = imported.sources["zoho"]
    assert [(r["source"], r["type"], r["seconds"]) for r in rows] == [
        (sf, "email", None),
        (sf, "meeting", 3600),
        (zoho, "call", 870),
    ]
    ben = await profile_of(driver, settings, imported.key(*BEN_DYN))
    rows = await query(driver, settings, INTERACTIONS, profile=ben)
    assert [(r["type"], r["direction"]) for r in rows] == [
        ("call", "outbound"),
        ("email", "inbound"),
    ]


async def test_rejects_files_name_rows_and_reasons(imported: Imported) -> None:
    summary = imported.summaries[("salesforce", "Contact.csv", Kind.CONTACTS)]
    assert (summary.read, summary.written, summary.rejected) == (5, 3, 2)
    assert summary.rejects_file is not None
    with Path(summary.rejects_file).open(encoding="utf-8", newline="") as f:
        rows = [r[:4] for r in csv.reader(f)]
    assert rows[0] == ["row", "line", "reason", "Id"]
    assert [r[:2] for r in rows[1:]] == [["4", "5"], ["5", "6"]]
    assert rows[1][2] == "missing record id (Id)"
    assert rows[2][2].startswith("CreatedDate: not a date/time")
    broken = imported.summaries[("hubspot", "contacts.csv", Kind.CONTACTS)]
    assert broken.rejects_file is not None
    with Path(broken.rejects_file).open(encoding="utf-8", newline="") as f:
        header, _, shifted = list(csv.reader(f))
    assert shifted[:3] == ["5", "6", "row has 17 fields; the header has 16"]
    assert len(shifted) == 3 + 17 and len(header) == 3 + 16  # the broken row, cell for cell
    engagements = imported.summaries[("hubspot", "engagements.jsonl", Kind.INTERACTIONS)]
    assert (engagements.read, engagements.written, engagements.rejected) == (6, 4, 2)
    clean = imported.summaries[("salesforce", "OpportunityHistory.csv", Kind.STAGE_CHANGES)]
    assert (clean.written, clean.skipped, clean.rejected) == (7, 1, 1)
    for (_, _, _), s in imported.summaries.items():
        assert s.read == s.written + s.skipped + s.rejected, s
        assert (s.rejects_file is None) == (s.rejected == 0)


COUNTS = """
MATCH (c:Customer) WHERE c.source IN $sources
OPTIONAL MATCH (c)-[h:HAS_IDENTIFIER]->()
WITH collect(DISTINCT c) AS records, count(h) AS edges
CALL (records) {
  UNWIND records AS c
  MATCH (c)-[:RESOLVES_TO]->(p:Profile)
  RETURN count(DISTINCT p) AS profiles
}
CALL (records) {
  UNWIND records AS c
  MATCH (c)-[:HAD]->(n:Interaction)
  RETURN count(n) AS interactions
}
CALL (records) {
  UNWIND records AS c
  MATCH (c)-[m:MEMBER_OF]->()
  RETURN count(m) AS memberships
}
CALL () {
  UNWIND $sources AS source
  MATCH (d:Deal) WHERE d.id STARTS WITH source + ':'
  OPTIONAL MATCH (d)-[:HAD_STAGE_CHANGE]->(s)
  RETURN count(DISTINCT d) AS deals, count(s) AS changes
}
CALL () {
  UNWIND $sources AS source
  MATCH (o) WHERE (o:Account OR o:Owner) AND o.id STARTS WITH source + ':'
  RETURN count(o) AS others
}
RETURN size(records) AS records, edges, profiles, interactions, memberships, deals, changes,
       others
"""


async def test_rerunning_every_import_writes_nothing_new(
    imported: Imported, driver: AsyncDriver, settings: Settings
) -> None:
    sources = sorted(imported.sources.values())
    before = await query(driver, settings, COUNTS, sources=sources)
    assert (before[0]["records"], before[0]["changes"]) == (11, 14)
    again = await import_all(driver, settings, imported)
    after = await query(driver, settings, COUNTS, sources=sources)
    assert after == before
    for key, summary in again.items():
        first = imported.summaries[key]
        assert (summary.written, summary.rejected, summary.skipped) == (
            first.written,
            first.rejected,
            first.skipped,
        ), key
        assert (summary.merged, summary.profiles_created) == (0, 0), key


async def test_concurrent_chunks_resolve_like_one_writer(
    driver: AsyncDriver, settings: Settings, tmp_path: Path
) -> None:
    token = unique("conc").split("-", 1)[1]
    copy_samples(tmp_path, token)
    run = Imported(token, {p: f"{p}-c-{token}" for p in ID_MARKERS}, tmp_path, {})
    for preset, file in (("salesforce", "Contact.csv"), ("hubspot", "contacts.csv")):
        options = ImportOptions(
            path=tmp_path / preset / file,
            kind=Kind.CONTACTS,
            source=run.sources[preset],
            preset=preset,
            batch_size=1,
            concurrency=4,
        )
        summary = await run_import(driver, settings, options)
        assert (summary.written, summary.rejected, summary.transactions) == (3, 2, 3)
    ana = await profile_of(driver, settings, run.key(*ANA_SF))
    assert await profile_of(driver, settings, run.key(*ANA_HS)) == ana
    others = {await profile_of(driver, settings, run.key(*p)) for p in (DIEGO_SF, BEN_HS)}
    assert ana not in others and len(others) == 2


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_graph.cli", "import", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )


def test_cli_imports_with_summary_and_jsonl_rejects(tmp_path: Path) -> None:
    token = unique("cli").split("-", 1)[1]
    copy_samples(tmp_path, token)
    rejects = tmp_path / "rejects.jsonl"
    args = [
        str(tmp_path / "zoho" / "Contacts.csv"),
        "--kind",
        "contacts",
        "--preset",
        "zoho",
        "--source",
        f"zoho-cli-{token}",
        "--batch-size",
        "2",
        "--rejects",
        str(rejects),
        "--no-progress",
        "--json",
    ]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["read"], summary["written"], summary["rejected"]) == (4, 3, 1)
    assert (summary["profilesCreated"], summary["transactions"]) == (3, 2)
    assert "rejected" in done.stderr and "Created Time" in done.stderr
    (reject,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert (reject["row"], reject["line"]) == (4, 5)
    assert reject["reason"].startswith("Created Time: not a date/time")
    assert reject["record"]["First Name"] == "Sami"
    again = json.loads(cli(*args).stdout)
    assert (again["written"], again["profilesCreated"], again["merged"]) == (3, 0, 0)


def test_cli_refuses_a_file_that_does_not_fit_the_kind(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("Subject,Call Type\nHello,Outbound\n", encoding="utf-8")
    done = cli(str(path), "--kind", "contacts", "--preset", "zoho", "--source", "zoho-x")
    assert done.returncode == 1
    assert "no id column" in done.stderr
    bad = cli(str(path), "--kind", "contacts", "--source", "has:colon")
    assert bad.returncode == 2
