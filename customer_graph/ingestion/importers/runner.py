"""Run an import: read rows, map them, write chunks through the write path, keep the rejects.

Each chunk of `batch_size` rows is one managed transaction (the write path's `write_batch_tx`,
identity resolution included): a row is written whole or not at all. Rows naming an erased person
are refused in that same transaction, as the tracking API refuses them, and rejected. A row that
fails validation goes to the rejects file with its row number and reason. If a chunk fails to
write for a reason other than availability, it is split in halves until the failing rows are
isolated and rejected; the others are written. If Neo4j is unavailable the import stops with the
count of rows committed; since every id is derived from the source's record ids, rerunning the
same import later writes nothing twice.

With `concurrency` above 1, that many chunks are written at once, each in its own transaction;
the write path resolves identities the same whatever the order and number of writers.

Memory is bounded by the chunks in flight: nothing accumulates per row.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from neo4j import AsyncDriver, AsyncManagedTransaction

from customer_graph.graph.errors import GraphUnavailableError, GraphWriteError
from customer_graph.graph.messages import write_deduplicated
from customer_graph.graph.privacy import suppression_lookups
from customer_graph.graph.records import OwnerIn, WriteBatch, WriteResult
from customer_graph.graph.resolution import ResolutionConfig, resolution_config
from customer_graph.graph.writes import write_batch_tx
from customer_graph.ingestion.importers.layouts import ImportContext, Kind, RowError
from customer_graph.ingestion.importers.mapping import Mapper
from customer_graph.ingestion.importers.presets import preset as preset_named
from customer_graph.ingestion.importers.reader import ExportReader, ImportFormat, SourceRow
from customer_graph.settings import Settings

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000
MAX_CONCURRENCY = 8

ProgressFn = Callable[[int, int], None]  # (bytes read, rows read)


class ImportAborted(RuntimeError):
    """The import stopped before the end of the file (Neo4j unavailable); `summary` says how far."""

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class ImportOptions:
    path: Path
    kind: Kind
    source: str
    format: ImportFormat | None = None
    preset: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    rejects: Path | None = None  # default: next to the input, `<name>.rejects.csv`
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    timezone: tzinfo = UTC
    extras: bool = True
    concurrency: int = 1  # chunks written at once, each in its own transaction

    def rejects_path(self, fmt: ImportFormat) -> Path:
        if self.rejects is not None:
            return self.rejects
        suffix = ".jsonl" if fmt is ImportFormat.JSONL else ".csv"
        return self.path.with_name(f"{self.path.name}.rejects{suffix}")


@dataclass
class ImportSummary:
    """What an import did. `written` counts rows committed (rewriting a row counts again)."""

    file: str
    kind: str
    preset: str
    source: str
    layout: str = ""
    read: int = 0
    written: int = 0
    skipped: int = 0  # rows with nothing to write (deleted records, non-changes of stage)
    rejected: int = 0
    merged: int = 0  # profiles merged into others
    profiles_created: int = 0
    records: int = 0  # customer records upserted
    transactions: int = 0
    seconds: float = 0.0
    rejects_file: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "preset": self.preset,
            "source": self.source,
            "layout": self.layout,
            "read": self.read,
            "written": self.written,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "merged": self.merged,
            "profilesCreated": self.profiles_created,
            "records": self.records,
            "transactions": self.transactions,
            "seconds": round(self.seconds, 3),
            "rowsPerSecond": round(self.rows_per_second, 1),
            "rejectsFile": self.rejects_file,
        }


class RejectsWriter:
    """The rejects file, opened on the first reject: row, line, reason and the row's cells.

    CSV keeps the input's columns after `row,line,reason` (or one `record` column of JSON when
    the input is JSONL); JSONL writes `{"row", "line", "reason", "record"}` objects.
    """

    def __init__(self, path: Path, header: Callable[[], tuple[str, ...] | None]) -> None:
        self.path = path
        self._header = header
        self._file: IO[str] | None = None
        self._csv: Any = None
        self._columns: tuple[str, ...] | None = None
        self.count = 0

    def __enter__(self) -> Self:
        self.path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()

    @property
    def jsonl(self) -> bool:
        return self.path.suffix.lower() in (".jsonl", ".ndjson", ".json")

    def write(self, row: SourceRow, reason: str) -> None:
        self.count += 1
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="")
            if not self.jsonl:
                self._columns = self._header()
                self._csv = csv.writer(self._file)
                names = list(self._columns) if self._columns is not None else ["record"]
                self._csv.writerow(["row", "line", "reason", *names])
        if self.jsonl:
            record: dict[str, Any] = {
                "row": row.number,
                "line": row.line,
                "reason": reason,
                "record": row.values,
            }
            if row.fields is not None:
                record["fields"] = list(row.fields)
            self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            return
        if row.fields is not None:
            cells = list(row.fields)  # a row that does not fit the header is kept as it was
        elif self._columns is not None:
            cells = [_cell(row.values.get(c)) for c in self._columns]
        else:
            cells = [json.dumps(row.values, ensure_ascii=False, default=str)]
        self._csv.writerow([row.number, row.line, reason, *cells])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def combine(batches: Iterator[WriteBatch] | list[WriteBatch]) -> WriteBatch:
    """One batch of many rows' records; owners named by several rows are written once."""
    customers: list[Any] = []
    interactions: list[Any] = []
    deals: list[Any] = []
    stage_changes: list[Any] = []
    accounts: list[Any] = []
    memberships: list[Any] = []
    owners: dict[str, OwnerIn] = {}
    for b in batches:
        customers += b.customers
        interactions += b.interactions
        deals += b.deals
        stage_changes += b.stage_changes
        accounts += b.accounts
        memberships += b.memberships
        for owner in b.owners:
            known = owners.get(owner.id)
            owners[owner.id] = (
                OwnerIn(owner.id, owner.name or known.name, owner.email or known.email)
                if known
                else owner
            )
    return WriteBatch(
        customers=tuple(customers),
        interactions=tuple(interactions),
        deals=tuple(deals),
        stage_changes=tuple(stage_changes),
        accounts=tuple(accounts),
        memberships=tuple(memberships),
        owners=tuple(owners.values()),
    )


