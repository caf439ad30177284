"""The generic layout (no --preset): columns named like the canonical fields.

`snake_case`, `camelCase` and a few plain-English spellings are accepted (`first_name`,
`firstName`, `First Name`). Interactions name their type (`call`, `email`, `meeting`, `note`,
`task`) in a `type` column.
"""

from __future__ import annotations

from customer_graph.ingestion.importers.layouts import FIELDS, Kind, Layout, Preset


def _spellings(name: str) -> tuple[str, ...]:
    words = name.split("_")
    camel = words[0] + "".join(w.title() for w in words[1:])
    return tuple(dict.fromkeys((name, camel, " ".join(words))))


def _columns(kind: Kind, **extra: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    columns = {name: _spellings(name) for name in sorted(FIELDS[kind])}
    for name, aliases in extra.items():
        columns[name] = columns[name] + aliases
    return columns


GENERIC = Preset(
    "generic",
    (
        Layout(
            "contacts",
            Kind.CONTACTS,
            _columns(
                Kind.CONTACTS,
                id=("source_id", "sourceId", "record_id", "contact_id"),
                account_ids=("account_id", "accountId"),
                mobile_phone=("mobile",),
            ),
        ),
        Layout("accounts", Kind.ACCOUNTS, _columns(Kind.ACCOUNTS, id=("account_id",))),
        Layout(
            "deals",
            Kind.DEALS,
            _columns(
                Kind.DEALS,
                id=("deal_id",),
                account_ids=("account_id", "accountId"),
                contact_ids=("contact_id", "contactId"),
            ),
        ),
        Layout(
            "stage changes", Kind.STAGE_CHANGES, _columns(Kind.STAGE_CHANGES, to_stage=("stage",))
        ),
        Layout(
            "interactions",
            Kind.INTERACTIONS,
            _columns(Kind.INTERACTIONS, id=("interaction_id",), occurred_at=("timestamp",)),
        ),
    ),
)
