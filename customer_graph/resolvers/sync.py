"""Resolvers that are synchronous when their data is at hand, and await only when it is not.

graphql-core awaits whatever a resolver returns that is awaitable, so a plain function may
return either its value or a coroutine that loads it. A field resolved for every item of a list
(a timeline's stage changes, a deal's stage history) is then no coroutine and no task per item
when the item came with its data, and the list completes without an await; the awaiting path
stays for the rare item that must be loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")


def awaited_by_graphql(value: Awaitable[T]) -> T:
    """`value`, typed as what graphql-core makes of it: the result of awaiting it.

    Only for what a resolver returns to graphql-core; never use the result in Python code.
    """
    return cast(T, value)


R = TypeVar("R")


def then(loaded: Awaitable[T], convert: Callable[[T], R]) -> R:
    """`convert` of what a DataLoader's `load` gives: at once when it is already loaded (a
    cached or primed key), else through a coroutine that graphql-core awaits."""
    if (
        isinstance(loaded, asyncio.Future)
        and loaded.done()
        and not loaded.cancelled()
        and loaded.exception() is None
    ):
        return convert(loaded.result())
    return awaited_by_graphql(_then(loaded, convert))


async def _then(loaded: Awaitable[T], convert: Callable[[T], R]) -> R:
    return convert(await loaded)