SUPPRESSED = "suppressed: the row names a person whose data was erased"


class _Run:
    def __init__(
        self,
        driver: AsyncDriver,
        settings: Settings,
        config: ResolutionConfig,
        summary: ImportSummary,
        rejects: RejectsWriter,
    ) -> None:
        self.driver = driver
        self.settings = settings
        self.config = config
        self.summary = summary
        self.rejects = rejects

    async def _write_tx(self, tx: AsyncManagedTransaction, batch: WriteBatch) -> WriteResult:
        return await write_batch_tx(tx, combine([batch]), self.config)

    def _screen(self, batch: WriteBatch) -> dict[str, list[tuple[str, int]]]:
        return suppression_lookups(self.settings, batch)

    def reject(self, row: SourceRow, reason: str) -> None:
        self.summary.rejected += 1
        key = reason.split(":", 1)[0] if ":" in reason else reason.split("(", 1)[0].strip()
        self.summary.reject_reasons[key] = self.summary.reject_reasons.get(key, 0) + 1
        self.rejects.write(row, reason)

    async def write(self, rows: list[tuple[SourceRow, WriteBatch]]) -> None:
        """Write rows in one transaction; on a write error, bisect to reject only the culprits."""
        if not rows:
            return
        units = [(None, batch) for _, batch in rows]
        try:
            outcome = await write_deduplicated(
                self.driver, self.settings.neo4j_database, units, self._write_tx, self._screen
            )
        except GraphWriteError as e:
            if len(rows) == 1:
                self.reject(rows[0][0], f"write failed: {e}")
                return
            middle = len(rows) // 2
            await self.write(rows[:middle])
            await self.write(rows[middle:])
            return
        for index in sorted(outcome.screened):
            self.reject(rows[index][0], SUPPRESSED)
        self._count(outcome.result, len(rows) - len(outcome.screened))

    def _count(self, result: WriteResult, rows: int) -> None:
        self.summary.transactions += 1
        self.summary.written += rows
        self.summary.records += result.customers_written
        self.summary.profiles_created += result.profiles_created
        self.summary.merged += sum(len(m.merged_ids) for m in result.merges)


