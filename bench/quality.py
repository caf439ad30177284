"""Resolution quality: precision and recall of same-person pairs against the ground truth.

A pair of records is "same person" in the truth when both belong to one person, and "predicted"
when both resolved to one profile. With n records there are n(n-1)/2 pairs, far too many to list
at 1M records; but every count needed is a sum of C(k, 2) over the cells of the contingency table
of (true person, resolved profile):

    true pairs       = sum over persons   C(|person|, 2)
    predicted pairs  = sum over profiles  C(|profile|, 2)
    correct pairs    = sum over cells     C(|person ∩ profile|, 2)

precision = correct / predicted, recall = correct / true (1.0 when the denominator is 0: no
prediction made is no wrong prediction, no pair to find is none missed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from neo4j import AsyncDriver, RoutingControl


def pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class PairQuality:
    records: int
    persons: int
    profiles: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
        }


def pair_quality(
    truth: Mapping[str, Hashable], predicted: Mapping[str, Hashable | None]
) -> PairQuality:
    """Compare two labelings of the same records (the keys of `truth`).

    A record missing from `predicted` (or predicted None) is a profile of its own.
    """
    person_sizes: Counter[Hashable] = Counter()
    profile_sizes: Counter[Hashable] = Counter()
    cells: Counter[tuple[Hashable, Hashable]] = Counter()
    for key, person in truth.items():
        label = predicted.get(key)
        profile: Hashable = ("unresolved", key) if label is None else label
        person_sizes[person] += 1
        profile_sizes[profile] += 1
        cells[(person, profile)] += 1
    return PairQuality(
        records=len(truth),
        persons=len(person_sizes),
        profiles=len(profile_sizes),
        true_pairs=sum(pairs(n) for n in person_sizes.values()),
        predicted_pairs=sum(pairs(n) for n in profile_sizes.values()),
        correct_pairs=sum(pairs(n) for n in cells.values()),
    )


# The profile each record resolves to now (records move to the survivor on a merge).
RECORD_PROFILES = """
UNWIND $keys AS key
MATCH (c:Customer {key: key})-[:RESOLVES_TO]->(p:Profile)
RETURN c.key AS key, p.id AS profile
"""


async def resolved_profiles(
    driver: AsyncDriver, database: str, keys: Sequence[str], chunk: int = 20_000
) -> dict[str, str]:
    """customer key -> profile id, read from the graph in chunks."""
    out: dict[str, str] = {}
    for i in range(0, len(keys), chunk):
        records, _, _ = await driver.execute_query(
            RECORD_PROFILES,
            keys=list(keys[i : i + chunk]),
            database_=database,
            routing_=RoutingControl.READ,
        )
        for record in records:
            out[record["key"]] = record["profile"]
    return out
