"""`customer-graph import FILE --kind … --source …`: bulk-load a CRM export (CSV or JSONL)."""

from __future__ import annotations

import asyncio
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import driver_for, translate_unavailable
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.ingestion.importers.layouts import Kind, LayoutError
from customer_graph.ingestion.importers.reader import ImportFormat, ReaderError
from customer_graph.ingestion.importers.runner import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    ImportAborted,
    ImportOptions,
    ImportSummary,
    run_import,
)
from customer_graph.runtime import tune_garbage_collection
from customer_graph.settings import Settings, get_settings

console = Console(stderr=True)
# A source becomes the first part of record keys (`source:id`): no colon, nothing exotic.
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class PresetName(StrEnum):
    """The --preset choices: the keys of `presets.PRESETS`."""

    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"
    DYNAMICS = "dynamics"
    ZOHO = "zoho"


def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV or JSONL file (may be .gz)."
        ),
    ],
    kind: Annotated[Kind, typer.Option("--kind", help="What the file holds.")],
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Name of the source system (e.g. salesforce-eu); ids are scoped by it."
        ),
    ],
    fmt: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="csv or jsonl (default: from the file name)."),
    ] = None,
    preset: Annotated[
        PresetName | None,
        typer.Option("--preset", help="Column map of a CRM's standard export (default: generic)."),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=MAX_BATCH_SIZE, help="Rows per transaction."),
    ] = DEFAULT_BATCH_SIZE,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=1,
            max=MAX_CONCURRENCY,
            help="Chunks written at once, each in its own transaction.",
        ),
    ] = 1,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            dir_okay=False,
            help="Rejects file, .csv or .jsonl (default: FILE.rejects.csv next to FILE).",
        ),
    ] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of FILE.")] = (
        "utf-8-sig"
    ),
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="CSV delimiter (default: from the header).")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Zone of times that carry none (e.g. Europe/Paris).")
    ] = "UTC",
    extra_columns: Annotated[
        bool,
        typer.Option(
            "--extra-columns/--no-extra-columns",
            help="Keep unmapped columns as traits or properties.",
        ),
    ] = True,
    show_progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    """Import contacts, accounts, deals, stage changes or interactions from a CRM export."""
    if not SOURCE_NAME.match(source):
        raise typer.BadParameter(
            "letters, digits, '.', '_' and '-' only (at most 64)", param_hint="--source"
        )
    if delimiter is not None and len(delimiter) != 1:
        raise typer.BadParameter("one character", param_hint="--delimiter")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise typer.BadParameter(f"unknown time zone {timezone!r}", param_hint="--timezone") from e
    options = ImportOptions(
        path=file,
        kind=kind,
        source=source,
        format=fmt,
        preset=preset.value if preset is not None else None,
        batch_size=batch_size,
        concurrency=concurrency,
        rejects=rejects,
        encoding=encoding,
        delimiter=delimiter,
        timezone=zone,
        extras=extra_columns,
    )
    settings = get_settings()
    tune_garbage_collection(settings.gc_gen0_threshold)
    try:
        summary = asyncio.run(_run(settings, options, show_progress))
    except (LayoutError, ReaderError) as e:
        console.print(f"[red]Cannot import {file.name}:[/red] {e}")
        raise typer.Exit(1) from e
    except ImportAborted as e:
        _print_summary(e.summary)
        console.print(f"[red]Import stopped:[/red] {e}")
        raise typer.Exit(1) from e
    except GraphUnavailableError as e:
        console.print(
            f"[red]Neo4j is not reachable at {settings.bolt_uri}[/red] "
            "(start it with `customer-graph neo4j start`, or set NEO4J_URI)."
        )
        raise typer.Exit(1) from e
    _print_summary(summary)
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))


async def _run(settings: Settings, options: ImportOptions, show_progress: bool) -> ImportSummary:
    async with driver_for(settings) as driver:
        await translate_unavailable(lambda: ensure_schema(driver, settings.neo4j_database))
        if not show_progress:
            return await run_import(driver, settings, options)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(options.path.name, total=options.path.stat().st_size, rows=0)

            def progress(done: int, rows: int) -> None:
                bar.update(task, completed=done, rows=rows)

            return await run_import(driver, settings, options, progress)


def _print_summary(summary: ImportSummary) -> None:
    table = Table(title=f"Import of {Path(summary.file).name}", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    layout = f"{summary.layout} ({summary.kind})" if summary.layout else summary.kind
    table.add_row("layout", layout)
    table.add_row("source", summary.source)
    table.add_row("read", f"{summary.read:,}")
    table.add_row("written", f"{summary.written:,}")
    table.add_row("merged", f"{summary.merged:,} profiles")
    table.add_row("rejected", f"{summary.rejected:,}")
    if summary.skipped:
        table.add_row("skipped", f"{summary.skipped:,} (nothing to write)")
    table.add_row("new profiles", f"{summary.profiles_created:,}")
    table.add_row("transactions", f"{summary.transactions:,}")
    table.add_row("time", f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)")
    if summary.rejects_file:
        table.add_row("rejects file", summary.rejects_file)
    console.print(table)
    for reason, count in sorted(summary.reject_reasons.items(), key=lambda kv: -kv[1])[:10]:
        console.print(f"  rejected {count:,}: {reason}")
