"""CLI commands of identity resolution: `resolve` (full re-resolution) and `super-connectors`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from customer_graph.graph.driver import driver_for
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.identity import SuperConnector, super_connectors
from customer_graph.graph.reresolve import ReResolution, re_resolve
from customer_graph.graph.resolution import resolution_config
from customer_graph.settings import get_settings

T = TypeVar("T")
err = Console(stderr=True)
out = Console()


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GraphUnavailableError as e:
        err.print(f"[red]Neo4j is not reachable ({get_settings().bolt_uri}).[/red]")
        raise typer.Exit(1) from e


def resolve_command(
    apply: Annotated[
        bool, typer.Option("--apply/--dry-run", help="Write the differences (default: report).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per read page and write.")] = 1000,
    show: Annotated[int, typer.Option(min=0, help="How many moved records to list.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute every profile from the records and print every difference from the current
    state; with --apply, write them (pause writes first). Exit 2 if a dry run found any."""
    settings = get_settings()
    config = resolution_config(settings)

    async def work() -> ReResolution:
        async with driver_for(settings) as driver:
            return await re_resolve(
                driver, settings.neo4j_database, config, apply=apply, batch_size=batch_size
            )

    report = _run(work())
    if as_json:
        print(
            json.dumps(
                {
                    "records": report.records,
                    "profilesBefore": report.profiles_before,
                    "profilesAfter": report.profiles_after,
                    "moved": [{"record": k, "from": f, "to": t} for k, f, t in report.moved],
                    "mergedProfiles": [{"from": f, "into": t} for f, t in report.merged_profiles],
                    "splitProfiles": [
                        {"profile": p, "newProfiles": list(n)} for p, n in report.split_profiles
                    ],
                    "edgesChanged": [
                        {"record": k, "identifier": i, "matched": m}
                        for k, i, m in report.edges_changed
                    ],
                    "applied": report.applied,
                },
                indent=2,
            )
        )
    else:
        _print_report(report, show)
    if report.changed and not report.applied:
        raise typer.Exit(2)


def _print_report(report: ReResolution, show: int) -> None:
    out.print(
        f"{report.records} records: {report.profiles_before} profiles now, "
        f"{report.profiles_after} after re-resolution."
    )
    if not report.changed:
        out.print("No differences.")
        return
    out.print(
        f"{len(report.moved)} records move, {len(report.merged_profiles)} profiles merge away, "
        f"{len(report.split_profiles)} profiles split, "
        f"{len(report.edges_changed)} identifier links change."
    )
    if report.moved and show:
        table = Table("record", "from profile", "to profile")
        for key, frm, to in report.moved[:show]:
            table.add_row(key, frm or "-", to)
        out.print(table)
        if len(report.moved) > show:
            out.print(f"… and {len(report.moved) - show} more (--show N, or --json).")
    out.print("Applied." if report.applied else "Dry run: nothing written (use --apply).")


def super_connectors_command(
    threshold: Annotated[
        int | None, typer.Option(help="Report identifiers held by more records than this.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Identifiers joined to more records than a threshold: shared family phones, placeholder
    emails and other values worth blocking (`blockIdentifier`)."""
    settings = get_settings()
    n = settings.super_connector_threshold if threshold is None else threshold

    async def work() -> list[SuperConnector]:
        async with driver_for(settings) as driver:
            return await super_connectors(driver, settings.neo4j_database, n, limit)

    rows = _run(work())
    if as_json:
        print(json.dumps([_as_dict(r) for r in rows], indent=2))
        return
    if not rows:
        out.print(f"No identifier is held by more than {n} records.")
        return
    table = Table("type", "value", "records", "profiles", "blocked")
    for r in rows:
        table.add_row(r.type, r.value, str(r.records), str(r.profiles), "yes" if r.blocked else "")
    out.print(table)


def _as_dict(r: SuperConnector) -> dict[str, Any]:
    return {
        "key": r.key,
        "type": r.type,
        "value": r.value,
        "records": r.records,
        "profiles": r.profiles,
        "blocked": r.blocked,
    }
