"""The benchmark generator: deterministic for a seed, and its ground truth consistent."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

from bench.generator import (
    Dataset,
    GeneratorConfig,
    components,
    crm_rows,
    generate,
    message_records,
    segment_messages,
    write_batches,
    write_crm_csv,
)
from bench.quality import pair_quality

SMALL = GeneratorConfig(records=600, seed=11, heavy_people=2, heavy_interactions=50)


def _fingerprint(data: Dataset) -> str:
    return json.dumps(
        {
            "customers": [repr(c) for c in data.customers],
            "interactions": [repr(i) for i in data.interactions],
            "deals": [repr(d) for d in data.deals],
            "stages": [repr(s) for s in data.stage_changes],
            "truth": data.truth,
        }
    )


def test_same_seed_same_data() -> None:
    assert _fingerprint(generate(SMALL)) == _fingerprint(generate(SMALL))


def test_other_seed_other_data() -> None:
    other = GeneratorConfig(records=600, seed=12, heavy_people=2, heavy_interactions=50)
    assert _fingerprint(generate(SMALL)) != _fingerprint(generate(other))


def test_size_and_sources() -> None:
    data = generate(SMALL)
    assert SMALL.records <= len(data.customers) < SMALL.records + 10
    assert {c.source for c in data.customers} == {"web", "crm", "app"}
    assert data.accounts
    assert data.deals
    assert data.stage_changes
    assert {i.type for i in data.interactions} >= {"call", "email", "meeting", "page", "track"}


def test_truth_is_consistent() -> None:
    data = generate(SMALL)
    keys = [c.key for c in data.customers]
    assert len(keys) == len(set(keys))
    assert set(data.truth) == set(keys)
    assert set(data.truth.values()) <= {p.id for p in data.people}
    # Every reference points at something generated.
    records = {(c.source, c.source_id) for c in data.customers}
    assert all((i.source, i.customer_source_id) in records for i in data.interactions)
    assert all((m.source, m.source_id) in records for m in data.memberships)
    deal_ids = {d.id for d in data.deals}
    assert all(s.deal_id in deal_ids for s in data.stage_changes)
    account_ids = {a.id for a in data.accounts}
    assert all(d.account_id in account_ids for d in data.deals)
    assert all(m.account_id in account_ids for m in data.memberships)
    assert len({i.id for i in data.interactions}) == len(data.interactions)


def test_linking_identifiers_never_cross_people_except_super_connectors() -> None:
    data = generate(SMALL)
    holders: dict[str, set[str]] = {}
    for key, idents in data.link_keys.items():
        for ident in idents:
            holders.setdefault(ident, set()).add(data.truth[key])
    shared = {ident for ident, people in holders.items() if len(people) > 1}
    assert shared == set(data.super_connector_keys)
    assert len(data.super_connector_keys) == SMALL.super_connectors


def test_oracle_without_super_connectors_never_merges_strangers() -> None:
    config = GeneratorConfig(
        records=600, seed=11, super_connectors=0, heavy_people=2, heavy_interactions=50
    )
    data = generate(config)
    q = pair_quality(data.truth, data.oracle)
    assert q.precision == 1.0
    assert 0.3 < q.recall < 1.0  # anonymous sessions that never log in stay apart
    noisy = generate(GeneratorConfig(records=600, seed=11, heavy_people=2, heavy_interactions=50))
    assert pair_quality(noisy.truth, noisy.oracle).precision < 1.0


def test_components() -> None:
    labels = components({"a": ("e:1",), "b": ("e:1", "p:2"), "c": ("p:2",), "d": ("e:9",)})
    assert labels["a"] == labels["b"] == labels["c"]
    assert labels["d"] != labels["a"]


def test_batches_carry_everything_once() -> None:
    data = generate(SMALL)
    batches = list(write_batches(data, size=100))
    assert all(len(b) > 0 for b in batches)
    assert sum(len(b.customers) for b in batches) == len(data.customers)
    assert sum(len(b.interactions) for b in batches) == len(data.interactions)
    assert sum(len(b.stage_changes) for b in batches) == len(data.stage_changes)
    assert sum(len(b.memberships) for b in batches) == len(data.memberships)
    assert all(len(b.customers) <= 100 for b in batches)
    first_interaction = next(i for i, b in enumerate(batches) if b.interactions)
    last_customer = max(i for i, b in enumerate(batches) if b.customers)
    assert last_customer < first_interaction


def test_segment_messages() -> None:
    data = generate(SMALL)
    messages = list(segment_messages(data))
    assert {m["type"] for m in messages} == {"identify", "page", "track"}
    ids = [m["messageId"] for m in messages]
    assert len(ids) == len(set(ids))
    for m in messages:
        assert m.get("userId") or m.get("anonymousId")
        assert len(json.dumps(m)) < 32_000


def test_message_records_are_the_records_the_messages_write() -> None:
    data = generate(SMALL)
    messages = list(segment_messages(data))
    identified, anonymous = message_records(data)
    identifies = [m for m in messages if m["type"] == "identify"]
    events = [m for m in messages if m["type"] != "identify"]
    assert len(identified) == len(identifies)
    assert {m["userId"] for m in identifies} == {
        next((i.value for i in c.identifiers if i.type == "user_id"), c.source_id)
        for c in identified
    }
    assert {c.source_id for c in anonymous} == {m["anonymousId"] for m in events}
    assert len(events) == sum(1 for i in data.interactions if i.source == "web")
    assert len(identified) + len(anonymous) < len(data.customers)  # CRM and silent visits


def test_crm_csv(tmp_path: Path) -> None:
    data = generate(SMALL)
    paths = write_crm_csv(data, tmp_path)
    rows = crm_rows(data)
    for kind, path in paths.items():
        with path.open(newline="") as f:
            read = list(csv.DictReader(f))
        assert read == rows[kind]
    assert len(rows["contacts"]) == sum(1 for c in data.customers if c.source == "crm")


def test_data_sets_with_other_prefix_and_block_share_no_identifier() -> None:
    a = generate(GeneratorConfig(records=400, seed=1, prefix="a-", block=0, heavy_people=1))
    b = generate(GeneratorConfig(records=400, seed=1, prefix="b-", block=1, heavy_people=1))
    keys_a = {k for idents in a.link_keys.values() for k in idents}
    keys_b = {k for idents in b.link_keys.values() for k in idents}
    assert not keys_a & keys_b
    assert not set(a.truth) & set(b.truth)


def test_data_sets_of_one_block_with_offsets_apart_share_no_identifier() -> None:
    base = GeneratorConfig(records=400, seed=1, block=6, super_connectors=0, heavy_people=0)
    a = generate(replace(base, prefix="a-"))
    b = generate(replace(base, prefix="b-", phone_offset=20 * base.records))
    keys_a = {k for idents in a.link_keys.values() for k in idents}
    keys_b = {k for idents in b.link_keys.values() for k in idents}
    assert any(k.startswith("phone:") for k in keys_a)
    assert not keys_a & keys_b


def test_generated_phones_and_emails_normalize_to_their_link_keys() -> None:
    from customer_graph.graph.normalize import DEFAULT_BLOCKED_PATTERNS, normalize_identifiers

    data = generate(SMALL)
    for customer in data.customers[:300]:
        found = normalize_identifiers(
            customer.identifiers, default_region="US", blocked_patterns=DEFAULT_BLOCKED_PATTERNS
        )
        assert {i.key for i in found} == set(data.link_keys[customer.key])
