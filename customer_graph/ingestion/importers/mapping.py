"""From a row of an export to the write path's records: layouts, row views and validation.

A `Layout` says how one export (Salesforce Contact, HubSpot deals…) maps onto one kind of record:
for each canonical field (`email`, `owner_id`, `occurred_at`…), the columns that may hold it, in
order of preference, matched without regard to case. A `Mapper` picks the layout that fits the
file's columns and turns each row into a `WriteBatch` fragment, or raises `RowError` with the
reason the row is rejected. Nothing is written for a rejected row.

Ids: a record keeps the source's own id (`Customer.key = source:id`); deals, accounts,
interactions and owners are keyed `source:id`, so that rerunning an import finds the same nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
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


class Kind(StrEnum):
    CONTACTS = "contacts"
    ACCOUNTS = "accounts"
    DEALS = "deals"
    STAGE_CHANGES = "stage-changes"
    INTERACTIONS = "interactions"


class RowError(ValueError):
    """The row is rejected; the message is the reason written to the rejects file."""


class LayoutError(ValueError):
    """The file does not fit the kind or preset asked for (a missing required column)."""


INTERACTION_TYPES = frozenset(
    {"call", "email", "meeting", "note", "task", "track", "page", "screen"}
)
DIRECTIONS = frozenset({"inbound", "outbound"})
DEAL_STATUSES = frozenset({"open", "won", "lost"})
CHANNEL_OF_TYPE = {"call": "phone", "email": "email", "meeting": "meeting"}

_ADDRESS = ("street", "city", "state", "postal_code", "country")
_COMMON = "is_deleted created_at updated_at owner_id owner_name"
# Canonical fields of each kind; a layout may use only these (a unit test holds them to it).
FIELDS: dict[Kind, frozenset[str]] = {
    kind: frozenset(names.split())
    for kind, names in {
        Kind.CONTACTS: f"""{_COMMON} {" ".join(_ADDRESS)} id email email_2 email_3 phone
            mobile_phone home_phone other_phone first_name last_name name title department
            company account_ids account_type user_id website lead_source lifecycle_stage
            birthdate description""",
        Kind.ACCOUNTS: f"""{_COMMON} {" ".join(_ADDRESS)} id name domain website phone email
            industry type employees annual_revenue parent_id description account_number""",
        Kind.DEALS: f"""{_COMMON} id name amount amount_won currency pipeline stage status
            is_closed is_won close_date closed_at account_ids contact_ids probability type
            lead_source stage_entered""",
        Kind.STAGE_CHANGES: """deal_id to_stage from_stage changed_at is_deleted amount
            stage_entered""",
        Kind.INTERACTIONS: f"""{_COMMON} id contact_id contact_ids type occurred_at ended_at
            name channel direction subject body duration_seconds duration_minutes duration_ms
            duration_text account_id deal_id related_id related_type status location""",
    }.items()
}
# Fields whose value comes from `derive` (never from a column of that name).
DERIVED_FIELDS = frozenset({"stage_history"})

Derive = Callable[["RowView"], Mapping[str, Any]]


def _strip(value: str) -> str:
    return value.strip()


@dataclass(frozen=True)
class Layout:
    """How one CRM export maps onto one kind of record."""

    name: str  # "Salesforce Contact"
    kind: Kind
    columns: Mapping[str, tuple[str, ...]]
    # Columns that tell this export apart from the preset's other exports of the same kind.
    signature: tuple[str, ...] = ()
    # field -> regular expression over column names, for fields spread over many columns
    # (HubSpot's `Date entered "<stage>"`).
    patterns: Mapping[str, str] = field(default_factory=dict)
    id_type: str | None = None  # contacts: the identifier type of the CRM's record id
    clean_id: Callable[[str], str] = _strip
    derive: Derive | None = None  # CRM-specific fields computed from the whole row
    type_values: Mapping[str, str] = field(default_factory=dict)  # lower-case value -> type
    default_type: str | None = None
    direction_values: Mapping[str, str] = field(default_factory=dict)
    status_values: Mapping[str, str] = field(default_factory=dict)
    stage_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    """The layouts of one CRM's standard exports."""

    name: str
    layouts: tuple[Layout, ...]

    def kinds(self) -> list[Kind]:
        return [kind for kind in Kind if any(layout.kind is kind for layout in self.layouts)]

    def choose(self, kind: Kind, columns: Iterable[str]) -> Layout:
        """The layout of `kind` whose signature columns the file has most of (first on a tie)."""
        candidates = [layout for layout in self.layouts if layout.kind is kind]
        if not candidates:
            supported = ", ".join(k.value for k in self.kinds())
            raise LayoutError(f"the {self.name} preset has no {kind.value} ({supported})")
        present = {_norm(c) for c in columns}
        return max(
            candidates,
            key=lambda layout: sum(_norm(c) in present for c in layout.signature),
        )


@dataclass(frozen=True, slots=True)
class ImportContext:
    """What every row of one import shares."""

    source: str
    timezone: tzinfo = UTC
    extras: bool = True  # keep unmapped columns as traits (contacts, accounts) or properties

    def ref(self, raw_id: str) -> str:
        """The graph id of a deal, account, interaction or owner of this source."""
        return f"{self.source}:{raw_id}"


