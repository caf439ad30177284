"""Identity resolution decisions: which records join which profiles, as pure Python.

The write path (graph/writes.py) reads the neighbourhood of a batch from the graph under locks,
hands it to `resolve`, and writes back what `resolve` decided. Keeping the decision pure makes it
testable without Neo4j and keeps the Cypher simple.

How `resolve` decides, record by record in arrival order:
- a record starts in its own profile (an existing one, or a new one if it has none);
- its new identifier edges are tried highest priority first; an identifier joins the record's
  profile with every profile already holding it (through matched edges), unless the joined
  profile would hold more distinct values of some type than that type's limit; then the edge is
  left unmatched (`matched: false`, a conflict) and links nothing, as Segment drops its
  lowest-priority identifiers;
- when profiles that existed before the batch join, the oldest (createdAt, then id) survives and
  the others are merged into it; profiles that only the batch itself would have created are
  never created, so no MergeEvent is written for them.

Edges decided earlier keep their decision: replaying a write therefore decides nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from customer_graph.graph.normalize import DEFAULT_BLOCKED_PATTERNS, Identifier

if TYPE_CHECKING:
    from customer_graph.settings import Settings

K = TypeVar("K")

DEFAULT_LIMITS: dict[str, int] = {"user_id": 1}
DEFAULT_LIMIT = 5
# Highest priority first; types not listed come after, alphabetically.
DEFAULT_PRIORITIES: tuple[str, ...] = ("user_id", "email", "phone", "device_id", "anonymous_id")


@dataclass(frozen=True)
class ResolutionConfig:
    """How identities resolve; built from Settings by `resolution_config`."""

    default_region: str = "US"
    blocked_patterns: tuple[str, ...] = DEFAULT_BLOCKED_PATTERNS
    limits_enabled: bool = True
    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    default_limit: int = DEFAULT_LIMIT
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    # Unified traits: field -> rule (recent, source_priority, oldest, max, min, sum).
    survivorship: Mapping[str, str] = field(default_factory=dict)
    default_survivorship: str = "recent"
    source_priority: tuple[str, ...] = ()

    def limit(self, type_: str) -> int:
        return self.limits.get(type_, self.default_limit)

    def priority(self, type_: str) -> tuple[int, str]:
        """Sort key: lower sorts first (higher priority)."""
        try:
            return (self.priorities.index(type_), type_)
        except ValueError:
            return (len(self.priorities), type_)


def resolution_config(settings: Settings) -> ResolutionConfig:
    return ResolutionConfig(
        default_region=settings.resolution_default_region,
        blocked_patterns=(
            *settings.resolution_blocked_patterns,
            *settings.resolution_extra_blocked_patterns,
        ),
        limits_enabled=settings.resolution_limits_enabled,
        limits=dict(settings.resolution_limits),
        default_limit=settings.resolution_default_limit,
        priorities=tuple(settings.resolution_priorities),
        survivorship=dict(settings.resolution_survivorship),
        default_survivorship=settings.resolution_default_survivorship,
        source_priority=tuple(settings.resolution_source_priority),
    )


class UnionFind(Generic[K]):
    """Disjoint sets with path halving and union by size."""

    def __init__(self, items: Iterable[K] = ()) -> None:
        self._parent: dict[K, K] = {}
        self._size: dict[K, int] = {}
        for item in items:
            self.add(item)

    def add(self, item: K) -> None:
        if item not in self._parent:
            self._parent[item] = item
            self._size[item] = 1

    def __contains__(self, item: object) -> bool:
        return item in self._parent

    def find(self, item: K) -> K:
        self.add(item)
        parent = self._parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: K, b: K) -> K:
        """Join the sets of a and b; return the new root."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]
        return ra

    def groups(self) -> dict[K, list[K]]:
        out: dict[K, list[K]] = {}
        for item in self._parent:
            out.setdefault(self.find(item), []).append(item)
        return out


@dataclass(frozen=True, slots=True)
class ProfileState:
    """A live profile as the write path read it: its age and its matched values per type."""

    id: str
    created_at: datetime
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordState:
    """A record of the batch: its current profile and its not-yet-decided identifier edges."""

    key: str
    profile_id: str | None
    pending: tuple[Identifier, ...]  # non-blocked; edges that did not exist before this write
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class MergePlan:
    survivor_id: str
    merged_ids: tuple[str, ...]
    identifier_key: str | None
    record_key: str | None
    message_id: str | None


@dataclass(slots=True)
class Resolution:
    """What `resolve` decided."""

    record_profiles: dict[str, str] = field(default_factory=dict)  # record key -> profile id
    new_profile_ids: list[str] = field(default_factory=list)
    merges: list[MergePlan] = field(default_factory=list)
    matched: dict[tuple[str, str], bool] = field(default_factory=dict)  # (record, ident) -> bool
    conflicts: int = 0


