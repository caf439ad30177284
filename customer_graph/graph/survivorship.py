"""Unified traits: one value per field across a profile's records, by a per-field rule.

Rules:
- `recent` (default): the most recently written non-empty value (each record keeps the time it
  last wrote each field, so an old event replayed late does not win);
- `source_priority`: the value of the first source in the configured order that has one, then
  `recent` among the rest;
- `oldest`: the first value ever written;
- `max`, `min`: the largest or smallest numeric value (non-numbers are ignored);
- `sum`: the sum of the numeric values of all records.
Ties are broken by record key, so the result does not depend on read order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RULES: frozenset[str] = frozenset({"recent", "source_priority", "oldest", "max", "min", "sum"})


@dataclass(frozen=True, slots=True)
class RecordTraits:
    """What one record contributes: its traits and when it wrote each of them."""

    key: str
    source: str
    traits: Mapping[str, Any]
    trait_times: Mapping[str, datetime] = field(default_factory=dict)
    updated_at: datetime | None = None

    def time_of(self, name: str) -> datetime | None:
        return self.trait_times.get(name, self.updated_at)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and len(value) == 0)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
    return None


def _by_time(candidates: list[tuple[RecordTraits, Any]], name: str, newest: bool) -> Any:
    def key(item: tuple[RecordTraits, Any]) -> tuple[bool, datetime | None, str]:
        rec = item[0]
        t = rec.time_of(name)
        return (t is not None, t, rec.key)

    known = [c for c in candidates if c[0].time_of(name) is not None]
    pool = known or candidates
    if not known:
        chosen = max(pool, key=lambda c: c[0].key) if newest else min(pool, key=lambda c: c[0].key)
        return chosen[1]
    chosen = max(pool, key=key) if newest else min(pool, key=key)
    return chosen[1]


def survive(
    name: str,
    candidates: list[tuple[RecordTraits, Any]],
    rule: str,
    source_priority: Sequence[str],
) -> Any:
    """The unified value of one field from its non-empty (record, value) candidates."""
    if rule == "source_priority":
        for source in source_priority:
            ranked = [c for c in candidates if c[0].source == source]
            if ranked:
                return _by_time(ranked, name, newest=True)
        return _by_time(candidates, name, newest=True)
    if rule == "oldest":
        return _by_time(candidates, name, newest=False)
    if rule in ("max", "min", "sum"):
        numbers = [n for n in (_number(v) for _, v in candidates) if n is not None]
        if not numbers:
            return _by_time(candidates, name, newest=True)
        if rule == "max":
            return max(numbers)
        if rule == "min":
            return min(numbers)
        return sum(numbers)
    return _by_time(candidates, name, newest=True)


def unify(
    records: Sequence[RecordTraits],
    rules: Mapping[str, str],
    *,
    default_rule: str = "recent",
    source_priority: Sequence[str] = (),
) -> dict[str, Any]:
    """The unified traits of a profile, fields in sorted order."""
    by_field: dict[str, list[tuple[RecordTraits, Any]]] = {}
    for rec in records:
        for name, value in rec.traits.items():
            if not is_empty(value):
                by_field.setdefault(name, []).append((rec, value))
    return {
        name: survive(name, candidates, rules.get(name, default_rule), source_priority)
        for name, candidates in sorted(by_field.items())
    }


def merge_record_traits(
    current: Mapping[str, Any],
    current_times: Mapping[str, datetime],
    incoming: Mapping[str, Any],
    at: datetime,
) -> tuple[dict[str, Any], dict[str, datetime]]:
    """A record's traits after a write: non-null incoming values overwrite unless older.

    A value written at `at` replaces the stored one only if the stored one was not written later,
    so replays and late, out-of-order events leave the newest value in place.
    """
    traits = dict(current)
    times = dict(current_times)
    for name, value in incoming.items():
        if value is None:
            continue
        stored_at = times.get(name)
        if stored_at is not None and stored_at > at:
            continue
        traits[name] = value
        times[name] = at
    return traits, times


def display_fields(traits: Mapping[str, Any]) -> dict[str, str | None]:
    """displayName and company of a profile from its unified traits (Segment's spec names)."""
    name = _text(traits.get("name"))
    if name is None:
        first = _text(traits.get("first_name") or traits.get("firstName"))
        last = _text(traits.get("last_name") or traits.get("lastName"))
        name = " ".join(p for p in (first, last) if p) or None
    company_value = traits.get("company")
    if isinstance(company_value, Mapping):
        company = _text(company_value.get("name"))
    else:
        company = _text(company_value) or _text(traits.get("company_name"))
    return {"displayName": name, "company": company}


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
