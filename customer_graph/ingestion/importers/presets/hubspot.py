"""HubSpot: contacts, companies, deals (with stage history) and engagements.

Two shapes of each: the CSV that "Export" in HubSpot writes (property labels: `Record ID`,
`First Name`, `Associated Company IDs`…) and JSONL of the API (internal names: `hs_object_id`,
`firstname`, `properties.email`…; v1 engagements as `engagement.*`, `associations.*`,
`metadata.*`). A deals export carries its stage history in `Date entered "<stage> (<pipeline>)"`
columns (`hs_date_entered_<stage>` in the API): one stage change per filled column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from customer_graph.ingestion.importers.layouts import Kind, Layout, Preset, RowView


def clean_id(value: str) -> str:
    value = value.strip()
    # Spreadsheets turn numeric ids into floats (`51234567801.0`).
    return value[:-2] if value.endswith(".0") and value[:-2].isdigit() else value


def _p(*names: str) -> tuple[str, ...]:
    """Export labels plus the API's internal names, bare and under `properties.`."""
    out: list[str] = []
    for name in names:
        out.append(name)
        if name == name.lower() and " " not in name:
            out.append(f"properties.{name}")
    return tuple(out)


_ENTERED_LABEL = re.compile(r'^date entered\s+["“]?(?P<stage>.+?)["”]?\s*$', re.IGNORECASE)
_ENTERED_API = re.compile(r"^(?:properties\.)?hs_date_entered_(?P<stage>.+)$", re.IGNORECASE)
_PIPELINE_SUFFIX = re.compile(r"\s*\([^()]*\)$")


def stage_of_column(column: str) -> str | None:
    """`Date entered "Closed Won (Sales Pipeline)"` -> `Closed Won`; `hs_date_entered_x` -> x."""
    match = _ENTERED_LABEL.match(column)
    if match:
        return _PIPELINE_SUFFIX.sub("", match.group("stage")).strip() or None
    match = _ENTERED_API.match(column)
    return match.group("stage") if match else None


def _stage_history(view: RowView) -> Mapping[str, Any]:
    history: list[tuple[str, str]] = []
    for column in view.matching("stage_entered"):
        stage = stage_of_column(column)
        value = view.cell(column)
        if stage and value:
            history.append((stage, value))
    return {"stage_history": history}


_STAGE_PATTERNS = {"stage_entered": r"^(date entered\s|(properties\.)?hs_date_entered_)"}

CONTACTS = Layout(
    "HubSpot contacts",
    Kind.CONTACTS,
    {
        "id": ("Record ID", "Contact ID", *_p("hs_object_id"), "vid", "id"),
        "first_name": ("First Name", *_p("firstname")),
        "last_name": ("Last Name", *_p("lastname")),
        "email": ("Email", *_p("email")),
        "email_2": ("Additional email addresses", *_p("hs_additional_emails")),
        "phone": ("Phone Number", *_p("phone")),
        "mobile_phone": ("Mobile Phone Number", *_p("mobilephone")),
        "title": ("Job Title", *_p("jobtitle")),
        "company": ("Company Name", *_p("company")),
        "account_ids": (
            "Associated Company IDs (Primary)",
            "Associated Company IDs",
            "Associated Company ID",
            "Primary Associated Company ID",
            *_p("associatedcompanyid"),
        ),
        "website": ("Website URL", *_p("website")),
        "lifecycle_stage": ("Lifecycle Stage", *_p("lifecyclestage")),
        "lead_source": ("Original Source", *_p("hs_analytics_source")),
        "street": ("Street Address", *_p("address")),
        "city": ("City", *_p("city")),
        "state": ("State/Region", *_p("state")),
        "postal_code": ("Postal Code", *_p("zip")),
        "country": ("Country/Region", *_p("country")),
        "created_at": ("Create Date", *_p("createdate"), "createdAt"),
        "updated_at": ("Last Modified Date", *_p("lastmodifieddate"), "updatedAt"),
        "is_deleted": ("archived",),
    },
    id_type="hubspot_contact_id",
    clean_id=clean_id,
)

COMPANIES = Layout(
    "HubSpot companies",
    Kind.ACCOUNTS,
    {
        "id": ("Record ID", "Company ID", *_p("hs_object_id"), "companyId", "id"),
        "name": ("Company name", "Name", *_p("name")),
        "domain": ("Company Domain Name", *_p("domain")),
        "website": ("Website URL", *_p("website")),
        "phone": ("Phone Number", *_p("phone")),
        "industry": ("Industry", *_p("industry")),
        "type": ("Type", *_p("type")),
        "employees": ("Number of Employees", *_p("numberofemployees")),
        "annual_revenue": ("Annual Revenue", *_p("annualrevenue")),
        "description": ("Description", *_p("description")),
        "street": ("Street Address", *_p("address")),
        "city": ("City", *_p("city")),
        "state": ("State/Region", *_p("state")),
        "postal_code": ("Postal Code", *_p("zip")),
        "country": ("Country/Region", *_p("country")),
        "owner_id": _p("hubspot_owner_id"),
        "owner_name": ("Company owner",),
        "created_at": ("Create Date", *_p("createdate"), "createdAt"),
        "updated_at": ("Last Modified Date", *_p("hs_lastmodifieddate"), "updatedAt"),
        "is_deleted": ("archived",),
    },
    clean_id=clean_id,
)

