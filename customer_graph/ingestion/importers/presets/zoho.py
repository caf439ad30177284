"""Zoho CRM: Contacts, Accounts, Deals, Calls and Meetings.

Column names are the field labels that Zoho's export writes (`Record Id`, `First Name`,
`Account Name`…); lookups carry their id in a `<label>.id` column (`Account Name.id`), or in the
older `ACCOUNTID`/`CONTACTID`/`SMOWNERID` columns. JSONL from the API (`First_Name`,
`Account_Name.id`…) works too. Exported ids carry a `zcrm_` prefix, which is dropped so they
equal the API's ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customer_graph.ingestion.importers.layouts import Kind, Layout, Preset, RowView, related


def clean_id(value: str) -> str:
    value = value.strip()
    return value[5:] if value.lower().startswith("zcrm_") else value


def _f(label: str) -> tuple[str, ...]:
    """A field as the export labels it and as the API names it."""
    api = label.replace(" ", "_").replace("(", "").replace(")", "").replace("%", "")
    return (label, api) if api != label else (label,)


def _lookup_id(label: str, *old: str) -> tuple[str, ...]:
    api = label.replace(" ", "_")
    return (f"{label}.id", f"{api}.id", *old)


def _lookup_name(label: str) -> tuple[str, ...]:
    api = label.replace(" ", "_")
    return (label, f"{api}.name")


_ID = ("Record Id", "id")
_AUDIT = {"created_at": _f("Created Time"), "updated_at": _f("Modified Time")}


def _owner(label: str) -> dict[str, tuple[str, ...]]:
    return {
        "owner_id": (*_lookup_id(label, "SMOWNERID"), "Owner.id"),
        "owner_name": (*_lookup_name(label), "Owner.name"),
    }


CONTACTS = Layout(
    "Zoho Contacts",
    Kind.CONTACTS,
    {
        "id": (*_ID, "Contact Id", "CONTACTID"),
        "first_name": _f("First Name"),
        "last_name": _f("Last Name"),
        "name": _f("Full Name"),
        "email": _f("Email"),
        "email_2": _f("Secondary Email"),
        "phone": _f("Phone"),
        "mobile_phone": _f("Mobile"),
        "home_phone": _f("Home Phone"),
        "other_phone": _f("Other Phone"),
        "title": _f("Title"),
        "department": _f("Department"),
        "account_ids": _lookup_id("Account Name", "ACCOUNTID"),
        "company": _lookup_name("Account Name"),
        "lead_source": _f("Lead Source"),
        "birthdate": _f("Date of Birth"),
        "description": _f("Description"),
        "street": _f("Mailing Street"),
        "city": _f("Mailing City"),
        "state": _f("Mailing State"),
        "postal_code": _f("Mailing Zip"),
        "country": _f("Mailing Country"),
        **_AUDIT,
    },
    id_type="zoho_contact_id",
    clean_id=clean_id,
)

ACCOUNTS = Layout(
    "Zoho Accounts",
    Kind.ACCOUNTS,
    {
        "id": (*_ID, "Account Id", "ACCOUNTID"),
        "name": _f("Account Name"),
        "website": _f("Website"),
        "phone": _f("Phone"),
        "industry": _f("Industry"),
        "type": _f("Account Type"),
        "employees": _f("Employees"),
        "annual_revenue": _f("Annual Revenue"),
        "account_number": _f("Account Number"),
        "parent_id": _lookup_id("Parent Account"),
        "description": _f("Description"),
        "street": _f("Billing Street"),
        "city": _f("Billing City"),
        "state": _f("Billing State"),
        "postal_code": _f("Billing Code"),
        "country": _f("Billing Country"),
        **_owner("Account Owner"),
        **_AUDIT,
    },
    clean_id=clean_id,
)

DEALS = Layout(
    "Zoho Deals",
    Kind.DEALS,
    {
        "id": (*_ID, "Deal Id", "POTENTIALID"),
        "name": _f("Deal Name"),
        "amount": _f("Amount"),
        "currency": _f("Currency"),
        "stage": _f("Stage"),
        "pipeline": _f("Pipeline"),
        "close_date": _f("Closing Date"),
        "probability": _f("Probability (%)"),
        "type": _f("Type"),
        "lead_source": _f("Lead Source"),
        "account_ids": _lookup_id("Account Name", "ACCOUNTID"),
        "contact_ids": _lookup_id("Contact Name", "CONTACTID"),
        **_owner("Deal Owner"),
        **_AUDIT,
    },
    clean_id=clean_id,
)


def _related(view: RowView) -> Mapping[str, Any]:
    return related(
        view,
        {
            "deals": "deal_id",
            "potentials": "deal_id",
            "accounts": "account_id",
            "contacts": "contact_id",
            "leads": "contact_id",
        },
    )


_ACTIVITY = {
    "contact_id": (*_lookup_id("Contact Name", "CONTACTID"), "Who_Id.id"),
    "related_id": (*_lookup_id("Related To", "SEID"), "What_Id.id"),
    "related_type": ("$se_module", "SEMODULE", "Related To.module", "What_Id.module"),
    "subject": _f("Subject"),
    "body": _f("Description"),
    **_AUDIT,
}

CALLS = Layout(
    "Zoho Calls",
    Kind.INTERACTIONS,
    {
        **_ACTIVITY,
        "id": (*_ID, "Call Id", "ACTIVITYID"),
        "occurred_at": (*_f("Call Start Time"), *_f("Created Time")),
        "duration_seconds": _f("Call Duration (in seconds)"),
        "duration_text": _f("Call Duration"),
        "direction": _f("Call Type"),
        "status": (*_f("Call Result"), *_f("Call Status"), *_f("Call Purpose")),
        **_owner("Call Owner"),
    },
    signature=("Call Start Time", "Call Type", "Call Duration", "Call_Start_Time"),
    clean_id=clean_id,
    derive=_related,
    default_type="call",
    direction_values={"outbound": "outbound", "inbound": "inbound", "missed": "inbound"},
)

MEETINGS = Layout(
    "Zoho Meetings",
    Kind.INTERACTIONS,
    {
        **_ACTIVITY,
        "id": (*_ID, "Meeting Id", "Event Id", "ACTIVITYID"),
        "subject": (*_f("Title"), "Meeting Title", *_f("Event Title"), *_f("Subject")),
        "occurred_at": ("From", *_f("Start DateTime"), *_f("Created Time")),
        "ended_at": ("To", *_f("End DateTime")),
        "location": _f("Location"),
        **_owner("Host"),
    },
    signature=("From", "To", "Location", "Host", "Start_DateTime", "Event_Title"),
    clean_id=clean_id,
    derive=_related,
    default_type="meeting",
)

ZOHO = Preset("zoho", (CONTACTS, ACCOUNTS, DEALS, CALLS, MEETINGS))
