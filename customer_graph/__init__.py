"""customer-graph: CDP identities and CRM relationships resolved into one Neo4j graph."""

from __future__ import annotations

__version__ = "0.1.0"
