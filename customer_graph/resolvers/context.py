"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import AsyncDriver

from customer_graph.settings import Settings


@dataclass
class Context:
    driver: AsyncDriver
    settings: Settings
