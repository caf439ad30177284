"""Page-size and input-list checks shared by every connection and list argument."""

from __future__ import annotations

from collections.abc import Sized
from typing import Final

from customer_graph.resolvers.errors import (
    BAD_USER_INPUT,
    INPUT_LIST_TOO_LONG,
    PAGE_SIZE_TOO_LARGE,
    ApiError,
)

MAX_PAGE_SIZE: Final = 100
MAX_INPUT_LIST: Final = 100


def check_first(first: int) -> int:
    """`first` of a connection: 0 to 100. The guards refuse it earlier; this is the backstop."""
    if first < 0:
        raise ApiError("`first` must not be negative.", BAD_USER_INPUT)
    if first > MAX_PAGE_SIZE:
        raise ApiError(
            f"`first` must be at most {MAX_PAGE_SIZE}; page with `after`.", PAGE_SIZE_TOO_LARGE
        )
    return first


def check_list(name: str, values: Sized | None, limit: int = MAX_INPUT_LIST) -> None:
    if values is not None and len(values) > limit:
        raise ApiError(f"`{name}` takes at most {limit} values.", INPUT_LIST_TOO_LONG)
