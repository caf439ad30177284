"""The project's own exceptions for graph access; driver errors are translated into these."""

from __future__ import annotations


class GraphError(Exception):
    """Base class for errors raised by `customer_graph.graph`."""


class GraphUnavailableError(GraphError):
    """Neo4j cannot be reached (down, restarting, or the network is out)."""


class GraphWriteError(GraphError):
    """A write failed for a reason other than availability."""
