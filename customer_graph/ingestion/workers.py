"""Batching workers with group commit: a bounded queue, micro-batches, one transaction each.

Callers `submit` a request's work items and wait. Workers take whole requests from the queue into
a micro-batch (at most `batch_max` messages, waiting at most `batch_wait_s` for more once the
first has arrived), write it in one managed transaction, and only then answer every request in it.
So batching buys throughput while nothing is acknowledged that could still be lost.

Failures:
- the queue is full → QueueFullError at once (HTTP 503 with Retry-After);
- Neo4j is unreachable (after the driver's own retries) → GraphUnavailableError for every request
  of the batch, and for new submissions during `retry_after_s` (fail fast while it is down);
- any other error means some message cannot be written: the batch is split in halves until the
  failing messages stand alone; each of those goes to the dead-letter store with its reason (or,
  if it has no payload to keep, fails its request with WriteRejectedError), the rest commit.
Messages already written (same key) are skipped and reported "duplicate"; messages naming an erased
person are refused in the same transaction and reported "suppressed".
Shutdown stops accepting, drains what is queued, then stops the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import orjson
from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.graph.dead_letters import DeadLetterIn, record_dead_letters
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.messages import BatchTxWriter, DedupResult, write_deduplicated
from customer_graph.graph.privacy import suppression_lookups
from customer_graph.graph.records import WriteBatch, WriteResult
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch_tx
from customer_graph.ingestion import metrics
from customer_graph.pubsub import publish_write_result
from customer_graph.settings import Settings

log = logging.getLogger(__name__)

ItemOutcome = Literal["written", "duplicate", "suppressed", "dead_lettered"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One message: what it writes, and what is needed to deduplicate and dead-letter it."""

    batch: WriteBatch
    key: str | None = None  # `source:messageId`; None: written every time, never deduplicated
    type: str = "write"  # metrics label: identify, track, … or mutation
    source: str | None = None
    message_id: str | None = None
    # The original message (JSON) and when it arrived. With a payload, a message that fails on
    # its own is dead-lettered; without one, its request fails with WriteRejectedError.
    payload: str | None = None
    kind: str = "segment"
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadLettered:
    index: int  # of the item in its request
    message_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to a submitted request once every item of it is settled.

    `result` sums the WriteResults of the transactions that carried the request (they may also
    carry other requests); `result.record_profiles[customer_key(...)]` is a record's profile.
    """

    outcomes: tuple[ItemOutcome, ...]
    result: WriteResult
    dead_letters: tuple[DeadLettered, ...] = ()

    @property
    def written(self) -> int:
        return self.outcomes.count("written")

    @property
    def duplicates(self) -> int:
        return self.outcomes.count("duplicate")

    def indexes(self, outcome: ItemOutcome) -> list[int]:
        return [n for n, o in enumerate(self.outcomes) if o == outcome]


class QueueFullError(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the ingestion queue is full")
        self.retry_after_s = retry_after_s


class ShuttingDownError(Exception):
    """The pool is stopping and takes no more work."""


class WriteRejectedError(Exception):
    """An item without a payload failed on its own; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


BatchWriter = Callable[[Sequence[WorkItem]], Awaitable[DedupResult]]
"""Writes items in ONE transaction, skipping duplicates; raises GraphUnavailableError for
availability problems and anything else for a write that cannot succeed."""

DeadLetterWriter = Callable[[Sequence[tuple[WorkItem, str]]], Awaitable[None]]


@dataclass(eq=False)
class _Ticket:
    items: Sequence[WorkItem]
    future: asyncio.Future[Receipt]


@dataclass
class _Commit:
    """The settling of one micro-batch: an outcome (or error) per item."""

    items: list[WorkItem]
    outcomes: list[ItemOutcome | BaseException | None]
    reasons: dict[int, str] = field(default_factory=dict)
    results: list[WriteResult] = field(default_factory=list)
    unavailable: GraphUnavailableError | None = None


