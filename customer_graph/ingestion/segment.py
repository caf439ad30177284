"""Segment-spec payloads: validation (pydantic) and mapping to the write path's records.

- identify → the customer record (source, userId), or (source, anonymousId) without a userId,
  with identifiers user_id, anonymous_id, email and phone (from traits and context.traits), and
  every `context.externalIds` entry;
- track, page, screen → an interaction on that record (which is upserted too);
- group → the account `source:groupId` and the record's membership of it;
- alias → the record (source, userId) carrying both user_id = userId and anonymous_id = previousId,
  which joins it to the records of the previous (anonymous) id.

Every message of a request is validated before anything is queued: one bad message fails the
whole request with the index and field of each problem, and nothing of it is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from customer_graph.graph.messages import message_key
from customer_graph.graph.normalize import is_valid_type
from customer_graph.graph.records import (
    AccountIn,
    CustomerIn,
    IdentifierIn,
    InteractionIn,
    MembershipIn,
    WriteBatch,
    customer_key,
)
from customer_graph.ingestion.workers import WorkItem, payload_json

MAX_MESSAGE_BYTES: Final = 32 * 1024
MAX_BATCH_BYTES: Final = 500 * 1024
MAX_BATCH_MESSAGES: Final = 2500
MAX_ERRORS_REPORTED: Final = 50
MAX_ID_CHARS: Final = 255

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
MESSAGE_TYPES: Final[tuple[str, ...]] = ("identify", "track", "page", "screen", "group", "alias")

Id = StrictStr | StrictInt  # Segment ids are strings; SDKs may send numbers


@dataclass(frozen=True, slots=True)
class FieldError:
    index: int  # of the message in the request (0 for the single-message endpoints)
    field: str  # dotted path within the message, e.g. "context.externalIds.0.id"
    message: str

    def as_json(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}


class InvalidPayloadError(Exception):
    """The request is not acceptable; `errors` names each message and field at fault."""

    def __init__(self, errors: Sequence[FieldError], summary: str | None = None) -> None:
        self.errors = list(errors)[:MAX_ERRORS_REPORTED]
        first = self.errors[0] if self.errors else None
        default = f"message {first.index}: {first.field}: {first.message}" if first else "invalid"
        super().__init__(summary or default)


class PayloadTooLargeError(Exception):
    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ExternalId(_Model):
    id: Id
    type: StrictStr


class Context(_Model):
    externalIds: list[ExternalId] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=dict)


class _Message(_Model):
    messageId: Id | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: Context = Field(default_factory=Context)
    integrations: dict[str, Any] = Field(default_factory=dict)
    channel: StrictStr | None = None


class Identify(_Message):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


class Track(_Message):
    type: Literal["track"]
    event: StrictStr
    properties: dict[str, Any] = Field(default_factory=dict)


class Page(_Message):
    type: Literal["page"]
    name: StrictStr | None = None
    category: StrictStr | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(_Message):
    type: Literal["screen"]
    name: StrictStr | None = None
    category: StrictStr | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Group(_Message):
    type: Literal["group"]
    groupId: Id
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"]
    previousId: Id


Message = Annotated[Identify | Track | Page | Screen | Group | Alias, Field(discriminator="type")]
_MESSAGE: Final = TypeAdapter[Message](Message)


def parse_request(
    body: Any, *, kind: MessageType | None, source: str, received_at: datetime
) -> list[WorkItem]:
    """Validate a request body and map every message; all or nothing.

    `kind` is the endpoint's message type (/v1/track…), or None for /v1/batch and /v1/import.
    Raises InvalidPayloadError or PayloadTooLargeError.
    """
    if not isinstance(body, dict):
        raise InvalidPayloadError([FieldError(0, "", "the body must be a JSON object")])
    if kind is None:
        raw_messages, defaults = _batch_envelope(body)
    else:
        raw_messages, defaults = [body], {}
    if len(raw_messages) > MAX_BATCH_MESSAGES:
        raise PayloadTooLargeError(f"a batch holds at most {MAX_BATCH_MESSAGES} messages")
    errors: list[FieldError] = []
    items: list[WorkItem] = []
    received_iso = received_at.isoformat()
    for index, raw in enumerate(raw_messages):
        try:
            items.append(
                _parse_one(
                    index,
                    raw,
                    kind,
                    defaults,
                    source=source,
                    received_at=received_at,
                    received_iso=received_iso,
                )
            )
        except InvalidPayloadError as e:
            errors.extend(e.errors)
    if errors:
        raise InvalidPayloadError(errors)
    return items


def replay_item(payload: Mapping[str, Any], *, source: str) -> WorkItem:
    """Map a dead-lettered message again (its stored payload carries receivedAt and sentAt)."""
    received = TypeAdapter(datetime).validate_python(payload["receivedAt"])
    kind = cast(MessageType, payload["type"]) if payload.get("type") in MESSAGE_TYPES else None
    return _parse_one(
        0,
        dict(payload),
        kind,
        {},
        source=source,
        received_at=_aware(received),
    )


def _batch_envelope(body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise InvalidPayloadError([FieldError(0, "batch", "batch must be a list of messages")])
    defaults: dict[str, Any] = {}
    # Batch-level sentAt, context and integrations apply to every message (the message wins).
    for name in ("sentAt", "context", "integrations"):
        if name in body:
            defaults[name] = body[name]
    return batch, defaults


def _parse_one(
    index: int,
    raw: Any,
    kind: MessageType | None,
    defaults: Mapping[str, Any],
    *,
    source: str,
    received_at: datetime,
    received_iso: str | None = None,
) -> WorkItem:
    if not isinstance(raw, dict):
        raise InvalidPayloadError([FieldError(index, "", "a message must be a JSON object")])
    # The size of the compact form (key order does not change it); the same text is the stored
    # payload when the message is kept as it came (below).
    compact = payload_json(raw)
    if len(compact) > MAX_MESSAGE_BYTES // 4 and len(compact.encode()) > MAX_MESSAGE_BYTES:
        raise PayloadTooLargeError(
            f"message {index} is larger than {MAX_MESSAGE_BYTES // 1024} KB", index
        )
    given_type, given_id = raw.get("type"), raw.get("messageId")
    as_sent = not defaults and "writeKey" not in raw and "receivedAt" not in raw
    raw = _with_defaults(raw, defaults)
    raw.pop("writeKey", None)
    if kind is not None:
        given = raw.get("type")
        if given is not None and (not isinstance(given, str) or given.lower() != kind):
            raise InvalidPayloadError([FieldError(index, "type", f"this endpoint takes {kind}")])
        raw["type"] = kind
    elif isinstance(raw.get("type"), str):
        raw["type"] = raw["type"].lower()
    try:
        message = _MESSAGE.validate_python(raw)
    except PydanticValidationError as e:
        raise InvalidPayloadError(_field_errors(index, e)) from e
    _check_ids(index, message)
    message_id = _text(message.messageId) or _derived_message_id(raw)
    raw["messageId"] = message_id
    received = received_iso or received_at.isoformat()
    raw["receivedAt"] = received
    if as_sent and given_type == raw.get("type") and given_id == message_id and len(compact) > 2:
        # Only receivedAt was added (at the end): no need to encode the message again.
        payload = f'{compact[:-1]},"receivedAt":"{received}"}}'  # ISO: nothing to escape
    else:
        payload = payload_json(raw)
    try:
        batch = to_write_batch(
            message, source=source, message_id=message_id, received_at=received_at
        )
    except OverflowError as e:  # a corrected time beyond the years datetime can hold
        raise InvalidPayloadError([FieldError(index, "timestamp", "out of range")]) from e
    return WorkItem(
        batch=batch,
        key=message_key(source, message_id),
        type=message.type,
        source=source,
        message_id=message_id,
        payload=payload,
        kind="segment",
        received_at=received_at,
    )


def _check_ids(index: int, message: Message) -> None:
    problems: list[FieldError] = []
    # Fields read by name: a missing attribute of a model with extras costs a pydantic lookup.
    ids: list[tuple[str, str | int | None]] = [
        ("messageId", message.messageId),
        ("userId", message.userId),
        ("anonymousId", message.anonymousId),
    ]
    if isinstance(message, Alias):
        ids.append(("previousId", message.previousId))
    elif isinstance(message, Group):
        ids.append(("groupId", message.groupId))
    for name, value in ids:
        if value is not None and len(str(value)) > MAX_ID_CHARS:
            problems.append(FieldError(index, name, f"at most {MAX_ID_CHARS} characters"))
    if isinstance(message, Alias):
        if not _text(message.userId):
            problems.append(FieldError(index, "userId", "alias needs a userId"))
        if not _text(message.previousId):
            problems.append(FieldError(index, "previousId", "alias needs a previousId"))
    elif not _text(message.userId) and not _text(message.anonymousId):
        problems.append(FieldError(index, "userId", "userId or anonymousId is required"))
    if isinstance(message, Group) and not _text(message.groupId):
        problems.append(FieldError(index, "groupId", "group needs a groupId"))
    for n, ext in enumerate(message.context.externalIds):
        if not _text(ext.id):
            problems.append(FieldError(index, f"context.externalIds.{n}.id", "empty id"))
        if not ext.type.strip():
            problems.append(FieldError(index, f"context.externalIds.{n}.type", "empty type"))
        elif not is_valid_type(ext.type):
            problems.append(
                FieldError(
                    index,
                    f"context.externalIds.{n}.type",
                    "a type is letters, digits and _ . - (at most 64 characters)",
                )
            )
    if problems:
        raise InvalidPayloadError(problems)


def event_time(message: _Message, received_at: datetime) -> datetime:
    """Segment's correction of the client's clock: receivedAt - (sentAt - timestamp).

    The device time is originalTimestamp, else timestamp. Without sentAt the device time is taken
    as it is; without any, the time of receipt.
    """
    device = message.originalTimestamp or message.timestamp
    if device is None:
        return received_at
    device = _aware(device)
    if message.sentAt is None:
        return device
    return received_at - (_aware(message.sentAt) - device)


def to_write_batch(
    message: Message, *, source: str, message_id: str, received_at: datetime
) -> WriteBatch:
    """What one validated message writes."""
    occurred = event_time(message, received_at)
    key = message_key(source, message_id)
    if isinstance(message, Alias):
        user_id = _text(message.userId)
        previous = _text(message.previousId)
        identifiers = [IdentifierIn("user_id", user_id), IdentifierIn("anonymous_id", previous)]
        identifiers += _context_identifiers(message)
        customer = CustomerIn(
            source=source,
            source_id=user_id,
            identifiers=_distinct(identifiers),
            seen_at=occurred,
            message_id=message_id,
        )
        return WriteBatch(customers=(customer,))

    traits = message.traits if isinstance(message, Identify) else {}
    customer = CustomerIn(
        source=source,
        source_id=_text(message.userId) or _text(message.anonymousId),
        traits=dict(traits),
        identifiers=_identifiers(message, traits),
        seen_at=occurred,
        message_id=message_id,
    )
    if isinstance(message, Identify):
        return WriteBatch(customers=(customer,))
    if isinstance(message, Group):
        account = _account(message, source)
        membership = MembershipIn(
            source=source, source_id=customer.source_id, account_id=account.id, start_date=occurred
        )
        return WriteBatch(customers=(customer,), accounts=(account,), memberships=(membership,))
    interaction = _interaction(message, source, customer.source_id, key, message_id, occurred)
    return WriteBatch(customers=(customer,), interactions=(interaction,))


def _interaction(
    message: Track | Page | Screen,
    source: str,
    source_id: str,
    key: str,
    message_id: str,
    occurred: datetime,
) -> InteractionIn:
    properties = dict(message.properties)
    if isinstance(message, Track):
        name: str | None = message.event
        channel = message.channel
    else:
        given = properties.get("name")
        name = message.name or (given if isinstance(given, str) else None)
        if message.category is not None:
            properties.setdefault("category", message.category)
        channel = message.channel or ("web" if isinstance(message, Page) else "mobile")
    return InteractionIn(
        id=key,
        source=source,
        customer_source_id=source_id,
        type=message.type,
        occurred_at=occurred,
        name=name,
        channel=channel,
        properties=properties,
        message_id=message_id,
    )


def _account(message: Group, source: str) -> AccountIn:
    traits = dict(message.traits)
    name = traits.get("name")
    domain = traits.get("domain") or traits.get("website")
    return AccountIn(
        id=customer_key(source, _text(message.groupId)),
        name=name if isinstance(name, str) else None,
        domain=_domain(domain) if isinstance(domain, str) else None,
        traits=traits,
        source=source,
    )


def _identifiers(message: _Message, traits: Mapping[str, Any]) -> tuple[IdentifierIn, ...]:
    found: list[IdentifierIn] = []
    if user_id := _text(message.userId):
        found.append(IdentifierIn("user_id", user_id))
    if anonymous_id := _text(message.anonymousId):
        found.append(IdentifierIn("anonymous_id", anonymous_id))
    for bag in (traits, message.context.traits):
        if not bag:
            continue
        for name in ("email", "phone"):
            value = bag.get(name)
            if (
                isinstance(value, str | int)
                and not isinstance(value, bool)
                and (text := str(value).strip())
            ):
                found.append(IdentifierIn(name, text))
    found += _context_identifiers(message)
    return _distinct(found)


def _context_identifiers(message: _Message) -> list[IdentifierIn]:
    return [
        IdentifierIn(ext.type.strip().lower(), _text(ext.id)) for ext in message.context.externalIds
    ]


def _distinct(identifiers: Sequence[IdentifierIn]) -> tuple[IdentifierIn, ...]:
    return tuple(dict.fromkeys(identifiers))


def _with_defaults(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(raw)
    for name, value in defaults.items():
        if name not in merged:
            merged[name] = value
        elif isinstance(value, dict) and isinstance(merged[name], dict):
            merged[name] = {**value, **merged[name]}
    return merged


def _field_errors(index: int, error: PydanticValidationError) -> list[FieldError]:
    found: list[FieldError] = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"]]
        if loc and loc[0] in MESSAGE_TYPES:  # the discriminator's branch, not a field
            loc = loc[1:]
        if detail["type"].startswith("union_tag"):
            loc = ["type"]
        # A field accepting str or int reports each branch; say it once.
        if loc and loc[-1] in ("str", "int"):
            loc = loc[:-1]
        path = ".".join(loc)
        message = detail["msg"]
        if any(f.field == path for f in found):
            continue
        found.append(FieldError(index, path, message))
    return found


def _derived_message_id(raw: Mapping[str, Any]) -> str:
    """A messageId for a message without one: the hash of its content, so a resend is a replay."""
    content = {k: v for k, v in raw.items() if k not in ("sentAt", "receivedAt", "writeKey")}
    return "cg-" + hashlib.sha256(_compact(content).encode()).hexdigest()[:32]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=str)


def _text(value: str | int | None) -> str:
    return "" if value is None else str(value).strip()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _domain(value: str) -> str | None:
    text = value.strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname
    return host.removeprefix("www.") if host else None
