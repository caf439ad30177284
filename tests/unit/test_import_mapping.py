"""CRM importers without a database: reading, conversions, column maps and every sample file."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from customer_graph.graph.records import OwnerIn, WriteBatch
from customer_graph.import_cli import PresetName
from customer_graph.ingestion.importers import convert
from customer_graph.ingestion.importers.layouts import (
    FIELDS,
    ImportContext,
    Kind,
    LayoutError,
    RowError,
)
from customer_graph.ingestion.importers.mapping import Mapper
from customer_graph.ingestion.importers.presets import GENERIC, PRESETS, preset
from customer_graph.ingestion.importers.presets.hubspot import stage_of_column
from customer_graph.ingestion.importers.reader import ExportReader, ImportFormat, ReaderError
from customer_graph.ingestion.importers.runner import combine

DATA = Path(__file__).resolve().parent.parent / "data" / "importers"

# Every sample file, the kind it is imported as, and its rejected rows: (row, reason fragment).
SAMPLES: list[tuple[str, str, Kind, list[tuple[int, str]]]] = [
    ("salesforce", "Account.csv", Kind.ACCOUNTS, [(3, "NumberOfEmployees: not a number")]),
    (
        "salesforce",
        "Contact.csv",
        Kind.CONTACTS,
        [(4, "missing record id (Id)"), (5, "CreatedDate: not a date/time")],
    ),
    ("salesforce", "Opportunity.csv", Kind.DEALS, [(3, "Amount: not an amount")]),
    (
        "salesforce",
        "OpportunityHistory.csv",
        Kind.STAGE_CHANGES,
        [(9, "missing change time (CreatedDate)")],
    ),
    ("salesforce", "Task.csv", Kind.INTERACTIONS, [(4, "no contact")]),
    ("salesforce", "Event.csv", Kind.INTERACTIONS, [(3, "StartDateTime: not a date/time")]),
    ("hubspot", "companies.csv", Kind.ACCOUNTS, [(3, "Number of Employees: not a number")]),
    (
        "hubspot",
        "contacts.csv",
        Kind.CONTACTS,
        [(4, "missing record id (Record ID)"), (5, "row has 17 fields; the header has 16")],
    ),
    ("hubspot", "deals.csv", Kind.DEALS, [(3, 'Date entered "Qualified To Buy"')]),
    ("hubspot", "deals.csv", Kind.STAGE_CHANGES, [(3, 'Date entered "Qualified To Buy"')]),
    (
        "hubspot",
        "engagements.jsonl",
        Kind.INTERACTIONS,
        [(4, "invalid JSON"), (6, "no contact")],
    ),
    ("dynamics", "account.csv", Kind.ACCOUNTS, [(3, "revenue: not an amount")]),
    ("dynamics", "contact.csv", Kind.CONTACTS, [(3, "missing record id (contactid)")]),
    ("dynamics", "opportunity.csv", Kind.DEALS, [(3, "statecode: unknown deal status '7'")]),
    ("dynamics", "phonecall.csv", Kind.INTERACTIONS, [(3, "no contact")]),
    ("dynamics", "email.csv", Kind.INTERACTIONS, [(2, "senton: not a date/time")]),
    ("dynamics", "appointment.csv", Kind.INTERACTIONS, [(2, "no contact")]),
    ("zoho", "Accounts.csv", Kind.ACCOUNTS, [(3, "missing record id (Record Id)")]),
    ("zoho", "Contacts.csv", Kind.CONTACTS, [(4, "Created Time: not a date/time")]),
    ("zoho", "Deals.csv", Kind.DEALS, [(3, "Amount: not an amount")]),
    ("zoho", "Calls.csv", Kind.INTERACTIONS, [(3, "Call Start Time: not a date/time")]),
    ("zoho", "Meetings.csv", Kind.INTERACTIONS, [(2, "no contact")]),
]


def map_file(
    path: Path, kind: Kind, preset_name: str | None, source: str = "src"
) -> tuple[list[WriteBatch], list[tuple[int, str]], Mapper]:
    """Map a file as the runner does (without writing): the batches and the rejected rows."""
    mapper = Mapper(kind, preset(preset_name), ImportContext(source))
    batches: list[WriteBatch] = []
    rejects: list[tuple[int, str]] = []
    with ExportReader(path) as reader:
        for row in reader:
            if mapper.layout is None and reader.header is not None:
                mapper.choose_layout(reader.header)
            if row.error is not None:
                rejects.append((row.number, row.error))
                continue
            try:
                batches.append(mapper.map(row.values))
            except RowError as e:
                rejects.append((row.number, str(e)))
    return batches, rejects, mapper


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Conversions.


def test_parse_datetime_reads_the_formats_crms_export() -> None:
    expected = datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    for text in (
        "2024-03-01T10:15:00.000+0000",  # Salesforce
        "2024-03-01T10:15:00Z",  # Dynamics
        "2024-03-01T10:15:00.0000000Z",  # Dataverse with 7 fraction digits
        "2024-03-01 10:15",  # HubSpot
        "2024-03-01 10:15:00",  # Zoho
        "03/01/2024 10:15 AM",  # spreadsheet exports
        "Mar 01, 2024 10:15 AM",
        "1709288100000",  # epoch milliseconds (HubSpot API)
        "1709288100",  # epoch seconds
    ):
        assert convert.parse_datetime(text) == expected, text


def test_parse_datetime_applies_the_zone_to_naive_values_only() -> None:
    paris = timezone(timedelta(hours=1))
    assert convert.parse_datetime("2024-03-01 10:15", paris).utcoffset() == timedelta(hours=1)
    aware = convert.parse_datetime("2024-03-01T10:15:00Z", paris)
    assert aware.utcoffset() == timedelta(0)
    for bad in ("yesterday", "31/02/2024 10:00", "2024-13-01", "TBD"):
        with pytest.raises(ValueError, match="not a date/time"):
            convert.parse_datetime(bad)


def test_parse_amount_ignores_currency_and_separators_but_not_garbage() -> None:
    assert convert.parse_amount("$12,500.00") == 12500.0
    assert convert.parse_amount("USD 1200") == 1200.0
    assert convert.parse_amount("5 €") == 5.0
    assert convert.parse_amount("-40") == -40.0
    for bad in ("12k?", "sixty thousand", "n/a", "1e400", "$"):
        with pytest.raises(ValueError, match="not an amount"):
            convert.parse_amount(bad)


def test_durations_numbers_and_flags() -> None:
    assert convert.parse_duration("14:30") == 870
    assert convert.parse_duration("1:02:03") == 3723
    assert convert.parse_duration("90") == 90
    assert convert.parse_int("1,250") == 1250
    with pytest.raises(ValueError, match="not a whole number"):
        convert.parse_int("12.5")
    assert convert.parse_bool("TRUE") is True
    assert convert.parse_bool("0") is False
    with pytest.raises(ValueError):
        convert.parse_bool("maybe")


def test_domains_and_id_lists() -> None:
    assert convert.domain_of("https://www.Acme.example/about?x=1") == "acme.example"
    assert convert.domain_of("acme.example") == "acme.example"
    assert convert.domain_of("n/a") is None
    assert convert.split_ids("123; 456,789") == ["123", "456", "789"]


def test_salesforce_15_character_ids_get_their_18_character_form() -> None:
    assert convert.salesforce_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert convert.salesforce_id18("001A0000006Vm9rIAC") == "001A0000006Vm9rIAC"
    assert convert.salesforce_id18("0035g00000Ana01") == "0035g00000Ana01AAB"


# Reading.


def test_csv_rows_carry_row_numbers_and_file_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        '\ufeffId,Name,Note\n1,Ana,"two\nlines"\n\n2,Ben\n3,Chen,ok,extra\n4,Dara,fine\n',
    )
    with ExportReader(path) as reader:
        rows = list(reader)
        assert reader.header == ("Id", "Name", "Note")
        assert reader.bytes_read == reader.total_bytes
    assert [(r.number, r.line, r.error is None) for r in rows] == [
        (1, 2, True),
        (2, 5, False),
        (3, 6, False),
        (4, 7, True),
    ]
    assert rows[0].values == {"Id": "1", "Name": "Ana", "Note": "two\nlines"}
    assert rows[1].error == "row has 2 fields; the header has 3"
    assert rows[2].error == "row has 4 fields; the header has 3"
    assert rows[2].fields == ("3", "Chen", "ok", "extra")


def test_csv_delimiter_is_guessed_and_repeated_columns_keep_the_first(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id;email;email\n1;a@x.example;b@x.example\n")
    with ExportReader(path) as reader:
        (row,) = list(reader)
    assert row.values == {"id": "1", "email": "a@x.example"}


def test_jsonl_rows_are_flattened_and_bad_lines_reported(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl.gz"
    lines = [
        json.dumps({"engagement": {"id": 1, "type": "CALL"}, "associations": {"contactIds": [7]}}),
        "",
        "{broken",
        "[1, 2]",
    ]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with ExportReader(path) as reader:
        assert reader.format is ImportFormat.JSONL
        rows = list(reader)
    assert rows[0].values == {
        "engagement.id": 1,
        "engagement.type": "CALL",
        "associations.contactIds": [7],
    }
    assert [(r.number, r.line) for r in rows] == [(1, 1), (2, 3), (3, 4)]
    assert rows[1].error is not None and rows[1].error.startswith("invalid JSON")
    assert rows[2].error == "line is not a JSON object"


def test_unknown_suffix_and_empty_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="--format"):
        ExportReader(write(tmp_path / "x.xlsx", ""))
    with (
        pytest.raises(ReaderError, match="header"),
        ExportReader(write(tmp_path / "e.csv", "")) as r,
    ):
        list(r)


def test_streaming_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    def peak(rows: int) -> int:
        path = tmp_path / f"{rows}.csv"
        with path.open("w", encoding="utf-8") as f:
            f.write("Id,FirstName,LastName,Email,Phone,AccountId,CreatedDate\n")
            for i in range(rows):
                f.write(
                    f"0035g{i:010d},Ana,Lima,ana{i}@x.example,+1 415 555 {i % 10000:04d},"
                    f"0015g00000Nw1Tr,2024-01-01T00:00:00.000+0000\n"
                )
        mapper = Mapper(Kind.CONTACTS, PRESETS["salesforce"], ImportContext("s"))
        tracemalloc.start()
        with ExportReader(path) as reader:
            for row in reader:
                mapper.map(row.values)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(200), peak(2_000)
    assert large < small * 1.5 + 64 * 1024, (small, large)


# Presets.


BRIEF_EXPORTS = {
    "salesforce": {
        "Salesforce Contact",
        "Salesforce Account",
        "Salesforce Opportunity",
        "Salesforce OpportunityHistory",
        "Salesforce Task",
        "Salesforce Event",
    },
    "hubspot": {"HubSpot contacts", "HubSpot companies", "HubSpot deals", "HubSpot engagements"},
    "dynamics": {
        "Dynamics 365 contact",
        "Dynamics 365 account",
        "Dynamics 365 opportunity",
        "Dynamics 365 phonecall",
        "Dynamics 365 email",
        "Dynamics 365 appointment",
    },
    "zoho": {"Zoho Contacts", "Zoho Accounts", "Zoho Deals", "Zoho Calls", "Zoho Meetings"},
}


def test_every_crm_export_has_a_layout_using_known_fields() -> None:
    assert {p.value for p in PresetName} == set(PRESETS)
    for name, exports in BRIEF_EXPORTS.items():
        layouts = {layout.name: layout for layout in PRESETS[name].layouts}
        assert exports <= set(layouts), name
    for p in (*PRESETS.values(), GENERIC):
        for layout in p.layouts:
            unknown = (set(layout.columns) | set(layout.patterns)) - FIELDS[layout.kind]
            assert not unknown, (layout.name, unknown)


@pytest.mark.parametrize(
    ("preset_name", "file", "kind", "rejected"),
    SAMPLES,
    ids=[f"{p}/{f}:{k.value}" for p, f, k, _ in SAMPLES],
)
def test_each_sample_maps_with_exactly_its_bad_rows_rejected(
    preset_name: str, file: str, kind: Kind, rejected: list[tuple[int, str]]
) -> None:
    batches, rejects, _ = map_file(DATA / preset_name / file, kind, preset_name)
    assert [n for n, _ in rejects] == [n for n, _ in rejected]
    for (_, reason), (_, fragment) in zip(rejects, rejected, strict=True):
        assert fragment in reason
    assert any(len(b) for b in batches)


def test_every_preset_sample_folder_covers_its_kinds() -> None:
    for name, p in PRESETS.items():
        covered = {kind for pn, _, kind, _ in SAMPLES if pn == name}
        assert covered == set(p.kinds()), name


def _customers(batches: list[WriteBatch]) -> dict[str, Any]:
    return {c.source_id: c for b in batches for c in b.customers}


def test_salesforce_contacts_become_records_with_crm_id_email_and_phones() -> None:
    batches, _, _ = map_file(DATA / "salesforce" / "Contact.csv", Kind.CONTACTS, "salesforce")
    diego = _customers(batches)["0035g00000Dgo02AAB"]
    assert diego.source == "src"
    assert [(i.type, i.value) for i in diego.identifiers] == [
        ("salesforce_contact_id", "0035g00000Dgo02AAB"),
        ("email", "dcosta@fabrikam-robotics.example"),
        ("phone", "+1 312 555 0151"),
        ("phone", "+1 312 555 0152"),
    ]
    assert diego.traits["firstName"] == "Diego"
    assert diego.traits["title"] == "Head of Automation"
    assert diego.traits["address"] == {"city": "Chicago", "country": "United States"}
    assert diego.seen_at == datetime(2024, 2, 21, 10, 10, tzinfo=UTC)
    (membership,) = [m for b in batches for m in b.memberships if m.source_id == diego.source_id]
    assert membership.account_id == "src:0015g00000Fb7RxAAJ"
    assert membership.primary and membership.title == "Head of Automation"


def test_salesforce_task_links_the_15_character_who_id_and_routes_what_id() -> None:
    batches, _, mapper = map_file(DATA / "salesforce" / "Task.csv", Kind.INTERACTIONS, "salesforce")
    assert mapper.layout is not None and mapper.layout.name == "Salesforce Task"
    call = next(i for b in batches for i in b.interactions if i.type == "call")
    assert call.customer_source_id == "0035g00000Ana01AAB"  # 15 characters in the file
    assert call.deal_id == "src:0065g00000Opp01AAB"  # WhatId 006… is an opportunity
    assert call.direction == "outbound" and call.duration_seconds == 780
    assert call.occurred_at == datetime(2024, 2, 8, 17, 18, tzinfo=UTC)
    _, _, events = map_file(DATA / "salesforce" / "Event.csv", Kind.INTERACTIONS, "salesforce")
    assert events.layout is not None and events.layout.name == "Salesforce Event"


def test_opportunity_history_infers_from_stage_and_skips_amount_only_rows() -> None:
    batches, _, _ = map_file(
        DATA / "salesforce" / "OpportunityHistory.csv", Kind.STAGE_CHANGES, "salesforce"
    )
    changes = [
        (c.from_stage, c.to_stage)
        for b in batches
        for c in b.stage_changes
        if c.deal_id.endswith("Opp01AAB")
    ]
    assert changes == [
        (None, "Prospecting"),
        ("Prospecting", "Qualification"),
        ("Qualification", "Proposal/Price Quote"),
        ("Proposal/Price Quote", "Closed Won"),
    ]
    assert sum(1 for b in batches if len(b) == 0) == 1  # the amount-only change


def test_salesforce_opportunity_status_amount_and_contacts() -> None:
    batches, _, _ = map_file(DATA / "salesforce" / "Opportunity.csv", Kind.DEALS, "salesforce")
    won, open_ = (d for b in batches for d in b.deals)
    assert (won.status, won.amount, won.stage) == ("won", 48000.0, "Closed Won")
    assert won.closed_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert [c.source_id for c in won.contacts] == ["0035g00000Ana01AAB"]
    assert (open_.status, open_.closed_at) == ("open", None)


def test_hubspot_deal_rows_carry_their_stage_history() -> None:
    assert stage_of_column('Date entered "Closed Won (Sales Pipeline)"') == "Closed Won"
    assert stage_of_column("hs_date_entered_closedwon") == "closedwon"
    assert stage_of_column('Date exited "Closed Won (Sales Pipeline)"') is None
    batches, _, _ = map_file(DATA / "hubspot" / "deals.csv", Kind.DEALS, "hubspot")
    first = batches[0]
    (deal,) = first.deals
    assert (deal.stage, deal.status, deal.pipeline) == ("Closed Won", "won", "Sales Pipeline")
    assert deal.owner_id == "src:owner:priya raman"
    assert first.owners == (OwnerIn("src:owner:priya raman", "Priya Raman", None),)
    assert [(c.from_stage, c.to_stage) for c in first.stage_changes] == [
        (None, "Appointment Scheduled"),
        ("Appointment Scheduled", "Qualified To Buy"),
        ("Qualified To Buy", "Contract Sent"),
        ("Contract Sent", "Closed Won"),
    ]


def test_hubspot_engagements_types_directions_and_associations() -> None:
    batches, _, _ = map_file(DATA / "hubspot" / "engagements.jsonl", Kind.INTERACTIONS, "hubspot")
    by_type = {i.type: i for b in batches for i in b.interactions}
    assert set(by_type) == {"call", "email", "meeting", "note"}
    assert by_type["call"].duration_seconds == 540
    assert by_type["call"].deal_id == "src:74200300001"
    assert by_type["email"].direction == "inbound"
    assert by_type["meeting"].duration_seconds == 1800
    assert by_type["note"].properties["otherContactIds"] == ["74200200002"]


def test_dynamics_activities_belong_to_the_contact_they_regard() -> None:
    batches, _, _ = map_file(DATA / "dynamics" / "phonecall.csv", Kind.INTERACTIONS, "dynamics")
    calls = [i for b in batches for i in b.interactions]
    assert [(i.customer_source_id[-6:], i.direction, i.duration_seconds) for i in calls] == [
        ("c20001", "outbound", 1500),
        ("c20002", "inbound", 720),
    ]
    contacts, _, _ = map_file(DATA / "dynamics" / "contact.csv", Kind.CONTACTS, "dynamics")
    ben = contacts[0].memberships[0]
    assert ben.account_id == "src:6a1f0c2e-4b7d-ee11-8179-00155da10001"  # braces, upper case


def test_dynamics_opportunity_uses_state_and_actual_value_when_won() -> None:
    batches, _, _ = map_file(DATA / "dynamics" / "opportunity.csv", Kind.DEALS, "dynamics")
    open_, won = (d for b in batches for d in b.deals)
    assert (open_.status, open_.amount, open_.stage) == ("open", 220000.0, "2-Develop")
    assert (won.status, won.amount) == ("won", 42000.0)


def test_zoho_ids_lose_their_export_prefix() -> None:
    batches, _, _ = map_file(DATA / "zoho" / "Calls.csv", Kind.INTERACTIONS, "zoho")
    call = batches[0].interactions[0]
    assert call.id == "src:5725767000000500001"
    assert call.customer_source_id == "5725767000000200002"
    assert call.deal_id == "src:5725767000000400002"  # Related To with $se_module Deals
    assert (call.direction, call.duration_seconds) == ("outbound", 870)


def test_generic_layout_reads_canonical_columns(tmp_path: Path) -> None:
    contacts = write(
        tmp_path / "contacts.csv",
        "id,email,firstName,phone,account_id,user_id,plan\n"
        "c1,a@x.example,Ana,+1 415 555 0101,a1,u1,pro\n",
    )
    (batch,), rejects, _ = map_file(contacts, Kind.CONTACTS, None)
    assert not rejects
    (customer,) = batch.customers
    assert {(i.type, i.value) for i in customer.identifiers} == {
        ("email", "a@x.example"),
        ("phone", "+1 415 555 0101"),
        ("user_id", "u1"),
    }
    assert customer.traits["plan"] == "pro"  # unmapped columns are kept as traits
    assert batch.memberships[0].account_id == "src:a1"
    interactions = write(
        tmp_path / "i.csv",
        "id,contact_id,type,occurred_at\ni1,c1,call,2024-01-01\ni2,c1,fax,2024-01-01\n",
    )
    batches, rejects, _ = map_file(interactions, Kind.INTERACTIONS, None)
    assert batches[0].interactions[0].type == "call"
    assert rejects == [(2, "type: unknown activity type 'fax'")]


def test_a_file_without_the_id_column_is_refused_before_any_row(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "Email,Name\na@x.example,Ana\n")
    with pytest.raises(LayoutError, match="no id column"):
        map_file(path, Kind.CONTACTS, "salesforce")
    with pytest.raises(LayoutError, match="no stage-changes"):
        Mapper(Kind.STAGE_CHANGES, PRESETS["zoho"], ImportContext("s")).choose_layout(["Id"])


def test_deleted_records_are_skipped() -> None:
    mapper = Mapper(Kind.CONTACTS, PRESETS["salesforce"], ImportContext("s"))
    assert len(mapper.map({"Id": "0035g00000Ana01AAB", "IsDeleted": "true"})) == 0


def test_combine_writes_each_owner_once_with_what_rows_know() -> None:
    def rows() -> Iterator[WriteBatch]:
        yield WriteBatch(owners=(OwnerIn("s:o1"),))
        yield WriteBatch(owners=(OwnerIn("s:o1", "Jane Doe"),))
        yield WriteBatch(owners=(OwnerIn("s:o2", None, "rep@x.example"),))

    assert combine(rows()).owners == (
        OwnerIn("s:o1", "Jane Doe"),
        OwnerIn("s:o2", None, "rep@x.example"),
    )
