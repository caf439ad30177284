"""Segment payloads: validation (index and field of each problem) and mapping to WriteBatch."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from customer_graph.auth import key_from_authorization
from customer_graph.graph.records import IdentifierIn
from customer_graph.ingestion.http import _BodyError, gunzip_bounded
from customer_graph.ingestion.segment import (
    MAX_BATCH_MESSAGES,
    InvalidPayloadError,
    PayloadTooLargeError,
    parse_request,
    replay_item,
)
from customer_graph.ingestion.workers import WorkItem, payload_json

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def parse_one(message: dict[str, Any], kind: Any = None) -> WorkItem:
    body = message if kind else {"batch": [message]}
    items = parse_request(body, kind=kind, source="web", received_at=RECEIVED)
    assert len(items) == 1
    return items[0]


def errors_of(body: Any, kind: Any = None) -> list[tuple[int, str]]:
    with pytest.raises(InvalidPayloadError) as caught:
        parse_request(body, kind=kind, source="web", received_at=RECEIVED)
    return [(e.index, e.field) for e in caught.value.errors]


def test_identify_maps_to_the_user_record_with_every_identifier() -> None:
    item = parse_one(
        {
            "type": "identify",
            "messageId": "m1",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"email": "Ann@Example.com", "phone": "+1 415 555 0100", "plan": "pro"},
            "context": {"externalIds": [{"id": "0031x", "type": "salesforce_id"}]},
        }
    )
    assert item.key == "web:m1"
    assert item.type == "identify"
    (customer,) = item.batch.customers
    assert (customer.source, customer.source_id) == ("web", "u1")
    assert customer.traits == {
        "email": "Ann@Example.com",
        "phone": "+1 415 555 0100",
        "plan": "pro",
    }
    assert customer.identifiers == (
        IdentifierIn("user_id", "u1"),
        IdentifierIn("anonymous_id", "a1"),
        IdentifierIn("email", "Ann@Example.com"),
        IdentifierIn("phone", "+1 415 555 0100"),
        IdentifierIn("salesforce_id", "0031x"),
    )
    assert customer.message_id == "m1"
    assert item.batch.interactions == ()


def test_identify_without_user_id_is_the_anonymous_record() -> None:
    item = parse_one({"type": "identify", "messageId": "m2", "anonymousId": "anon-7"})
    (customer,) = item.batch.customers
    assert customer.source_id == "anon-7"
    assert customer.identifiers == (IdentifierIn("anonymous_id", "anon-7"),)


def test_numeric_user_ids_become_strings() -> None:
    (customer,) = parse_one({"type": "identify", "messageId": "m", "userId": 42}).batch.customers
    assert customer.source_id == "42"


def test_track_is_an_interaction_on_its_record() -> None:
    item = parse_one(
        {
            "type": "track",
            "messageId": "m3",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"revenue": 42.5, "items": [1, 2]},
            "timestamp": "2024-05-01T11:00:00Z",
        }
    )
    (customer,) = item.batch.customers
    assert customer.source_id == "u1"
    (interaction,) = item.batch.interactions
    assert interaction.id == "web:m3"
    assert interaction.type == "track"
    assert interaction.name == "Order Completed"
    assert interaction.customer_source_id == "u1"
    assert interaction.properties == {"revenue": 42.5, "items": [1, 2]}
    assert interaction.message_id == "m3"
    assert interaction.occurred_at == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


def test_page_and_screen_carry_their_name_and_category() -> None:
    page = parse_one(
        {"type": "page", "messageId": "p", "anonymousId": "a", "name": "Pricing", "category": "D"}
    )
    (interaction,) = page.batch.interactions
    assert (interaction.type, interaction.name, interaction.channel) == ("page", "Pricing", "web")
    assert interaction.properties == {"category": "D"}
    screen = parse_one({"type": "screen", "messageId": "s", "userId": "u", "name": "Home"})
    assert [(i.type, i.name) for i in screen.batch.interactions] == [("screen", "Home")]


def test_group_is_an_account_membership() -> None:
    item = parse_one(
        {
            "type": "group",
            "messageId": "g",
            "userId": "u1",
            "groupId": "acme",
            "traits": {"name": "Acme Inc", "website": "https://www.acme.com/about"},
        }
    )
    (account,) = item.batch.accounts
    assert (account.id, account.name, account.domain) == ("web:acme", "Acme Inc", "acme.com")
    (membership,) = item.batch.memberships
    assert (membership.source, membership.source_id, membership.account_id) == (
        "web",
        "u1",
        "web:acme",
    )
    assert [c.source_id for c in item.batch.customers] == ["u1"]


def test_alias_joins_previous_id_and_user_id() -> None:
    item = parse_one({"type": "alias", "messageId": "al", "previousId": "anon-1", "userId": "u9"})
    (customer,) = item.batch.customers
    assert customer.source_id == "u9"
    assert customer.identifiers == (
        IdentifierIn("user_id", "u9"),
        IdentifierIn("anonymous_id", "anon-1"),
    )


def test_timestamp_is_corrected_by_the_clock_skew() -> None:
    # The device clock is 1 hour fast: it says it sent at 13:00 what it recorded at 12:59:30.
    item = parse_one(
        {
            "type": "track",
            "event": "e",
            "messageId": "t",
            "userId": "u",
            "timestamp": "2024-05-01T12:59:30Z",
            "sentAt": "2024-05-01T13:00:00Z",
        }
    )
    assert item.batch.interactions[0].occurred_at == RECEIVED - timedelta(seconds=30)


def test_original_timestamp_and_batch_sent_at_are_used() -> None:
    items = parse_request(
        {
            "sentAt": "2024-05-01T10:00:10+00:00",
            "batch": [
                {
                    "type": "track",
                    "event": "e",
                    "messageId": "o",
                    "userId": "u",
                    "originalTimestamp": "2024-05-01T10:00:00+00:00",
                    "timestamp": "2000-01-01T00:00:00Z",
                }
            ],
        },
        kind=None,
        source="web",
        received_at=RECEIVED,
    )
    assert items[0].batch.interactions[0].occurred_at == RECEIVED - timedelta(seconds=10)


def test_without_sent_at_the_timestamp_stands_and_without_any_it_is_receipt() -> None:
    given = parse_one(
        {"type": "track", "event": "e", "messageId": "a", "userId": "u", "timestamp": "2020-01-01"}
    )
    assert given.batch.interactions[0].occurred_at == datetime(2020, 1, 1, tzinfo=UTC)
    none = parse_one({"type": "track", "event": "e", "messageId": "b", "userId": "u"})
    assert none.batch.interactions[0].occurred_at == RECEIVED


def test_single_endpoints_take_the_type_from_the_path() -> None:
    item = parse_one({"messageId": "x", "userId": "u", "event": "Clicked"}, kind="track")
    assert item.type == "track"
    assert errors_of({"type": "identify", "userId": "u"}, kind="track") == [(0, "type")]


def test_missing_message_id_is_derived_from_the_content() -> None:
    message = {"type": "track", "event": "e", "userId": "u", "timestamp": "2024-01-01T00:00:00Z"}
    first = parse_one({**message, "sentAt": "2024-01-01T00:00:01Z"})
    resent = parse_one({**message, "sentAt": "2024-01-01T00:05:00Z"})
    other = parse_one({**message, "event": "f"})
    assert first.message_id and first.message_id.startswith("cg-")
    assert first.message_id == resent.message_id != other.message_id


def test_errors_name_the_message_and_the_field() -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "ok", "messageId": "1"},
            {"type": "identify", "messageId": "2", "traits": {"email": "x@example.com"}},
            {"type": "track", "userId": "u", "messageId": "3"},
            {"type": "identify", "userId": "u", "traits": ["not", "a", "map"]},
            {"type": "track", "userId": "u", "event": "e", "timestamp": "yesterday-ish"},
            {"type": "whatever", "userId": "u"},
            {"type": "identify", "userId": {"nested": 1}},
            {"type": "group", "userId": "u"},
            {"type": "identify", "userId": "u", "context": {"externalIds": [{"type": "crm"}]}},
            "not an object",
        ]
    }
    assert errors_of(body) == [
        (1, "userId"),
        (2, "event"),
        (3, "traits"),
        (4, "timestamp"),
        (5, "type"),
        (6, "userId"),
        (7, "groupId"),
        (8, "context.externalIds.0.id"),
        (9, ""),
    ]


def test_a_corrected_time_out_of_range_is_refused() -> None:
    message = {
        "type": "track",
        "event": "e",
        "userId": "u",
        "timestamp": "0001-01-01T00:00:00Z",
        "sentAt": "9999-01-01T00:00:00Z",
    }
    assert errors_of({"batch": [message]}) == [(0, "timestamp")]


def test_blank_ids_count_as_missing() -> None:
    assert errors_of({"batch": [{"type": "track", "event": "e", "userId": "  "}]}) == [
        (0, "userId")
    ]
    assert errors_of({"type": "alias", "userId": "u"}, kind="alias") == [(0, "previousId")]


def test_bodies_that_are_not_batches_are_refused() -> None:
    assert errors_of([1, 2]) == [(0, "")]
    assert errors_of({"batch": {"type": "track"}}) == [(0, "batch")]


def test_limits_are_enforced_before_anything_is_queued() -> None:
    big = {"type": "identify", "userId": "u", "traits": {"blob": "x" * (33 * 1024)}}
    with pytest.raises(PayloadTooLargeError) as caught:
        parse_request({"batch": [{"type": "identify", "userId": "u"}, big]}, **_args())
    assert caught.value.index == 1
    many = [{"type": "identify", "userId": "u"}] * (MAX_BATCH_MESSAGES + 1)
    with pytest.raises(PayloadTooLargeError):
        parse_request({"batch": many}, **_args())


def test_batch_context_is_merged_into_each_message() -> None:
    items = parse_request(
        {
            "context": {"externalIds": [{"id": "E1", "type": "crm_id"}]},
            "batch": [{"type": "identify", "userId": "u", "messageId": "m"}],
        },
        **_args(),
    )
    assert IdentifierIn("crm_id", "E1") in items[0].batch.customers[0].identifiers


def test_dead_letter_payload_replays_to_the_same_write() -> None:
    item = parse_one(
        {
            "type": "track",
            "event": "e",
            "messageId": "r",
            "userId": "u",
            "timestamp": "2024-05-01T11:00:00Z",
            "sentAt": "2024-05-01T11:00:05Z",
            "writeKey": "secret",
        }
    )
    assert item.payload is not None
    payload = json.loads(item.payload)
    assert "writeKey" not in payload
    replayed = replay_item(payload, source="web")
    assert replayed.key == item.key
    assert replayed.batch == item.batch


def test_keys_are_read_from_basic_and_bearer_headers() -> None:
    basic = base64.b64encode(b"cg_abc:").decode()
    assert key_from_authorization(f"Basic {basic}") == "cg_abc"
    assert key_from_authorization("Bearer cg_xyz") == "cg_xyz"
    assert key_from_authorization("Basic %%%") is None
    assert key_from_authorization("Digest abc") is None
    assert key_from_authorization(None) is None


def test_gunzip_is_bounded() -> None:
    small = gzip.compress(b'{"batch": []}')
    assert gunzip_bounded(small, 1000) == b'{"batch": []}'
    bomb = gzip.compress(b"0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(_BodyError) as caught:
        gunzip_bounded(bomb, 500 * 1024)
    assert caught.value.status == 413
    with pytest.raises(_BodyError) as truncated:
        gunzip_bounded(small[:-6], 1000)
    assert truncated.value.status == 400


def _args() -> dict[str, Any]:
    return {"kind": None, "source": "web", "received_at": RECEIVED}


def test_a_stored_payload_reads_back_as_the_message_was() -> None:
    message = {
        "type": "identify",
        "userId": "u-1",
        "traits": {"name": "Zoë 李", "big": 2**70, "ratio": 0.1, "tags": ["a", None, True]},
        "context": {"ip": "203.0.113.9", "nested": {"deep": [1.5e300, -0.0]}},
    }
    text = payload_json(message)
    assert json.loads(text) == message
    assert "Zoë 李" in text  # UTF-8 as sent, not \\u escapes
    assert ", " not in text and ": " not in text  # compact: its length is the message's size
