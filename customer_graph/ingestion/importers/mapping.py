"""From a row of an export to the write path's records: one builder per kind, and the Mapper.

A `Mapper` picks the layout (layouts.py) that fits the file's columns and turns each row into a
`WriteBatch` fragment, or raises `RowError` with the reason the row is rejected. Nothing is
written for a rejected row.

Ids: a record keeps the source's own id (`Customer.key = source:id`); deals, accounts,
interactions and owners are keyed `source:id`, so that rerunning an import finds the same nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

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
)
from customer_graph.ingestion.importers import convert
from customer_graph.ingestion.importers.layouts import (
    ADDRESS_FIELDS,
    CHANNEL_OF_TYPE,
    DEAL_STATUSES,
    DIRECTIONS,
    INTERACTION_TYPES,
    ImportContext,
    Kind,
    Layout,
    LayoutError,
    Preset,
    Resolved,
    Resolver,
    RowError,
    RowView,
    norm,
)

__all__ = [
    "BUILDERS",
    "ImportContext",
    "Kind",
    "LayoutError",
    "Mapper",
    "RowError",
    "build_account",
    "build_contact",
    "build_deal",
    "build_interaction",
    "build_stage_change",
]


class Mapper:
    """Maps the rows of one file; picks the layout from the file's columns on the first row."""

    def __init__(self, kind: Kind, preset: Preset, context: ImportContext) -> None:
        self.kind = kind
        self.preset = preset
        self.context = context
        self.layout: Layout | None = None
        self._resolver: Resolver | None = None
        self._build = BUILDERS[kind]
        self._previous_change: StageChangeIn | None = None

    def choose_layout(self, columns: Iterable[str], *, check: bool = True) -> Layout:
        """Pick the layout for these columns; with `check`, fail if a required one is missing.

        A CSV header is checked (a wrong --kind or --preset fails at once); the keys of a JSONL
        row are not, since JSON objects often leave out empty fields.
        """
        columns = tuple(columns)
        layout = self.preset.choose(self.kind, columns)
        self.layout = layout
        self._resolver = Resolver(layout)
        if check:
            _check_required(layout, self._resolver.resolve(columns))
        return layout

    def map(self, values: Mapping[str, Any]) -> WriteBatch:
        """The records of one row; raises RowError if the row is rejected."""
        if self._resolver is None:
            self.choose_layout(values.keys(), check=False)
        assert self._resolver is not None and self.layout is not None
        view = RowView(values, self._resolver.resolve(tuple(values)), self.layout, self.context)
        if view.flag("is_deleted"):
            return WriteBatch()  # a deleted record in an "export all" file: nothing to write
        if self.layout.derive is not None:
            view.overrides.update(self.layout.derive(view))
        batch = self._build(view)
        if self.kind is Kind.STAGE_CHANGES:
            batch = self._link_stage_changes(batch)
        return batch

    def _link_stage_changes(self, batch: WriteBatch) -> WriteBatch:
        """Infer `from_stage` from the previous row of the same deal and drop non-changes.

        Salesforce's OpportunityHistory has a row for every change of amount, close date or
        stage; a row whose stage equals the one before it is not a stage change. Only the
        previous row is kept, so this works on files sorted by deal (as exports are) and does
        nothing otherwise, in constant memory.
        """
        kept: list[StageChangeIn] = []
        for change in batch.stage_changes:
            previous = self._previous_change
            follows = (
                previous is not None
                and previous.deal_id == change.deal_id
                and previous.changed_at <= change.changed_at
            )
            if follows and previous is not None and change.from_stage is None:
                change = StageChangeIn(
                    change.deal_id, change.to_stage, change.changed_at, previous.to_stage
                )
            if change.from_stage == change.to_stage:
                self._previous_change = change
                continue
            self._previous_change = change
            kept.append(change)
        return WriteBatch(stage_changes=tuple(kept))


REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.CONTACTS: ("id",),
    Kind.ACCOUNTS: ("id",),
    Kind.DEALS: ("id",),
    Kind.STAGE_CHANGES: ("deal_id",),
    Kind.INTERACTIONS: ("id",),
}