class _InFlight:
    """At most `limit` chunk writes at once; the first failure is raised to the reader loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()

    async def submit(self, write: Coroutine[Any, Any, None]) -> None:
        try:
            while len(self.tasks) >= self.limit:
                await self._wait(asyncio.FIRST_COMPLETED)
        except BaseException:
            write.close()  # never started: close it rather than leave it unawaited
            raise
        self.tasks.add(asyncio.create_task(write))

    async def drain(self) -> None:
        while self.tasks:
            await self._wait(asyncio.ALL_COMPLETED)

    async def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _wait(self, when: str) -> None:
        done, self.tasks = await asyncio.wait(self.tasks, return_when=when)
        for task in done:
            task.result()


async def run_import(
    driver: AsyncDriver,
    settings: Settings,
    options: ImportOptions,
    progress: ProgressFn | None = None,
) -> ImportSummary:
    """Import one file; raises ImportAborted if Neo4j becomes unavailable midway.

    Raises LayoutError or ReaderError (both ValueError) before writing anything when the file
    does not fit the kind or preset, or cannot be read.
    """
    if not 1 <= options.batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
    if not 1 <= options.concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    chosen = preset_named(options.preset)
    context = ImportContext(options.source, options.timezone, options.extras)
    mapper = Mapper(options.kind, chosen, context)
    summary = ImportSummary(
        file=str(options.path),
        kind=options.kind.value,
        preset=options.preset or "generic",
        source=options.source,
    )
    started = time.monotonic()
    reader = ExportReader(
        options.path, options.format, encoding=options.encoding, delimiter=options.delimiter
    )
    rejects_path = options.rejects_path(reader.format)
    with reader, RejectsWriter(rejects_path, lambda: reader.header) as rejects:
        run = _Run(driver, settings, resolution_config(settings), summary, rejects)
        chunk: list[tuple[SourceRow, WriteBatch]] = []
        writes = _InFlight(options.concurrency)
        try:
            for row in reader:
                summary.read += 1
                if mapper.layout is None and reader.header is not None:
                    mapper.choose_layout(reader.header)
                if row.error is not None:
                    run.reject(row, row.error)
                    continue
                try:
                    batch = mapper.map(row.values)
                except RowError as e:
                    run.reject(row, str(e))
                    continue
                if len(batch) == 0:
                    summary.skipped += 1
                    continue
                chunk.append((row, batch))
                if len(chunk) >= options.batch_size:
                    await writes.submit(run.write(chunk))
                    chunk = []
                    if progress is not None:
                        progress(reader.bytes_read, summary.read)
            await writes.submit(run.write(chunk))
            await writes.drain()
        except GraphUnavailableError as e:
            summary.seconds = time.monotonic() - started
            summary.rejects_file = str(rejects_path) if rejects.count else None
            raise ImportAborted(
                f"Neo4j became unavailable after {summary.written} rows were written "
                f"({e}); rerun the same import to finish it (rows already written are not "
                "written twice)",
                summary,
            ) from e
        finally:
            await writes.cancel()
        if progress is not None:
            progress(reader.total_bytes, summary.read)
        summary.layout = mapper.layout.name if mapper.layout else ""
        summary.rejects_file = str(rejects_path) if rejects.count else None
    summary.seconds = time.monotonic() - started
    return summary
