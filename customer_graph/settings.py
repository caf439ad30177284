"""Configuration, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from customer_graph.graph.normalize import DEFAULT_BLOCKED_PATTERNS
from customer_graph.graph.resolution import DEFAULT_LIMIT, DEFAULT_LIMITS, DEFAULT_PRIORITIES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting has an environment variable; the Neo4j ones follow the driver's names."""

    model_config = SettingsConfigDict(
        env_prefix="CUSTOMER_GRAPH_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Neo4j. With no NEO4J_URI the local Neo4j (see `customer-graph neo4j`) is used.
    neo4j_uri: str | None = Field(default=None, validation_alias=_env("NEO4J_URI"))
    neo4j_user: str = Field(default="neo4j", validation_alias=_env("NEO4J_USER"))
    neo4j_password: str = Field(default="customer-graph", validation_alias=_env("NEO4J_PASSWORD"))
    neo4j_database: str = Field(default="neo4j", validation_alias=_env("NEO4J_DATABASE"))

    # The local Neo4j: where it lives and where its Bolt connector listens.
    local_neo4j_home: Path = Field(
        default=PROJECT_ROOT / ".local" / "neo4j",
        validation_alias=_env("CUSTOMER_GRAPH_LOCAL_NEO4J_HOME"),
    )
    local_neo4j_port: int = Field(
        default=7687, validation_alias=_env("CUSTOMER_GRAPH_LOCAL_NEO4J_PORT")
    )
    local_neo4j_heap: str = Field(
        default="1g", validation_alias=_env("CUSTOMER_GRAPH_LOCAL_NEO4J_HEAP")
    )
    local_neo4j_pagecache_mb: int = Field(
        default=512, validation_alias=_env("CUSTOMER_GRAPH_LOCAL_NEO4J_PAGECACHE_MB")
    )

    # HTTP.
    host: str = Field(default="127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(default=8000, validation_alias=_env("PORT"))

    # Ingestion workers (customer_graph/ingestion/workers.py): the queue holds at most
    # `ingest_queue_max` messages; a micro-batch carries at most `ingest_batch_max` messages and
    # waits at most `ingest_batch_wait_ms` for more; `ingest_workers` transactions run at once.
    # Four, not two: while one batch is planned in Python or waits for its commit, others keep
    # Neo4j busy (on 2 cores, 4,271 -> 4,836 events/s over HTTP; 8 gave 4,972).
    ingest_queue_max: int = 20_000
    ingest_batch_max: int = 500
    ingest_batch_wait_ms: float = 5.0
    ingest_workers: int = 4
    ingest_retry_after_s: int = 2  # Retry-After of a 503 (queue full, Neo4j unavailable)

    # The cyclic garbage collector runs after this many net allocations of containers
    # (customer_graph/runtime.py); Python's default, 700, made it a fifth of the API's CPU.
    # 0 keeps Python's defaults.
    gc_gen0_threshold: int = Field(default=20_000, ge=0)

    # A development key with every scope (source `dev`); never set it in production.
    dev_key: str | None = None

    # Identity resolution (graph/resolution.py). Lists and maps are JSON in the environment,
    # e.g. CUSTOMER_GRAPH_RESOLUTION_LIMITS='{"user_id": 1, "email": 3}'.
    resolution_default_region: str = "US"
    resolution_blocked_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_PATTERNS)
    )
    resolution_extra_blocked_patterns: list[str] = Field(default_factory=list)
    resolution_limits_enabled: bool = True
    resolution_limits: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    resolution_default_limit: int = DEFAULT_LIMIT
    resolution_priorities: list[str] = Field(default_factory=lambda: list(DEFAULT_PRIORITIES))
    resolution_survivorship: dict[str, str] = Field(default_factory=dict)  # trait -> rule
    resolution_default_survivorship: str = "recent"
    resolution_source_priority: list[str] = Field(default_factory=list)
    super_connector_threshold: int = 50

    # GraphQL exploration; switch both off in production if the schema is private.
    graphiql_enabled: bool = True  # CUSTOMER_GRAPH_GRAPHIQL_ENABLED
    introspection_enabled: bool = True  # CUSTOMER_GRAPH_INTROSPECTION_ENABLED
    # GraphQL guards (resolvers/guards.py): operations beyond these are refused before any
    # Cypher runs. The cost is the number of objects a query may return (see guards.py).
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5_000
    graphql_max_cost: int = 25_000

    # Security and privacy (customer_graph/security.py, graph/privacy.py, logging.py).
    log_level: str = "INFO"
    # Origins allowed to call the API from a browser; empty (the default) turns CORS off.
    # From the environment: a JSON list or comma-separated origins.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 1_000_000  # request bodies larger than this get 413 (after gunzip too)
    # Keys the hashes of suppressed (erased) identifiers; set it in production and keep it.
    suppression_secret: str | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @property
    def bolt_uri(self) -> str:
        return self.neo4j_uri or f"bolt://127.0.0.1:{self.local_neo4j_port}"

    @property
    def uses_local_neo4j(self) -> bool:
        return self.neo4j_uri is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
