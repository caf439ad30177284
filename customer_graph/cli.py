"""The `customer-graph` command line."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console

from customer_graph.graph.local import LocalNeo4j, LocalNeo4jError
from customer_graph.identity_cli import resolve_command, super_connectors_command
from customer_graph.import_cli import import_command
from customer_graph.ingestion_cli import dead_letters_app, keys_app
from customer_graph.logging import configure_logging, uvicorn_log_config
from customer_graph.privacy_cli import audit_app, delete_profile_command, export_profile_command
from customer_graph.settings import Settings, get_settings

app = typer.Typer(
    help="customer-graph: one Neo4j graph of your customers, served over GraphQL.",
    no_args_is_help=True,
)
neo4j_app = typer.Typer(
    help="The local Neo4j (used when NEO4J_URI is not set).", no_args_is_help=True
)
app.add_typer(neo4j_app, name="neo4j")
app.command("import")(import_command)
app.command("resolve")(resolve_command)
app.command("super-connectors")(super_connectors_command)
app.add_typer(keys_app, name="keys")
app.add_typer(dead_letters_app, name="dead-letters")
app.command("export-profile")(export_profile_command)
app.command("delete-profile")(delete_profile_command)
app.add_typer(audit_app, name="audit")
console = Console(stderr=True)


@app.callback()
def _main() -> None:
    """Log without PII (emails and phone numbers are redacted) at CUSTOMER_GRAPH_LOG_LEVEL."""
    configure_logging(get_settings().log_level)


def _local() -> LocalNeo4j | None:
    settings = get_settings()
    if not settings.uses_local_neo4j:
        console.print(f"NEO4J_URI is set ({settings.neo4j_uri}): no local Neo4j is managed.")
        return None
    return LocalNeo4j.from_settings(settings)


@neo4j_app.command("start")
def neo4j_start() -> None:
    """Start the local Neo4j and wait until it answers (harmless if it already runs)."""
    local = _local()
    if local is None:
        return
    try:
        started = local.start()
    except LocalNeo4jError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from e
    state = "started" if started else "already running"
    console.print(f"Neo4j {state} on {local.uri} (log: {local.log_file})")


@neo4j_app.command("stop")
def neo4j_stop() -> None:
    """Stop the local Neo4j cleanly."""
    local = _local()
    if local is None:
        return
    console.print("Neo4j stopped." if local.stop() else "Neo4j was not running.")


@neo4j_app.command("status")
def neo4j_status() -> None:
    """Say whether the local Neo4j runs and answers; exit 1 if it does not."""
    local = _local()
    if local is None:
        return
    pid = local.pid()
    if pid is None:
        console.print("Neo4j is not running.")
        raise typer.Exit(1)
    ready = local.is_ready()
    console.print(f"Neo4j runs (pid {pid}) on {local.uri}; {'ready' if ready else 'not ready'}.")
    if not ready:
        raise typer.Exit(1)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default: HOST or 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: PORT or 8000)."),
    workers: int = typer.Option(1, help="Worker processes."),
    dev: bool = typer.Option(
        False, "--dev", help="Load the demo graph and print a development key (made once)."
    ),
) -> None:
    """Serve the API; with no NEO4J_URI, start the local Neo4j first and stop it on exit."""
    settings = get_settings()
    local = LocalNeo4j.from_settings(settings) if settings.uses_local_neo4j else None
    started = False
    if local is not None:
        try:
            started = local.start()
        except LocalNeo4jError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from e
        console.print(f"Neo4j ready on {local.uri}")
    try:
        if dev:
            _dev_banner(settings, host or settings.host, port or settings.port)
        uvicorn.run(
            "customer_graph.app:app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_level="info",
            log_config=uvicorn_log_config("info"),
        )
    finally:
        if local is not None and started:
            console.print("Stopping the Neo4j this command started…")
            local.stop()


def _dev_banner(settings: Settings, host: str, port: int) -> None:
    from customer_graph.demo import DEV_KEY_FILE, dev_setup

    saved_key = dev_setup(settings)
    if settings.dev_key:
        console.print("Demo graph loaded. Development key: CUSTOMER_GRAPH_DEV_KEY")
    else:
        console.print(f"Demo graph loaded. Development key (saved in {DEV_KEY_FILE}):")
        console.print(f"  [bold]{saved_key}[/bold]")
    console.print(f"  GraphiQL: http://{host}:{port}/graphql  (header Authorization: Bearer <key>)")


if __name__ == "__main__":
    app()
