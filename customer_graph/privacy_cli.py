"""CLI commands of privacy: `export-profile`, `delete-profile` and `audit list`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from customer_graph.graph.audit import AuditPage, encode_cursor, list_audit_entries
from customer_graph.graph.driver import driver_for
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.privacy import DeleteResult, delete_profile, export_profile
from customer_graph.settings import get_settings

T = TypeVar("T")
CLI_ACTOR = "cli"

audit_app = typer.Typer(help="The audit log of admin actions.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GraphUnavailableError as e:
        err.print(f"[red]Neo4j is not reachable ({get_settings().bolt_uri}).[/red]")
        raise typer.Exit(1) from e


def export_profile_command(
    profile_id: Annotated[str, typer.Argument(help="The profile's id (current or merged-away).")],
) -> None:
    """Print everything held on one person as JSON (right of access)."""
    settings = get_settings()

    async def work() -> dict[str, Any] | None:
        async with driver_for(settings) as driver:
            return await export_profile(driver, settings, profile_id)

    exported = _run(work())
    if exported is None:
        err.print(f"[red]No profile {profile_id}.[/red]")
        raise typer.Exit(1)
    print(json.dumps(exported, indent=2, sort_keys=True, ensure_ascii=False))


def delete_profile_command(
    profile_id: Annotated[str, typer.Argument(help="The profile's id (current or merged-away).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase one person (right to erasure) and suppress their identifiers; cannot be undone."""
    settings = get_settings()
    if not yes:
        typer.confirm(f"Erase profile {profile_id} and everything held on that person?", abort=True)

    async def work() -> DeleteResult | None:
        async with driver_for(settings) as driver:
            return await delete_profile(driver, settings, profile_id, actor=CLI_ACTOR)

    deleted = _run(work())
    if deleted is None:
        err.print(f"[red]No profile {profile_id}.[/red]")
        raise typer.Exit(1)
    err.print(f"Erased profile {deleted.deleted_profile_id} (audit entry {deleted.audit_id}).")
    print(json.dumps(deleted.counts, sort_keys=True))


@audit_app.command("list")
def audit_list(
    first: Annotated[int, typer.Option(min=1, max=100, help="How many entries.")] = 50,
    after: Annotated[str | None, typer.Option(help="The cursor a previous page ended at.")] = None,
) -> None:
    """Admin actions, newest first: when, who, what, on what, details (no personal data)."""
    settings = get_settings()

    async def work() -> AuditPage:
        async with driver_for(settings) as driver:
            return await list_audit_entries(
                driver, settings.neo4j_database, first=first, after=after
            )

    try:
        page = _run(work())
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    rows = [
        (
            e.at.isoformat(timespec="seconds"),
            e.actor,
            e.action,
            e.target,
            json.dumps(e.details, sort_keys=True),
        )
        for e in page.entries
    ]
    columns = ("at", "actor", "action", "target", "details")
    if out.is_terminal:
        table = Table(*columns)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(row))
    if page.has_next and page.entries:
        err.print(f"More: --after {encode_cursor(page.entries[-1])}", soft_wrap=True)