_DEAL_ID = ("Record ID", "Deal ID", *_p("hs_object_id"), "dealId", "id")

DEALS = Layout(
    "HubSpot deals",
    Kind.DEALS,
    {
        "id": _DEAL_ID,
        "name": ("Deal Name", *_p("dealname")),
        "stage": ("Deal Stage", *_p("dealstage")),
        "pipeline": ("Pipeline", *_p("pipeline")),
        "amount": ("Amount", *_p("amount")),
        "currency": ("Currency", "Deal currency code", *_p("deal_currency_code")),
        "close_date": ("Close Date", *_p("closedate")),
        "is_closed": ("Is Closed", *_p("hs_is_closed")),
        "is_won": ("Is Closed Won", *_p("hs_is_closed_won")),
        "probability": ("Deal probability", *_p("hs_deal_stage_probability")),
        "type": ("Deal Type", *_p("dealtype")),
        "account_ids": (
            "Associated Company IDs (Primary)",
            "Associated Company IDs",
            "Associated Company ID",
            "associations.companyIds",
        ),
        "contact_ids": (
            "Associated Contact IDs",
            "Associated Contact ID",
            "associations.contactIds",
        ),
        "owner_id": _p("hubspot_owner_id"),
        "owner_name": ("Deal owner",),
        "created_at": ("Create Date", *_p("createdate"), "createdAt"),
        "updated_at": ("Last Modified Date", *_p("hs_lastmodifieddate"), "updatedAt"),
        "is_deleted": ("archived",),
    },
    patterns=_STAGE_PATTERNS,
    clean_id=clean_id,
    derive=_stage_history,
)

DEAL_STAGES = Layout(
    "HubSpot deals (stage history)",
    Kind.STAGE_CHANGES,
    {"deal_id": _DEAL_ID, "is_deleted": ("archived",)},
    patterns=_STAGE_PATTERNS,
    clean_id=clean_id,
    derive=_stage_history,
)


_TYPE_HINTS = ("call", "meeting", "note", "email", "task")


def _engagement(view: RowView) -> Mapping[str, Any]:
    derived: dict[str, Any] = {}
    kind = (view.text("type") or "").casefold()
    if not kind:
        # A per-type export (calls, meetings…) has no type column; its columns say the type.
        labels = f"{view.label('subject')} {view.label('body')}".casefold()
        kind = next((hint for hint in _TYPE_HINTS if hint in labels), "")
        if kind:
            derived["type"] = kind
    if view.text("direction") is None and kind in ("incoming_email", "email"):
        derived["direction"] = "inbound" if kind == "incoming_email" else "outbound"
    return derived


ENGAGEMENTS = Layout(
    "HubSpot engagements",
    Kind.INTERACTIONS,
    {
        "id": ("engagement.id", "Activity ID", "Record ID", *_p("hs_object_id"), "id"),
        "type": ("engagement.type", "Activity type", "Engagement type", *_p("hs_engagement_type")),
        "occurred_at": (
            "metadata.startTime",
            "engagement.timestamp",
            "Activity date",
            *_p("hs_timestamp"),
            "engagement.createdAt",
            "Create Date",
        ),
        "ended_at": ("metadata.endTime", *_p("hs_meeting_end_time")),
        "contact_ids": (
            "associations.contactIds",
            "Associated Contact IDs",
            "Associated Contact ID",
        ),
        "account_id": ("associations.companyIds", "Associated Company IDs"),
        "deal_id": ("associations.dealIds", "Associated Deal IDs"),
        "subject": (
            "metadata.subject",
            "metadata.title",
            "Subject",
            "Call Title",
            "Meeting name",
            "Email subject",
            *_p("hs_call_title", "hs_meeting_title", "hs_email_subject", "hs_task_subject"),
        ),
        "body": (
            "metadata.body",
            "metadata.text",
            "Body",
            "Call notes",
            "Note body",
            "Meeting description",
            "Email body",
            *_p("hs_call_body", "hs_note_body", "hs_meeting_body", "hs_email_text"),
        ),
        "duration_ms": ("metadata.durationMilliseconds", *_p("hs_call_duration")),
        "direction": ("Call direction", *_p("hs_call_direction")),
        "status": ("metadata.status", "Call status", "Task status", *_p("hs_call_status")),
        "location": ("metadata.location", *_p("hs_meeting_location")),
        "owner_id": ("engagement.ownerId", *_p("hubspot_owner_id")),
        "owner_name": ("Activity assigned to", "Assigned to"),
        "created_at": ("engagement.createdAt", "Create Date"),
    },
    clean_id=clean_id,
    derive=_engagement,
    type_values={
        "call": "call",
        "email": "email",
        "incoming_email": "email",
        "forwarded_email": "email",
        "meeting": "meeting",
        "note": "note",
        "task": "task",
    },
    direction_values={"inbound": "inbound", "outbound": "outbound"},
)

HUBSPOT = Preset("hubspot", (CONTACTS, COMPANIES, DEALS, DEAL_STAGES, ENGAGEMENTS))
