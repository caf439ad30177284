"""Identifier normalization: the table of what becomes an identifier and what does not."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_graph.graph.normalize import (
    DEFAULT_BLOCKED_PATTERNS,
    Identifier,
    is_blocked_value,
    normalize_email,
    normalize_identifiers,
    normalize_type,
    normalize_value,
)
from customer_graph.graph.records import IdentifierIn


def norm(type_: str, value: str, region: str = "US") -> str | None:
    return normalize_value(
        type_, value, default_region=region, blocked_patterns=DEFAULT_BLOCKED_PATTERNS
    )


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        # Emails: trimmed, lower-cased whole, validated without DNS.
        ("email", "Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("email", "   jane@example.com\t", "jane@example.com"),
        ("email", "JANE+TAG@EXAMPLE.ORG", "jane+tag@example.org"),
        ("email", "jane@", None),
        ("email", "not an email", None),
        ("email", "jane@localhost", None),
        ("email", "a@b", None),
        ("email", "TEST@test.com", None),  # blocked placeholder, any case
        # Phones: E.164 with the default region for national formats.
        ("phone", "(650) 253-0000", "+16502530000"),
        ("phone", "650.253.0000", "+16502530000"),
        ("phone", "+1 650 253 0000", "+16502530000"),
        ("phone", "011 44 20 7946 0018", "+442079460018"),  # US exit code
        ("phone", "+44 20 7946 0018", "+442079460018"),
        ("phone", "12345", None),
        ("phone", "call me", None),
        ("phone", "", None),
        # Other ids: trimmed, case kept.
        ("user_id", "  U-42 ", "U-42"),
        ("anonymous_id", "3f2a-bc", "3f2a-bc"),
        # Segment's blocked defaults.
        ("user_id", "0", None),
        ("user_id", "000-000", None),
        ("user_id", "-1", None),
        ("user_id", "NULL", None),
        ("user_id", "None", None),
        ("user_id", "undefined", None),
        ("anonymous_id", "Anonymous", None),
        ("user_id", "unknown", None),
        ("user_id", "N/A", None),
        ("user_id", "   ", None),
        ("user_id", "-12", "-12"),
        ("user_id", "nullable", "nullable"),
    ],
)
def test_normalization_table(type_: str, value: str, expected: str | None) -> None:
    assert norm(type_, value) == expected


def test_national_phone_uses_the_default_region() -> None:
    assert norm("phone", "020 7946 0018", region="GB") == "+442079460018"
    assert norm("phone", "020 7946 0018", region="US") is None


def test_types_are_normalized() -> None:
    assert normalize_type(" Email ") == "email"
    assert normalize_type("userId") == "user_id"
    assert normalize_type("anonymousId") == "anonymous_id"
    assert normalize_type("salesforce_id") == "salesforce_id"


def test_identifiers_deduplicate_and_drop_garbage() -> None:
    got = normalize_identifiers(
        [
            IdentifierIn("email", "A@Example.com"),
            IdentifierIn("Email", " a@example.com "),
            IdentifierIn("email", "garbage"),
            IdentifierIn("userId", "null"),
            IdentifierIn("phone", "(650) 253-0000"),
            IdentifierIn("", "x"),
        ],
        default_region="US",
        blocked_patterns=DEFAULT_BLOCKED_PATTERNS,
    )
    assert got == [Identifier("email", "a@example.com"), Identifier("phone", "+16502530000")]
    assert got[0].key == "email:a@example.com"


def test_configured_patterns_block_case_insensitively() -> None:
    patterns = (*DEFAULT_BLOCKED_PATTERNS, r".*@mailinator\.com")
    assert is_blocked_value("Someone@MAILINATOR.com", patterns)
    assert not is_blocked_value("someone@example.com", patterns)
    assert (
        normalize_value("email", "x@mailinator.com", default_region="US", blocked_patterns=patterns)
        is None
    )


@pytest.mark.parametrize(
    "value",
    [
        "jane@example.com",
        "Jane.Doe+tag@Sub.Example.CO.uk",
        "a_b-c%d@example.com",
        ".jane@example.com",
        "jane.@example.com",
        "ja..ne@example.com",
        "jane@localhost",
        "jane@example.test",
        "jane@example.invalid",
        "jane@-example.com",
        "jane@example-.com",
        "jane@example..com",
        "jane@.example.com",
        "jane@example.com.",
        "jane@123.456",
        "jane@xn--bcher-kva.example",
        "jane@xn--zz.example",
        "postmaster@example.com",
        "x" * 64 + "@example.com",
        "x" * 65 + "@example.com",
        "x" * 200 + "@" + "d" * 40 + ".com",
        "x" * 200 + "@" + "d" * 60 + ".com",
        "jane@" + "d" * 64 + ".com",
        "jane@a.b",
        "jane@example.c0m",
        "jane@example.museum",
    ],
)
def test_the_fast_email_path_answers_like_email_validator(value: str) -> None:
    assert normalize_email(value) == _email_validator(value)


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9_%+.\-]{1,70}@[A-Za-z0-9.\-]{1,70}", fullmatch=True)
    | st.from_regex(r"[a-z.]{1,12}@(?:[a-z0-9\-]{1,8}\.){1,3}[a-z]{1,6}", fullmatch=True)
)
def test_the_fast_email_path_answers_like_email_validator_on_any_plain_address(
    value: str,
) -> None:
    assert normalize_email(value) == _email_validator(value)


def _email_validator(value: str) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None
