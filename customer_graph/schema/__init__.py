"""Strawberry types, inputs and the Schema object."""

from __future__ import annotations

from customer_graph.schema.root import schema

__all__ = ["schema"]
