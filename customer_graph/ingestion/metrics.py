"""Prometheus metrics of ingestion, and the `/metrics` route.

The metrics live in the process's default registry (created once, at import). With several
uvicorn worker processes each process serves its own numbers.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

ACCEPTED: Final = Counter(
    "customer_graph_ingest_messages_accepted",
    "Messages committed to Neo4j, by message type.",
    ["type"],
)
REJECTED: Final = Counter(
    "customer_graph_ingest_messages_rejected",
    "Messages refused before the queue (bad payload, too large, bad key), by reason.",
    ["reason"],
)
DEDUPLICATED: Final = Counter(
    "customer_graph_ingest_messages_deduplicated",
    "Messages whose messageId was already written, so they were not written again.",
)
DEAD_LETTERED: Final = Counter(
    "customer_graph_ingest_messages_dead_lettered",
    "Messages that failed on their own and went to the dead-letter store.",
)
UNAVAILABLE: Final = Counter(
    "customer_graph_ingest_messages_unavailable",
    "Messages answered 503 (queue full, Neo4j unavailable, shutting down), by reason.",
    ["reason"],
)
BATCH_SIZE: Final = Histogram(
    "customer_graph_ingest_batch_messages",
    "Messages per committed micro-batch.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
COMMIT_SECONDS: Final = Histogram(
    "customer_graph_ingest_commit_seconds",
    "Time to write and commit one micro-batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH: Final = Gauge(
    "customer_graph_ingest_queue_messages",
    "Messages waiting in the ingestion queue or being written.",
)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
