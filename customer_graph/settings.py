"""Configuration, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # A development key with every scope (source `dev`); never set it in production.
    dev_key: str | None = None

    @property
    def bolt_uri(self) -> str:
        return self.neo4j_uri or f"bolt://127.0.0.1:{self.local_neo4j_port}"

    @property
    def uses_local_neo4j(self) -> bool:
        return self.neo4j_uri is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
