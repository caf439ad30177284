"""Pairwise precision and recall from contingency counts, on cases small enough to count by hand."""

from __future__ import annotations

import itertools
import random

from bench.quality import pair_quality, pairs


def _brute(truth: dict[str, str], predicted: dict[str, str]) -> tuple[int, int, int]:
    keys = sorted(truth)
    true_pairs = predicted_pairs = correct = 0
    for a, b in itertools.combinations(keys, 2):
        same_person = truth[a] == truth[b]
        same_profile = predicted.get(a, ("u", a)) == predicted.get(b, ("u", b))
        true_pairs += same_person
        predicted_pairs += same_profile
        correct += same_person and same_profile
    return true_pairs, predicted_pairs, correct


def test_pairs() -> None:
    assert [pairs(n) for n in range(5)] == [0, 0, 1, 3, 6]


def test_perfect_resolution() -> None:
    truth = {"a": "p1", "b": "p1", "c": "p2"}
    q = pair_quality(truth, {"a": "x", "b": "x", "c": "y"})
    assert (q.true_pairs, q.predicted_pairs, q.correct_pairs) == (1, 1, 1)
    assert q.precision == 1.0
    assert q.recall == 1.0


def test_over_merge_costs_precision() -> None:
    # Truth: {a,b} {c,d}. Everything merged into one profile: 6 predicted pairs, 2 correct.
    truth = {"a": "p1", "b": "p1", "c": "p2", "d": "p2"}
    q = pair_quality(truth, dict.fromkeys(truth, "x"))
    assert (q.true_pairs, q.predicted_pairs, q.correct_pairs) == (2, 6, 2)
    assert q.precision == 2 / 6
    assert q.recall == 1.0
    assert q.persons == 2
    assert q.profiles == 1


def test_under_merge_costs_recall() -> None:
    # Truth: one person of three records; resolved as {a,b} and {c}: 1 of 3 pairs found.
    truth = {"a": "p", "b": "p", "c": "p"}
    q = pair_quality(truth, {"a": "x", "b": "x", "c": "y"})
    assert (q.true_pairs, q.predicted_pairs, q.correct_pairs) == (3, 1, 1)
    assert q.precision == 1.0
    assert q.recall == 1 / 3


def test_missing_records_are_singletons() -> None:
    truth = {"a": "p", "b": "p"}
    q = pair_quality(truth, {"a": "x"})
    assert q.predicted_pairs == 0
    assert q.precision == 1.0
    assert q.recall == 0.0
    assert q.profiles == 2


def test_no_pairs_at_all() -> None:
    q = pair_quality({"a": "p1", "b": "p2"}, {"a": "x", "b": "y"})
    assert (q.precision, q.recall) == (1.0, 1.0)


def test_matches_brute_force_on_random_labelings() -> None:
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(1, 30)
        truth = {f"r{i}": f"p{rng.randint(0, 6)}" for i in range(n)}
        predicted = {f"r{i}": f"x{rng.randint(0, 6)}" for i in range(n) if rng.random() < 0.9}
        q = pair_quality(truth, predicted)
        assert (q.true_pairs, q.predicted_pairs, q.correct_pairs) == _brute(truth, predicted)
        d = q.as_dict()
        assert 0.0 <= d["precision"] <= 1.0
        assert 0.0 <= d["recall"] <= 1.0