class WorkerPool:
    def __init__(
        self,
        write: BatchWriter,
        dead_letter: DeadLetterWriter,
        *,
        queue_max: int = 20_000,
        batch_max: int = 500,
        batch_wait_s: float = 0.005,
        workers: int = 2,
        retry_after_s: int = 2,
    ) -> None:
        self._write = write
        self._dead_letter = dead_letter
        self.queue_max = queue_max
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.workers = workers
        self.retry_after_s = retry_after_s
        self._pending: deque[_Ticket] = deque()
        self._depth = 0  # messages queued or being written
        self._queued = 0  # messages queued
        self._arrived = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._unavailable_until = 0.0

    @classmethod
    def for_neo4j(
        cls, driver: AsyncDriver, settings: Settings, write_tx: BatchTxWriter | None = None
    ) -> WorkerPool:
        """A pool writing into the settings' database with `write_tx` (default: the write path,
        identity resolution included)."""
        database = settings.neo4j_database
        writer = write_tx or write_path(settings)

        def screen(batch: WriteBatch) -> dict[str, list[tuple[str, int]]]:
            # Erased people stay erased: messages naming them are refused, in the same
            # transaction as the write.
            return suppression_lookups(settings, batch)

        async def write(items: Sequence[WorkItem]) -> DedupResult:
            units = [(item.key, item.batch) for item in items]
            return await write_deduplicated(driver, database, units, writer, screen)

        async def dead_letter(failed: Sequence[tuple[WorkItem, str]]) -> None:
            await record_dead_letters(driver, database, [_dead_letter_in(i, r) for i, r in failed])

        return cls(
            write,
            dead_letter,
            queue_max=settings.ingest_queue_max,
            batch_max=settings.ingest_batch_max,
            batch_wait_s=settings.ingest_batch_wait_ms / 1000,
            workers=settings.ingest_workers,
            retry_after_s=settings.ingest_retry_after_s,
        )

    @property
    def depth(self) -> int:
        return self._depth

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"ingest-worker-{n}")
                for n in range(self.workers)
            ]

    async def stop(self, drain_s: float = 30.0) -> None:
        """Take no more work, write what is queued, then stop the workers."""
        self._closing = True
        self._arrived.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=drain_s)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while self._pending:
            ticket = self._pending.popleft()
            self._queued -= len(ticket.items)
            self._add_depth(-len(ticket.items))
            self._settle_error(ticket, ShuttingDownError("shutting down"))
        self._tasks = []

    async def submit(self, items: Sequence[WorkItem]) -> Receipt:
        """Queue a request's items and wait until all of them are committed (or settled).

        Raises QueueFullError, GraphUnavailableError, ShuttingDownError, WriteRejectedError.
        Cancelling the wait does not withdraw the items: they are still written.
        """
        if not items:
            return Receipt(outcomes=(), result=WriteResult())
        if self._closing:
            raise ShuttingDownError("shutting down")
        loop = asyncio.get_running_loop()
        if loop.time() < self._unavailable_until:
            raise GraphUnavailableError("Neo4j was unavailable a moment ago")
        if self._depth and self._depth + len(items) > self.queue_max:
            raise QueueFullError(self.retry_after_s)
        ticket = _Ticket(items=items, future=loop.create_future())
        self._pending.append(ticket)
        self._queued += len(items)
        self._add_depth(len(items))
        self._arrived.set()
        return await asyncio.shield(ticket.future)

    # The workers.

    async def _run(self) -> None:
        while True:
            tickets = await self._next_batch()
            if not tickets:
                return
            try:
                await self._commit(tickets)
            except Exception as e:  # a bug: answer the requests instead of leaving them hanging
                log.exception("ingestion worker failed")
                for ticket in tickets:
                    self._settle_error(ticket, e)
            finally:
                self._add_depth(-sum(len(t.items) for t in tickets))

    async def _next_batch(self) -> list[_Ticket]:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                if self._closing:
                    return []
                self._arrived.clear()
                await self._arrived.wait()
            # Group commit: give requests arriving right now a moment to join this batch.
            deadline = loop.time() + self.batch_wait_s
            while not self._closing and self._queued < self.batch_max:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            if not self._pending:  # another worker took them
                continue
            batch = [self._pending.popleft()]
            size = len(batch[0].items)
            while self._pending and size + len(self._pending[0].items) <= self.batch_max:
                ticket = self._pending.popleft()
                batch.append(ticket)
                size += len(ticket.items)
            self._queued -= size
            return batch

    async def _commit(self, tickets: list[_Ticket]) -> None:
        items = [item for ticket in tickets for item in ticket.items]
        commit = _Commit(items=items, outcomes=[None] * len(items))
        await self._write_part(commit, list(range(len(items))))
        position = 0
        for ticket in tickets:
            span = range(position, position + len(ticket.items))
            position += len(ticket.items)
            self._settle(ticket, commit, span)

    async def _write_part(self, commit: _Commit, indexes: list[int]) -> None:
        if commit.unavailable is not None:  # no use trying the rest of this batch
            for i in indexes:
                commit.outcomes[i] = commit.unavailable
            return
        part = [commit.items[i] for i in indexes]
        started = asyncio.get_running_loop().time()
        try:
            done = await self._write(part)
        except GraphUnavailableError as e:
            log.warning("neo4j unavailable; %d messages answered 503", len(indexes))
            commit.unavailable = e
            self._unavailable_until = asyncio.get_running_loop().time() + self.retry_after_s
            for i in indexes:
                commit.outcomes[i] = e
            return
        except Exception as e:
            if len(indexes) > 1:
                half = len(indexes) // 2
                await self._write_part(commit, indexes[:half])
                await self._write_part(commit, indexes[half:])
            else:
                await self._fail_alone(commit, indexes[0], e)
            return
        metrics.COMMIT_SECONDS.observe(asyncio.get_running_loop().time() - started)
        metrics.BATCH_SIZE.observe(len(indexes))
        commit.results.append(done.result)
        # Subscribers of profileUpdated hear of every committed write, from any way in.
        publish_write_result(done.result)
        written: Counter[str] = Counter()
        for position, i in enumerate(indexes):
            if position in done.duplicates:
                commit.outcomes[i] = "duplicate"
                metrics.DEDUPLICATED.inc()
            elif position in done.screened:
                commit.outcomes[i] = "suppressed"
                metrics.REJECTED.labels(reason="suppressed").inc()
            else:
                commit.outcomes[i] = "written"
                written[commit.items[i].type] += 1
        for type_, count in written.items():  # a labelled child per type, not per message
            metrics.ACCEPTED.labels(type=type_).inc(count)

    async def _fail_alone(self, commit: _Commit, index: int, error: Exception) -> None:
        item = commit.items[index]
        reason = f"{type(error).__name__}: {error}"
        # The reason may quote values (PII), so the log names only the message and the error type.
        log.warning("message %s failed on its own (%s)", item.key, type(error).__name__)
        if item.payload is None:
            commit.outcomes[index] = WriteRejectedError(reason)
            return
        try:
            await self._dead_letter([(item, reason)])
        except Exception as e:
            commit.outcomes[index] = e
            return
        metrics.DEAD_LETTERED.inc()
        commit.outcomes[index] = "dead_lettered"
        commit.reasons[index] = reason

    def _settle(self, ticket: _Ticket, commit: _Commit, span: range) -> None:
        outcomes: list[ItemOutcome] = []
        dead: list[DeadLettered] = []
        for n, i in enumerate(span):
            outcome = commit.outcomes[i]
            if isinstance(outcome, BaseException):
                self._settle_error(ticket, outcome)
                return
            assert outcome is not None
            outcomes.append(outcome)
            if outcome == "dead_lettered":
                dead.append(DeadLettered(n, commit.items[i].message_id, commit.reasons[i]))
        if not ticket.future.done():
            receipt = Receipt(tuple(outcomes), _sum_results(commit.results), tuple(dead))
            ticket.future.set_result(receipt)

    def _settle_error(self, ticket: _Ticket, error: BaseException) -> None:
        if isinstance(error, GraphUnavailableError | ShuttingDownError):
            reason = "neo4j" if isinstance(error, GraphUnavailableError) else "shutdown"
            metrics.UNAVAILABLE.labels(reason=reason).inc(len(ticket.items))
        if not ticket.future.done():
            ticket.future.set_exception(error)

    def _add_depth(self, n: int) -> None:
        self._depth += n
        metrics.QUEUE_DEPTH.set(self._depth)


