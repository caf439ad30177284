"""CLI commands of ingestion: `customer-graph keys …` and `customer-graph dead-letters …`."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import typer
from neo4j import AsyncDriver
from rich.console import Console
from rich.table import Table

from customer_graph.auth import InvalidSourceError, Scope, create_key, revoke_key
from customer_graph.graph.dead_letters import DeadLetter, list_dead_letters, mark_replayed
from customer_graph.graph.driver import driver_for
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.keys import list_keys
from customer_graph.graph.messages import BatchTxWriter
from customer_graph.ingestion.segment import InvalidPayloadError, PayloadTooLargeError, replay_item
from customer_graph.ingestion.workers import WorkerPool, WorkItem
from customer_graph.settings import Settings, get_settings

T = TypeVar("T")

keys_app = typer.Typer(
    help="API keys (stored hashed; a new key is shown once).", no_args_is_help=True
)
dead_letters_app = typer.Typer(
    help="Messages that failed on their own: list them, replay them.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()


def _print_table(table: Table, rows: Sequence[tuple[str, ...]]) -> None:
    """A table on a terminal; tab-separated lines (whole values, for scripts) otherwise."""
    if not out.is_terminal:
        print("\t".join(str(c.header) for c in table.columns))
        for row in rows:
            print("\t".join(row))
        return
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GraphUnavailableError as e:
        err.print(f"[red]Neo4j is not reachable ({get_settings().bolt_uri}).[/red]")
        raise typer.Exit(1) from e


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="write, read or admin; repeatable.")
    ],
    source: Annotated[str, typer.Option(help="The source the key's events are records of.")],
) -> None:
    """Create a key and print it (once: only its hash is kept)."""
    settings = get_settings()

    async def work() -> tuple[str, str]:
        async with driver_for(settings) as driver:
            key, row = await create_key(driver, settings, scopes=scope, source=source)
            return key, row.id

    try:
        key, key_id = _run(work())
    except InvalidSourceError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    err.print(f"Created {key_id} ({', '.join(sorted(scope))}, source {source.strip()}).")
    err.print("This is the only time the key is shown; store it now.")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys: id, prefix, scopes, source, created, revoked."""
    settings = get_settings()

    async def work() -> list[Any]:
        async with driver_for(settings) as driver:
            return await list_keys(driver, settings.neo4j_database)

    rows = [
        (
            row.id,
            row.prefix + "…",
            ",".join(row.scopes),
            row.source,
            row.created_at.isoformat(timespec="seconds"),
            row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
        )
        for row in _run(work())
    ]
    _print_table(Table("id", "prefix", "scopes", "source", "created", "revoked"), rows)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id, as `keys list` shows."),
) -> None:
    """Revoke a key: it is refused from now on."""
    settings = get_settings()

    async def work() -> bool:
        async with driver_for(settings) as driver:
            return await revoke_key(driver, settings, key_id) is not None

    if not _run(work()):
        err.print(f"[red]No key {key_id}.[/red]")
        raise typer.Exit(1)
    err.print(f"Revoked {key_id}.")


@dead_letters_app.command("list")
def dead_letters_list(
    all_: bool = typer.Option(False, "--all", help="Include replayed ones."),
    source: str | None = typer.Option(None, help="Only this source."),
    limit: int = typer.Option(100, min=1, max=10_000),
) -> None:
    """List dead letters (pending ones unless --all), oldest failure first."""
    settings = get_settings()

    async def work() -> list[DeadLetter]:
        async with driver_for(settings) as driver:
            return await list_dead_letters(
                driver,
                settings.neo4j_database,
                status=None if all_ else "pending",
                source=source,
                limit=limit,
            )

    rows = [
        (
            d.id,
            str(d.payload.get("type", d.kind)),
            d.status,
            d.last_failed_at.isoformat(timespec="seconds"),
            d.reason[:120],
        )
        for d in _run(work())
    ]
    _print_table(Table("id", "type", "status", "last failed", "reason"), rows)


@dataclass
class ReplaySummary:
    replayed: list[str] = field(default_factory=list)  # written now, or found already written
    failed: list[str] = field(default_factory=list)  # failed again (reason updated)
    unmappable: list[str] = field(default_factory=list)  # payload no longer valid; left pending


async def replay_dead_letters(
    driver: AsyncDriver,
    settings: Settings,
    *,
    ids: Sequence[str] | None = None,
    source: str | None = None,
    limit: int = 1000,
    write_tx: BatchTxWriter | None = None,
) -> ReplaySummary:
    """Write pending dead letters again through the workers; mark the ones that now commit."""
    summary = ReplaySummary()
    letters = await list_dead_letters(
        driver, settings.neo4j_database, status="pending", source=source, ids=ids, limit=limit
    )
    mapped: list[tuple[DeadLetter, WorkItem]] = []
    for letter in letters:
        try:
            mapped.append((letter, replay_item(letter.payload, source=letter.source)))
        except (InvalidPayloadError, PayloadTooLargeError, KeyError, ValueError):
            summary.unmappable.append(letter.id)
    pool = WorkerPool.for_neo4j(driver, settings, write_tx)
    pool.start()
    try:
        step = pool.batch_max
        chunks = [mapped[n : n + step] for n in range(0, len(mapped), step)]
        receipts = await asyncio.gather(*(pool.submit([i for _, i in c]) for c in chunks))
    finally:
        await pool.stop()
    for chunk, receipt in zip(chunks, receipts, strict=True):
        for (letter, _), outcome in zip(chunk, receipt.outcomes, strict=True):
            bucket = summary.failed if outcome == "dead_lettered" else summary.replayed
            bucket.append(letter.id)
    await mark_replayed(driver, settings.neo4j_database, summary.replayed)
    return summary


@dead_letters_app.command("replay")
def dead_letters_replay(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Dead-letter ids; none: every pending one.")
    ] = None,
    source: str | None = typer.Option(None, help="Only this source."),
    limit: int = typer.Option(1000, min=1, max=100_000),
) -> None:
    """Replay dead letters: each one that commits now is marked replayed."""
    settings = get_settings()

    async def work() -> ReplaySummary:
        async with driver_for(settings) as driver:
            return await replay_dead_letters(
                driver, settings, ids=ids or None, source=source, limit=limit
            )

    summary = _run(work())
    err.print(
        f"Replayed {len(summary.replayed)}; failed again {len(summary.failed)}; "
        f"unmappable {len(summary.unmappable)}."
    )
    for letter_id in summary.failed + summary.unmappable:
        err.print(f"  still pending: {letter_id}")
    if summary.failed or summary.unmappable:
        raise typer.Exit(1)
