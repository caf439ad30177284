"""Salesforce: Contact (and Lead), Account, Opportunity, OpportunityHistory, Task and Event.

Column names are the objects' API field names, as Data Loader, Data Export and the Bulk API
write them; a few report labels (`Contact ID`, `First Name`) are accepted too. 15-character
record ids (reports) are turned into their 18-character form (API), so both name one record.
`WhatId` is routed by its key prefix: 006 is an opportunity, 001 an account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customer_graph.ingestion.importers.convert import salesforce_id18
from customer_graph.ingestion.importers.layouts import Kind, Layout, Preset, RowView, related


def clean_id(value: str) -> str:
    return salesforce_id18(value.strip())


def _what(ref: str) -> str | None:
    return {"006": "deal_id", "001": "account_id"}.get(ref[:3])


def _activity(view: RowView) -> Mapping[str, Any]:
    return related(view, {}, _what)


_PERSON = {
    "first_name": ("FirstName", "First Name"),
    "last_name": ("LastName", "Last Name"),
    "name": ("Name", "Full Name"),
    "email": ("Email",),
    "phone": ("Phone",),
    "mobile_phone": ("MobilePhone", "Mobile"),
    "title": ("Title",),
    "lead_source": ("LeadSource", "Lead Source"),
    "description": ("Description",),
    "created_at": ("CreatedDate", "Created Date"),
    "updated_at": ("LastModifiedDate", "Last Modified Date", "SystemModstamp"),
    "is_deleted": ("IsDeleted",),
}

CONTACT = Layout(
    "Salesforce Contact",
    Kind.CONTACTS,
    {
        **_PERSON,
        "id": ("Id", "Contact ID", "ContactId"),
        "home_phone": ("HomePhone",),
        "other_phone": ("OtherPhone",),
        "department": ("Department",),
        "account_ids": ("AccountId", "Account ID"),
        "company": ("Account.Name", "Account Name"),
        "street": ("MailingStreet",),
        "city": ("MailingCity",),
        "state": ("MailingState",),
        "postal_code": ("MailingPostalCode",),
        "country": ("MailingCountry",),
        "birthdate": ("Birthdate",),
    },
    signature=("AccountId", "MailingCity", "Birthdate", "Department", "ReportsToId"),
    id_type="salesforce_contact_id",
    clean_id=clean_id,
)

LEAD = Layout(
    "Salesforce Lead",
    Kind.CONTACTS,
    {
        **_PERSON,
        "id": ("Id", "Lead ID"),
        "company": ("Company",),
        "website": ("Website",),
        "street": ("Street",),
        "city": ("City",),
        "state": ("State",),
        "postal_code": ("PostalCode",),
        "country": ("Country",),
    },
    signature=("Company", "IsConverted", "ConvertedContactId", "Status"),
    id_type="salesforce_lead_id",
    clean_id=clean_id,
)

ACCOUNT = Layout(
    "Salesforce Account",
    Kind.ACCOUNTS,
    {
        "id": ("Id", "Account ID"),
        "name": ("Name", "Account Name"),
        "website": ("Website",),
        "phone": ("Phone",),
        "industry": ("Industry",),
        "type": ("Type",),
        "employees": ("NumberOfEmployees", "Employees"),
        "annual_revenue": ("AnnualRevenue", "Annual Revenue"),
        "account_number": ("AccountNumber",),
        "parent_id": ("ParentId",),
        "description": ("Description",),
        "street": ("BillingStreet",),
        "city": ("BillingCity",),
        "state": ("BillingState",),
        "postal_code": ("BillingPostalCode",),
        "country": ("BillingCountry",),
        "owner_id": ("OwnerId",),
        "owner_name": ("Owner.Name", "Account Owner"),
        "created_at": ("CreatedDate",),
        "updated_at": ("LastModifiedDate", "SystemModstamp"),
        "is_deleted": ("IsDeleted",),
    },
    clean_id=clean_id,
)

OPPORTUNITY = Layout(
    "Salesforce Opportunity",
    Kind.DEALS,
    {
        "id": ("Id", "Opportunity ID"),
        "name": ("Name", "Opportunity Name"),
        "account_ids": ("AccountId", "Account ID"),
        "contact_ids": ("ContactId",),
        "amount": ("Amount",),
        "currency": ("CurrencyIsoCode", "Opportunity Currency"),
        "stage": ("StageName", "Stage"),
        "is_closed": ("IsClosed", "Closed"),
        "is_won": ("IsWon", "Won"),
        "close_date": ("CloseDate", "Close Date"),
        "probability": ("Probability", "Probability (%)"),
        "type": ("Type",),
        "lead_source": ("LeadSource",),
        "owner_id": ("OwnerId",),
        "owner_name": ("Owner.Name", "Opportunity Owner"),
        "created_at": ("CreatedDate", "Created Date"),
        "updated_at": ("LastModifiedDate",),
        "is_deleted": ("IsDeleted",),
    },
    clean_id=clean_id,
)

OPPORTUNITY_HISTORY = Layout(
    "Salesforce OpportunityHistory",
    Kind.STAGE_CHANGES,
    {
        "deal_id": ("OpportunityId", "Opportunity ID"),
        "to_stage": ("StageName", "To Stage"),
        "from_stage": ("FromOpportunityStageName", "From Stage"),
        "changed_at": ("CreatedDate", "Last Modified"),
        "amount": ("Amount",),
        "is_deleted": ("IsDeleted",),
    },
    clean_id=clean_id,
)

_ACTIVITY = {
    "id": ("Id", "Activity ID"),
    "contact_id": ("WhoId", "Name ID"),
    "related_id": ("WhatId",),
    "account_id": ("AccountId",),
    "subject": ("Subject",),
    "body": ("Description", "Comments"),
    "owner_id": ("OwnerId",),
    "owner_name": ("Owner.Name", "Assigned"),
    "created_at": ("CreatedDate",),
    "is_deleted": ("IsDeleted",),
}

TASK = Layout(
    "Salesforce Task",
    Kind.INTERACTIONS,
    {
        **_ACTIVITY,
        "type": ("TaskSubtype", "Type"),
        "occurred_at": ("CompletedDateTime", "ActivityDate", "CreatedDate"),
        "direction": ("CallType",),
        "duration_seconds": ("CallDurationInSeconds",),
        "status": ("Status",),
    },
    signature=("TaskSubtype", "CallDurationInSeconds", "CallType", "Status", "CompletedDateTime"),
    clean_id=clean_id,
    derive=_activity,
    type_values={
        "call": "call",
        "email": "email",
        "listemail": "email",
        "meeting": "meeting",
        "task": "task",
        "cadence": "task",
        "linkedin": "task",
        "other": "task",
        "event": "meeting",
    },
    default_type="task",
    direction_values={"inbound": "inbound", "outbound": "outbound"},
)

EVENT = Layout(
    "Salesforce Event",
    Kind.INTERACTIONS,
    {
        **_ACTIVITY,
        "type": ("EventSubtype", "Type"),
        "occurred_at": ("StartDateTime", "ActivityDateTime", "ActivityDate", "CreatedDate"),
        "ended_at": ("EndDateTime",),
        "duration_minutes": ("DurationInMinutes",),
        "location": ("Location",),
    },
    signature=("StartDateTime", "EndDateTime", "DurationInMinutes", "EventSubtype", "Location"),
    clean_id=clean_id,
    derive=_activity,
    type_values={"event": "meeting", "meeting": "meeting", "call": "call", "email": "email"},
    default_type="meeting",
)

SALESFORCE = Preset(
    "salesforce",
    (CONTACT, LEAD, ACCOUNT, OPPORTUNITY, OPPORTUNITY_HISTORY, TASK, EVENT),
)
