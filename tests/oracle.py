"""The identity oracle: connected components of records over shared identifiers, by BFS.

Deliberately independent of the product's union-find, so the two check each other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping


def components(record_identifiers: Mapping[str, Iterable[str]]) -> set[frozenset[str]]:
    """Partition of the records: two records are together iff a chain of shared identifiers
    joins them."""
    by_identifier: dict[str, list[str]] = {}
    for record, identifiers in record_identifiers.items():
        for ident in set(identifiers):
            by_identifier.setdefault(ident, []).append(record)
    seen: set[str] = set()
    out: set[frozenset[str]] = set()
    for start in record_identifiers:
        if start in seen:
            continue
        group = {start}
        queue = deque([start])
        seen.add(start)
        while queue:
            record = queue.popleft()
            for ident in set(record_identifiers[record]):
                for other in by_identifier[ident]:
                    if other not in seen:
                        seen.add(other)
                        group.add(other)
                        queue.append(other)
        out.add(frozenset(group))
    return out


def partition(assignment: Mapping[str, str]) -> set[frozenset[str]]:
    """The partition a record -> group mapping describes."""
    groups: dict[str, set[str]] = {}
    for record, group in assignment.items():
        groups.setdefault(group, set()).add(record)
    return {frozenset(g) for g in groups.values()}
