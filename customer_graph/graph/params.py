"""Running the write path's statements: parameters in one map, logged by size, not by value.

**One map.** Neo4j keys its plan cache by a statement's text and by the size of each list
parameter, in buckets (0, 1, 2 to 10, 11 to 100, 101 to 1000, ...), and plans a statement again
for each new combination of its lists' buckets. The decisions of a batch have six lists
(records, new and widened edges, new profiles, merges, assignments): in-process, 28 rounds of
ingestion planned that one statement 22 times, new combinations still turning up after 20
rounds, and a batch that met one waited for its planning (the first run of a new combination
took 34 to 61 ms where a cached one took 4 to 14). A map parameter has no size in the key. So
`run` sends every parameter as a field of one map, `$batch`, and reads a statement's `$name` as
`$batch.name`: each statement is planned once. A name the statement uses and the call does not
give is an error, as a missing parameter is. The rewriting takes every `$` followed by a name
for a parameter, so these statements hold no such text in their string literals or comments.

**By size.** The driver builds the debug line of every RUN before it asks whether debug logging
is on: the `repr` of all of the statement's parameters. For a batch's rows that costs about as
much as encoding them (1.4 against 1.6 us a row, measured on 400 interaction rows), on every
statement of every batch, with the debug log off. With it on, the line would hold people's
identifiers and traits. Rows passed through `run` show as `<412 rows>` instead; their encoding
is unchanged (the driver packs a list or dict subclass as a list or map).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, LiteralString

from neo4j import AsyncManagedTransaction, AsyncResult

BATCH = "batch"
"""The one map parameter `run` sends."""

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class Rows(list[Any]):
    """A list parameter that shows only its length."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


class Entries(dict[str, Any]):
    """A map parameter that shows only its size."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} entries>"


def quiet(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with every list and map wrapped so that it shows only its size."""
    return {
        name: Rows(value)
        if isinstance(value, list)
        else Entries(value)
        if isinstance(value, dict)
        else value
        for name, value in params.items()
    }


@functools.cache
def in_one_map(statement: str) -> tuple[str, frozenset[str]]:
    """`statement` with each `$name` read from the map `$batch`, and the names it uses."""
    names = frozenset(_PARAMETER.findall(statement))
    return _PARAMETER.sub(rf"${BATCH}.\1", statement), names


async def run(tx: AsyncManagedTransaction, statement: LiteralString, **params: Any) -> AsyncResult:
    """`tx.run(statement, **params)`, planned once whatever the sizes of its lists, with the
    lists and maps of `params` shown by size."""
    text, names = in_one_map(statement)
    missing = names - params.keys()
    if missing:
        raise TypeError(f"statement parameters not given: {', '.join(sorted(missing))}")
    return await tx.run(text, {BATCH: Entries(quiet(params))})
