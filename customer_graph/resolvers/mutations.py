"""The mutations: input checked, turned into a write batch, written through the ingestion path.

Data mutations become a `WriteBatch` submitted to the ingestion workers (the same queue, group
commit and write transaction as the tracking API) and return once it is committed; identity
administration (block, unmerge) calls graph/identity.py. After a write the request reads from
the leader with fresh loaders, and subscribers of the touched profiles are told.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from customer_graph.auth import InvalidSourceError, Scope, validate_source
from customer_graph.graph import identity
from customer_graph.graph.normalize import normalize_identifier, normalize_value
from customer_graph.graph.privacy import identifier_target, record_target
from customer_graph.graph.records import (
    CustomerIn,
    DealContactIn,
    DealIn,
    IdentifierIn,
    InteractionIn,
    StageChangeIn,
    WriteBatch,
    WriteResult,
    customer_key,
)
from customer_graph.graph.resolution import ResolutionConfig, resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.ingestion.workers import (
    QueueFullError,
    ShuttingDownError,
    WorkItem,
    WriteRejectedError,
)
from customer_graph.pubsub import publish_profile_updated, publish_write_result
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.errors import SERVICE_UNAVAILABLE, ApiError
from customer_graph.resolvers.privacy import audit_admin_action
from customer_graph.schema.deal import StageChange, load_deal
from customer_graph.schema.interaction import load_interaction
from customer_graph.schema.mutations import (
    BlockIdentifierInput,
    BlockIdentifierPayload,
    MoveDealStageInput,
    MoveDealStagePayload,
    RecordInteractionInput,
    RecordInteractionPayload,
    UnmergeRecordInput,
    UnmergeRecordPayload,
    UpsertCustomerInput,
    UpsertCustomerPayload,
    UpsertDealInput,
    UpsertDealPayload,
)
from customer_graph.schema.node import raw_id_for
from customer_graph.schema.profile import Identifier, Profile, load_profile, load_record
from customer_graph.schema.user_error import UserError

MAX_IDENTIFIERS: Final = 50
MAX_CONTACTS: Final = 50
MAX_TEXT: Final = 256
MAX_BODY: Final = 100_000
MAX_JSON_BYTES: Final = 32_000  # like a tracking message

INVALID: Final = "INVALID"
INVALID_IDENTIFIER: Final = "INVALID_IDENTIFIER"
NOT_FOUND: Final = "NOT_FOUND"
SOURCE_NOT_ALLOWED: Final = "SOURCE_NOT_ALLOWED"
SUPPRESSED: Final = "SUPPRESSED"
TOO_LARGE: Final = "TOO_LARGE"
WRITE_REJECTED: Final = "WRITE_REJECTED"
QUEUE_FULL: Final = "QUEUE_FULL"


class Checks:
    """Collects the user errors of one input."""

    def __init__(self) -> None:
        self.errors: list[UserError] = []

    def add(self, path: tuple[str | int, ...], message: str, code: str = INVALID) -> None:
        self.errors.append(
            UserError(field=["input", *(str(p) for p in path)], message=message, code=code)
        )

    def text(self, path: tuple[str | int, ...], value: str | None, limit: int = MAX_TEXT) -> str:
        cleaned = (value or "").strip()
        if not cleaned:
            self.add(path, "Must not be empty.")
        elif len(cleaned) > limit:
            self.add(path, f"At most {limit} characters.", TOO_LARGE)
        return cleaned

    def optional(
        self, path: tuple[str | int, ...], value: str | None, limit: int = MAX_TEXT
    ) -> str | None:
        if value is not None and len(value) > limit:
            self.add(path, f"At most {limit} characters.", TOO_LARGE)
        return value

    def json_object(self, path: tuple[str | int, ...], value: object) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, "Must be a JSON object.")
            return {}
        if len(json.dumps(value, default=str)) > MAX_JSON_BYTES:
            self.add(path, f"At most {MAX_JSON_BYTES} bytes of JSON.", TOO_LARGE)
        return value

    def count(self, path: tuple[str | int, ...], values: list[Any] | None, limit: int) -> None:
        if values is not None and len(values) > limit:
            self.add(path, f"At most {limit} values.", TOO_LARGE)

    def source(self, info: Info, path: tuple[str | int, ...], value: str) -> str:
        try:
            source = validate_source(value)
        except InvalidSourceError:
            self.add(path, "A source is 1 to 64 characters without ':'.")
            return value
        principal = info.context.principal
        # A write key belongs to a source: it writes that source's records, and only admins
        # write on behalf of any source.
        if principal is not None and not principal.has(Scope.ADMIN) and principal.source != source:
            self.add(path, "This key writes records of its own source only.", SOURCE_NOT_ALLOWED)
        return source


def _config(info: Info) -> ResolutionConfig:
    return resolution_config(info.context.settings)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Written:
    result: WriteResult | None = None
    error: UserError | None = None


async def _write(info: Info, batch: WriteBatch, source: str | None) -> Written:
    """Write through the ingestion workers (which tell subscribers once it commits), or
    directly without them."""
    context = info.context
    pool = context.ingest
    if pool is None:
        result = await write_batch(
            context.driver, context.settings.neo4j_database, batch, _config(info)
        )
        publish_write_result(result)
    else:
        try:
            receipt = await pool.submit([WorkItem(batch=batch, type="mutation", source=source)])
        except QueueFullError as e:
            raise ApiError(
                f"The write queue is full; retry in {e.retry_after_s} s.", QUEUE_FULL
            ) from e
        except ShuttingDownError as e:
            raise ApiError("The service is shutting down; retry.", SERVICE_UNAVAILABLE) from e
        except WriteRejectedError:
            return Written(
                error=UserError(field=None, message="The write was rejected.", code=WRITE_REJECTED)
            )
        if "suppressed" in receipt.outcomes:
            return Written(
                error=UserError(
                    field=None,
                    message="Refused: it names a person whose data was erased.",
                    code=SUPPRESSED,
                )
            )
        result = receipt.result
    _after_write(info)
    return Written(result=result)


def _after_write(info: Info) -> None:
    info.context.reader.read_your_writes()
    info.context.fresh_loaders()


def _identifiers(
    checks: Checks, config: ResolutionConfig, given: list[Any] | None
) -> tuple[IdentifierIn, ...]:
    out = []
    for n, ident in enumerate(given or ()):
        raw = IdentifierIn(ident.type, ident.value)
        # Blocked placeholders are accepted and link nothing, as ingestion does; a value that
        # does not parse at all is the client's mistake.
        parsed = normalize_identifier(
            raw, default_region=config.default_region, blocked_patterns=()
        )
        if parsed is None:
            checks.add(
                ("identifiers", n, "value"),
                f"Not a valid `{ident.type}` identifier.",
                INVALID_IDENTIFIER,
            )
        out.append(raw)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Data


async def upsert_customer(info: Info, input: UpsertCustomerInput) -> UpsertCustomerPayload:
    """Create or update one source record; identities resolve in the same transaction."""
    checks = Checks()
    source = checks.source(info, ("source",), input.source)
    source_id = checks.text(("sourceId",), input.source_id)
    traits = checks.json_object(("traits",), input.traits)
    checks.count(("identifiers",), input.identifiers, MAX_IDENTIFIERS)
    identifiers = _identifiers(checks, _config(info), input.identifiers)
    if checks.errors:
        return UpsertCustomerPayload(record=None, profile=None, user_errors=checks.errors)
    customer = CustomerIn(
        source=source,
        source_id=source_id,
        traits=traits,
        identifiers=identifiers,
        seen_at=input.seen_at or _now(),
    )
    written = await _write(info, WriteBatch(customers=(customer,)), source)
    if written.error is not None:
        return UpsertCustomerPayload(record=None, profile=None, user_errors=[written.error])
    record = await load_record(info, customer.key)
    profile = await load_profile(info, record.row.profile_id if record is not None else None)
    return UpsertCustomerPayload(record=record, profile=profile, user_errors=[])


async def record_interaction(info: Info, input: RecordInteractionInput) -> RecordInteractionPayload:
    """Record a call, email, meeting, note, task or event on an existing record."""
    checks = Checks()
    source = checks.source(info, ("source",), input.source)
    source_id = checks.text(("sourceId",), input.source_id)
    interaction_id = checks.text(("id",), input.id) if input.id is not None else uuid.uuid4().hex
    properties = checks.json_object(("properties",), input.properties)
    for name in ("name", "channel", "direction", "subject"):
        checks.optional((name,), getattr(input, name))
    checks.optional(("body",), input.body, MAX_BODY)
    if input.duration_seconds is not None and input.duration_seconds < 0:
        checks.add(("durationSeconds",), "Must not be negative.")
    if not checks.errors:
        key = customer_key(source, source_id)
        if await info.context.loaders.record_by_key.load(key) is None:
            checks.add(("sourceId",), "No record of this source has this id.", NOT_FOUND)
    if checks.errors:
        return RecordInteractionPayload(interaction=None, profile=None, user_errors=checks.errors)
    interaction = InteractionIn(
        id=interaction_id,
        source=source,
        customer_source_id=source_id,
        type=input.type.value,
        occurred_at=input.occurred_at or _now(),
        name=input.name,
        channel=input.channel,
        direction=input.direction,
        subject=input.subject,
        body=input.body,
        duration_seconds=input.duration_seconds,
        properties=properties,
        owner_id=input.owner_id,
        deal_id=input.deal_id,
        account_id=input.account_id,
    )
    written = await _write(info, WriteBatch(interactions=(interaction,)), source)
    if written.error is not None:
        return RecordInteractionPayload(interaction=None, profile=None, user_errors=[written.error])
    record = await load_record(info, customer_key(source, source_id))
    return RecordInteractionPayload(
        interaction=await load_interaction(info, interaction_id),
        profile=await load_profile(info, record.row.profile_id if record else None),
        user_errors=[],
    )


async def upsert_deal(info: Info, input: UpsertDealInput) -> UpsertDealPayload:
    """Create or update a deal by its CRM id, with its contacts, owner and account."""
    checks = Checks()
    deal_id = checks.text(("id",), raw_id_for("Deal", input.id) or "")
    for name in ("name", "currency", "pipeline", "stage"):
        checks.optional((name,), getattr(input, name))
    checks.count(("contacts",), input.contacts, MAX_CONTACTS)
    contacts = []
    for n, contact in enumerate(input.contacts or ()):
        source = checks.source(info, ("contacts", n, "source"), contact.source)
        source_id = checks.text(("contacts", n, "sourceId"), contact.source_id)
        contacts.append(DealContactIn(source, source_id, role=contact.role))
    if not checks.errors and contacts:
        found = await info.context.loaders.record_by_key.load_many(
            [customer_key(c.source, c.source_id) for c in contacts]
        )
        for n, record in enumerate(found):
            if record is None:
                checks.add(("contacts", n, "sourceId"), "No such record.", NOT_FOUND)
    if checks.errors:
        return UpsertDealPayload(deal=None, user_errors=checks.errors)
    deal = DealIn(
        id=deal_id,
        name=input.name,
        amount=input.amount,
        currency=input.currency,
        pipeline=input.pipeline,
        stage=input.stage,
        status=input.status.value if input.status else None,
        created_at=input.created_at,
        closed_at=input.closed_at,
        owner_id=input.owner_id,
        account_id=input.account_id,
        contacts=tuple(contacts),
    )
    written = await _write(info, WriteBatch(deals=(deal,)), None)
    if written.error is not None:
        return UpsertDealPayload(deal=None, user_errors=[written.error])
    return UpsertDealPayload(deal=await load_deal(info, deal_id), user_errors=[])


async def move_deal_stage(info: Info, input: MoveDealStageInput) -> MoveDealStagePayload:
    """Move a deal to a stage (closing it as won or lost if asked); its history keeps the move."""
    checks = Checks()
    deal_id = checks.text(("dealId",), raw_id_for("Deal", input.deal_id) or "")
    to_stage = checks.text(("toStage",), input.to_stage)
    current = await load_deal(info, deal_id) if not checks.errors else None
    if not checks.errors and current is None:
        checks.add(("dealId",), "No deal has this id.", NOT_FOUND)
    if checks.errors or current is None:
        return MoveDealStagePayload(deal=None, stage_change=None, user_errors=checks.errors)
    changed_at = input.changed_at or _now()
    change = StageChangeIn(deal_id, to_stage, changed_at, from_stage=current.row.stage)
    deals: tuple[DealIn, ...] = ()
    if input.status is not None:
        closed = input.status.value != "open"
        deals = (
            DealIn(deal_id, status=input.status.value, closed_at=changed_at if closed else None),
        )
    written = await _write(info, WriteBatch(deals=deals, stage_changes=(change,)), None)
    if written.error is not None:
        return MoveDealStagePayload(deal=None, stage_change=None, user_errors=[written.error])
    # Deals touch profiles through their contacts.
    publish_profile_updated(await _deal_profiles(info, deal_id))
    history = await info.context.loaders.stage_history_by_deal.load(deal_id)
    row = next(
        (c for c in reversed(history) if c.to_stage == to_stage and c.changed_at == changed_at),
        None,
    )
    return MoveDealStagePayload(
        deal=await load_deal(info, deal_id),
        stage_change=StageChange.from_row(row) if row is not None else None,
        user_errors=[],
    )


async def _deal_profiles(info: Info, deal_id: str) -> list[str]:
    contacts = await info.context.loaders.contacts_by_deal.load(deal_id)
    return [c.record.profile_id for c in contacts if c.record.profile_id]


# ---------------------------------------------------------------------------------------------
# Identity administration


async def block_identifier(info: Info, input: BlockIdentifierInput) -> BlockIdentifierPayload:
    """Block an identifier: it never links records again, and profiles it joined split."""
    checks = Checks()
    config = _config(info)
    if (
        normalize_value(
            input.type, input.value, default_region=config.default_region, blocked_patterns=()
        )
        is None
        or not input.type.strip()
    ):
        checks.add(("value",), f"Not a valid `{input.type}` identifier.", INVALID_IDENTIFIER)
    reason = checks.optional(("reason",), input.reason)
    if checks.errors:
        return BlockIdentifierPayload(identifier=None, profiles=[], user_errors=checks.errors)
    change = await identity.block_identifier(
        info.context.driver,
        info.context.settings.neo4j_database,
        input.type,
        input.value,
        config,
        reason=reason or "blocked",
    )
    _after_write(info)
    if change.identifier_key is not None:
        type_, _, value = change.identifier_key.partition(":")
        await audit_admin_action(
            info,
            "identifier.block",
            identifier_target(info.context.settings, type_, value),
            {"splits": len(change.splits), "profiles": len(change.profile_ids)},
        )
    publish_profile_updated([*change.profile_ids, *change.deleted_profile_ids])
    identifier = None
    if change.identifier_key is not None:
        row = await info.context.loaders.identifier_by_key.load(change.identifier_key)
        identifier = Identifier.from_row(row) if row is not None else None
    return BlockIdentifierPayload(
        identifier=identifier,
        profiles=await _profiles(info, change.profile_ids),
        user_errors=[],
    )


async def unmerge_record(info: Info, input: UnmergeRecordInput) -> UnmergeRecordPayload:
    """Take a record out of its profile; the rest of the profile regroups into components."""
    checks = Checks()
    key = raw_id_for("CustomerRecord", input.record_id)
    reason = checks.optional(("reason",), input.reason)
    if key is None or await info.context.loaders.record_by_key.load(key) is None:
        checks.add(("recordId",), "No record has this id.", NOT_FOUND)
    if checks.errors or key is None:
        return UnmergeRecordPayload(record=None, profiles=[], user_errors=checks.errors)
    change = await identity.unmerge_record(
        info.context.driver,
        info.context.settings.neo4j_database,
        key,
        _config(info),
        reason=reason or "unmerged",
    )
    _after_write(info)
    await audit_admin_action(
        info,
        "record.unmerge",
        record_target(info.context.settings, key),
        {"splits": len(change.splits), "profiles": len(change.profile_ids)},
    )
    publish_profile_updated([*change.profile_ids, *change.deleted_profile_ids])
    return UnmergeRecordPayload(
        record=await load_record(info, key),
        profiles=await _profiles(info, change.profile_ids),
        user_errors=[],
    )


async def _profiles(info: Info, ids: list[str]) -> list[Profile]:
    rows = await info.context.loaders.profile_by_id.load_many(ids)
    unique = {r.id: r for r in rows if r is not None}
    return [Profile.from_row(r) for r in unique.values()]
