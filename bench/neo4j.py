"""A private Neo4j for benchmarks, never the shared one on 7687.

It lives under `.local/bench-neo4j/<port>`, listens on a free port, and gets a bigger heap and
page cache than the development instance, so that figures measure the product and not a starved
JVM. The harness starts it, wipes nothing but its own folder, and stops it at the end.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from customer_graph.graph.local import LocalNeo4j
from customer_graph.settings import PROJECT_ROOT, Settings

BENCH_HOME = PROJECT_ROOT / ".local" / "bench-neo4j"
SHARED_BOLT_PORT = 7687


@dataclass(frozen=True)
class BenchNeo4jConfig:
    heap: str = "2g"
    pagecache_mb: int = 2048
    keep: bool = False  # keep the data folder after stopping (for inspection)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_local(settings: Settings, config: BenchNeo4jConfig) -> LocalNeo4j:
    """A LocalNeo4j on a free port with its own empty home folder."""
    port = free_port()
    if port == SHARED_BOLT_PORT:  # pragma: no cover - the kernel never hands out a bound port
        port = free_port()
    home = BENCH_HOME / str(port)
    shutil.rmtree(home, ignore_errors=True)
    return LocalNeo4j(
        home=home,
        port=port,
        user=settings.neo4j_user,
        password=settings.neo4j_password,
        heap=config.heap,
        pagecache_mb=config.pagecache_mb,
    )


@contextmanager
def running_bench_neo4j(
    base: Settings, config: BenchNeo4jConfig | None = None
) -> Iterator[tuple[LocalNeo4j, Settings]]:
    """Start a private Neo4j, yield it with settings pointing at it, stop and remove it."""
    config = config or BenchNeo4jConfig()
    local = bench_local(base, config)
    local.start(timeout=300)
    settings = base.model_copy(update={"neo4j_uri": local.uri})
    try:
        yield local, settings
    finally:
        local.stop()
        if not config.keep:
            shutil.rmtree(local.home, ignore_errors=True)