def _norm(name: str) -> str:
    return " ".join(name.casefold().split())


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where each field of a layout is, among one set of columns."""

    fields: dict[str, tuple[str, ...]]
    matches: dict[str, tuple[str, ...]]
    extras: tuple[str, ...]


class Resolver:
    """Resolves a layout's fields against a set of column names, once per distinct set."""

    MAX_CACHED = 64

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._patterns = {f: re.compile(p, re.IGNORECASE) for f, p in layout.patterns.items()}
        self._cache: dict[tuple[str, ...], Resolved] = {}

    def resolve(self, keys: tuple[str, ...]) -> Resolved:
        cached = self._cache.get(keys)
        if cached is not None:
            return cached
        by_norm: dict[str, str] = {}
        for key in keys:
            by_norm.setdefault(_norm(key), key)
        used: set[str] = set()
        fields: dict[str, tuple[str, ...]] = {}
        for name, candidates in self.layout.columns.items():
            found = tuple(by_norm[_norm(c)] for c in candidates if _norm(c) in by_norm)
            if found:
                fields[name] = found
                used.update(found)
        matches: dict[str, tuple[str, ...]] = {}
        for name, pattern in self._patterns.items():
            found = tuple(k for k in keys if pattern.search(k))
            matches[name] = found
            used.update(found)
        extras = tuple(k for k in keys if k not in used)
        resolved = Resolved(fields, matches, extras)
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()
        self._cache[keys] = resolved
        return resolved


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        parts = [t for t in (_as_text(v) for v in value) if t is not None]
        return ";".join(parts) or None
    return str(value)


class RowView:
    """One row seen through a layout: canonical fields, converted, with reasons on failure."""

    __slots__ = ("_resolved", "context", "layout", "overrides", "values")

    def __init__(
        self,
        values: Mapping[str, Any],
        resolved: Resolved,
        layout: Layout,
        context: ImportContext,
    ) -> None:
        self.values = values
        self._resolved = resolved
        self.layout = layout
        self.context = context
        self.overrides: dict[str, Any] = {}

    def label(self, name: str) -> str:
        """The column a field is read from, for reasons (`Amount`), or the field's name."""
        columns = self._resolved.fields.get(name)
        if columns:
            return columns[0]
        candidates = self.layout.columns.get(name)
        return candidates[0] if candidates else name

    def raw(self, name: str) -> Any:
        """The first non-empty value of a field, as the file holds it."""
        if name in self.overrides:
            return self.overrides[name]
        for key in self._resolved.fields.get(name, ()):
            value = self.values.get(key)
            if _as_text(value) is not None:
                return value
        return None

    def text(self, name: str) -> str | None:
        return _as_text(self.raw(name))

    def required(self, name: str, what: str | None = None) -> str:
        value = self.text(name)
        if value is None:
            raise RowError(f"missing {what or name} ({self.label(name)})")
        return value

    def items(self, name: str) -> list[str]:
        """A multi-valued field: a JSON list or a `;`/`,`-separated cell."""
        value = self.raw(name)
        if isinstance(value, list):
            return [t for t in (_as_text(v) for v in value) if t is not None]
        text = _as_text(value)
        return convert.split_ids(text) if text else []

    def matching(self, name: str) -> tuple[str, ...]:
        """Columns matched by the layout's pattern for `name`."""
        return self._resolved.matches.get(name, ())

    def cell(self, column: str) -> str | None:
        return _as_text(self.values.get(column))

    def extras(self) -> dict[str, Any]:
        """Non-empty cells of the columns no field reads."""
        out: dict[str, Any] = {}
        for key in self._resolved.extras:
            value = self.values.get(key)
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "" or value == []:
                continue
            out[key] = value
        return out

    # Conversions: each failure names the column it came from.

    def _convert(self, name: str, fn: Callable[[str], Any]) -> Any:
        text = self.text(name)
        if text is None:
            return None
        try:
            return fn(text)
        except ValueError as e:
            raise RowError(f"{self.label(name)}: {e}") from None

    def datetime(self, name: str) -> datetime | None:
        tz = self.context.timezone
        result: datetime | None = self._convert(name, lambda t: convert.parse_datetime(t, tz))
        return result

    def amount(self, name: str) -> float | None:
        result: float | None = self._convert(name, convert.parse_amount)
        return result

    def number(self, name: str) -> float | None:
        result: float | None = self._convert(name, convert.parse_number)
        return result

    def integer(self, name: str) -> int | None:
        result: int | None = self._convert(name, convert.parse_int)
        return result

    def duration(self, name: str) -> int | None:
        result: int | None = self._convert(name, convert.parse_duration)
        return result

    def flag(self, name: str) -> bool | None:
        result: bool | None = self._convert(name, convert.parse_bool)
        return result

    def id(self, name: str) -> str | None:
        text = self.text(name)
        return self.layout.clean_id(text) if text else None

    def ids(self, name: str) -> list[str]:
        return [self.layout.clean_id(v) for v in self.items(name)]


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
        return OwnerIn(ctx.ref(f"owner:{_norm(name)}"), name, None)
    return None


def _address(view: RowView) -> dict[str, str]:
    keys = {"postal_code": "postalCode"}
    address: dict[str, str] = {}
    for name in _ADDRESS:
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


def related(
    view: RowView,
    by_type: Mapping[str, str],
    by_prefix: Callable[[str], str | None] | None = None,
) -> dict[str, str]:
    """Route a polymorphic reference (`WhatId`, `regardingobjectid`…) to the field it names.

    `by_type` maps a lower-case type name (`related_type`, when the export has it) to a field
    (`deal_id`, `account_id`, `contact_id`); without a type, `by_prefix` may tell it from the id.
    A field the row already has is left alone.
    """
    ref = view.id("related_id")
    if ref is None:
        return {}
    kind = (view.text("related_type") or "").casefold()
    target = by_type.get(kind) if kind else None
    if target is None and not kind and by_prefix is not None:
        target = by_prefix(ref)
    if target is None or view.text(target) is not None:
        return {}
    return {target: ref}
