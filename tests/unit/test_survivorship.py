"""Unified traits: per-field survivorship rules across a profile's records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from customer_graph.graph.survivorship import (
    RecordTraits,
    display_fields,
    merge_record_traits,
    unify,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def rec(key: str, source: str, traits: dict[str, object], days: int) -> RecordTraits:
    at = T0 + timedelta(days=days)
    return RecordTraits(key, source, traits, {k: at for k in traits}, at)


RECORDS = [
    rec("crm:1", "crm", {"name": "Jane Doe", "plan": "basic", "ltv": 10, "city": ""}, 1),
    rec("web:1", "web", {"name": "jane", "plan": "pro", "ltv": "5.5", "city": None}, 3),
    rec("app:1", "app", {"name": None, "plan": "team", "ltv": "n/a", "city": "Oslo"}, 2),
]


def test_default_is_most_recent_non_empty() -> None:
    got = unify(RECORDS, {})
    assert got == {"name": "jane", "plan": "pro", "ltv": "5.5", "city": "Oslo"}


def test_source_priority_then_recent() -> None:
    got = unify(RECORDS, {"name": "source_priority"}, source_priority=("crm", "web"))
    assert got["name"] == "Jane Doe"
    got = unify(RECORDS, {"plan": "source_priority"}, source_priority=("app",))
    assert got["plan"] == "team"
    got = unify(RECORDS, {"plan": "source_priority"}, source_priority=("nowhere",))
    assert got["plan"] == "pro"


def test_oldest_max_min_sum() -> None:
    got = unify(RECORDS, {"plan": "oldest", "ltv": "sum"})
    assert got["plan"] == "basic"
    assert got["ltv"] == 15.5
    assert unify(RECORDS, {"ltv": "max"})["ltv"] == 10
    assert unify(RECORDS, {"ltv": "min"})["ltv"] == 5.5


def test_result_does_not_depend_on_record_order() -> None:
    rules = {"ltv": "sum", "plan": "oldest"}
    assert unify(RECORDS, rules) == unify(list(reversed(RECORDS)), rules)


def test_late_old_event_does_not_overwrite_newer_value() -> None:
    traits, times = merge_record_traits({}, {}, {"plan": "pro"}, T0 + timedelta(days=2))
    traits, times = merge_record_traits(traits, times, {"plan": "basic", "x": None}, T0)
    assert traits == {"plan": "pro"}
    traits, times = merge_record_traits(traits, times, {"plan": "team"}, T0 + timedelta(days=3))
    assert traits == {"plan": "team"}
    assert times["plan"] == T0 + timedelta(days=3)


def test_display_fields() -> None:
    assert display_fields({"first_name": "Jane", "last_name": "Doe"}) == {
        "displayName": "Jane Doe",
        "company": None,
    }
    assert display_fields({"name": " Jane ", "company": {"name": "Acme"}}) == {
        "displayName": "Jane",
        "company": "Acme",
    }
