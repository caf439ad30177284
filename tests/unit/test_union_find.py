"""The product's union-find and `resolve` against the BFS oracle."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from customer_graph.graph.normalize import Identifier
from customer_graph.graph.resolution import (
    ProfileState,
    RecordState,
    ResolutionConfig,
    UnionFind,
    resolve,
)
from tests.oracle import components, partition

records_strategy = st.dictionaries(
    st.sampled_from([f"r{i}" for i in range(12)]),
    st.lists(st.sampled_from([f"i{i}" for i in range(10)]), max_size=3),
    min_size=1,
)


def test_oracle_joins_through_intermediate_records() -> None:
    got = components({"a": ["x"], "b": ["x", "y"], "c": ["y"], "d": ["z"], "e": []})
    assert got == {frozenset({"a", "b", "c"}), frozenset({"d"}), frozenset({"e"})}


def test_union_find_basics() -> None:
    uf: UnionFind[str] = UnionFind(["a", "b", "c"])
    assert uf.find("a") != uf.find("b")
    uf.union("a", "b")
    assert uf.find("a") == uf.find("b") != uf.find("c")
    assert sorted(map(sorted, uf.groups().values())) == [["a", "b"], ["c"]]


@given(records_strategy)
def test_union_find_equals_oracle(records: dict[str, list[str]]) -> None:
    uf: UnionFind[str] = UnionFind()
    for record, identifiers in records.items():
        uf.add("r:" + record)
        for ident in identifiers:
            uf.union("r:" + record, "i:" + ident)
    got = partition({r: uf.find("r:" + r) for r in records})
    assert got == components(records)


@given(records_strategy, st.randoms(use_true_random=False))
def test_resolve_without_limits_in_batches_equals_oracle(
    records: dict[str, list[str]], rnd: random.Random
) -> None:
    """Feeding `resolve` batch after batch, as the write path does, yields the components."""
    config = ResolutionConfig(limits_enabled=False)
    order = list(records)
    rnd.shuffle(order)
    counter = itertools.count()
    profile_of: dict[str, str] = {}
    ident_profiles: dict[str, set[str]] = {}
    created: dict[str, ProfileState] = {}
    while order:
        size = rnd.randint(1, 4)
        batch, order = order[:size], order[size:]
        states = [
            RecordState(
                key=r,
                profile_id=None,
                pending=tuple(Identifier("x", i) for i in dict.fromkeys(records[r])),
            )
            for r in batch
        ]
        live = {p for ps in ident_profiles.values() for p in ps}
        decision = resolve(
            states,
            {f"x:{k}": v for k, v in ident_profiles.items()},
            {p: created[p] for p in live},
            config,
            new_id=lambda: f"p{next(counter)}",
        )
        for pid in decision.new_profile_ids:
            created[pid] = ProfileState(pid, datetime.now(UTC))
        merged_into = {m: plan.survivor_id for plan in decision.merges for m in plan.merged_ids}
        profile_of = {r: merged_into.get(p, p) for r, p in profile_of.items()}
        profile_of.update(decision.record_profiles)
        ident_profiles = {}
        for r, p in profile_of.items():
            for i in records[r]:
                ident_profiles.setdefault(i, set()).add(p)
    assert partition(profile_of) == components(records)


def test_resolve_limits_leave_edge_unmatched() -> None:
    config = ResolutionConfig(limits={"user_id": 1})
    old = ProfileState("p-old", datetime(2020, 1, 1, tzinfo=UTC), {"user_id": frozenset({"u1"})})
    rec = RecordState(
        "r", None, (Identifier("email", "a@example.com"), Identifier("user_id", "u2"))
    )
    decision = resolve(
        [rec], {"email:a@example.com": ["p-old"]}, {"p-old": old}, config, new_id=lambda: "new"
    )
    # user_id is tried first and binds the record; the email would bring a second user_id.
    assert decision.matched == {("r", "user_id:u2"): True, ("r", "email:a@example.com"): False}
    assert decision.conflicts == 1
    assert decision.record_profiles == {"r": "new"}


def test_resolve_oldest_profile_survives_and_names_the_trigger() -> None:
    config = ResolutionConfig()
    young = ProfileState("a-young", datetime(2024, 1, 1, tzinfo=UTC))
    old = ProfileState("z-old", datetime(2020, 1, 1, tzinfo=UTC))
    rec = RecordState(
        "r", None, (Identifier("email", "a@example.com"), Identifier("phone", "+16502530000"))
    )
    decision = resolve(
        [rec],
        {"email:a@example.com": ["a-young"], "phone:+16502530000": ["z-old"]},
        {"a-young": young, "z-old": old},
        config,
        new_id=lambda: "new",
    )
    assert decision.record_profiles == {"r": "z-old"}
    assert len(decision.merges) == 1
    merge = decision.merges[0]
    assert (merge.survivor_id, merge.merged_ids) == ("z-old", ("a-young",))
    assert merge.identifier_key == "phone:+16502530000"
    assert merge.record_key == "r"
    assert decision.new_profile_ids == []