def write_path(settings: Settings) -> BatchTxWriter:
    """The write path (`graph/writes.py`) with the settings' identity-resolution config."""
    config = resolution_config(settings)

    async def write_tx(tx: AsyncManagedTransaction, batch: WriteBatch) -> WriteResult:
        return await write_batch_tx(tx, batch, config)

    return write_tx


def _sum_results(results: Sequence[WriteResult]) -> WriteResult:
    if len(results) == 1:
        return results[0]
    total = WriteResult()
    for r in results:
        total.customers_written += r.customers_written
        total.profiles_created += r.profiles_created
        total.merges.extend(r.merges)
        total.conflicts += r.conflicts
        total.touched_profile_ids |= r.touched_profile_ids
        total.record_profiles.update(r.record_profiles)
    return total


def _dead_letter_in(item: WorkItem, reason: str) -> DeadLetterIn:
    assert item.payload is not None and item.key is not None
    return DeadLetterIn(
        id=item.key,
        source=item.source or "",
        message_id=item.message_id or "",
        kind=item.kind,
        payload=item.payload,
        reason=reason,
        received_at=item.received_at or datetime.now(UTC),
    )


def payload_json(message: object) -> str:
    """The JSON kept for a message's dead letter: compact, UTF-8 text as it came.

    orjson writes it several times faster than the standard encoder, which remains for what
    orjson cannot write (an integer beyond 64 bits).
    """
    try:
        return orjson.dumps(message, default=str).decode()
    except TypeError:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)
