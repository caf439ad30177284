"""Statements that keep their first plan: the write path's, planned the same on any graph.

Neo4j replans a cached statement once the statistics it was planned with have drifted far
enough: at most every 10 seconds, when a label's count or an index's selectivity has changed by
about three quarters. While a graph grows from empty, or a load doubles it, that happens to each
statement again and again, and each replan of the write path's larger statements costs far more
than running it. Measured in-process on a growing graph, 16 alternating rounds each: Neo4j's CPU
per identify event 345 -> 255 us and per track event 189 -> 160 us with the cached plans kept.

Keeping them loses nothing: every node these statements touch is found by a unique key, an
element id or an expansion from such a node, so no plan of theirs scans, and the statistics only
order or join the same seeks differently. tests/integration/test_plans.py checks both for every
statement that starts with `KEEP_PLAN`, on a full graph and on a nearly empty one.
"""

from __future__ import annotations

from typing import Final

KEEP_PLAN: Final = "CYPHER replan=skip\n"