def _check_required(layout: Layout, resolved: Resolved) -> None:
    missing = [name for name in REQUIRED[layout.kind] if name not in resolved.fields]
    if missing:
        wanted = " or ".join(repr(c) for c in layout.columns.get(missing[0], (missing[0],)))
        raise LayoutError(f"{layout.name}: the file has no {missing[0]} column ({wanted})")


# Builders: one per kind, from a row view to the records of that row.


def _owner(view: RowView) -> OwnerIn | None:
    owner_id = view.id("owner_id")
    name = view.text("owner_name")
    email: str | None = None
    if name and "@" in name:
        email, name = name, None
    ctx = view.context
    if owner_id:
        return OwnerIn(ctx.ref(owner_id), name, email)
    if email:
        return OwnerIn(ctx.ref(f"owner:{email.casefold()}"), name, email)
    if name:
        return OwnerIn(ctx.ref(f"owner:{norm(name)}"), name, None)
    return None


def _address(view: RowView) -> dict[str, str]:
    keys = {"postal_code": "postalCode"}
    address: dict[str, str] = {}
    for name in ADDRESS_FIELDS:
        value = view.text(name)
        if value is not None:
            address[keys.get(name, name)] = value
    return address


def _put(traits: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != {}:
        traits[key] = value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _iso_date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def build_contact(view: RowView) -> WriteBatch:
    ctx = view.context
    source_id = view.layout.clean_id(view.required("id", "record id"))
    first, last = view.text("first_name"), view.text("last_name")
    name = view.text("name") or " ".join(p for p in (first, last) if p) or None
    created, updated = view.datetime("created_at"), view.datetime("updated_at")
    traits: dict[str, Any] = view.extras() if ctx.extras else {}
    emails = [e for e in (view.text(f) for f in ("email", "email_2", "email_3")) if e]
    phones = [
        p
        for p in (view.text(f) for f in ("phone", "mobile_phone", "home_phone", "other_phone"))
        if p
    ]
    for key, value in (
        ("firstName", first),
        ("lastName", last),
        ("name", name),
        ("email", emails[0] if emails else None),
        ("phone", phones[0] if phones else None),
        ("mobilePhone", view.text("mobile_phone")),
        ("title", view.text("title")),
        ("department", view.text("department")),
        ("company", view.text("company")),
        ("website", view.text("website")),
        ("leadSource", view.text("lead_source")),
        ("lifecycleStage", view.text("lifecycle_stage")),
        ("birthday", _iso_date(view.datetime("birthdate"))),
        ("description", view.text("description")),
        ("address", _address(view)),
        ("createdAt", _iso(created)),
    ):
        _put(traits, key, value)
    identifiers: list[IdentifierIn] = []
    if view.layout.id_type:
        identifiers.append(IdentifierIn(view.layout.id_type, source_id))
    identifiers += [IdentifierIn("email", e) for e in emails]
    identifiers += [IdentifierIn("phone", p) for p in phones]
    user_id = view.text("user_id")
    if user_id:
        identifiers.append(IdentifierIn("user_id", user_id))
    customer = CustomerIn(
        source=ctx.source,
        source_id=source_id,
        traits=traits,
        identifiers=tuple(dict.fromkeys(identifiers)),
        seen_at=updated or created,
    )
    memberships = tuple(
        MembershipIn(
            source=ctx.source,
            source_id=source_id,
            account_id=ctx.ref(account_id),
            title=view.text("title"),
            primary=index == 0,
        )
        for index, account_id in enumerate(dict.fromkeys(view.ids("account_ids")))
    )
    return WriteBatch(customers=(customer,), memberships=memberships)


def build_account(view: RowView) -> WriteBatch:
    ctx = view.context
    account_id = view.layout.clean_id(view.required("id", "record id"))
    website = view.text("website")
    domain_text = view.text("domain") or website
    domain = convert.domain_of(domain_text) if domain_text else None
    owner = _owner(view)
    traits: dict[str, Any] = view.extras() if ctx.extras else {}
    parent = view.id("parent_id")
    for key, value in (
        ("website", website),
        ("phone", view.text("phone")),
        ("email", view.text("email")),
        ("industry", view.text("industry")),
        ("type", view.text("type")),
        ("employees", view.integer("employees")),
        ("annualRevenue", view.amount("annual_revenue")),
        ("accountNumber", view.text("account_number")),
        ("description", view.text("description")),
        ("parentId", ctx.ref(parent) if parent else None),
        ("address", _address(view)),
        ("createdAt", _iso(view.datetime("created_at"))),
        ("updatedAt", _iso(view.datetime("updated_at"))),
    ):
        _put(traits, key, value)
    account = AccountIn(
        id=ctx.ref(account_id),
        name=view.text("name"),
        domain=domain,
        owner_id=owner.id if owner else None,
        traits=traits,
        source=ctx.source,
    )
    return WriteBatch(accounts=(account,), owners=(owner,) if owner else ())


def _deal_status(view: RowView, stage: str | None) -> str:
    status = view.text("status")
    if status is not None:
        key = status.casefold()
        mapped = view.layout.status_values.get(key) or (key if key in DEAL_STATUSES else None)
        if mapped is None:
            raise RowError(f"{view.label('status')}: unknown deal status {status!r}")
        return mapped
    is_won, is_closed = view.flag("is_won"), view.flag("is_closed")
    if is_won:
        return "won"
    if is_closed:
        return "lost"
    if is_closed is False:
        return "open"
    return _status_of_stage(stage)


def _status_of_stage(stage: str | None) -> str:
    """Won or lost when the stage says so (`Closed Won`, `closedlost`…), else open."""
    words = (stage or "").casefold().replace("-", " ").replace("_", " ")
    if "won" in words.split() or words.replace(" ", "") == "closedwon":
        return "won"
    if "lost" in words.split() or words.replace(" ", "") == "closedlost":
        return "lost"
    return "open"


def _stage(view: RowView, name: str) -> str | None:
    stage = view.text(name)
    if stage is None:
        return None
    return view.layout.stage_values.get(stage.casefold(), stage)


def _stage_history(view: RowView, deal_id: str) -> list[StageChangeIn]:
    """Stage changes a deal row carries (HubSpot's `Date entered "<stage>"` columns)."""
    history = view.raw("stage_history") or []
    entered: list[tuple[datetime, str]] = []
    for stage, text in history:
        try:
            entered.append((convert.parse_datetime(text, view.context.timezone), stage))
        except ValueError as e:
            raise RowError(f'Date entered "{stage}": {e}') from None
    entered.sort()
    changes: list[StageChangeIn] = []
    previous: str | None = None
    for changed_at, stage in entered:
        changes.append(StageChangeIn(deal_id, stage, changed_at, previous))
        previous = stage
    return changes


def build_deal(view: RowView) -> WriteBatch:
    ctx = view.context
    deal_id = ctx.ref(view.layout.clean_id(view.required("id", "record id")))
    stage = _stage(view, "stage")
    status = _deal_status(view, stage)
    amount = view.amount("amount")
    won_amount = view.amount("amount_won")
    if status == "won" and won_amount is not None:
        amount = won_amount
    view.number("probability")  # validated; the graph model has no field for it
    close_date = view.datetime("closed_at") or view.datetime("close_date")
    owner = _owner(view)
    accounts = view.ids("account_ids")
    deal = DealIn(
        id=deal_id,
        name=view.text("name"),
        amount=amount,
        currency=(view.text("currency") or "").upper() or None,
        pipeline=view.text("pipeline"),
        stage=stage,
        status=status,
        created_at=view.datetime("created_at"),
        closed_at=close_date if status != "open" else None,
        owner_id=owner.id if owner else None,
        account_id=ctx.ref(accounts[0]) if accounts else None,
        contacts=tuple(
            DealContactIn(ctx.source, contact_id)
            for contact_id in dict.fromkeys(view.ids("contact_ids"))
        ),
        source=ctx.source,
    )
    return WriteBatch(
        deals=(deal,),
        stage_changes=tuple(_stage_history(view, deal_id)),
        owners=(owner,) if owner else (),
    )


def build_stage_change(view: RowView) -> WriteBatch:
    ctx = view.context
    deal_id = ctx.ref(view.layout.clean_id(view.required("deal_id", "deal id")))
    view.amount("amount")  # validates
    if view.raw("stage_history") is not None:
        return WriteBatch(stage_changes=tuple(_stage_history(view, deal_id)))
    to_stage = _stage(view, "to_stage")
    if to_stage is None:
        raise RowError(f"missing stage ({view.label('to_stage')})")
    changed_at = view.datetime("changed_at")
    if changed_at is None:
        raise RowError(f"missing change time ({view.label('changed_at')})")
    change = StageChangeIn(deal_id, to_stage, changed_at, _stage(view, "from_stage"))
    return WriteBatch(stage_changes=(change,))


def _interaction_type(view: RowView) -> str:
    value = view.text("type")
    layout = view.layout
    if value is not None:
        key = value.casefold()
        mapped = layout.type_values.get(key) or (key if key in INTERACTION_TYPES else None)
        if mapped is not None:
            return mapped
        if layout.default_type is None:
            raise RowError(f"{view.label('type')}: unknown activity type {value!r}")
    if layout.default_type is None:
        raise RowError(f"missing activity type ({view.label('type')})")
    return layout.default_type


def _direction(view: RowView) -> str | None:
    value = view.text("direction")
    if value is None:
        return None
    key = value.casefold()
    return view.layout.direction_values.get(key) or (key if key in DIRECTIONS else None)


def _duration(view: RowView, started: datetime) -> int | None:
    seconds = view.duration("duration_seconds")
    if seconds is not None:
        return seconds
    minutes = view.number("duration_minutes")
    if minutes is not None:
        return round(minutes * 60)
    millis = view.number("duration_ms")
    if millis is not None:
        return round(millis / 1000)
    text = view.duration("duration_text")
    if text is not None:
        return text
    ended = view.datetime("ended_at")
    if ended is not None and ended >= started:
        return round((ended - started).total_seconds())
    return None


def build_interaction(view: RowView) -> WriteBatch:
    ctx = view.context
    interaction_id = view.layout.clean_id(view.required("id", "activity id"))
    contacts = view.ids("contact_ids")
    contact = view.id("contact_id") or (contacts[0] if contacts else None)
    if contact is None:
        field = next(
            (f for f in ("contact_id", "contact_ids", "related_id") if f in view.layout.columns),
            "contact_id",
        )
        raise RowError(
            f"no contact: the activity names no contact it belongs to ({view.label(field)})"
        )
    kind = _interaction_type(view)
    occurred_at = view.datetime("occurred_at")
    if occurred_at is None:
        raise RowError(f"missing activity time ({view.label('occurred_at')})")
    properties: dict[str, Any] = view.extras() if ctx.extras else {}
    for key, value in (
        ("status", view.text("status")),
        ("location", view.text("location")),
        ("otherContactIds", [c for c in contacts if c != contact] or None),
    ):
        _put(properties, key, value)
    owner = _owner(view)
    # Engagements list their companies and deals; the first one is the interaction's.
    account = next(iter(view.ids("account_id")), None)
    deal = next(iter(view.ids("deal_id")), None)
    subject = view.text("subject")
    interaction = InteractionIn(
        id=ctx.ref(interaction_id),
        source=ctx.source,
        customer_source_id=contact,
        type=kind,
        occurred_at=occurred_at,
        name=view.text("name") or subject or kind,
        channel=view.text("channel") or CHANNEL_OF_TYPE.get(kind),
        direction=_direction(view),
        subject=subject,
        body=view.text("body"),
        duration_seconds=_duration(view, occurred_at),
        properties=properties,
        owner_id=owner.id if owner else None,
        account_id=ctx.ref(account) if account else None,
        deal_id=ctx.ref(deal) if deal else None,
    )
    return WriteBatch(interactions=(interaction,), owners=(owner,) if owner else ())


BUILDERS: dict[Kind, Callable[[RowView], WriteBatch]] = {
    Kind.CONTACTS: build_contact,
    Kind.ACCOUNTS: build_account,
    Kind.DEALS: build_deal,
    Kind.STAGE_CHANGES: build_stage_change,
    Kind.INTERACTIONS: build_interaction,
}
