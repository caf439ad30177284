"""Dynamics 365 (Dataverse): contact, account, opportunity, phonecall, email and appointment.

Column names are the tables' logical names, as Dataverse exports (Synapse Link, data export) and
the Web API write them; lookups come as `parentcustomerid`/`ownerid` with `...name` companions,
or as the Web API's `_parentcustomerid_value` with their annotations. Record ids are GUIDs,
compared in lower case without braces. Activities belong to the contact they are regarding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customer_graph.ingestion.importers.layouts import Kind, Layout, Preset, RowView, related


def clean_id(value: str) -> str:
    return value.strip().strip("{}").lower()


def _lookup(name: str) -> tuple[str, ...]:
    """A lookup column as exports and the Web API spell it."""
    return (name, f"_{name}_value")


def _lookup_name(name: str) -> tuple[str, ...]:
    return (f"{name}name", f"_{name}_value@OData.Community.Display.V1.FormattedValue")


def _lookup_type(name: str) -> tuple[str, ...]:
    """Where the table of a polymorphic lookup is (`regardingobjecttypecode`, …)."""
    return (
        f"{name.removesuffix('id')}typecode",
        f"{name}type",
        f"{name}typecode",
        f"{name}_entitytype",
        f"_{name}_value@Microsoft.Dynamics.CRM.lookuplogicalname",
    )


_OWNER = {"owner_id": _lookup("ownerid"), "owner_name": _lookup_name("ownerid")}
_AUDIT = {"created_at": ("createdon",), "updated_at": ("modifiedon",)}
# Object type codes of the standard tables, as older exports write them.
_TYPE_CODES = {"1": "account", "2": "contact", "3": "opportunity", "4": "lead"}


def _contact(view: RowView) -> Mapping[str, Any]:
    kind = (view.text("account_type") or "").casefold()
    if _TYPE_CODES.get(kind, kind) in ("contact", "lead"):
        return {"account_ids": []}  # the parent customer is a person, not an account
    return {}


CONTACT = Layout(
    "Dynamics 365 contact",
    Kind.CONTACTS,
    {
        "id": ("contactid",),
        "first_name": ("firstname",),
        "last_name": ("lastname",),
        "name": ("fullname",),
        "email": ("emailaddress1",),
        "email_2": ("emailaddress2",),
        "email_3": ("emailaddress3",),
        "phone": ("telephone1",),
        "mobile_phone": ("mobilephone",),
        "home_phone": ("telephone2",),
        "other_phone": ("telephone3",),
        "title": ("jobtitle",),
        "department": ("department",),
        "account_ids": _lookup("parentcustomerid"),
        "account_type": _lookup_type("parentcustomerid"),
        "company": _lookup_name("parentcustomerid"),
        "website": ("websiteurl",),
        "birthdate": ("birthdate",),
        "description": ("description",),
        "street": ("address1_line1",),
        "city": ("address1_city",),
        "state": ("address1_stateorprovince",),
        "postal_code": ("address1_postalcode",),
        "country": ("address1_country",),
        **_AUDIT,
    },
    id_type="dynamics_contact_id",
    clean_id=clean_id,
    derive=_contact,
)

ACCOUNT = Layout(
    "Dynamics 365 account",
    Kind.ACCOUNTS,
    {
        "id": ("accountid",),
        "name": ("name",),
        "website": ("websiteurl",),
        "email": ("emailaddress1",),
        "phone": ("telephone1",),
        "industry": ("industrycode",),
        "employees": ("numberofemployees",),
        "annual_revenue": ("revenue",),
        "account_number": ("accountnumber",),
        "parent_id": _lookup("parentaccountid"),
        "description": ("description",),
        "street": ("address1_line1",),
        "city": ("address1_city",),
        "state": ("address1_stateorprovince",),
        "postal_code": ("address1_postalcode",),
        "country": ("address1_country",),
        **_OWNER,
        **_AUDIT,
    },
    clean_id=clean_id,
)

OPPORTUNITY = Layout(
    "Dynamics 365 opportunity",
    Kind.DEALS,
    {
        "id": ("opportunityid",),
        "name": ("name",),
        "amount": ("estimatedvalue",),
        "amount_won": ("actualvalue",),
        "currency": ("isocurrencycode", "currencycode"),
        "stage": ("stepname", "salesstage"),
        "status": ("statecode",),
        "close_date": ("actualclosedate", "estimatedclosedate"),
        "probability": ("closeprobability",),
        "account_ids": (*_lookup("parentaccountid"), *_lookup("customerid")),
        "contact_ids": _lookup("parentcontactid"),
        **_OWNER,
        **_AUDIT,
    },
    clean_id=clean_id,
    status_values={"0": "open", "1": "won", "2": "lost"},
    stage_values={"0": "Qualify", "1": "Develop", "2": "Propose", "3": "Close"},
)


def _regarding(view: RowView) -> Mapping[str, Any]:
    by_type = {
        "contact": "contact_id",
        "lead": "contact_id",
        "account": "account_id",
        "opportunity": "deal_id",
    }
    by_type |= {code: by_type[name] for code, name in _TYPE_CODES.items()}
    return related(view, by_type)


_ACTIVITY = {
    "id": ("activityid",),
    "type": ("activitytypecode",),
    "related_id": _lookup("regardingobjectid"),
    "related_type": _lookup_type("regardingobjectid"),
    "subject": ("subject",),
    "body": ("description",),
    "duration_minutes": ("actualdurationminutes", "scheduleddurationminutes"),
    "direction": ("directioncode",),
    "status": ("statecode",),
    **_OWNER,
    **_AUDIT,
}
_TYPES = {"phonecall": "call", "email": "email", "appointment": "meeting", "task": "task"}
_DIRECTIONS = {
    "true": "outbound",
    "1": "outbound",
    "outgoing": "outbound",
    "false": "inbound",
    "0": "inbound",
    "incoming": "inbound",
}


def _activity(name: str, default_type: str, signature: tuple[str, ...], **columns: Any) -> Layout:
    return Layout(
        f"Dynamics 365 {name}",
        Kind.INTERACTIONS,
        {**_ACTIVITY, **columns},
        signature=signature,
        clean_id=clean_id,
        derive=_regarding,
        type_values=_TYPES,
        default_type=default_type,
        direction_values=_DIRECTIONS,
    )


PHONECALL = _activity(
    "phonecall",
    "call",
    ("phonenumber",),
    occurred_at=("actualstart", "scheduledstart", "actualend", "createdon"),
    ended_at=("actualend",),
)
EMAIL = _activity(
    "email",
    "email",
    ("sender", "torecipients", "senton"),
    occurred_at=("senton", "actualstart", "actualend", "createdon"),
)
APPOINTMENT = _activity(
    "appointment",
    "meeting",
    ("location", "isalldayevent", "requiredattendees"),
    occurred_at=("scheduledstart", "actualstart", "createdon"),
    ended_at=("scheduledend", "actualend"),
    location=("location",),
)

DYNAMICS = Preset("dynamics", (CONTACT, ACCOUNT, OPPORTUNITY, PHONECALL, EMAIL, APPOINTMENT))