@dataclass(slots=True)
class _Component:
    values: dict[str, set[str]] = field(default_factory=dict)
    existing: list[ProfileState] = field(default_factory=list)
    trigger: tuple[str, str, str | None] | None = None  # identifier, record, message

    def absorb(self, other: _Component) -> None:
        for t, vs in other.values.items():
            self.values.setdefault(t, set()).update(vs)
        self.existing.extend(other.existing)
        if self.trigger is None:
            self.trigger = other.trigger


def _fits(config: ResolutionConfig, parts: Sequence[_Component], extra: Identifier | None) -> bool:
    if not config.limits_enabled:
        return True
    types = {t for c in parts for t in c.values}
    if extra is not None:
        types.add(extra.type)
    for t in types:
        values: set[str] = set()
        for c in parts:
            values |= c.values.get(t, set())
        if extra is not None and extra.type == t:
            values.add(extra.value)
        if len(values) > config.limit(t):
            return False
    return True


def resolve(
    records: Sequence[RecordState],
    identifier_profiles: Mapping[str, Iterable[str]],
    profiles: Mapping[str, ProfileState],
    config: ResolutionConfig,
    new_id: Callable[[], str],
) -> Resolution:
    """Decide the profile of every record of a batch (see the module docstring).

    `identifier_profiles`: identifier key -> live profiles holding it through matched edges.
    `profiles`: every profile named by the records or by `identifier_profiles`.
    """
    uf: UnionFind[str] = UnionFind()
    comps: dict[str, _Component] = {}

    def node(name: str, state: ProfileState | None) -> str:
        if name not in uf:
            uf.add(name)
            comps[name] = _Component(
                values={t: set(vs) for t, vs in state.values.items()} if state else {},
                existing=[state] if state else [],
            )
        return uf.find(name)

    def union(a: str, b: str, trigger: tuple[str, str, str | None]) -> str:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            return ra
        ca, cb = comps.pop(ra), comps.pop(rb)
        if ca.existing and cb.existing and ca.trigger is None and cb.trigger is None:
            ca.trigger = trigger
        root = uf.union(ra, rb)
        first, second = (ca, cb) if root == ra else (cb, ca)
        first.absorb(second)
        comps[root] = first
        return root

    out = Resolution()
    ident_nodes: dict[str, set[str]] = {
        k: {f"p:{pid}" for pid in pids if pid in profiles}
        for k, pids in identifier_profiles.items()
    }
    record_node: dict[str, str] = {}
    for rec in records:
        if rec.profile_id is not None and rec.profile_id in profiles:
            name = f"p:{rec.profile_id}"
            node(name, profiles[rec.profile_id])
        else:
            name = f"r:{rec.key}"
            node(name, None)
        record_node[rec.key] = name
        for ident in sorted(rec.pending, key=lambda i: (config.priority(i.type), i.value)):
            root = uf.find(name)
            others = []
            for n in ident_nodes.get(ident.key, ()):
                r = uf.find(node(n, profiles.get(n[2:])))
                if r != root and r not in others:
                    others.append(r)
            if not _fits(config, [comps[root], *(comps[o] for o in others)], ident):
                out.matched[(rec.key, ident.key)] = False
                out.conflicts += 1
                continue
            for other in others:
                root = union(root, other, (ident.key, rec.key, rec.message_id))
            comps[root].values.setdefault(ident.type, set()).add(ident.value)
            ident_nodes[ident.key] = {root}
            out.matched[(rec.key, ident.key)] = True

    # Name each final component: the oldest existing profile survives, else a new profile.
    root_profile: dict[str, str] = {}
    for root in {uf.find(n) for n in record_node.values()}:
        comp = comps[root]
        if not comp.existing:
            pid = new_id()
            out.new_profile_ids.append(pid)
            root_profile[root] = pid
            continue
        ordered = sorted({p.id: p for p in comp.existing}.values(), key=_age)
        root_profile[root] = ordered[0].id
        if len(ordered) > 1:
            ident_key, record_key, message_id = comp.trigger or (None, None, None)
            out.merges.append(
                MergePlan(
                    survivor_id=ordered[0].id,
                    merged_ids=tuple(p.id for p in ordered[1:]),
                    identifier_key=ident_key,
                    record_key=record_key,
                    message_id=message_id,
                )
            )
    for key, name in record_node.items():
        out.record_profiles[key] = root_profile[uf.find(name)]
    return out


def _age(p: ProfileState) -> tuple[datetime, str]:
    return (p.created_at, p.id)
