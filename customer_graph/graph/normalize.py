"""Identifier normalization: raw values from sources become identifier keys, or nothing.

Emails go through email-validator's normalization (no DNS) and are lower-cased whole; phones
become E.164 with `phonenumbers` and a default region; every other type is trimmed. A value that
does not parse, or that matches a blocked pattern, is not an identifier (it may still be a trait).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from customer_graph.graph.records import IdentifierIn

MAX_VALUE_LENGTH = 512

# Segment's defaults: placeholders that would join unrelated people if they linked records.
DEFAULT_BLOCKED_PATTERNS: tuple[str, ...] = (
    r"^[0-]*$",
    r"-1",
    r"null",
    r"none",
    r"undefined",
    r"anonymous",
    r"unknown",
    r"n/a",
    r"test@test\.com",
    r"",
)

# Spellings sources use for the same identifier type (Segment's camelCase fields, CRM columns).
TYPE_ALIASES: dict[str, str] = {
    "userid": "user_id",
    "user": "user_id",
    "anonymousid": "anonymous_id",
    "anonymous": "anonymous_id",
    "deviceid": "device_id",
    "e-mail": "email",
    "mail": "email",
    "phone_number": "phone",
    "phonenumber": "phone",
    "mobile": "phone",
}


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """A normalized identifier; `key` is what the graph's Identifier node is keyed by."""

    type: str
    value: str
    # Made once: the write path and the erasure screen read it many times per identifier.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", identifier_key(self.type, self.value))


def identifier_key(type_: str, value: str) -> str:
    return f"{type_}:{value}"


# An identifier type becomes part of identifier keys (`type:value`) and of API answers: a name,
# never free text (no `:`, quotes, backticks, braces or spaces), so it cannot forge another key.
IDENTIFIER_TYPE = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")


def is_valid_type(type_: str) -> bool:
    """Whether a (raw) identifier type names a type: letters, digits, `_ . -`, at most 64."""
    return IDENTIFIER_TYPE.fullmatch(normalize_type(type_)) is not None


def normalize_type(type_: str) -> str:
    """`Email`, ` userId ` and `user_id` are the same type."""
    t = type_.strip().lower().replace(" ", "_")
    return TYPE_ALIASES.get(t, t)


# The common shape of an address: an ASCII dot-atom before the @ (every character atext, so
# email-validator keeps it as it is) and an ASCII host name after it.
_PLAIN_EMAIL = re.compile(r"([A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*)@([A-Za-z0-9.\-]+)")
_MAX_EMAIL_BYTES = 254  # RFC 5321, as email-validator checks it


# Normalizing is pure and costs about a millisecond; tracking traffic repeats the same values.
@lru_cache(maxsize=100_000)
def normalize_email(value: str) -> str | None:
    text = value.strip()
    plain = _PLAIN_EMAIL.fullmatch(text)
    if plain is not None:
        # email-validator's answer without its per-character domain checks, which dominate its
        # cost: the domain is validated once (cached), with a local part that is always valid.
        local, domain = plain.groups()
        forms = _email_domain(domain)
        if forms is None:
            return None
        if any(len(local) + 1 + len(d.encode()) > _MAX_EMAIL_BYTES for d in (domain, *forms)):
            return None
        return f"{local}@{forms[0]}".lower()
    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized.lower()


@lru_cache(maxsize=10_000)
def _email_domain(domain: str) -> tuple[str, str] | None:
    """email-validator's normalized and ASCII forms of a domain, or None if it refuses it."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


@lru_cache(maxsize=100_000)
def normalize_phone(value: str, default_region: str) -> str | None:
    try:
        number = phonenumbers.parse(value.strip(), default_region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # Each pattern must match the whole value; `^…$` anchors in a pattern are harmless.
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!)", re.IGNORECASE)


def is_blocked_value(value: str, patterns: Sequence[str]) -> bool:
    return _compiled(tuple(patterns)).fullmatch(value.strip()) is not None


def normalize_value(
    type_: str, value: str, *, default_region: str, blocked_patterns: Sequence[str]
) -> str | None:
    """The normalized value of one identifier, or None if it is invalid or blocked."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
        return None
    if is_blocked_value(value, blocked_patterns):
        return None
    t = normalize_type(type_)
    normalized: str | None
    if t == "email":
        normalized = normalize_email(value)
    elif t == "phone":
        normalized = normalize_phone(value, default_region)
    else:
        normalized = value.strip()
    if normalized is None or is_blocked_value(normalized, blocked_patterns):
        return None
    return normalized


def normalize_identifier(
    identifier: IdentifierIn, *, default_region: str, blocked_patterns: Sequence[str]
) -> Identifier | None:
    if not isinstance(identifier.type, str) or not isinstance(identifier.value, str):
        return None
    return _normalize_identifier(
        identifier.type, identifier.value, default_region, tuple(blocked_patterns)
    )


# A batch is normalized twice (the erasure screen, then the write path) and tracking traffic
# repeats the same identifiers: the second time is a lookup.
@lru_cache(maxsize=100_000)
def _normalize_identifier(
    type_: str, value: str, default_region: str, blocked_patterns: tuple[str, ...]
) -> Identifier | None:
    t = normalize_type(type_)
    if not IDENTIFIER_TYPE.fullmatch(t):
        return None
    normalized = normalize_value(
        t, value, default_region=default_region, blocked_patterns=blocked_patterns
    )
    return None if normalized is None else Identifier(t, normalized)


def normalize_identifiers(
    identifiers: Iterable[IdentifierIn], *, default_region: str, blocked_patterns: Sequence[str]
) -> list[Identifier]:
    """Normalized, without duplicates, in first-seen order; invalid and blocked values dropped."""
    seen: dict[str, Identifier] = {}
    for raw in identifiers:
        ident = normalize_identifier(
            raw, default_region=default_region, blocked_patterns=blocked_patterns
        )
        if ident is not None and ident.key not in seen:
            seen[ident.key] = ident
    return list(seen.values())
