"""Exact, permanent deduplication of messages, in the same transaction as their write.

Each message that carries a key (`source + ":" + messageId`) claims a node keyed by it with a
MERGE on the constrained id; only messages whose node this transaction created are written. A
message that writes an interaction under its own key (a track, page or screen event) claims that
`(:Interaction {id: key})`, which it writes anyway (the node keeps the claim's `claim`
property); any other claims `(:Message {id: key})`. Without a node of its own per event, Neo4j
does about a tenth less work per track event. Each kind of claim also looks for the other kind
under its key (a message written before interactions claimed their own node, or one sent again
as another type), so that claims stay exact. A replay, even with a changed body, finds the node
and writes nothing. Because the claim commits or rolls back with the write, a failed write leaves
no claim behind, and a commit whose outcome the client never learned is safe to retry.

The claim and the erasure screen are one statement, and it returns only what is exceptional: the
keys already claimed (a replay) and the suppressed hashes the batch carries, usually none.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields

from neo4j import AsyncDriver, AsyncManagedTransaction
from neo4j.exceptions import (
    ConnectionPoolError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from customer_graph.graph.errors import GraphUnavailableError, GraphWriteError
from customer_graph.graph.params import run
from customer_graph.graph.plans import KEEP_PLAN
from customer_graph.graph.records import WriteBatch, WriteResult

BatchTxWriter = Callable[[AsyncManagedTransaction, WriteBatch], Awaitable[WriteResult]]
"""Writes one WriteBatch inside a given transaction (the write path's `write_batch_tx`)."""

BatchScreen = Callable[[WriteBatch], Mapping[str, Collection[tuple[str, int]]]]
"""The erasure screen of a batch, without I/O: each keyed hash (graph/privacy.py) that would
refuse parts of it if a Suppression holds it, with those parts as (part, index)."""

Unit = tuple[str | None, WriteBatch]
"""One message: its dedup key (None: no dedup) and what it writes."""


@dataclass(frozen=True, slots=True)
class DedupResult:
    duplicates: frozenset[int]  # indexes of the units that were already written, and skipped
    result: WriteResult = field(default_factory=WriteResult)
    screened: frozenset[int] = frozenset()  # indexes of the units the screen refused


def message_key(source: str, message_id: str) -> str:
    return f"{source}:{message_id}"


def concat_batches(batches: Iterable[WriteBatch]) -> WriteBatch:
    """One batch holding every record of `batches`, in order."""
    parts: dict[str, list[object]] = {f.name: [] for f in fields(WriteBatch)}
    for batch in batches:
        for name, items in parts.items():
            items.extend(getattr(batch, name))
    return WriteBatch(**{name: tuple(items) for name, items in parts.items()})  # type: ignore[arg-type]


# `claim` is unique to this attempt of the transaction, so `claim = $claim` tells the nodes this
# attempt created from the ones an earlier commit (or a concurrent writer) created; only those
# come back. MERGE on the constrained id makes a concurrent claim of one key wait for the first
# writer's commit and then find its node. An interaction claim creates the interaction's node
# with only its id and the claim; the write fills it in later in the same transaction. The screen
# looks up the batch's hashes in the same statement (one round trip for both). In a writing
# statement Neo4j seeks the Suppression index with locks (a hash not found is locked exclusively
# until commit, so an erasure cannot slip in between the screen and the commit): hashes are
# looked up in sorted order, like the claims, so that concurrent writers do not deadlock on them.
CLAIM_AND_SCREEN = (
    KEEP_PLAN
    + """
CALL () {
  UNWIND $ids AS id
  OPTIONAL MATCH (n:Interaction {id: id})
  RETURN collect(CASE WHEN n IS NOT NULL THEN id END) AS claimedAsInteractions
}
CALL () {
  UNWIND $interactionIds AS id
  OPTIONAL MATCH (m:Message {id: id})
  RETURN collect(CASE WHEN m IS NOT NULL THEN id END) AS claimedAsMessages
}
CALL (claimedAsInteractions) {
  UNWIND $ids AS id
  WITH id WHERE NOT id IN claimedAsInteractions
  MERGE (m:Message {id: id})
    ON CREATE SET m.claim = $claim, m.receivedAt = datetime()
  WITH id, m
  WHERE NOT coalesce(m.claim = $claim, false)
  RETURN collect(id) AS messagesBefore
}
CALL (claimedAsMessages) {
  UNWIND $interactionIds AS id
  WITH id WHERE NOT id IN claimedAsMessages
  MERGE (n:Interaction {id: id})
    ON CREATE SET n.claim = $claim
  WITH id, n
  WHERE NOT coalesce(n.claim = $claim, false)
  RETURN collect(id) AS interactionsBefore
}
CALL () {
  UNWIND $hashes AS h
  MATCH (s:Suppression {hash: h})
  RETURN collect(s.hash) AS found
}
RETURN claimedAsInteractions + claimedAsMessages + messagesBefore + interactionsBefore
       AS duplicates, found
"""
)


# Only claims this transaction made are released (their messages were refused by the screen); an
# interaction's node is still empty then.
RELEASE_CLAIMS = (
    KEEP_PLAN
    + """
CALL () {
  UNWIND $ids AS id
  MATCH (m:Message {id: id})
  WHERE m.claim = $claim
  DELETE m
}
CALL () {
  UNWIND $interactionIds AS id
  MATCH (n:Interaction {id: id})
  WHERE n.claim = $claim
  DELETE n
}
"""
)


async def claim_and_screen_tx(
    tx: AsyncManagedTransaction,
    keys: Sequence[str],
    hashes: Collection[str],
    *,
    interaction_keys: Sequence[str] = (),
    claim: str | None = None,
) -> tuple[set[str], set[str]]:
    """Claim `keys` as messages and `interaction_keys` as interactions (each distinct and sorted)
    and look up `hashes`: (keys an earlier committed transaction had claimed, hashes that are
    suppressed). `claim` marks the nodes this attempt creates (what RELEASE_CLAIMS may delete)."""
    if not keys and not interaction_keys and not hashes:
        return set(), set()
    result = await run(
        tx,
        CLAIM_AND_SCREEN,
        ids=list(keys),
        interactionIds=list(interaction_keys),
        claim=claim or uuid.uuid4().hex,
        hashes=sorted(hashes),
    )
    record = await result.single(strict=True)
    return set(record["duplicates"]), set(record["found"])


def claims_by_interaction(key: str, batch: WriteBatch) -> bool:
    """Whether a message claims its key through the interaction it writes under that key."""
    return any(i.id == key for i in batch.interactions)


async def write_deduplicated_tx(
    tx: AsyncManagedTransaction,
    units: Sequence[Unit],
    write_tx: BatchTxWriter,
    screen: BatchScreen | None = None,
) -> DedupResult:
    """Claim the units' keys, then write the fresh units as one batch, in this transaction.

    With a `screen`, a unit any part of which it refuses is not written at all.
    """
    # A key's first unit is the one written (later copies are duplicates): it says how the key
    # is claimed. Sorted, so that concurrent writers take the claims' locks in one order.
    first: dict[str, WriteBatch] = {}
    for key, batch in units:
        if key is not None:
            first.setdefault(key, batch)
    by_interaction = {key for key, batch in first.items() if claims_by_interaction(key, batch)}
    keys = sorted(first.keys() - by_interaction)
    every = {index: batch for index, (_, batch) in enumerate(units)}
    # Duplicates are screened too, so that a replay naming an erased person says so.
    lookups = screen(concat_batches(every.values())) if screen is not None and units else {}
    claim = uuid.uuid4().hex
    claimed_before, found = await claim_and_screen_tx(
        tx, keys, lookups, interaction_keys=sorted(by_interaction), claim=claim
    )
    duplicates: list[int] = []
    kept: dict[int, WriteBatch] = {}
    seen: set[str] = set()
    for index, (key, batch) in enumerate(units):
        if key is not None:
            if key in claimed_before or key in seen:  # a second copy in one batch too
                duplicates.append(index)
                continue
            seen.add(key)
        kept[index] = batch
    screened: set[int] = set()
    if found:
        refused = {part for digest in found for part in lookups.get(digest, ())}
        screened = _units_of(every, refused)
        kept = {i: b for i, b in kept.items() if i not in screened}
        claimed = {units[i][0] for i in screened if i not in duplicates} - {None}
        duplicates = [i for i in duplicates if i not in screened]
        if claimed:  # a refused message leaves nothing behind, not even its claim
            await run(
                tx,
                RELEASE_CLAIMS,
                ids=sorted(k for k in claimed if k is not None and k not in by_interaction),
                interactionIds=sorted(k for k in claimed if k in by_interaction),
                claim=claim,
            )
    merged = concat_batches(kept.values())
    result = await write_tx(tx, merged) if len(merged) else WriteResult()
    return DedupResult(frozenset(duplicates), result, frozenset(screened))


def _units_of(batches: dict[int, WriteBatch], parts: set[tuple[str, int]]) -> set[int]:
    """The units whose records are at `parts` ((part, index) in their concatenation)."""
    if not parts:
        return set()
    offsets = dict.fromkeys((f.name for f in fields(WriteBatch)), 0)
    found: set[int] = set()
    for unit, batch in batches.items():
        for name, start in offsets.items():
            size = len(getattr(batch, name))
            if any((name, start + n) in parts for n in range(size)):
                found.add(unit)
            offsets[name] = start + size
    return found


async def write_deduplicated(
    driver: AsyncDriver,
    database: str,
    units: Sequence[Unit],
    write_tx: BatchTxWriter,
    screen: BatchScreen | None = None,
) -> DedupResult:
    """Write `units` in one managed transaction, skipping messages already written.

    Raises GraphUnavailableError when Neo4j is unreachable or the transaction kept failing for a
    transient reason (the caller may retry: the claims make that safe), GraphWriteError when Neo4j
    refused the write; errors raised by `write_tx` itself propagate unchanged.
    """
    try:
        async with driver.session(database=database) as session:
            return await session.execute_write(write_deduplicated_tx, units, write_tx, screen)
    except (
        ServiceUnavailable,
        SessionExpired,
        TransientError,
        ConnectionPoolError,
        OSError,
    ) as e:
        raise GraphUnavailableError(f"{type(e).__name__}: {e}") from e
    except Neo4jError as e:
        raise GraphWriteError(f"{e.code}: {e.message}") from e
