"""Values kept with a parsed document's node for as long as the node lives.

Documents are parsed once per query text (`QueryGuards`), so what is worked out from a document
alone (which fields a selection names, how a type's sub-fields group) can be kept with its nodes
and reused by every request that sends the same text. Nodes compare and hash by content, which
costs more than most of what is kept: they are keyed by identity, through a weak reference that
drops the values when the node goes.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Generic, TypeVar

from graphql import Node

K = TypeVar("K")
V = TypeVar("V")


class NodeCache(Generic[K, V]):
    """Per node (by identity), a dict of values that lives as long as the node."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Node], dict[K, V]]] = {}

    def of(self, node: Node) -> dict[K, V]:
        entry = self._entries.get(id(node))
        if entry is None or entry[0]() is not node:
            entry = (weakref.ref(node, partial(self._forget, id(node))), {})
            self._entries[id(node)] = entry
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, node_id: int, ref: weakref.ref[Node]) -> None:
        entry = self._entries.get(node_id)
        if entry is not None and entry[0] is ref:
            del self._entries[node_id]
